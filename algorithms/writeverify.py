"""Write-verify: the classical closed-loop baseline with single-device pulses.

Each iteration is one verify round over the whole array: read the weights, and give every
cell farther than ``tol_steps`` nominal steps from its target ``n = round(gain * (T - W~) /
dw_min)`` single-device pulses (at most ``max_pulses_per_round`` per cell), through the
tile's ``pulse(rows, cols, n)``, cell after cell as a device-by-device programmer would.
The run ends by itself when a read finds every cell within tolerance, or its error at or
below ``observed_tol``. Pulses are serial on hardware: compare ``pulses_single`` with
the parallel algorithms' ``update_cycles``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from . import _model, _reads
from progsim.programming import Interval, Options, OrNone, Step, check_options, option


@dataclass(frozen=True)
class WriteVerify:
    """``write-verify``: read, pulse every out-of-tolerance cell, repeat."""

    name: ClassVar[str] = "write-verify"
    read: str = option("eye", Options(*_reads.METHODS))
    over_sampling: int = option(1, Interval(1, None, integral=True))
    tol_steps: float = option(1.0, Interval(0.0, None))
    gain: float = option(1.0, Interval(0.0, 1.0, closed="right"))
    max_pulses_per_round: int = option(64, Interval(1, None, integral=True))
    observed_tol: float | None = option(None, OrNone(Interval(0.0, None, closed="neither")))
    seed: int = option(0, Interval(0, None, integral=True))

    def __post_init__(self):
        check_options(self)

    def program(self, tile, target):
        if not hasattr(tile, "pulse"):
            raise TypeError("write-verify needs a tile that offers single-device pulse(rows, cols, n).")
        rng = np.random.default_rng(self.seed)
        step = _model.dw_min(tile)
        norm = float(np.linalg.norm(target)) or 1.0
        while True:
            error = target - _reads.read(tile, self.read, self.over_sampling, rng)
            err_obs = float(np.linalg.norm(error) / norm)
            if self.observed_tol is not None and err_obs <= self.observed_tol:
                return
            n = np.rint(self.gain * error / step)
            n[np.abs(error) <= self.tol_steps * step] = 0
            n = np.clip(n, -self.max_pulses_per_round, self.max_pulses_per_round).astype(np.int64)
            rows, cols = np.nonzero(n)
            if rows.size == 0:
                return
            tile.pulse(rows, cols, n[rows, cols])
            yield Step(err_obs, {"cells_pulsed": int(rows.size)})
