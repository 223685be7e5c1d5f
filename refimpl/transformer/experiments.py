"""Experiments of spec Y (Fig. 2(b), Fig. 5) and spec L (E1, E2, E7) with the spec-T transformer.

Training loop
-------------
:func:`train_adam` runs Adam on minibatches from a ``batch_fn`` for a number of steps or for a
wall-clock budget. Only the training steps (minibatch, forward, backward, Adam) run on the clock;
evaluations at the record points are excluded from it. Every record stores the step, the training
time so far and the metrics of ``eval_fn``, so a budget run can be plotted against time and
against iterations. BLAS threads are pinned (``threads``, default 1) so that runs of different
sizes compete for the same resources; wall-clock results are not bit-reproducible, step-count
results are (same seed → same numbers).

Spec Y (Yang et al. 2024)
-------------------------
:func:`make_yang_data` draws the dictionary (spec Y2), a pool of ``n_train`` training prompts
(λ ~ N(0, I), spec Y3), and ``n_test`` in-domain (λ ~ N(0, I)) and OOD (λ ~ N(1, 4I)) test prompts with
their ridge targets ŷ* = (y, Z_Qᵀ λ̂), λ̂ = (ZZᵀ + mτ I)⁻¹ Z y (spec Y12), exactly as the Fig. 2(a)
module does for the Y5 model. The training loss is (1/2K) mean_b Σ_k (ŷ_k − y_k)² on minibatches
from the pool (spec Y7 sampled; the transformer's squared loss with T = K), recorded on a fixed
subset of the pool; the inference loss is (1/K) mean_b ‖ŷ − ŷ*‖² on the test prompts.

Spec L (Li et al. 2024)
-----------------------
:func:`li_instance` rebuilds the instance (patterns, q, task sets) that ``refimpl.li2024.train``
uses for the same seed, so the deep model and the one-layer model see the same data model. The
GPT-2 reads the prompt as tokens (query last, causal mask, read-out at the last position) and is
trained by Adam on the hinge loss [C: the paper's optimiser for its GPT-2 is not recoverable].
[C] Each minibatch has one prompt length l drawn uniformly from ``l_range``, so that every learned
position (up to the longest test length) is trained as a context and as the query position;
training tasks T_tr, α = α_train as in the one-layer model. Test curves use the same prompt streams
as ``refimpl.li2024.checks.error_curve`` (paired with the one-layer curves).

Glossary: B prompts, T tokens, L layers, H heads; ``attn[layer]`` (B, H, T, T) (query, key).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from refimpl.core.arrays import is_int
from refimpl.core.rng import make_rng, spawn
from refimpl.transformer.adapters import li_token_roles, li_tokens, yang_tokens
from refimpl.transformer.model import forward, init_params, loss_and_grads
from refimpl.transformer.optim import Adam

MAX_ATTN_ELEMENTS = 2_000_000  # evaluation chunks: B·H·T² attention entries per chunk at most


# ============================================================================================
# generic: Adam for a number of steps or a wall-clock budget
# ============================================================================================
def train_adam(params: dict, cfg, batch_fn: Callable[[int], dict], *, lr: float, steps: int | None = None,
               budget_s: float | None = None, eval_fn: Callable[[dict], dict] | None = None,
               eval_every: int | None = None, eval_every_s: float | None = None, snapshot_every: int | None = None,
               threads: int | None = 1, progress: bool | None = None, desc: str = "transformer Adam",
               max_steps: int = 10 ** 9, schedule: str = "constant", warmup: int = 0) -> dict:
    """Adam (β = (0.9, 0.999), ε = 1e−8) on ``loss_and_grads(params, batch_fn(step), cfg)``.

    Stop after ``steps`` steps, or once the training time reaches ``budget_s`` seconds (exactly
    one of the two). Records (step 0, every ``eval_every`` steps or every ``eval_every_s`` seconds
    of training time, and the end): ``step``, ``time`` (training seconds, evaluations excluded) and
    every metric of ``eval_fn(params)``. ``loss`` holds the minibatch loss of every step (before
    its update) and ``step_time`` its duration. ``params`` is updated in place and returned.
    A non-finite loss stops training and sets ``diverged``; ``max_steps`` caps a budget run.

    Learning rate (:func:`lr_at`, recorded per step in ``lr``): a linear warm-up over ``warmup``
    steps, then ``lr`` (``schedule="constant"``) or a cosine decay to 0 at ``steps``
    (``"cosine"``, GPT-2 practice; needs ``steps``)."""
    if (steps is None) == (budget_s is None):
        raise ValueError("give exactly one of steps (an int ≥ 0) and budget_s (seconds > 0)")
    if steps is not None and not (is_int(steps) and steps >= 0):
        raise ValueError(f"steps must be an int ≥ 0, got {steps!r}")
    if budget_s is not None and not (np.isfinite(budget_s) and budget_s > 0):
        raise ValueError(f"budget_s must be a finite number > 0, got {budget_s!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if eval_every is not None and not (is_int(eval_every) and eval_every >= 1):
        raise ValueError(f"eval_every must be None or an int ≥ 1, got {eval_every!r}")
    if eval_every_s is not None and not (np.isfinite(eval_every_s) and eval_every_s > 0):
        raise ValueError(f"eval_every_s must be None or a number > 0, got {eval_every_s!r}")
    if snapshot_every is not None and not (is_int(snapshot_every) and snapshot_every >= 1):
        raise ValueError(f"snapshot_every must be None or an int ≥ 1, got {snapshot_every!r}")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be one of ['constant', 'cosine'], got {schedule!r}")
    if schedule == "cosine" and steps is None:
        raise ValueError("schedule 'cosine' needs steps (a budget run has no known length)")
    if not (is_int(warmup) and warmup >= 0):
        raise ValueError(f"warmup must be an int ≥ 0, got {warmup!r}")
    opt = Adam(lr)

    rec: dict[str, list] = {"step": [], "time": []}
    losses, step_times, lrs, snapshots = [], [], [], {}
    clock = 0.0
    next_eval_s = 0.0
    diverged = False

    def record(step):
        rec["step"].append(step)
        rec["time"].append(clock)
        if eval_fn is not None:
            for k, v in eval_fn(params).items():
                rec.setdefault(k, []).append(v)

    total = steps if steps is not None else None
    bar = tqdm(total=total, desc=desc, disable=(None if progress is None else not progress), leave=False)
    with threadpool_limits(limits=threads):
        step = 0
        while True:
            done = (steps is not None and step >= steps) or (budget_s is not None and clock >= budget_s) \
                or step >= max_steps or diverged
            if snapshot_every is not None and (step % snapshot_every == 0 or done):
                snapshots[step] = {k: v.copy() for k, v in params.items()}
            due = (step == 0 or (eval_every is not None and step % eval_every == 0)
                   or (eval_every_s is not None and clock >= next_eval_s))
            if done or due:
                if not rec["step"] or rec["step"][-1] != step:
                    record(step)
                if eval_every_s is not None:
                    while next_eval_s <= clock:
                        next_eval_s += eval_every_s
            if done:
                break
            t0 = time.perf_counter()
            batch = batch_fn(step)
            loss, grads = loss_and_grads(params, batch, cfg, check=(step == 0))
            if not np.isfinite(loss):
                diverged = True
            else:
                opt.lr = lr_at(step, lr, steps=steps, warmup=warmup, schedule=schedule)
                lrs.append(opt.lr)
                opt.step(params, grads)
            dt = time.perf_counter() - t0
            clock += dt
            losses.append(float(loss))
            step_times.append(dt)
            step += 1
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss:.3g}", t=f"{clock:.0f}s")
    bar.close()
    out = {k: np.asarray(v) for k, v in rec.items()}
    out.update(loss=np.asarray(losses), step_time=np.asarray(step_times), lr=np.asarray(lrs), steps_done=step,
               train_time=clock, diverged=diverged, params=params, snapshots=snapshots, threads=threads)
    return out


def lr_at(t: int, lr: float, *, steps: int | None, warmup: int = 0, schedule: str = "constant") -> float:
    """The learning rate of step t (0-based): linear warm-up over ``warmup`` steps ((t + 1)/warmup · lr),
    then ``lr`` ("constant") or lr · ½(1 + cos(π (t − warmup)/(steps − warmup))) ("cosine")."""
    if t < warmup:
        return lr * (t + 1) / warmup
    if schedule == "cosine":
        return float(lr * 0.5 * (1 + np.cos(np.pi * (t - warmup) / max(steps - warmup, 1))))
    return lr


def predict_chunked(params: dict, X: np.ndarray, cfg, *, with_attn: bool = False):
    """``forward`` over chunks of prompts (bounded memory). Returns out, and with ``with_attn`` the
    list over layers of (B, H, T, T) attention probabilities."""
    B, T = X.shape[0], X.shape[1]
    chunk = max(1, MAX_ATTN_ELEMENTS // (cfg.n_heads * T * T))
    outs, attns = [], []
    for s in range(0, B, chunk):
        o, cache = forward(params, X[s:s + chunk], cfg)
        outs.append(o)
        if with_attn:
            attns.append(cache["attn"])
    out = np.concatenate(outs, axis=0)
    if not with_attn:
        return out
    return out, [np.concatenate([a[i] for a in attns], axis=0) for i in range(cfg.n_layers)]


# ============================================================================================
# spec Y: Fig. 2(b) and Fig. 5
# ============================================================================================
def make_yang_data(ycfg, n_train: int, n_test: int, seed: int, n_train_eval: int = 256) -> dict:
    """Dictionary, training pool, test prompts and ridge targets for the spec Y config ``ycfg``.

    Streams as in ``validation/yang2024/figures.py``: dictionary from ``seed``, test prompts from
    ``seed + 10`` (in-domain) and ``seed + 11`` (OOD), training pool from ``seed + 2``.
    ``train_eval``: the first ``n_train_eval`` pool prompts, on which the training loss is recorded."""
    from refimpl.yang2024.data import make_dictionary, sample_prompts
    from refimpl.yang2024.population import ridge_predict

    V_all, Z_all = make_dictionary(ycfg.K, ycfg.d, ycfg.m, seed, normalize_tokens=ycfg.normalize_tokens)
    pool = sample_prompts(Z_all, ycfg.N, ycfg.tau, n_train, seed + 2, keep_eps=False)["y_all"]  # (n_train, K)
    tests, stars = {}, {}
    for i, kind in enumerate(("in", "ood")):
        y_all = sample_prompts(Z_all, ycfg.N, ycfg.tau, n_test, seed + 10 + i, kind=kind)["y_all"]  # (n_test, K)
        tests[kind] = y_all
        stars[kind] = ridge_predict(Z_all, ycfg.N, y_all[:, :ycfg.N], ycfg.m * ycfg.tau)  # (n_test, K) spec Y12
    return {"V_all": V_all, "Z_all": Z_all, "N": ycfg.N, "tau": ycfg.tau, "m": ycfg.m, "pool": pool,
            "train_eval": pool[:n_train_eval], "tests": tests, "stars": stars}


def yang_batch_fn(data: dict, batch_size: int, rng) -> Callable[[int], dict]:
    """Minibatches of ``batch_size`` prompts drawn with replacement from the training pool."""
    rng = make_rng(rng)
    pool = data["pool"]

    def batch_fn(step):
        idx = rng.integers(0, pool.shape[0], size=batch_size)
        X, target = yang_tokens(data["V_all"], pool[idx], data["N"])  # (b, K, d+1), (b, K)
        return {"X": X, "target": target}

    return batch_fn


def yang_losses(params: dict, cfg, data: dict, which=("train", "in", "ood")) -> dict:
    """``train``: (1/2K) mean_b Σ_k (ŷ_k − y_k)² on the fixed training subset (spec Y7, sampled);
    ``in`` / ``ood``: the inference loss (1/K) mean_b ‖ŷ − ŷ*‖² on the test prompts (spec Y12, Fig. 2).
    ``which``: the subset of these to compute."""
    K = data["V_all"].shape[1]
    out = {}
    if "train" in which:
        X, t = yang_tokens(data["V_all"], data["train_eval"], data["N"])
        y_hat = predict_chunked(params, X, cfg)  # (b, K)
        out["train"] = float(np.mean(np.sum((y_hat - t) ** 2, axis=1)) / (2 * K))
    for kind in ("in", "ood"):
        if kind in which:
            X, _ = yang_tokens(data["V_all"], data["tests"][kind], data["N"])
            y_hat = predict_chunked(params, X, cfg)  # (n_test, K)
            out[kind] = float(np.mean(np.sum((y_hat - data["stars"][kind]) ** 2, axis=1)) / K)
    return out


def run_yang(tcfg, data: dict, *, lr: float, batch_size: int, seed: int, steps: int | None = None,
             budget_s: float | None = None, eval_every: int | None = None, eval_every_s: float | None = None,
             threads: int | None = 1, progress: bool | None = None, desc: str = "yang2024 transformer") -> dict:
    """Train ``tcfg`` (read-out "all", squared loss, d_in = d + 1) on the spec Y data by Adam and
    record the training loss and the in-domain / OOD inference losses (:func:`yang_losses`).
    ``seed`` drives the initialisation (``seed``) and the minibatch stream (``seed + 1``)."""
    d = data["V_all"].shape[0]
    if tcfg.d_in != d + 1 or tcfg.readout != "all" or tcfg.loss != "squared":
        raise ValueError(f"tcfg must have d_in = d + 1 = {d + 1}, readout 'all' and loss 'squared'; got "
                         f"d_in={tcfg.d_in}, readout={tcfg.readout!r}, loss={tcfg.loss!r}")
    params = init_params(tcfg, seed)
    res = train_adam(params, tcfg, yang_batch_fn(data, batch_size, seed + 1), lr=lr, steps=steps, budget_s=budget_s,
                     eval_fn=lambda p: yang_losses(p, tcfg, data), eval_every=eval_every, eval_every_s=eval_every_s,
                     threads=threads, progress=progress, desc=desc)
    res.pop("snapshots")
    res["n_heads"] = tcfg.n_heads
    return res


# ============================================================================================
# spec L: E1, E2, E7
# ============================================================================================
def li_instance(li_cfg, seed: int):
    """The instance ``refimpl.li2024.train(li_cfg, seed)`` draws (its first spawned stream)."""
    from refimpl.li2024.data import make_instance

    return make_instance(li_cfg.data, spawn(make_rng(seed), 4)[0])


def li_batch_fn(inst, batch_size: int, l_range: tuple[int, int], rng, *, tasks="train",
                alpha: float | None = None) -> Callable[[int], dict]:
    """Minibatches of ``batch_size`` training prompts, one length l ~ U{l_range[0]..l_range[1]} per
    minibatch [C] (spec L4 with the training α)."""
    from refimpl.li2024.data import sample_batch

    lo, hi = l_range
    if not (is_int(lo) and is_int(hi) and 1 <= lo <= hi):
        raise ValueError(f"l_range must be two ints 1 ≤ lo ≤ hi, got {l_range!r}")
    rng = make_rng(rng)

    def batch_fn(step):
        l = int(rng.integers(lo, hi + 1))
        b = sample_batch(inst, batch_size, rng, tasks=tasks, l=l, alpha=alpha)
        X, z = li_tokens(b)  # (B, l+1, d), (B,)
        return {"X": X, "target": z}

    return batch_fn


def li_eval(params: dict, tcfg, batch: dict) -> dict:
    """Error (z F ≤ 0), mean hinge loss and, per layer, the mean attention mass from the query
    (last token) to same-pattern and to "other" contexts, averaged over heads and prompts."""
    X, z = li_tokens(batch)
    F, attn = predict_chunked(params, X, tcfg, with_attn=True)  # (B,), L × (B, H, T, T)
    zF = z * F
    roles = li_token_roles(batch)
    same, other = attention_mass(attn, roles["same"]), attention_mass(attn, roles["other"])  # (B, L, H)
    return {"error": float(np.mean(zF <= 0)), "hinge": float(np.mean(np.maximum(0.0, 1.0 - zF))),
            "attn_same": same.mean(axis=0), "attn_other": other.mean(axis=0)}  # (L, H) each


def attention_mass(attn: list, mask: np.ndarray) -> np.ndarray:
    """Per prompt, layer and head: Σ_{keys i in mask} attn[layer][b, h, T−1, i], the attention the
    last (query) token pays to the masked tokens. attn: L × (B, H, T, T); mask (B, T) → (B, L, H)."""
    return np.stack([np.einsum("bht,bt->bh", a[:, :, -1, :], mask.astype(a.dtype)) for a in attn], axis=1)


def train_li(tcfg, inst, *, lr: float, steps: int, batch_size: int, l_range: tuple[int, int], seed: int,
             snapshot_every: int | None = None, eval_every: int = 100, n_eval: int = 500, threads: int | None = 1,
             schedule: str = "constant", warmup: int = 0, progress: bool | None = None,
             desc: str = "li2024 transformer") -> dict:
    """Train ``tcfg`` (read-out "last", hinge loss) on spec L training prompts by Adam. ``seed``
    drives the initialisation and (through a spawned stream) the minibatches. Records the
    unseen-task error / hinge / attention masses (:func:`li_eval`) on ``n_eval`` fixed prompts at
    (α', l_ts) every ``eval_every`` steps."""
    from refimpl.li2024.data import sample_batch

    d = inst.cfg.d
    if tcfg.d_in != d or tcfg.readout != "last" or tcfg.loss != "hinge":
        raise ValueError(f"tcfg must have d_in = d = {d}, readout 'last' and loss 'hinge'; got d_in={tcfg.d_in}, "
                         f"readout={tcfg.readout!r}, loss={tcfg.loss!r}")
    if tcfg.positions == "learned" and tcfg.max_T < l_range[1] + 1:
        raise ValueError(f"tcfg.max_T must be ≥ l_range[1] + 1 = {l_range[1] + 1}, got {tcfg.max_T}")
    data_rng, eval_rng = spawn(make_rng(seed), 2)
    eval_batch = sample_batch(inst, n_eval, eval_rng, tasks="unseen")
    params = init_params(tcfg, seed)
    res = train_adam(params, tcfg, li_batch_fn(inst, batch_size, l_range, data_rng), lr=lr, steps=steps,
                     eval_fn=lambda p: li_eval(p, tcfg, eval_batch), eval_every=eval_every,
                     snapshot_every=snapshot_every, threads=threads, schedule=schedule, warmup=warmup,
                     progress=progress, desc=desc)
    res.update(seed=seed, l_range=tuple(l_range), tcfg=tcfg.to_dict())
    return res


def li_error_curve(params: dict, tcfg, inst, lengths, n: int, *, seed: int, tasks="unseen", alpha: float,
                   key: int = 0) -> dict:
    """Error and hinge vs l_ts on ``n`` prompts per length, from the prompt streams
    ``prompt_rng(seed, key, l)`` of ``refimpl.li2024.checks.error_curve`` (for n ≤ its chunk of
    2000 these are the one-layer curve's first n prompts). Same keys as ``error_curve``."""
    from refimpl.li2024.checks import prompt_rng
    from refimpl.li2024.data import sample_batch
    from refimpl.li2024.metrics import clopper_pearson

    err, hin, ci = [], [], []
    for l in lengths:
        b = sample_batch(inst, n, prompt_rng(seed, key, int(l)), tasks=tasks, l=int(l), alpha=alpha)
        X, z = li_tokens(b)
        zF = z * predict_chunked(params, X, tcfg)
        k = int(np.sum(zF <= 0))
        err.append(k / n)
        hin.append(float(np.mean(np.maximum(0.0, 1.0 - zF))))
        ci.append(clopper_pearson(k, n))
    return {"lengths": np.asarray(lengths), "error": np.array(err), "hinge": np.array(hin),
            "error_ci95": np.array(ci), "n": n}


def li_ood_curves(params: dict, tcfg, inst, S1s, lengths, n: int, *, seed: int, alpha: float) -> dict:
    """OOD error vs l_ts for each S1 (spec L6, E1), streams as ``refimpl.li2024.checks.ood_curves``."""
    from refimpl.li2024.data import with_ood

    return {float(s): li_error_curve(params, tcfg, with_ood(inst, S1=s), lengths, n, seed=seed, tasks="ood",
                                     alpha=alpha, key=14) for s in S1s}


def li_attention_trajectory(run: dict, tcfg, inst, n: int, *, l: int | None = None, alpha: float | None = None) -> dict:
    """Per snapshot of ``run`` (``train_li`` with ``snapshot_every``): the attention mass from the
    query to same-pattern and "other" contexts, per layer and head, on ``n`` fixed unseen-task
    prompts (l_ts, α' by default; stream ``prompt_rng(seed, 170, 7)``), and the error.
    Returns ``step`` (S,), ``same`` / ``other`` (S, L, H), ``error`` (S,), ``uniform_same``:
    the same-pattern mass of uniform causal attention, mean over prompts of (#same)/(l + 1)."""
    from refimpl.li2024.checks import prompt_rng
    from refimpl.li2024.data import sample_batch

    d = inst.cfg
    l = d.l_test if l is None else l
    alpha = d.alpha_test if alpha is None else alpha
    batch = sample_batch(inst, n, prompt_rng(run["seed"], 170, 7), tasks="unseen", l=l, alpha=alpha)
    steps = sorted(run["snapshots"])
    same, other, err = [], [], []
    for s in steps:
        r = li_eval(run["snapshots"][s], tcfg, batch)
        same.append(r["attn_same"])
        other.append(r["attn_other"])
        err.append(r["error"])
    roles = li_token_roles(batch)
    return {"step": np.array(steps), "same": np.array(same), "other": np.array(other), "error": np.array(err),
            "uniform_same": float(np.mean(roles["same"].sum(axis=1) / (l + 1))), "l": l, "alpha": alpha,
            "seed": run["seed"]}
