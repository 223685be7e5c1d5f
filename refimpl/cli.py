"""Command line: ``refimpl train | golden | validate | bench``.

    refimpl train li2024 --preset default [--steps N] [--seed S] [--out DIR]
    refimpl golden export li2024 --seed 0 --out li.npz
    refimpl golden compare REF.npz CAND.npz [--sections output grad] [--rtol R --atol A] [--dtype float32]
    refimpl validate [--paper li2024|huang2023] [--profile quick|full] [--out DIR] [--no-cache]
    refimpl bench [--model P ...] [--backend B ...] [--quick] [--json FILE] [--plot DIR] [--scaling]
                  [--threads 1 2] [--rounds R] [--repeats K] [--compare BASELINE.json [--strict]]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

GOLDEN_MODELS = ("li2024", "huang2023", "yang2024", "transformer")  # models with a golden export
TRAIN_MODELS = ("li2024",)  # models with `refimpl train`


def _golden_module(model: str):
    if model == "li2024":
        from refimpl.li2024 import golden

        return golden
    if model == "huang2023":
        from refimpl.huang2023 import golden

        return golden
    if model == "yang2024":
        from refimpl.yang2024 import golden

        return golden
    if model == "transformer":
        from refimpl.transformer import golden

        return golden
    raise ValueError(f"unknown model {model!r}; allowed: {list(GOLDEN_MODELS)}")


def cmd_train(args) -> int:
    import dataclasses

    from refimpl.core.io import atomic_savez
    from refimpl.core.io import atomic_write_bytes as _atomic_write_bytes
    from refimpl.li2024 import preset, train

    cfg = preset(args.preset)
    if args.steps is not None:
        cfg = cfg.replace(train=dict(steps=args.steps))
    out = Path(args.out or f"runs/{args.model}-{args.preset}-seed{args.seed}")
    res = train(cfg, args.seed, backend=args.backend, progress=None if not args.quiet else False)
    atomic_savez(out / "params.npz", {f"param/{k}": v for k, v in res.params.items()})
    atomic_savez(out / "curve.npz", {**{f"history/{k}": v for k, v in res.history.items()},
                                     **{f"evals/{k}": v for k, v in res.records.items()}})
    summary = {
        "model": args.model, "preset": args.preset, "seed": args.seed, "backend": args.backend,
        "config": dataclasses.asdict(cfg), "wall_s": res.wall_s,
        "final": {k: float(v[-1]) for k, v in res.records.items() if k != "step"},
    }
    _atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    fin = summary["final"]
    print(f"trained {cfg.train.steps} steps in {res.wall_s:.1f} s; "
          f"unseen-task error {fin['unseen/error']:.4f}, training-task error {fin['train/error']:.4f}, "
          f"same-pattern attention {fin['unseen/attn_same']:.3f} (evaluation batches of {cfg.train.n_eval})")
    print(f"wrote {out}/params.npz, curve.npz, summary.json")
    return 0


def cmd_golden_export(args) -> int:
    from refimpl.core.io import atomic_savez
    from refimpl.testing import golden

    data = golden(args.model, seed=args.seed, dtype=args.dtype)
    path = atomic_savez(args.out, data)
    names = sorted(k for k in data if not k.startswith("meta/"))
    print(f"wrote {path}: {len(names)} arrays ({', '.join(names)})")
    return 0


def cmd_golden_compare(args) -> int:
    from refimpl.core.golden import check_tolerance, compare

    for name in ("rtol", "atol"):  # a usage error (exit 2), before any file is read
        if getattr(args, name) is not None:
            check_tolerance(f"--{name}", getattr(args, name))
    try:
        res = compare(args.ref, args.cand, sections=args.sections, rtol=args.rtol, atol=args.atol, dtype=args.dtype)
    except TypeError as exc:  # candidate data refused (complex, bool, string, object): an error, not a verdict
        print(f"refimpl: error: {exc}", file=sys.stderr)
        return 2
    print(res.table())
    return 0 if res.ok else 1


def cmd_validate(args) -> int:
    from refimpl.validation.runner import run_validation

    papers = None if args.paper in (None, "all") else [args.paper]
    results = run_validation(papers, args.profile, args.out, use_cache=not args.no_cache,
                             progress=None if not args.quiet else False, only=args.only)
    n_fail = sum(c.verdict == "fail" for cs in results.values() for c in cs)
    n_pass = sum(c.verdict == "pass" for cs in results.values() for c in cs)
    print(f"wrote {Path(args.out) / 'report.md'} and results.json: {n_pass} pass, {n_fail} fail")
    return 0


def cmd_bench(args) -> int:
    from refimpl.benchmarks.run import main as bench_main

    return bench_main(models=args.model, quick=args.quick, json_path=args.json, plot_dir=args.plot,
                      threads=args.threads, repeats=args.repeats, dtypes=args.dtype, backends=args.backend,
                      rounds=args.rounds, scaling=args.scaling, compare=args.compare, strict=args.strict,
                      sizes=args.sizes, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="refimpl", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a named preset; saves parameters and curves")
    t.add_argument("model", choices=TRAIN_MODELS)
    t.add_argument("--preset", default="default")
    t.add_argument("--steps", type=int, default=None, help="override the preset's number of steps")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="output folder (default runs/MODEL-PRESET-seedS)")
    t.add_argument("--backend", choices=("numpy", "numba"), default="numba")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_train)

    g = sub.add_parser("golden", help="export or compare golden vectors")
    gs = g.add_subparsers(dest="golden_command", required=True)
    ge = gs.add_parser("export", help="write a golden .npz file (format version 2)")
    ge.add_argument("model", choices=GOLDEN_MODELS)
    ge.add_argument("--seed", type=int, default=0)
    ge.add_argument("--out", required=True)
    ge.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ge.set_defaults(fn=cmd_golden_export)
    gc = gs.add_parser("compare", help="compare a candidate file against a reference; exit 1 on mismatch",
                       description="Check CAND's output/, grad/ and trajectory/ keys (--sections to choose) against "
                                   "the golden file REF. Default tolerances follow the candidate's dtype and each "
                                   "key's scale (refimpl.testing); --rtol/--atol replace them for every key.")
    gc.add_argument("ref")
    gc.add_argument("cand")
    gc.add_argument("--sections", nargs="+", choices=("param", "input", "output", "grad", "trajectory"),
                    default=("output", "grad", "trajectory"), help="sections to check (default: output grad trajectory)")
    gc.add_argument("--rtol", type=float, default=None, help="relative tolerance for every key (finite, ≥ 0)")
    gc.add_argument("--atol", type=float, default=None, help="absolute tolerance for every key (finite, ≥ 0)")
    gc.add_argument("--dtype", choices=("float64", "float32"), default=None,
                    help="precision of the default tolerances (default: the candidate's least precise float dtype)")
    gc.set_defaults(fn=cmd_golden_compare)

    v = sub.add_parser("validate", help="run the theorem checks and figures; write report.md")
    v.add_argument("--paper", default="all", help="li2024, huang2023, or all (default)")
    v.add_argument("--profile", choices=("quick", "full"), default="quick")
    v.add_argument("--out", default="report")
    v.add_argument("--no-cache", action="store_true", help="recompute everything")
    v.add_argument("--only", nargs="+", default=None, metavar="MODULE",
                   help="run only these modules of validation/<paper>/ (e.g. training ood)")
    v.add_argument("--quiet", action="store_true", help="no progress bars")
    v.set_defaults(fn=cmd_validate)

    from refimpl.models import bench_problems

    b = sub.add_parser(
        "bench", help="training-step time per problem, backend, dtype and thread count; ratios per round",
        description="Time one training step of every benchmark problem on refimpl's paths and on the PyTorch and "
                    "JAX examples, each backend in its own process pinned to as many cores as threads, parity "
                    "checked before timing, backends interleaved in shuffled rounds; report refimpl's best path ÷ "
                    "the fastest competitor per round (median and IQR), CPU time ÷ wall time, peak memory, "
                    "first-call cost and the machine (benchmarks/run.py).")
    b.add_argument("--model", nargs="+", choices=bench_problems(), default=None, metavar="PROBLEM",
                   help=f"benchmark problems to time (default all: {', '.join(bench_problems())})")
    b.add_argument("--backend", nargs="+", default=None, metavar="BACKEND",
                   help="backends to time (default: all installed): refimpl's paths (numpy, numba, ...), "
                        "torch_eager, torch_compile, jax_jit (a base name selects every form, e.g. li2024's "
                        "torch_eager and torch_eager_matched)")
    b.add_argument("--quick", action="store_true", help="a smoke run: fewer and shorter rounds")
    b.add_argument("--threads", nargs="+", type=int, default=None,
                   help="thread counts (default 1 2, as far as there are cores): paper sizes at the first, a "
                        "float64 row at the problems' large sizes at each")
    b.add_argument("--dtype", nargs="+", choices=("float64", "float32"), default=["float64", "float32"])
    b.add_argument("--sizes", choices=("paper", "small"), default="paper",
                   help="paper sizes (default) or the problems' small sizes (smoke tests)")
    b.add_argument("--rounds", type=int, default=None, help="rounds (default 15; 5 with --quick)")
    b.add_argument("--repeats", type=int, default=None,
                   help="timed steps per backend per round (default: about 0.5 s of steps; 0.1 s with --quick)")
    b.add_argument("--seed", type=int, default=0, help="seed of the problems")
    b.add_argument("--scaling", action="store_true", help="also time scaling curves (slower)")
    b.add_argument("--json", default=None, metavar="FILE", help="write the record to this JSON file")
    b.add_argument("--plot", default=None, metavar="DIR", help="write bench_table.md and the figures into DIR")
    b.add_argument("--compare", default=None, metavar="BASELINE",
                   help="compare the ratios with a stored record (e.g. docs/performance/bench.json); report "
                        "those more than 20%% worse")
    b.add_argument("--strict", action="store_true", help="with --compare: exit with status 1 when a ratio got worse")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"refimpl: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
