"""CPU benchmarks: ``refimpl bench`` or ``python -m refimpl.benchmarks``; installed as ``refimpl.benchmarks``."""
