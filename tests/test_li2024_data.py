"""Spec L data model (refimpl.li2024.data): properties of make_instance and sample_batch, L1–L6.

Configs (d_x, M1, M2, β, K_κ, α, shifts, seeds, ...) are drawn by hypothesis. Frequencies are
checked against their probabilities with a 5-sigma binomial bound, |p̂ − p| ≤ 5 √(p(1 − p)/N):
a false alarm has probability ~6e-7 per comparison, while every error of the sampling rule that
matters (a pattern drawn with the wrong weight, labels swapped, a biased coin) moves p̂ by far more
at the sample sizes used (N ≥ 5e4 context examples).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl import li2024
from refimpl.li2024.config import DataConfig

FLOATS = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False)
SIGMAS = 5.0


def within_5_sigma(count, n, p) -> tuple[bool, str]:
    """Is count/n within 5 binomial standard errors of p? (exact when p is 0 or 1)."""
    phat = count / n
    se = math.sqrt(p * (1 - p) / n)
    ok = abs(phat - p) <= SIGMAS * se + 1e-15
    return ok, f"observed {phat:.5f} vs p = {p:.5f} (5σ = {SIGMAS * se:.5f}, n = {n})"


@st.composite
def data_configs(draw, alpha=None, min_M1=4, max_M1=8):
    """A valid DataConfig whose T_tr meets Condition 3.2 (|S| ≥ √(M1 − 1), so |T_tr|/|T| ≥ (M1 − 1)^-1/2)."""
    M1 = draw(st.integers(min_M1, max_M1), label="M1")
    M2 = draw(st.integers(1, 6), label="M2")
    d_x = M1 + M2 + draw(st.integers(0, 3), label="d_x - (M1 + M2)")
    k_min = math.ceil(math.sqrt(M1 - 1))
    shifts = draw(st.lists(st.integers(1, M1 - 1), min_size=k_min, max_size=M1 - 1, unique=True), label="shifts")
    if alpha is None:
        alpha = draw(st.floats(0.0, 1.0, **FLOATS), label="alpha")
    M1_ood = draw(st.integers(2, M1 // 2), label="M1_ood")
    # with two ODR patterns there is no task-irrelevant OOD pattern, so α' must be 1
    # (sample_batch requires it; DataConfig does not check it: see test_errors.py)
    alpha_test = 1.0 if M1_ood == 2 else draw(st.floats(0.0, 1.0, **FLOATS), label="alpha_test")
    return DataConfig(
        d_x=d_x,
        d_y=draw(st.integers(1, 5), label="d_y"),
        M1=M1,
        M2=M2,
        beta=draw(st.floats(0.25, 4.0, **FLOATS), label="beta"),
        kappa_max=draw(st.floats(0.0, 0.5, **FLOATS), label="kappa_max"),
        basis=draw(st.sampled_from(["random", "standard"]), label="basis"),
        train_shifts=tuple(shifts),
        alpha=alpha,
        l_train=draw(st.integers(1, 12), label="l_train"),
        alpha_test=alpha_test,
        l_test=draw(st.integers(1, 12), label="l_test"),
        M1_ood=M1_ood,
        S1=draw(st.floats(0.25, 2.0, **FLOATS), label="S1"),
    )


seeds = st.integers(0, 2**32 - 1)


# --------------------------------------------------------------------------------------------
# L1, L5: patterns and label embedding
# --------------------------------------------------------------------------------------------
@settings(max_examples=40)
@given(cfg=data_configs(), seed=seeds)
def test_patterns_are_orthogonal_with_norm_beta_and_q_is_a_unit_vector(cfg, seed):
    inst = li2024.make_instance(cfg, seed)
    assert inst.mu.shape == (cfg.M1, cfg.d_x) and inst.nu.shape == (cfg.M2, cfg.d_x)
    E = np.vstack([inst.mu, inst.nu])  # (M1 + M2, d_x)
    np.testing.assert_allclose(E @ E.T, cfg.beta**2 * np.eye(cfg.M1 + cfg.M2), rtol=0, atol=1e-12 * cfg.beta**2)
    assert inst.q.shape == (cfg.d_y,)
    assert abs(np.linalg.norm(inst.q) - 1.0) < 1e-14
    if cfg.basis == "standard":  # axis-aligned: µ_j = β e_j, ν_k = β e_{M1+k}
        np.testing.assert_array_equal(E, cfg.beta * np.eye(cfg.d_x)[: cfg.M1 + cfg.M2])


def test_random_basis_is_not_axis_aligned_and_depends_on_the_seed():
    cfg = DataConfig(d_x=12, d_y=3, M1=6, M2=5)
    i0, i1 = li2024.make_instance(cfg, 0), li2024.make_instance(cfg, 1)
    # a Haar rotation: the largest |entry| of a unit row in R^12 is far below 1 with high probability
    assert np.max(np.abs(i0.mu)) < 0.99
    assert np.max(np.abs(i0.mu - i1.mu)) > 0.1
    assert np.max(np.abs(i0.q - i1.q)) > 0.1


# --------------------------------------------------------------------------------------------
# L4: context patterns
# --------------------------------------------------------------------------------------------
@settings(max_examples=25)
@given(cfg=data_configs(), seed=seeds, alpha=st.floats(0.0, 1.0, **FLOATS) | st.sampled_from([0.0, 1.0]))
def test_fraction_of_task_relevant_context_examples_is_alpha(cfg, seed, alpha):
    inst = li2024.make_instance(cfg, seed)
    n, l = 2500, 40
    batch = li2024.sample_batch(inst, n, np.random.default_rng(seed), l=l, alpha=alpha)
    pat = batch["pattern"]
    assert pat.shape == (n, l + 1)
    a, b = batch["task"][:, :1], batch["task"][:, 1:]
    ctx = pat[:, :l]
    N = ctx.size
    is_a, is_b = ctx == a, ctx == b
    for label, count, p in (
        ("a or b", int(np.sum(is_a | is_b)), alpha),
        ("a", int(np.sum(is_a)), alpha / 2),
        ("b", int(np.sum(is_b)), alpha / 2),
    ):
        ok, msg = within_5_sigma(count, N, p)
        assert ok, f"fraction of context patterns equal to {label}: {msg}"
    # task-irrelevant contexts: uniform over the M1 − 2 other patterns, (1 − α)/(M1 − 2) each
    other = ~(is_a | is_b)
    assert np.all((ctx >= 0) & (ctx < cfg.M1))
    # rank of each "other" pattern among [0, M1) \ {a, b}: 0 .. M1 − 3
    rank = ctx - (ctx > a).astype(int) - (ctx > b).astype(int)
    for r in range(cfg.M1 - 2):
        ok, msg = within_5_sigma(int(np.sum(other & (rank == r))), N, (1 - alpha) / (cfg.M1 - 2))
        assert ok, f"other pattern of rank {r}: {msg}"


def test_task_relevant_fraction_check_detects_a_wrong_alpha():
    """The 5σ bound is tight enough to tell α = 0.8 from 0.78 at this sample size."""
    cfg = DataConfig(d_x=12, d_y=3, M1=6, M2=6)
    inst = li2024.make_instance(cfg, 0)
    batch = li2024.sample_batch(inst, 2500, np.random.default_rng(0), l=40, alpha=0.8)
    ctx, task = batch["pattern"][:, :40], batch["task"]
    count = int(np.sum((ctx == task[:, :1]) | (ctx == task[:, 1:])))
    assert within_5_sigma(count, ctx.size, 0.8)[0]
    assert not within_5_sigma(count, ctx.size, 0.78)[0]


# --------------------------------------------------------------------------------------------
# L3, L5: labels
# --------------------------------------------------------------------------------------------
@settings(max_examples=25)
@given(cfg=data_configs(), seed=seeds, ood=st.booleans())
def test_label_blocks_and_query_labels(cfg, seed, ood):
    inst = li2024.make_instance(cfg, seed)
    n = 3000
    batch = li2024.sample_batch(inst, n, np.random.default_rng(seed), tasks="ood" if ood else "train")
    l = cfg.l_test if ood else cfg.l_train
    P, z, pat, y = batch["P"], batch["z"], batch["pattern"], batch["y"]
    assert P.shape == (n, cfg.d, l + 1) and z.shape == (n,) and y.shape == (n, l)
    a, b = batch["task"][:, :1], batch["task"][:, 1:]
    ctx, query = pat[:, :l], pat[:, l]

    Y = P[:, cfg.d_x:, :]  # (n, d_y, l+1) label blocks
    np.testing.assert_array_equal(Y[:, :, l], 0.0)  # the query's label block is zero
    np.testing.assert_array_equal(np.transpose(Y[:, :, :l], (0, 2, 1)), y[..., None] * inst.q)
    assert set(np.unique(y)) <= {-1, 1}
    assert np.all(y[ctx == a] == 1), "pattern a must be labelled +q"
    assert np.all(y[ctx == b] == -1), "pattern b must be labelled −q"

    # the query's pattern is a or b, and z = +1 exactly when it is a
    assert np.all((query == a[:, 0]) | (query == b[:, 0]))
    np.testing.assert_array_equal(z, np.where(query == a[:, 0], 1.0, -1.0))
    ok, msg = within_5_sigma(int(np.sum(z == 1)), n, 0.5)
    assert ok, f"fraction of z = +1: {msg}"

    # task-irrelevant contexts get a fair coin
    other = (ctx != a) & (ctx != b)
    if other.sum() >= 200:
        ok, msg = within_5_sigma(int(np.sum(y[other] == 1)), int(other.sum()), 0.5)
        assert ok, f"fraction of +q labels on task-irrelevant contexts: {msg}"


# --------------------------------------------------------------------------------------------
# L2: features
# --------------------------------------------------------------------------------------------
@settings(max_examples=25)
@given(cfg=data_configs(), seed=seeds, ood=st.booleans())
def test_feature_block_is_pattern_plus_bounded_noise(cfg, seed, ood):
    inst = li2024.make_instance(cfg, seed)
    n = 400
    batch = li2024.sample_batch(inst, n, np.random.default_rng(seed + 1), tasks="ood" if ood else "train")
    mu, nu = (inst.mu_ood, inst.nu_ood) if ood else (inst.mu, inst.nu)
    P, pat, noise, kappa = batch["P"], batch["pattern"], batch["noise"], batch["kappa"]
    X = np.transpose(P[:, : cfg.d_x, :], (0, 2, 1))  # (n, l+1, d_x)
    np.testing.assert_allclose(X, mu[pat] + kappa[..., None] * nu[noise], rtol=0, atol=1e-12 * cfg.beta)
    assert np.all(np.abs(kappa) <= cfg.kappa_max)
    assert np.all((noise >= 0) & (noise < cfg.M2))
    # recover the same facts from P alone: the patterns are orthogonal with norm β
    coef_nu = X @ nu.T / cfg.beta**2  # (n, l+1, M2): κ at the noise index, 0 elsewhere
    expect_nu = np.zeros_like(coef_nu)
    np.put_along_axis(expect_nu, noise[..., None], kappa[..., None], axis=2)
    np.testing.assert_allclose(coef_nu, expect_nu, rtol=0, atol=1e-12)
    if not ood:
        coef_mu = X @ mu.T / cfg.beta**2  # (n, l+1, M1): one-hot of the pattern
        np.testing.assert_allclose(coef_mu, np.eye(cfg.M1)[pat], rtol=0, atol=1e-12)
    if cfg.kappa_max > 0:  # κ ~ U(−K, K): with ≥ 800 draws the extremes come close to ±K
        assert np.max(kappa) > 0.9 * cfg.kappa_max and np.min(kappa) < -0.9 * cfg.kappa_max


def test_noise_indices_are_uniform_over_irrelevant_patterns():
    cfg = DataConfig(d_x=14, d_y=3, M1=6, M2=8)
    inst = li2024.make_instance(cfg, 3)
    batch = li2024.sample_batch(inst, 3000, np.random.default_rng(4))
    noise = batch["noise"]
    for k in range(cfg.M2):
        ok, msg = within_5_sigma(int(np.sum(noise == k)), noise.size, 1 / cfg.M2)
        assert ok, f"noise index {k}: {msg}"
    kappa = batch["kappa"]
    # U(−K, K): mean 0, variance K²/3
    assert abs(np.mean(kappa)) < SIGMAS * cfg.kappa_max / math.sqrt(3 * kappa.size)
    assert abs(np.var(kappa) - cfg.kappa_max**2 / 3) < 0.01 * cfg.kappa_max**2


# --------------------------------------------------------------------------------------------
# L6: out of domain
# --------------------------------------------------------------------------------------------
@settings(max_examples=40)
@given(cfg=data_configs(), seed=seeds)
def test_ood_patterns_are_combinations_with_coefficient_sum_S1(cfg, seed):
    inst = li2024.make_instance(cfg, seed)
    b2 = cfg.beta**2
    assert inst.mu_ood.shape == (cfg.M1_ood, cfg.d_x) and inst.ood_coef.shape == (cfg.M1_ood, cfg.M1)
    np.testing.assert_allclose(inst.ood_coef.sum(axis=1), cfg.S1, rtol=1e-14)
    # projections of µ' onto the µ_i recover the coefficients, and nothing lies outside span{µ}
    proj = inst.mu_ood @ inst.mu.T / b2  # (M1', M1)
    np.testing.assert_allclose(proj, inst.ood_coef, rtol=0, atol=1e-12 * max(1.0, cfg.S1))
    np.testing.assert_allclose(proj.sum(axis=1), cfg.S1, rtol=1e-12)
    np.testing.assert_allclose(inst.mu_ood - proj @ inst.mu, 0.0, atol=1e-12 * cfg.beta * max(1.0, cfg.S1))
    # ODI patterns: in span{ν}, orthogonal to µ, mutually orthogonal with norm β
    assert inst.nu_ood.shape == (cfg.M2, cfg.d_x)
    R = inst.nu_ood @ inst.nu.T / b2  # (M2, M2) coordinates in the ν basis
    np.testing.assert_allclose(inst.nu_ood - R @ inst.nu, 0.0, atol=1e-12 * cfg.beta)
    np.testing.assert_allclose(R @ R.T, np.eye(cfg.M2), atol=1e-12)
    np.testing.assert_allclose(inst.nu_ood @ inst.mu.T, 0.0, atol=1e-12 * b2)
    np.testing.assert_allclose(np.linalg.norm(inst.nu_ood, axis=1), cfg.beta, rtol=1e-12)
    # OOD tasks: ordered pairs of ODR patterns
    assert len(inst.tasks_ood) == cfg.M1_ood * (cfg.M1_ood - 1)
    assert len({tuple(t) for t in inst.tasks_ood}) == len(inst.tasks_ood)
    assert np.all(inst.tasks_ood[:, 0] != inst.tasks_ood[:, 1])
    assert np.all((inst.tasks_ood >= 0) & (inst.tasks_ood < cfg.M1_ood))


@settings(max_examples=20)
@given(cfg=data_configs(), seed=seeds)
def test_ood_prompts_use_odr_patterns(cfg, seed):
    inst = li2024.make_instance(cfg, seed)
    n = 2000
    batch = li2024.sample_batch(inst, n, np.random.default_rng(seed), tasks="ood")
    l = cfg.l_test
    assert batch["P"].shape == (n, cfg.d, l + 1)
    pat, task = batch["pattern"], batch["task"]
    assert np.all((pat >= 0) & (pat < cfg.M1_ood))
    assert {tuple(t) for t in task} <= {tuple(t) for t in inst.tasks_ood}
    # the features are µ'_pattern + κ ν'_noise: their µ coordinates are the ODR coefficients
    X = np.transpose(batch["P"][:, : cfg.d_x, :], (0, 2, 1))
    np.testing.assert_allclose(X @ inst.mu.T / cfg.beta**2, inst.ood_coef[pat], atol=1e-12 * max(1.0, cfg.S1))
    # relevant fraction at α' (the test-time α of OOD prompts)
    ctx = pat[:, :l]
    count = int(np.sum((ctx == task[:, :1]) | (ctx == task[:, 1:])))
    ok, msg = within_5_sigma(count, ctx.size, cfg.alpha_test)
    assert ok, f"OOD relevant fraction: {msg}"


# --------------------------------------------------------------------------------------------
# L3: task sets
# --------------------------------------------------------------------------------------------
def _check_task_sets(cfg, inst):
    M1 = cfg.M1
    T = {tuple(t) for t in inst.tasks_all}
    assert len(T) == len(inst.tasks_all) == M1 * (M1 - 1)
    assert T == {(a, b) for a in range(M1) for b in range(M1) if a != b}
    T_tr = [tuple(t) for t in inst.tasks_train]
    assert len(set(T_tr)) == len(T_tr), "T_tr has duplicate tasks"
    assert set(T_tr) <= T
    # every pattern is the + pattern and the − pattern equally often (|S| times each)
    k = len(cfg.train_shifts)
    np.testing.assert_array_equal(np.bincount(inst.tasks_train[:, 0], minlength=M1), k)
    np.testing.assert_array_equal(np.bincount(inst.tasks_train[:, 1], minlength=M1), k)
    unseen = [tuple(t) for t in inst.tasks_unseen]
    assert len(set(unseen)) == len(unseen)
    assert set(unseen) == T - set(T_tr)
    assert not set(unseen) & set(T_tr)
    return len(T_tr) / len(T)


@settings(max_examples=60)
@given(cfg=data_configs(max_M1=12), seed=seeds)
def test_training_tasks_cover_patterns_evenly_and_unseen_is_the_complement(cfg, seed):
    inst = li2024.make_instance(cfg, seed)
    ratio = _check_task_sets(cfg, inst)
    assert ratio >= (cfg.M1 - 1) ** -0.5 - 1e-12  # Condition 3.2


def test_default_training_tasks_meet_condition_3_2():
    cfg = li2024.preset("default").data
    inst = li2024.make_instance(cfg, 0)
    ratio = _check_task_sets(cfg, inst)
    assert len(inst.tasks_train) == 18 and len(inst.tasks_unseen) == 12  # spec L3 [C]: 18 of 30
    assert ratio == pytest.approx(0.6) and ratio >= 5**-0.5


def test_sampled_tasks_come_from_the_requested_set():
    cfg = DataConfig(d_x=12, d_y=3, M1=6, M2=6)
    inst = li2024.make_instance(cfg, 1)
    rng = np.random.default_rng(2)
    for name, allowed in (("train", inst.tasks_train), ("unseen", inst.tasks_unseen), ("all", inst.tasks_all)):
        batch = li2024.sample_batch(inst, 3000, rng, tasks=name)
        drawn = {tuple(t) for t in batch["task"]}
        # 3000 draws from ≤ 30 tasks: every task is drawn (P(miss one) < 30 e^-100)
        assert drawn == {tuple(t) for t in allowed}, name
        l = cfg.l_train if name == "train" else cfg.l_test
        assert batch["P"].shape[2] == l + 1


def test_explicit_task_array_and_defaults_of_l_and_alpha():
    cfg = DataConfig(d_x=12, d_y=3, M1=6, M2=6, l_train=7, l_test=11, alpha=1.0, alpha_test=0.0)
    inst = li2024.make_instance(cfg, 0)
    rng = np.random.default_rng(0)
    b = li2024.sample_batch(inst, 50, rng, tasks="train")
    assert b["P"].shape[2] == 8
    ctx = b["pattern"][:, :7]
    assert np.all((ctx == b["task"][:, :1]) | (ctx == b["task"][:, 1:]))  # α = 1: all relevant
    b = li2024.sample_batch(inst, 50, rng, tasks=np.array([[2, 4]]))
    assert b["P"].shape[2] == 12  # non-training tasks default to l_test and α'
    assert np.all(b["task"] == [2, 4])
    ctx = b["pattern"][:, :11]
    assert not np.any((ctx == 2) | (ctx == 4))  # α' = 0: no relevant context
    assert set(np.unique(b["pattern"][:, 11])) <= {2, 4}
