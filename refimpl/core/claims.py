"""A claim of a paper checked numerically: the record every check returns and the report prints.

Checks live beside the models (``refimpl.<paper>.checks``): each compares measured numbers with an
expectation written before the data and returns a :class:`Claim`. The validation runner
(``refimpl.validation.runner``) collects them into ``report.md`` and ``results.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VERDICTS = ("pass", "fail", "info")


@dataclass
class Claim:
    """One row of the report: a claim of the paper, what we measured and the verdict."""

    id: str  # e.g. "L13a"
    claim: str  # the statement checked
    spec: str  # e.g. "spec L13 (Theorem 3.3)"
    measured: str  # human-readable measurement
    expected: str  # the expectation the verdict tests, with its threshold
    verdict: str  # "pass", "fail" or "info" (reported, not judged)
    figure: str | None = None  # PNG file name inside the output folder
    numbers: dict = field(default_factory=dict)  # machine-readable measurements

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def verdict(ok: bool) -> str:
    """``"pass"`` if ``ok`` else ``"fail"``."""
    return "pass" if ok else "fail"
