"""JSON helpers of the validation runner: config hashing and strict JSON output."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path


def jsonable(obj):
    """``json.dumps(default=...)`` for configurations: arrays, paths and dataclasses."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def strict(obj):
    """Plain JSON values: arrays become lists, and non-finite floats (inf for "never reached",
    nan for "not measured") become null, so strict JSON readers accept results.json."""
    if isinstance(obj, dict):
        return {str(k): strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return strict(obj.tolist())
    if hasattr(obj, "__dataclass_fields__"):
        return strict(asdict(obj))
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
