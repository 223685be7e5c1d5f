"""The one record every model's ``train`` returns (and the CLI saves).

``history`` holds one entry per optimiser step (the values before that step's update);
``records`` holds the measurements taken every so often (evaluations, population quantities),
each array indexed like ``records["step"]``. Model-specific objects (the data model's instance,
the closed-form optimum, ...) go in ``data`` and ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Trajectory:
    """The result of ``train``: final parameters, the per-step history and the periodic records.

    =============  =====================================================================
    field          meaning
    =============  =====================================================================
    model          registry name of the model
    config         the configuration trained (a frozen config object)
    seed           the seed every random draw came from (None when given generators)
    params         final parameters (dict of arrays, keyed like ``init_params``)
    history        per optimiser step: ``step`` (T,), ``loss`` (T,), and model-specific
                   per-step values (e.g. ``error``, ``lr``, ``step_time``)
    records        periodic measurements: ``step`` (R,) and one (R, ...) array per metric
    backend        the backend that computed the gradients
    wall_s         wall-clock seconds of the whole run
    snapshots      step -> params copies (when asked for)
    stopped_at     the record step at which an early-stop condition held, else None
    data           the fixed data objects of the run (``make_data``), if any
    extra          anything else the model reports (documented by its ``train``)
    =============  =====================================================================
    """

    model: str
    config: Any
    seed: int | None
    params: dict
    history: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)
    backend: str = "numpy"
    wall_s: float = 0.0
    snapshots: dict = field(default_factory=dict)
    stopped_at: int | None = None
    data: Any = None
    extra: dict = field(default_factory=dict)

    @property
    def steps_done(self) -> int:
        """Number of optimiser steps taken."""
        return int(len(self.history.get("loss", ())))

    def final(self, name: str) -> float:
        """The last recorded value of ``name`` (a ``records`` key, else a ``history`` key)."""
        src = self.records if name in self.records else self.history
        if name not in src:
            raise KeyError(f"{name!r} is neither a record nor a history key; records: {sorted(self.records)}, "
                           f"history: {sorted(self.history)}")
        return float(np.asarray(src[name])[-1])

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array as ``param/*``, ``history/*``, ``records/*`` (for ``np.savez``)."""
        out = {f"param/{k}": np.asarray(v) for k, v in self.params.items()}
        out.update({f"history/{k}": np.asarray(v) for k, v in self.history.items()})
        out.update({f"records/{k}": np.asarray(v) for k, v in self.records.items()
                    if np.asarray(v).dtype != object})
        return out
