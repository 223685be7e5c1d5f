"""CPU benchmarks: ``python -m benchmarks`` or ``refimpl bench``."""
