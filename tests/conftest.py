"""Shared pytest/hypothesis configuration (DESIGN.md, "Tests").

Profiles:

- ``ci``: derandomized (the same examples on every run, so CI failures reproduce), no deadline,
  failing examples printed with a reproduction blob. Selected when the environment has CI=true.
- ``dev``: random examples (new ones every run, more coverage over time), no deadline.

Both suppress hypothesis' ``too_slow`` health check: several strategies here draw whole
parameter sets and prompt batches (a few hundred floats per example), and the first example of a
Numba test includes the kernel load/compile, which hypothesis would otherwise flag as slow data
generation. Deadlines are off for the same reason (JIT compilation, NUMBA_DISABLE_JIT runs).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SUPPRESSED = [HealthCheck.too_slow]

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True, suppress_health_check=_SUPPRESSED
)
settings.register_profile("dev", deadline=None, suppress_health_check=_SUPPRESSED)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
