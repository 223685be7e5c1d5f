"""Numerical checks of spec L's claims (L13–L17, figures E1–E7): one function per claim.

Each ``check_*`` function measures, states its expectation (the thresholds are module constants or
arguments defined beside it, where a reader sees them) and returns a :class:`refimpl.core.claims.Claim`
with the measured numbers, the expectation and a verdict. The numbers needed for the figures are
in ``claim.numbers``. Checks that need trained models take ``fit(cfg, seed, **train_kwargs)``,
a function returning a :class:`refimpl.core.trajectory.Trajectory`; ``refimpl validate`` passes one
that caches, tests use :func:`plain_fit` on small configurations.

One module per validation module (``validation/li2024/<name>.py``) and per test file
(``tests/test_li2024_checks_<name>.py``):

==================  ===============================================================================
module              claims
==================  ===============================================================================
``training``        L13 (a) unseen-task error, L16 attention rise (the default training run)
``generalization``  L13 (b) coverage, (c) iterations vs α, (d) training and test lengths vs α
``ood``             L14 S1 ≥ 1 and its negative control (E1), E2 error vs l_ts for several α'
``classical``       E3 in-context learning vs classical learners
``pruning``         L15 (i)–(iv), E4, E5
``mechanism``       L16 (Proposition 1), L17 (Proposition 2), E6
``deep``            E1, E2, E7 with the 3-layer GPT-2 of spec T
``paper``           the paper's values of the rows (``PaperValue``), and the numbers the figures draw
==================  ===============================================================================

Model math the checks use lives model-side: ``refimpl.li2024.metrics`` (test-time error, hinge,
attention, error curves), ``refimpl.li2024.pruning`` (spec L9 masks), ``refimpl.li2024.classical``
(the E3 learners); every statistic is in ``refimpl.core.stats``.
"""

from refimpl.li2024.checks import classical, deep, generalization, mechanism, ood, paper, pruning, training
from refimpl.li2024.checks._common import Fit, first_length_below, fmt, plain_fit

__all__ = ["training", "generalization", "ood", "classical", "pruning", "mechanism", "deep", "paper",
           "Fit", "plain_fit", "fmt", "first_length_below"]
