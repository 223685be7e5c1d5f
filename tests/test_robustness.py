"""The robustness group (validation/robustness): opt-in selection, the grid's rules, its place in
both reports (beside the verdict rows, not counted with them), and the L13c study at a tiny size
judged exactly as the row's own check judges the same runs."""

from __future__ import annotations

import pytest

from refimpl.li2024 import preset
from refimpl.li2024.checks import generalization as gchecks
from refimpl.validation import html, report, runner
from refimpl.validation.context import Context
from refimpl.validation.robustness import _study as S
from refimpl.validation.robustness import l13c

DIMS = [S.Dim("a", "A (profile 1)", "r"), S.Dim("b", "B (profile 2)", "r"), S.Dim("c", "C (profile 3)", "r")]


def test_robustness_runs_only_when_named():
    chosen, _, _ = runner.select(None, None)
    assert "robustness" not in chosen and {"li2024", "yang2024", "huang2023"} <= set(chosen)
    chosen, _, order = runner.select(["robustness"], None)
    assert list(chosen) == ["robustness"] and "l13c" in order["robustness"]


@pytest.mark.parametrize("settings, message", [
    ([S.Setting("profile"), S.Setting("x", ("a",)), S.Setting("x", ("b",))], "unique"),
    ([S.Setting("profile"), S.Setting("x", ("z",))], "undeclared"),
    ([S.Setting("x", ("a",)), S.Setting("y", ("b",)), S.Setting("w", ("c",))], "exactly one"),
    ([S.Setting("profile"), S.Setting("x", ("a",)), S.Setting("y", ("b",))], "at least 3"),
])
def test_a_grid_that_breaks_a_rule_is_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        S.check_grid(DIMS, settings)


def _row(i, verdict):
    return {"id": i, "claim": "c", "spec": "spec L13", "measured": "m", "expected": "e", "verdict": verdict,
            "figure": None, "numbers": {}, "paper": None, "anchors": [], "module": "m"}


def test_robustness_rows_sit_beside_the_verdict_rows_and_are_not_counted():
    data = {"format": "refimpl-validation-results", "version": 2, "profile": "quick", "code_version": "x",
            "papers": {"li2024": [_row("L13c", "fail"), _row("L13a", "pass")],
                       "robustness": [_row("L13c · dimensions", "info"), _row("L13c · lr=2", "pass"),
                                      _row("L13c · profile", "fail"), _row("L13c · delta=1", "fail")]}}
    md = report.markdown(data)
    assert "1 pass, 1 fail, 0 reported without a verdict" in md
    head, _, side = md.partition("## robustness")
    assert "L13c · lr=2" in side and "Beside the verdict rows, not counted in them" in side
    page = html.render(data, {})
    # the totals row counts the papers' rows only; the failing-claims list names li2024's fail only
    assert "<tr><th>all papers</th><th>1</th><th>1</th><th>0</th><th>2</th>" in page
    fails = page.split("Failing claims: ")[1].split("</p>")[0]
    assert "li2024 L13c" in fails and "robustness" not in fails


def test_l13c_study_at_a_tiny_size_judges_each_setting_by_the_rows_own_check(tmp_path, monkeypatch):
    settings = [l13c._s("profile", ()), l13c._s("thr=0.3", ("thr",), thr=0.3),
                l13c._s("lr=2.0", ("lr",), "train", "lr", 2.0), l13c._s("delta=0.8", ("delta",), "model", "delta", 0.8)]
    monkeypatch.setitem(l13c.SETTINGS, "quick", settings)
    monkeypatch.setitem(l13c.SEEDS, "quick", (0,))
    monkeypatch.setattr(l13c, "ALPHAS", (0.7, 0.85, 1.0))
    rows = l13c.run(Context("robustness", "quick", tmp_path, progress=False))
    assert [r.id for r in rows] == ["L13c · dimensions"] + [f"L13c · {s.name}" for s in settings]
    assert rows[0].verdict == "info" and rows[0].numbers["seeds"] == [0]
    assert (tmp_path / rows[0].figure).exists() and rows[0].figure == "robustness_L13c.png"
    # the lr=2.0 setting, re-checked from scratch by the row's own check: same verdict and numbers
    from refimpl.li2024.checks import plain_fit
    own = gchecks.check_l13c_iterations_vs_alpha(plain_fit, preset("default").replace(train={"lr": 2.0}),
                                                 l13c.ALPHAS, (0,))
    r = rows[3]
    assert r.verdict == own.verdict and r.measured == own.measured and r.expected == own.expected
    assert r.numbers["setting"] == "lr=2.0" and r.numbers["dims"] == ["lr"] and r.numbers["overrides"] == {
        "train": {"lr": 2.0}}
    assert rows[2].numbers["threshold"] == 0.3 and rows[1].numbers["threshold"] == gchecks.L13C_THRESHOLD


def test_a_robustness_run_merged_into_a_report_comes_after_the_papers():
    old = {"papers": {"li2024": [_row("L13c", "fail")]}, "modules": {}}
    new = {"robustness": {"l13c": [_row("L13c · profile", "fail")]}}
    merged = report.merge(old, new, {"robustness": None}, {"robustness": ["l13c"]})
    assert list(merged["papers"]) == ["li2024", "robustness"]
