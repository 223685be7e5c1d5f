"""What ``refimpl bench`` writes: the JSON record, the Markdown table, the figures, and the
comparison with a stored baseline (regression tracking, issue 16 item 4).

The record (``run.FORMAT``, version 2)::

    format    {"name": "refimpl-bench", "version": 2}
    created   ISO time;  wall_s  seconds of the whole run
    settings  quick, sizes, threads, dtypes, problems, backends, scaling, rounds, repeats (K, or
              None: chosen per row), round_s, warmup_s, gemm_n, seed
    machine   cpu_model, cpus, affinity, platform, versions, blas (threadpoolctl's pools seen by a
              child), load_before / load_after (1, 5, 15 min), not_idle
    rows      one per (problem, sizes, dtype, threads):
              problem, model, sizes ("paper" | "small" | "large"), dtype, threads, cores, config,
              flops, gemm_gflops, steps_per_round (K), rounds, order (the shuffled order of every
              round), load_before, load_after, not_idle,
              best (refimpl's fastest path), fastest_competitor,
              ratio {refimpl, competitor, rounds: per-round best ÷ competitor, median, q1, q3} or null,
              backends {name: {label, kind ("refimpl" | "competitor"), library, variant, form,
                  parity_max_rel, grad_dtype, import_s, rss_imports_mb, cold (first row of
                  its process), first_call_s,
                  first_step_s, compile_s, round_s (per-round median step time), median_s, q1_s,
                  q3_s, vs_best {median, q1, q3}, cpu_s, wall_s, cpu_per_wall, idle_cpu_s,
                  peak_rss_mb, affinity, os_threads, thread_cpus, numba_threads, torch_threads,
                  blas_pools, checks (what does not match the pinning; empty when all does),
                  gflops, peak_fraction, error (when not timed)}}
    scaling   curves {problem, backend, size, values, median_s, exponent, base, ...}
    left_out  {problem: {backend: reason}}
    comparison  (with --compare) {baseline, worse, better, missing, threshold}
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

THRESHOLD = 1.2  # a ratio more than 20% worse than the baseline's is reported


def load_record(path) -> dict:
    """A record written by ``refimpl bench --json``; ``ValueError`` (one line) otherwise."""
    from refimpl.benchmarks.run import FORMAT

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"baseline {path} does not exist")
    try:
        rec = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"baseline {path} is not a JSON file: {exc}") from None
    fmt = rec.get("format") if isinstance(rec, dict) else None
    if fmt != FORMAT:
        raise ValueError(f"baseline {path} is not a refimpl bench record of format {FORMAT} (its format: {fmt!r})")
    return rec


def write_record(record: dict, path) -> None:
    from refimpl.core.io import atomic_write_bytes

    atomic_write_bytes(Path(path), json.dumps(record, indent=1).encode())


def row_key(row: dict) -> tuple:
    return (row["problem"], row["sizes"], row["dtype"], int(row["threads"]))


def _key_text(key) -> str:
    return f"{key[0]} {key[1]} {key[2]} {key[3]}t"


# --------------------------------------------------------------------------------------------
# regression tracking
# --------------------------------------------------------------------------------------------
def competitor_ratios(row: dict) -> dict:
    """{competitor: median of refimpl-best ÷ competitor per round} for every timed competitor."""
    out = {}
    for n, b in row["backends"].items():
        vs = b.get("vs_best") or {}
        if b.get("kind") == "competitor" and vs.get("median"):
            out[n] = 1.0 / vs["median"]
    return out


def compare(record: dict, baseline: dict, threshold: float = THRESHOLD) -> dict:
    """Ratios (refimpl's best ÷ a competitor; higher is worse for refimpl) of ``record`` that are
    more than ``threshold``× the baseline's, per row and competitor: the row's headline ratio
    (``ratio.median``) and the ratio against every competitor both runs timed."""
    base = {row_key(r): r for r in baseline.get("rows", [])}
    worse, better, missing = [], [], []
    for row in record["rows"]:
        k = row_key(row)
        old = base.get(k)
        if old is None:
            missing.append({"row": _key_text(k), "where": "baseline"})
            continue
        pairs = []
        if row.get("ratio") and old.get("ratio"):
            pairs.append(("fastest competitor", old["ratio"]["median"], row["ratio"]["median"]))
        new_c, old_c = competitor_ratios(row), competitor_ratios(old)
        pairs += [(c, old_c[c], new_c[c]) for c in new_c if c in old_c]
        for what, o, n in pairs:
            item = {"row": _key_text(k), "against": what, "baseline": o, "now": n, "change": n / o}
            if n > threshold * o:
                worse.append(item)
            elif o > threshold * n:
                better.append(item)
    keys = {row_key(r) for r in record["rows"]}
    missing += [{"row": _key_text(k), "where": "this run"} for k in base if k not in keys]
    return {"threshold": threshold, "worse": worse, "better": better, "missing": missing}


def describe_comparison(findings: dict, baseline_path) -> str:
    t = findings["threshold"]
    lines = [f"comparison with {baseline_path} (ratio = refimpl best ÷ competitor; worse = grew by more than "
             f"{100 * (t - 1):.0f}%):"]
    for it in findings["worse"]:
        lines.append(f"  WORSE  {it['row']} vs {it['against']}: {it['baseline']:.3g} → {it['now']:.3g} "
                     f"(×{it['change']:.2f})")
    for it in findings["better"]:
        lines.append(f"  better {it['row']} vs {it['against']}: {it['baseline']:.3g} → {it['now']:.3g}")
    for it in findings["missing"]:
        lines.append(f"  row {it['row']} missing in {it['where']}")
    if not findings["worse"]:
        lines.append("  no ratio got worse")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# text
# --------------------------------------------------------------------------------------------
def _ms(x) -> str:
    return "–" if x is None else f"{x * 1e3:.4g}"


def _num(x, fmt=".2f") -> str:
    return "–" if x is None else format(x, fmt)


def _iqr(q) -> str:
    if not q or q.get("median") is None:
        return "–"
    return f"{q['median']:.3g} [{q['q1']:.3g}, {q['q3']:.3g}]"


def machine_text(record: dict) -> str:
    m = record["machine"]
    v = m.get("versions", {})
    blas = "; ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, "
                     f"{p.get('threading_layer')})" for p in m.get("blas", []) if p.get("internal_api") != "openmp")
    s = record["settings"]
    lines = [
        f"- CPU: {m.get('cpu_model')}; {m.get('cpus')} logical CPUs, this run's affinity {m.get('affinity')}",
        f"- BLAS (threadpoolctl, in a child): {blas or 'not recorded'}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- load average (1, 5, 15 min): before {m.get('load_before')}, after {m.get('load_after')}"
        + ("; **machine not idle** during at least one row (1-minute load above the row's cores + 0.5): "
           "absolute times are unreliable, ratios less so" if m.get("not_idle") else ""),
        f"- run: {'quick' if s.get('quick') else 'full'} profile, {s.get('sizes')} sizes, {s.get('rounds')} rounds, "
        f"K = {s.get('repeats') or 'about ' + str(s.get('round_s')) + ' s of steps'} per backend per round, "
        f"created {record.get('created')}, wall time {record.get('wall_s', 0):.0f} s",
    ]
    return "\n".join(lines)


def markdown_table(record: dict) -> str:
    """The machine, the ratio per row, every backend's numbers, and the thread speed-ups."""
    out = ["# refimpl bench", "", machine_text(record), "",
           "## Ratios", "",
           "refimpl's best path ÷ the fastest competitor, computed per round (each round times every backend once, "
           "in a shuffled order); median [interquartile range] over the rounds. Below 1: refimpl is faster.", "",
           "| problem | sizes | dtype | threads | refimpl best | ms | fastest competitor | ms | ratio | load before → after |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["rows"]:
        b = r["backends"]
        best, comp = r.get("best"), r.get("fastest_competitor")
        load = f"{r['load_before'][0]:.2f} → {r['load_after'][0]:.2f}" + (" (not idle)" if r.get("not_idle") else "")
        out.append(f"| {r['problem']} | {r['sizes']} | {r['dtype']} | {r['threads']} | {best or '–'} | "
                   f"{_ms(b[best]['median_s']) if best else '–'} | {b[comp]['label'] if comp else '–'} | "
                   f"{_ms(b[comp]['median_s']) if comp else '–'} | {_iqr(r.get('ratio'))} | {load} |")
    out += ["", "## Every backend", "",
            "median step time [IQR] over the rounds; ÷ best: per-round ratio to refimpl's best path of the row; "
            "cpu/wall: CPU time of all the process's threads ÷ wall time over the timed steps (at most the pinned "
            "cores); idle CPU: CPU time the process used between its timed batches (thread pools spinning, taking "
            "cores from the other backends); peak RSS: the process's high-water mark for the row; first call: the "
            "first loss-and-gradient call of the row (in a fresh process on its first row; later rows, marked warm, "
            "may reuse what earlier rows compiled); compile: first call + first step − 2 median steps; GFLOP/s counts "
            "refimpl's algorithm (benchmarks/flops.py), % of the GEMM rate under the same pinning; parity: largest "
            "relative difference from refimpl's NumPy path.", "",
            "| problem | sizes | dtype | thr | backend | ms [IQR] | ÷ best | cpu/wall | idle CPU s | peak RSS MB | "
            "first call s | compile s | GFLOP/s (% GEMM) | parity | note |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["rows"]:
        for n, b in r["backends"].items():
            name = b.get("label") or n
            if n == r.get("best"):
                name = f"**{name}** (best)"
            if b.get("median_s") is None:
                out.append(f"| {r['problem']} | {r['sizes']} | {r['dtype']} | {r['threads']} | {name} | – | – | – | – | – | "
                           f"{_num(b.get('first_call_s'))} | – | – | {_num(b.get('parity_max_rel'), '.1e')} | "
                           f"{(b.get('error') or '').replace('|', '/')[:120]} |")
                continue
            gf = "–" if b.get("gflops") is None else f"{b['gflops']:.2f}" + (
                f" ({100 * b['peak_fraction']:.0f}%)" if b.get("peak_fraction") else "")
            note = []
            if b.get("grad_dtype") and b["grad_dtype"] != r["dtype"]:
                note.append(f"computes in {b['grad_dtype']}")
            note += [f"pinning: {c}" for c in b.get("checks") or []]
            if b.get("cold") is False:
                note.append("warm process")
            out.append(f"| {r['problem']} | {r['sizes']} | {r['dtype']} | {r['threads']} | {name} | "
                       f"{_ms(b['median_s'])} [{_ms(b['q1_s'])}, {_ms(b['q3_s'])}] | {_iqr(b.get('vs_best'))} | "
                       f"{_num(b.get('cpu_per_wall'))} | {_num(b.get('idle_cpu_s'), '.3f')} | "
                       f"{_num(b.get('peak_rss_mb'), '.0f')} | "
                       f"{_num(b.get('first_call_s'))} | {_num(b.get('compile_s'))} | {gf} | "
                       f"{_num(b.get('parity_max_rel'), '.1e')} | {'; '.join(note)} |")
    speed = thread_speedups(record)
    if speed:
        out += ["", "## Threads", "", "Median step time at each thread count on the same (large) sizes; speed-up "
                "= 1-thread time ÷ n-thread time.", "",
                "| problem | sizes | backend | " + " | ".join(f"{t} thr ms" for t in speed["threads"]) + " | speed-up |",
                "|---|---|---|" + "---|" * (len(speed["threads"]) + 1)]
        for (p, s, n), ts in speed["rows"].items():
            base = ts.get(speed["threads"][0])
            last = ts.get(speed["threads"][-1])
            su = f"{base / last:.2f}" if base and last else "–"
            out.append(f"| {p} | {s} | {n} | " + " | ".join(_ms(ts.get(t)) for t in speed["threads"]) + f" | {su} |")
    left = record.get("left_out") or {}
    if left:
        out += ["", "Left out: " + "; ".join(f"{p}: " + ", ".join(f"{n} ({w})" for n, w in d.items())
                                         for p, d in left.items())]
    if record.get("comparison"):
        c = record["comparison"]
        out += ["", "## Against the baseline", ""]
        out += [f"- WORSE {i['row']} vs {i['against']}: {i['baseline']:.3g} → {i['now']:.3g} (×{i['change']:.2f})"
                for i in c["worse"]] or ["- no ratio got more than 20% worse"]
    return "\n".join(out) + "\n"


def thread_speedups(record: dict) -> dict:
    """{(problem, sizes, backend): {threads: median_s}} for sizes timed at more than one thread count."""
    by = {}
    for r in record["rows"]:
        if r["dtype"] != "float64":
            continue
        for n, b in r["backends"].items():
            if b.get("median_s"):
                by.setdefault((r["problem"], r["sizes"], n), {})[int(r["threads"])] = b["median_s"]
    rows = {k: v for k, v in by.items() if len(v) > 1}
    threads = sorted({t for v in rows.values() for t in v})
    return {"threads": threads, "rows": rows} if rows else {}


def summary(record: dict) -> str:
    lines = ["", "ratio = refimpl best ÷ fastest competitor per round, median [IQR] (below 1: refimpl faster):"]
    for r in record["rows"]:
        rt = r.get("ratio")
        tag = "  [machine not idle]" if r.get("not_idle") else ""
        if rt:
            lines.append(f"  {r['problem']:<12} {r['sizes']:<6} {r['dtype']:<8} {r['threads']}t  {rt['refimpl']} ÷ "
                         f"{rt['competitor']}: {_iqr(rt)}{tag}")
        else:
            lines.append(f"  {r['problem']:<12} {r['sizes']:<6} {r['dtype']:<8} {r['threads']}t  best {r.get('best')}: "
                         f"no competitor timed{tag}")
    m = record["machine"]
    lines.append(f"load {m.get('load_before')} → {m.get('load_after')}; bench wall time {record.get('wall_s', 0):.0f} s")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------
def write_outputs(record: dict, out_dir: Path) -> list[Path]:
    """``bench_table.md``, ``bench_step_times.png``, ``bench_scaling_<problem>.png`` and
    ``bench_scaling.json`` (when the record has curves) into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from refimpl.core.io import atomic_write_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    def save(fig, path):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)

    md = out_dir / "bench_table.md"
    atomic_write_bytes(md, markdown_table(record).encode())
    paths.append(md)
    first_t = min((int(r["threads"]) for r in record["rows"]), default=1)
    rows = [r for r in record["rows"] if int(r["threads"]) == first_t and r["sizes"] in ("paper", "small")]
    probs = list(dict.fromkeys(r["problem"] for r in rows))
    if probs:
        fig, axes = plt.subplots(1, len(probs), figsize=(3.6 * len(probs), 3.8), squeeze=False)
        for ax, p in zip(axes[0], probs):
            prs = [r for r in rows if r["problem"] == p]
            names = list(dict.fromkeys(n for r in prs for n, b in r["backends"].items() if b.get("median_s")))
            width = 0.8 / max(1, len(prs))
            for j, r in enumerate(prs):
                med = [r["backends"].get(n, {}).get("median_s") or np.nan for n in names]
                lo = [r["backends"].get(n, {}).get("q1_s") or np.nan for n in names]
                hi = [r["backends"].get(n, {}).get("q3_s") or np.nan for n in names]
                x = np.arange(len(names)) + j * width
                med, lo, hi = (np.array(a, dtype=float) * 1e3 for a in (med, lo, hi))
                ax.bar(x, med, width, yerr=[med - lo, hi - med], label=r["dtype"], capsize=2)
            ax.set_xticks(np.arange(len(names)) + width * (len(prs) - 1) / 2, names, rotation=50, ha="right",
                          fontsize=7)
            ax.set_yscale("log")
            ax.set_title(p)
            ax.set_ylabel(f"step time (ms), {first_t} thread(s), IQR bars")
            ax.legend(fontsize=7)
        fig.tight_layout()
        save(fig, out_dir / "bench_step_times.png")
    curves = record.get("scaling") or []
    for p in dict.fromkeys(c["problem"] for c in curves):
        sizes = list(dict.fromkeys(c["size"] for c in curves if c["problem"] == p))
        fig, axes = plt.subplots(1, len(sizes), figsize=(3.4 * len(sizes), 3.2), squeeze=False)
        for ax, s in zip(axes[0], sizes):
            for c in (c for c in curves if c["problem"] == p and c["size"] == s):
                ax.loglog(c["values"], np.array(c["median_s"]) * 1e3, "o-",
                          label=f"{c['backend']} (slope {c['exponent']:.2f})")
            ax.set_xlabel(s)
            ax.set_ylabel("step time (ms)")
            ax.set_title(f"{p}: time vs {s}")
            ax.legend(fontsize=7)
        fig.tight_layout()
        save(fig, out_dir / f"bench_scaling_{p}.png")
    if curves:
        path = out_dir / "bench_scaling.json"
        atomic_write_bytes(path, json.dumps(curves, indent=1).encode())
        paths.append(path)
    return paths
