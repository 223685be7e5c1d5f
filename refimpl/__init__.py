"""refimpl: reference implementations of three theory papers on in-context learning.

Packages: ``refimpl.core`` (shared forward/backward pairs, gradcheck, golden vectors, Numba
configuration) and one package per paper (``refimpl.li2024``, ...). Importing does no computation.
"""

__version__ = "0.1.0"
