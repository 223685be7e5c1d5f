"""Griffe extension for the API pages: the reStructuredText left in refimpl's docstrings, as Markdown.

refimpl's docstrings are numpydoc (rendered by mkdocstrings-python's numpy parser), but several
keep reStructuredText habits that Markdown would garble:

- Sphinx roles (``:func:`train```, ``:class:`~refimpl.core.trajectory.Trajectory```) become inline
  code (the ``~`` form keeps the last name, as Sphinx shows it);
- a paragraph ending in ``::`` (a literal block follows) ends in ``:``; the indented block after
  it is already a Markdown code block;
- simple tables (``====  ====`` borders, the glossaries) become fenced text blocks, so their columns
  stay aligned;
- definition lists whose terms are literals (a line ````name(...)```` followed by lines indented
  under it, as in ``refimpl.models``) become bullet lists. numpydoc sections (``name : type``) are
  not touched.

Only the text handed to the renderer changes; the docstrings in the code stay as they are.
``mkdocs.yml`` loads this file (``plugins: mkdocstrings: ... extensions``).
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|data|attr|meth|obj|exc|const):`(~?)([^`]+)`")
_BORDER = re.compile(r"^(\s*)=+(?: +=+)+\s*$")


def _role(m: re.Match) -> str:
    target = m.group(2).strip()
    return f"`{target.rsplit('.', 1)[-1] if m.group(1) else target}`"


def _tables(text: str) -> str:
    """Wrap every RST simple table (three ``===`` border lines) in a fenced ``text`` block."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        m = _BORDER.match(lines[i])
        if m:
            borders = [j for j in range(i, len(lines)) if _BORDER.match(lines[j])][:3]
            if len(borders) >= 2:  # header border, (header rule,) closing border
                end, indent = borders[-1], m.group(1)
                out += ["", f"{indent}```text", *lines[i:end + 1], f"{indent}```", ""]
                i = end + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


_TERM = re.compile(r"^(\s*)(``[^`].*``)\s*$")


def _definitions(text: str) -> str:
    """A literal term line followed by a more indented block becomes a bullet item."""
    lines = text.split("\n")
    for i, line in enumerate(lines[:-1]):
        m = _TERM.match(line)
        nxt = lines[i + 1]
        if m and nxt.strip() and len(nxt) - len(nxt.lstrip()) > len(m.group(1)):
            lines[i] = f"{m.group(1)}- {m.group(2)}:"
    return "\n".join(lines)


def rst_to_markdown(text: str) -> str:
    """The docstring ``text`` with roles, ``::`` and simple tables made Markdown."""
    text = _ROLE.sub(_role, text)
    text = re.sub(r"(\S)::[ \t]*$", r"\1:", text, flags=re.M)
    text = re.sub(r"^([ \t]*)::[ \t]*$", "", text, flags=re.M)
    return _definitions(_tables(text))


class RstToMarkdown(griffe.Extension):
    """Rewrite each docstring as it is loaded (modules, classes, functions, attributes)."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:  # noqa: D102
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
