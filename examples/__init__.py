"""PyTorch and JAX implementations of every model, written as a user of each library would write
them: the code refimpl is checked against (``tests/test_parity_*.py``) and the competitors that
``refimpl bench`` times. Installed as ``refimpl.examples``; in the repository, ``examples/``.

``examples/torch/<problem>.py`` and ``examples/jax/<problem>.py``, one file per benchmark problem
(``refimpl.models.bench_problems()``: li2024, yang2024, huang2023, huang2023_C, transformer). None
of them imports anything from refimpl: they take parameters as a dict of NumPy arrays keyed by the
paper's names (what ``refimpl golden export`` writes, or ``refimpl.testing.golden`` returns) and
give back tensors keyed the same way.

What each file provides (the benchmark harness, ``benchmarks/competitors.py``, relies on it):

torch
    ``Model(params, **options)``: an ``nn.Module`` holding ``params`` (trainable ones as
    ``nn.Parameter``, fixed ones as buffers); ``model.compute_loss(batch) -> (loss, outputs)`` on a
    dict of tensors; ``model.paper_arrays(grads=False)``: its tensors (or their gradients) as NumPy
    arrays keyed by the paper's names. Training is ``common.make_optimizer`` (``torch.optim.SGD`` /
    ``torch.optim.Adam`` with ``fused=True``) and ``common.train_step``; ``torch.compile`` of
    ``model.compute_loss`` is the compiled variant.
jax
    ``loss(params, batch, **options) -> (loss, outputs)``, a pure function of a dict of arrays;
    ``common.make_train_step`` jits ``value_and_grad`` plus a functional SGD / Adam update
    (``common.sgd``, ``common.adam``; no optax) with the parameter and optimiser buffers donated.

A file with more than one way to write the same model lists them in ``FORMS`` (form name ->
``Model`` or ``loss``); li2024 has ``"naive"`` (the formula in the order a user writes it:
keys, queries, values, scores, weighted sum) and ``"matched"`` (refimpl's contraction order,
s = Cᵀ(W_Kᵀ u), v = W_V(C σ): the same algebra with fewer FLOPs), so the benchmark can tell a
better algorithm from a better implementation. A model whose loss computes extra reports only on
request has ``outputs(...)`` next to ``loss`` / ``compute_loss``.
"""
