"""Deep-model experiments (refimpl.experiments.yang_deep / li_deep, refimpl.transformer.train) and their
checks: tiny real runs (the code
paths end to end, determinism, the wall-clock loop) and every check on both sides of its threshold
with fake measurements, as tests/test_li2024_checks_*.py do (the li2024 deep-model checks E1/E2/E7
themselves: tests/test_li2024_checks_deep.py)."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.core.optim import lr_at
from refimpl.core.trajectory import Trajectory
from refimpl.experiments import li_deep, yang_deep
from refimpl.experiments.adapters import li_token_roles
from refimpl.li2024 import preset as li_preset
from refimpl.li2024.checks.mechanism import attention_split
from refimpl.li2024.data import prompt_rng, sample_batch
from refimpl.transformer import model as tmodel
from refimpl.transformer.config import preset
from refimpl.transformer.model import init_params, loss_and_grads
from refimpl.transformer.train import train_adam
from refimpl.yang2024 import checks as yang_checks
from refimpl.yang2024.config import Config as YConfig

YCFG = YConfig(K=10, N=4, d=5, m=3, H=1, tau=0.01)


def _ytcfg(H=2):
    return preset("vaswani4", d_in=YCFG.d + 1, d_model=8, d_ff=16, n_heads=H, n_layers=2, max_T=YCFG.K)


@pytest.fixture(scope="module")
def ydata():
    return yang_deep.make_yang_data(YCFG, 200, 20, 0, n_train_eval=32)


# ------------------------------------------------------------------------------------ training loop
def test_train_adam_steps_records_and_learns(ydata):
    cfg = _ytcfg()
    fixed = yang_deep.yang_batch_fn(ydata, 16, 3)(0)  # one fixed batch: the loss on it must fall
    params = init_params(cfg, 0)
    l0 = loss_and_grads(params, fixed, cfg)[0]
    res = train_adam(params, cfg, lambda s: fixed, lr=1e-2, steps=40, eval_every=10,
                        eval_fn=lambda p: {"fixed": loss_and_grads(p, fixed, cfg)[0]}, snapshot_every=20, progress=False)
    assert isinstance(res, Trajectory) and res.model == "transformer" and res.config is cfg
    np.testing.assert_array_equal(res.records["step"], [0, 10, 20, 30, 40])
    assert res.records["fixed"][0] == pytest.approx(l0)
    assert res.records["fixed"][-1] < 0.5 * l0
    assert res.steps_done == 40 and len(res.history["loss"]) == 40 and len(res.history["step_time"]) == 40
    assert res.history["loss"][0] == pytest.approx(l0)  # the minibatch loss before the first update
    assert sorted(res.snapshots) == [0, 20, 40]
    np.testing.assert_array_equal(res.snapshots[40]["read_out.W"], res.params["read_out.W"])
    assert not np.array_equal(res.snapshots[0]["read_out.W"], res.params["read_out.W"])
    assert np.all(np.diff(res.records["time"]) >= 0)


def test_train_adam_budget_mode_stops_on_the_training_clock(ydata):
    cfg = _ytcfg()
    res = train_adam(init_params(cfg, 0), cfg, yang_deep.yang_batch_fn(ydata, 8, 1), lr=1e-3, budget_s=0.3,
                        eval_every_s=0.1, eval_fn=lambda p: yang_deep.yang_losses(p, cfg, ydata, which=("train",)),
                        progress=False)
    assert res.steps_done >= 1
    t = res.extra["train_time"]
    assert t >= 0.3  # the last step crossed the budget
    assert t - res.history["step_time"][-1] < 0.3  # ... and the one before had not
    assert res.records["time"][-1] == t and res.records["step"][-1] == res.steps_done
    assert len(res.records["train"]) == len(res.records["step"]) >= 2
    assert res.wall_s >= t  # evaluations are off the training clock, not off the wall clock


def test_train_adam_is_deterministic(ydata):
    cfg = _ytcfg()
    kw = dict(lr=1e-3, batch_size=8, seed=5, steps=6, eval_every=3, progress=False)
    a = yang_deep.run_yang(cfg, ydata, **kw)
    b = yang_deep.run_yang(cfg, ydata, **kw)
    for k in ("train", "in", "ood", "step"):
        np.testing.assert_array_equal(a.records[k], b.records[k])
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert a.seed == 5 and not a.snapshots
    c = yang_deep.run_yang(cfg, ydata, **{**kw, "seed": 6})
    assert not np.array_equal(a.history["loss"], c.history["loss"])


def test_train_adam_cosine_schedule_and_errors(ydata):
    cfg = _ytcfg()
    bf = yang_deep.yang_batch_fn(ydata, 4, 0)
    with pytest.raises(ValueError, match="exactly one"):
        train_adam(init_params(cfg, 0), cfg, bf, lr=1e-3)
    with pytest.raises(ValueError, match="exactly one"):
        train_adam(init_params(cfg, 0), cfg, bf, lr=1e-3, steps=2, budget_s=1.0)
    with pytest.raises(ValueError, match="cosine"):
        train_adam(init_params(cfg, 0), cfg, bf, lr=1e-3, budget_s=1.0, schedule="cosine")
    with pytest.raises(ValueError, match="schedule must be"):
        train_adam(init_params(cfg, 0), cfg, bf, lr=1e-3, steps=2, schedule="linear")
    with pytest.raises(ValueError, match="lr must be"):
        train_adam(init_params(cfg, 0), cfg, bf, lr=0.0, steps=2)
    # warm-up, then cosine decay: the learning rates used, step by step
    res = train_adam(init_params(cfg, 0), cfg, bf, lr=1e-2, steps=6, warmup=2, schedule="cosine", progress=False)
    np.testing.assert_allclose(res.history["lr"], [5e-3, 1e-2, 1e-2, 1e-2 * 0.5 * (1 + np.cos(np.pi / 4)), 5e-3,
                                           1e-2 * 0.5 * (1 + np.cos(3 * np.pi / 4))])
    assert lr_at(3, 1e-3, steps=None) == 1e-3


def test_run_yang_records_and_rejects_a_wrong_model(ydata):
    cfg = _ytcfg()
    res = yang_deep.run_yang(cfg, ydata, lr=1e-3, batch_size=8, seed=0, steps=4, eval_every=2, progress=False)
    for k in ("train", "in", "ood"):
        assert len(res.records[k]) == 3 and np.all(np.isfinite(res.records[k]))
    # at initialisation the output is ≈ 0, so the inference loss is ≈ (1/K)‖ŷ*‖² (OOD labels are larger)
    ref = {k: np.mean(np.sum(ydata["stars"][k] ** 2, axis=1)) / YCFG.K for k in ("in", "ood")}
    assert ref["ood"] > ref["in"]
    for k in ("in", "ood"):
        assert res.records[k][0] == pytest.approx(ref[k], rel=0.5)
    with pytest.raises(ValueError, match="d_in = d \\+ 1"):
        yang_deep.run_yang(cfg.replace(d_in=3), ydata, lr=1e-3, batch_size=8, seed=0, steps=1)


def test_yang_data_matches_the_ridge_targets(ydata):
    from refimpl.yang2024.population import ridge_predict

    y = ydata["tests"]["ood"]
    np.testing.assert_allclose(ydata["stars"]["ood"], ridge_predict(ydata["Z_all"], YCFG.N, y[:, :YCFG.N],
                                                                     YCFG.m * YCFG.tau))
    np.testing.assert_array_equal(ydata["stars"]["in"][:, :YCFG.N], ydata["tests"]["in"][:, :YCFG.N])  # copies


def test_predict_chunked_equals_forward(ydata):
    from refimpl.transformer.model import forward

    cfg = _ytcfg(H=2)
    p = init_params(cfg, 1)
    X = np.random.default_rng(0).standard_normal((37, YCFG.K, YCFG.d + 1))
    old = tmodel.MAX_ATTN_ELEMENTS
    try:
        tmodel.MAX_ATTN_ELEMENTS = 2 * 10 * 10 * 5  # chunks of 5 prompts
        out, attn = tmodel.predict_chunked(p, X, cfg, with_attn=True)
    finally:
        tmodel.MAX_ATTN_ELEMENTS = old
    ref, cache = forward(p, {"X": X}, cfg)
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-14)
    for a, b in zip(attn, cache["attn"]):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


# ------------------------------------------------------------------------------------ spec L
LI = li_preset("tiny")


def _ltcfg(max_T=LI.data.l_test + 1):
    return preset("gpt2_3l2h", d_in=LI.data.d, d_model=8, d_ff=16, n_layers=2, max_T=max_T)


def test_attention_mass_of_uniform_and_one_hot_attention():
    B, H, T = 3, 2, 5
    mask = np.zeros((B, T), dtype=bool)
    mask[:, [0, 2]] = True
    uniform = [np.full((B, H, T, T), 1.0 / T)]
    np.testing.assert_allclose(li_deep.attention_mass(uniform, mask), 2 / T)
    hot = np.zeros((B, H, T, T))
    hot[:, 0, -1, 2] = 1.0  # head 0: the query looks at token 2 (masked); head 1 at token 1 (not)
    hot[:, 1, -1, 1] = 1.0
    np.testing.assert_array_equal(li_deep.attention_mass([hot, hot], mask), np.tile([[1.0, 0.0]], (B, 2, 1)))


def test_li_instance_is_the_one_layer_runs_instance():
    from refimpl.li2024.train import train

    run = train(LI.replace(train=dict(steps=0)), 3, backend="numpy", progress=False)
    inst = li_deep.li_instance(LI, 3)
    np.testing.assert_array_equal(inst.mu, run.data.mu)
    np.testing.assert_array_equal(inst.q, run.data.q)
    np.testing.assert_array_equal(inst.tasks_train, run.data.tasks_train)


@pytest.fixture(scope="module")
def li_run():
    inst = li_deep.li_instance(LI, 0)
    tcfg = _ltcfg(max_T=13)
    res = li_deep.train_li(tcfg, inst, lr=3e-3, steps=30, batch_size=16, l_range=(4, 12), seed=0, snapshot_every=10,
                      eval_every=10, n_eval=64, progress=False)
    return tcfg, inst, res


def test_train_li_end_to_end(li_run):
    tcfg, inst, res = li_run
    assert sorted(res.snapshots) == [0, 10, 20, 30] and res.seed == 0 and res.extra["l_range"] == (4, 12)
    np.testing.assert_array_equal(res.records["step"], [0, 10, 20, 30])
    assert res.records["attn_same"].shape == (4, tcfg.n_layers, tcfg.n_heads)
    assert np.all((res.records["error"] >= 0) & (res.records["error"] <= 1))
    traj = li_deep.li_attention_trajectory(res, tcfg, inst, 50)
    assert traj["same"].shape == (4, tcfg.n_layers, tcfg.n_heads) and traj["other"].shape == traj["same"].shape
    assert np.all((traj["same"] >= 0) & (traj["same"] + traj["other"] <= 1 + 1e-12))
    # near initialisation (weights N(0, 0.02²)) attention is close to uniform over the l + 1 visible tokens
    np.testing.assert_allclose(traj["same"][0], traj["uniform_same"], atol=0.02)
    bare = Trajectory(model="transformer", config=tcfg, seed=0, params=res.params)
    with pytest.raises(ValueError, match="snapshot_every"):
        li_deep.li_attention_trajectory(bare, tcfg, inst, 5)


def test_train_li_and_run_yang_on_the_numba_backend_follow_the_numpy_runs(li_run, ydata):
    # the validation profiles train the deep models with backend="numba": a few steps agree with the
    # NumPy path to rounding (the two paths are proven equal per step in test_transformer_numba.py)
    tcfg, inst, res = li_run
    nb = li_deep.train_li(tcfg, inst, lr=3e-3, steps=5, batch_size=16, l_range=(4, 12), seed=0, eval_every=5,
                          n_eval=64, progress=False, backend="numba")
    np.testing.assert_allclose(nb.history["loss"], res.history["loss"][:5], rtol=1e-9)
    kw = dict(lr=1e-3, batch_size=8, seed=0, steps=4, eval_every=2, progress=False)
    a = yang_deep.run_yang(_ytcfg(), ydata, **kw)
    b = yang_deep.run_yang(_ytcfg(), ydata, **kw, backend="numba")
    np.testing.assert_allclose(b.history["loss"], a.history["loss"], rtol=1e-9)
    np.testing.assert_allclose(b.records["ood"], a.records["ood"], rtol=1e-9)


def test_li_training_lengths_and_errors(li_run):
    tcfg, inst, _ = li_run
    bf = li_deep.li_batch_fn(inst, 4, (3, 6), 0)
    lengths = {bf(s)["X"].shape[1] - 1 for s in range(40)}
    assert lengths == {3, 4, 5, 6}
    with pytest.raises(ValueError, match="l_range"):
        li_deep.li_batch_fn(inst, 4, (5, 3), 0)
    with pytest.raises(ValueError, match="max_T"):
        li_deep.train_li(tcfg, inst, lr=1e-3, steps=1, batch_size=4, l_range=(1, 40), seed=0)
    with pytest.raises(ValueError, match="readout 'last'"):
        li_deep.train_li(tcfg.replace(readout="all"), inst, lr=1e-3, steps=1, batch_size=4, l_range=(1, 8), seed=0)


def test_li_error_curves_use_the_one_layer_prompt_streams(li_run):
    tcfg, inst, res = li_run
    c = li_deep.li_error_curve(res.params, tcfg, inst, [2, 8], 40, seed=0, tasks="unseen", alpha=0.8, key=2)
    assert c["error"].shape == (2,) and c["error_ci95"].shape == (2, 2)
    # recompute l = 8 by hand from the stream refimpl.li2024.metrics.error_curve uses
    b = sample_batch(inst, 40, prompt_rng(0, 2, 8), tasks="unseen", l=8, alpha=0.8)
    from refimpl.experiments.adapters import li_tokens
    from refimpl.transformer.model import predict

    X, z = li_tokens(b)
    assert c["error"][1] == np.mean(z * predict(res.params, {"X": X}, tcfg) <= 0)
    o = li_deep.li_ood_curves(res.params, tcfg, inst, (0.5, 1.3), [4], 30, seed=0, alpha=0.8)
    assert set(o) == {0.5, 1.3} and o[0.5]["lengths"].tolist() == [4]


def test_li_token_roles_match_the_one_layer_attention_split(li_run):
    _, inst, _ = li_run
    b = sample_batch(inst, 30, np.random.default_rng(0), tasks="unseen")
    l = b["pattern"].shape[1] - 1
    attn = np.random.default_rng(1).dirichlet(np.ones(l), size=30)  # (B, l) attention over the contexts
    same, other = attention_split(attn, b["pattern"], b["task"])
    roles = li_token_roles(b)
    full = np.concatenate([attn, np.zeros((30, 1))], axis=1)[:, None, None, :].repeat(l + 1, axis=2)  # (B, 1, T, T)
    np.testing.assert_allclose(li_deep.attention_mass([full], roles["same"])[:, 0, 0], same)
    np.testing.assert_allclose(li_deep.attention_mass([full], roles["other"])[:, 0, 0], other)


# ------------------------------------------------------------------------------------ checks: Fig. 2(b)
def _yrun(train, ind, ood):
    """A fake run_yang Trajectory: records every 10 steps."""
    n = 10 * (len(train) - 1)
    return Trajectory(model="transformer", config=None, seed=0, params={}, history={"loss": np.ones(n)},
                      records={"step": np.arange(len(train)) * 10, "train": np.array(train), "in": np.array(ind),
                               "ood": np.array(ood)})


def test_fig2b_both_sides():
    ok = _yrun([4, 2, 1, 0.5], [8, 4, 1, 0.4], [30, 20, 10, 5])
    assert yang_checks.check_fig2b(ok).verdict == "pass"
    flat = _yrun([4, 3.5, 3, 2.5], [8, 4, 1, 0.4], [30, 20, 10, 5])  # training loss falls only to 0.62×
    assert yang_checks.check_fig2b(flat).verdict == "fail"
    assert yang_checks.check_fig2b(flat, fall=0.7).verdict == "pass"
    below = _yrun([4, 2, 1, 0.5], [8, 4, 1, 0.4], [9, 3, 0.9, 0.3])  # OOD below in-domain at 3 of 4 records
    assert yang_checks.check_fig2b(below).verdict == "fail"
    assert yang_checks.check_fig2b(below, ood_above=0.25).verdict == "pass"


# ------------------------------------------------------------------------------------ checks: Fig. 5
def _fig5_runs(final, steps):
    runs = {}
    for H, f, s in zip((1, 2, 4, 8, 16, 32, 64), final, steps):
        runs[H] = Trajectory(model="transformer", config=None, seed=0, params={},
                             history={"loss": np.ones(s), "step_time": np.full(s, 10.0 / s)},
                             records={"step": np.array([0, s // 2, s]), "time": np.array([0.0, 5.0, 10.0]),
                                      "train": np.array([5.0, np.sqrt(5.0 * f), f])},
                             extra={"train_time": 10.0})
    return runs


def test_fig5_best_h_both_sides():
    steps = [100, 95, 90, 80, 60, 40, 20]
    good = _fig5_runs([0.5, 0.3, 0.2, 0.25, 0.4, 0.8, 1.5], steps)
    c = yang_checks.check_fig5_best_h(good)
    assert c.verdict == "pass" and c.numbers["best_H"] == 4
    bad = _fig5_runs([0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1], steps)
    c = yang_checks.check_fig5_best_h(bad)
    assert c.verdict == "fail" and c.numbers["best_H"] == 64
    assert yang_checks.check_fig5_best_h(bad, small_h=64).verdict == "pass"


def test_fig5_steps_both_sides():
    final = [0.5] * 7
    assert yang_checks.check_fig5_steps(_fig5_runs(final, [100, 95, 90, 80, 60, 40, 20])).verdict == "pass"
    flat = yang_checks.check_fig5_steps(_fig5_runs(final, [100, 99, 101, 100, 98, 97, 90]))  # ρ < 0 but ratio 0.9
    assert flat.verdict == "fail" and flat.numbers["ratio"] == pytest.approx(0.9)
    noisy = yang_checks.check_fig5_steps(_fig5_runs(final, [100, 20, 90, 30, 80, 40, 50]))  # ratio 0.5, ρ weak
    assert noisy.verdict == "fail" and noisy.numbers["rho"] > -0.8


def test_fig5_per_iteration_interpolates_in_log_loss():
    runs = _fig5_runs([0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05], [100, 95, 90, 80, 60, 40, 20])
    c = yang_checks.fig5_per_iteration(runs)
    assert c.verdict == "info" and c.numbers["common_step"] == 20
    # H = 64 ends exactly at step 20; H = 1 reaches step 20 in its first half: 5 · (0.5/5)^(20/50)
    assert c.numbers["loss"][-1] == pytest.approx(0.05)
    assert c.numbers["loss"][0] == pytest.approx(5.0 * (np.sqrt(0.25) / 5.0) ** (20 / 50))
    assert np.isnan(yang_checks.loss_at_step(runs[64], 21))
