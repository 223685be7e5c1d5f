"""Command line: ``refimpl train | golden | validate | sweep | report | cache | bench``.

    refimpl train MODEL [--preset P] [--set FIELD=VALUE ...] [--config FILE] [--steps N] [--seed S] [--out DIR]
    refimpl golden export MODEL --seed 0 [--config NAME] --out FILE.npz
    refimpl golden suite --out tests/data/golden [--check | --list]
    refimpl golden compare REF.npz CAND.npz [--sections output grad] [--rtol R --atol A] [--dtype float32]
    refimpl validate [--paper li2024|huang2023] [--profile quick|full] [--out DIR] [--no-cache]
                     [--workers N|auto | --scheduler ADDRESS | --scheduler-file FILE] [--cache-dir DIR] [--strict]
    refimpl sweep MODEL --set FIELD=V1,V2 [--set ...] [--seeds 0-7] [--preset P] [--config FILE] [--steps N]
                  [--workers N|auto | --scheduler ADDRESS | --scheduler-file FILE] [--metric NAME] --out DIR
    refimpl report --from RESULTS.json [--out DIR]
    refimpl cache info|prune [--cache-dir DIR | --out DIR]
    refimpl bench [--model P ...] [--backend B ...] [--quick] [--json FILE] [--plot DIR] [--scaling]
                  [--threads 1 2] [--rounds R] [--repeats K] [--compare BASELINE.json [--strict]]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _models():
    from refimpl import models

    return models


def _train_config(args):
    """The configuration ``refimpl train`` / ``sweep`` start from: the preset, then ``--config FILE``,
    then ``--set`` (each validated by the model's config), then ``--steps``."""
    from refimpl.core.config import apply_overrides, load_config_file, parse_assignment, parse_value

    info = _models().get(args.model)
    mod = info.load()
    cfg = mod.preset(args.preset)
    if getattr(args, "config", None):
        cfg = apply_overrides(cfg, load_config_file(args.config))
    sets = dict(parse_assignment(a) for a in (getattr(args, "set", None) or ()))
    if sets:
        cfg = apply_overrides(cfg, {k: parse_value(v) for k, v in sets.items()})
    if getattr(args, "steps", None) is not None and info.steps_field:
        cfg = apply_overrides(cfg, {info.steps_field: args.steps})
    return info, mod, cfg


def _train_steps(info, cfg, args) -> int | None:
    if info.steps_field is None:
        return args.steps
    obj = cfg
    for part in info.steps_field.split("."):
        obj = getattr(obj, part)
    return int(obj)


def cmd_train(args) -> int:
    import dataclasses

    import numpy as np

    from refimpl.core.io import atomic_savez, atomic_write_json, available_memory_bytes, check_output_dir

    info, mod, cfg = _train_config(args)  # bad presets, fields and values fail here, before any work
    if args.backend not in info.backends:
        raise ValueError(f"--backend must be one of {list(info.backends)} for {info.name}, got {args.backend!r}")
    if args.seed < 0:
        raise ValueError(f"--seed must be ≥ 0, got {args.seed}")
    out = check_output_dir(args.out or f"runs/{args.model}-{args.preset}-seed{args.seed}", overwrite=args.overwrite)
    steps = _train_steps(info, cfg, args)
    avail = available_memory_bytes()
    if steps is not None and avail is not None and steps * 1024 > avail // 2:  # per-step records ≤ ~1 KiB
        raise ValueError(f"{steps} training steps would need about {steps * 1024 / 2**30:.1f} GiB for the per-step "
                         f"records, more than half of the {avail / 2**30:.1f} GiB available; lower --steps")
    kw = {"steps": args.steps} if info.steps_field is None and args.steps is not None else {}
    try:  # a diverging run ends in one NonFiniteError line, not in NumPy's overflow warnings first
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = mod.train(cfg, args.seed, backend=args.backend, progress=None if not args.quiet else False, **kw)
    except KeyboardInterrupt:
        print(f"\nrefimpl: interrupted; nothing was written to {out}", file=sys.stderr)
        return 130
    arrays = res.arrays()
    atomic_savez(out / "params.npz", {k: v for k, v in arrays.items() if k.startswith("param/")})
    atomic_savez(out / "curve.npz", {k: v for k, v in arrays.items() if not k.startswith("param/")})
    final = {k: res.final(k) for k in res.records if k != "step" and np.ndim(res.records[k][-1]) == 0}
    if "loss" in res.history and len(res.history["loss"]):
        final.setdefault("loss", float(res.history["loss"][-1]))
    summary = {
        "model": args.model, "preset": args.preset, "overrides": list(args.set or ()), "config_file": args.config,
        "seed": args.seed, "backend": args.backend, "config": dataclasses.asdict(cfg), "wall_s": res.wall_s,
        "steps": res.steps_done, "final": final,
    }
    atomic_write_json(out / "summary.json", summary, default=str)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in list(final.items())[:6])
    print(f"trained {info.name} for {res.steps_done} steps in {res.wall_s:.1f} s; final: {shown}")
    print(f"wrote {out}/params.npz, curve.npz, summary.json")
    return 0


def cmd_golden_export(args) -> int:
    from refimpl.core.io import atomic_savez, check_output_file
    from refimpl.testing import golden

    check_output_file(args.out, what="--out")  # a folder or an unwritable place: one line, before the work
    data = golden(args.model, config=args.config, seed=args.seed, dtype=args.dtype)
    path = atomic_savez(args.out, data)
    names = sorted(k for k in data if not k.startswith("meta/"))
    print(f"wrote {path}: {len(names)} arrays ({', '.join(names)})")
    return 0


def cmd_golden_suite(args) -> int:
    from refimpl.testing import check_suite, suite, write_suite

    if args.list:
        for e in suite():
            print(f"{e.model:<12} {e.config:<22} {e.covers}")
        return 0
    if args.out is None:
        print("refimpl: error: --out DIR is required (unless --list)", file=sys.stderr)
        return 2
    if args.check:
        if not Path(args.out).is_dir():
            raise ValueError(f"--out {args.out} is not a folder of golden files (nothing to check)")
        problems = check_suite(args.out)
        for name, diffs in problems.items():
            print(f"{name}:")
            for d in diffs:
                print(f"  {d}")
        n = len(suite()) * 2
        bad = sum(1 for diffs in problems.values() if not diffs[0].startswith("not a configuration"))
        print(f"{n - bad} of {n} golden files reproduced bit for bit" if problems
              else f"all {n} golden files reproduced bit for bit")
        return 1 if problems else 0
    from refimpl.core.io import check_output_dir

    check_output_dir(args.out, overwrite=True, what="--out")  # a file or an unwritable place: before the work
    paths = write_suite(args.out)
    print(f"wrote {len(paths)} golden files to {args.out}")
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


def usable_cores() -> int:
    """The number of cores this process may run on (its CPU affinity; ``os.cpu_count()`` where
    the platform has no affinity)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers_arg(text: str) -> int:
    """``--workers N`` (a positive integer) or ``--workers auto`` (:func:`usable_cores`)."""
    if text.strip().lower() == "auto":
        return usable_cores()
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")
    return n


def add_engine_args(parser) -> None:
    """--workers | --scheduler | --scheduler-file (validate and sweep run on the same engines)."""
    eng = parser.add_mutually_exclusive_group()
    eng.add_argument("--workers", type=workers_arg, default=None, metavar="N",
                     help="run the computations on a local Dask cluster of N single-threaded worker processes; "
                          "'auto': one per core this process may use (needs dask[distributed], in the validate extra)")
    eng.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run the computations on an existing Dask cluster (e.g. tcp://host:8786)")
    eng.add_argument("--scheduler-file", default=None, metavar="FILE", help="the same, from a Dask scheduler file")


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
    from refimpl.validation.html import SIDE_GROUPS

    def count(verdict, side):
        return sum(c.verdict == verdict for p, cs in results.items() if (p in SIDE_GROUPS) == side for c in cs)

    n_fail, n_pass = count("fail", False), count("pass", False)
    side = (f" (robustness, beside the verdicts: {count('pass', True)} settings pass, {count('fail', True)} fail)"
            if any(p in SIDE_GROUPS for p in results) else "")
    print(f"wrote {Path(args.out) / 'report.md'}, report.html and results.json: {n_pass} pass, {n_fail} fail{side}")
    return 1 if args.strict and n_fail else 0  # --strict: the verdict rows only


def cmd_report(args) -> int:
    from refimpl.validation.report import redraw

    md, html = redraw(args.results, args.out)
    print(f"wrote {md} and {html.name} from {args.results} (nothing recomputed)")
    return 0


def cmd_sweep(args) -> int:
    from refimpl.validation import sweep as S
    from refimpl.validation.runner import ValidationInterrupted

    # every preset, field, value, combination, seed and backend is checked here, before any work
    sw = S.build(args.model, preset=args.preset, config_file=args.config,
                 sets=[a for group in (args.set or ()) for a in group], seeds=args.seeds, steps=args.steps,
                 backend=args.backend)
    info = _models().get(args.model)
    metric = args.metric or info.metric
    try:
        rows = S.run_sweep(sw, args.out, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                           overwrite=args.overwrite, workers=args.workers, scheduler=args.scheduler,
                           scheduler_file=args.scheduler_file, progress=None if not args.quiet else False)
    except ValidationInterrupted as exc:
        print(f"\nrefimpl: {exc}", file=sys.stderr)
        return 130
    names = S.metric_names(rows, sw)
    if all(r["status"] != "ok" for r in rows):
        paths = S.write_outputs(args.out, sw, rows, None)
        print(f"refimpl: error: every run diverged (the status column of {paths[0]} has the messages)", file=sys.stderr)
        return 1
    if metric not in names:
        S.write_outputs(args.out, sw, rows, None)
        raise ValueError(f"--metric {metric!r} is not a metric of {args.model}; available: {names} (wrote sweep.csv "
                         f"and sweep.json; the runs are cached: rerun with --metric NAME for the plot)")
    paths = S.write_outputs(args.out, sw, rows, metric)
    failed = sum(r["status"] != "ok" for r in rows)
    print(f"wrote {', '.join(str(p) for p in paths)}: {len(rows)} runs"
          + (f", {failed} diverged (see the status column)" if failed else ""))
    return 0


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
                      threads=args.threads, repeats=args.repeats, dtypes=args.dtype, backends=args.backend,
                      rounds=args.rounds, scaling=args.scaling, compare=args.compare, strict=args.strict,
                      sizes=args.sizes, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    from refimpl import __version__

    p = argparse.ArgumentParser(prog="refimpl", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"refimpl {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    names = _models().names()
    t = sub.add_parser("train", help="train a model from a named preset; saves parameters and curves",
                       description="Train MODEL by its paper's procedure from a preset, with any config field "
                                   "overridden (--set data.alpha=0.4 model.m=50, or a --config FILE.toml|json of "
                                   "field names); writes params.npz, curve.npz and summary.json into --out.")
    t.add_argument("model", choices=names)
    t.add_argument("--preset", default="tiny", help="a preset of the model (default: tiny)")
    t.add_argument("--set", nargs="+", default=None, metavar="FIELD=VALUE",
                   help="override config fields by dotted name (values parsed as JSON, else strings)")
    t.add_argument("--config", default=None, metavar="FILE", help="overrides from a .toml or .json file (before --set)")
    t.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="output folder (default runs/MODEL-PRESET-seedS); must be new or empty")
    t.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out folder")
    t.add_argument("--backend", default="numpy", help="one of the model's backends (numpy, numba, ...; default numpy)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_train)

    g = sub.add_parser("golden", help="export or compare golden vectors")
    gs = g.add_subparsers(dest="golden_command", required=True)
    ge = gs.add_parser("export", help="write a golden .npz file (format version 2)")
    ge.add_argument("model", choices=names)
    ge.add_argument("--seed", type=int, default=0)
    ge.add_argument("--out", required=True)
    ge.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ge.add_argument("--config", default=None,
                    help="a configuration of the golden suite (`refimpl golden suite --list`; default: default)")
    ge.set_defaults(fn=cmd_golden_export)
    gsu = gs.add_parser("suite", help="write (or --check) the golden suite: every configuration, float64 and float32",
                        description="Write one file <model>-<config>-<dtype>.npz per configuration of the golden "
                                    "suite (seed 0) into DIR, or with --check regenerate them in memory and compare "
                                    "with DIR bit for bit (exit 1 listing the differences).")
    gsu.add_argument("--out", default=None, metavar="DIR", help="the suite's folder (the repository's: tests/data/golden)")
    gsu.add_argument("--check", action="store_true", help="compare DIR with the current code instead of writing")
    gsu.add_argument("--list", action="store_true", help="list the configurations and what each covers")
    gsu.set_defaults(fn=cmd_golden_suite)
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

    v = sub.add_parser(
        "validate", help="run the theorem checks and figures; write report.md and report.html",
        description="Run the theorem checks and figures of the chosen papers and write report.md, report.html, "
                    "results.json and the figures into --out. A run over some papers (--paper) or modules (--only) merges into "
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
    add_engine_args(v)
    v.set_defaults(fn=cmd_validate)

    r = sub.add_parser(
        "report", help="redraw report.md and report.html from a results.json (no computation)",
        description="Draw report.md and report.html again from a results.json written by refimpl validate "
                    "(format version 2) and the PNG figures beside it, without computing anything: the same bytes "
                    "validate wrote. With --out DIR elsewhere, the figures are copied there too.")
    r.add_argument("--from", dest="results", required=True, metavar="RESULTS.json",
                   help="the results.json (or its folder)")
    r.add_argument("--out", default=None, metavar="DIR", help="output folder (default: the folder of results.json)")
    r.set_defaults(fn=cmd_report)

    sw = sub.add_parser(
        "sweep", help="train a grid of configurations × seeds; table (csv, json) and plot of the final metrics",
        description="Train MODEL at every combination of the --set values and every seed (any config field by "
                    "its dotted name; every value is checked by the model's config before anything runs), with the "
                    "computations cached in OUT/.cache (a rerun or an interrupted sweep computes only the missing "
                    "runs), and write sweep.csv, sweep.json (one row per run: the swept fields, seed, each final "
                    "metric, wall time, backend, code version) and sweep.png (--metric against the first swept "
                    "field, median and bands over seeds). Serial in this process by default; --workers N|auto on "
                    "a local Dask cluster, --scheduler on an existing one.")
    sw.add_argument("model", choices=names)
    sw.add_argument("--set", action="append", nargs="+", default=None, metavar="FIELD=V1,V2",
                    help="a swept field and its comma-separated values (repeat for a grid: --set data.alpha=0.2,0.4 "
                         "--set model.m=50,100); values parsed as JSON, else strings")
    sw.add_argument("--seeds", default="0", help="seeds: 0-7, 0,3,5 or 0-3,8 (default 0)")
    sw.add_argument("--preset", default="tiny", help="the preset every run starts from (default: tiny)")
    sw.add_argument("--config", default=None, metavar="FILE", help="overrides from a .toml or .json file (before --set)")
    sw.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    sw.add_argument("--backend", default=None, help="one of the model's backends (default: numba where it has one)")
    sw.add_argument("--metric", default=None,
                    help="the metric to plot (default per model: " + ", ".join(
                        f"{n} {_models().get(n).metric}" for n in names) + ")")
    sw.add_argument("--out", required=True, metavar="DIR",
                    help="output folder: new, empty, or holding this same sweep (then resumed)")
    sw.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out of another sweep")
    sw.add_argument("--cache-dir", default=None, metavar="DIR", help="cache folder (default: OUT/.cache)")
    sw.add_argument("--no-cache", action="store_true", help="recompute every run")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    add_engine_args(sw)
    sw.set_defaults(fn=cmd_sweep)

    c = sub.add_parser("cache", help="list or prune the validation cache")
    cs = c.add_subparsers(dest="cache_command", required=True)
    for name, text in (("info", "list the entries: size, compute time, date, stale or current"),
                       ("prune", "delete stale entries (their code changed), incomplete ones and leftover temp files")):
        cp = cs.add_parser(name, help=text)
        cp.add_argument("--cache-dir", default=None, metavar="DIR", help="cache folder (default: OUT/.cache)")
        cp.add_argument("--out", default="report", help="validate's output folder (default: report)")
        cp.set_defaults(fn=cmd_cache)

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
    """Run the command line; every failure ends in ONE line on stderr (exit 2 for bad arguments or
    paths, 1 for a computation that went non-finite, 130 for Ctrl-C), never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except FloatingPointError as exc:  # NonFiniteError: a diverged run is an error, not a result
        print(f"refimpl: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError) as exc:
        msg = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"refimpl: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nrefimpl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
