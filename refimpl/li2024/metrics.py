"""Test-time measurements for spec L: error and hinge loss on many fresh prompts, in chunks."""

from __future__ import annotations

import numpy as np

from refimpl.core.stats import clopper_pearson  # noqa: F401 (re-exported)
from refimpl.li2024.data import Instance, sample_batch
from refimpl.li2024.model import predict
from refimpl.li2024.train import attention_same_pattern


def measure(params, inst: Instance, n: int, rng, *, tasks="unseen", l=None, alpha=None,
               options: dict | None = None, keep=None, chunk: int = 2000) -> dict:
    """Classification error (z F ≤ 0), mean hinge loss and same-pattern attention on ``n`` fresh
    prompts of ``tasks`` (spec L10, L16). Returns counts, rates and a 95% Clopper–Pearson interval."""
    opts = {k: v for k, v in (options or {}).items() if k in ("attend_to_query", "relu_at_zero")}
    errors, hinge, attn, done = 0, 0.0, 0.0, 0
    while done < n:
        b = min(chunk, n - done)
        batch = sample_batch(inst, b, rng, tasks=tasks, l=l, alpha=alpha)
        F, sig = predict(params, batch["P"], keep=keep, **opts)
        zF = batch["z"] * F
        errors += int(np.sum(zF <= 0))
        hinge += float(np.sum(np.maximum(0.0, 1.0 - zF)))
        attn += float(np.sum(attention_same_pattern(sig, batch["pattern"])))
        done += b
    lo, hi = clopper_pearson(errors, n)
    return {"n": n, "errors": errors, "error": errors / n, "error_ci95": (lo, hi),
            "hinge": hinge / n, "attn_same": attn / n}
