"""Frozen dataclass configurations: overrides by field name, including dotted nested names.

Every model's config is a frozen dataclass (possibly with dataclass sections, e.g. li2024's
``data``/``model``/``train``) that validates itself in ``__post_init__``. :func:`apply_overrides`
is the one way to change fields by name, used by ``preset(name, **overrides)``, by
``refimpl train --set`` and by ``refimpl sweep --set``:

    apply_overrides(cfg, {"data.alpha": 0.4, "model.m": 50})     # dotted names
    apply_overrides(cfg, {"data": {"alpha": 0.4}})               # a section as a dict

An unknown field raises ``ValueError`` naming it and listing the allowed names; each new value
is validated by the config itself (its ``__post_init__``), so a wrong type or a value out of range
fails with the config's own message before any work starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def field_names(cfg) -> list[str]:
    """Every settable field of ``cfg`` by its dotted name (sections expanded), in order."""
    out = []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            out += [f"{f.name}.{n}" for n in field_names(v)]
        else:
            out.append(f.name)
    return out


def _nest(overrides: Mapping[str, Any]) -> dict:
    nested: dict = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"override names must be non-empty strings, got {key!r}")
        head, _, rest = key.partition(".")
        if rest:
            sub = nested.setdefault(head, {})
            if not isinstance(sub, dict):
                raise ValueError(f"override {key!r} conflicts with a value given for {head!r}")
            sub[rest] = value
        elif isinstance(value, Mapping) and head in nested and isinstance(nested[head], dict):
            nested[head].update(value)
        else:
            nested[head] = dict(value) if isinstance(value, Mapping) else value
    return nested


def apply_overrides(cfg, overrides: Mapping[str, Any] | None = None, **kw):
    """A copy of the frozen dataclass ``cfg`` with fields replaced (dotted names or section dicts).

    Raises ``ValueError`` for an unknown field (with the allowed names) and whatever the config's
    own validation raises for a bad value."""
    merged = {**(overrides or {}), **kw}
    if not merged:
        return cfg
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"cfg must be a dataclass instance, got {type(cfg).__name__}")
    nested = _nest(merged)
    own = {f.name: f for f in dataclasses.fields(cfg)}
    changes = {}
    for name, value in nested.items():
        if name not in own:
            raise ValueError(f"unknown {type(cfg).__name__} field {name!r}; allowed: {field_names(cfg)}")
        current = getattr(cfg, name)
        if dataclasses.is_dataclass(current) and not isinstance(current, type):
            if not isinstance(value, Mapping):
                raise ValueError(f"{name} is a section of {type(cfg).__name__}; give its fields as "
                                 f"'{name}.<field>' (allowed: {field_names(current)})")
            changes[name] = apply_overrides(current, value)
        else:
            changes[name] = value
    return dataclasses.replace(cfg, **changes)


def parse_value(text: str):
    """A command-line value: JSON when it parses (``1`` int, ``0.5`` float, ``true``/``false``,
    ``null``, ``[1, 2]`` → tuple), ``none`` → None, anything else the string itself."""
    import json

    if text.strip().lower() == "none":
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_assignment(text: str) -> tuple[str, str]:
    """``"data.alpha=0.4"`` → ``("data.alpha", "0.4")``; ``ValueError`` naming the bad text otherwise."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"--set expects FIELD=VALUE (e.g. data.alpha=0.4), got {text!r}")
    return name.strip(), value.strip()


def load_config_file(path) -> dict:
    """Overrides from a ``.toml`` or ``.json`` file: a table of (dotted or nested) field names."""
    import json
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise ValueError(f"--config {p} is a folder; give a .toml or .json file")
    if not p.is_file():
        raise ValueError(f"--config {p}: no such file")
    if p.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise ValueError("--config FILE.toml needs Python ≥ 3.11 (or the tomli package); "
                                 "use a .json file instead") from None
        try:
            data = tomllib.loads(p.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"--config {p} is not valid TOML: {exc}") from exc
    elif p.suffix == ".json":
        try:
            data = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"--config {p} is not valid JSON: {exc}") from exc
    else:
        raise ValueError(f"--config must be a .toml or .json file, got {p.name!r}")
    if not isinstance(data, dict):
        raise ValueError(f"--config {p} must hold a table of field names, got {type(data).__name__}")

    def tuples(v):
        if isinstance(v, list):
            return tuple(v)
        if isinstance(v, dict):
            return {k: tuples(x) for k, x in v.items()}
        return v

    return {k: tuples(v) for k, v in data.items()}
