"""report.html, the paper's values in both reports, results.json version 2 and `refimpl report --from`.

A fake validation package (tests/_fakeval.py) with rows that carry a paper value, real spec
citations and a shared figure gives a report in a fraction of a second; a second run over one paper
with another profile makes a merged report (rows kept from the earlier run, marked ‡).

The browser check opens report.html in a real headless Chromium (through Playwright, with the
system's browser: ``REFIMPL_CHROMIUM`` or ``chromium``/``chromium-browser``/``google-chrome`` on
PATH; Playwright never downloads one here) and asserts that every image loads, every in-page link
resolves, no id repeats, nothing is fetched from anywhere but the page itself, and the console
stays free of errors. Without Playwright or a browser it is skipped, saying which is missing. To
run it on a real report too: ``REFIMPL_REPORT_HTML=/path/report.html pytest tests/test_report_html.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from html import escape
from pathlib import Path

import _fakeval as F
import pytest

from refimpl.cli import main
from refimpl.core.claims import Claim, PaperValue
from refimpl.validation import report, runner

PAPERMOD = '''
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from refimpl.core.claims import Claim, PaperValue

ORDER = 2


def run(ctx):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([6, 10, 20], [3e-3, 2e-3, 1.2e-3])
    name = ctx.save_figure(fig, "e3")
    e3 = PaperValue("ICL ≈1.5e−3 at l = 20 <best>, logistic 3.5e−3", "figure E3 (α' = 0.6), read off the plot",
                    "docs/math/li2024.md#E3", numbers={{"icl": 1.5e-3, "logistic": 3.5e-3}})
    ref = PaperValue("B_oth peak @87", "spec H12 reference event steps", "docs/math/huang2023.md#H12", kind="spec")
    return [
        Claim("E3", "ICL beats classical learners", "spec L §6 E3", "ICL 1.21e-03 ({{p}})".format(p=ctx.profile),
              "ICL best or tied-best", "fail", figure=name, numbers={{"icl": 1.21e-3}}, paper=e3),
        Claim("L13a", "unseen tasks | like training tasks", "spec L13 (Theorem 3.3), E3", "error 2.5e-4", "≤ 0.01",
              "pass", figure=name, paper=PaperValue("below 1e−3", "figure E3", "docs/math/li2024.md#E3")),
        Claim("H12e-2", "phase events", "spec H12", "B_oth peak @87", "reported", "info", paper=ref),
    ]
'''
PAPERS = {"alpha": {"runs": F.RUNS, "withpaper": PAPERMOD}, "beta": {"fails": F.FAILS}}


def _quiet(*a, **k):
    pass


@pytest.fixture
def fake(tmp_path, monkeypatch):
    root = tmp_path / "pkgs"
    root.mkdir()
    pkg = F.write_package(root, tmp_path / "executions.log", papers=PAPERS)
    monkeypatch.syspath_prepend(str(root))
    F.patch_runner(monkeypatch, pkg)
    yield pkg, tmp_path / "executions.log"
    F.forget(pkg)


@pytest.fixture
def merged(fake, tmp_path):
    """A report of everything (quick), then beta rerun with the full profile: alpha's rows are ‡."""
    out = tmp_path / "out"
    runner.run_validation(None, "quick", out, log=_quiet)
    runner.run_validation(["beta"], "full", out, log=_quiet)
    return out


def _card(html: str, row_id: str) -> str:
    """The card of the (first) row ``row_id``."""
    m = re.search(r'<article class="card [a-z]+" id="c-[\w-]+">\n<div><span class="cid">'
                  + re.escape(escape(row_id)) + r"</span>.*?</article>", html, flags=re.S)
    assert m, f"no card for {row_id}"
    return m.group(0)


# ---- the paper's value beside ours --------------------------------------------------------------


def test_a_row_with_a_paper_value_shows_it_beside_ours_in_both_reports(merged):
    md = (merged / "report.md").read_text()
    assert "| id | claim | spec | paper | measured | expected | verdict | figure |" in md
    row = next(line for line in md.splitlines() if line.startswith("| E3 |"))
    cells = [c.strip() for c in row.split(" | ")]
    assert cells[3] == "ICL ≈1.5e−3 at l = 20 <best>, logistic 3.5e−3 (figure E3 (α' = 0.6), read off the plot)"
    assert cells[4] == "ICL 1.21e-03 (quick)"  # ours, in the next column
    spec_row = next(line for line in md.splitlines() if line.startswith("| H12e-2 |"))
    assert "| spec reference: B_oth peak @87 (spec H12 reference event steps) | B_oth peak @87 |" in spec_row
    no_value = next(line for line in md.splitlines() if line.startswith("| B1 |"))
    assert no_value.split(" | ")[3] == ""

    html = (merged / "report.html").read_text()
    card = _card(html, "E3")
    paper = card.index("ICL ≈1.5e−3 at l = 20 &lt;best&gt;, logistic 3.5e−3")
    ours = card.index("<tr><th>refimpl (measured)</th><td>ICL 1.21e-03 (quick)</td></tr>")
    assert card.index('<tr class="paper"><th>paper</th>') < paper < ours
    assert "figure E3 (α&#x27; = 0.6), read off the plot · quoted at " in card
    assert '<a href="#doc-li2024-E3"><code>docs/math/li2024.md#E3</code></a>' in card
    assert '<tr class="paper"><th>spec reference</th><td>B_oth peak @87' in _card(html, "H12e-2")
    assert "no value in the paper for what this row measures" in _card(html, "B1")


def test_results_json_version_2_carries_what_both_reports_need(merged):
    data = json.loads((merged / "results.json").read_text())
    assert (data["format"], data["version"]) == ("refimpl-results", 2)
    rows = {r["id"]: r for r in data["papers"]["alpha"]}
    assert rows["E3"]["paper"] == {"value": "ICL ≈1.5e−3 at l = 20 <best>, logistic 3.5e−3",
                                   "source": "figure E3 (α' = 0.6), read off the plot",
                                   "anchor": "docs/math/li2024.md#E3",
                                   "numbers": {"icl": 1.5e-3, "logistic": 3.5e-3}, "kind": "paper"}
    assert rows["E3"]["anchors"] == ["docs/math/li2024.md#L-s6", "docs/math/li2024.md#E3"]
    assert rows["L13a"]["anchors"] == ["docs/math/li2024.md#L13", "docs/math/li2024.md#E3"]
    assert rows["F1"]["paper"] is None and rows["F1"]["anchors"] == []  # "fake ref 1" cites nothing
    assert rows["E3"]["earlier_run"]["profile"] == "quick" and data["profile"] == "full"
    # the documentation text of every anchor cited, read from this checkout's docs/
    assert set(data["docs"]) == {"docs/math/li2024.md#L-s6", "docs/math/li2024.md#E3", "docs/math/li2024.md#L13",
                                 "docs/math/huang2023.md#H12"}
    assert data["docs"]["docs/math/li2024.md#E3"]["title"] == "E3 — in-context learning against classical learners"
    assert "logistic $3.5\\times10^{-3}$" in data["docs"]["docs/math/li2024.md#E3"]["text"]
    html = (merged / "report.html").read_text()
    assert '<article class="doc" id="doc-li2024-E3"><h3>E3 — in-context learning against classical learners</h3>' in html


def test_a_version_1_results_json_is_still_merged(fake, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    legacy = {"profile": "full", "code_version": "abc", "papers": {"zeta": [
        {"id": "Z1", "claim": "z", "spec": "spec Y13 (Section 3.2, Fig. 3)", "measured": "m", "expected": "e",
         "verdict": "pass", "figure": None, "numbers": {}}]}}
    (out / "results.json").write_text(json.dumps(legacy))
    runner.run_validation(["beta"], "quick", out, log=_quiet)
    data = json.loads((out / "results.json").read_text())
    z = data["papers"]["zeta"][0]
    assert z["anchors"] == ["docs/math/yang2024.md#Y13"] and z["paper"] is None and z["earlier_run"]["profile"] == "full"
    assert "Z1" in (out / "report.html").read_text()


# ---- refimpl report --from ----------------------------------------------------------------------


def test_report_from_redraws_both_reports_byte_for_byte(merged, tmp_path, capsys):
    md, html = (merged / "report.md").read_bytes(), (merged / "report.html").read_bytes()
    assert "‡" in md.decode() and b"data:image/png;base64," in html
    # into another folder: the same bytes, and the figures come along for report.md's links
    again = tmp_path / "again"
    assert main(["report", "--from", str(merged / "results.json"), "--out", str(again)]) == 0
    assert "nothing recomputed" in capsys.readouterr().out
    assert (again / "report.md").read_bytes() == md and (again / "report.html").read_bytes() == html
    assert sorted(p.name for p in again.glob("*.png")) == ["alpha_e3.png", "alpha_runs.png"]
    assert not (again / "results.json").exists()
    # in place, after the reports were deleted; and from the folder instead of the file
    (merged / "report.md").unlink()
    (merged / "report.html").unlink()
    assert main(["report", "--from", str(merged)]) == 0
    assert (merged / "report.md").read_bytes() == md and (merged / "report.html").read_bytes() == html


def test_report_html_is_self_contained(merged):
    html = (merged / "report.html").read_text()
    assert not re.search(r"(?:src|href)=\"(?!#|data:image/png;base64,)", html)  # in-page links, embedded PNGs
    assert "<script" not in html and "http://" not in html and "https://" not in html
    # each figure once, where it is first shown; the second row using it links there
    assert html.count('alt="alpha_e3.png"') == 1
    assert 'Figure <a href="#fig-alpha_e3">alpha_e3.png</a> (shown with <a href="#c-alpha-2">E3</a>)' in html


def test_a_missing_figure_is_named_not_broken(merged, tmp_path):
    (merged / "alpha_runs.png").unlink()
    report.redraw(merged / "results.json", tmp_path / "again")
    html = (tmp_path / "again" / "report.html").read_text()
    assert '<p class="missing" id="fig-alpha_runs">Figure alpha_runs.png: not found beside results.json' in html
    assert html.count("<img ") == 1


@pytest.mark.parametrize("edit, message", [
    ({"version": 3}, 'field "version" is 3; this refimpl reads results.json version 2 only'),
    ({"version": None}, 'field "version" is None; this refimpl reads results.json version 2 only'),
    ({"format": "other"}, "field \"format\" is 'other', not 'refimpl-results' (results.json version 2)"),
    ({"drop": "version"}, 'no "version" field (a results.json written before format version 2)'),
])
def test_report_from_refuses_an_unknown_version_in_one_line(merged, capsys, edit, message):
    data = json.loads((merged / "results.json").read_text())
    if "drop" in edit:
        del data[edit["drop"]]
    else:
        data.update(edit)
    (merged / "results.json").write_text(json.dumps(data))
    before = (merged / "report.html").read_bytes()
    assert main(["report", "--from", str(merged / "results.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("refimpl: error: ") and message in err, err
    assert (merged / "report.html").read_bytes() == before  # nothing written


def test_report_from_names_a_missing_or_broken_file(tmp_path, capsys):
    assert main(["report", "--from", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: cannot be read" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{")
    assert main(["report", "--from", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: not JSON" in capsys.readouterr().err


def test_validate_refuses_to_merge_into_an_unknown_version_before_any_work(fake, tmp_path):
    pkg, log = fake
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"format": "refimpl-results", "version": 9, "papers": {}}))
    with pytest.raises(ValueError, match='field "version" is 9'):
        runner.run_validation(["alpha"], "quick", out, log=_quiet)
    assert F.executions(log) == []


# ---- Claim and PaperValue -----------------------------------------------------------------------


def test_paper_value_and_claim_check_their_fields():
    with pytest.raises(ValueError, match="kind must be one of"):
        PaperValue("v", "s", "docs/math/li2024.md#E1", kind="guess")
    with pytest.raises(ValueError, match="anchor must be a documentation anchor"):
        PaperValue("v", "s", "li2024.md#E1")
    with pytest.raises(ValueError, match="needs a value and a source"):
        PaperValue("", "s", "docs/math/li2024.md#E1")
    with pytest.raises(TypeError, match="paper must be a PaperValue"):
        Claim("X", "c", "spec L7", "m", "e", "pass", paper={"value": "v"})
    c = Claim("X", "c", "spec L13 (b), L3 (Condition 3.2)", "m", "e", "pass")
    assert c.paper is None and c.doc_anchors() == ["docs/math/li2024.md#L13", "docs/math/li2024.md#L13b",
                                                   "docs/math/li2024.md#L3"]


# ---- the browser check --------------------------------------------------------------------------

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
PAGE_CHECKS = """async () => {
  const imgs = [...document.images];
  const decoded = await Promise.all(imgs.map(i => i.decode().then(() => true, () => false)));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
  const local = links.filter(h => h.startsWith('#'));
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  return {
    images: imgs.map((i, k) => ({alt: i.alt, width: i.naturalWidth, height: i.naturalHeight, decoded: decoded[k]})),
    links: local.length,
    broken: local.filter(h => !document.getElementById(decodeURIComponent(h.slice(1)))),
    other_links: links.filter(h => !h.startsWith('#')),
    duplicate_ids: ids.filter((x, k) => ids.indexOf(x) !== k),
    cards: document.querySelectorAll('article.card').length,
  };
}"""


def _browser() -> str:
    path = os.environ.get("REFIMPL_CHROMIUM")
    if path:
        return path
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium installed (looked for REFIMPL_CHROMIUM, chromium, chromium-browser, google-chrome)")


def check_in_browser(page_path: Path) -> dict:
    """Open ``page_path`` in headless Chromium; return what the page checks found, the console
    messages, page errors and every URL the page requested."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright not installed (pip install playwright; "
                                   "it drives the system's Chromium, no browser download needed)")
    exe = _browser()
    url = Path(page_path).resolve().as_uri()
    console, errors, requests = [], [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            found = page.evaluate(PAGE_CHECKS)
        finally:
            browser.close()
    found.update(console=console, errors=errors, requests=[u for u in requests if not u.startswith("data:")], url=url)
    return found


def assert_page_ok(found: dict) -> None:
    bad_images = [i for i in found["images"] if not (i["decoded"] and i["width"] > 0 and i["height"] > 0)]
    assert not bad_images, f"images that did not load: {bad_images}"
    assert not found["broken"], f"in-page links without a target: {found['broken']}"
    assert not found["duplicate_ids"], f"ids used twice: {found['duplicate_ids']}"
    assert not found["other_links"], f"links out of the page: {found['other_links']}"
    assert found["requests"] == [found["url"]], f"the page fetched more than itself: {found['requests']}"
    assert not [m for m in found["console"] if m[0] == "error"], f"console errors: {found['console']}"
    assert not found["errors"], f"page errors: {found['errors']}"


def _summary(found: dict) -> str:
    return (f"{found['cards']} cards, {len(found['images'])} images loaded (naturalWidth > 0), {found['links']} "
            f"in-page links resolved, {len(found['console'])} console messages, {len(found['errors'])} page errors, "
            f"requests: {len(found['requests'])} (the page itself)")


def test_report_html_in_a_real_browser(merged):
    found = check_in_browser(merged / "report.html")
    assert_page_ok(found)
    assert found["cards"] == 6 and len(found["images"]) == 2 and found["links"] > 10
    print("browser check (fake report):", _summary(found))


@pytest.mark.skipif(not os.environ.get("REFIMPL_REPORT_HTML"),
                    reason="set REFIMPL_REPORT_HTML=path/report.html[:more] to check real reports in the browser")
@pytest.mark.parametrize("k", range(4))
def test_real_report_html_in_a_real_browser(k):
    paths = os.environ["REFIMPL_REPORT_HTML"].split(os.pathsep)
    if k >= len(paths):
        pytest.skip("fewer reports given")
    found = check_in_browser(Path(paths[k]))
    assert_page_ok(found)
    print(f"browser check ({paths[k]}):", _summary(found))


def test_the_browser_check_fails_on_a_broken_page(tmp_path):
    """The check is not vacuous: a broken image, a dangling link, a console error, a repeated id
    and a fetch of another file are each caught."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><a href="#nowhere">x</a><p id="a"></p><p id="a"></p>'
                    '<img alt="bad" src="data:image/png;base64,AAAA"><img alt="other" src="other.png">'
                    "<script>console.error('boom')</script></body></html>")
    found = check_in_browser(page)
    assert found["broken"] == ["#nowhere"] and found["duplicate_ids"] == ["a"]
    assert sorted(i["alt"] for i in found["images"] if i["width"] == 0) == ["bad", "other"]
    assert ("error", "boom") in found["console"] and any(u.endswith("/other.png") for u in found["requests"])
    with pytest.raises(AssertionError, match="images that did not load"):
        assert_page_ok(found)
