"""The example implementations (examples/torch/, examples/jax/) against the golden suite.

For every configuration of the golden suite (``refimpl.testing.suite()``, the committed files
``tests/data/golden/<model>-<config>-<dtype>.npz``), in float64 and float32, and for PyTorch and
JAX (skipped when jax is not installed): the example of the model is built from the golden's
``param/*`` and ``input/*`` arrays in the golden's dtype, computes every ``output/*`` and
``grad/*`` key and runs the golden's 10-step trajectory with the example's optimiser
(``trajectory/loss``, the loss before each step, and the optimiser's constants as it holds them;
PyTorch: ``common.train_step`` with the fused ``torch.optim`` SGD or Adam; JAX: the jitted
``common.make_value_and_grad`` and the example's ``sgd``/``adam`` update), and
``refimpl.testing.assert_matches(candidate, golden)`` passes with the default tolerances. Every
candidate array also keeps the golden's dtype (a float32 example that computed in float64 would
otherwise be judged by the float32 tolerances only).

Every configuration and every section is covered; how each golden option reaches the example:

=================  ===================================  =================================================
model              configurations                       the example's options (PyTorch / JAX)
=================  ===================================  =================================================
li2024             default, attend_to_query, train_a,   ``attend_to_query``, ``train_a``, ``relu_at_zero``;
                   relu_kink_0, relu_kink_1, pruned     ``pruned``: the mask ``input/keep`` on a, with
                                                        ``torch.nn.utils.prune.custom_from_mask`` /
                                                        a → keep ⊙ a composed into the loss
yang2024           default, H_lt_N (population loss     ``loss="population"`` (spec Y7; JAX: ``N`` static)
                   Y7), sample                          or ``"sample"``; ``output/y_hat`` = y @ Â
huang2023          default, balanced, attend_to_query,  ``attend_to_query``; ``loss="sample"`` gives
                   Ew                                   ``output/loss``, ``grad/Q``, ``loss="Ew"``
                                                        ``output/loss_Ew``, ``grad/Q_Ew``; the trajectory
                                                        uses the configuration's loss
transformer        default, post_relu, last_hinge,      ``norm``, ``activation``, ``causal``,
                   post_relu_last_hinge, small_inputs,  ``positions``, ``readout``, ``loss``; Adam
                   hinge_kink
=================  ===================================  =================================================

Not covered: nothing. Restriction: the JAX example's SGD has one learning rate, so the yang2024
trajectory needs ``trajectory/lr_Q == trajectory/lr_w`` (η_w = γ² η_Q with γ = 1 in every
configuration; the test asserts it); the PyTorch one uses two parameter groups.

Run: ``python -m pytest tests/test_examples_golden.py`` (docs/golden.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from refimpl.testing import assert_matches, suite

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
DTYPES = ("float64", "float32")
LIBRARIES = ("torch", "jax")
CASES = [(e.model, e.config, dtype, lib) for e in suite() for dtype in DTYPES for lib in LIBRARIES]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One thread for torch and BLAS (the shared 2-core machine)."""
    from threadpoolctl import threadpool_limits

    try:
        import torch
    except ImportError:  # the JAX cases still run
        torch = None
    n = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    if torch:
        torch.set_num_threads(n)


def load(model, config, dtype):
    with np.load(GOLDEN_DIR / f"{model}-{config}-{dtype}.npz", allow_pickle=False) as f:
        g = {k: f[k] for k in f.files}
    return g, json.loads(str(g["meta/config"]))


def steps(g) -> int:
    return g["trajectory/loss"].shape[0]


# ---------------------------------------------------------------------------------------------
# PyTorch


def _t(x):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x))


def _torch_trajectory(model, optimizer, batch, n):
    import torch

    from refimpl.examples.torch.common import train_step

    return torch.stack([train_step(model.compute_loss, optimizer, batch).detach() for _ in range(n)])


def constants(g, **values):
    """The optimiser's constants a run used (``trajectory/lr`` ...), in the golden's dtype."""
    dtype = g["trajectory/loss"].dtype
    return {f"trajectory/{k}": np.asarray(v, dtype=dtype) for k, v in values.items()}


def _torch_grads(model):
    # a parameter pruned by torch.nn.utils.prune is trained as <name>_orig
    return {f"grad/{k.removesuffix('_orig')}": p.grad for k, p in model.named_parameters()}


def li2024_torch(g, cfg):
    from torch.nn.utils import prune

    from refimpl.examples.torch.common import make_optimizer
    from refimpl.examples.torch.li2024 import Li2024

    o = cfg["model"]

    def build():
        m = Li2024({k: g[f"param/{k}"] for k in ("W_Q", "W_K", "W_V", "W_O", "a")},
                   attend_to_query=o["attend_to_query"], train_a=o["train_a"], relu_at_zero=o["relu_at_zero"])
        if "input/keep" in g:  # spec L9: F = Σ_i keep_i a_i Relu(h_i), PyTorch's pruning of a
            prune.custom_from_mask(m, "a", _t(g["input/keep"]))
        return m

    batch = {"P": _t(g["input/P"]), "z": _t(g["input/z"])}
    model = build()
    loss, out = model.compute_loss(batch)
    loss.backward()
    cand = {"output/F": out["F"], "output/attn": out["attn"], "output/loss": loss, **_torch_grads(model)}
    model = build()
    opt = make_optimizer(model.parameters(), {"name": "sgd", "lr": float(g["trajectory/lr"])})
    cand["trajectory/loss"] = _torch_trajectory(model, opt, batch, steps(g))
    return {**cand, **constants(g, lr=opt.param_groups[0]["lr"])}


def yang2024_torch(g, cfg):
    from refimpl.examples.torch.common import make_optimizer
    from refimpl.examples.torch.yang2024 import Yang2024

    params = {"Q": g["param/Q"], "w": g["param/w"]}
    if cfg["loss"] == "sample":
        batch = {"V_all": _t(g["input/V_all"]), "y": _t(g["input/y"]), "y_all": _t(g["input/y_all"])}
    else:
        batch = {"V_all": _t(g["input/V_all"]), "Z_all": _t(g["input/Z_all"]), "N": int(g["input/N"]),
                 "tau": _t(g["input/tau"])}
    model = Yang2024(params, loss=cfg["loss"])
    loss, out = model.compute_loss(batch)
    loss.backward()
    cand = {"output/A_hat": out["A_hat"], "output/y_hat": _t(g["input/y"]) @ out["A_hat"].detach(),
            "output/loss": loss, **_torch_grads(model)}
    if cfg["loss"] == "population":
        cand.update({"output/A": out["A"], "output/L_star": out["L_star"]})
    model = Yang2024(params, loss=cfg["loss"])
    groups = [{"params": [model.Q], "lr": float(g["trajectory/lr_Q"])},
              {"params": [model.w], "lr": float(g["trajectory/lr_w"])}]
    opt = make_optimizer(groups, {"name": "sgd", "lr": float(g["trajectory/lr_Q"])})
    cand["trajectory/loss"] = _torch_trajectory(model, opt, batch, steps(g))
    return {**cand, **constants(g, lr_Q=opt.param_groups[0]["lr"], lr_w=opt.param_groups[1]["lr"])}


def huang2023_torch(g, cfg):
    from refimpl.examples.torch.common import make_optimizer
    from refimpl.examples.torch.huang2023 import Huang2023

    batch = {k: _t(g[f"input/{k}"]) for k in ("X", "xq", "y", "yq")}
    cand = {}
    for loss_name, suffix in (("sample", ""), ("Ew", "_Ew")):  # every file holds both losses
        model = Huang2023({"Q": g["param/Q"]}, loss=loss_name, attend_to_query=cfg["attend_to_query"])
        loss, out = model.compute_loss(batch)
        loss.backward()
        cand.update({f"output/loss{suffix}": loss, f"grad/Q{suffix}": model.Q.grad})
        if loss_name == "sample":
            cand.update({"output/attn": out["attn"], "output/y_hat": out["y_hat"]})
    model = Huang2023({"Q": g["param/Q"]}, loss=cfg["loss"], attend_to_query=cfg["attend_to_query"])
    opt = make_optimizer(model.parameters(), {"name": "sgd", "lr": float(g["trajectory/lr"])})
    cand["trajectory/loss"] = _torch_trajectory(model, opt, batch, steps(g))
    return {**cand, **constants(g, lr=opt.param_groups[0]["lr"])}


TRANSFORMER_ARCH = ("n_layers", "n_heads", "norm", "activation", "causal", "positions", "readout", "loss")


def transformer_torch(g, cfg):
    from refimpl.examples.torch.common import make_optimizer
    from refimpl.examples.torch.transformer import Model

    params = {k.removeprefix("param/"): v for k, v in g.items() if k.startswith("param/")}
    arch = {k: cfg[k] for k in TRANSFORMER_ARCH}
    batch = {"X": _t(g["input/X"]), "target": _t(g["input/target"])}
    model = Model(params, **arch)
    loss, out = model.compute_loss(batch)
    loss.backward()
    cand = {"output/out": out["out"], "output/loss": loss, "output/attn": model.outputs(batch)["attn"]}
    cand.update({f"grad/{k}": v for k, v in model.read(grad=True).items()})
    model = Model(params, **arch)
    opt = make_optimizer(model.parameters(), {
        "name": "adam", "lr": float(g["trajectory/lr"]), "eps": float(g["trajectory/eps"]),
        "betas": (float(g["trajectory/beta1"]), float(g["trajectory/beta2"]))})
    cand["trajectory/loss"] = _torch_trajectory(model, opt, batch, steps(g))
    pg = opt.param_groups[0]
    return {**cand, **constants(g, lr=pg["lr"], beta1=pg["betas"][0], beta2=pg["betas"][1], eps=pg["eps"],
                                weight_decay=pg["weight_decay"])}


# ---------------------------------------------------------------------------------------------
# JAX


# XLA compiles each configuration's program afresh (2–5 s for a transformer with the default
# backend optimisation, 95 s for the file on the shared machine); without LLVM's optimisation
# passes the file takes 40 s. The program (its HLO, the example's jit) is the same, and so is its
# float semantics (no fast-math at either level); the cases pass at the default level too.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _jax_run(loss, train, fixed, batch, optimizer, n, /, **options):
    """Outputs and gradients from the example's jitted ``make_value_and_grad``, then ``n`` steps
    of the same function and the example's optimiser update (jitted); the loss before each step.

    ``common.make_train_step`` fuses the same two into one jit (tests/test_parity_jax.py checks
    it against refimpl); compiling it here as well would double the file's run time."""
    import jax

    from refimpl.examples.jax import common

    vg = common.make_value_and_grad(loss, **options).lower(train, fixed, batch).compile(FAST_COMPILE)
    (value, out), grads = vg(train, fixed, batch)
    init, update = optimizer
    state = init(train)
    update = jax.jit(update).lower(train, grads, state).compile(FAST_COMPILE)
    p, losses = train, []
    for _ in range(n):
        (v, _), g = vg(p, fixed, batch)
        losses.append(v)
        p, state = update(p, g, state)
    return value, out, grads, jax.numpy.stack(losses)


def _jnp(x):
    import jax.numpy as jnp

    return jnp.asarray(x)


def li2024_jax(g, cfg):
    from refimpl.examples.jax import common
    from refimpl.examples.jax.li2024 import loss as li_loss

    o = cfg["model"]
    opts = {"attend_to_query": o["attend_to_query"], "relu_at_zero": o["relu_at_zero"]}
    names = ("W_Q", "W_K", "W_V", "W_O") + (("a",) if o["train_a"] else ())
    train = {k: _jnp(g[f"param/{k}"]) for k in names}
    fixed = {k: _jnp(g[f"param/{k}"]) for k in ("W_Q", "W_K", "W_V", "W_O", "a") if k not in names}
    batch = {"P": _jnp(g["input/P"]), "z": _jnp(g["input/z"])}
    loss = li_loss
    if "input/keep" in g:  # spec L9: F = Σ_i keep_i a_i Relu(h_i): the example's loss of a → keep ⊙ a
        batch["keep"] = _jnp(g["input/keep"])

        def loss(params, batch, **options):
            return li_loss({**params, "a": params["a"] * batch["keep"]}, batch, **options)

    lr = float(g["trajectory/lr"])
    value, out, grads, traj = _jax_run(loss, train, fixed, batch, common.sgd(lr), steps(g), **opts)
    return {"output/F": out["F"], "output/attn": out["attn"], "output/loss": value,
            **{f"grad/{k}": v for k, v in grads.items()}, "trajectory/loss": traj, **constants(g, lr=lr)}


def yang2024_jax(g, cfg):
    from refimpl.examples.jax import common
    from refimpl.examples.jax.yang2024 import loss

    lr_Q, lr_w = float(g["trajectory/lr_Q"]), float(g["trajectory/lr_w"])
    assert lr_Q == lr_w, "the JAX example's SGD has one learning rate"
    train = {"Q": _jnp(g["param/Q"]), "w": _jnp(g["param/w"])}
    if cfg["loss"] == "sample":
        batch, opts = {k: _jnp(g[f"input/{k}"]) for k in ("V_all", "y", "y_all")}, {"loss": "sample"}
    else:
        batch = {k: _jnp(g[f"input/{k}"]) for k in ("V_all", "Z_all", "tau")}
        opts = {"loss": "population", "N": int(g["input/N"])}
    value, out, grads, traj = _jax_run(loss, train, {}, batch, common.sgd(lr_Q), steps(g), **opts)
    cand = {"output/A_hat": out["A_hat"], "output/y_hat": _jnp(g["input/y"]) @ out["A_hat"], "output/loss": value,
            **{f"grad/{k}": v for k, v in grads.items()}, "trajectory/loss": traj, **constants(g, lr_Q=lr_Q, lr_w=lr_Q)}
    if cfg["loss"] == "population":
        cand.update({"output/A": out["A"], "output/L_star": out["L_star"]})
    return cand


def huang2023_jax(g, cfg):
    from refimpl.examples.jax import common
    from refimpl.examples.jax.huang2023 import loss

    batch = {k: _jnp(g[f"input/{k}"]) for k in ("X", "xq", "y", "yq")}
    Q, a2q = {"Q": _jnp(g["param/Q"])}, cfg["attend_to_query"]
    cand = {}
    for loss_name, suffix in (("sample", ""), ("Ew", "_Ew")):  # every file holds both losses
        (value, out), grads = common.make_value_and_grad(loss, loss=loss_name, attend_to_query=a2q)(Q, {}, batch)
        cand.update({f"output/loss{suffix}": value, f"grad/Q{suffix}": grads["Q"]})
        if loss_name == "sample":
            cand.update({"output/attn": out["attn"], "output/y_hat": out["y_hat"]})
    lr = float(g["trajectory/lr"])
    *_, traj = _jax_run(loss, Q, {}, batch, common.sgd(lr), steps(g), loss=cfg["loss"], attend_to_query=a2q)
    return {**cand, "trajectory/loss": traj, **constants(g, lr=lr)}


def transformer_jax(g, cfg):
    from refimpl.examples.jax import common
    from refimpl.examples.jax.transformer import loss

    assert float(g["trajectory/weight_decay"]) == 0.0, "the JAX example's Adam has no weight decay"
    train = {k.removeprefix("param/"): _jnp(v) for k, v in g.items() if k.startswith("param/")}
    batch = {"X": _jnp(g["input/X"]), "target": _jnp(g["input/target"])}
    hyper = {k: float(g[f"trajectory/{k}"]) for k in ("lr", "beta1", "beta2", "eps")}
    adam = common.adam(hyper["lr"], (hyper["beta1"], hyper["beta2"]), hyper["eps"])
    value, out, grads, traj = _jax_run(loss, train, {}, batch, adam, steps(g),
                                       **{k: cfg[k] for k in TRANSFORMER_ARCH})
    return {"output/out": out["out"], "output/loss": value, "output/attn": out["attn"],
            **{f"grad/{k}": v for k, v in grads.items()}, "trajectory/loss": traj,
            **constants(g, **hyper, weight_decay=0.0)}


CANDIDATES = {
    "torch": {"li2024": li2024_torch, "yang2024": yang2024_torch, "huang2023": huang2023_torch,
              "transformer": transformer_torch},
    "jax": {"li2024": li2024_jax, "yang2024": yang2024_jax, "huang2023": huang2023_jax,
            "transformer": transformer_jax},
}


@pytest.fixture(scope="module")
def _jax_x64():
    jax = pytest.importorskip("jax", reason="jax is not installed (pip install jax); JAX golden tests skipped")
    jax.config.update("jax_enable_x64", True)  # float64 needs it; float32 arrays stay float32


@pytest.mark.parametrize("model, config, dtype, library", CASES, ids=["-".join(c) for c in CASES])
def test_example_matches_golden(model, config, dtype, library, request):
    if library == "jax":
        request.getfixturevalue("_jax_x64")
    else:
        pytest.importorskip("torch", reason="torch is not installed (pip install torch); PyTorch golden tests skipped")
    g, cfg = load(model, config, dtype)
    cand = CANDIDATES[library][model](g, cfg)
    checked = [k for k in g if k.split("/")[0] in ("output", "grad", "trajectory")]
    assert sorted(cand) == sorted(checked), f"candidate keys differ: {sorted(set(cand) ^ set(checked))}"
    for k, v in cand.items():
        got = np.asarray(v.detach() if hasattr(v, "detach") else v).dtype
        assert got == np.dtype(dtype), f"{library} {model} {config}: {k} is {got}, not {dtype}"
    assert_matches(cand, g)


def test_cases_cover_the_suite_and_the_examples():
    """Every configuration of the golden suite, every model with an example, both libraries."""
    assert {(m, c) for m, c, *_ in CASES} == {(e.model, e.config) for e in suite()}
    assert {m for m, *_ in CASES} == set(CANDIDATES["torch"]) == set(CANDIDATES["jax"])
