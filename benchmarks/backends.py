"""The backends of a benchmark problem, derived from the registry and the examples.

- refimpl's paths: every value of ``backend=`` its model accepts (``refimpl.models`` registry,
  ``ModelInfo.backends``: "numpy", "numba", ... whatever the model registers), or the subset
  the problem module declares (``BACKENDS``, when its algorithm lacks a kernel for one);
- the competitors: for every library of ``competitors.LIBRARIES`` with an example file
  ``examples/<library>/<problem>.py``, each variant (torch eager / compile, jax jit) and each form
  of the problem (``FORMS`` in the problem module; li2024: naive order, algebra-matched).

A backend's ``name`` is what the records and ``--backend`` use: refimpl's backend name, or
``<library>_<variant>`` (+ ``_<form>`` for a form other than the first, e.g.
``torch_eager_matched``). ``--backend torch_eager`` selects every form of torch eager.
"""

from __future__ import annotations

from dataclasses import dataclass

from refimpl.benchmarks import competitors, problems


@dataclass(frozen=True)
class Backend:
    name: str  # record name
    base: str  # name without the form suffix (what --backend matches)
    kind: str  # "refimpl" or "competitor"
    library: str  # "refimpl", "torch", "jax"
    variant: str  # refimpl's backend, or the competitor variant ("eager", "compile", "jit")
    form: str = ""  # competitor form ("" = the only or first one)
    label: str = ""  # for tables

    @property
    def package(self) -> str | None:
        """The Python package the backend needs beyond refimpl's own dependencies."""
        return None if self.kind == "refimpl" else self.library

    def to_dict(self) -> dict:
        return {"name": self.name, "base": self.base, "kind": self.kind, "library": self.library,
                "variant": self.variant, "form": self.form, "label": self.label}


def for_problem(problem: str) -> list[Backend]:
    """Every backend of benchmark problem ``problem`` (whether its library is installed or not)."""
    out = [Backend(b, b, "refimpl", "refimpl", b, "", f"refimpl {b}") for b in problems.backends(problem)]
    forms = list(problems.forms(problem).items())
    for lib, variants in competitors.LIBRARIES.items():
        if not competitors.has_example(lib, problem):
            continue
        for variant in variants:
            base = f"{lib}_{variant}"
            for i, (form, flabel) in enumerate(forms):
                name = base if i == 0 or not form else f"{base}_{form}"
                label = f"{lib} {variant}" + (f" ({flabel})" if flabel else "")
                out.append(Backend(name, base, "competitor", lib, variant, form if len(forms) > 1 else "", label))
    return out


def all_names() -> list[str]:
    """Every backend name and base name of every problem (the choices of ``--backend``)."""
    seen: dict[str, None] = {}
    for p in problems.names():
        for b in for_problem(p):
            seen.setdefault(b.base)
            seen.setdefault(b.name)
    return list(seen)


def select(problem: str, requested=None, *, skip=()) -> tuple[list[Backend], dict]:
    """The backends of ``problem`` to run: those named in ``requested`` (names or base names;
    default all), minus the base names in ``skip``; competitors whose library cannot be imported
    are left out. Returns ``(backends, left_out)`` with ``left_out = {name: reason}``."""
    chosen, left_out = [], {}
    for b in for_problem(problem):
        if requested is not None and b.name not in requested and b.base not in requested:
            continue
        if b.base in skip:
            left_out[b.name] = skip[b.base] if isinstance(skip, dict) else "skipped"
            continue
        if b.package and not competitors.library_importable(b.package):
            left_out[b.name] = f"{b.package} is not importable"
            continue
        chosen.append(b)
    return chosen, left_out


def check_requested(requested, problem_names) -> None:
    """``ValueError`` (one line) for a requested backend that is unknown, that needs a package
    that cannot be imported, or that no selected problem has."""
    if requested is None:
        return
    known = all_names()
    bad = [n for n in requested if n not in known]
    if bad:
        raise ValueError(f"unknown backend(s) {bad}; allowed: {known}")
    for n in requested:
        lib = next((lib for lib, vs in competitors.LIBRARIES.items() if any(n.startswith(f"{lib}_{v}") for v in vs)),
                   None)
        if lib is not None and not competitors.library_importable(lib):
            raise ValueError(f"backend {n} needs the Python package {lib!r}, which cannot be imported here "
                             f"(pip install {lib}, or pip install 'refimpl[bench]')")
        if not any(n in (b.name, b.base) for p in problem_names for b in for_problem(p)):
            raise ValueError(f"backend {n} is not available for the selected problem(s) {list(problem_names)}")
