"""From a citation ``spec L13 (Theorem 3.3), E3`` to the documentation anchors it names.

The rule is the repository's ``docs/citations.md``: the letter names the page (L and the figure
items E → ``docs/math/li2024.md``, Y → yang2024, H → huang2023, T → transformer), a numbered item
``Xn`` is the anchor ``#Xn``, a section ``X §n`` is ``#X-sn``, ``T-<block>`` is ``#T-<block>``,
the letter alone is the page. A citation may list more items (``spec L7, L10``, ``spec L7/L10,
Y5/Y7``, ``spec L §6 E3``, ``spec Y10–Y14``, a section ``§8`` of the same letter); a range stands
for every item it spans. A part of an item (``spec L13 (b)``, ``spec L15 (i)–(iv)``, ``spec L13
b–d``) resolves to the part's anchor (``#L13b``) where the page gives the item's parts anchors of
their own (:data:`PARTED`), and to the item's anchor otherwise (``spec H8 (b)`` → ``#H8``). Other
text after an item (``(Theorem 3.3)``, ``Fig. 2(b)``, ``[C]``) names no anchor.

:func:`doc_anchors` is what the validation report uses (the ``anchors`` of a row);
``tests/test_citations.py`` checks with the same grammar that every citation in the repository
resolves to an anchor its page defines.

    >>> doc_anchors("spec L13 (Theorem 3.3), E3")
    ['docs/math/li2024.md#L13', 'docs/math/li2024.md#E3']
"""

from __future__ import annotations

import re

PAGES = {"L": "math/li2024.md", "E": "math/li2024.md", "Y": "math/yang2024.md",
         "H": "math/huang2023.md", "T": "math/transformer.md"}
DOCS = "docs"  # the documentation folder, relative to the repository root
#: items whose parts have anchors of their own on their page (``#L13a`` … ``#L15iv``); any other
#: item's parts resolve to the item (tests/test_citations.py checks this against the pages)
PARTED = frozenset({"L13", "L15"})

_DASH = "[–-]"
ITEM = r"(?:[LYH]\d+[a-z]*|E\d+|T-[a-z][a-z0-9-]*)"
HEAD = re.compile(rf"(?P<item>{ITEM})(?![\w-])|(?P<letter>[LYHT])(?![\w-])(?:\s*§\s*(?P<sec>\d+))?")
PART = re.compile(rf"\s*(?:\((?P<p1>[ivx]+|[a-h])\)(?:{_DASH}\((?P<p2>[ivx]+|[a-h])\))?"
                  rf"|(?P<p3>[a-h])(?:{_DASH}(?P<p4>[a-h]))?(?=[)\s,;]))")
SKIP = re.compile(r"\s*(?:\((?![ivx]+\)|[a-h]\))[^()]*\)|Fig\.\s*\d+(?:\([a-z, ]+\))?|\[[A-Z](?::[^\]]*)?\])")
NEXT = re.compile(rf"\s*(?:,|/|{_DASH}|and\b|\s)\s*"
                  rf"(?:(?P<item>{ITEM})(?![\w-])|§\s*(?P<sec>\d+)|(?P<letter>[LYH])\s*§\s*(?P<lsec>\d+))")
START = re.compile(r"\b[Ss]pec ")
ROMAN = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii"]


def _letter(item: str) -> str:
    return "T" if item.startswith("T-") else item[0]


def _expand(a: str, b: str) -> list[str]:
    """The items of a range ``a–b`` (same letter, numbered): every one in between."""
    ma, mb = re.fullmatch(r"([LYHE])(\d+)", a), re.fullmatch(r"([LYHE])(\d+)", b)
    if ma and mb and ma.group(1) == mb.group(1) and int(ma.group(2)) < int(mb.group(2)):
        return [f"{ma.group(1)}{k}" for k in range(int(ma.group(2)), int(mb.group(2)) + 1)]
    return [a, b]


def _parts(item: str, p_first: str, p_last: str | None, parted) -> list[str]:
    """Anchors of the parts ``p_first``…``p_last`` of ``item`` (letters or roman numerals)."""
    if p_last is None:
        names = [p_first]
    elif p_first in ROMAN and p_last in ROMAN:
        names = ROMAN[ROMAN.index(p_first): ROMAN.index(p_last) + 1]
    else:
        names = [chr(c) for c in range(ord(p_first), ord(p_last) + 1)]
    return [item + n for n in names] if parted(item) else [item]


def parse(text: str, pos: int, parted=None) -> tuple[list[tuple[str, str]], int] | None:
    """The (page, anchor) targets of the citation whose body starts at ``text[pos]`` (just after
    ``spec ``) and where it ends; ``None`` if nothing there parses as a citation. An empty anchor
    means the page itself; pages are relative to ``docs/``. ``parted(item) -> bool`` says whether
    an item's parts have anchors of their own (default: membership in :data:`PARTED`)."""
    parted = parted or PARTED.__contains__
    m = HEAD.match(text, pos)
    if not m:
        return None
    targets: list[tuple[str, str]] = []
    if m.group("item"):
        last = m.group("item")
        targets.append((PAGES[_letter(last)], last))
    else:
        last = m.group("letter")
        sec = m.group("sec")
        targets.append((PAGES[last], f"{last}-s{sec}" if sec else ("T" if last == "T" else "")))
    pos = m.end()
    while True:
        p = PART.match(text, pos)
        if p and last[-1].isdigit():
            first, second = (p.group("p1"), p.group("p2")) if p.group("p1") else (p.group("p3"), p.group("p4"))
            targets += [(PAGES[_letter(last)], a) for a in _parts(last, first, second, parted)]
            pos = p.end()
            continue
        s = SKIP.match(text, pos)
        if s:
            pos = s.end()
            continue
        n = NEXT.match(text, pos)
        if not n:
            return targets, pos
        if n.group("item"):
            item = n.group("item")
            is_range = re.match(rf"\s*{_DASH}", text[pos:n.start("item")]) is not None
            items = _expand(last, item) if is_range else [item]
            targets += [(PAGES[_letter(i)], i) for i in items]
            last = item
        else:
            letter = n.group("letter") or _letter(last)
            sec = n.group("sec") or n.group("lsec")
            targets.append((PAGES[letter], f"{letter}-s{sec}"))
            last = letter
        pos = n.end()


def citations(text: str, parted=None) -> tuple[list[tuple[str, list[tuple[str, str]]]], list[str]]:
    """(citation text, its targets) for every citation ``spec …`` in ``text``, and the texts that
    start like a citation (``spec`` and a capital letter) but do not parse."""
    found, bad = [], []
    for m in START.finditer(text):
        if not re.match(r"[A-Z]", text[m.end():m.end() + 1]):
            continue  # "spec" in prose ("the spec says"), not a citation
        r = parse(text, m.end(), parted)
        if r is None:
            bad.append(text[m.start():m.end() + 30])
            continue
        targets, end = r
        found.append((text[m.start():end], targets))
    return found, bad


def doc_anchors(spec: str) -> list[str]:
    """The documentation anchors a report row's ``spec`` cites, as paths from the repository root
    (``docs/math/li2024.md#E1``; the page alone when the citation names no anchor), in order and
    without repeats; ``[]`` when ``spec`` holds no citation."""
    out: dict[str, None] = {}
    for _, targets in citations(spec)[0]:
        for page, anchor in targets:
            out[f"{DOCS}/{page}" + (f"#{anchor}" if anchor else "")] = None
    return list(out)
