"""Command line: ``refimpl train | golden | validate | cache | bench``.

    refimpl train li2024 --preset default [--steps N] [--seed S] [--out DIR]
    refimpl golden export li2024 --seed 0 --out li.npz
    refimpl golden compare REF.npz CAND.npz [--rtol 1e-9] [--atol 1e-12]
    refimpl validate [--paper li2024|huang2023] [--profile quick|full] [--out DIR] [--no-cache]
                     [--workers N | --scheduler ADDRESS | --scheduler-file FILE] [--cache-dir DIR] [--strict]
    refimpl cache info|prune [--cache-dir DIR | --out DIR]
    refimpl bench [--model M ...] [--quick] [--json FILE] [--plot DIR] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

GOLDEN_MODELS = ("li2024", "huang2023", "yang2024", "transformer")  # models with a golden export
TRAIN_MODELS = ("li2024",)  # models with `refimpl train`
BENCH_MODELS = ("li2024", "yang2024", "huang2023", "huang2023_C", "transformer")  # benchmarks/run.py


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
                                     **{f"evals/{k}": v for k, v in res.evals.items()}})
    summary = {
        "model": args.model, "preset": args.preset, "seed": args.seed, "backend": args.backend,
        "config": dataclasses.asdict(cfg), "wall_s": res.wall_s,
        "final": {k: float(v[-1]) for k, v in res.evals.items() if k != "step"},
    }
    _atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    fin = summary["final"]
    print(f"trained {cfg.train.steps} steps in {res.wall_s:.1f} s; "
          f"unseen-task error {fin['unseen/error']:.4f}, training-task error {fin['train/error']:.4f}, "
          f"same-pattern attention {fin['unseen/attn_same']:.3f} (evaluation batches of {cfg.train.n_eval})")
    print(f"wrote {out}/params.npz, curve.npz, summary.json")
    return 0


def cmd_golden_export(args) -> int:
    from refimpl.core.golden import write_golden

    mod = _golden_module(args.model)
    config, arrays = mod.golden_arrays(args.seed, dtype=args.dtype)
    path = write_golden(args.out, model=args.model, seed=args.seed, dtype=args.dtype, config=config, arrays=arrays)
    print(f"wrote {path}: {len(arrays)} arrays ({', '.join(sorted(arrays))})")
    return 0


def cmd_golden_compare(args) -> int:
    from refimpl.core.golden import compare

    res = compare(args.ref, args.cand, rtol=args.rtol, atol=args.atol)
    print(res.table())
    return 0 if res.ok else 1


def cmd_validate(args) -> int:
    from refimpl.validation.runner import ValidationInterrupted, run_validation

    papers = None if args.paper in (None, "all") else [args.paper]
    try:
        results = run_validation(papers, args.profile, args.out, use_cache=not args.no_cache,
                                 progress=None if not args.quiet else False, only=args.only,
                                 cache_dir=args.cache_dir, workers=args.workers, scheduler=args.scheduler,
                                 scheduler_file=args.scheduler_file)
    except ValidationInterrupted as exc:
        print(f"\nrefimpl: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\nrefimpl: interrupted before any computation; nothing was written", file=sys.stderr)
        return 130
    n_fail = sum(c.verdict == "fail" for cs in results.values() for c in cs)
    n_pass = sum(c.verdict == "pass" for cs in results.values() for c in cs)
    print(f"wrote {Path(args.out) / 'report.md'} and results.json: {n_pass} pass, {n_fail} fail")
    return 1 if args.strict and n_fail else 0


def cmd_cache(args) -> int:
    from refimpl.validation import cache

    root = Path(args.cache_dir) if args.cache_dir else Path(args.out) / ".cache"
    if root.exists() and not root.is_dir():
        raise ValueError(f"--cache-dir {root} is a file, not a cache folder")
    if args.cache_command == "info":
        print(cache.info_text(root))
    else:
        n, size = cache.prune(root)
        print(f"{root}: removed {n} file(s), {size / 1e6:.1f} MB (stale or incomplete entries, leftover temporary files)")
    return 0


def cmd_bench(args) -> int:
    from refimpl.benchmarks.run import main as bench_main

    return bench_main(models=args.model, quick=args.quick, json_path=args.json, plot_dir=args.plot,
                      threads=args.threads, repeats=args.repeats, dtypes=args.dtype, backends=args.backend)


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
    ge = gs.add_parser("export", help="write a golden .npz file")
    ge.add_argument("model", choices=GOLDEN_MODELS)
    ge.add_argument("--seed", type=int, default=0)
    ge.add_argument("--out", required=True)
    ge.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ge.set_defaults(fn=cmd_golden_export)
    gc = gs.add_parser("compare", help="compare a candidate file against a reference; exit 1 on mismatch")
    gc.add_argument("ref")
    gc.add_argument("cand")
    gc.add_argument("--rtol", type=float, default=None)
    gc.add_argument("--atol", type=float, default=None)
    gc.set_defaults(fn=cmd_golden_compare)

    v = sub.add_parser(
        "validate", help="run the theorem checks and figures; write report.md",
        description="Run the theorem checks and figures of the chosen papers and write report.md, results.json "
                    "and the figures into --out. A run over some papers (--paper) or modules (--only) merges into "
                    "the folder's existing report: the rows of what it ran are replaced, every other row is kept "
                    "(marked with the profile and code version it came from when they differ from this run's). "
                    "Computations are cached by a hash of their configuration and of the code they depend on, so "
                    "a rerun or an interrupted run (Ctrl-C) resumes from what is already computed; editing a "
                    "figure does not invalidate them. One run at a time per output folder (a lock file).")
    v.add_argument("--paper", default="all", help="li2024, yang2024, huang2023, or all (default)")
    v.add_argument("--profile", choices=("quick", "full"), default="quick")
    v.add_argument("--out", default="report", help="output folder (default: report)")
    v.add_argument("--cache-dir", default=None, metavar="DIR", help="cache folder (default: OUT/.cache)")
    v.add_argument("--no-cache", action="store_true", help="recompute everything (reusing only what this run computes)")
    v.add_argument("--only", nargs="+", default=None, metavar="MODULE",
                   help="run only these modules of validation/<paper>/ (e.g. training ood)")
    v.add_argument("--quiet", action="store_true", help="no progress bars")
    v.add_argument("--strict", action="store_true", help="exit with status 1 when a claim of this run fails")
    eng = v.add_mutually_exclusive_group()
    eng.add_argument("--workers", type=int, default=None, metavar="N",
                     help="run the computations on a local Dask cluster of N single-threaded worker processes "
                          "(needs refimpl[distributed])")
    eng.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run the computations on an existing Dask cluster (e.g. tcp://host:8786)")
    eng.add_argument("--scheduler-file", default=None, metavar="FILE", help="the same, from a Dask scheduler file")
    v.set_defaults(fn=cmd_validate)

    c = sub.add_parser("cache", help="list or prune the validation cache")
    cs = c.add_subparsers(dest="cache_command", required=True)
    for name, text in (("info", "list the entries: size, compute time, date, stale or current"),
                       ("prune", "delete stale entries (their code changed), incomplete ones and leftover temp files")):
        cp = cs.add_parser(name, help=text)
        cp.add_argument("--cache-dir", default=None, metavar="DIR", help="cache folder (default: OUT/.cache)")
        cp.add_argument("--out", default="report", help="validate's output folder (default: report)")
        cp.set_defaults(fn=cmd_cache)

    b = sub.add_parser("bench", help="training-step time per model, backend, dtype and thread count")
    b.add_argument("--model", nargs="+", choices=BENCH_MODELS, default=None,
                   help="models to time (default: every model available)")
    b.add_argument("--quick", action="store_true", help="fewer repeats; scaling curves only with --plot")
    b.add_argument("--threads", nargs="+", type=int, default=[1, 2],
                   help="thread counts, one child process each (default 1 2; float64 only after the first)")
    b.add_argument("--backend", nargs="+", default=None,
                   choices=("numpy", "numba", "torch_eager", "torch_compile", "jax_jit"),
                   help="backends to time (default: all installed)")
    b.add_argument("--dtype", nargs="+", choices=("float64", "float32"), default=["float64", "float32"])
    b.add_argument("--repeats", type=int, default=None, help="timed steps per record (default 30 quick, 200)")
    b.add_argument("--json", default=None, help="write every record to this JSON file")
    b.add_argument("--plot", default=None, metavar="DIR", help="write step-time and scaling plots (PNG + JSON)")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "golden_command", None) == "compare":
        from refimpl.core.golden import DEFAULT_ATOL, DEFAULT_RTOL

        args.rtol = DEFAULT_RTOL if args.rtol is None else args.rtol
        args.atol = DEFAULT_ATOL if args.atol is None else args.atol
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"refimpl: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
