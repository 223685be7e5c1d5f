"""The synthetic task of the spec T transformer [C]: a teacher network of the same configuration.

The transformer is a generic model (the papers' prompts reach it through ``refimpl.experiments``),
so the task its contract functions (``make_data``, ``sample_batch``, ``train``) use is a generic
teacher–student problem, a documented choice [C] of this project, not a paper's:

    θ*      = init_params(cfg with init "xavier", teacher stream of the seed),    the teacher,
              read-out standardised: w_out ← w_out / s, b_out ← (b_out − m) / s
    X       ~ N(0, 1) i.i.d.,  (n, T, d_in)                                       fresh each batch
    target  = f_θ*(X)                        (squared loss; shaped like the output, (n, T) or (n,))
              sign f_θ*(X) ∈ {−1, +1}        (hinge loss; sign(0) = +1)

Scale: m and s are the mean and standard deviation of the Xavier teacher's raw outputs on
``N_REF`` = 256 reference sequences (drawn from the teacher stream after its parameters), so the
targets have mean ≈ 0 and variance ≈ 1 over inputs at every size, and the hinge labels are
balanced. (Without it the outputs' mean square is O(1), ≈ 2D/(D + 1) over teachers: layer-normed
features of norm √D times a Xavier read-out row of variance 2/(D + 1), but for one teacher much of
it can be a constant offset: measured 95% for ``gpt2_3l2h`` at D = 64, an almost constant target.)
T defaults to min(max_T, 8) [C] and can be set.

Streams [C]: ``streams(seed)`` spawns three independent generators of ``seed``: the teacher
(``make_data``), the training minibatches and the evaluation batch (``train``). ``init_params(cfg,
seed)`` draws from ``seed`` itself, so the student's initialisation and the teacher are independent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refimpl.core.arrays import is_int
from refimpl.core.rng import make_rng, spawn
from refimpl.transformer.config import TransformerConfig
from refimpl.transformer.model import _check_cfg, init_params, predict

DEFAULT_T = 8  # [C] sequence length of the synthetic task: min(cfg.max_T, DEFAULT_T) unless given
N_REF = 256  # [C] reference sequences on which the teacher's read-out is standardised


def streams(seed) -> dict[str, np.random.Generator]:
    """The three independent generators of ``seed``: ``teacher``, ``batches``, ``eval``."""
    teacher, batches, evals = spawn(make_rng(seed), 3)
    return {"teacher": teacher, "batches": batches, "eval": evals}


@dataclass(frozen=True)
class TeacherTask:
    """The fixed objects of the synthetic task: the configuration, the teacher's parameters
    (float64, keyed like ``init_params``) and the sequence length T."""

    cfg: TransformerConfig
    teacher: dict
    T: int


def make_data(cfg: TransformerConfig, seed, *, T: int | None = None) -> TeacherTask:
    """The fixed objects of the synthetic task [C]: a teacher network of the same configuration.

    Parameters
    ----------
    cfg : refimpl.transformer.config.TransformerConfig
        The architecture of the teacher (and of the student that learns it).
    seed : int or numpy.random.Generator
        The teacher is drawn (Xavier scheme) from the ``teacher`` stream of :func:`streams`, its
        read-out standardised on ``N_REF`` = 256 reference sequences of the same stream (targets
        of mean ≈ 0 and variance ≈ 1).
    T : int, optional
        Sequence length; default min(cfg.max_T, 8); at most ``max_T`` with learned positions.

    Returns
    -------
    TeacherTask
        ``cfg``; ``teacher``, float64 parameters keyed like
        :func:`refimpl.transformer.model.init_params`; ``T``.

    Raises
    ------
    ValueError
        For a bad ``T``.
    """
    _check_cfg(cfg)
    if T is None:
        T = min(cfg.max_T, DEFAULT_T)
    if not (is_int(T) and T >= 1):
        raise ValueError(f"T must be an int ≥ 1, got {T!r}")
    if cfg.positions == "learned" and T > cfg.max_T:
        raise ValueError(f"T = {T} exceeds max_T = {cfg.max_T} of the learned positions")
    rng = streams(seed)["teacher"]
    teacher = init_params(cfg.replace(init="xavier"), rng)
    X_ref = rng.standard_normal((N_REF, T, cfg.d_in))  # (N_REF, T, d_in)
    raw = predict(teacher, {"X": X_ref}, cfg, check=False)  # (N_REF, T) or (N_REF,)
    m, s = float(np.mean(raw)), float(np.std(raw))
    if s > 0:  # (a constant teacher is left as it is)
        teacher["read_out.W"] = teacher["read_out.W"] / s  # (1, D)  out ← (out − m) / s
        teacher["read_out.b"] = (teacher["read_out.b"] - m) / s  # (1,)
    return TeacherTask(cfg=cfg, teacher=teacher, T=int(T))


def sample_batch(data: TeacherTask, n: int, rng) -> dict:
    """Draw ``n`` fresh input sequences and the teacher's targets.

    Parameters
    ----------
    data : TeacherTask
        The task of :func:`make_data`.
    n : int
        Number of sequences, ≥ 1.
    rng : numpy.random.Generator
        The generator the inputs are drawn with (an int seed is accepted too).

    Returns
    -------
    dict
        ``X`` float64 (n, T, d_in), entries i.i.d. N(0, 1); ``target`` float64, shaped like the
        model output, (n, T) for ``readout="all"`` and (n,) for ``"last"``: the teacher's output
        (squared loss) or its sign ±1 (hinge loss).
    """
    if not isinstance(data, TeacherTask):
        raise TypeError(f"data must be the TeacherTask of make_data, got {type(data).__name__}")
    if not (is_int(n) and n >= 1):
        raise ValueError(f"n must be an int ≥ 1, got {n!r}")
    rng = make_rng(rng, "rng")
    cfg = data.cfg
    X = rng.standard_normal((n, data.T, cfg.d_in))  # (n, T, d_in)
    out = predict(data.teacher, {"X": X}, cfg, check=False)  # (n, T) or (n,)
    target = out if cfg.loss == "squared" else np.where(out >= 0, 1.0, -1.0)
    return {"X": X, "target": target}
