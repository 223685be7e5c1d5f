"""Data model of spec L (Li et al. 2024), L1–L6: patterns, tasks, prompts, label embedding, OOD.

Glossary (paper symbol → code name, shape):

=========  ================  ===========================================================
µ_j        ``mu``            (M1, d_x)  in-domain relevant (IDR) patterns, ‖µ_j‖ = β
ν_k        ``nu``            (M2, d_x)  in-domain irrelevant (IDI) patterns, ‖ν_k‖ = β
µ'_j       ``mu_ood``        (M1', d_x) out-of-domain relevant (ODR) patterns
ν'_k       ``nu_ood``        (M2, d_x)  out-of-domain irrelevant (ODI) patterns
q          ``q``             (d_y,)     label embedding, unit norm
(a, b)     task row          f(µ_a) = +1, f(µ_b) = −1
P          ``batch["P"]``    (B, d, l+1)  prompts, query in the last column
z          ``batch["z"]``    (B,)       query labels ±1
=========  ================  ===========================================================

Every draw uses an explicit ``np.random.Generator``; sampling is vectorised over the batch.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

import numpy as np

from refimpl.core.arrays import is_int
from refimpl.core.rng import make_rng, spawn
from refimpl.li2024.config import Config, DataConfig

#: the independent random streams of one training run, in the order ``spawn`` creates them
STREAMS = ("instance", "init", "data", "eval")


def streams(seed) -> dict[str, np.random.Generator]:
    """The random streams ``refimpl.li2024.train(cfg, seed)`` draws from, by name (:data:`STREAMS`):
    ``instance`` (patterns, q, task sets: ``make_instance``), ``init`` (``init_params``), ``data``
    (the SGD minibatches) and ``eval`` (the fixed evaluation batches). Public so that other
    experiments (e.g. a deeper model on the same data) can reproduce the exact objects of a run."""
    return dict(zip(STREAMS, spawn(make_rng(seed), len(STREAMS))))


def prompt_rng(*key: int) -> np.random.Generator:
    """The generator of the test prompts of one measurement, keyed by integers (seed, measurement,
    length, ...), independent of every training stream; the checks and the deep-model experiments
    draw the same prompts from the same key."""
    return np.random.default_rng([9_000_001, *key])


@dataclass(frozen=True)
class Instance:
    """One draw of the fixed objects of the data model (patterns, q, task sets)."""

    cfg: DataConfig
    mu: np.ndarray  # (M1, d_x)
    nu: np.ndarray  # (M2, d_x)
    mu_ood: np.ndarray  # (M1', d_x)
    nu_ood: np.ndarray  # (M2, d_x)
    ood_coef: np.ndarray  # (M1', M1) µ'_j = Σ_i k_{j,i} µ_i
    q: np.ndarray  # (d_y,)
    tasks_all: np.ndarray  # (M1(M1−1), 2)
    tasks_train: np.ndarray  # (|T_tr|, 2)
    tasks_unseen: np.ndarray  # (|T \ T_tr|, 2)
    tasks_ood: np.ndarray  # (M1'(M1'−1), 2) indices into mu_ood


def all_tasks(M: int) -> np.ndarray:
    """Every ordered pair (a, b), a ≠ b, of M patterns (spec L3): shape (M(M−1), 2)."""
    return np.array([(a, b) for a in range(M) for b in range(M) if a != b], dtype=np.int64)


def training_tasks(M1: int, shifts) -> np.ndarray:
    """T_tr = {(a, a + s mod M1) : a ∈ [M1], s ∈ S} (spec L3 [C]); each pattern |S}× as +, |S|× as −."""
    return np.array([(a, (a + s) % M1) for s in shifts for a in range(M1)], dtype=np.int64)


def make_instance(cfg: DataConfig, seed) -> Instance:
    """Draw patterns (L1), q (L5), ODR/ODI patterns (L6) and build the task sets (L3)."""
    if not isinstance(cfg, DataConfig):
        raise TypeError(f"cfg must be a refimpl.li2024 DataConfig (cfg.data of li2024.preset(...)), "
                        f"got {type(cfg).__name__}")
    rng = make_rng(seed)
    n = cfg.M1 + cfg.M2
    if cfg.basis == "random":
        Qm, R = np.linalg.qr(rng.standard_normal((cfg.d_x, cfg.d_x)))  # spec L1 [C]: random rotation
        Qm = Qm * np.sign(np.diag(R))  # Haar-distributed orthogonal matrix
        E = Qm[:, :n].T  # (M1+M2, d_x) orthonormal rows
    else:
        E = np.eye(cfg.d_x)[:n]
    mu = cfg.beta * E[: cfg.M1]  # (M1, d_x)  spec L1
    nu = cfg.beta * E[cfg.M1 :]  # (M2, d_x)  spec L1
    q = rng.standard_normal(cfg.d_y)
    q /= np.linalg.norm(q)  # (d_y,) spec L5 [C] fixed random unit vector

    # spec L6 [C]: µ'_j = (S1/2)(µ_{2j−1} + µ_{2j}); coefficients sum to S1
    coef = np.zeros((cfg.M1_ood, cfg.M1))
    for j in range(cfg.M1_ood):
        coef[j, 2 * j] = coef[j, 2 * j + 1] = cfg.S1 / 2
    mu_ood = coef @ mu  # (M1', d_x)
    # spec L6 [C]: ν' = a random orthonormal rotation of ν inside span{ν}
    Rq, Rr = np.linalg.qr(rng.standard_normal((cfg.M2, cfg.M2)))
    Rq = Rq * np.sign(np.diag(Rr))
    nu_ood = Rq @ nu  # (M2, d_x)

    tasks = all_tasks(cfg.M1)
    if cfg.train_tasks is not None:
        train = np.array(cfg.train_tasks, dtype=np.int64).reshape(-1, 2)
    else:
        train = training_tasks(cfg.M1, cfg.train_shifts)
    train_set = {tuple(t) for t in train}
    unseen = np.array([t for t in tasks if tuple(t) not in train_set], dtype=np.int64).reshape(-1, 2)
    return Instance(cfg, mu, nu, mu_ood, nu_ood, coef, q, tasks, train, unseen, all_tasks(cfg.M1_ood))


def make_data(cfg, seed) -> Instance:
    """The fixed objects of the data model (spec L1–L6): patterns, label embedding and task sets.

    Parameters
    ----------
    cfg : refimpl.li2024.config.Config
        The configuration; only ``cfg.data`` is read.
    seed : int or numpy.random.Generator
        The run's seed: the instance is :func:`make_instance` drawn from the ``instance`` stream of
        :func:`streams`, i.e. exactly the instance ``refimpl.li2024.train(cfg, seed)`` trains on.

    Returns
    -------
    Instance
        ``mu`` (M1, d_x) and ``nu`` (M2, d_x), the in-domain relevant and irrelevant patterns
        (orthogonal, norm β); ``mu_ood`` (M1', d_x) and ``nu_ood`` (M2, d_x), their out-of-domain
        counterparts (spec L6); ``ood_coef`` (M1', M1); ``q`` (d_y,) the unit label embedding;
        the task sets as int64 pattern pairs (a, b): ``tasks_all`` (M1(M1 − 1), 2), ``tasks_train``
        (|T_tr|, 2), ``tasks_unseen`` (|T \\ T_tr|, 2) and ``tasks_ood`` (M1'(M1' − 1), 2); ``cfg``
        the :class:`refimpl.li2024.config.DataConfig`.
    """
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be a refimpl.li2024 Config (li2024.preset(...)), got {type(cfg).__name__}")
    return make_instance(cfg.data, streams(seed)["instance"])


def coverage(tasks: np.ndarray, M1: int) -> tuple[np.ndarray, np.ndarray]:
    """How often each pattern is the + pattern and the − pattern in a task set (spec L3)."""
    tasks = np.asarray(tasks)
    return np.bincount(tasks[:, 0], minlength=M1), np.bincount(tasks[:, 1], minlength=M1)


def with_ood(inst: Instance, *, S1: float | None = None, nu_ood: np.ndarray | None = None) -> Instance:
    """A copy of ``inst`` with other OOD patterns: ODR coefficients rescaled to sum to ``S1`` (spec
    L6) and/or the ODI patterns replaced by ``nu_ood`` (M2, d_x). In-domain objects are shared."""
    coef, mu_ood = inst.ood_coef, inst.mu_ood
    if S1 is not None:
        if not (S1 > 0 and np.isfinite(S1)):
            raise ValueError(f"S1 must be > 0, got {S1!r}")
        coef = coef * (S1 / coef.sum(axis=1, keepdims=True))  # rows now sum to S1
        mu_ood = coef @ inst.mu
    if nu_ood is not None:
        if np.shape(nu_ood) != inst.nu.shape:
            raise ValueError(f"nu_ood must have shape {inst.nu.shape}, got {np.shape(nu_ood)}")
        nu_ood = np.asarray(nu_ood, dtype=np.float64)
    else:
        nu_ood = inst.nu_ood
    return dataclasses.replace(inst, mu_ood=mu_ood, ood_coef=coef, nu_ood=nu_ood)


def sample_batch(
    inst: Instance,
    n: int,
    rng: np.random.Generator,
    *,
    tasks: np.ndarray | str = "train",
    l: int | None = None,
    alpha: float | None = None,
    ood: bool = False,
) -> dict:
    """Draw ``n`` fresh prompts (spec L2, L4, L5; out of domain: L6).

    Parameters
    ----------
    inst : Instance
        The fixed objects of the data model (:func:`make_data`).
    n : int
        Number of prompts, ≥ 1.
    rng : numpy.random.Generator
        The generator every draw uses (an int seed is accepted too).
    tasks : {"train", "unseen", "all", "ood"} or array_like of int, shape (n_tasks, 2)
        The task set each prompt's task is drawn from uniformly: T_tr, T \\ T_tr, T, T', or explicit
        pattern pairs (a, b), a ≠ b.
    l : int, optional
        Context length; default ``l_train`` for ``"train"`` and ``l_test`` otherwise.
    alpha : float, optional
        Fraction α of context examples whose pattern is one of the task's two (spec L4); default
        ``alpha`` for ``"train"`` and ``alpha_test`` otherwise.
    ood : bool
        Draw x = µ'_j + κ' ν'_k over the out-of-domain patterns (implied by ``tasks="ood"``).

    Returns
    -------
    dict
        ``P`` float64 (n, d, l+1), the prompts of spec L5 (query in the last column, its label
        entries 0) and ``z`` float64 (n,), the query labels ±1; metadata: ``pattern`` int (n, l+1)
        the relevant-pattern index of every column (query last), ``task`` int (n, 2), ``y`` int
        (n, l) the context labels ±1, ``noise`` int (n, l+1) the irrelevant-pattern index and
        ``kappa`` float64 (n, l+1) its coefficient κ. Here d = d_x + d_y.

    Raises
    ------
    ValueError
        For an unknown task set name, malformed task pairs, ``n`` or ``l`` < 1, or ``alpha`` outside
        [0, 1].
    """
    if not isinstance(inst, Instance):
        raise TypeError(f"inst must be the Instance of li2024.make_data(cfg, seed), got {type(inst).__name__}")
    cfg = inst.cfg
    rng = make_rng(rng, "rng")
    if not isinstance(ood, (bool, np.bool_)):  # before ``ood or ...`` below turns any truthy value into a choice
        raise ValueError(f"ood must be a bool, got {ood!r}")
    if isinstance(tasks, str):
        names = {"train": inst.tasks_train, "unseen": inst.tasks_unseen, "all": inst.tasks_all, "ood": inst.tasks_ood}
        if tasks not in names:
            raise ValueError(f"tasks must be an (n, 2) array or one of {sorted(names)}, got {tasks!r}")
        is_train = tasks == "train"
        ood = ood or tasks == "ood"
        task_set = names[tasks]
    else:
        is_train = False
        task_set = np.asarray(tasks)
    M = cfg.M1_ood if ood else cfg.M1
    if task_set.ndim != 2 or task_set.shape[1] != 2 or len(task_set) == 0:
        raise ValueError(f"tasks must be a non-empty (n_tasks, 2) array, got shape {task_set.shape}")
    if np.any(task_set < 0) or np.any(task_set >= M) or np.any(task_set[:, 0] == task_set[:, 1]):
        raise ValueError(f"tasks must be pairs (a, b), a ≠ b, of pattern indices in [0, {M})")
    l = (cfg.l_train if is_train else cfg.l_test) if l is None else l
    alpha = (cfg.alpha if is_train else cfg.alpha_test) if alpha is None else alpha
    if not (is_int(n) and n >= 1):
        raise ValueError(f"n must be an int ≥ 1, got {n!r}")
    if not (is_int(l) and l >= 1):
        raise ValueError(f"l must be an int ≥ 1, got {l!r}")
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    if M == 2 and alpha < 1:
        raise ValueError("alpha must be 1 when there are only two relevant patterns (no task-irrelevant ones)")

    mu, nu = (inst.mu_ood, inst.nu_ood) if ood else (inst.mu, inst.nu)
    task = task_set[rng.integers(len(task_set), size=n)]  # (n, 2)
    a, b = task[:, :1], task[:, 1:]  # (n, 1)

    # spec L4: context pattern µ_a w.p. α/2, µ_b w.p. α/2, each other µ_c w.p. (1 − α)/(M − 2)
    u = rng.random((n, l))
    other = rng.integers(max(M - 2, 1), size=(n, l))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    other = other + (other >= lo)  # skip the two task patterns
    other = other + (other >= hi)
    ctx = np.where(u < alpha / 2, a, np.where(u < alpha, b, other))  # (n, l)
    # spec L4: the query's pattern is µ_a or µ_b with probability 1/2
    query = np.where(rng.random((n, 1)) < 0.5, a, b)  # (n, 1)
    pattern = np.concatenate([ctx, query], axis=1)  # (n, l+1)

    # spec L3: f = +1 on µ_a, −1 on µ_b, a fair coin on any other pattern
    coin = np.where(rng.random((n, l)) < 0.5, 1, -1)
    y = np.where(ctx == a, 1, np.where(ctx == b, -1, coin))  # (n, l)
    z = np.where(query[:, 0] == a[:, 0], 1.0, -1.0)  # (n,)

    # spec L2: x = µ_j + κ ν_k, k ~ Unif[M2], κ ~ U(−K_κ, K_κ), fresh per example
    noise = rng.integers(cfg.M2, size=(n, l + 1))
    kappa = rng.uniform(-cfg.kappa_max, cfg.kappa_max, size=(n, l + 1))
    X = mu[pattern] + kappa[..., None] * nu[noise]  # (n, l+1, d_x)

    # spec L5: P = [x_1 .. x_l x_q; y_1 .. y_l 0], y_i = ±q
    Y = np.zeros((n, l + 1, cfg.d_y))
    Y[:, :l, :] = y[..., None] * inst.q  # (n, l, d_y)
    P = np.concatenate([X, Y], axis=2).transpose(0, 2, 1).copy()  # (n, d, l+1)
    return {"P": P, "z": z, "pattern": pattern, "task": task, "y": y, "noise": noise, "kappa": kappa}
