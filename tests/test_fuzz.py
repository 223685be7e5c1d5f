"""Fuzz suite (issue 15, "Trustworthy under bad input"): a table of distinct bad inputs through the
public API of every registered model and through the command line.

Beyond the table (tests/test_fuzz_beyond.py): hypothesis over every config field, commands into a
folder the user may not write into, and cases in a fresh interpreter.

Counts (``test_the_table_has_at_least_200_distinct_cases`` checks this line against the table):
341 API cases, 129 CLI cases, 470 distinct bad inputs in all.

Every API case must raise ``TypeError``/``ValueError`` (``NonFiniteError`` is a ``FloatingPointError``,
allowed where the case is about a non-finite value) whose message names the argument; a call that
returns normally is a failure. Every CLI case runs ``refimpl.cli.main`` in-process in an empty
working folder holding a sentinel state (an existing run, report, file ...): it must exit with
status 2 (usage) or 1 with exactly one ``error`` line on stderr (argparse's usage lines may precede
it), never a traceback, and every file and folder of the working folder must be byte-identical
afterwards (nothing lost, altered or half-written).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import pytest

from refimpl.cli import main
from refimpl.models import REGISTRY

MODELS = ("li2024", "yang2024", "huang2023", "transformer")
GOLDEN = Path(__file__).parent / "data" / "golden"

#: per model: the key of the batch's model input and of its target
INPUT_KEY = {"li2024": "P", "yang2024": "y", "huang2023": "X", "transformer": "X"}
TARGET_KEY = {"li2024": "z", "yang2024": "y_all", "huang2023": "yq", "transformer": "target"}

#: bad config values per model: (id, overrides, the field the message must name)
BAD_CONFIG = {
    "li2024": [
        ("M1-zero", {"data": {"M1": 0}}, "M1"),
        ("M2-negative", {"data": {"M2": -1}}, "M2"),
        ("d_x-float", {"data": {"d_x": 1.5}}, "d_x"),
        ("d_y-str", {"data": {"d_y": "4"}}, "d_y"),
        ("alpha-true", {"data": {"alpha": True}}, "alpha"),
        ("alpha-1.5", {"data": {"alpha": 1.5}}, "alpha"),
        ("alpha-nan", {"data": {"alpha": math.nan}}, "alpha"),
        ("alpha_test-negative", {"data": {"alpha_test": -0.1}}, "alpha_test"),
        ("kappa_max-inf", {"data": {"kappa_max": math.inf}}, "kappa_max"),
        ("basis-unknown", {"data": {"basis": "fourier"}}, "basis"),
        ("train_shifts-float", {"data": {"train_shifts": 1.5}}, "train_shifts"),
        ("train_tasks-flat-ints", {"data": {"train_tasks": [1, 2]}}, "train_tasks"),
        ("l_train-zero", {"data": {"l_train": 0}}, "l_train"),
        ("m-zero", {"model": {"m": 0}}, "m"),
        ("m-none", {"model": {"m": None}}, "m"),
        ("attend_to_query-str", {"model": {"attend_to_query": "no"}}, "attend_to_query"),
        ("train_a-int", {"model": {"train_a": 1}}, "train_a"),
        ("relu_at_zero-2", {"model": {"relu_at_zero": 2.0}}, "relu_at_zero"),
        ("lr-nan", {"train": {"lr": math.nan}}, "lr"),
        ("lr-negative", {"train": {"lr": -0.5}}, "lr"),
        ("steps-float", {"train": {"steps": 1.5}}, "steps"),
        ("batch_size-zero", {"train": {"batch_size": 0}}, "batch_size"),
        ("section-not-dict", {"train": 5}, "train"),
    ],
    "yang2024": [
        ("K-zero", {"K": 0}, "K"),
        ("N-above-K", {"N": 9}, "N"),
        ("d-negative", {"d": -3}, "d"),
        ("H-zero", {"H": 0}, "H"),
        ("H-bool", {"H": True}, "H"),
        ("tau-nan", {"tau": math.nan}, "tau"),
        ("tau-negative", {"tau": -0.1}, "tau"),
        ("beta-str", {"beta": "1"}, "beta"),
        ("loss-unknown", {"loss": "hinge"}, "loss"),
        ("optimizer-unknown", {"optimizer": "sgd2"}, "optimizer"),
        ("normalize_tokens-str", {"normalize_tokens": "yes"}, "normalize_tokens"),
        ("eta_Q-inf", {"eta_Q": math.inf}, "eta_Q"),
        ("lr-complex", {"lr": 1e-4 + 1j}, "lr"),
        ("steps-negative", {"steps": -1}, "steps"),
        ("batch_size-zero", {"batch_size": 0}, "batch_size"),
    ],
    "huang2023": [
        ("K-zero", {"K": 0}, "K"),
        ("d-zero", {"d": 0}, "d"),
        ("N-negative", {"N": -1}, "N"),
        ("p_kind-unknown", {"p_kind": "zipf"}, "p_kind"),
        ("p1-1.5", {"p1": 1.5}, "p1"),
        ("p1-nan", {"p1": math.nan}, "p1"),
        ("eta-inf", {"eta": math.inf}, "eta"),
        ("eta-str", {"eta": "1.0"}, "eta"),
        ("attend_to_query-int", {"attend_to_query": 1}, "attend_to_query"),
        ("loss-unknown", {"loss": "hinge"}, "loss"),
        ("population-unknown", {"population": "mc"}, "population"),
        ("M-zero", {"M": 0}, "M"),
        ("steps-none", {"steps": None}, "steps"),
    ],
    "transformer": [
        ("n_layers-zero", {"n_layers": 0}, "n_layers"),
        ("d_model-not-divisible", {"d_model": 7}, "d_model"),
        ("n_heads-zero", {"n_heads": 0}, "n_heads"),
        ("d_ff-negative", {"d_ff": -1}, "d_ff"),
        ("d_in-float", {"d_in": 1.5}, "d_in"),
        ("norm-unknown", {"norm": "mid"}, "norm"),
        ("activation-unknown", {"activation": "tanh"}, "activation"),
        ("causal-str", {"causal": "yes"}, "causal"),
        ("positions-unknown", {"positions": "sinusoid"}, "positions"),
        ("readout-unknown", {"readout": "first"}, "readout"),
        ("loss-unknown", {"loss": "l1"}, "loss"),
        ("init-unknown", {"init": "he"}, "init"),
        ("init_std-negative", {"init_std": -0.02}, "init_std"),
        ("max_T-zero", {"max_T": 0}, "max_T"),
    ],
}


@functools.cache
def _ctx(name: str) -> dict:
    """The tiny preset's module, config, params, data and a batch of 2 (built once per model)."""
    mod = REGISTRY[name].load()
    cfg = mod.preset("tiny")
    params = mod.init_params(cfg, 0)
    data = mod.make_data(cfg, 0)
    batch = mod.sample_batch(data, 2, np.random.default_rng(0))
    return {"mod": mod, "cfg": cfg, "params": params, "data": data, "batch": batch}


def _sample_cfg(c):
    """The tiny config with a loss that reads the batch's targets (yang2024's default is closed-form)."""
    return c["mod"].preset("tiny", loss="sample") if c["mod"].__name__.endswith("yang2024") else c["cfg"]


def _other(name: str) -> str:
    return MODELS[(MODELS.index(name) + 1) % len(MODELS)]


def _params(c, key=None, fn=None, **replace):
    """A copy of the tiny params with ``key`` mapped through ``fn`` (or entries replaced)."""
    p = {k: v.copy() for k, v in c["params"].items()}
    if key is not None:
        p[key] = fn(p[key])
    p.update(replace)
    return p


def _batch(c, key, fn):
    b = dict(c["batch"])
    b[key] = fn(np.asarray(b[key]))
    return b


def _nan_first(a):
    a = np.array(a, dtype=float if a.dtype.kind != "f" else a.dtype)
    a.flat[0] = np.nan
    return a


def _inf_first(a):
    a = np.array(a, dtype=float if a.dtype.kind != "f" else a.dtype)
    a.flat[0] = np.inf
    return a


def _api_cases():
    """(id, model, call(ctx), exception types, needle the message must contain)."""
    V = ValueError
    VT = (ValueError, TypeError)
    NF = (ValueError, TypeError, FloatingPointError)
    cases = []

    def add(name, cid, fn, exc, needle):
        cases.append(pytest.param(name, fn, exc, needle, id=f"api-{name}-{cid}"))

    for name in MODELS:
        first = REGISTRY[name].load().PARAM_NAMES[0]
        other = _other(name)
        inp, tgt = INPUT_KEY[name], TARGET_KEY[name]
        # preset and the config dataclasses
        add(name, "preset-unknown-name", lambda c: c["mod"].preset("huge"), V, "huge")
        add(name, "preset-name-int", lambda c: c["mod"].preset(3), VT, "preset")
        add(name, "preset-name-none", lambda c: c["mod"].preset(None), VT, "preset")
        add(name, "preset-unknown-field", lambda c: c["mod"].preset("tiny", bogus_field=1), V, "bogus_field")
        for cid, ov, needle in BAD_CONFIG[name]:
            add(name, f"preset-{cid}", lambda c, ov=ov: c["mod"].preset("tiny", **ov), VT, needle)
        # init_params
        for dt in ("int64", "int32", "float16", "complex128", "bool", "banana"):
            add(name, f"init_params-dtype-{dt}", lambda c, dt=dt: c["mod"].init_params(c["cfg"], 0, dtype=dt),
                VT, "dtype")
        add(name, "init_params-dtype-np.int64", lambda c: c["mod"].init_params(c["cfg"], 0, dtype=np.int64),
            VT, "dtype")
        add(name, "init_params-seed-str", lambda c: c["mod"].init_params(c["cfg"], "0"), VT, "seed")
        add(name, "init_params-seed-negative", lambda c: c["mod"].init_params(c["cfg"], -1), VT, "seed")
        add(name, "init_params-seed-float", lambda c: c["mod"].init_params(c["cfg"], 1.5), VT, "seed")
        add(name, "init_params-seed-none", lambda c: c["mod"].init_params(c["cfg"], None), VT, "seed")
        add(name, "init_params-cfg-dict", lambda c: c["mod"].init_params({"d": 3}, 0), VT, "cfg")
        add(name, "init_params-cfg-other-model",
            lambda c, o=other: c["mod"].init_params(_ctx(o)["cfg"], 0), VT, "cfg")
        # make_data / sample_batch
        add(name, "make_data-cfg-none", lambda c: c["mod"].make_data(None, 0), VT, "cfg")
        add(name, "make_data-seed-bool", lambda c: c["mod"].make_data(c["cfg"], True), VT, "seed")
        for cid, n in (("zero", 0), ("negative", -2), ("float", 1.5), ("bool", True), ("str", "2"), ("none", None)):
            add(name, f"sample_batch-n-{cid}",
                lambda c, n=n: c["mod"].sample_batch(c["data"], n, np.random.default_rng(0)), VT, "n")
        add(name, "sample_batch-rng-str", lambda c: c["mod"].sample_batch(c["data"], 2, "a generator"), VT, "rng must")
        add(name, "sample_batch-data-none", lambda c: c["mod"].sample_batch(None, 2, np.random.default_rng(0)),
            VT, "data" if name != "li2024" else "inst")
        # forward: parameters
        add(name, "forward-params-none", lambda c: c["mod"].forward(None, c["batch"], c["cfg"]), VT, "params")
        add(name, "forward-params-list",
            lambda c: c["mod"].forward(list(c["params"].values()), c["batch"], c["cfg"]), VT, "params")
        add(name, "forward-params-missing-key",
            lambda c, k=first: c["mod"].forward({q: v for q, v in c["params"].items() if q != k}, c["batch"],
                                                c["cfg"]), VT, first)
        add(name, "forward-params-extra-key",
            lambda c: c["mod"].forward(_params(c, extra=np.zeros(2)), c["batch"], c["cfg"]), VT, "extra")
        for cid, fn, needle in (
            ("int64", lambda a: a.astype(np.int64), "dtype"),
            ("float16", lambda a: a.astype(np.float16), "float16"),
            ("complex", lambda a: a.astype(np.complex128), "complex"),
            ("bool", lambda a: a.astype(bool), "bool"),
            ("nan", _nan_first, "finite"),
            ("inf", _inf_first, "finite"),
            ("extra-dim", lambda a: a[None], "shape"),
            ("str", lambda a: "weights", "must"),
        ):
            add(name, f"forward-params-{first}-{cid}",
                lambda c, k=first, fn=fn: c["mod"].forward(_params(c, k, fn), c["batch"], c["cfg"]), VT, needle)
        if len(REGISTRY[name].load().PARAM_NAMES) > 1:  # huang2023 has one tensor: nothing to mix
            add(name, "forward-params-mixed-dtype",
                lambda c, k=first: c["mod"].forward(_params(c, k, lambda a: a.astype(np.float32)), c["batch"],
                                                    c["cfg"]), VT, "dtype")
        add(name, "forward-cfg-other-model",
            lambda c, o=other: c["mod"].forward(c["params"], c["batch"], _ctx(o)["cfg"]), VT, "cfg")
        # forward: inputs
        add(name, "forward-inputs-none", lambda c: c["mod"].forward(c["params"], None, c["cfg"]), VT, "inputs must")
        add(name, f"forward-inputs-{inp}-nan",
            lambda c, k=inp: c["mod"].forward(c["params"], _batch(c, k, _nan_first), c["cfg"]), NF, inp)
        add(name, f"forward-inputs-{inp}-int",
            lambda c, k=inp: c["mod"].forward(c["params"], _batch(c, k, lambda a: a.astype(np.int64)), c["cfg"]),
            VT, inp)
        add(name, f"forward-inputs-{inp}-complex",
            lambda c, k=inp: c["mod"].forward(c["params"], _batch(c, k, lambda a: a.astype(complex)), c["cfg"]),
            VT, inp)
        add(name, f"forward-inputs-{inp}-wrong-shape",
            lambda c, k=inp: c["mod"].forward(c["params"], _batch(c, k, lambda a: a[..., :1, None]), c["cfg"]),
            VT, inp)
        # backward
        add(name, "backward-cache-none", lambda c: c["mod"].backward(np.ones(2), None), VT, "cache")

        def _bw(c, fn):
            out, cache = c["mod"].forward(c["params"], c["batch"], c["cfg"])
            return c["mod"].backward(fn(np.ones_like(out)), cache)

        add(name, "backward-dout-nan", lambda c: _bw(c, _nan_first), NF, ("dF", "dy_hat", "dout"))
        add(name, "backward-dout-wrong-shape", lambda c: _bw(c, lambda a: np.ones(a.shape + (2,))), VT, "shape")
        # loss_and_grads
        for cid, be in (("unknown", "cuda"), ("none", None), ("upper", "NUMPY"), ("list", ["numpy"])):
            add(name, f"loss_and_grads-backend-{cid}",
                lambda c, be=be: c["mod"].loss_and_grads(c["params"], c["batch"], c["cfg"], backend=be), VT, "backend")
        add(name, f"loss_and_grads-target-{tgt}-nan",  # yang2024's closed-form loss reads no targets: its sample loss
            lambda c, k=tgt: c["mod"].loss_and_grads(c["params"], _batch(c, k, _nan_first), _sample_cfg(c)), NF, tgt)
        add(name, "loss_and_grads-batch-list",
            lambda c: c["mod"].loss_and_grads(c["params"], [1, 2], c["cfg"]), VT, "batch")
        for cid, fn, needle in (
            ("mixed-dtype" if name != "huang2023" else "float32-with-float64-batch-and-nan",
             (lambda c, k: _params(c, k, lambda a: a.astype(np.float32))) if name != "huang2023"
             else (lambda c, k: _params(c, k, lambda a: _nan_first(a.astype(np.float32)))),
             "dtype" if name != "huang2023" else "finite"),
            ("float16", lambda c, k: _params(c, k, lambda a: a.astype(np.float16)), "float16"),
            ("nan", lambda c, k: _params(c, k, _nan_first), "finite"),
            ("wrong-size", lambda c, k: _params(c, k, lambda a: np.ones(tuple(s + 1 for s in a.shape))), "shape"),
        ):
            add(name, f"loss_and_grads-numba-params-{cid}",
                lambda c, k=first, fn=fn: c["mod"].loss_and_grads(fn(c, k), c["batch"], c["cfg"], backend="numba"),
                VT, needle)
        add(name, f"loss_and_grads-numba-unchecked-short-{tgt}",
            lambda c, k=tgt: c["mod"].loss_and_grads(c["params"], _batch(c, k, lambda a: a[:1]), c["cfg"],
                                                     backend="numba", check=False), VT, "batch['")
        # predict / train
        add(name, "predict-params-nan",
            lambda c, k=first: c["mod"].predict(_params(c, k, _nan_first), c["batch"], c["cfg"]), NF, "finite")
        add(name, "predict-params-int",
            lambda c, k=first: c["mod"].predict(_params(c, k, lambda a: a.astype(np.int64)), c["batch"], c["cfg"]),
            VT, "dtype")
        add(name, "train-seed-str", lambda c: c["mod"].train(c["cfg"], "0", backend="numpy", progress=False), VT,
            "seed")
        add(name, "train-backend-unknown", lambda c: c["mod"].train(c["cfg"], 0, backend="gpu", progress=False),
            VT, "backend")
        add(name, "train-cfg-none", lambda c: c["mod"].train(None, 0, backend="numpy", progress=False), VT, "cfg")

    # model-specific entry points
    add("li2024", "evaluate-params-nan",
        lambda c: c["mod"].evaluate(_params(c, "W_O", _nan_first), c["batch"], c["cfg"]), NF, "finite")
    add("li2024", "evaluate-z-zero",
        lambda c: c["mod"].evaluate(c["params"], _batch(c, "z", lambda a: a * 0), c["cfg"]), V, "z")
    add("li2024", "evaluate-z-nan",
        lambda c: c["mod"].evaluate(c["params"], _batch(c, "z", _nan_first), c["cfg"]), NF, "z")
    add("li2024", "sample_batch-alpha-true",
        lambda c: c["mod"].sample_batch(c["data"], 2, np.random.default_rng(0), alpha=True), V, "alpha")
    add("li2024", "sample_batch-alpha-2", lambda c: c["mod"].sample_batch(c["data"], 2, 0, alpha=2.0), V, "alpha")
    add("li2024", "sample_batch-tasks-unknown",
        lambda c: c["mod"].sample_batch(c["data"], 2, 0, tasks="holdout"), V, "tasks")
    add("li2024", "sample_batch-l-zero", lambda c: c["mod"].sample_batch(c["data"], 2, 0, l=0), V, "l")
    add("li2024", "sample_batch-ood-str", lambda c: c["mod"].sample_batch(c["data"], 2, 0, ood="yes"), V, "ood")
    add("li2024", "loss_and_grads-keep-wrong-length",
        lambda c: c["mod"].loss_and_grads(c["params"], c["batch"], c["cfg"], keep=np.ones(3)), VT, "keep")
    add("li2024", "loss_and_grads-numba-P-1e200",
        lambda c: c["mod"].loss_and_grads(c["params"], _batch(c, "P", lambda a: a * 1e200), c["cfg"],
                                          backend="numba"), NF, "loss is not finite")
    add("li2024", "DataConfig-alpha-true", lambda c: type(c["cfg"].data)(alpha=True), VT, "alpha")
    add("li2024", "ModelConfig-attend_to_query-no",
        lambda c: type(c["cfg"].model)(attend_to_query="no"), VT, "attend_to_query")
    add("yang2024", "sample_batch-kind-unknown",
        lambda c: c["mod"].sample_batch(c["data"], 2, np.random.default_rng(0), kind="out"), V, "kind")
    add("transformer", "train-steps-negative",
        lambda c: c["mod"].train(c["cfg"], 0, steps=-1, progress=False), VT, "steps")
    add("transformer", "train-steps-and-budget-none",
        lambda c: c["mod"].train(c["cfg"], 0, steps=None, progress=False), VT, "steps")
    add("transformer", "train-lr-nan",
        lambda c: c["mod"].train(c["cfg"], 0, steps=2, lr=math.nan, progress=False), VT, "lr")
    add("transformer", "train-dtype-float16",
        lambda c: c["mod"].train(c["cfg"], 0, steps=2, dtype=np.float16, progress=False), VT, "dtype")
    return cases


API = _api_cases()


@pytest.mark.parametrize("model, call, exc, needle", API)
def test_api_bad_input_is_a_clear_error(model, call, exc, needle):
    with pytest.raises(exc) as info:
        call(_ctx(model))  # returning normally is a failure (silent acceptance)
    msg = str(info.value)
    assert msg and len(msg) < 2000, msg
    needles = (needle,) if isinstance(needle, str) else needle
    assert any(n in msg for n in needles), f"the message does not name {needle!r}: {msg}"


# ------------------------------------------------------------------------------------------------
# the command line
# ------------------------------------------------------------------------------------------------
def _golden_ref(tmp):
    return str(GOLDEN / "li2024-default-float64.npz")


def _cand(tmp, fn):
    """A candidate golden file: the li2024 reference with every float array mapped by ``fn``."""
    with np.load(GOLDEN / "li2024-default-float64.npz") as f:
        d = {k: (fn(f[k]) if f[k].dtype.kind == "f" else f[k]) for k in f.files}
    p = tmp / "cand.npz"
    np.savez(p, **d)
    return str(p)


def _file(tmp, name="sentinel.txt", text="keep me\n"):
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return str(p)


def _run_dir(tmp):
    """An existing run folder (what train wrote before)."""
    d = tmp / "run"
    d.mkdir()
    for f in ("params.npz", "curve.npz", "summary.json"):
        (d / f).write_bytes(b"old " + f.encode())
    return str(d)


def _report_dir(tmp):
    """An existing validation report folder."""
    d = tmp / "report"
    d.mkdir()
    (d / "report.md").write_text("# old report\n")
    (d / "results.json").write_text('{"format": "refimpl-results", "version": 2, "papers": {}}\n')
    return str(d)


def _old_report_dir(tmp):
    """A report folder whose results.json has a format this refimpl does not read."""
    d = Path(_report_dir(tmp))
    (d / "results.json").write_text('{"format": "refimpl-results", "version": 99, "papers": {}}\n')
    return str(d)


def _cli_cases():
    """(id, setup(tmp) -> argv)."""
    cases = []

    def add(cid, setup, verdict=False):
        cases.append(pytest.param(setup, verdict, id=f"cli-{cid}"))

    T = ["train", "li2024", "--quiet", "--steps", "2"]
    add("no-command", lambda t: [])
    add("unknown-command", lambda t: ["fit"])
    add("unknown-flag", lambda t: ["--bogus"])
    add("train-unknown-model", lambda t: ["train", "gpt5"])
    add("train-no-model", lambda t: ["train"])
    add("train-unknown-flag", lambda t: [*T, "--lr", "1"])
    for m in MODELS:
        add(f"train-{m}-preset-unknown", lambda t, m=m: ["train", m, "--preset", "huge", "--quiet"])
        add(f"train-{m}-set-unknown-field", lambda t, m=m: ["train", m, "--quiet", "--set", "nope=1"])
        add(f"train-{m}-steps-negative", lambda t, m=m: ["train", m, "--quiet", "--steps", "-1"])
        add(f"train-{m}-backend-unknown", lambda t, m=m: ["train", m, "--quiet", "--steps", "2", "--backend", "cuda"])
        add(f"train-{m}-out-existing-run", lambda t, m=m: ["train", m, "--quiet", "--steps", "2", "--out", _run_dir(t)])
    add("train-steps-str", lambda t: [*T, "--steps", "ten"])
    add("train-steps-float", lambda t: [*T, "--steps", "2.5"])
    add("train-steps-1e10", lambda t: [*T, "--steps", "10000000000"])
    add("train-seed-negative", lambda t: [*T, "--seed", "-1"])
    add("train-seed-str", lambda t: [*T, "--seed", "x"])
    add("train-set-no-equals", lambda t: [*T, "--set", "x"])
    add("train-set-empty-name", lambda t: [*T, "--set", "=1"])
    add("train-set-alpha-2", lambda t: [*T, "--set", "data.alpha=2"])
    add("train-set-alpha-true", lambda t: [*T, "--set", "data.alpha=true"])
    add("train-set-alpha-nan", lambda t: [*T, "--set", "data.alpha=NaN"])
    add("train-set-attend_to_query-no", lambda t: [*T, "--set", "model.attend_to_query=no"])
    add("train-set-lr-inf", lambda t: [*T, "--set", "train.lr=Infinity"])
    add("train-set-section", lambda t: [*T, "--set", "data=1"])
    add("train-set-m-list", lambda t: [*T, "--set", "model.m=[1,2]"])
    add("train-config-missing", lambda t: [*T, "--config", str(t / "nope.toml")])
    add("train-config-dir", lambda t: [*T, "--config", str(t)])
    add("train-config-bad-json", lambda t: [*T, "--config", _file(t, "c.json", "{not json")])
    add("train-config-bad-toml", lambda t: [*T, "--config", _file(t, "c.toml", "= = =")])
    add("train-config-json-list", lambda t: [*T, "--config", _file(t, "c.json", "[1, 2]")])
    add("train-config-unknown-field", lambda t: [*T, "--config", _file(t, "c.json", '{"nope": 1}')])
    add("train-config-yaml", lambda t: [*T, "--config", _file(t, "c.yaml", "a: 1")])
    add("train-out-existing-file", lambda t: [*T, "--out", _file(t)])
    add("train-out-under-a-file", lambda t: [*T, "--out", str(Path(_file(t)) / "run")])
    add("train-out-nonempty-dir", lambda t: [*T, "--out", str(Path(_file(t, "d/x.txt")).parent)])
    for be in ("numpy", "numba"):  # diverges within the tiny preset's 300 steps: exit 1, nothing written
        add(f"train-lr50-{be}-diverges", lambda t, be=be: ["train", "li2024", "--quiet", "--backend", be,
                                                           "--set", "train.lr=50", "--out", str(t / "new")])
    add("train-yang2024-eta_Q-1e30-diverges", lambda t: ["train", "yang2024", "--quiet", "--steps", "20",
                                                         "--set", "eta_Q=1e30", "--out", str(t / "new")])
    add("train-huang2023-eta-1e300-diverges", lambda t: ["train", "huang2023", "--quiet", "--steps", "5",
                                                         "--set", "eta=1e300", "--out", str(t / "new")])
    # golden export / suite / compare
    add("golden-no-subcommand", lambda t: ["golden"])
    add("golden-export-out-dir", lambda t: ["golden", "export", "li2024", "--out", str(Path(_file(t, "g/x")).parent)])
    add("golden-export-out-under-file", lambda t: ["golden", "export", "li2024", "--out", _file(t) + "/g.npz"])
    add("golden-export-no-out", lambda t: ["golden", "export", "li2024"])
    add("golden-export-dtype-float16", lambda t: ["golden", "export", "li2024", "--dtype", "float16", "--out",
                                                  str(t / "g.npz")])
    add("golden-export-config-unknown", lambda t: ["golden", "export", "li2024", "--config", "nope", "--out",
                                                   str(t / "g.npz")])
    add("golden-export-seed-negative", lambda t: ["golden", "export", "li2024", "--seed", "-3", "--out",
                                                  str(t / "g.npz")])
    add("golden-export-model-unknown", lambda t: ["golden", "export", "gpt5", "--out", str(t / "g.npz")])
    add("golden-suite-no-out", lambda t: ["golden", "suite"])
    add("golden-suite-out-file", lambda t: ["golden", "suite", "--out", _file(t)])
    add("golden-suite-out-under-file", lambda t: ["golden", "suite", "--out", _file(t) + "/g"])
    add("golden-suite-check-missing", lambda t: ["golden", "suite", "--check", "--out", str(t / "none")])
    R = ["golden", "compare"]
    for v in ("nan", "NaN", "inf", "-inf", "-1", "abc"):
        add(f"golden-compare-atol-{v}", lambda t, v=v: [*R, _golden_ref(t), _golden_ref(t), f"--atol={v}"])
        add(f"golden-compare-rtol-{v}", lambda t, v=v: [*R, _golden_ref(t), _golden_ref(t), f"--rtol={v}"])
    add("golden-compare-ref-missing", lambda t: [*R, str(t / "none.npz"), _golden_ref(t)])
    add("golden-compare-cand-missing", lambda t: [*R, _golden_ref(t), str(t / "none.npz")])
    add("golden-compare-ref-is-dir", lambda t: [*R, str(t), _golden_ref(t)])
    add("golden-compare-cand-is-dir", lambda t: [*R, _golden_ref(t), str(t)])
    add("golden-compare-cand-not-npz", lambda t: [*R, _golden_ref(t), _file(t)])
    add("golden-compare-cand-complex", lambda t: [*R, _golden_ref(t), _cand(t, lambda a: a.astype(complex))])
    add("golden-compare-cand-str", lambda t: [*R, _golden_ref(t), _cand(t, lambda a: a.astype(str))])
    # a wrong candidate is a FAIL verdict (exit 1, the table on stdout), never a PASS
    add("golden-compare-cand-zero", lambda t: [*R, _golden_ref(t), _cand(t, np.zeros_like), "--atol", "0"], True)
    add("golden-compare-cand-nan", lambda t: [*R, _golden_ref(t), _cand(t, lambda a: a * np.nan)], True)
    add("golden-compare-cand-inf", lambda t: [*R, _golden_ref(t), _cand(t, lambda a: np.full_like(a, np.inf))], True)
    add("golden-compare-cand-huge-atol-neg-inf", lambda t: [*R, _golden_ref(t), _cand(t, lambda a: np.full_like(a, -np.inf)),
                                                           "--atol", "1e300"], True)
    add("golden-compare-section-unknown", lambda t: [*R, _golden_ref(t), _golden_ref(t), "--sections", "meta"])
    add("golden-compare-dtype-float16", lambda t: [*R, _golden_ref(t), _golden_ref(t), "--dtype", "float16"])
    add("golden-compare-other-model", lambda t: [*R, _golden_ref(t), str(GOLDEN / "huang2023-default-float64.npz")],
        True)
    # validate
    V = ["validate", "--quiet", "--profile", "quick"]
    add("validate-paper-unknown", lambda t: [*V, "--paper", "vaswani2017", "--out", _report_dir(t)])
    add("validate-profile-unknown", lambda t: ["validate", "--profile", "huge", "--out", _report_dir(t)])
    add("validate-only-unknown", lambda t: [*V, "--paper", "li2024", "--only", "nope", "--out", _report_dir(t)])
    add("validate-out-file", lambda t: [*V, "--paper", "li2024", "--only", "training", "--out", _file(t)])
    add("validate-out-under-file", lambda t: [*V, "--paper", "li2024", "--only", "training", "--out",
                                              _file(t) + "/r"])
    add("validate-cache-dir-file", lambda t: [*V, "--paper", "li2024", "--only", "training", "--out", _report_dir(t),
                                              "--cache-dir", _file(t)])
    add("validate-workers-zero", lambda t: [*V, "--paper", "li2024", "--workers", "0", "--out", _report_dir(t)])
    add("validate-workers-negative", lambda t: [*V, "--paper", "li2024", "--workers", "-2", "--out", _report_dir(t)])
    add("validate-workers-and-scheduler", lambda t: [*V, "--workers", "1", "--scheduler", "tcp://x:1", "--out",
                                                     _report_dir(t)])
    add("validate-scheduler-file-missing", lambda t: [*V, "--paper", "li2024", "--scheduler-file",
                                                      str(t / "none.json"), "--out", _report_dir(t)])
    add("validate-results-json-version-99", lambda t: [*V, "--paper", "li2024", "--only", "training", "--out",
                                                       _old_report_dir(t)])
    add("validate-out-locked", lambda t: [*V, "--paper", "li2024", "--only", "training", "--out",
                                          _lock(_report_dir(t))])
    # report / cache
    add("report-no-from", lambda t: ["report"])
    add("report-from-missing", lambda t: ["report", "--from", str(t / "results.json")])
    add("report-from-not-json", lambda t: ["report", "--from", _file(t, "results.json", "not json")])
    add("report-from-wrong-version", lambda t: ["report", "--from", _file(t, "r/results.json", '{"format": 1}')])
    add("report-from-empty-dir", lambda t: ["report", "--from", str(Path(_file(t, "e/x.txt")).parent)])
    add("report-out-file", lambda t: ["report", "--from", _report_dir(t), "--out", _file(t)])
    add("report-out-under-file", lambda t: ["report", "--from", _report_dir(t), "--out", _file(t) + "/r"])
    add("report-from-version-99", lambda t: ["report", "--from", _old_report_dir(t)])
    add("cache-no-subcommand", lambda t: ["cache"])
    add("cache-unknown-subcommand", lambda t: ["cache", "wipe"])
    add("cache-info-cache-dir-file", lambda t: ["cache", "info", "--cache-dir", _file(t)])
    add("cache-prune-cache-dir-file", lambda t: ["cache", "prune", "--cache-dir", _file(t)])
    # bench (all refused before any timing)
    B = ["bench", "--quick", "--sizes", "small", "--model", "huang2023", "--backend", "numpy"]
    add("bench-repeats-zero", lambda t: [*B, "--repeats", "0"])
    add("bench-repeats-negative", lambda t: [*B, "--repeats", "-5"])
    add("bench-rounds-zero", lambda t: [*B, "--rounds", "0"])
    add("bench-threads-zero", lambda t: [*B, "--threads", "0"])
    add("bench-model-unknown", lambda t: ["bench", "--quick", "--model", "gpt5"])
    add("bench-backend-unknown", lambda t: ["bench", "--quick", "--model", "huang2023", "--backend", "cuda"])
    add("bench-dtype-float16", lambda t: [*B, "--dtype", "float16"])
    add("bench-sizes-huge", lambda t: ["bench", "--sizes", "huge"])
    add("bench-plot-existing-file", lambda t: [*B, "--plot", _file(t)])
    add("bench-json-existing-dir", lambda t: [*B, "--json", str(Path(_file(t, "j/x")).parent)])
    add("bench-compare-missing", lambda t: [*B, "--compare", str(t / "none.json")])
    add("bench-compare-not-json", lambda t: [*B, "--compare", _file(t, "b.json", "nope")])
    add("bench-strict-without-compare", lambda t: [*B, "--strict"])
    return cases


def _lock(report: str) -> str:
    """Hold the report folder's lock as another live run on this machine would (the parent's pid)."""
    import json
    import socket

    from refimpl.validation.outdir import LOCK_NAME

    (Path(report) / LOCK_NAME).write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    return report


CLI = _cli_cases()


def _snapshot(root: Path) -> dict:
    """Every path under ``root``: files by content and mode, folders by mode."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (p.read_bytes() if p.is_file() else "dir", st.st_mode)
    return out


@pytest.mark.parametrize("setup, verdict", CLI)
def test_cli_bad_input_is_one_clear_line_and_changes_nothing(setup, verdict, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # default outputs (runs/..., report/) would land here and be seen
    argv = setup(work)
    capsys.readouterr()
    before = _snapshot(work)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    assert _snapshot(work) == before, "an output file or folder was created, lost or altered"
    if verdict:  # golden compare: a mismatch is the verdict FAIL, exit 1
        assert code == 1 and out.strip().splitlines()[-1].startswith("FAIL"), (code, out, err)
        return
    assert code in (1, 2), (code, out, err)
    errors = [line for line in err.strip().splitlines() if "error" in line]
    other = [line for line in err.strip().splitlines()
             if "error" not in line and not line.startswith(("usage:", " "))]
    assert len(errors) == 1 and not other, err
    assert _snapshot(work) == before, "an output file or folder was created, lost or altered"


API_CASES, CLI_CASES = len(API), len(CLI)
TOTAL_CASES = API_CASES + CLI_CASES


def test_the_table_has_at_least_200_distinct_cases():
    ids = [p.id for p in API + CLI]
    assert len(set(ids)) == len(ids), "duplicate case ids"
    assert TOTAL_CASES >= 200, (API_CASES, CLI_CASES)
    assert f"{API_CASES} API cases, {CLI_CASES} CLI cases, {TOTAL_CASES} distinct" in " ".join(__doc__.split())
