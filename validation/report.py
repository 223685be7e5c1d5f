"""report.md and results.json of ``refimpl validate``, merged into what the folder already has.

A run over a subset (``--paper li2024``, ``--only training ood``) replaces only the rows of what it
ran and keeps every other row of the existing report of the same output folder, so a rerun of one
paper never loses the others' results. The unit is the validation module: a run of a whole paper
replaces all of that paper's rows (a module since removed disappears); ``--only`` replaces the
rows of the named modules. A kept row whose profile or code version differs from the current
run's is marked ‡ in report.md and carries ``earlier_run`` (profile, code version, date) in
results.json; ``modules`` in results.json gives the provenance of every module's rows.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from refimpl.core.claims import VERDICTS, Claim
from refimpl.core.io import atomic_write_bytes, atomic_write_text
from refimpl.validation.jsonable import jsonable, strict

MARK = "‡"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def load_results(out_dir) -> dict | None:
    """The folder's results.json, or None (absent or unreadable)."""
    path = Path(out_dir) / "results.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("papers"), dict) else None


def merge(old: dict | None, new: dict, scope: dict, module_order: dict) -> dict:
    """Merge the rows of this run into ``old``.

    ``new`` is {paper: {module: [row, ...]}} for what ran; ``scope`` {paper: None | set(modules)}
    says what ran (None: the whole paper); ``module_order`` {paper: [module names]}; each row is a
    claim's dict with ``module``. Returns {"papers": ..., "modules": ..., "timings_s": ...} parts
    of the kept rows and modules (``modules``/``timings_s`` of old entries still present)."""
    old = old or {}
    old_papers = old.get("papers", {})
    old_mods = old.get("modules", {})
    legacy_prov = {"profile": old.get("profile"), "code_version": old.get("code_version"), "created": old.get("created")}
    kept_rows: dict[str, dict[str | None, list]] = {}
    kept_prov: dict[str, dict] = {}
    for paper, rows in old_papers.items():
        if paper in scope and scope[paper] is None:
            continue
        ran = scope.get(paper, set())
        new_ids = {r["id"] for rs in new.get(paper, {}).values() for r in rs}
        for r in rows:
            m = r.get("module")
            if m is not None and m in ran:
                continue
            if m is None and paper in scope and r.get("id") in new_ids:
                continue  # a legacy row (no module recorded) replaced by the same claim
            kept_rows.setdefault(paper, {}).setdefault(m, []).append(r)
            kept_prov[f"{paper}.{m}"] = old_mods.get(f"{paper}.{m}", legacy_prov)
    papers = {}
    for paper in dict.fromkeys([*module_order, *new, *kept_rows]):
        groups = dict(kept_rows.get(paper, {}))
        groups.update(new.get(paper, {}))
        if not groups:
            continue
        order = module_order.get(paper, [])
        names = sorted(groups, key=lambda m: (order.index(m) if m in order else len(order), m is None, str(m)))
        papers[paper] = [(m, r) for m in names for r in groups[m]]
    return {"papers": papers, "kept_prov": kept_prov, "old_timings": old.get("timings_s", {})}


def write(out_dir, *, new: dict, scope: dict, module_order: dict, profile: str, code: str, timings: dict,
          versions: dict, engine: dict, merge_into_existing: bool = True) -> dict:
    """Write report.md and results.json (merged, see the module docstring); returns the payload."""
    out_dir = Path(out_dir)
    created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    cur = {"profile": profile, "code_version": code, "created": created}
    old = load_results(out_dir) if merge_into_existing else None
    m = merge(old, new, scope, module_order)
    modules, rows_out = {}, {}
    for paper, rows in m["papers"].items():
        out = []
        for mod, r in rows:
            key = f"{paper}.{mod}"
            if paper in new and mod in new[paper]:
                modules[key] = cur
                r = {k: v for k, v in r.items() if k != "earlier_run"}
            else:
                prov = m["kept_prov"].get(key, cur)
                modules[key] = prov
                if (prov.get("profile"), prov.get("code_version")) != (profile, code) and "earlier_run" not in r:
                    r = {**r, "earlier_run": prov}
            out.append(r)
        rows_out[paper] = out
    kept_timings = {k: v for k, v in m["old_timings"].items()
                    if any(k.endswith(f".{paper}.{mod}") or k == f"{paper}.{mod}"
                           for paper, rows in m["papers"].items() for mod, _ in rows
                           if not (paper in new and mod in new[paper]))}
    payload = {
        "profile": profile, "code_version": code, "created": created, "versions": versions, "engine": engine,
        "timings_s": {**kept_timings, **timings}, "modules": modules, "papers": rows_out,
    }
    _write_markdown(out_dir, rows_out, profile, code, created)
    text = json.dumps(strict(payload), indent=2, default=jsonable, allow_nan=False)
    atomic_write_bytes(out_dir / "results.json", text.encode())
    return payload


def _write_markdown(out_dir: Path, papers: dict, profile: str, code: str, created: str) -> None:
    n = {v: sum(r["verdict"] == v for rs in papers.values() for r in rs) for v in VERDICTS}
    earlier = {json.dumps(r["earlier_run"], sort_keys=True): r["earlier_run"]
               for rs in papers.values() for r in rs if r.get("earlier_run")}
    lines = [
        "# refimpl validation report",
        "",
        f"Profile `{profile}` · code version `{code}` · {created} · "
        f"{n['pass']} pass, {n['fail']} fail, {n['info']} reported without a verdict.",
        "",
        "Each row is a claim of a paper checked numerically: the expectation column states the test, "
        "with its threshold; `info` rows are measurements reported without a pass/fail test.",
    ]
    if earlier:
        runs = "; ".join(f"profile `{e.get('profile')}`, code version `{e.get('code_version')}`, "
                         f"{e.get('created') or 'date unknown'}" for e in earlier.values())
        lines += ["", f"Rows marked {MARK} were kept from an earlier run into this folder ({runs}): a run over "
                  "some papers or modules replaces only their rows."]
    for paper, rows in papers.items():
        lines += ["", f"## {paper}", "", "| id | claim | spec | measured | expected | verdict | figure |",
                  "|---|---|---|---|---|---|---|"]
        for r in rows:
            fig = f"[{r['figure']}]({r['figure']})" if r.get("figure") else ""
            mark = {"pass": "**pass**", "fail": "**FAIL**", "info": "info"}[r["verdict"]]
            if r.get("earlier_run"):
                e = r["earlier_run"]
                mark += f" {MARK} ({e.get('profile')}, `{str(e.get('code_version'))[:8]}`)"
            lines.append("| " + " | ".join(_cell(r.get(x, "")) for x in ("id", "claim", "spec", "measured", "expected"))
                         + f" | {mark} | {fig} |")
        for f in dict.fromkeys(r["figure"] for r in rows if r.get("figure")):
            lines += ["", f"![{f}]({f})"]
    lines.append("")
    atomic_write_text(out_dir / "report.md", "\n".join(lines))


def rows_of(claims: list[Claim], module: str | None) -> list[dict]:
    return [{**asdict(c), "module": module} for c in claims]
