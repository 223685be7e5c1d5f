"""The documentation text a report row cites, for report.html to show beside the claim.

A row's ``anchors`` (:func:`refimpl.core.citations.doc_anchors`) are paths from the repository
root, ``docs/math/li2024.md#E1``. When ``refimpl validate`` runs from a checkout, the text under
each anchor is read from the repository's Markdown page and stored in results.json (``docs``), so
that report.html shows it without the repository and ``refimpl report --from`` redraws the same
page from results.json alone. The text is the Markdown source (formulas as LaTeX), as on the page.

What an anchor's text is:

- an anchored heading (``### L13 — … {#L13}``): the heading and what follows it up to the next
  heading of any level (so ``#L13`` is the theorem's paragraph, not its sub-checks);
- an anchor inside a paragraph or list item (``- **L15i**{#L15i} — …``): that paragraph or item;
- a page without anchor (``docs/math/li2024.md``): its title and first paragraphs.

Long texts are cut at a line boundary after :data:`MAX_CHARS` characters, ending in "…".
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_CHARS = 2500
_ATTR = re.compile(r"\{[^{}\n]*#[A-Za-z][\w-]*[^{}\n]*\}")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")


def repository_root() -> Path | None:
    """The checkout that holds the running refimpl and its ``docs/`` folder, or None (an
    installed package carries no docs)."""
    import refimpl

    root = Path(refimpl.__file__).resolve().parent.parent
    return root if (root / "docs" / "citations.md").is_file() else None


def _lines_outside_fences(lines: list[str]) -> list[bool]:
    """For each line, whether it lies outside a fenced code block (so a ``#`` there is a heading)."""
    out, inside = [], False
    for line in lines:
        if line.lstrip().startswith("```"):
            out.append(False)
            inside = not inside
            continue
        out.append(not inside)
    return out


def _clean(text: str) -> str:
    return _ATTR.sub("", text).rstrip()


def _cut(lines: list[str]) -> str:
    while lines and not lines[-1].strip():
        lines.pop()
    text, out = 0, []
    for line in lines:
        if text + len(line) > MAX_CHARS and out:
            out.append("…")
            break
        out.append(line)
        text += len(line) + 1
    return _clean("\n".join(out))


def excerpt(page_text: str, anchor: str) -> dict | None:
    """``{"title": …, "text": …}`` of ``anchor`` on a Markdown page ("" for the page itself), or
    None when the page does not define it."""
    lines = page_text.splitlines()
    ok = _lines_outside_fences(lines)
    heads = [i for i, line in enumerate(lines) if ok[i] and _HEADING.match(line)]
    if not anchor:
        if not heads:
            return None
        first = heads[0]
        nxt = next((i for i in heads if i > first and lines[i].startswith("## ")), len(lines))
        return {"title": _clean(_HEADING.match(lines[first]).group(2)), "text": _cut(lines[first + 1:nxt])}
    attr = re.compile(r"\{[^{}\n]*#" + re.escape(anchor) + r"(?![\w-])[^{}\n]*\}")
    at = next((i for i, line in enumerate(lines) if ok[i] and attr.search(line)), None)
    if at is None:
        return None
    m = _HEADING.match(lines[at])
    if m:
        nxt = next((i for i in heads if i > at), len(lines))
        return {"title": _clean(m.group(2)), "text": _cut(lines[at + 1:nxt])}
    # inside a paragraph or a list item: from its first line to a blank line, a heading or the next item
    start = at
    item = re.match(r"^(\s*)[-*] ", lines[at])
    while not item and start > 0 and lines[start - 1].strip() and not _HEADING.match(lines[start - 1]):
        start -= 1
        item = re.match(r"^(\s*)[-*] ", lines[start])
    end = at + 1
    while end < len(lines) and lines[end].strip() and not _HEADING.match(lines[end]) and not (
            item and re.match(rf"^{item.group(1)}[-*] ", lines[end])):
        end += 1
    label = re.search(r"\*\*([^*]+)\*\*\s*" + attr.pattern, lines[at])
    return {"title": label.group(1) if label else anchor, "text": _cut(lines[start:end])}


def excerpts(anchors, root: Path | None = None) -> dict[str, dict]:
    """``{anchor path: {"title", "text"}}`` for every anchor found in the repository's docs
    (``root`` default :func:`repository_root`; nothing when there is none)."""
    root = repository_root() if root is None else Path(root)
    out: dict[str, dict] = {}
    if root is None:
        return out
    pages: dict[str, str | None] = {}
    for a in sorted(set(anchors)):
        page, _, anchor = a.partition("#")
        if page not in pages:
            try:
                pages[page] = (root / page).read_text(encoding="utf-8")
            except OSError:
                pages[page] = None
        if pages[page] is not None:
            ex = excerpt(pages[page], anchor)
            if ex is not None:
                out[a] = ex
    return out
