"""E7, E7-peak and L14-deep under other [C] settings: the 3-layer, 2-head GPT-2 of spec L §6.

The rows' own checks, on the runs of ``validation/li2024/deep.py`` (``train_deep``: Adam, hinge,
l ~ U{1..40} per minibatch, the transformer's Numba backend) at each setting, every (setting, seed)
one cached ``li2024/deep_train`` entry (the profile's own setting shares the main report's runs)
and one ``robustness/deep_e1`` entry (its E1 curves):

- **E7** (``check_e7_every_layer``): every layer's head-mean attention from the query to
  same-pattern contexts rises by ≥ 0.2 from step 0 to the last 20% of training, every seed;
- **E7-peak** (``check_e7_peak``): the most concentrated layer ends ≥ 0.77, every seed;
- **L14-deep S1** (``check_l14_s1`` through ``deep_claim``): OOD error at l_ts = 20 ≤ 1e−2 exactly
  for S1 ≥ 1, the S1 ≥ 1.1 curves still falling from l = 10, every seed;
- **L14-deep plateau** (``check_l14_plateau`` through ``deep_claim``): for S1 < 1, error(l = 40) ≥
  0.5 × error(l = 20), every seed.

The E1 curves are measured at the lengths the two L14 checks read (10, 20 and the longest, 40;
full adds 30) on the prompt streams of the main row (one stream per length, so the values are
the main curves' values at those lengths). Each row also gives the check's verdict seed by seed
and the unseen-task error at the end of training (was the model trained at all?).

Compute (one core, Numba backend, ~0.06 s per Adam step of batch 64 at d_model 64; d_model 32 ~0.6×,
d_model 128 ~2.5×; evaluation ~10 s per run quick, ~40 s full):
quick, 8 settings × 3 seeds, six at 400 steps (~32 s a run) and two at 1500 (~105 s):
≈ 20 core-minutes. full, 10 settings × 4 seeds, seven at 1500 steps (~115 s a run; d_model 32 less),
two at 4000 (~250 s), d_model 128 (~250 s): ≈ 1.7 core-hours.

Research run behind the settings (the exploratory run that preceded this module, at the code of f200092, NumPy
backend, 1500 steps, seeds 0–2): at the full profile seed 0 solves the unseen tasks (error 0.003) but
fails OOD at every S1 (≈ 0.2), seed 1 generalises OOD at every S1, seed 2 is still training; in each
layer one head concentrates (0.64–0.78) and the other does not, so the head means stay 0.44–0.53.
The training shifts (1, 2, 3) make the unseen tasks (shifts 4, 5) the label-reversed training tasks
(an in-weights lookup of the training labelling is wrong on all of them); shifts (1, 3, 5) hold both
orientations of every training pair, so only the context can decide a label.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.claims import Claim
from refimpl.experiments.li_deep import li_instance, li_ood_curves
from refimpl.li2024 import preset as li_preset
from refimpl.li2024.checks import deep as dchecks
from refimpl.li2024.checks import ood as ochecks
from refimpl.transformer.config import preset
from refimpl.validation.li2024 import deep
from refimpl.validation.robustness._study import Dim, Setting, check_grid, dims_row, setting_row, summary_figure

ORDER = 20
GROUP, SPEC = "E7, E7-peak, L14-deep", "spec L §6 E1, E7, L14, L16 (3-layer GPT-2)"
CLAIMS = ("E7", "E7-peak", "L14-deep S1", "L14-deep plateau")
LENGTHS = {"quick": (10, 20, 40), "full": (10, 20, 30, 40)}  # ⊇ {L14_AT // 2, L14_AT, 40}: what the checks read

DIMS = [
    Dim("steps", "training length (Adam steps; profile quick 400, full 1500)",
        "E7 reads the last 20% of training and L14 the final model; at 1500 steps the exploratory run found one seed "
        "of three still training"),
    Dim("lr", "Adam learning rate and warm-up (profile 3e−4 after 50 warm-up steps, constant)",
        "how far training gets in the budget, and which solution (reading the context or an in-weights "
        "lookup of the training tasks) Adam reaches first"),
    Dim("width", "width d_model / d_ff (profile 64 / 256; the paper's width is not recoverable)",
        "the capacity to store the 18 training tasks in the weights instead of reading them from the context"),
    Dim("pos", "positional encoding (profile learned, GPT-2)",
        "with learned positions a head can attend by position; without them (the causal mask still orders "
        "tokens) attention has to go by content, which is what E7 measures"),
    Dim("norm", "layer-norm placement (profile pre-norm, GPT-2)",
        "sets the scale of the attention logits and how the three layers train together"),
    Dim("shifts", "training tasks T_tr = {(a, a + s)} (profile shifts (1, 2, 3))",
        "with shifts (1, 2, 3) the unseen tasks (shifts 4, 5) are the training tasks with their labels "
        "reversed, so an in-weights lookup of the training labelling fails on them and on OOD prompts; "
        "shifts (1, 3, 5) contain both orientations of every pair, so no lookup can predict a label"),
]


def _s(name, dims, *, train=None, tcfg=None, data=None, exploratory=False):
    over = {k: v for k, v in (("train", train), ("tcfg", tcfg), ("data", data)) if v}
    return Setting(name, dims, over, exploratory=exploratory)


_LONG = {"snapshot_every": 50, "eval_every": 100}  # 1500 quick steps: the full profile's snapshot spacing
_LONGER = {"snapshot_every": 100, "eval_every": 200}  # 4000 steps: ~40 snapshots, as 1500 steps at 50
SETTINGS = {
    "quick": [
        _s("profile", ()),
        _s("steps=1500", ("steps",), train={"steps": 1500, **_LONG}),
        _s("lr=1e-3,wu=200", ("lr",), train={"lr": 1e-3, "warmup": 200}),
        _s("d=32", ("width",), tcfg={"d_model": 32, "d_ff": 128}),
        _s("pos=none", ("pos",), tcfg={"positions": "none"}),
        _s("norm=post", ("norm",), tcfg={"norm": "post"}),
        _s("shifts=135", ("shifts",), data={"train_shifts": (1, 3, 5)}),
        _s("shifts=135,steps=1500", ("shifts", "steps"), train={"steps": 1500, **_LONG},
           data={"train_shifts": (1, 3, 5)}),
    ],
    "full": [
        _s("profile", ()),
        _s("steps=4000", ("steps",), train={"steps": 4000, **_LONGER}),
        _s("lr=1e-3,wu=200", ("lr",), train={"lr": 1e-3, "warmup": 200}),
        _s("lr=1e-4", ("lr",), train={"lr": 1e-4}),
        _s("d=32", ("width",), tcfg={"d_model": 32, "d_ff": 128}),
        _s("d=128", ("width",), tcfg={"d_model": 128, "d_ff": 512}),
        _s("pos=none", ("pos",), tcfg={"positions": "none"}),
        _s("norm=post", ("norm",), tcfg={"norm": "post"}),
        _s("shifts=135", ("shifts",), data={"train_shifts": (1, 3, 5)}),
        _s("shifts=135,steps=4000", ("shifts", "steps"), train={"steps": 4000, **_LONGER},
           data={"train_shifts": (1, 3, 5)}),
    ],
}
SEEDS = {"quick": (0, 1, 2), "full": (0, 1, 2, 3)}


def configure(profile: str, s: Setting):
    """(li2024 config, transformer config, training options) of setting ``s``: the main row's
    (``validation/li2024/deep.py`` at ``profile``) with the setting's overrides."""
    base = li_preset("default")
    if s.over.get("data"):
        base = base.replace(data=s.over["data"])
    p = {**deep.PROFILE[profile], **s.over.get("train", {})}
    tcfg = deep._tcfg(base, p)
    if s.over.get("tcfg"):
        tcfg = preset("gpt2_3l2h", **{**tcfg.to_dict(), **s.over["tcfg"]})
    return base, tcfg, p


def train_key(base, tcfg, p) -> dict:
    """The config of a ``li2024/deep_train`` entry, as ``validation/li2024/deep.py`` writes it."""
    return {"cfg": base.to_dict(), "tcfg": tcfg.to_dict(), "p": {k: v for k, v in p.items() if k not in ("seeds", "n")}}


def measure(ctx) -> tuple[list, tuple, list, list, list]:
    """(settings, seeds, configurations, runs, curves): per setting its :func:`configure`, and per
    setting and seed the trained ``train_deep`` run and its E1 curves (``li_ood_curves`` at
    :data:`LENGTHS`). Every run is requested before any is used, then every curve (a Dask run
    trains them together)."""
    settings, seeds = SETTINGS[ctx.profile], SEEDS[ctx.profile]
    check_grid(DIMS, settings)
    lengths = LENGTHS[ctx.profile]
    confs = [configure(ctx.profile, s) for s in settings]
    runs = [[ctx.cached("li2024/deep_train", {**train_key(base, tcfg, p), "seed": sd},
                        lambda base=base, tcfg=tcfg, p=p, sd=sd: deep.train_deep(base, tcfg, p, sd, ctx.progress))
             for sd in seeds] for base, tcfg, p in confs]
    curves = [[ctx.cached("robustness/deep_e1", {**train_key(base, tcfg, p), "seed": sd, "S1": ochecks.L14_S1,
                                                 "lengths": lengths, "n": p["n"]},
                          lambda base=base, tcfg=tcfg, p=p, sd=sd, r=r: li_ood_curves(
                              r.params, tcfg, li_instance(base, sd), ochecks.L14_S1, lengths, p["n"], seed=sd,
                              alpha=base.data.alpha_test))
               for sd, r in zip(seeds, rs)] for (base, tcfg, p), rs in zip(confs, runs)]
    return settings, seeds, confs, runs, curves


def judge(trajs: list, e1: list) -> dict:
    """The four rows' own checks on one setting's runs (per-seed E7 trajectories and E1 curves)."""
    return {"E7": dchecks.check_e7_every_layer(trajs), "E7-peak": dchecks.check_e7_peak(trajs),
            "L14-deep S1": dchecks.deep_claim(ochecks.check_l14_s1(e1), deep.MODEL),
            "L14-deep plateau": dchecks.deep_claim(ochecks.check_l14_plateau(e1), deep.MODEL)}


def run(ctx) -> list[Claim]:
    settings, seeds, confs, runs, curves = measure(ctx)
    n = deep.PROFILE[ctx.profile]["n"]
    checks, per_seed, unseen = [], [], []
    for rs, cs in zip(runs, curves):
        trajs = [r.extra["traj"] for r in rs]
        checks.append(judge(trajs, cs))
        per_seed.append([judge([t], [c]) for t, c in zip(trajs, cs)])  # the same checks, one seed at a time
        unseen.append([float(r.records["error"][-1]) for r in rs])

    # one scalar per (setting, seed) for the figures: the quantity each check compares with its threshold
    def rise(c):
        return np.min(c.numbers["rise"], axis=1)  # per seed: the least-rising layer

    def s1_big(c):  # per seed: the largest error at l = 20 over S1 ≥ 1 (must be ≤ 1e-2)
        big = np.asarray(c.numbers["S1"]) >= 1
        return np.maximum(np.asarray(c.numbers["error_at"])[:, big].max(axis=1), 0.5 / n)

    def ratio(c):  # per seed: the smallest error(40) / error(20) over S1 < 1 (must be ≥ 0.5)
        return np.clip(np.asarray(c.numbers["ratio"]).min(axis=1), 1e-3, 1e3)

    scalar = {"E7": rise, "E7-peak": lambda c: np.asarray(c.numbers["peak"]), "L14-deep S1": s1_big,
              "L14-deep plateau": ratio}
    fig_args = {
        "E7": dict(ylabel="least rise over layers, end − start (dots: per seed)", target=(dchecks.E7_RISE, 1.0),
                   target_label=f"pass: every layer ≥ {dchecks.E7_RISE:g}"),
        "E7-peak": dict(ylabel="highest layer's end mass (dots: per seed)", target=(dchecks.E7_FINAL, 1.0),
                        target_label=f"pass: ≥ {dchecks.E7_FINAL:g} (paper 0.77–0.88)"),
        "L14-deep S1": dict(ylabel="max over S1 ≥ 1 of the OOD error at l = 20", log=True,
                            target=ochecks.L14_EPS,
                            target_label=f"S1 ≥ 1 must be ≤ {ochecks.L14_EPS:g} (and S1 < 1 above it)"),
        "L14-deep plateau": dict(ylabel="min over S1 < 1 of error(40) / error(20) (clipped)", log=True,
                                 target=ochecks.L14_PLATEAU_RATIO,
                                 target_label=f"pass: ≥ {ochecks.L14_PLATEAU_RATIO:g}"),
    }
    figs = {}
    for claim in CLAIMS:
        ps = [scalar[claim](c[claim]) for c in checks]
        worst = [float(np.max(v)) if claim == "L14-deep S1" else float(np.min(v)) for v in ps]
        figs[claim] = summary_figure(
            ctx, f"deep_{claim.replace(' ', '_')}", f"{claim}: the row's check per setting ({deep.MODEL})", settings,
            worst, [c[claim].verdict for c in checks], per_seed=[v.tolist() for v in ps], **fig_args[claim])

    rows = [dims_row(GROUP, SPEC, DIMS, settings, seeds, figure=figs["E7"])]
    for claim in CLAIMS:
        for s, c, pcs, un, (_, tcfg, p) in zip(settings, checks, per_seed, unseen, confs):
            cl = c[claim]
            sv = [pc[claim].verdict for pc in pcs]
            measured = (cl.measured + "; seed by seed: " + ", ".join(f"seed {sd} {v}" for sd, v in zip(seeds, sv))
                        + f"; unseen-task error at l_ts = 20 after {p['steps']} steps: "
                        + ", ".join(f"{e:.3f}" for e in un))
            rows.append(setting_row(claim, cl.spec, s, DIMS, seeds, measured=measured,
                                    expected=cl.expected, verdict=cl.verdict, figure=figs[claim],
                                    numbers={**cl.numbers, "seed_verdicts": sv, "unseen_error_end": un,
                                             "steps": p["steps"], "tcfg": tcfg.to_dict()}))
    return rows
