"""Golden vectors for spec Y (§7): one dictionary, random Q and w ≠ 0, one sampled prompt, the
closed-form loss Y7 with its gradients, and a 10-step GD trajectory on Y7.

Keys: ``param/Q`` (H, d, d), ``param/w`` (H, K) · ``input/V_all`` (d, K), ``input/Z_all`` (m, K),
``input/N`` (), ``input/tau`` (), ``input/y`` (N,) one sampled prompt · ``output/A_hat`` (N, K),
``output/A`` (N, K), ``output/y_hat`` (K,) = Âᵀy, ``output/loss`` () population loss Y7,
``output/L_star`` () · ``grad/Q``, ``grad/w`` (of ``output/loss``) · ``trajectory/lr_Q``,
``trajectory/lr_w``, ``trajectory/loss`` (10,): GD on Y7, the loss before each step.

[C] Q entries N(0, 1) (β = 1, spec Y6), w entries 0.5 · N(0, 1) (the spec requires w ≠ 0, else
∇Q = 0). Configuration: the ``golden`` preset (K = 7, N = 3, d = 4, m = 2, H = 3, τ = 0.1,
η_Q = 0.5, γ = 1), or ``config``. No extra keys beyond spec Y §7: the loss is always the closed
form Y7 and the trajectory always GD (spec §7), whatever ``config.loss`` / ``config.optimizer`` say.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.golden import check_dtype
from refimpl.core.rng import make_rng, spawn
from refimpl.yang2024.config import Config, preset
from refimpl.yang2024.data import make_dictionary, sample_prompts
from refimpl.yang2024.model import loss_and_grads
from refimpl.yang2024.train import run_gd

W_SCALE = 0.5
TRAJECTORY_STEPS = 10


def golden_arrays(seed: int, dtype: str = "float64", *, config=None) -> tuple[dict, dict]:
    """The arrays of the golden file of ``seed`` (spec Y §7; keys in the module docstring).

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Drives the dictionary, the prompt and the parameters.
    dtype : {"float64", "float32"}
        The dtype of the float arrays (computed in float64, then rounded).
    config : refimpl.yang2024.config.Config, optional
        Default: the ``golden`` preset (K = 7, N = 3, d = 4, m = 2, H = 3, τ = 0.1, η_Q = 0.5).

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
    if config is not None and not isinstance(config, Config):
        raise TypeError(f"config must be a yang2024 Config, got {type(config).__name__}")
    cfg = preset("golden") if config is None else config
    v_rng, y_rng, p_rng = spawn(make_rng(seed), 3)
    V_all, Z_all = make_dictionary(cfg.K, cfg.d, cfg.m, v_rng, normalize_tokens=cfg.normalize_tokens)
    y = sample_prompts(Z_all, cfg.N, cfg.tau, 1, y_rng)["y"][0]  # (N,)
    Q = cfg.beta * p_rng.standard_normal((cfg.H, cfg.d, cfg.d))
    w = W_SCALE * p_rng.standard_normal((cfg.H, cfg.K))
    # everything is computed in float64, then cast (the float32 file stores rounded references)
    batch = {"V_all": V_all, "Z_all": Z_all, "N": cfg.N, "tau": cfg.tau}
    loss, grads, aux = loss_and_grads({"Q": Q, "w": w}, batch, cfg.replace(loss="population"), "numpy",
                                      return_aux=True)
    traj = run_gd({"Q": Q, "w": w}, batch, cfg.eta_Q, cfg.gamma, TRAJECTORY_STEPS - 1, backend="numpy")
    def c(x):
        return np.asarray(x, dtype=np.float64).astype(dtype)
    arrays = {
        "param/Q": c(Q), "param/w": c(w),
        "input/V_all": c(V_all), "input/Z_all": c(Z_all), "input/N": np.array(cfg.N),
        "input/tau": c(cfg.tau), "input/y": c(y),
        "output/A_hat": c(aux["A_hat"]), "output/A": c(aux["pop"].A), "output/y_hat": c(y @ aux["A_hat"]),
        "output/loss": c(loss), "output/L_star": c(aux["pop"].L_star),
        "grad/Q": c(grads["Q"]), "grad/w": c(grads["w"]),
        "trajectory/lr_Q": c(cfg.eta_Q), "trajectory/lr_w": c(cfg.eta_w), "trajectory/loss": c(traj.records["loss"]),
    }
    config = {"preset": "golden" if config is None else None, **cfg.to_dict(), "w_scale": W_SCALE}
    return config, arrays
