"""The validation runner behind ``refimpl validate`` (DESIGN.md, "Validation").

Each module in ``validation/<paper>/`` defines ``run(ctx) -> list[Claim]`` (and optionally
``ORDER``, an int that sorts modules). The runner imports them, calls ``run`` with a
:class:`Context`, and writes into the output folder:

- ``report.md``: one table per paper — claim, spec reference, measured, expected, verdict, figure;
- ``results.json``: the same claims with their numbers, the profile, seeds and software versions;
- the PNG figures the modules saved through ``ctx.figure_path``.

Expensive computations go through ``ctx.cached(name, config, fn)``: the result is stored under
``<out>/.cache/`` keyed by a hash of (name, config, code version), where the code version hashes
every source file of ``refimpl`` and ``validation``. A rerun with the same inputs and code reuses
it; an interrupted run resumes from the computations already stored. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pickle
import pkgutil
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from refimpl.core.claims import VERDICTS, Claim, verdict  # noqa: F401  (re-exported for modules)
from refimpl.core.io import atomic_savefig, atomic_write_bytes, atomic_write_text

PROFILES = ("quick", "full")


def code_version() -> str:
    """Hash of the package version and every .py file of ``refimpl`` and ``validation``."""
    import refimpl
    from refimpl import validation

    h = hashlib.sha256(refimpl.__version__.encode())
    for pkg in (refimpl, validation):
        root = Path(pkg.__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _strict(obj):
    """Plain JSON values: arrays become lists, and non-finite floats (inf for "never reached",
    nan for "not measured") become null, so strict JSON readers accept results.json."""
    import math

    if isinstance(obj, dict):
        return {str(k): _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _strict(obj.tolist())
    if hasattr(obj, "__dataclass_fields__"):
        return _strict(asdict(obj))
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class Context:
    """What a validation module gets: the profile, where to write, the cache, progress bars."""

    def __init__(self, paper: str, profile: str, out_dir: Path, *, use_cache: bool = True,
                 progress: bool | None = None, code: str | None = None):
        self.paper = paper
        self.profile = profile
        self.out_dir = Path(out_dir)
        self.cache_dir = self.out_dir / ".cache"
        self.use_cache = use_cache
        self.progress = progress
        self.code = code or code_version()
        self.cache_hits = 0
        self.cache_misses = 0

    def figure_path(self, name: str) -> Path:
        """Path for a PNG (``name`` without extension), prefixed by the paper."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / f"{self.paper}_{name}.png"

    def save_figure(self, fig, name: str) -> str:
        """Save a matplotlib figure atomically as ``<paper>_<name>.png``; returns the file name."""
        import matplotlib.pyplot as plt

        path = self.figure_path(name)
        atomic_savefig(path, fig, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return path.name

    def cache_key(self, name: str, config: Any) -> str:
        blob = json.dumps({"name": name, "config": config, "code": self.code}, sort_keys=True, default=_jsonable)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def cached(self, name: str, config: Any, fn: Callable[[], Any]) -> Any:
        """``fn()``, stored under a hash of (name, config, code version) and reused when present."""
        path = self.cache_dir / f"{name.replace('/', '_')}-{self.cache_key(name, config)}.pkl"
        if self.use_cache and path.is_file():
            try:
                with open(path, "rb") as fh:
                    value = pickle.load(fh)
                self.cache_hits += 1
                return value
            except Exception:  # a corrupt entry is recomputed, never trusted
                pass
        value = fn()
        self.cache_misses += 1
        atomic_write_bytes(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        return value


def available_papers() -> list[str]:
    from refimpl import validation

    return sorted(m.name for m in pkgutil.iter_modules(validation.__path__) if m.ispkg)


def discover(paper: str) -> list:
    """The validation modules of ``paper`` (``refimpl.validation.<paper>.*`` with a ``run``), in order."""
    papers = available_papers()
    if paper not in papers:
        raise ValueError(f"unknown paper {paper!r}; allowed: {papers}")
    pkg = importlib.import_module(f"refimpl.validation.{paper}")
    mods = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"refimpl.validation.{paper}.{info.name}")
        if callable(getattr(mod, "run", None)):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def versions() -> dict:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("numpy", "scipy", "numba", "matplotlib", "sklearn"):
        try:
            out[name] = importlib.import_module(name).__version__
        except ImportError:
            out[name] = None
    import refimpl

    out["refimpl"] = refimpl.__version__
    return out


def run_validation(papers: list[str] | None, profile: str, out_dir, *, use_cache: bool = True,
                   progress: bool | None = None, log=print, only: list[str] | None = None) -> dict[str, list[Claim]]:
    """Run every module of ``papers`` (all when None; with ``only``, just the modules of those
    names) and write report.md and results.json."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILES)}, got {profile!r}")
    papers = available_papers() if not papers else papers
    for p in papers:
        if p not in available_papers():
            raise ValueError(f"unknown paper {p!r}; allowed: {available_papers()}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    code = code_version()
    results: dict[str, list[Claim]] = {}
    timings: dict[str, float] = {}
    for paper in papers:
        ctx = Context(paper, profile, out_dir, use_cache=use_cache, progress=progress, code=code)
        claims: list[Claim] = []
        mods = discover(paper)
        if only:
            names = [m.__name__.rsplit(".", 1)[-1] for m in mods]
            unknown = [o for o in only if o not in names]
            if unknown:
                raise ValueError(f"unknown validation module(s) {unknown} for {paper}; allowed: {names}")
            mods = [m for m, n in zip(mods, names) if n in only]
        for mod in mods:
            t0 = time.perf_counter()
            log(f"[{paper}] {mod.__name__.rsplit('.', 1)[-1]} ({profile}) ...")
            claims.extend(mod.run(ctx))
            timings[mod.__name__] = round(time.perf_counter() - t0, 2)
            log(f"[{paper}]   done in {timings[mod.__name__]:.1f} s")
        results[paper] = claims
    write_report(results, profile, out_dir, code, timings)
    return results


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def write_report(results: dict[str, list[Claim]], profile: str, out_dir: Path, code: str, timings: dict) -> None:
    n = {v: sum(c.verdict == v for cs in results.values() for c in cs) for v in VERDICTS}
    lines = [
        "# refimpl validation report",
        "",
        f"Profile `{profile}` · code version `{code}` · {time.strftime('%Y-%m-%d %H:%M:%S %Z')} · "
        f"{n['pass']} pass, {n['fail']} fail, {n['info']} reported without a verdict.",
        "",
        "Each row is a claim of a paper checked numerically: the expectation column states the test, "
        "with its threshold; `info` rows are measurements reported without a pass/fail test.",
    ]
    for paper, claims in results.items():
        lines += ["", f"## {paper}", "", "| id | claim | spec | measured | expected | verdict | figure |",
                  "|---|---|---|---|---|---|---|"]
        for c in claims:
            fig = f"[{c.figure}]({c.figure})" if c.figure else ""
            mark = {"pass": "**pass**", "fail": "**FAIL**", "info": "info"}[c.verdict]
            lines.append("| " + " | ".join(_cell(x) for x in (c.id, c.claim, c.spec, c.measured, c.expected, mark, fig)) + " |")
        figs = list(dict.fromkeys(c.figure for c in claims if c.figure))
        for f in figs:
            lines += ["", f"![{f}]({f})"]
    lines.append("")
    atomic_write_text(out_dir / "report.md", "\n".join(lines))
    payload = {
        "profile": profile,
        "code_version": code,
        "versions": versions(),
        "timings_s": timings,
        "papers": {p: [asdict(c) for c in cs] for p, cs in results.items()},
    }
    text = json.dumps(_strict(payload), indent=2, default=_jsonable, allow_nan=False)
    atomic_write_bytes(out_dir / "results.json", text.encode())
