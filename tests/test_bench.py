"""The benchmark harness (benchmarks/run.py, flops.py): parity gate, timing statistics, FLOP
counts, argument errors. Timing numbers themselves are not asserted (DESIGN.md: performance
claims come from `refimpl bench`, not from timed tests)."""

import numpy as np
import pytest

from refimpl.benchmarks import flops, run


def _lg(scale=1.0):
    return 2.0, {"W": np.array([[1.0, -2.0], [3.0, 4.0]]) * scale, "b": np.array([0.5])}


def test_parity_error_zero_for_equal_and_catches_one_entry():
    assert run.parity_error(_lg(), _lg()) == 0.0
    loss, g = _lg()
    g2 = {k: v.copy() for k, v in g.items()}
    g2["W"][1, 0] += 4e-6  # relative to max |W| = 4: 1e-6
    assert run.parity_error((loss, g), (loss, g2)) == pytest.approx(1e-6)
    assert run.parity_error((loss, g), (loss * (1 + 1e-7), g)) == pytest.approx(1e-7)


def test_parity_error_floor_for_zero_gradients():
    loss, g = _lg()
    z0 = {**g, "b_K": np.array([1e-17])}
    z1 = {**g, "b_K": np.array([-2e-17])}  # rounding noise on a zero gradient: not a mismatch
    assert run.parity_error((loss, z0), (loss, z1)) < 1e-12
    z1 = {**g, "b_K": np.array([1e-2])}  # a real error on it is
    assert run.parity_error((loss, z0), (loss, z1)) > 1


def test_parity_error_rejects_missing_keys_and_shapes():
    loss, g = _lg()
    with pytest.raises(ValueError, match="keys differ"):
        run.parity_error((loss, g), (loss, {"W": g["W"]}))
    with pytest.raises(ValueError, match="shape"):
        run.parity_error((loss, g), (loss, {"W": g["W"].T[:1], "b": g["b"]}))


def test_time_calls_statistics_and_budget():
    calls = []
    res = run.time_calls(lambda: calls.append(1), repeats=7, warmup=2, budget_s=10.0)
    assert len(calls) == 1 + 2 + 7 and res["repeats"] == 7
    assert 0 < res["min_s"] <= res["median_s"] <= res["max_s"]
    import time

    res = run.time_calls(lambda: time.sleep(0.02), repeats=1000, warmup=0, budget_s=0.1)
    assert 5 <= res["repeats"] < 20  # stops once the budget is spent, but never below 5 repeats


def test_gemm_peak_is_a_rate():
    assert 0.05 < run.gemm_peak("float64", n=200, repeats=2) < 1e4


@pytest.mark.parametrize("model,size", [("li2024", "B"), ("yang2024", "B"), ("huang2023", "B"),
                                        ("huang2023_C", "M")])
def test_flops_split_into_a_per_item_part_and_a_fixed_part(model, size):
    """Work per prompt (or per count vector) is constant: f(4n) − f(2n) = 2 (f(2n) − f(n))."""
    from refimpl.benchmarks.problems import DEFAULT_SIZES

    cfg = dict(DEFAULT_SIZES[model])
    f = {n: flops.step_flops(model, {**cfg, size: n}) for n in (8, 16, 32)}
    assert f[32] - f[16] == 2 * (f[16] - f[8]) > 0


def test_li2024_flops_match_the_matrix_products_of_the_reference():
    """Count the multiply-adds of refimpl/li2024/model.py's products one by one at a small size."""
    B, l, d, m = 3, 5, 7, 11
    mac_fwd = [B * d * d, B * d * d, B * d * l, B * d * l, B * d * d, B * m * d, B * m]
    mac_bwd = [m * B * d, B * m * d, d * B * d, B * d * d, B * d * l, B * d * l, d * B * d, B * d * d, d * B * d]
    assert flops.breakdown("li2024", dict(B=B, l=l, d=d, m=m))["matmul"] == 2 * (sum(mac_fwd) + sum(mac_bwd))


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown model"):
        flops.step_flops("gpt5", {})
    with pytest.raises(ValueError, match="unknown backend"):
        run.select_backends(["numpy", "cuda"])
    with pytest.raises(ValueError, match="unknown model"):
        run.main(["li2024", "bert"])
    with pytest.raises(ValueError, match="threads"):
        run.main(["li2024"], threads=[0])
    with pytest.raises(ValueError, match="dtype"):
        run.main(["li2024"], dtypes=["float16"])


def test_markdown_table_has_one_row_per_model_dtype_threads():
    recs = [{"model": "li2024", "dtype": dt, "threads": th, "backend": b, "median_s": t, "peak_fraction": 0.4,
             "peak_gflops": 70.0}
            for dt, th in (("float64", 1), ("float32", 1), ("float64", 2))
            for b, t in (("numba", 1e-4), ("torch_eager", 1e-3))]
    recs.append({"model": "li2024", "dtype": "float64", "threads": 1, "backend": "jax_jit", "median_s": None,
                 "error": "absent"})
    md = run.markdown_table({"records": recs})
    rows = [line for line in md.splitlines() if line.startswith("| li2024")]
    assert len(rows) == 3 and "jax_jit" not in md
    assert rows[0].split("|")[4:6] == [" 0.1 ", " 1 "]
