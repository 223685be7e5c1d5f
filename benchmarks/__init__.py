"""CPU benchmarks behind ``refimpl bench`` (``python -m refimpl bench``); installed as ``refimpl.benchmarks``."""
