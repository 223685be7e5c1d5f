"""What code a cached computation depends on: the cache key's ``code`` part (issue 14).

A cache entry of ``ctx.cached(name, config, fn)`` must be recomputed when the code that computes
it changes, and only then: editing a figure's colour in a validation module must not throw away
the training runs. Two kinds of code compute an entry:

- **refimpl packages** (``refimpl.core``, ``refimpl.li2024``, ..., ``refimpl.experiments``; the
  top-level modules ``refimpl.models`` and ``refimpl.testing`` count as units of their own). An
  entry depends on the packages whose modules ``fn`` reaches (functions, classes, modules and the
  types of objects it captures), closed over the static imports of those modules (``import`` and
  ``from ... import`` anywhere in a file, relative imports, and string literals naming a refimpl
  module, which the model registry uses). Every ``.py`` file of each such package is hashed: an
  edit anywhere in ``refimpl/li2024`` invalidates the entries computed with it, an edit in
  ``refimpl/yang2024`` does not.
- **named functions defined outside refimpl's packages** (in a validation module, a test, a
  notebook) that ``fn`` reaches: ``fig5_run`` in ``validation/yang2024/transformer.py``,
  ``train_deep`` in ``validation/li2024/deep.py``. Their *bytecode* is hashed (instructions,
  constants, names; not line numbers), not their file. So editing the function that computes an
  entry invalidates it, while editing anything the computation does not reach (a figure's
  styling, a docstring, a claim's wording, code moving down a line) leaves it cached.

A lambda's own code is not hashed (what it reaches is): a lambda is glue, and the contract of
``ctx.cached`` is that ``name`` and ``config`` identify the computation — so two modules asking
for the same (name, config) through different lambdas share one entry (``li2024/e1_curves`` of
``ood.py`` and ``deep.py``). Data captured by ``fn`` (configurations, seeds, arrays) is not code
either: it has to be in ``config``.

The result is the same wherever it is computed (the client of a Dask run or a worker): the
analysis reads only code objects, module names and a :class:`CodeIndex` snapshot made once per
run on the client and shipped to the workers with the tasks. ``ctx.cached(..., code=(...))``
replaces the package analysis by an explicit list (taken literally: name every package).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
import sys
import sysconfig
import types
from dataclasses import dataclass, field
from pathlib import Path

_MODULE_LITERAL = re.compile(r"^refimpl(\.[A-Za-z_]\w*)+$")
_EXCLUDED = ("refimpl.validation", "refimpl.benchmarks")  # never units: mapped from other folders


def _is_library(modname: str | None) -> bool:
    """A module of refimpl's packages (not the validation or benchmark folders)."""
    if not modname or not (modname == "refimpl" or modname.startswith("refimpl.")):
        return False
    return not any(modname == e or modname.startswith(e + ".") for e in _EXCLUDED)


def _file_digest(paths_and_names) -> str:
    h = hashlib.sha256()
    for rel, path in paths_and_names:
        h.update(rel.encode())
        h.update(b"\0")
        h.update(Path(path).read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def code_version() -> str:
    """Hash of the package version and every .py file of ``refimpl`` and ``refimpl.validation``:
    the version a report names and the one Dask workers must share with the client."""
    import refimpl
    from refimpl import validation

    files = []
    for pkg in (refimpl, validation):
        root = Path(pkg.__file__).parent
        files += [(str(p.relative_to(root.parent)), p) for p in sorted(root.rglob("*.py"))
                  if "__pycache__" not in p.parts]
    h = hashlib.sha256(refimpl.__version__.encode())
    h.update(_file_digest(files).encode())
    return h.hexdigest()[:16]


@dataclass
class CodeIndex:
    """A snapshot of refimpl's package sources: module -> (unit, static refimpl imports), and
    unit -> hash of its files. Built once per run on the client (:meth:`build`); plain data, so it
    travels to Dask workers inside the tasks and every process derives the same keys."""

    version: str  # refimpl.__version__
    modules: dict[str, tuple[str, tuple[str, ...]]]
    hashes: dict[str, str]
    tree: str = ""  # code_version(): the whole tree, validation included
    _closure: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls) -> CodeIndex:
        import refimpl

        root = Path(refimpl.__file__).resolve().parent
        files: dict[str, Path] = {}
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(root).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(["refimpl", *parts])] = path
        modules = {}
        for name, path in files.items():
            modules[name] = (_unit(name, root), tuple(sorted(_static_imports(name, path, files))))
        unit_files: dict[str, list] = {}
        for name, path in files.items():
            unit = modules[name][0]
            unit_files.setdefault(unit, []).append((str(path.relative_to(root)), path))
        hashes = {u: _file_digest(sorted(fs)) for u, fs in unit_files.items()}
        return cls(version=refimpl.__version__, modules=modules, hashes=hashes, tree=code_version())

    def __getstate__(self):
        return {"version": self.version, "modules": self.modules, "hashes": self.hashes, "tree": self.tree}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._closure = {}

    def resolve(self, modname: str) -> str | None:
        """The indexed module ``modname`` names (its longest indexed prefix), or None."""
        while modname:
            if modname in self.modules:
                return modname
            modname = modname.rpartition(".")[0]
        return None

    def units(self, modnames) -> tuple[str, ...]:
        """Packages (units) of ``modnames`` and of everything they import, sorted; refimpl's own
        ``__init__`` (the version string, in every key anyway) is left out."""
        key = frozenset(modnames)
        if key not in self._closure:
            seen, todo = set(), [m for m in key if m in self.modules]
            while todo:
                m = todo.pop()
                if m in seen:
                    continue
                seen.add(m)
                todo.extend(i for i in self.modules[m][1] if i not in seen)
            self._closure[key] = tuple(sorted({self.modules[m][0] for m in seen} - {"refimpl"}))
        return self._closure[key]

    def unit_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.hashes))

    def check_units(self, code) -> tuple[str, ...]:
        """Validate an explicit ``code=`` argument: names of refimpl packages (or top-level modules)."""
        if isinstance(code, str) or not all(isinstance(c, str) for c in code):
            raise TypeError(f"code must be a tuple of package names such as ('refimpl.core', 'refimpl.li2024'), "
                            f"got {code!r}")
        bad = [c for c in code if c not in self.hashes]
        if bad:
            raise ValueError(f"code names unknown refimpl packages {bad}; allowed: {list(self.unit_names())}")
        return tuple(sorted(set(code)))


def _unit(modname: str, root: Path) -> str:
    parts = modname.split(".")
    if len(parts) == 1:
        return "refimpl"
    return "refimpl." + parts[1]


def _static_imports(modname: str, path: Path, files: dict) -> set[str]:
    """refimpl modules that the source of ``modname`` imports anywhere (functions included)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    package = modname if is_pkg else modname.rpartition(".")[0]
    found: set[str] = set()

    def add(name: str, child: str | None = None):
        if child and f"{name}.{child}" in files:
            found.add(f"{name}.{child}")
            return
        while name and name not in files:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _is_library(a.name):
                    add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if _is_library(mod):
                for a in node.names:
                    add(mod, a.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_LITERAL.match(node.value):
            if _is_library(node.value):
                add(node.value)
    found.discard(modname)
    return found


# ---- what a callable reaches ---------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _installed_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    out = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    out |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    return tuple(sorted(str(Path(p).resolve()) for p in out))


def _is_local_function(fn) -> bool:
    """A Python function whose code is not in refimpl's packages nor in an installed library:
    a validation module's, a test's, a notebook's. Its bytecode is part of the key."""
    if _is_library(getattr(fn, "__module__", None)):
        return False
    mod = getattr(fn, "__module__", None) or ""
    if mod.startswith("refimpl.validation"):
        return True
    filename = str(Path(fn.__code__.co_filename).resolve()) if fn.__code__.co_filename else ""
    return not filename.startswith(_installed_prefixes())


def _is_local_module(mod: types.ModuleType) -> bool:
    """A validation module, or one of a test or notebook (not refimpl's packages, not installed)."""
    if _is_library(mod.__name__):
        return False
    if mod.__name__.startswith("refimpl.validation"):
        return True
    filename = getattr(mod, "__file__", None)
    return bool(filename) and not str(Path(filename).resolve()).startswith(_installed_prefixes())


def _const_token(c, h) -> None:
    if isinstance(c, types.CodeType):
        _code_digest(c, h)
    elif isinstance(c, (frozenset, set)):
        h.update(b"{")
        for r in sorted(repr(x) for x in c):  # set order follows string hashing: not stable
            h.update(r.encode())
        h.update(b"}")
    elif isinstance(c, tuple):
        h.update(b"(")
        for x in c:
            _const_token(x, h)
        h.update(b")")
    else:
        h.update(repr(c).encode())
    h.update(b"\0")


def _code_digest(co: types.CodeType, h) -> None:
    h.update(co.co_code)
    h.update(repr(co.co_names).encode())
    h.update(repr((co.co_argcount, co.co_kwonlyargcount, co.co_freevars)).encode())
    for c in co.co_consts:
        _const_token(c, h)


def _all_names(co: types.CodeType, out: set) -> set:
    out.update(co.co_names)
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            _all_names(c, out)
    return out


@dataclass
class Reach:
    """What a callable reaches: refimpl modules, and digests of the local functions' bytecode."""

    modules: set = field(default_factory=set)
    local: set = field(default_factory=set)  # (qualname, digest)

    def functions(self) -> list[str]:
        return [f"{q}:{d}" for q, d in sorted(self.local)]

    def digest(self) -> str | None:
        if not self.local:
            return None
        h = hashlib.sha256(f"{sys.version_info[0]}.{sys.version_info[1]}".encode())
        for q, d in sorted(self.local):
            h.update(f"{q}:{d};".encode())
        return h.hexdigest()[:16]


def reach(fn, index: CodeIndex, *, max_items: int = 2000) -> Reach:
    """The refimpl modules and local functions ``fn`` reaches (see the module docstring)."""
    out = Reach()
    seen: set[int] = set()
    budget = [max_items]

    def add_module(name):
        m = index.resolve(name) if name else None
        if m is not None:
            out.modules.add(m)

    def visit(obj, depth=0):  # depth counts nested containers only
        if id(obj) in seen or budget[0] <= 0 or depth > 6:
            return
        seen.add(id(obj))
        budget[0] -= 1
        if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
            return
        if isinstance(obj, types.ModuleType):
            if _is_library(obj.__name__):
                add_module(obj.__name__)
            return
        if isinstance(obj, types.FunctionType):
            if not _is_local_function(obj):
                if _is_library(obj.__module__):
                    add_module(obj.__module__)
                return
            if obj.__code__.co_name != "<lambda>":  # a lambda is glue: what it passes is config
                h = hashlib.sha256()
                _code_digest(obj.__code__, h)
                out.local.add((getattr(obj, "__qualname__", "?"), h.hexdigest()[:16]))
            glb = obj.__globals__
            names = _all_names(obj.__code__, set())

            def visit_value(val):
                visit(val)
                if isinstance(val, types.ModuleType) and _is_local_module(val):
                    # a non-library module used as a namespace (a validation module): follow the
                    # attributes the code names
                    for attr in sorted(names):
                        if hasattr(val, attr):
                            visit(getattr(val, attr))

            for name in sorted(names):
                if _is_library(name):  # `import refimpl.x.y` inside the function
                    add_module(name)
                if name in glb:
                    visit_value(glb[name])
            for cell in obj.__closure__ or ():
                try:
                    val = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                visit_value(val)
            for d in (obj.__defaults__ or ()):
                visit(d)
            for d in (obj.__kwdefaults__ or {}).values():
                visit(d)
            return
        if isinstance(obj, types.MethodType):
            visit(obj.__func__)
            visit(obj.__self__)
            return
        if isinstance(obj, functools.partial):
            visit(obj.func)
            for a in obj.args:
                visit(a)
            for a in obj.keywords.values():
                visit(a)
            return
        if isinstance(obj, type):
            if _is_library(obj.__module__):
                add_module(obj.__module__)
            return
        if isinstance(obj, (list, tuple, set, frozenset)):
            for x in list(obj)[: budget[0]]:
                visit(x, depth + 1)
            return
        if isinstance(obj, dict):
            for x in list(obj.values())[: budget[0]]:
                visit(x, depth + 1)
            return
        mod = type(obj).__module__
        if _is_library(mod):
            add_module(mod)  # an instance of a refimpl class: its methods may compute

    visit(fn)
    return out
