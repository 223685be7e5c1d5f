"""Validation modules run by ``refimpl validate``: one subpackage per paper, one module per
theorem check or figure, each with ``run(ctx) -> list[refimpl.report.Claim]``."""
