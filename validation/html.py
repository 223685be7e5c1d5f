"""report.html: the validation report as one self-contained page (no network, no script).

:func:`render` turns the data of a results.json (format version 2, already parsed) and the bytes of
its PNG figures into the page; it reads nothing else (no clock, no environment), so ``refimpl
report --from results.json`` redraws the page ``refimpl validate`` wrote byte for byte.

Layout:

- a summary: counts per verdict per paper, profile, code version, the run's date, software versions
  and engine, links to the failing claims;
- one section per paper with an index of its rows, then one card per claim: the statement, the
  spec citation with links to the documentation it cites, a "paper vs refimpl" table (the paper's
  value and where it comes from beside the measured value, the expectation tested, the verdict),
  the figure, and a collapsible block with the raw numbers and the row's provenance;
- "Documentation cited": for every anchor a row cites, its path from the repository root
  (``docs/math/li2024.md#E1``: it resolves for anyone with the repository, the page and its
  anchors are the Markdown source's) and the Markdown text under it, as stored in results.json
  when the report was written from a checkout. Citation links point to these in-page entries, so
  they work without the repository and without a built documentation site.

Figures are embedded once, as ``data:`` URIs, in the first card that shows them; later cards using
the same figure link to it (a figure is often shared by several rows, and the PNGs are the bulk of
the page). A row kept from an earlier run into the folder is marked ‡ with that run's profile, code
version and date.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from html import escape

from refimpl.core.claims import VERDICTS

# groups reported beside the verdict rows, not counted with them (validation/robustness)
SIDE_GROUPS = {"robustness": (
    "Beside the verdict rows, not counted in them: each failing row re-checked by its own check and "
    "threshold under other [C] settings (choices the paper leaves open), several seeds per setting. "
    "A pass here is a setting where the claim holds; a row that fails under every setting fails "
    "whatever we chose. The reading of each study is in docs/robustness.md.")}

MARK = "‡"
CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}
main,header.top{max-width:1180px;margin:0 auto;padding:0 20px}
header.top{padding-top:18px}
h1{font-size:26px;margin:8px 0}
h2{font-size:21px;margin:34px 0 10px;border-bottom:2px solid #d0d4da;padding-bottom:4px}
h3{font-size:16px;margin:0;display:inline}
table{border-collapse:collapse}
th,td{text-align:left;vertical-align:top;padding:4px 8px}
table.grid th,table.grid td{border:1px solid #d0d4da}
table.grid{background:#fff;margin:6px 0}
.muted{color:#5b616b}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}
.v{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;text-transform:uppercase}
.v.pass{background:#dff3e4;color:#175e2c}.v.fail{background:#fbe1e0;color:#8c1d18}.v.info{background:#e6ecf5;color:#2c4a78}
.card{background:#fff;border:1px solid #d0d4da;border-left:6px solid #9aa3ae;border-radius:6px;margin:16px 0;padding:12px 16px}
.card.pass{border-left-color:#2f9e55}.card.fail{border-left-color:#c9302c}.card.info{border-left-color:#5b7db1}
.cid{font-weight:700;margin-right:8px}
.cite{margin:6px 0 8px;font-size:14px}
table.cmp{width:100%;margin:6px 0}
table.cmp th{width:170px;color:#3b4048;background:#f2f4f7;border:1px solid #e1e4e8}
table.cmp td{border:1px solid #e1e4e8;white-space:pre-wrap;overflow-wrap:anywhere}
table.cmp tr.paper td{background:#fffbea}
table.cmp tr.paper.none td{background:#fafafa;color:#5b616b}
.src{font-size:13px;color:#5b616b;margin-top:3px;white-space:normal}
figure{margin:10px 0}
figure img{max-width:100%;height:auto;border:1px solid #e1e4e8}
figcaption,.figref{font-size:13px;color:#5b616b}
details{margin-top:8px}
summary{cursor:pointer;color:#2c4a78}
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:8px;overflow:auto;max-height:420px;font-size:12px;
 white-space:pre-wrap;overflow-wrap:anywhere}
.earlier{color:#8a5a00;font-size:13px;margin-left:8px}
.doc{background:#fff;border:1px solid #d0d4da;border-radius:6px;margin:12px 0;padding:10px 14px}
.doc pre{max-height:none;background:#fbfbfc}
.missing{color:#8c1d18}
"""


def _e(text) -> str:
    return escape("" if text is None else str(text), quote=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def doc_id(anchor: str) -> str:
    """The in-page id of a documentation anchor: ``docs/math/li2024.md#E1`` → ``doc-li2024-E1``."""
    page, _, name = anchor.partition("#")
    stem = page.rsplit("/", 1)[-1].removesuffix(".md")
    return "doc-" + _slug(f"{stem}-{name}" if name else stem)


def fig_id(name: str) -> str:
    return "fig-" + _slug(name.removesuffix(".png"))


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None if ``data`` is not a PNG."""
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


def _verdict(v: str) -> str:
    return f'<span class="v {_e(v)}">{_e(v)}</span>'


def _doc_link(anchor: str) -> str:
    return f'<a href="#{doc_id(anchor)}"><code>{_e(anchor)}</code></a>'


def _run_text(e: dict | None) -> str:
    e = e or {}
    return (f"profile {e.get('profile')}, code version {e.get('code_version')}, "
            f"{e.get('created') or 'date unknown'}")


def _paper_row(p: dict | None) -> str:
    if not p:
        return ('<tr class="paper none"><th>paper</th><td>— (no value in the paper for what this row '
                'measures)</td></tr>')
    head = "paper" if p.get("kind", "paper") == "paper" else "spec reference"
    where = f" · quoted at {_doc_link(p['anchor'])}" if p.get("anchor") else ""
    return (f'<tr class="paper"><th>{head}</th><td>{_e(p.get("value"))}'
            f'<div class="src">{_e(p.get("source"))}{where}</div></td></tr>')


def _card(data: dict, paper: str, k: int, r: dict, shown: dict) -> str:
    v = r.get("verdict", "info")
    cid = f"c-{_slug(paper)}-{k}"
    earlier = ""
    if r.get("earlier_run"):
        earlier = f'<span class="earlier">{MARK} kept from an earlier run ({_e(_run_text(r["earlier_run"]))})</span>'
    anchors = r.get("anchors") or []
    cite = _e(r.get("spec"))
    if anchors:
        cite += " — " + ", ".join(_doc_link(a) for a in anchors)
    out = [f'<article class="card {_e(v)}" id="{cid}">',
           f'<div><span class="cid">{_e(r.get("id"))}</span>{_verdict(v)}{earlier}</div>',
           f'<h3>{_e(r.get("claim"))}</h3>',
           f'<p class="cite">{cite}</p>',
           '<table class="cmp">', _paper_row(r.get("paper")),
           f'<tr><th>refimpl (measured)</th><td>{_e(r.get("measured"))}</td></tr>',
           f'<tr><th>expected (the test)</th><td>{_e(r.get("expected"))}</td></tr>',
           f'<tr><th>verdict</th><td>{_verdict(v)}</td></tr>', "</table>"]
    fig = r.get("figure")
    if fig:
        if fig in shown:
            first_paper, first_k, first_id = shown[fig]
            out.append(f'<p class="figref">Figure <a href="#{fig_id(fig)}">{_e(fig)}</a> (shown with '
                       f'<a href="#c-{_slug(first_paper)}-{first_k}">{_e(first_id)}</a>).</p>')
        else:
            shown[fig] = (paper, k, r.get("id"))
            png = data["_figures"].get(fig)
            if png is None:
                out.append(f'<p class="missing" id="{fig_id(fig)}">Figure {_e(fig)}: not found beside results.json '
                           f'when this page was written.</p>')
            else:
                size = png_size(png)
                wh = f' width="{size[0]}" height="{size[1]}"' if size else ""
                src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
                out.append(f'<figure id="{fig_id(fig)}"><img src="{src}" alt="{_e(fig)}"{wh} loading="eager">'
                           f"<figcaption>{_e(fig)}</figcaption></figure>")
    mod = r.get("module")
    prov = data.get("modules", {}).get(f"{paper}.{mod}") if mod is not None else None
    secs = data.get("timings_s", {}).get(f"refimpl.validation.{paper}.{mod}") if mod is not None else None
    rows = [("module", f"refimpl.validation.{paper}.{mod}" if mod is not None else "not recorded"),
            ("run", _run_text(r.get("earlier_run") or prov or data))]
    if secs is not None:
        rows.append(("module time", f"{secs} s"))
    details = "".join(f"<tr><th>{_e(a)}</th><td>{_e(b)}</td></tr>" for a, b in rows)
    numbers = json.dumps(r.get("numbers", {}), indent=1, ensure_ascii=False)
    out.append(f'<details><summary>raw numbers and provenance</summary><table class="grid">{details}</table>'
               f"<pre>{_e(numbers)}</pre>")
    if r.get("paper") and r["paper"].get("numbers") is not None:
        out.append(f'<p class="muted">paper value, machine-readable:</p>'
                   f'<pre>{_e(json.dumps(r["paper"]["numbers"], indent=1, ensure_ascii=False))}</pre>')
    out.append("</details></article>")
    return "\n".join(out)


def _summary(data: dict) -> str:
    papers = data.get("papers", {})
    head = "<tr><th>paper</th>" + "".join(f"<th>{v}</th>" for v in VERDICTS) + \
        "<th>rows</th><th>with a paper value</th><th>kept from earlier runs (‡)</th></tr>"
    body, tot = [], {v: 0 for v in (*VERDICTS, "rows", "paper", "earlier")}
    for paper, rows in papers.items():
        n = {v: sum(r.get("verdict") == v for r in rows) for v in VERDICTS}
        n["rows"], n["paper"] = len(rows), sum(bool(r.get("paper")) for r in rows)
        n["earlier"] = sum(bool(r.get("earlier_run")) for r in rows)
        for key in tot:
            tot[key] += 0 if paper in SIDE_GROUPS else n[key]
        body.append(f'<tr><td><a href="#paper-{_slug(paper)}">{_e(paper)}</a></td>'
                    + "".join(f"<td>{n[v]}</td>" for v in VERDICTS)
                    + f"<td>{n['rows']}</td><td>{n['paper']}</td><td>{n['earlier']}</td></tr>")
    body.append("<tr><th>all papers</th>" + "".join(f"<th>{tot[v]}</th>" for v in VERDICTS)
                + f"<th>{tot['rows']}</th><th>{tot['paper']}</th><th>{tot['earlier']}</th></tr>")
    fails = [(p, k, r) for p, rows in papers.items() for k, r in enumerate(rows, 1)
             if r.get("verdict") == "fail" and p not in SIDE_GROUPS]
    fail_html = ("<p>Failing claims: " + ", ".join(f'<a href="#c-{_slug(p)}-{k}">{_e(p)} {_e(r.get("id"))}</a>'
                                                  for p, k, r in fails) + ".</p>") if fails else "<p>No failing claim.</p>"
    versions = data.get("versions") or {}
    engine = data.get("engine") or {}
    vrows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in versions.items())
    erows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in engine.items())
    trows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)} s</td></tr>" for k, v in (data.get("timings_s") or {}).items())
    return "\n".join([
        f'<p>Profile <b>{_e(data.get("profile"))}</b> · code version <code>{_e(data.get("code_version"))}</code> · '
        f'{_e(data.get("created") or "date unknown")} · refimpl {_e(versions.get("refimpl"))}</p>',
        f'<table class="grid">{head}{"".join(body)}</table>', fail_html,
        '<details><summary>software versions, engine, time per module</summary>'
        f'<table class="grid"><tr><th colspan="2">versions</th></tr>{vrows}'
        f'<tr><th colspan="2">engine</th></tr>{erows}<tr><th colspan="2">time per module</th></tr>{trows}</table>'
        "</details>",
        "<p class=\"muted\">Each card is a claim of a paper checked numerically: the paper's value of what the row "
        "measures and where it comes from (\"spec reference\": a value the spec derived from the paper or computed, "
        "not one the paper prints) beside what refimpl measured; \"expected\" states the test and its threshold; "
        "<code>info</code> rows are reported without a verdict. Citation links go to the documentation text at the "
        "end of this page; each names its Markdown source by its path from the repository root "
        "(<code>docs/math/li2024.md#E1</code>).</p>",
    ])


def _docs_section(data: dict, cited: list[str]) -> str:
    docs = data.get("docs") or {}
    out = ['<section id="docs"><h2>Documentation cited</h2>',
           '<p class="muted">The text under each anchor of the project\'s documentation that a row cites, as it was '
           "when the report was written (Markdown source; formulas in LaTeX). Paths are relative to the repository "
           "root.</p>"]
    for a in cited:
        ex = docs.get(a)
        title = ex.get("title") if ex else a.partition("#")[2] or a
        text = (f"<pre>{_e(ex.get('text'))}</pre>" if ex else
                '<p class="muted">(not found in a documentation folder when this report was written)</p>')
        out.append(f'<article class="doc" id="{doc_id(a)}"><h3>{_e(title)}</h3>'
                   f'<p><code>{_e(a)}</code></p>{text}</article>')
    out.append("</section>")
    return "\n".join(out)


def cited_anchors(data: dict) -> list[str]:
    """Every documentation anchor the rows cite (their ``anchors`` and their paper values'), in
    order of first appearance."""
    seen: dict[str, None] = {}
    for rows in data.get("papers", {}).values():
        for r in rows:
            for a in r.get("anchors") or []:
                seen[a] = None
            if r.get("paper") and r["paper"].get("anchor"):
                seen[r["paper"]["anchor"]] = None
    return list(seen)


def render(data: dict, figures: dict[str, bytes | None]) -> str:
    """report.html for the parsed results.json ``data``; ``figures`` maps each figure file name the
    rows name to its PNG bytes (None: missing)."""
    data = {**data, "_figures": figures}
    papers = data.get("papers", {})
    shown: dict = {}
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>refimpl validation report ({_e(data.get('profile'))})</title>",
             f"<style>{CSS}</style>", "</head>", "<body>", '<header class="top">',
             "<h1>refimpl validation report</h1>", _summary(data), "</header>", "<main>"]
    for paper, rows in papers.items():
        idx = "".join(f'<tr><td><a href="#c-{_slug(paper)}-{k}">{_e(r.get("id"))}</a></td><td>{_verdict(r.get("verdict"))}'
                      f'{" " + MARK if r.get("earlier_run") else ""}</td><td>{_e(r.get("claim"))}</td>'
                      f'<td>{"✓" if r.get("paper") else ""}</td></tr>'
                      for k, r in enumerate(rows, 1))
        parts += [f'<section id="paper-{_slug(paper)}"><h2>{_e(paper)}</h2>'
                  + (f'<p>{_e(SIDE_GROUPS[paper])}</p>' if paper in SIDE_GROUPS else ""),
                  f'<table class="grid"><tr><th>id</th><th>verdict</th><th>claim</th><th>paper value</th></tr>{idx}</table>']
        parts += [_card(data, paper, k, r, shown) for k, r in enumerate(rows, 1)]
        parts.append("</section>")
    parts += [_docs_section(data, cited_anchors(data)), "</main>", "</body>", "</html>", ""]
    return "\n".join(parts)
