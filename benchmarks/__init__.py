"""CPU benchmarks behind ``refimpl bench``; installed as ``refimpl.benchmarks``.

- ``problems/``: one module per benchmark problem (``refimpl.models.bench_problems()``): sizes,
  options, the problem's arrays, refimpl's reference step, the FLOP count;
- ``backends.py``: the backends of a problem, from the registry and the example files;
- ``competitors.py``: the PyTorch and JAX examples (``refimpl.examples``) behind the runner
  interface;
- ``run.py``: the harness (one pinned process per backend, parity, shuffled rounds, ratios);
  ``worker.py``: its child process; ``report.py``: the record, the table, figures, the
  comparison with a baseline; ``flops.py``: the FLOP table's dispatch.
"""
