"""Benchmark problems: one fixed training step per model, the same inputs for every backend.

A :class:`Problem` holds the initial parameters, one fixed batch, the loss options and the
optimiser of one model at one size, all as NumPy arrays in one dtype, keyed exactly like the
refimpl loss function of that model. The competitors (``torch_backend``, ``jax_backend``) and
refimpl's own paths (:func:`reference_step`, backend "numpy" or "numba") all start from it, so
their losses, gradients and trajectories can be compared number by number before they are timed.

=================  ==================================================================  =========
model              what one step is                                                    spec
=================  ==================================================================  =========
``li2024``         mean hinge loss of the one-layer transformer on B fixed prompts,    L7–L12
                   SGD on W_Q, W_K, W_V, W_O (a fixed) with the preset's η
``yang2024``       sample loss (1/2K)·mean_b Σ_k (ŷ_k − y_k)² on B sampled prompts     Y5, Y7, Y9
                   of the fixed dictionary, Adam (lr 1e−4) on Q, w
``huang2023``      mean per-sample loss ½(ŷ − y_q)² on B materialised prompts, GD on Q  H4–H6
``huang2023_C``    the reduced population loss L(C) over M Monte-Carlo count vectors    H7, H8(b)
                   (every query feature k with weight p_k), GD on C
=================  ==================================================================  =========

Paper-default sizes (issue 6) when no size is given; keyword sizes override them (scaling
curves). The parameter values are chosen so that every gradient entry is exercised, which the
papers' initialisations do not always do (each deviation is tagged [C] where it is made):

- yang2024: Q per spec Y6 (N(0, β²)), but w ~ N(0, 0.1²) instead of w⁰ = 0 (with w = 0 the Q
  gradient is exactly zero, spec §7).
- huang2023: Q ~ N(0, 0.5²) instead of Q⁰ = 0 (at Q = 0 the attention is uniform and the
  softmax backward is a special case).
- huang2023_C: C ~ N(0, 0.5²) instead of C⁰ = 0, for the same reason.

Step cost does not depend on the parameter values (no data-dependent branching in any path).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from refimpl.core.arrays import check_choice, is_int, require
from refimpl.core.rng import make_rng, spawn

MODELS = ("li2024", "yang2024", "huang2023", "huang2023_C")
DTYPES = ("float64", "float32")

#: paper-default sizes per model (issue 6) and the sizes each model accepts
DEFAULT_SIZES = {
    "li2024": {"B": 64, "l": 20, "d": 40, "m": 100},
    "yang2024": {"H": 64, "N": 30, "K": 200, "d": 100, "m": 20, "B": 256},
    "huang2023": {"K": 10, "N": 100, "B": 256},
    "huang2023_C": {"K": 10, "N": 100, "M": 4000},
}


@dataclass
class Problem:
    """One model's training step at one size: everything a backend needs, as NumPy arrays.

    ``params``/``batch``/``options`` are exactly what refimpl's loss function of ``model`` takes
    (for ``huang2023``: the options are the fields ``loss``, ``attend_to_query`` of the Config that
    :func:`huang2023_config` builds; for ``yang2024`` the loss option goes into the model's config,
    :func:`yang2024_config`; for ``huang2023_C``: params {"C"}, batch {"p", "counts", "weights"},
    options {"attend_to_query"}, the arguments of ``population.loss_and_grad_C``). ``optimizer`` is
    ``{"name": "sgd", "lr"}`` or ``{"name": "adam", "lr", "betas", "eps"}``. ``trainable`` lists
    the parameters the optimiser updates (the others, e.g. li2024's ``a``, stay fixed).
    """

    model: str
    config: dict
    params: dict
    batch: dict
    options: dict
    optimizer: dict
    dtype: str
    trainable: tuple = field(default=())

    def copy_params(self) -> dict:
        """A fresh copy of the initial parameters (runners must not mutate ``params``)."""
        return {k: v.copy() for k, v in self.params.items()}


def _sizes(model: str, sizes: dict) -> dict:
    allowed = DEFAULT_SIZES[model]
    unknown = sorted(set(sizes) - set(allowed))
    if unknown:
        raise ValueError(f"unknown size(s) {unknown} for model {model!r}; allowed: {list(allowed)}")
    out = {**allowed, **sizes}
    for k, v in out.items():
        require(is_int(v) and v >= 1, f"size {k} must be an int ≥ 1, got {v!r}")
    return {k: int(v) for k, v in out.items()}


#: the loss options each model's problem accepts (``make_problem(..., options=...)``)
OPTIONS = {
    "li2024": ("attend_to_query", "train_a", "relu_at_zero"),
    "yang2024": ("loss",),
    "huang2023": ("attend_to_query",),
    "huang2023_C": ("attend_to_query",),
}


def make_problem(model: str, dtype: str = "float64", seed: int = 0, *, options: dict | None = None,
                 **sizes) -> Problem:
    """The benchmark problem of ``model`` at the paper-default sizes, or at ``sizes``.

    ``model``: one of "li2024", "yang2024", "huang2023", "huang2023_C". ``dtype``: "float64" or
    "float32" (parameters and inputs are drawn in float64 and then cast, so the f32 problem holds
    the rounded f64 numbers). ``seed``: every draw comes from it (same seed → identical problem).
    ``options``: overrides of the loss options (the spec options that change the math), allowed
    keys in ``OPTIONS``: li2024 attend_to_query, train_a (then ``a`` is trained too),
    relu_at_zero; yang2024 loss (only "sample" is a benchmark problem); huang2023 and
    huang2023_C attend_to_query.
    Sizes (keywords, see ``DEFAULT_SIZES``): li2024 B, l, d, m; yang2024 H, N, K, d, m, B;
    huang2023 K, N, B; huang2023_C K, N, M.
    """
    check_choice("model", model, MODELS)
    check_choice("dtype", dtype, DTYPES)
    rng = make_rng(seed)
    s = _sizes(model, sizes)
    build = {"li2024": _li2024, "yang2024": _yang2024, "huang2023": _huang2023, "huang2023_C": _huang2023_C}
    prob = build[model](s, rng)
    if options:
        if not hasattr(options, "keys"):
            raise TypeError(f"options must be a dict, got {type(options).__name__}")
        unknown = sorted(set(options) - set(OPTIONS[model]))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for model {model!r}; allowed: {list(OPTIONS[model])}")
        for k, v in options.items():
            if k in ("attend_to_query", "train_a"):
                require(isinstance(v, (bool, np.bool_)), f"option {k} must be a bool, got {v!r}")
            elif k == "relu_at_zero":
                require(v in (0, 1), f"option relu_at_zero must be 0 or 1, got {v!r}")
            elif k == "loss":
                require(v == "sample", f"option loss must be 'sample' (the benchmark's minibatch loss), got {v!r}")
        prob.options = {**prob.options, **options}
        if model == "li2024":
            prob.trainable = ("W_Q", "W_K", "W_V", "W_O") + (("a",) if prob.options["train_a"] else ())
    dt = np.dtype(dtype)
    prob.params = {k: np.ascontiguousarray(v, dtype=dt) for k, v in prob.params.items()}
    prob.batch = {
        k: (np.ascontiguousarray(v, dtype=dt) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
        for k, v in prob.batch.items()
    }
    prob.dtype = dtype
    return prob


# --------------------------------------------------------------------------------------------
# the four models
# --------------------------------------------------------------------------------------------
def li2024_data_config(d: int, l: int):
    """A spec L data config with embedding dimension d = d_X + d_Y and context length l.

    d = 40 gives the default preset (d_X = 30, d_Y = 10, M1 = 6, M2 = 24). Other d [C]:
    d_Y = max(1, d // 4), d_X = d − d_Y, M1 = 6, M2 = d_X − M1, so that the patterns stay
    orthogonal (d_X ≥ M1 + M2, spec L1) and the OOD set of the default config stays valid
    (M1 ≥ 2 M1' = 6). Needs d ≥ 9.
    """
    from refimpl.li2024.config import DataConfig

    require(is_int(d) and d >= 9, f"li2024 size d must be ≥ 9 (d_X ≥ M1 + M2 = 6 + 1, d_Y ≥ 2), got {d!r}")
    d_y = max(1, d // 4)
    d_x = d - d_y
    M1 = 6
    return DataConfig(d_x=d_x, d_y=d_y, M1=M1, M2=d_x - M1, l_train=l, l_test=l)


def _li2024(s: dict, rng: np.random.Generator) -> Problem:
    from refimpl.li2024 import init_params, make_instance, preset, sample_batch

    base = preset("default")  # spec L8 / L11 [C]: model and SGD step of the default preset
    cfg = base.replace(
        data=vars(li2024_data_config(s["d"], s["l"])),
        model={"m": s["m"]},
        train={"batch_size": s["B"]},
    )
    r_inst, r_init, r_batch = spawn(rng, 3)
    inst = make_instance(cfg.data, r_inst)  # spec L1–L6
    params = init_params(cfg, r_init)  # spec L8: W_Q⁰ = W_K⁰ = δ[I 0; 0 0], W_V⁰ = I, W_O⁰ ~ N(0, ξ²)
    b = sample_batch(inst, s["B"], r_batch)  # one fixed batch of B training prompts (spec L4, L5)
    options = cfg.model.options()  # attend_to_query, train_a, relu_at_zero
    trainable = ("W_Q", "W_K", "W_V", "W_O") + (("a",) if options["train_a"] else ())
    config = {**s, "d_x": cfg.data.d_x, "d_y": cfg.data.d_y, "M1": cfg.data.M1, "M2": cfg.data.M2,
              "m_a": cfg.m_a, "m_b": cfg.m_b}
    return Problem(
        model="li2024", config=config, params=params, batch={"P": b["P"], "z": b["z"].astype(np.float64)},
        options=options, optimizer={"name": "sgd", "lr": float(cfg.train.lr)}, dtype="float64",
        trainable=trainable,
    )


def yang2024_config(problem: Problem):
    """The spec Y ``Config`` of a yang2024 problem: its sizes, τ and loss option (Adam, lr 1e−4,
    batch B as the ``fig2`` preset, spec Y9 [P])."""
    from refimpl.yang2024 import preset

    c = problem.config
    return preset("fig2", K=c["K"], N=c["N"], d=c["d"], m=c["m"], H=c["H"], tau=c["tau"], batch_size=c["B"],
                  loss=problem.options["loss"])


def _yang2024(s: dict, rng: np.random.Generator) -> Problem:
    from refimpl.yang2024 import init_params, make_dictionary, preset, sample_prompts

    require(s["N"] <= s["K"], f"yang2024 needs N ≤ K (spec Y4), got N={s['N']}, K={s['K']}")
    cfg = preset("fig2", K=s["K"], N=s["N"], d=s["d"], m=s["m"], H=s["H"], beta=1.0)
    tau = cfg.tau  # spec Y §8 [C]: τ = 0.01 for Fig. 2
    r_dict, r_init, r_w, r_data = spawn(rng, 4)
    V_all, Z_all = make_dictionary(s["K"], s["d"], s["m"], r_dict)  # spec Y2
    params = init_params(cfg, r_init)  # spec Y6: Q⁰ ~ N(0, 1)
    params["w"] = 0.1 * r_w.standard_normal((s["H"], s["K"]))  # [C] w ≠ 0 so ∇Q ≠ 0 (spec Y §7)
    data = sample_prompts(Z_all, s["N"], tau, s["B"], r_data, keep_eps=False)  # spec Y1: B prompts
    batch = {"V_all": V_all, "N": s["N"], "y": data["y"], "y_all": data["y_all"]}
    return Problem(
        model="yang2024", config={**s, "tau": tau}, params=params, batch=batch, options={"loss": "sample"},
        optimizer={"name": "adam", "lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8},  # spec Y9 [P]
        dtype="float64", trainable=("Q", "w"),
    )


def _huang2023(s: dict, rng: np.random.Generator) -> Problem:
    from refimpl.huang2023 import make_features, preset, sample_prompts

    eta = float(preset("balanced").eta)  # spec H13 (a): η = 1
    K, N, B = s["K"], s["N"], s["B"]
    d = K  # spec H1 [C]: d = K
    r_v, r_q, r_data = spawn(rng, 3)
    V = make_features(d, K, r_v)  # (d, K) orthonormal features, spec H1
    p = np.full(K, 1.0 / K)  # balanced, spec H1
    b = sample_prompts(V, p, N, B, r_data)  # spec H1–H2: one fresh w per prompt
    Q = 0.5 * r_q.standard_normal((d, d))  # [C] random Q (Q⁰ = 0 gives uniform attention)
    batch = {"X": b["X"], "xq": b["xq"], "y": b["y"], "yq": b["yq"]}
    return Problem(
        model="huang2023", config={**s, "d": d, "p": "balanced"}, params={"Q": Q}, batch=batch,
        options={"loss": "sample", "attend_to_query": False}, optimizer={"name": "sgd", "lr": eta},
        dtype="float64", trainable=("Q",),
    )


def _huang2023_C(s: dict, rng: np.random.Generator) -> Problem:
    from refimpl.huang2023 import population, preset

    K, N, M = s["K"], s["N"], s["M"]
    r_pop, r_c = spawn(rng, 2)
    p = np.full(K, 1.0 / K)  # balanced, spec H1
    pop = population.monte_carlo(p, N, M, r_pop)  # spec H8 (b): M count vectors, weight 1/M
    C = 0.5 * r_c.standard_normal((K, K))  # [C] random C (C⁰ = 0 gives uniform attention)
    batch = {"p": pop.p, "counts": pop.counts, "weights": pop.weights}
    return Problem(
        model="huang2023_C", config={**s, "p": "balanced"}, params={"C": C}, batch=batch,
        options={"attend_to_query": False},
        optimizer={"name": "sgd", "lr": float(preset("balanced").eta)},  # spec H13 (a): η = 1
        dtype="float64", trainable=("C",),
    )


# --------------------------------------------------------------------------------------------
# refimpl's own step on a problem (the numbers every competitor is checked against)
# --------------------------------------------------------------------------------------------
def huang2023_config(problem: Problem):
    """The ``refimpl.huang2023.Config`` of a huang2023 problem: its sizes and loss options (what
    ``loss_and_grads`` reads from it: ``loss``, ``attend_to_query``); built once per combination
    (constructing and validating a Config takes ~13 µs, 4% of a step)."""
    c, o = problem.config, problem.options
    return _huang2023_config(c["K"], c["d"], c["N"], o["loss"], bool(o["attend_to_query"]))


@functools.lru_cache(maxsize=64)
def _huang2023_config(K: int, d: int, N: int, loss: str, attend_to_query: bool):
    from refimpl.huang2023 import Config

    return Config(K=K, d=d, N=N, loss=loss, attend_to_query=attend_to_query)


def huang2023_C_population(problem: Problem):
    """The ``population.Population`` of a huang2023_C problem (its batch and options)."""
    from refimpl.huang2023.population import from_counts

    b = problem.batch
    return from_counts(b["p"], b["counts"], b["weights"], attend_to_query=problem.options["attend_to_query"])


@functools.lru_cache(maxsize=16)
def _li2024_config(attend_to_query: bool, train_a: bool, relu_at_zero: float):
    """The li2024 config whose ``model`` section carries a problem's options (built once per options,
    outside the timed step): ``refimpl.li2024.loss_and_grads`` reads the options from ``cfg.model``."""
    from refimpl.li2024 import preset

    return preset("default", model={"attend_to_query": attend_to_query, "train_a": train_a,
                                    "relu_at_zero": relu_at_zero})


def reference_loss_and_grads(problem: Problem, params: dict, backend: str = "numpy", *, check: bool = True,
                             outputs: bool = True, cfg=None):
    """refimpl's loss, gradients and forward outputs at ``params``: ``(loss, grads, outputs)``.

    ``outputs`` per model: li2024 {"F", "attn"}; yang2024 {"A_hat", "S"}; huang2023 {"attn",
    "y_hat"}; huang2023_C {"Lk", "Ealpha"} (E_n[α_{k→m}], [k, m]); ``None`` when ``outputs`` is
    False. ``backend``: "numpy" or "numba". ``check=False`` skips refimpl's input validation
    (what a training loop does after its first step). ``cfg``: the yang2024 ``Config`` when the
    caller has it already (:func:`yang2024_config`).
    """
    check_choice("backend", backend, ("numpy", "numba"))
    m = problem.model
    if m == "huang2023":
        from refimpl.huang2023 import loss_and_grads

        res = loss_and_grads(params, problem.batch, huang2023_config(problem), backend, check=check,
                             return_aux=outputs)
        return res[0], res[1], ({"attn": res[2]["attn"], "y_hat": res[2]["out"]} if outputs else None)
    if m == "yang2024":
        from refimpl.yang2024 import loss_and_grads

        cfg = yang2024_config(problem) if cfg is None else cfg
        res = loss_and_grads(params, problem.batch, cfg, backend, check=check, return_aux=outputs)
        return res[0], res[1], ({"A_hat": res[2]["A_hat"], "S": res[2]["attn"]} if outputs else None)
    if m == "li2024":
        from refimpl.li2024 import loss_and_grads

        o = problem.options
        cfg = _li2024_config(bool(o["attend_to_query"]), bool(o["train_a"]), float(o["relu_at_zero"]))
        res = loss_and_grads(params, problem.batch, cfg, backend, check=check, return_aux=outputs)
        return res[0], res[1], ({"F": res[2]["out"], "attn": res[2]["attn"]} if outputs else None)
    pop = huang2023_C_population(problem)
    C = params["C"]
    if backend == "numpy":
        from refimpl.huang2023.population import loss_and_grad_C

        L, Lk, G, Ea = loss_and_grad_C(C, pop)  # spec H7
    else:
        from refimpl.huang2023.kernels import _loss_grad_C

        K = pop.K
        G, Lk, Ea = np.zeros((K, K)), np.zeros(K), np.zeros((K, K))
        def f(a):
            return np.ascontiguousarray(a, dtype=np.float64)
        L = _loss_grad_C(f(C), f(pop.p), f(pop.counts), f(pop.weights), bool(pop.attend_to_query),
                         G, Lk, Ea, np.arange(K, dtype=np.int64))  # spec H7, the Numba kernel
    return float(L), {"C": G}, ({"Lk": Lk, "Ealpha": Ea} if outputs else None)


class ReferenceStep:
    """refimpl's training step on a problem: ``step()`` (or calling the object) does loss and
    gradients (backend "numpy" or "numba") and the optimiser update; the same interface as the
    competitors' runners (``loss_and_grads``, ``step``, ``params``).

    SGD: W ← W − η ∇W. Adam: :class:`refimpl.core.optim.Adam` (torch's form, as
    ``refimpl.yang2024.run_adam``; on backend "numba" its fused kernel, bit-equal to NumPy).
    """

    def __init__(self, problem: Problem, backend: str = "numpy"):
        check_choice("backend", backend, ("numpy", "numba"))
        self.problem = problem
        self.backend = backend
        self._p = problem.copy_params()
        opt = problem.optimizer
        check_choice("optimizer['name']", opt["name"], ("sgd", "adam"))
        self._opt = opt
        self._t = 0
        self._checked = False  # refimpl validates the inputs on the first call only
        self._cfg = yang2024_config(problem) if problem.model == "yang2024" else None
        if opt["name"] == "adam":
            from refimpl.core.optim import Adam

            self._adam = Adam(opt["lr"], opt["betas"], opt["eps"], backend=backend)

    def loss_and_grads(self) -> tuple[float, dict]:
        loss, g, _ = reference_loss_and_grads(self.problem, self._p, self.backend, check=not self._checked,
                                              outputs=False, cfg=self._cfg)
        self._checked = True
        return float(loss), g

    def outputs(self) -> dict:
        return reference_loss_and_grads(self.problem, self._p, self.backend, cfg=self._cfg)[2]

    def step(self) -> float:
        """One step; returns the loss before the update."""
        loss, g = self.loss_and_grads()
        opt = self._opt
        self._t += 1
        if opt["name"] == "adam":
            self._adam.step(self._p, {k: g[k] for k in self.problem.trainable})
            return loss
        for k in self.problem.trainable:
            self._p[k] -= opt["lr"] * g[k]
        return loss

    __call__ = step

    def params(self) -> dict:
        return {k: v.copy() for k, v in self._p.items()}


def reference_step(problem: Problem, backend: str = "numpy") -> ReferenceStep:
    """refimpl's step on ``problem`` as a callable (see :class:`ReferenceStep`)."""
    return ReferenceStep(problem, backend)
