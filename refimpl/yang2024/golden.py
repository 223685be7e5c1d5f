"""Golden vectors for spec Y (§7): one dictionary, random Q and w ≠ 0, one sampled prompt, the
closed-form loss Y7 with its gradients, and a 10-step GD trajectory on Y7.

Keys: ``param/Q`` (H, d, d), ``param/w`` (H, K) · ``input/V_all`` (d, K), ``input/Z_all`` (m, K),
``input/N`` (), ``input/tau`` (), ``input/y`` (N,) one sampled prompt · ``output/A_hat`` (N, K),
``output/A`` (N, K), ``output/y_hat`` (K,) = Âᵀy, ``output/loss`` () population loss Y7,
``output/L_star`` () · ``grad/Q``, ``grad/w`` (of ``output/loss``) · ``trajectory/lr_Q``,
``trajectory/lr_w``, ``trajectory/loss`` (10,): GD on Y7 (Q ← Q − η_Q ∇_Q L, w ← w − η_w ∇_w L),
the loss before each step.

[C] Q entries N(0, 1) (β = 1, spec Y6), w entries 0.5 · N(0, 1) (the spec requires w ≠ 0, else
∇Q = 0). Configuration: the ``golden`` preset (K = 7, N = 3, d = 4, m = 2, H = 3, τ = 0.1,
η_Q = 0.5, γ = 1), or ``config``. A float32 file holds the float32 rounding of the float64 draws
and everything computed from them in float32.

The golden suite (:data:`CONFIGS`, ``golden_arrays(seed, dtype, config=NAME)``):

===========  ===================================================================================
name         what it exercises
===========  ===================================================================================
``default``  the ``golden`` preset: H = N = 3 (H ≥ N, the regime where the heads can copy every
             prompt label), the closed-form loss Y7
``H_lt_N``   H = 2 < N = 5 (K = 7): fewer heads than prompt tokens, the regime of spec Y's
             lower bound, Y7
``sample``   the sample loss (1/2K)·mean_b Σ_k (ŷ_k − y_k)² over B = 8 sampled prompts (spec Y1,
             Y7 before the expectation; ``cfg.loss = "sample"``), its gradient through ŷ = yÂ,
             and GD on it over the stored prompts. Keys: ``input/y`` (B, N), ``input/y_all``
             (B, K), ``output/y_hat`` (B, K); no ``input/Z_all``, ``input/tau``, ``output/A``,
             ``output/L_star`` (population quantities)
===========  ===================================================================================

A :class:`~refimpl.yang2024.config.Config` as ``config`` gives the population-loss file of that
configuration (whatever its ``loss`` and ``optimizer`` say; the trajectory is always GD).
"""

from __future__ import annotations

import numpy as np

from refimpl.core.golden import check_dtype
from refimpl.core.rng import make_rng, spawn
from refimpl.yang2024.config import Config, preset
from refimpl.yang2024.data import make_dictionary, sample_prompts
from refimpl.yang2024.model import loss_and_grads

W_SCALE = 0.5
TRAJECTORY_STEPS = 10
SAMPLE_B = 8  # prompts of the "sample" configuration

#: the golden suite: name -> how to build its configuration, and what it covers
CONFIGS: dict[str, dict] = {
    "default": dict(cfg=None, covers="H >= N (H = N = 3), population loss Y7"),
    "H_lt_N": dict(cfg=lambda: preset("golden", H=2, N=5), covers="H < N (H = 2, N = 5), population loss Y7"),
    "sample": dict(cfg=lambda: preset("golden", loss="sample"), covers="sample loss over B = 8 prompts, H = N = 3"),
}


def suite_config(name: str) -> Config:
    """The :class:`Config` of suite configuration ``name`` (``ValueError`` for an unknown name)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown yang2024 golden configuration {name!r}; allowed: {list(CONFIGS)}")
    make = CONFIGS[name]["cfg"]
    return preset("golden") if make is None else make()


def golden_arrays(seed: int, dtype: str = "float64", *, config: Config | str | None = None) -> tuple[dict, dict]:
    """The arrays of the golden file of ``seed`` (spec Y §7; keys in the module docstring).

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Drives the dictionary, the prompt and the parameters.
    dtype : {"float64", "float32"}
        The dtype of the float arrays; the computation runs in it.
    config : str or config object, optional
        A suite configuration by name (:data:`CONFIGS`, listed by ``refimpl golden suite --list``;
        None or ``"default"`` is the default file), or a configuration object.
        The default file uses the ``golden`` preset (K = 7, N = 3, d = 4, m = 2, H = 3, τ = 0.1, η_Q = 0.5).

    Returns
    -------
    config_dict : dict
        ``preset`` (``"golden"`` or None), the configuration's fields and ``w_scale``.
    arrays : dict of numpy.ndarray
        ``param/Q`` (H, d, d), ``param/w`` (H, K); ``input/V_all`` (d, K), ``input/Z_all`` (m, K),
        ``input/N`` (), ``input/tau`` (), ``input/y`` (N,); ``output/A_hat`` (N, K), ``output/A``
        (N, K), ``output/y_hat`` (K,), ``output/loss`` (), ``output/L_star`` (); ``grad/Q``
        (H, d, d), ``grad/w`` (H, K); ``trajectory/lr_Q`` (), ``trajectory/lr_w`` (),
        ``trajectory/loss`` (10,).
    """
    check_dtype(dtype)
    name = None
    if config is None or isinstance(config, str):
        name = "default" if config is None else config
        cfg = suite_config(name)
    elif isinstance(config, Config):
        cfg = config.replace(loss="population")
    else:
        raise TypeError(f"config must be None, a configuration name or a yang2024 Config, got {type(config).__name__}")
    sample = cfg.loss == "sample"
    v_rng, y_rng, p_rng = spawn(make_rng(seed), 3)
    V_all, Z_all = make_dictionary(cfg.K, cfg.d, cfg.m, v_rng, normalize_tokens=cfg.normalize_tokens)
    prompts = sample_prompts(Z_all, cfg.N, cfg.tau, SAMPLE_B if sample else 1, y_rng)
    Q = cfg.beta * p_rng.standard_normal((cfg.H, cfg.d, cfg.d))
    w = W_SCALE * p_rng.standard_normal((cfg.H, cfg.K))

    def c(x):  # the float64 draws rounded to dtype: the file's params and inputs, computed from in dtype
        return np.asarray(x, dtype=np.float64).astype(dtype)

    params = {"Q": c(Q), "w": c(w)}
    if sample:
        y, y_all = c(prompts["y"]), c(prompts["y_all"])  # (B, N), (B, K)
        batch = {"V_all": c(V_all), "N": np.array(cfg.N), "y": y, "y_all": y_all}
    else:
        y = c(prompts["y"][0])  # (N,) one prompt
        batch = {"V_all": c(V_all), "Z_all": c(Z_all), "N": np.array(cfg.N), "tau": c(cfg.tau)}
    loss, grads, aux = loss_and_grads(params, batch, cfg, "numpy", return_aux=True)

    eta_Q, eta_w = cfg.eta_Q, cfg.gamma ** 2 * cfg.eta_Q  # spec Y9: η_w = γ² η_Q
    traj = np.zeros(TRAJECTORY_STEPS, dtype=dtype)
    p = {k: v.copy() for k, v in params.items()}
    for t in range(TRAJECTORY_STEPS):  # GD on the same loss, the loss before each step (spec Y9)
        traj[t], g = loss_and_grads(p, batch, cfg, "numpy")
        p["Q"] -= eta_Q * g["Q"]
        p["w"] -= eta_w * g["w"]

    arrays = {"param/Q": params["Q"], "param/w": params["w"], "input/V_all": batch["V_all"]}
    if sample:
        arrays.update({"input/N": batch["N"], "input/y": y, "input/y_all": y_all,
                       "output/A_hat": aux["A_hat"], "output/y_hat": aux["out"]})
    else:
        arrays.update({"input/Z_all": batch["Z_all"], "input/N": batch["N"], "input/tau": batch["tau"], "input/y": y,
                       "output/A_hat": aux["A_hat"], "output/A": aux["pop"].A, "output/y_hat": y @ aux["A_hat"]})
    arrays["output/loss"] = np.array(loss, dtype=dtype)
    if not sample:
        arrays["output/L_star"] = np.array(aux["pop"].L_star, dtype=dtype)
    arrays.update({"grad/Q": grads["Q"], "grad/w": grads["w"],
                   "trajectory/lr_Q": c(eta_Q), "trajectory/lr_w": c(eta_w), "trajectory/loss": traj})
    config_dict = {"preset": "golden" if name == "default" else name, **cfg.to_dict(), "w_scale": W_SCALE}
    if sample:
        config_dict["B"] = SAMPLE_B
    return config_dict, arrays
