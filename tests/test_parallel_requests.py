"""Checks that train many runs ask for them together, so that the Dask engine trains them in
parallel (issue 14): a run requested on a worker is a placeholder until computed, and the first use
of a placeholder stops the check; every stop costs one round trip to the cluster. These tests play
the engine's rounds with the real placeholders (``refimpl.validation.plan.Pending``) and a fake
``fit`` that "trains" between rounds, and count the rounds: one per level of a search, not one per
run. The results must be those of the serial search (same runs, same numbers)."""

from __future__ import annotations

import math

import numpy as np

from refimpl.core.trajectory import Trajectory
from refimpl.li2024 import preset
from refimpl.li2024.checks import generalization as gen
from refimpl.li2024.checks import pruning as prn
from refimpl.validation.plan import NotReady, Pending


def _key(cfg, seed, kwargs):
    return (repr(cfg.to_dict()), seed, repr(sorted(kwargs.items())))


class Rounds:
    """A ``fit`` with the engine's semantics: a run not trained yet comes back as a placeholder and
    is recorded; :meth:`play` re-runs the check after training what the last round asked for."""

    def __init__(self, outcome):
        self.outcome = outcome  # (cfg, seed, kwargs) -> stopped_at (None: never stopped)
        self.done: dict = {}
        self.asked_now: list = []
        self.trained: list = []  # every run trained, in order

    def fit(self, cfg, seed, **kwargs):
        k = _key(cfg, seed, kwargs)
        if k in self.done:
            return self.done[k]
        self.asked_now.append((k, cfg, seed, kwargs))
        return Pending(str(len(self.asked_now)), "li2024/train", "test")

    def play(self, check, max_rounds=100):
        rounds = []
        for _ in range(max_rounds):
            self.asked_now = []
            try:
                return check(self.fit), rounds
            except NotReady:
                pass
            assert self.asked_now, "the check stopped without asking for anything"
            rounds.append(len(self.asked_now))
            for k, cfg, seed, kwargs in self.asked_now:
                self.trained.append(k)
                self.done[k] = Trajectory(model="li2024", config=cfg, seed=seed, params={},
                                          stopped_at=self.outcome(cfg, seed, kwargs))
        raise AssertionError("no result after max_rounds")


def test_l13c_asks_for_every_alpha_and_seed_in_one_round():
    alphas, seeds = (0.4, 0.6, 0.8, 1.0), (0, 1, 2)
    base = preset("tiny")

    def outcome(cfg, seed, kw):  # reaches the threshold after ~ 100 α^(-2/3) steps
        return int(100 * cfg.data.alpha ** (-2 / 3)) + 5 * seed

    r = Rounds(outcome)
    claim, rounds = r.play(lambda fit: gen.check_l13c_iterations_vs_alpha(fit, base, alphas, seeds, max_steps=500))
    assert rounds == [len(alphas) * len(seeds)]  # one round trip, every run in it
    expect = np.array([[max(outcome(base.replace(data=dict(alpha=a)), s, {}), 5) for s in seeds] for a in alphas])
    np.testing.assert_array_equal(claim.numbers["iterations"], expect)


def test_l13d_search_advances_level_by_level_with_the_serial_searchs_runs():
    alphas, seeds, lengths = (0.1, 0.3, 0.5, 1.0), (0, 1), (1, 2, 3, 4, 6, 8)
    base = preset("tiny")

    def need(alpha, seed):  # trainable from l_tr ≥ 1/α (+1 at seed 1); α = 0.1 never within the grid
        return math.ceil(1 / alpha) + seed

    def outcome(cfg, seed, kw):
        return 100 if cfg.data.l_train >= need(cfg.data.alpha, seed) else None

    r = Rounds(outcome)
    claim, rounds = r.play(lambda fit: gen.check_l13d_min_train_length(fit, base, alphas, lengths, seeds))
    # the serial search: each (α, seed) scans up to its first trainable length
    serial = []
    for a in alphas:
        for s in seeds:
            for l in lengths:
                serial.append((a, s, l))
                if l >= need(a, s):
                    break
    assert len(r.trained) == len(serial) == len(set(r.trained))
    # one round per length while some pair is still searching, each with every pair still searching
    assert rounds == [sum(1 for (a, s, ll) in serial if ll == l) for l in lengths]
    lmin = claim.numbers["l_min"]
    for i, a in enumerate(alphas):
        for j, s in enumerate(seeds):
            first = next((l for l in lengths if l >= need(a, s)), np.inf)
            assert lmin[i, j] == first


def test_l13b_and_the_m_sweep_ask_for_every_run_first(monkeypatch):
    base = preset("default")
    monkeypatch.setattr(gen, "measure", lambda params, cfg, data, n, rng, **kw: {"error": 0.1, "hinge": 0.2})
    r = Rounds(lambda cfg, seed, kw: None)
    claim, rounds = r.play(lambda fit: gen.check_l13b_coverage(fit, base, (0, 1), 10))
    assert rounds == [4 * 2]  # four training-task sets × two seeds, one round
    assert claim.id == "L13b"

    monkeypatch.setattr(prn, "measure_m_point", lambda run, n: {"M1": run.config.data.M1, "seed": run.seed})
    r = Rounds(lambda cfg, seed, kw: None)
    points, rounds = r.play(lambda fit: prn.measure_m_sweep(fit, base, (0, 1), 10))
    n_pts = len(prn.L15M_M1) + len([m for m in prn.L15M_M2 if m != 24])
    assert rounds == [n_pts * 2] and len(points) == n_pts * 2


def test_the_fake_engine_is_not_vacuous():
    """A check that uses each run before asking for the next takes one round per run."""

    def chained(fit):
        out = []
        for s in range(4):
            out.append(fit(preset("tiny"), s).stopped_at)
        return out

    r = Rounds(lambda cfg, seed, kw: seed)
    result, rounds = r.play(chained)
    assert rounds == [1, 1, 1, 1] and result == [0, 1, 2, 3]
