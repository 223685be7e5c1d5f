"""The errors refimpl raises beyond ``ValueError``/``TypeError`` for bad arguments."""

from __future__ import annotations

import numpy as np


class NonFiniteError(FloatingPointError):
    """A loss, output, gradient or parameter became NaN or ±inf.

    Raised by every backend, in the step where it first happens: a non-finite number is never
    returned as if it were a result. ``tensor`` names the quantity, ``step`` the optimiser step
    (None outside training)."""

    def __init__(self, tensor: str, step: int | None = None, value=None, hint: str = ""):
        self.tensor, self.step, self.value = tensor, step, value
        where = f" at step {step}" if step is not None else ""
        shown = f" ({value})" if value is not None else ""
        msg = f"{tensor} is not finite{where}{shown}"
        super().__init__(msg + (f"; {hint}" if hint else ""))


def check_finite(name: str, x, *, step: int | None = None, hint: str = ""):
    """Return ``x`` unchanged, or raise :class:`NonFiniteError` naming ``name`` if any entry of it
    is NaN or ±inf (``x`` a number, an array, or a dict of arrays: then each entry is named)."""
    if isinstance(x, dict):
        for k, v in x.items():
            check_finite(f"{name}[{k!r}]", v, step=step, hint=hint)
        return x
    a = np.asarray(x)
    if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        bad = a.reshape(-1)[~np.isfinite(a.reshape(-1))][0]
        raise NonFiniteError(name, step, bad, hint)
    return x
