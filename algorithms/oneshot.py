"""One-shot programming: open loop from the nominal step size, no verify.

The change ``T - W0`` (``W0`` read once when ``read_first``, else taken as 0, a freshly
reset array) becomes pulse counts from the nominal ``dw_min`` alone. ``via="pulse"``
sends ``round((T - W0) / dw_min)`` single-device pulses to each cell in one iteration;
``via="update"`` writes column by column with one-hot update cycles, ``update(e_j,
-(T - W0)[:, j] / c, 1)``, in ``c = ceil(max|T - W0| / (bl dw_min))`` passes of one
iteration each so that no cycle saturates. ``"auto"`` pulses where the tile can.
Device-to-device spread, cycle noise and pulse-count noise all stay in the result: it is
the floor a closed loop improves on. ``read`` and ``over_sampling`` left at None derive from
the nominal periphery (:func:`progsim_algorithms._model.read_plan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from . import _model, _reads
from progsim.programming import Boolean, Interval, Options, OrNone, Step, check_options, option


@dataclass(frozen=True)
class OneShot:
    """``one-shot``: nominal pulse counts, applied once."""

    name: ClassVar[str] = "one-shot"
    via: str = option("auto", Options("auto", "pulse", "update"))
    read_first: bool = option(True, Boolean())
    read: str | None = option(None, OrNone(Options(*_reads.METHODS)))
    over_sampling: int | None = option(None, OrNone(Interval(1, None, integral=True)))
    seed: int = option(0, Interval(0, None, integral=True))

    def __post_init__(self):
        check_options(self)

    def program(self, tile, target):
        via = self.via if self.via != "auto" else ("pulse" if hasattr(tile, "pulse") else "update")
        if via == "pulse" and not hasattr(tile, "pulse"):
            raise TypeError("one-shot with via='pulse' needs a tile that offers pulse(); use via='update'.")
        rng = np.random.default_rng(self.seed)
        read, over_sampling = _model.read_plan(tile, self.read, self.over_sampling)
        w0 = _reads.read(tile, read, over_sampling, rng) if self.read_first else 0.0
        change = target - w0
        if via == "pulse":
            n = np.rint(change / _model.dw_min(tile)).astype(np.int64)
            rows, cols = np.nonzero(n)
            tile.pulse(rows, cols, n[rows, cols])
            yield Step()
            return
        limit = _model.max_step(tile)
        passes = max(1, math.ceil(np.abs(change).max() / limit)) if math.isfinite(limit) else 1
        eye = np.eye(tile.shape[1])
        for _ in range(passes):
            tile.update(eye, -change.T / passes, 1.0)
            yield Step()
