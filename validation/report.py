"""report.md, report.html and results.json of ``refimpl validate``, merged into what the folder
already has.

A run over a subset (``--paper li2024``, ``--only training ood``) replaces only the rows of what it
ran and keeps every other row of the existing report of the same output folder, so a rerun of one
paper never loses the others' results. The unit is the validation module: a run of a whole paper
replaces all of that paper's rows (a module since removed disappears); ``--only`` replaces the
rows of the named modules. A kept row whose profile or code version differs from the current
run's is marked ‡ in report.md and carries ``earlier_run`` (profile, code version, date) in
results.json; ``modules`` in results.json gives the provenance of every module's rows.

results.json (format ``"refimpl-results"``, version :data:`VERSION`) holds everything both reports
are drawn from: the run (profile, code version, date, software versions, engine, time per module),
every row (a :class:`refimpl.core.claims.Claim` with its ``paper`` value, its documentation
``anchors`` and its ``module``) and the documentation text the rows cite (``docs``,
:mod:`refimpl.validation.docexcerpts`). :func:`render` draws report.md and report.html from the
parsed file and the PNGs beside it, and nothing else: ``refimpl validate`` writes them through it
from the very JSON it writes, and ``refimpl report --from results.json`` (:func:`redraw`) gives the
same bytes again. A folder's results.json of version 1 (no ``format``/``version``) is still merged
by a later run; ``report --from`` reads version 2 only.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from refimpl.core.citations import doc_anchors
from refimpl.core.claims import VERDICTS, Claim
from refimpl.core.io import atomic_write_bytes, atomic_write_text, check_output_dir
from refimpl.validation import docexcerpts
from refimpl.validation import html as _html
from refimpl.validation.html import SIDE_GROUPS
from refimpl.validation.jsonable import jsonable, strict

MARK = "‡"
FORMAT = "refimpl-results"
VERSION = 2


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def check_format(data: dict, where) -> None:
    """One-line ValueError unless ``data`` is a results.json of format ``"refimpl-results"``,
    version :data:`VERSION`."""
    if "format" not in data or "version" not in data:
        missing = "format" if "format" not in data else "version"
        raise ValueError(f'{where}: no "{missing}" field (a results.json written before format version {VERSION}); '
                         f'this refimpl reads "format": "{FORMAT}", "version": {VERSION} — rerun refimpl validate')
    if data["format"] != FORMAT:
        raise ValueError(f'{where}: field "format" is {data["format"]!r}, not {FORMAT!r} (results.json version {VERSION})')
    if data["version"] != VERSION:
        raise ValueError(f'{where}: field "version" is {data["version"]!r}; this refimpl reads results.json '
                         f'version {VERSION} only')


def load_results(out_dir) -> dict | None:
    """The folder's results.json to merge into, or None (absent or unreadable). Version 1 (no
    ``format``/``version``) and version :data:`VERSION` are read; another version is a one-line
    ValueError (its rows would otherwise be lost)."""
    path = Path(out_dir) / "results.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(data, dict) and isinstance(data.get("papers"), dict)):
        return None
    if "format" in data or "version" in data:
        check_format(data, path)
    return data


def read_results(path) -> dict:
    """A results.json for :func:`redraw`: parsed and checked (format and version), or a one-line
    ValueError naming the file and what is wrong."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a results.json (a JSON object with \"format\", \"version\" and \"papers\")")
    check_format(data, path)
    if not isinstance(data.get("papers"), dict):
        raise ValueError(f'{path}: field "papers" is missing or not an object')
    return data


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
    names_in_order = list(dict.fromkeys([*module_order, *new, *kept_rows]))
    # side groups (robustness) after the papers, whatever ran first
    for paper in sorted(names_in_order, key=lambda p: p in SIDE_GROUPS):
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
    """Write report.md, report.html and results.json (merged, see the module docstring); returns the
    payload."""
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
            out.append(_normalized(r))
        rows_out[paper] = out
    kept_timings = {k: v for k, v in m["old_timings"].items()
                    if any(k.endswith(f".{paper}.{mod}") or k == f"{paper}.{mod}"
                           for paper, rows in m["papers"].items() for mod, _ in rows
                           if not (paper in new and mod in new[paper]))}
    old_docs = (old or {}).get("docs") or {}
    cited = sorted({a for rs in rows_out.values() for r in rs
                    for a in [*r["anchors"], *([r["paper"]["anchor"]] if r.get("paper") else [])]})
    found = docexcerpts.excerpts(cited)
    docs = {a: found[a] if a in found else old_docs[a] for a in cited if a in found or a in old_docs}
    payload = {
        "format": FORMAT, "version": VERSION,
        "profile": profile, "code_version": code, "created": created, "versions": versions, "engine": engine,
        "timings_s": {**kept_timings, **timings}, "modules": modules, "papers": rows_out, "docs": docs,
    }
    text = json.dumps(strict(payload), indent=2, default=jsonable, allow_nan=False)
    # both reports are drawn from the JSON as a reader of results.json sees it (report --from: same bytes)
    render(json.loads(text), out_dir, out_dir)
    atomic_write_bytes(out_dir / "results.json", text.encode())
    return payload


def _normalized(r: dict) -> dict:
    """A row with the fields of version 2 (a kept version-1 row gets its anchors and no paper value)."""
    if "anchors" in r and "paper" in r:
        return r
    return {**r, "paper": r.get("paper"), "anchors": r.get("anchors", doc_anchors(str(r.get("spec", ""))))}


def figure_names(data: dict) -> list[str]:
    """The figure files the rows of ``data`` name, in order of first appearance."""
    return list(dict.fromkeys(r["figure"] for rs in data.get("papers", {}).values() for r in rs if r.get("figure")))


def render(data: dict, out_dir, fig_dir) -> None:
    """Write report.md and report.html into ``out_dir`` from the parsed results.json ``data``, the
    figures read from ``fig_dir`` (a missing file is named as missing in report.html)."""
    out_dir, fig_dir = Path(out_dir), Path(fig_dir)
    figures = {}
    for name in figure_names(data):
        try:
            figures[name] = (fig_dir / name).read_bytes()
        except OSError:
            figures[name] = None
    atomic_write_text(out_dir / "report.md", markdown(data))
    atomic_write_text(out_dir / "report.html", _html.render(data, figures))


def redraw(results_path, out_dir=None) -> tuple[Path, Path]:
    """``refimpl report --from``: report.md and report.html again from a results.json (version
    :data:`VERSION`) and the PNGs beside it, without computing anything; into ``out_dir`` (default:
    the folder of results.json), where the figures are copied too so that report.md's links hold.
    Returns the two paths."""
    results_path = Path(results_path)
    if results_path.is_dir():
        results_path = results_path / "results.json"
    out = Path(out_dir) if out_dir is not None else results_path.parent
    check_output_dir(out, overwrite=True, what="--out")  # a file, or not writable: one line, before reading
    data = read_results(results_path)
    src = results_path.parent
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != src.resolve():
        for name in figure_names(data):
            if (src / name).is_file():
                atomic_write_bytes(out / name, (src / name).read_bytes())
    render(data, out, src)
    return out / "report.md", out / "report.html"


def _paper_cell(p: dict | None) -> str:
    if not p:
        return ""
    head = "" if p.get("kind", "paper") == "paper" else "spec reference: "
    return f"{head}{p.get('value')} ({p.get('source')})"


def markdown(data: dict) -> str:
    """report.md for the parsed results.json ``data``."""
    papers = data.get("papers", {})
    profile, code, created = data.get("profile"), data.get("code_version"), data.get("created")
    judged = {p: rs for p, rs in papers.items() if p not in SIDE_GROUPS}  # the verdict rows
    n = {v: sum(r["verdict"] == v for rs in judged.values() for r in rs) for v in VERDICTS}
    n_paper = sum(bool(r.get("paper")) for rs in judged.values() for r in rs)
    earlier = {json.dumps(r["earlier_run"], sort_keys=True): r["earlier_run"]
               for rs in papers.values() for r in rs if r.get("earlier_run")}
    lines = [
        "# refimpl validation report",
        "",
        f"Profile `{profile}` · code version `{code}` · {created or 'date unknown'} · "
        f"{n['pass']} pass, {n['fail']} fail, {n['info']} reported without a verdict.",
        "",
        "Each row is a claim of a paper checked numerically: the expectation column states the test, "
        "with its threshold; `info` rows are measurements reported without a pass/fail test. The paper "
        f"column gives, for {n_paper} rows, the paper's value of what the row measures and where it comes "
        "from (\"spec reference\": a value the spec derived from the paper or computed, not one the paper "
        "prints). report.html shows the same rows as cards, with the documentation each spec citation "
        "resolves to (docs/citations.md).",
    ]
    if earlier:
        runs = "; ".join(f"profile `{e.get('profile')}`, code version `{e.get('code_version')}`, "
                         f"{e.get('created') or 'date unknown'}" for e in earlier.values())
        lines += ["", f"Rows marked {MARK} were kept from an earlier run into this folder ({runs}): a run over "
                  "some papers or modules replaces only their rows."]
    for paper, rows in papers.items():
        lines += ["", f"## {paper}"]
        if paper in SIDE_GROUPS:
            lines += ["", SIDE_GROUPS[paper]]
        lines += ["", "| id | claim | spec | paper | measured | expected | verdict | figure |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            fig = f"[{r['figure']}]({r['figure']})" if r.get("figure") else ""
            mark = {"pass": "**pass**", "fail": "**FAIL**", "info": "info"}[r["verdict"]]
            if r.get("earlier_run"):
                e = r["earlier_run"]
                mark += f" {MARK} ({e.get('profile')}, `{str(e.get('code_version'))[:8]}`)"
            cells = [_cell(r.get(x, "")) for x in ("id", "claim", "spec")] + [_cell(_paper_cell(r.get("paper")))]
            cells += [_cell(r.get(x, "")) for x in ("measured", "expected")]
            lines.append("| " + " | ".join(cells) + f" | {mark} | {fig} |")
        for f in dict.fromkeys(r["figure"] for r in rows if r.get("figure")):
            lines += ["", f"![{f}]({f})"]
    lines.append("")
    return "\n".join(lines)


def rows_of(claims: list[Claim], module: str | None) -> list[dict]:
    return [{**asdict(c), "anchors": c.doc_anchors(), "module": module} for c in claims]
