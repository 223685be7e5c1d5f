"""``refimpl sweep``: train a grid of configurations × seeds, tabulate and plot the final metrics.

    refimpl sweep li2024 --set data.alpha=0.2,0.4,0.6 --set model.m=50,100 --seeds 0-7 --out sweeps/a

The grid is the product of the ``--set FIELD=V1,V2,...`` values (any config field by its dotted
name, values parsed as in ``refimpl train``: JSON, else strings; commas inside ``[...]`` or quotes
do not split) and the seeds, on top of ``--preset``, ``--config FILE`` and ``--steps``. Every
configuration of the grid is built and validated by the model's config before anything runs, so a
bad override stops the command in one line naming the field, with nothing written.

Engines and cache: the runs go through the validation cache (:mod:`refimpl.validation.cache`,
``OUT/.cache`` or ``--cache-dir``), one entry per (model, configuration, seed, backend, steps),
keyed by the code the run depends on; a rerun, or an interrupted sweep run again, computes only the
missing runs. Without Dask options they run one after the other in this process (``distributed``
is never imported); with ``--workers N|auto`` on a local Dask cluster, with ``--scheduler`` /
``--scheduler-file`` on an existing one (:mod:`refimpl.validation.engine`; the client writes the
cache). Results are the same on every engine.

Metrics: the final value of every scalar series of the run's
:class:`~refimpl.core.trajectory.Trajectory`, ``records`` first, then ``history`` (a history name
that is also a record name is prefixed ``history/``), except the step counters and clock readings
(``step``, ``time``, ``step_time``), which are not results. Per model (registry defaults of
``--metric`` in bold):

===========  ==================================================================================
model        metrics
===========  ==================================================================================
li2024       **unseen/error**, unseen/hinge, unseen/attn_same, the same for train/ and ood/
             (evaluation batches at the last record), history loss, error (last minibatch)
yang2024     **excess** (L − L* at the last record), loss (records), history/loss (last step)
huang2023    **L** (the loss at the last record), loss (history)
transformer  **eval_loss** (fixed evaluation sequences), loss, lr (history)
===========  ==================================================================================

Outputs in ``--out``: ``sweep.csv`` and ``sweep.json`` (one row per run: model, every ``--set``
field, seed, steps, each metric, wall_s — the run's own training time, kept from when it was
computed —, backend, engine, code_version, status — ``ok``, or for a run whose loss went
non-finite ``diverged: <message>`` with NaN metrics), ``sweep.png`` (the chosen metric against the first swept field: the
median over seeds with the min–max band and, from 4 seeds, the interquartile band; one line per
value of the other swept fields; log axes where values span more than 1.5 decades) and
``sweep-spec.json`` (what defines the sweep; a folder holding the same spec is resumed).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPEC_FILE = "sweep-spec.json"
SKIP_SERIES = ("step", "time", "step_time")  # counters and clock readings, not results
SPEC_FORMAT = 1


# ---- the grid ------------------------------------------------------------------------------------


def split_values(text: str) -> list[str]:
    """``"0.2,0.4"`` → ``["0.2", "0.4"]``; commas inside brackets, braces or quotes do not split
    (``"[1,2],[1,3]"`` → two values)."""
    out, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_seeds(text: str) -> list[int]:
    """``"0-7"``, ``"0,3,5"`` or ``"0-3,8"`` → the seeds in order; ``ValueError`` for anything else."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(f"--seeds expects seeds such as 0-7 or 0,3,5 (integers ≥ 0), got {text!r}") from None
        if a < 0 or b < a:
            raise ValueError(f"--seeds expects ranges LO-HI with 0 ≤ LO ≤ HI, got {part!r}")
        seeds.extend(range(a, b + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds lists a seed twice: {text!r}")
    return seeds


def parse_grid(assignments) -> dict[str, list]:
    """``["data.alpha=0.2,0.4", "model.m=50"]`` → ``{"data.alpha": [0.2, 0.4], "model.m": [50]}``
    (values parsed by :func:`refimpl.core.config.parse_value`)."""
    from refimpl.core.config import parse_assignment, parse_value

    grid: dict[str, list] = {}
    for text in assignments or ():
        name, raw = parse_assignment(text)
        if name in grid:
            raise ValueError(f"--set {name} is given twice; list its values once, comma-separated")
        values = [parse_value(v) for v in split_values(raw)]
        if any(v == "" for v in split_values(raw)):
            raise ValueError(f"--set {name}: empty value in {raw!r}")
        keys = [json.dumps(v, sort_keys=True, default=str) for v in values]
        if len(set(keys)) != len(keys):
            raise ValueError(f"--set {name}: a value is listed twice in {raw!r}")
        grid[name] = values
    return grid


@dataclass(frozen=True)
class Point:
    """One run of the grid: the swept values (in ``--set`` order), the seed and the configuration."""

    values: tuple  # ((field, value), ...)
    seed: int
    cfg: Any


@dataclass
class Sweep:
    """A validated sweep: everything is checked when it is built (:func:`build`)."""

    model: str
    preset: str
    base: Any  # the configuration every point starts from (preset, --config, --steps)
    grid: dict  # field -> values
    seeds: list
    backend: str
    train_kwargs: dict  # keyword arguments of train besides the config (the transformer's steps)
    points: list = field(default_factory=list)

    def spec(self) -> dict:
        """What identifies this sweep (the same spec in a folder means: resume it)."""
        from refimpl.validation.jsonable import strict

        return strict({"format": SPEC_FORMAT, "model": self.model, "preset": self.preset,
                       "base": dataclasses.asdict(self.base), "grid": self.grid, "seeds": self.seeds,
                       "backend": self.backend, "train_kwargs": self.train_kwargs})


def build(model: str, *, preset: str = "tiny", config_file=None, sets=None, seeds="0", steps: int | None = None,
          backend: str | None = None) -> Sweep:
    """Validate every input and build every configuration of the grid (no training).

    Raises ``ValueError`` (one line, naming the option or field and what is allowed) for an
    unknown model, preset, field or backend, a value the config refuses, a bad seed list."""
    from refimpl import models
    from refimpl.core.config import apply_overrides, load_config_file
    from refimpl.core.jit import jit_disabled

    info = models.get(model)
    mod = info.load()
    base = mod.preset(preset)
    if config_file:
        base = apply_overrides(base, load_config_file(config_file))
    train_kwargs: dict = {}
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"--steps must be an integer ≥ 0, got {steps!r}")
        if info.steps_field:
            base = apply_overrides(base, {info.steps_field: steps})
        else:
            train_kwargs["steps"] = steps
    grid = parse_grid(sets)
    if steps is not None and info.steps_field in grid:
        raise ValueError(f"give the steps either by --steps or by --set {info.steps_field}=..., not both")
    for name, values in grid.items():  # each value alone: the message names the field
        for v in values:
            try:
                apply_overrides(base, {name: v})
            except (ValueError, TypeError) as exc:
                raise ValueError(f"--set {name}={v!r}: {exc}") from None
    seed_list = parse_seeds(seeds)
    if backend is None:
        backend = "numba" if "numba" in info.backends and not jit_disabled() else info.backends[0]
    if backend not in info.backends:
        raise ValueError(f"--backend must be one of {list(info.backends)} for {model}, got {backend!r}")
    sw = Sweep(model, preset, base, grid, seed_list, backend, train_kwargs)
    names = list(grid)
    for combo in itertools.product(*grid.values()):
        overrides = dict(zip(names, combo))
        try:
            cfg = apply_overrides(base, overrides)
        except (ValueError, TypeError) as exc:  # a combination the config refuses
            shown = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
            raise ValueError(f"--set {shown}: {exc}") from None
        sw.points += [Point(tuple(overrides.items()), s, cfg) for s in seed_list]
    return sw


# ---- one run (the cached computation) ------------------------------------------------------------


def final_metrics(traj) -> dict[str, float]:
    """The final value of every scalar series of ``traj`` (module docstring)."""
    import numpy as np

    out: dict[str, float] = {}
    for src, prefix in ((traj.records, ""), (traj.history, "history/")):
        for name, series in src.items():
            if name in SKIP_SERIES:
                continue
            a = np.asarray(series)
            if a.ndim != 1 or a.dtype.kind not in "fiub" or len(a) == 0:
                continue
            out[prefix + name if (prefix and name in out) else name] = float(a[-1])
    return out


def train_point(train, cfg, seed: int, backend: str, kwargs: dict) -> dict:
    """Train one point and keep its summary: final metrics, steps, the run's wall time; a run whose
    loss went non-finite is kept as an error (a sweep over step sizes is expected to find some)."""
    t0 = time.perf_counter()
    try:
        traj = train(cfg, seed, backend=backend, progress=False, **kwargs)
    except FloatingPointError as exc:
        return {"metrics": {}, "steps": None, "wall_s": time.perf_counter() - t0,
                "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    return {"metrics": final_metrics(traj), "steps": traj.steps_done,
            "wall_s": float(traj.wall_s or time.perf_counter() - t0), "error": None}


def _request(ctx, sw: Sweep, p: Point):
    import functools

    from refimpl import models

    key = {"model": sw.model, "config": dataclasses.asdict(p.cfg), "seed": p.seed, "backend": sw.backend,
           "kwargs": sw.train_kwargs}
    fn = functools.partial(train_point, models.load(sw.model).train, p.cfg, p.seed, sw.backend, dict(sw.train_kwargs))
    return ctx.cached(f"sweep/{sw.model}", key, fn)


class _SweepModule:
    """The sweep as a validation module for the Dask engine: ``run(ctx)`` asks for every run before
    using any (so they all go to the workers at once), then returns the summaries."""

    def __init__(self, sw: Sweep):
        self.sw = sw

    def run(self, ctx):
        values = [_request(ctx, self.sw, p) for p in self.sw.points]
        return [dict(v) for v in values]  # touching a placeholder stops the planning pass here


# ---- running -------------------------------------------------------------------------------------


def check_out(out, spec: dict, *, overwrite: bool) -> tuple[Path, bool]:
    """Before any work: ``out`` must be new, empty, hold this same sweep (then it is resumed), or
    ``overwrite`` must be given. Returns (path, resuming)."""
    from refimpl.core.io import check_output_dir

    p = check_output_dir(out, overwrite=True)  # a file, or not writable: one line
    if not p.is_dir() or not any(p.iterdir()):
        return p, False
    try:
        old = json.loads((p / SPEC_FILE).read_text())
    except (OSError, ValueError):
        old = None
    if old == spec:
        return p, True
    if overwrite:
        return p, False
    what = "a different sweep" if old is not None else "files of something else"
    raise ValueError(f"--out {p} is not empty and holds {what}; refusing to overwrite it (choose another folder, "
                     f"or add --overwrite; runs already in its cache are reused)")


def run_sweep(sw: Sweep, out, *, cache_dir=None, use_cache: bool = True, overwrite: bool = False,
              workers: int | None = None, scheduler: str | None = None, scheduler_file: str | None = None,
              client=None, progress: bool | None = None, log=print) -> list[dict]:
    """Check the output folder, run every point of ``sw`` (cached, on the chosen engine) and return
    the rows (one per point, in grid order). Writes ``sweep-spec.json`` before the runs and nothing
    else; :func:`write_outputs` writes the table and the plot."""
    from refimpl.core.io import atomic_write_json
    from refimpl.validation.cache import Cache
    from refimpl.validation.codedeps import CodeIndex
    from refimpl.validation.outdir import OutputLock, check_dir
    from refimpl.validation.runner import ValidationInterrupted

    engines = [x for x in (workers, scheduler, scheduler_file, client) if x is not None]
    if len(engines) > 1:
        raise ValueError("give at most one of --workers, --scheduler and --scheduler-file")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"--workers must be a positive integer or 'auto', got {workers!r}")
    spec = sw.spec()
    out, resuming = check_out(out, spec, overwrite=overwrite)
    out = check_dir(out, "--out")
    cache_dir = check_dir(cache_dir if cache_dir is not None else out / ".cache", "--cache-dir")
    cache = Cache(cache_dir, use_cache=use_cache)
    with OutputLock(out, log=log, command="refimpl sweep"):
        atomic_write_json(out / SPEC_FILE, spec)
        index = CodeIndex.build()
        if resuming:
            log(f"refimpl: {out} holds this sweep; resuming (runs already cached are reused)")
        try:
            t0 = time.perf_counter()
            if engines:
                values, engine = _run_dask(sw, out, cache, index, progress, log, workers=workers, scheduler=scheduler,
                                           scheduler_file=scheduler_file, client=client)
            else:
                values, engine = _run_serial(sw, out, cache, index, progress), "serial"
            wall = time.perf_counter() - t0
        except KeyboardInterrupt:
            raise ValidationInterrupted(cache.written, cache.count(), cache_dir) from None
    log(f"{len(sw.points)} runs ({cache.written} computed, {len(sw.points) - cache.written} from the cache) "
        f"in {wall:.1f} s on {engine}")
    return rows_of(sw, values, engine=engine, code=index.tree)


def _run_serial(sw: Sweep, out, cache, index, progress) -> list[dict]:
    from tqdm.auto import tqdm

    from refimpl.validation.context import Context

    ctx = Context("sweep", "sweep", out, progress=False, cache=cache, index=index)
    values = []
    with tqdm(total=len(sw.points), desc=f"sweep {sw.model}", unit="run", disable=progress is False,
              dynamic_ncols=True) as bar:
        for p in sw.points:
            values.append(_request(ctx, sw, p))
            bar.update(1)
    return values


def _run_dask(sw: Sweep, out, cache, index, progress, log, *, workers, scheduler, scheduler_file, client):
    import socket

    from refimpl.validation.runner import dask_client, dask_engine

    E = dask_engine()
    with dask_client(client, workers, scheduler, scheduler_file) as c:
        local = set(c.run(socket.gethostname).values()) <= {socket.gethostname()}
        job = E.Job("sweep", _SweepModule(sw), sw.model)
        eng = E.Engine(c, cache=cache, index=index, out_dir=out, profile=f"{len(sw.points)} runs", progress=progress,
                       log=lambda msg: None, local=local, desc=f"sweep {sw.model}")
        eng.run([job])
        n = len(c.scheduler_info().get("workers", {}))
    return job.claims, f"dask ({n} worker{'s' if n != 1 else ''}{', local' if workers is not None else ''})"


# ---- the table and the plot ----------------------------------------------------------------------


def rows_of(sw: Sweep, values: list[dict], *, engine: str, code: str) -> list[dict]:
    metric_names = sorted({k for v in values for k in v["metrics"]} - {"model", "seed", "steps", "wall_s", "backend",
                                                                          "engine", "code_version", "status", *sw.grid})
    rows = []
    for p, v in zip(sw.points, values):
        row: dict = {"model": sw.model}
        row.update({k: val for k, val in p.values})
        row.update({"seed": p.seed, "steps": v["steps"]})
        row.update({m: v["metrics"].get(m, math.nan) for m in metric_names})
        row.update({"wall_s": round(v["wall_s"], 3), "backend": sw.backend, "engine": engine, "code_version": code,
                    "status": f"diverged: {v['error']}" if v["error"] else "ok"})
        rows.append(row)
    return rows


def metric_names(rows: list[dict], sw: Sweep) -> list[str]:
    fixed = {"model", "seed", "steps", "wall_s", "backend", "engine", "code_version", "status", *sw.grid}
    return [k for k in (rows[0] if rows else {}) if k not in fixed]


def write_outputs(out, sw: Sweep, rows: list[dict], metric: str | None) -> list[Path]:
    """Write ``sweep.csv``, ``sweep.json`` and (unless ``metric`` is None) ``sweep.png``, each
    atomically, into ``out``."""
    from refimpl.core.io import atomic_write_bytes, atomic_write_json
    from refimpl.validation.jsonable import strict

    out = Path(out)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (json.dumps(list(v)) if isinstance(v, tuple) else v) for k, v in r.items()})
    atomic_write_bytes(out / "sweep.csv", buf.getvalue().encode())
    atomic_write_json(out / "sweep.json", strict({"spec": sw.spec(), "metric": metric, "rows": rows}))
    if metric is None:
        return [out / "sweep.csv", out / "sweep.json"]
    plot(out / "sweep.png", sw, rows, metric)
    return [out / "sweep.csv", out / "sweep.json", out / "sweep.png"]


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _spans_decades(values, decades: float = 1.5) -> bool:
    pos = [v for v in values if math.isfinite(v) and v > 0]
    return len(pos) >= 2 and math.log10(max(pos) / min(pos)) > decades


def plot(path, sw: Sweep, rows: list[dict], metric: str) -> None:
    """The metric against the first swept field (of more than one value; else against the seed):
    every run as a dot, the median over seeds as a line with min–max (and from 4 seeds
    interquartile) bands, one line per value of the other swept fields."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from refimpl.core.io import atomic_savefig

    swept = [k for k, v in sw.grid.items() if len(v) > 1]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    all_y = []
    if not swept:
        xs = [r["seed"] for r in rows]
        ys = [r[metric] for r in rows]
        ax.plot(xs, ys, "o", color="C0", label=f"{metric} per seed")
        if len(ys):
            ax.axhline(float(np.nanmedian(ys)), color="C0", lw=1, ls="--", label="median")
        ax.set_xlabel("seed")
        all_y = ys
    else:
        xf, others = swept[0], swept[1:]
        xvals = sw.grid[xf]
        numeric = _numeric(xvals)
        pos = {json.dumps(v, default=str): (v if numeric else i) for i, v in enumerate(xvals)}
        groups = list(itertools.product(*(sw.grid[o] for o in others)))
        for g, combo in enumerate(groups):
            sel = [r for r in rows if all(_same(r[o], v) for o, v in zip(others, combo))]
            X, med, lo, hi, q1, q3 = [], [], [], [], [], []
            for v in xvals:
                ys = np.array([r[metric] for r in sel if _same(r[xf], v)], dtype=float)
                ys = ys[np.isfinite(ys)]
                if not len(ys):
                    continue
                all_y.extend(ys.tolist())
                X.append(pos[json.dumps(v, default=str)])
                ax.plot(np.full(len(ys), X[-1]), ys, ".", color=f"C{g % 10}", alpha=0.5, ms=4)  # every run
                med.append(np.median(ys))
                lo.append(ys.min())
                hi.append(ys.max())
                q1.append(np.percentile(ys, 25))
                q3.append(np.percentile(ys, 75))
            label = ", ".join(f"{o} = {v}" for o, v in zip(others, combo)) or f"median over {len(sw.seeds)} seeds"
            color = f"C{g % 10}"
            ax.plot(X, med, "o-", color=color, label=label)
            if len(sw.seeds) > 1:
                ax.fill_between(X, lo, hi, color=color, alpha=0.15, lw=0)
            if len(sw.seeds) >= 4:
                ax.fill_between(X, q1, q3, color=color, alpha=0.3, lw=0)
        ax.set_xlabel(xf)
        if numeric and _spans_decades(xvals):
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(xvals)), [str(v) for v in xvals])
    finite = [y for y in all_y if math.isfinite(y)]
    if finite and min(finite) > 0 and _spans_decades(finite):
        ax.set_yscale("log")
    elif finite and min(finite) >= 0 and _spans_decades(finite):
        ax.set_yscale("symlog", linthresh=min(y for y in finite if y > 0))
    band = "median, min–max band" + (", interquartile band" if len(sw.seeds) >= 4 else "")
    ax.set(ylabel=metric, title=f"refimpl sweep {sw.model} (preset {sw.preset}, seeds {_seed_text(sw.seeds)}; {band})")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(path, fig, dpi=110)
    plt.close(fig)


def _same(a, b) -> bool:
    return json.dumps(a, default=str, sort_keys=True) == json.dumps(b, default=str, sort_keys=True)


def _seed_text(seeds) -> str:
    if len(seeds) > 2 and list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))
