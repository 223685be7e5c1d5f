"""Every ``spec …`` citation resolves to an anchor of the documentation, inside the repository.

The rule is ``docs/citations.md``: the letter names the page (L and the figure items E → li2024,
Y → yang2024, H → huang2023, T → transformer), a numbered item ``Xn`` is the anchor ``#Xn``, a
section ``X §n`` is ``#X-sn``, ``T-<block>`` is ``#T-<block>``, the letter alone is the page.
A citation may list more items (``spec L7, L10``, ``spec L7/L10, Y5/Y7``, ``spec L §6 E3``,
``spec Y10–Y14``, a section ``§8`` of the same letter); a range is checked at every item it spans.
A part of an item (``spec L13 (b)``, ``spec L15 (i)–(iv)``, ``spec L13 b–d``) resolves to the
part's anchor (``#L13b``) where the page gives the item parts of their own, and to the item's
anchor otherwise (``spec H8 (b)`` → ``#H8``). Other text after an item (``(Theorem 3.3)``,
``Fig. 2(b)``, ``[C]``) names no anchor.

Collected from every tracked ``.py``, ``.md``, ``.cfg``, ``.toml`` and ``.yml`` file (code
comments, docstrings, messages, the pages themselves) and, separately, from the ``spec`` field of
every :class:`refimpl.core.claims.Claim` the checks build (the report's spec column), read from the
source with ``ast`` so that every row is covered, including rows of runs too slow for a test.

The same tracked files must not point outside the repository: no absolute machine paths, and no
relative path (``../…``) that leaves its folder for a file the repository does not have.
"""

from __future__ import annotations

import ast
import re
import subprocess
import unicodedata
from functools import cache
from pathlib import Path

import pytest

from refimpl.core import citations as C
from refimpl.core.citations import PAGES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TEXT_SUFFIXES = (".py", ".md", ".cfg", ".toml", ".yml", ".yaml")
# the placeholders docs/citations.md uses to state the rule; nothing else may fail to parse
PLACEHOLDERS = {"X", "Xn", "X §n", "En", "T-<block>"}


def _slug(text: str) -> str:
    """Python-Markdown's default ``toc`` slug (mkdocs' heading ids)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


@cache
def anchors(page: str) -> frozenset[str]:
    """The ids a page defines: ``{#id}`` attributes, ``id="…"`` in HTML, and heading slugs."""
    text = (DOCS / page).read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # no headings inside code fences
    ids = set(re.findall(r"\{[^}\n]*#([A-Za-z][\w-]*)[^}\n]*\}", text))
    ids |= set(re.findall(r"\bid=\"([^\"]+)\"", text))
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*$", text, flags=re.M):
        if "{" not in m.group(1):
            ids.add(_slug(m.group(1)))
    return frozenset(ids)


def _parted(item: str) -> bool:
    """Whether the page gives ``item``'s parts anchors of their own (``L13`` → ``#L13a`` …), read
    from the page itself: the grammar's default (:data:`refimpl.core.citations.PARTED`) is checked
    against this by a test."""
    return any(re.fullmatch(re.escape(item) + r"[a-z]+", a) for a in anchors(PAGES[C._letter(item)]))


def parse(text: str, pos: int):
    return C.parse(text, pos, _parted)


def citations(text: str) -> tuple[list[tuple[str, list[tuple[str, str]]]], list[str]]:
    """(citation text, its targets) for every citation in ``text``, and the unparseable ones
    (the placeholders of docs/citations.md excepted)."""
    found, bad = C.citations(text, _parted)
    bad = [b for b in bad if re.match(r"[^\s`'\",;:)]+(?: §n)?", b[len("spec "):]).group(0) not in PLACEHOLDERS]
    return found, bad


def _tracked(suffixes=TEXT_SUFFIXES) -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / f for f in out.split() if f.endswith(suffixes) and (ROOT / f).is_file()]


@cache
def _file_citations() -> tuple[dict, list]:
    by_file, bad = {}, []
    for f in _tracked():
        if f == Path(__file__).resolve():
            continue  # this file's own examples include citations made to fail
        found, unparsed = citations(f.read_text(encoding="utf-8"))
        by_file[f.relative_to(ROOT).as_posix()] = found
        bad += [f"{f.relative_to(ROOT)}: {b!r}" for b in unparsed]
    return by_file, bad


def claim_specs() -> list[tuple[str, str]]:
    """(where, spec string) of every ``Claim(...)`` built in the tracked Python code: the third
    positional argument or ``spec=``; an f-string contributes its literal text."""
    out = []
    for f in _tracked((".py",)):
        if f.parts[-2] == "tests" or f.name == "claims.py":
            continue
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Claim"):
                continue
            arg = next((k.value for k in node.keywords if k.arg == "spec"), node.args[2] if len(node.args) > 2 else None)
            where = f"{f.relative_to(ROOT)}:{node.lineno}"
            if isinstance(arg, ast.Name) and f.parent.name == "robustness" and f.name == "_study.py":
                continue  # the robustness rows' spec is the study's SPEC constant, collected below
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.append((where, arg.value))
            elif isinstance(arg, ast.JoinedStr):
                out.append((where, "".join(v.value for v in arg.values if isinstance(v, ast.Constant))))
            else:
                out.append((where, f"<not a string literal: {ast.unparse(arg) if arg else 'missing'}>"))
    return out + robustness_specs()


def robustness_specs() -> list[tuple[str, str]]:
    """(where, spec string) of every module-level ``SPEC…`` constant of validation/robustness/ (the
    spec each study passes to its rows); each study module has at least one."""
    out = []
    for f in sorted((ROOT / "validation" / "robustness").glob("[!_]*.py")):
        found = 0
        for node in ast.parse(f.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                for n, v in zip(names, values):
                    if isinstance(n, ast.Name) and n.id.startswith("SPEC"):
                        found += 1
                        ok = isinstance(v, ast.Constant) and isinstance(v.value, str)
                        out.append((f"{f.relative_to(ROOT)}:{node.lineno}",
                                    v.value if ok else f"<not a string literal: {ast.unparse(v)}>"))
        if not found:
            out.append((str(f.relative_to(ROOT)), "<no SPEC constant>"))
    return out


# --- the parser itself -----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("spec L7", [("math/li2024.md", "L7")]),
    ("spec L", [("math/li2024.md", "")]),
    ("spec L13a)", [("math/li2024.md", "L13a")]),
    ("spec L §6 E3", [("math/li2024.md", "L-s6"), ("math/li2024.md", "E3")]),
    ("spec Y §6 Fig. 2(b)", [("math/yang2024.md", "Y-s6")]),
    ("spec Y §6 Fig. 4, Y11", [("math/yang2024.md", "Y-s6"), ("math/yang2024.md", "Y11")]),
    ("spec T", [("math/transformer.md", "T")]),
    ("spec T-attention", [("math/transformer.md", "T-attention")]),
    ("spec L7/L10, Y5/Y7, H4", [("math/li2024.md", "L7"), ("math/li2024.md", "L10"), ("math/yang2024.md", "Y5"),
                                ("math/yang2024.md", "Y7"), ("math/huang2023.md", "H4")]),
    ("spec L1–L3 [C]", [("math/li2024.md", a) for a in ("L1", "L1", "L2", "L3")]),
    ("spec L13 (b), L3 (Condition 3.2)", [("math/li2024.md", a) for a in ("L13", "L13b", "L3")]),
    ("spec L15 (i)–(iii)", [("math/li2024.md", a) for a in ("L15", "L15i", "L15ii", "L15iii")]),
    ("spec L13 b–d)", [("math/li2024.md", a) for a in ("L13", "L13b", "L13c", "L13d")]),
    ("spec H8 (b))", [("math/huang2023.md", "H8"), ("math/huang2023.md", "H8")]),
    ("spec L15 (ii), §8 open choice", [("math/li2024.md", a) for a in ("L15", "L15ii", "L-s8")]),
    ("spec L16 (Proposition 1), E6(b)", [("math/li2024.md", a) for a in ("L16", "E6", "E6")]),
    ("spec Y and spec L", [("math/yang2024.md", "")]),
])
def test_parser_reads_the_forms_of_docs_citations(text, expected):
    targets, _ = parse(text, len("spec "))
    assert targets == expected


def test_parser_rejects_what_is_not_a_citation():
    found, bad = citations("the spec says; spec Xn and spec T-<block> are placeholders; spec Lq is not")
    assert found == [] and bad == ["spec Lq is not"]
    found, _ = citations("spec L99")
    assert found == [("spec L99", [("math/li2024.md", "L99")])] and "L99" not in anchors("math/li2024.md")
    assert _unresolved(citations("spec L99, spec L13 (e), spec Y §9, spec T-nothing, spec L7")[0]) == [
        "'spec L99' -> math/li2024.md#L99", "'spec L13 (e)' -> math/li2024.md#L13e",
        "'spec Y §9' -> math/yang2024.md#Y-s9", "'spec T-nothing' -> math/transformer.md#T-nothing"]


def test_anchor_reader_sees_attributes_and_heading_slugs():
    li = anchors("math/li2024.md")
    assert {"L7", "L13a", "L-s6", "E3"} <= li
    assert "how-to-read-the-tags" not in anchors("index.md") and "tags" in anchors("index.md")
    assert _slug("Set-up: two commands") == "set-up-two-commands"


# --- the repository --------------------------------------------------------------------------

def _unresolved(found) -> list[str]:
    return [f"{cite!r} -> {page}#{a}" for cite, targets in found for page, a in targets
            if not (DOCS / page).is_file() or (a and a not in anchors(page))]


def test_every_citation_in_the_tracked_files_resolves():
    by_file, bad = _file_citations()
    assert not bad, "citations that do not parse (docs/citations.md gives the forms):\n" + "\n".join(bad)
    missing = [f"{f}: {u}" for f, found in by_file.items() for u in _unresolved(found)]
    n = sum(len(v) for v in by_file.values())
    assert n > 500, f"only {n} citations collected: the collector is broken"
    assert not missing, f"{len(missing)} citations do not resolve:\n" + "\n".join(missing)


def test_every_claim_spec_is_a_citation_that_resolves():
    specs = claim_specs()
    assert len(specs) > 40, f"only {len(specs)} Claim(...) calls found: the collector is broken"
    problems = []
    for where, spec in specs:
        found, bad = citations(spec)
        if not spec.startswith("spec ") or not found or bad:
            problems.append(f"{where}: {spec!r} is not a citation `spec …`")
        problems += [f"{where}: {u}" for u in _unresolved(found)]
    assert not problems, "\n".join(problems)


ABSOLUTE = re.compile(r"(?<![\w.~-])/(?:work|home|root|Users|mnt)/[\w.-]+")
RELATIVE = re.compile(r"(?<![\w/.])((?:\.\./)+[\w.-][\w./-]*)")


def test_no_tracked_file_points_outside_the_repository():
    problems = []
    for f in _tracked(TEXT_SUFFIXES + (".cff", ".txt", ".ini", ".sh")) + [ROOT / ".ci" / "run"]:
        text = f.read_text(encoding="utf-8")
        rel = f.relative_to(ROOT)
        problems += [f"{rel}: absolute path {m.group(0)!r}" for m in ABSOLUTE.finditer(text)]
        for m in RELATIVE.finditer(text):
            target = (f.parent / m.group(1).split("#")[0]).resolve()
            if not target.is_relative_to(ROOT) or not target.exists():
                problems.append(f"{rel}: {m.group(1)!r} is not a path inside the repository")
    assert not problems, "\n".join(problems)


def test_the_grammars_parted_items_are_the_pages():
    """refimpl.core.citations.PARTED (used where the pages are not at hand: the report) names
    exactly the items whose parts have anchors of their own on their page."""
    parted = set()
    for page in sorted(set(PAGES.values())):
        for a in anchors(page):
            m = re.fullmatch(r"([LYHE]\d+)[a-z]+", a)
            if m and not re.fullmatch(r"[LYHE]\d+", a) and m.group(1) in anchors(page):
                parted.add(m.group(1))
    assert parted == set(C.PARTED)


def test_doc_anchors_of_report_rows():
    assert C.doc_anchors("spec L13 (Theorem 3.3), E3") == ["docs/math/li2024.md#L13", "docs/math/li2024.md#E3"]
    assert C.doc_anchors("spec L15 (ii), §8 open choice") == [
        "docs/math/li2024.md#L15", "docs/math/li2024.md#L15ii", "docs/math/li2024.md#L-s8"]
    assert C.doc_anchors("spec Y §6 Fig. 4, Y10–Y11") == [
        "docs/math/yang2024.md#Y-s6", "docs/math/yang2024.md#Y10", "docs/math/yang2024.md#Y11"]
    assert C.doc_anchors("spec H11 [D]") == ["docs/math/huang2023.md#H11"]
    assert C.doc_anchors("spec L") == ["docs/math/li2024.md"]
    assert C.doc_anchors("fake ref B") == [] and C.doc_anchors("the spec says") == []


def _paper_values():
    """Every PaperValue the checks and validation modules define at module level (directly or in
    a dict), by where it is defined."""
    import importlib

    from refimpl.core.claims import PaperValue

    out = {}
    for name in ("refimpl.li2024.checks.paper", "refimpl.yang2024.checks", "refimpl.huang2023.checks"):
        mod = importlib.import_module(name)
        for attr, v in vars(mod).items():
            for k, x in (v.items() if isinstance(v, dict) else [(None, v)]):
                if isinstance(x, PaperValue):
                    out[f"{name}.{attr}" + (f"[{k}]" if k is not None else "")] = x
    return out


def test_every_paper_value_names_an_anchor_that_resolves():
    values = _paper_values()
    assert len(values) >= 30, f"only {len(values)} paper values found: the collector is broken"
    bad = []
    for where, v in values.items():
        page, _, a = v.anchor.partition("#")
        rel = page.removeprefix("docs/")
        if not (DOCS / rel).is_file() or a not in anchors(rel):
            bad.append(f"{where}: {v.anchor}")
    assert not bad, "paper values whose anchor does not resolve:\n" + "\n".join(bad)
    assert {v.kind for v in values.values()} == {"paper", "spec"}
