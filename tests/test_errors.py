"""li2024: bad input is rejected with a clear error naming the argument and what is allowed
(DESIGN.md, "Errors"). The generic cases (missing keys, a wrong shape, NaN/inf, integer, float16
and mixed-precision arrays, non-dict params/batch, an unknown backend) are in tests/test_contract.py;
here are the messages specific to spec L: its configuration, sampling, the consistency of the five
parameter shapes, the batch and the pruning mask."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl import li2024
from refimpl.core.rng import make_rng
from refimpl.li2024.config import Config, DataConfig, ModelConfig, TrainConfig


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["alpha", "alpha_test"])
@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), float("inf")])
def test_alpha_outside_unit_interval(field, value):
    with pytest.raises(ValueError, match=rf"{field} must be in \[0, 1\], got {value!r}"):
        DataConfig(**{field: value})


@pytest.mark.parametrize("d_x", [29, 10, 1])
def test_d_x_smaller_than_M1_plus_M2(d_x):
    with pytest.raises(ValueError, match=rf"d_x must be ≥ M1 \+ M2 = 30 .*got d_x={d_x}"):
        DataConfig(d_x=d_x)
    DataConfig(d_x=30)  # the boundary is allowed


@pytest.mark.parametrize("kappa_max", [0.5000001, 1.0, -0.1, float("nan")])
def test_kappa_max_outside_0_to_half(kappa_max):
    with pytest.raises(ValueError, match=r"kappa_max must be in \[0, 0\.5\]"):
        DataConfig(kappa_max=kappa_max)
    DataConfig(kappa_max=0.5)


def test_unknown_preset_lists_allowed_names():
    with pytest.raises(ValueError, match=r"unknown li2024 preset 'huge'; allowed: \[.*'default'.*'tiny'.*\]"):
        li2024.preset("huge")
    with pytest.raises(ValueError, match=r"unknown DataConfig field 'alfa'; allowed: .*'alpha'"):
        li2024.preset("tiny", **{"data.alfa": 0.4})


@pytest.mark.parametrize("steps", [-1, -100, 1.5, "10"])
def test_bad_steps(steps):
    with pytest.raises(ValueError, match=r"steps must be an int ≥ 0"):
        TrainConfig(steps=steps)
    TrainConfig(steps=0)


@pytest.mark.parametrize("lr", [0.0, -0.5, float("nan"), float("inf")])
def test_lr_must_be_positive(lr):
    with pytest.raises(ValueError, match=rf"lr must be > 0, got {lr!r}"):
        TrainConfig(lr=lr)


@pytest.mark.parametrize("name", ["batch_size", "eval_every", "n_eval"])
def test_counts_must_be_positive(name):
    with pytest.raises(ValueError, match=rf"{name} must be an int ≥ 1"):
        TrainConfig(**{name: 0})


@pytest.mark.parametrize("shifts", [(0,), (6,), (1, 1), (), (1.5,), (-1, 2), (True,)])
def test_bad_train_shifts(shifts):
    with pytest.raises(ValueError, match=r"train_shifts must be distinct ints in \[1, M1 − 1\] = \[1, 5\]"):
        DataConfig(train_shifts=shifts)
    DataConfig(train_shifts=[1, 5])  # a list is accepted (stored as a tuple)


def test_unknown_basis():
    with pytest.raises(ValueError, match=r"basis must be 'random' or 'standard', got 'haar'"):
        DataConfig(basis="haar")


@pytest.mark.parametrize("value", [0.5, 2, -1, True, "0"])
def test_relu_at_zero_not_0_or_1(value):
    with pytest.raises(ValueError, match=rf"relu_at_zero must be 0 or 1, got {value!r}"):
        ModelConfig(relu_at_zero=value)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(M1=1), r"M1 must be ≥ 2 \(a task needs two relevant patterns\), got 1"),
        (dict(M1=0), r"M1 must be an int ≥ 1"),
        (dict(M2=0), r"M2 must be an int ≥ 1"),
        (dict(d_y=0), r"d_y must be an int ≥ 1"),
        (dict(l_train=0), r"l_train must be an int ≥ 1"),
        (dict(beta=0.0), r"beta must be > 0"),
        (dict(S1=-1.0), r"S1 must be > 0"),
        (dict(M1_ood=4), r"M1_ood must be ≤ M1 / 2 = 3"),
        (dict(M1_ood=1), r"M1_ood must be ≥ 2"),
    ],
)
def test_other_data_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataConfig(**kwargs)


def test_two_ood_patterns_require_alpha_test_one():
    """With M1' = 2 every OOD context is task-relevant, so α' < 1 cannot be sampled; the config
    must say so on construction (train() would otherwise fail at its first OOD evaluation)."""
    cfg_ok = DataConfig(d_x=10, M1=4, M2=6, M1_ood=2, alpha_test=1.0)
    inst = li2024.make_instance(cfg_ok, 0)
    li2024.sample_batch(inst, 4, np.random.default_rng(0), tasks="ood")  # fine
    with pytest.raises(ValueError, match=r"(?=.*M1_ood)(?=.*alpha_test)"):
        DataConfig(d_x=10, M1=4, M2=6, M1_ood=2, alpha_test=0.8)


@pytest.mark.parametrize("name", ["m", "m_a", "m_b"])
def test_model_sizes(name):
    with pytest.raises(ValueError, match=rf"{name} must be"):
        ModelConfig(**{name: 0})


def test_model_flags_must_be_bool():
    with pytest.raises(ValueError, match=r"attend_to_query must be a bool, got 1"):
        ModelConfig(attend_to_query=1)
    with pytest.raises(ValueError, match=r"attend_to_query must be a bool, got 'no'"):
        ModelConfig(attend_to_query="no")
    with pytest.raises(ValueError, match=r"train_a must be a bool"):
        ModelConfig(train_a="yes")
    assert ModelConfig(attend_to_query=np.bool_(True)).attend_to_query is True  # a NumPy bool is a bool


@pytest.mark.parametrize("field", ["alpha", "alpha_test", "beta", "kappa_max", "S1"])
def test_real_fields_refuse_bools_and_strings(field):
    for bad in (True, "0.5"):
        with pytest.raises(ValueError, match=field):
            DataConfig(**{field: bad})


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    cfg = DataConfig(alpha=np.float32(0.5), beta=np.float64(1.0))
    assert cfg.alpha == 0.5 and type(cfg.alpha) is float and type(cfg.beta) is float
    assert type(TrainConfig(lr=np.float32(0.25)).lr) is float
    for field in ("delta", "xi"):
        with pytest.raises(ValueError, match=field):
            ModelConfig(**{field: True})


def test_config_sections():
    with pytest.raises(ValueError, match=r"unknown config section 'optim'; allowed: data, model, train"):
        Config().replace(optim=dict(lr=1.0))
    with pytest.raises(ValueError, match=r"data must be a DataConfig"):
        Config(data={"d_x": 30})
    # replace validates the new values too
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        Config().replace(data=dict(alpha=2.0))


# --------------------------------------------------------------------------------------------
# seeds and sampling
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [None, -1, 1.5, True, "0"])
def test_bad_seeds(seed):
    with pytest.raises(ValueError, match=r"seed must be a non-negative int or a numpy Generator"):
        make_rng(seed)


def test_bad_sample_batch_arguments():
    cfg = li2024.preset("tiny")
    inst = li2024.make_instance(cfg.data, 0)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError,
                       match=r"tasks must be an \(n, 2\) array or one of \['all', 'ood', 'train', 'unseen'\], got 'test'"):
        li2024.sample_batch(inst, 4, rng, tasks="test")
    with pytest.raises(ValueError, match=r"n must be an int ≥ 1, got 0"):
        li2024.sample_batch(inst, 0, rng)
    with pytest.raises(ValueError, match=r"l must be an int ≥ 1, got 0"):
        li2024.sample_batch(inst, 4, rng, l=0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.2"):
        li2024.sample_batch(inst, 4, rng, alpha=1.2)
    with pytest.raises(ValueError, match=r"tasks must be pairs \(a, b\), a ≠ b, of pattern indices in \[0, 6\)"):
        li2024.sample_batch(inst, 4, rng, tasks=np.array([[1, 1]]))
    with pytest.raises(ValueError, match=r"tasks must be pairs .* in \[0, 6\)"):
        li2024.sample_batch(inst, 4, rng, tasks=np.array([[0, 6]]))
    with pytest.raises(ValueError, match=r"tasks must be a non-empty \(n_tasks, 2\) array, got shape \(3,\)"):
        li2024.sample_batch(inst, 4, rng, tasks=np.array([0, 1, 2]))


# --------------------------------------------------------------------------------------------
# arrays handed to loss_and_grads
# --------------------------------------------------------------------------------------------
CFG = li2024.preset("tiny")


@pytest.fixture
def good():
    rng = np.random.default_rng(0)
    B, d, l, m, m_a, m_b = 3, 5, 4, 6, 4, 2
    params = {"W_Q": rng.standard_normal((m_b, d)), "W_K": rng.standard_normal((m_b, d)),
              "W_V": rng.standard_normal((m_a, d)), "W_O": rng.standard_normal((m, m_a)),
              "a": rng.standard_normal(m)}
    batch = {"P": rng.standard_normal((B, d, l + 1)), "z": np.array([1.0, -1.0, 1.0])}
    li2024.loss_and_grads(params, batch, CFG)  # the baseline is accepted
    return params, batch


BACKENDS = ["numpy", "numba"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "name, shape, match",
    [
        ("W_Q", (5,), r"params\['W_Q'\] must be 2-dimensional, got shape \(5,\)"),
        ("W_K", (3, 5), r"params\['W_K'\] must have shape \(2, 5\), got \(3, 5\)"),
        ("W_K", (2, 4), r"params\['W_K'\] must have shape \(2, 5\), got \(2, 4\)"),
        ("W_V", (4, 6), r"params\['W_V'\] must have shape \('any', 5\), got \(4, 6\)"),
        ("W_O", (6, 3), r"params\['W_O'\] must have shape \('any', 4\), got \(6, 3\)"),
        ("a", (5,), r"params\['a'\] must have shape \(6,\), got \(5,\)"),
        ("a", (6, 1), r"params\['a'\] must have shape \(6,\), got \(6, 1\)"),
    ],
)
def test_inconsistent_param_shapes(good, backend, name, shape, match):
    params, batch = good
    params = dict(params, **{name: np.ones(shape)})
    with pytest.raises(ValueError, match=match):
        li2024.loss_and_grads(params, batch, CFG, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_P_with_wrong_d_or_too_few_columns(good, backend):
    params, batch = good
    with pytest.raises(ValueError, match=r"batch\['P'\] must have shape \('any', 5, 'any'\), got \(3, 6, 5\)"):
        li2024.loss_and_grads(params, dict(batch, P=np.ones((3, 6, 5))), CFG, backend)
    with pytest.raises(ValueError, match=r"batch\['P'\] must have shape .*got \(5, 5\)"):
        li2024.loss_and_grads(params, dict(batch, P=np.ones((5, 5))), CFG, backend)
    with pytest.raises(ValueError, match=r"batch\['P'\] must have B ≥ 1 prompts and l \+ 1 ≥ 2 columns, got shape \(3, 5, 1\)"):
        li2024.loss_and_grads(params, dict(batch, P=np.ones((3, 5, 1))), CFG, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("z", [[1.0, 0.0, 1.0], [1.0, -1.0, 2.0], [0.5, -1.0, 1.0]])
def test_z_must_be_plus_minus_one(good, backend, z):
    params, batch = good
    with pytest.raises(ValueError, match=r"batch\['z'\] must hold labels ±1"):
        li2024.loss_and_grads(params, dict(batch, z=np.array(z)), CFG, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_z_length_and_dtype(good, backend):
    params, batch = good
    with pytest.raises(ValueError, match=r"batch\['z'\] must have shape \(3,\), got \(2,\)"):
        li2024.loss_and_grads(params, dict(batch, z=np.array([1.0, -1.0])), CFG, backend)
    with pytest.raises(TypeError, match=r"batch\['z'\] must be a float64 or float32 array, got dtype int64"):
        li2024.loss_and_grads(params, dict(batch, z=np.array([1, -1, 1])), CFG, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("missing", ["P", "z"])
def test_missing_batch_keys(good, backend, missing):
    params, batch = good
    batch = {k: v for k, v in batch.items() if k != missing}
    with pytest.raises(ValueError, match=r"batch must be a dict with 'P' \(B, d, l\+1\) and 'z' \(B,\)"):
        li2024.loss_and_grads(params, batch, CFG, backend)


def test_arrays_and_configs_of_the_wrong_type(good):
    params, batch = good
    with pytest.raises(TypeError, match=r"batch\['P'\] must be a float64 or float32 array, got dtype complex128"):
        li2024.loss_and_grads(params, dict(batch, P=batch["P"] + 0j), CFG)
    with pytest.raises(TypeError, match=r"params\['W_O'\] must be an array of numbers, got str"):
        li2024.loss_and_grads(dict(params, W_O="zeros"), batch, CFG)
    with pytest.raises(TypeError, match=r"cfg must be a refimpl.li2024 Config"):
        li2024.loss_and_grads(params, batch, {"model": {}})
    with pytest.raises(TypeError, match=r"cfg must be a refimpl.li2024 Config"):
        li2024.forward(params, batch, None)
    with pytest.raises(TypeError, match=r"inputs must be a batch dict"):
        li2024.forward(params, batch["P"], CFG)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "keep, match",
    [
        (np.ones(5), r"keep must have shape \(6,\), got \(5,\)"),
        (np.ones((6, 1)), r"keep must have shape \(6,\), got \(6, 1\)"),
        (np.array([1, 0, 0.5, 1, 1, 1]), r"keep must be a 0/1 \(or bool\) mask over the m rows of W_O"),
        (np.array([1, 0, 2, 1, 1, 1]), r"keep must be a 0/1 \(or bool\) mask"),
        (np.array([1, 0, np.nan, 1, 1, 1]), r"keep must be finite; found nan at index \(2,\)"),
    ],
)
def test_wrong_keep_mask(good, backend, keep, match):
    params, batch = good
    with pytest.raises(ValueError, match=match):
        li2024.loss_and_grads(params, batch, CFG, backend, keep=keep)


def test_bad_training_arguments():
    cfg = li2024.preset("tiny", train={"steps": 2})
    with pytest.raises(ValueError, match=r"backend must be one of \['numpy', 'numba', 'numba_parallel'\], got 'torch'"):
        li2024.train(cfg, 0, backend="torch", progress=False)
    with pytest.raises(ValueError, match=r"snapshot_every must be None or an int ≥ 1"):
        li2024.train(cfg, 0, snapshot_every=0, progress=False)
    with pytest.raises(ValueError, match=r"stop_when must be"):
        li2024.train(cfg, 0, stop_when=("test", "error", 0.1), progress=False)
