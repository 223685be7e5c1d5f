"""Shared by the robustness modules: a sensitivity grid's dimensions and settings, its report rows
and its summary figure.

A study declares

- ``DIMS``: the [C] choices it varies, each with the reason it plausibly decides the claim
  (:class:`Dim`);
- per profile, its settings (:class:`Setting`): the profile's own setting (``dims=()``) and
  settings that change one or more dimensions, with their config overrides;

and returns, from ``run(ctx)``, one ``info`` row that lists the dimensions (:func:`dims_row`), then
one row per setting (:func:`setting_row`) whose verdict is the claim's own check at that setting.
Row ids are ``"<claim> · <setting>"``; ``numbers`` carry the setting, the dimensions it changes,
the seeds and the measured values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refimpl.core.claims import Claim


@dataclass(frozen=True)
class Dim:
    """A [C] choice a study varies: ``key`` (used in setting names), ``label`` (what it is, with
    the profile's value) and ``reason`` (why it plausibly decides the claim)."""

    key: str
    label: str
    reason: str


@dataclass(frozen=True)
class Setting:
    """One point of a sensitivity grid: ``name`` (``"lr=0.25"``; ``"profile"`` for the profile's
    own setting), ``dims`` (keys of the :class:`Dim` it changes; empty for the profile's setting),
    ``over`` (config overrides, by section: ``{"train": {"lr": 0.25}}``), ``knobs`` (measurement
    options of the study: a threshold, a step budget) and ``exploratory`` (outside the spec's
    stated assumptions: reported as a diagnosis, never as a fix)."""

    name: str
    dims: tuple[str, ...] = ()
    over: dict = field(default_factory=dict)
    knobs: dict = field(default_factory=dict)
    exploratory: bool = False


def check_grid(dims: list[Dim], settings: list[Setting], *, min_dims: int = 3) -> None:
    """Raise ValueError unless the setting names are unique, every setting's dimensions are
    declared, exactly one setting is the profile's own (``dims=()``) and at least ``min_dims``
    declared dimensions are varied."""
    keys = [d.key for d in dims]
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ValueError(f"setting names must be unique, got {names}")
    for s in settings:
        unknown = [d for d in s.dims if d not in keys]
        if unknown:
            raise ValueError(f"setting {s.name!r} varies undeclared dimensions {unknown}; declared: {keys}")
    if sum(not s.dims for s in settings) != 1:
        raise ValueError("exactly one setting must be the profile's own (dims=())")
    varied = {d for s in settings for d in s.dims}
    if len(varied) < min_dims:
        raise ValueError(f"a study varies at least {min_dims} dimensions, this one {sorted(varied)}")


def dims_row(claim: str, spec: str, dims: list[Dim], settings: list[Setting], seeds, *, figure=None) -> Claim:
    """The study's header row (``info``): what is varied and why, and over how many seeds."""
    varied = [d for d in dims if any(d.key in s.dims for s in settings)]
    text = "; ".join(f"{d.key}: {d.label} — {d.reason}" for d in varied)
    return Claim(f"{claim} · dimensions", f"{claim}: the [C] choices swept and why they plausibly decide it", spec,
                 f"{len(settings)} settings × {len(tuple(seeds))} seeds ({', '.join(map(str, seeds))}); {text}",
                 "reported (the rows below judge each setting by the claim's own check)", "info", figure=figure,
                 numbers={"dims": [d.__dict__ for d in varied], "settings": [s.name for s in settings],
                          "seeds": list(seeds)})


def setting_row(claim: str, spec: str, setting: Setting, dims: list[Dim], seeds, *, measured: str, expected: str,
                verdict: str, numbers: dict, figure=None) -> Claim:
    """One setting's row: the claim's check at this setting (its verdict unchanged in rule and
    threshold)."""
    by_key = {d.key: d for d in dims}
    what = ("the profile's own setting" if not setting.dims else
            ", ".join(by_key[k].label.split(" (")[0] for k in setting.dims) + f" changed ({setting.name})")
    if setting.exploratory:
        what += ", EXPLORATORY (outside the spec's assumptions)"
    return Claim(f"{claim} · {setting.name}", f"{claim} under {what}", spec, measured, expected, verdict,
                 figure=figure,
                 numbers={"setting": setting.name, "dims": list(setting.dims), "overrides": setting.over,
                          "knobs": setting.knobs, "exploratory": setting.exploratory, "seeds": list(seeds), **numbers})


def summary_figure(ctx, name: str, title: str, settings: list[Setting], values, verdicts, *, ylabel: str,
                   lo=None, hi=None, per_seed=None, target: tuple[float, float] | float | None = None,
                   target_label: str = "pass region", log: bool = False) -> str:
    """One marker per setting (filled: pass, open: fail), an interval ``lo``–``hi`` where given,
    the per-seed values as small dots, and the claim's pass region (an interval ``target``) or
    value (a float) shaded: the sweep at a glance. Saved as ``robustness_<name>.png``."""
    x = np.arange(len(settings))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(settings) + 2), 4.2))
    if isinstance(target, tuple):
        ax.axhspan(*target, color="tab:green", alpha=0.15, label=target_label)
    elif target is not None:
        ax.axhline(target, color="tab:green", lw=1.5, label=target_label)
    vals = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    if lo is not None and hi is not None:
        lo_, hi_ = (np.asarray([np.nan if v is None else v for v in a], dtype=float) for a in (lo, hi))
        ax.vlines(x, lo_, hi_, color="0.3", lw=1.2)
    if per_seed is not None:
        for i, ps in enumerate(per_seed):
            ps = np.asarray([np.nan if v is None else v for v in ps], dtype=float)
            ax.plot(np.full(ps.shape, x[i]) + 0.15, ps, ".", color="0.55", ms=3)
    ok = np.array([v == "pass" for v in verdicts])
    ax.plot(x[ok], vals[ok], "o", color="tab:green", label="pass")
    ax.plot(x[~ok], vals[~ok], "o", mfc="white", color="tab:red", label="fail")
    ax.set_xticks(x, [s.name + (" *" if s.exploratory else "") for s in settings], rotation=60, ha="right",
                  fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return ctx.save_figure(fig, name)
