"""A claim of a paper checked numerically: the record every check returns and the report prints.

Checks live beside the models (``refimpl.<paper>.checks``): each compares measured numbers with an
expectation written before the data and returns a :class:`Claim`. The validation runner
(``refimpl.validation.runner``) collects them into ``report.md``, ``report.html`` and
``results.json``.

A claim carries, where the paper gives one, the paper's value of what the row measures
(:class:`PaperValue`: the value as the paper states it, where in the paper it comes from, the
documentation anchor that quotes it), so the reports show the paper's number beside ours. Its
``spec`` citation names the documentation anchors of the claim (:meth:`Claim.doc_anchors`, by the
rule of ``docs/citations.md``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from refimpl.core.citations import doc_anchors

VERDICTS = ("pass", "fail", "info")
#: kinds of :class:`PaperValue`: "paper" — stated in, or read off a figure of, the paper;
#: "spec" — a reference value of the project's spec (derived from the paper's statements or
#: computed when the spec was written), not a number the paper prints
PAPER_KINDS = ("paper", "spec")
_ANCHOR = re.compile(r"docs/[\w./-]+\.md#[A-Za-z][\w-]*")


@dataclass(frozen=True)
class PaperValue:
    """What the paper gives for the quantity a claim measures, and where it comes from.

    ``value``: the value as the paper gives it, in words and numbers (``"≈ 2e−3 at l = 20 for S1 =
    1.3, …"``); ``source``: where in the paper (``"Fig. E1, read off the plot"``); ``anchor``: the
    documentation anchor that quotes it, a path from the repository root
    (``"docs/math/li2024.md#E1"``); ``numbers``: the same value machine-readable (JSON-able), or
    None; ``kind``: ``"paper"`` or ``"spec"`` (:data:`PAPER_KINDS`)."""

    value: str
    source: str
    anchor: str
    numbers: dict | None = None
    kind: str = "paper"

    def __post_init__(self):
        if self.kind not in PAPER_KINDS:
            raise ValueError(f"kind must be one of {PAPER_KINDS}, got {self.kind!r}")
        if not _ANCHOR.fullmatch(self.anchor):
            raise ValueError(f"anchor must be a documentation anchor like 'docs/math/li2024.md#E1', got {self.anchor!r}")
        if not self.value or not self.source:
            raise ValueError("a PaperValue needs a value and a source")


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
    paper: PaperValue | None = None  # the paper's value of what this row measures, where it gives one

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.paper is not None and not isinstance(self.paper, PaperValue):
            raise TypeError(f"paper must be a PaperValue or None, got {type(self.paper).__name__}")

    def doc_anchors(self) -> list[str]:
        """The documentation anchors ``spec`` cites (``["docs/math/li2024.md#L13", …]``)."""
        return doc_anchors(self.spec)


def verdict(ok: bool) -> str:
    """``"pass"`` if ``ok`` else ``"fail"``."""
    return "pass" if ok else "fail"
