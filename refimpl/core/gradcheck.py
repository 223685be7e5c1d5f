"""Central finite-difference gradient checks (float64).

For a scalar function ``f(inputs)`` and claimed gradients ``grads``, each tensor is checked either
entry by entry (small tensors) or along random unit directions (large tensors, or on request):

    numeric  = (f(x + ε v) − f(x − ε v)) / (2ε)          central difference, error O(ε²)
    analytic = ⟨g, v⟩
    pass iff |numeric − analytic| ≤ atol + rtol · Σ_i |g_i v_i|

The scale Σ|g_i v_i| is the magnitude of the terms of the dot product (for an entry, |g_i|), so
``rtol`` is a relative error that does not become meaningless when ⟨g, v⟩ cancels. A failure names
the tensor, the entry or direction, both values and the error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np


class GradcheckError(AssertionError):
    """Raised by :meth:`GradcheckReport.raise_if_failed` with the full report in the message."""


@dataclass
class TensorCheck:
    name: str
    mode: str  # "entries" or "directions"
    n_checked: int
    max_abs_err: float
    max_rel_err: float  # |num − ana| / max(scale, tiny), worst over the checks
    worst: str  # the entry index or direction number of the worst check
    worst_numeric: float
    worst_analytic: float
    passed: bool


@dataclass
class GradcheckReport:
    checks: list[TensorCheck] = field(default_factory=list)
    eps: float = 0.0
    rtol: float = 0.0
    atol: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def __str__(self) -> str:
        lines = [f"gradcheck (central differences, eps={self.eps:g}, rtol={self.rtol:g}, atol={self.atol:g})"]
        for c in self.checks:
            flag = "ok  " if c.passed else "FAIL"
            lines.append(
                f"  {flag} {c.name:<12} {c.mode:<10} n={c.n_checked:<4} max_abs_err={c.max_abs_err:.3e} "
                f"max_rel_err={c.max_rel_err:.3e} worst at {c.worst}: numeric={c.worst_numeric:.12e} "
                f"analytic={c.worst_analytic:.12e}"
            )
        return "\n".join(lines)

    def raise_if_failed(self) -> GradcheckReport:
        if not self.passed:
            raise GradcheckError(str(self))
        return self


def gradcheck(
    f: Callable[[Mapping[str, np.ndarray]], float],
    inputs: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    *,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    atol: float = 1e-10,
    max_entries: int = 64,
    n_directions: int = 16,
    rng: np.random.Generator | None = None,
) -> GradcheckReport:
    """Check ``grads[name]`` against central differences of ``f`` for every name in ``grads``.

    ``f`` takes a dict of arrays (``inputs`` with one entry perturbed) and returns a float. Tensors
    with at most ``max_entries`` entries are checked entry by entry, larger ones along
    ``n_directions`` random unit directions drawn from ``rng``. Inputs are copied, never modified.
    Returns a :class:`GradcheckReport`; call ``.raise_if_failed()`` in tests.
    """
    if eps <= 0 or rtol < 0 or atol < 0:
        raise ValueError(f"eps must be > 0 and rtol, atol ≥ 0; got eps={eps}, rtol={rtol}, atol={atol}")
    rng = np.random.default_rng(0) if rng is None else rng
    base = {k: np.array(v, dtype=np.float64, copy=True) for k, v in inputs.items()}
    report = GradcheckReport(eps=eps, rtol=rtol, atol=atol)
    for name, g in grads.items():
        if name not in base:
            raise KeyError(f"gradient {name!r} has no matching input; inputs are {sorted(base)}")
        x0 = base[name]
        g = np.asarray(g, dtype=np.float64)
        if g.shape != x0.shape:
            raise ValueError(f"gradient {name!r} has shape {g.shape}, input has {x0.shape}")

        def directional(v: np.ndarray, name=name, x0=x0) -> float:
            plus = dict(base)
            plus[name] = x0 + eps * v
            minus = dict(base)
            minus[name] = x0 - eps * v
            return (float(f(plus)) - float(f(minus))) / (2.0 * eps)

        results = []  # (abs_err, rel_err, label, numeric, analytic, ok)
        if x0.size <= max_entries:
            mode = "entries"
            for idx in np.ndindex(*x0.shape):
                v = np.zeros_like(x0)
                v[idx] = 1.0
                num, ana, scale = directional(v), float(g[idx]), abs(float(g[idx]))
                results.append(_judge(num, ana, scale, rtol, atol, str(idx)))
        else:
            mode = "directions"
            for k in range(n_directions):
                v = rng.standard_normal(x0.shape)
                v /= np.linalg.norm(v)
                num, ana = directional(v), float(np.sum(g * v))
                scale = float(np.sum(np.abs(g * v)))
                results.append(_judge(num, ana, scale, rtol, atol, f"direction {k}"))
        worst = max(results, key=lambda r: (not r[5], r[1]))
        report.checks.append(
            TensorCheck(
                name=name, mode=mode, n_checked=len(results),
                max_abs_err=max(r[0] for r in results), max_rel_err=max(r[1] for r in results),
                worst=worst[2], worst_numeric=worst[3], worst_analytic=worst[4],
                passed=all(r[5] for r in results),
            )
        )
    return report


def _judge(num, ana, scale, rtol, atol, label):
    err = abs(num - ana)
    rel = err / max(scale, 1e-300)
    return err, rel, label, num, ana, bool(err <= atol + rtol * scale)
