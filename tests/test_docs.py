"""The documentation site builds without a warning, with its worked examples executed.

``mkdocs build --strict`` (the README's docs command) runs into a temporary folder: the math
pages and their anchors, the API reference rendered from the docstrings by mkdocstrings (a
numpydoc parameter that is not in the signature is a warning), and the examples, whose code blocks
markdown-exec runs during the build (an exception is a warning). Strict mode turns every warning
into a failure; the test also fails on any ``WARNING`` line, so nothing slips through a plugin
that logs without failing the build.

Skipped, with the reason, when the docs tools are not installed (``pip install -e ".[docs]"``;
the ``test`` extra includes them, so CI runs the build).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from refimpl import models

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TOOLS = {"mkdocs": "mkdocs", "material": "mkdocs-material", "mkdocstrings_handlers.python": "mkdocstrings[python]",
         "markdown_exec": "markdown-exec"}


def _missing_tools() -> list[str]:
    out = []
    for mod, pkg in TOOLS.items():
        try:
            found = importlib.util.find_spec(mod) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            out.append(pkg)
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built by ``mkdocs build --strict`` into a temporary folder, and the build's log."""
    missing = _missing_tools()
    if missing:
        pytest.skip(f"docs tools not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return out, proc.returncode, proc.stdout + proc.stderr


def test_strict_build_passes_without_a_warning(site):
    out, rc, log = site
    warnings = [ln for ln in log.splitlines() if "WARNING" in ln]
    assert rc == 0 and not warnings, f"mkdocs build --strict failed (exit {rc}):\n{log[-6000:]}"
    assert (out / "index.html").is_file()


@pytest.mark.parametrize("page", ["li2024", "yang2024", "huang2023", "transformer"])
def test_worked_example_ran_during_the_build(site, page):
    out, rc, log = site
    assert rc == 0, log[-3000:]
    source = (DOCS / "examples" / f"{page}.md").read_text(encoding="utf-8")
    assert len(re.findall(r'^```python exec="on"', source, flags=re.M)) >= 2, "the example must be executed code"
    html = (out / "examples" / page / "index.html").read_text(encoding="utf-8")
    assert "Traceback" not in html
    # every executed block with its source shown is rendered twice: the source, then its output
    n_exec = len(re.findall(r'^```python exec="on" source="above"', source, flags=re.M))
    n_static = len(re.findall(r"^```(?!python exec)\w", source, flags=re.M))
    assert html.count('<div class="highlight">') >= 2 * n_exec + n_static, "an executed block's output is missing"


def test_check_page_shows_a_failing_candidate_table(site):
    out, rc, log = site
    assert rc == 0, log[-3000:]
    html = (out / "check-your-implementation" / "index.html").read_text(encoding="utf-8")
    assert "correct candidate: passes" in html
    assert "MISMATCH" in html and "first wrong key" in html


@pytest.mark.parametrize("name", models.names())
def test_api_page_documents_every_contract_function(name):
    page = (DOCS / "api" / f"{name}.md").read_text(encoding="utf-8")
    module = models.get(name).module
    documented = set(re.findall(rf"^::: {re.escape(module)}\.([\w.]+)", page, flags=re.M))
    missing = [c for c in models.CONTRACT if c not in documented and f"{c}.{c}" not in documented]
    assert not missing, f"docs/api/{name}.md does not document {missing}"


def test_every_api_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(DOCS).as_posix() for p in (DOCS / "api").glob("*.md"))
    assert pages and all(p in nav for p in pages)


def _bibtex_entries(text: str) -> list[str]:
    blocks = re.findall(r"```bibtex\n(.*?)```", text, flags=re.S)
    return [e.strip() for b in blocks for e in re.split(r"\n(?=@)", b.strip())]


def test_readme_cites_with_the_entries_of_docs_bibtex():
    readme = _bibtex_entries((ROOT / "README.md").read_text(encoding="utf-8"))
    docs = _bibtex_entries((DOCS / "bibtex.md").read_text(encoding="utf-8"))
    assert len(docs) == 4 and readme == docs


def test_readme_lists_the_docs_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'pip install -e ".[docs]" && mkdocs build --strict' in readme

