"""Write-verify: the classical closed-loop baseline with single-device pulses.

Each iteration is one verify round over the whole array: read the weights, and give every
cell farther than ``tol_steps`` nominal steps from its target ``n = round(gain * (T - W~) /
dw_min)`` single-device pulses (at most ``max_pulses_per_round`` per cell), through the
tile's ``pulse(rows, cols, n)``, cell after cell as a device-by-device programmer would.
The run ends by itself when a read finds every cell within tolerance, or its error at or
below ``observed_tol`` (with noisy reads, give it ``max_iter``: some cell always reads out of
tolerance). Pulses are serial on hardware: compare ``pulses_single`` with
the parallel algorithms' ``update_cycles``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from . import _model, _reads
from progsim.programming import Interval, Options, OrNone, Step, check_options, option


@dataclass(frozen=True)
class WriteVerify:
    """``write-verify``: read, pulse every out-of-tolerance cell, repeat.

    Options left at None derive from the tile's nominal configuration: ``read`` and
    ``over_sampling`` by :func:`progsim_algorithms._model.read_plan` (Hadamard reads
    resolving one ``dw_min`` on a noisy periphery); ``gain = 1 / (1 + dw_min_dtod)``, so a
    cell whose step is one device-to-device spread above nominal lands on its target
    instead of overshooting; ``max_pulses_per_round`` the pulses that cross the nominal
    range, ``(w_max - w_min) / dw_min`` (no cap on an unbounded device).
    """

    name: ClassVar[str] = "write-verify"
    max_iter: ClassVar[int] = 40  # the run length program() gives it by default
    read: str | None = option(None, OrNone(Options(*_reads.METHODS)))
    over_sampling: int | None = option(None, OrNone(Interval(1, None, integral=True)))
    tol_steps: float = option(1.0, Interval(0.0, None))
    gain: float | None = option(None, OrNone(Interval(0.0, 1.0, closed="right")))
    max_pulses_per_round: int | None = option(None, OrNone(Interval(1, None, integral=True)))
    observed_tol: float | None = option(None, OrNone(Interval(0.0, None, closed="neither")))
    seed: int = option(0, Interval(0, None, integral=True))

    def __post_init__(self):
        check_options(self)

    def _gain(self, tile) -> float:
        if self.gain is not None:
            return self.gain
        return 1.0 / (1.0 + _model.nominal(tile, "device", "dw_min_dtod", 0.0))

    def _cap(self, tile) -> float:
        if self.max_pulses_per_round is not None:
            return self.max_pulses_per_round
        span = _model.nominal(tile, "device", "w_max", math.inf) - _model.nominal(tile, "device", "w_min", -math.inf)
        return math.ceil(span / _model.dw_min(tile)) if math.isfinite(span) else np.iinfo(np.int64).max

    def program(self, tile, target):
        if not hasattr(tile, "pulse"):
            raise TypeError("write-verify needs a tile that offers single-device pulse(rows, cols, n).")
        rng = np.random.default_rng(self.seed)
        read, over_sampling = _model.read_plan(tile, self.read, self.over_sampling)
        step = _model.dw_min(tile)
        gain, cap = self._gain(tile), self._cap(tile)
        norm = float(np.linalg.norm(target)) or 1.0
        while True:
            error = target - _reads.read(tile, read, over_sampling, rng)
            err_obs = float(np.linalg.norm(error) / norm)
            if self.observed_tol is not None and err_obs <= self.observed_tol:
                return
            n = np.rint(np.clip(gain * error / step, -cap, cap))
            n[np.abs(error) <= self.tol_steps * step] = 0
            n = n.astype(np.int64)
            rows, cols = np.nonzero(n)
            if rows.size == 0:
                return
            tile.pulse(rows, cols, n[rows, cols])
            yield Step(err_obs, {"cells_pulsed": int(rows.size)})
