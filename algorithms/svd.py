"""Rank-one programming from the SVD of the observed error.

``svd``: read ``W~``, take the top singular triplet ``(s, u, v)`` of ``E = W~ - T`` and
apply it as one rank-one pulsed update ``update(v sqrt(s), u sqrt(s), 1)``, whose expected
change is ``-s u v^T``. Between reads the algorithm keeps its own prediction of the error
(``E`` minus the expected changes applied) and decomposes that: ``k = 1`` re-reads before
every update, ``k = K`` every ``K`` updates (the next components of the same read),
``k = None`` (the default) when the predicted error has no component left worth applying.

A component is worth applying when it moves some cell by half a nominal step
(``s max|u| max|v| >= dw_min / 2``) and stands above the read noise, ``s >
sigma (sqrt(m) + sqrt(n))``, the largest singular value of an ``m x n`` matrix of
independent read errors of the nominal cell standard deviation ``sigma``
(:func:`progsim_algorithms._model.read_cell_std`); below it a component cannot be told
from noise. And it must remove more than it writes: applying it lowers the squared error
by ``s^2`` and adds the predicted variance of its pulses
(:func:`progsim_algorithms._model.cycles_variance`: pulse-count noise, cycle-to-cycle
noise, the unknown per-cell step spread), so it is applied only while ``s^2`` exceeds that
variance summed over the cells. A rank-one update touches every cell, so on a full-rank
error the small components write more noise than they remove.

A component whose largest cell change ``s max|u| max|v|`` exceeds what one cycle can give,
``bl * dw_min`` (nominal), is split into ``c`` identical cycles of ``s / c`` each, so that
no firing probability saturates and the expected change stays ``-s u v^T``. ``step`` scales
the component (``1`` removes it; below 1 damps noisy reads). The run ends by itself when a
fresh read has no component worth applying, or its error is at or below ``observed_tol``.

Defaults derived from the tile's nominal configuration
(:func:`progsim_algorithms._model.read_plan`): ``read`` is ``"hadamard"`` on a noisy
periphery (``"eye"`` on a perfect one), ``over_sampling`` the smallest that brings a cell's
read standard deviation down to one ``dw_min``; ``k`` (None) re-reads when the read's
components are spent; the split into cycles follows ``bl * dw_min``.

Cells that do not respond are left alone: between reads the algorithm adds up the change
it pushed on each cell; once that sum exceeds ``stuck_after`` nominal steps plus four read
standard deviations and four of the predicted write noise of the pushes
(:func:`progsim_algorithms._model.cycles_variance`), a cell that moved by less than a
tenth of it is marked stuck in that
direction (at a bound, or dead) and, while the target still asks for that direction, its
error is measured from the level where it stopped instead of from the target (so other
components that push it away are undone, and it is not pushed further); a cell that moved
is cleared. Without this the
top component of an array with a few stuck cells is the stuck cells, every iteration.

``svd-hs`` plans the same component but predicts the half-selection disturb of the tile's
scheme from its nominal configuration (``tile.half_select``, ``tile.pulses``,
``tile.device.dw_min``; never per-cell state), see :mod:`progsim_algorithms._model`:

* V/2 bias on a mixed-sign rank-one update shrinks every cell's change by about
  ``2 strength prob`` (the half-pulses of its own quadrant and of the two quadrants sharing
  one of its lines cancel except for the coincident slots), so ``svd-hs`` scales the
  update by a gain ``g`` chosen so that the predicted total change (coincidences plus
  disturb) has the component's size along it: ``g <- g <C, C> / <C, P(g)>`` for the wanted
  change ``C = -s u v^T`` and predicted change ``P(g)``, iterated (``P`` is not linear in
  ``g``: the disturb grows with the train lengths, as ``sqrt(g)``).
* What the gain cannot fix (row and column shifts of single-signed vectors, V/3's
  opposite disturb of cells on no firing line) stays in the predicted error that the next
  components (``k > 1``) are taken from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.linalg

from . import _model, _reads
from progsim.programming import Interval, Options, OrNone, Step, check_options, option

POSITIVE_OR_NONE = OrNone(Interval(0.0, None, closed="neither"))


def _top_component(matrix):
    """Top singular triplet ``(s, u, v)``; LAPACK's divide-and-conquer driver (numpy's) can
    fail to converge on some matrices, the QR-iteration driver then answers."""
    try:
        u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    except np.linalg.LinAlgError:
        u, s, vt = scipy.linalg.svd(matrix, full_matrices=False, lapack_driver="gesvd")
    return float(s[0]), u[:, 0], vt[0]


# a cell that moves by less than this share of the change pushed on it is stuck; cells with a
# step far below nominal (the tail of the device-to-device spread) still move by more
FOLLOWED = 0.1


class _StuckCells:
    """Cells that did not follow the changes pushed on them (see the module doc)."""

    def __init__(self, tile, stuck_after: float | None, read_std: float):
        self.enabled = stuck_after is not None
        self.threshold = (stuck_after or 0.0) * _model.dw_min(tile) + 4.0 * read_std
        self.direction = np.zeros(tile.shape)  # +1: will not go up, -1: will not go down
        self.push = np.zeros(tile.shape)
        self.push_var = np.zeros(tile.shape)
        self.level = np.zeros(tile.shape)  # where a stuck cell stopped (its read value)
        self.reference = None

    def pushed(self, change, variance):
        self.push += change
        self.push_var += variance

    def observe(self, w):
        if not self.enabled:
            return
        if self.reference is None:
            self.reference = w.copy()
            return
        judged = np.abs(self.push) >= self.threshold + 4.0 * np.sqrt(self.push_var)
        followed = (w - self.reference) * np.sign(self.push) >= FOLLOWED * np.abs(self.push)
        self.direction[judged] = np.where(followed[judged], 0.0, np.sign(self.push[judged]))
        self.level[judged] = w[judged]
        self.reference[judged] = w[judged]
        self.push[judged] = 0.0
        self.push_var[judged] = 0.0

    def mask(self, error, target):
        """The error with stuck cells' entries, where the target asks for the refused direction,
        measured from the level the cell stopped at instead of the target."""
        return np.where(self.direction * -np.sign(error) > 0, error + target - self.level, error)


@dataclass(frozen=True)
class SVD:
    """``svd``: apply the top singular component of the observed error, one per iteration."""

    name: ClassVar[str] = "svd"
    max_iter: ClassVar[int] = 1500  # the run length program() gives it by default
    k: int | None = option(None, OrNone(Interval(1, None, integral=True)))
    read: str | None = option(None, OrNone(Options(*_reads.METHODS)))
    over_sampling: int | None = option(None, OrNone(Interval(1, None, integral=True)))
    step: float = option(1.0, Interval(0.0, 2.0, closed="neither"))
    observed_tol: float | None = option(None, POSITIVE_OR_NONE)
    stuck_after: float | None = option(10.0, OrNone(Interval(0.0, None, closed="neither")))
    seed: int = option(0, Interval(0, None, integral=True))

    def __post_init__(self):
        check_options(self)

    def program(self, tile, target):
        rng = np.random.default_rng(self.seed)
        norm = float(np.linalg.norm(target)) or 1.0
        read, over_sampling = _model.read_plan(tile, self.read, self.over_sampling)
        read_std = _model.read_cell_std(tile, read, over_sampling)
        resolution = 0.5 * _model.dw_min(tile)
        noise_sv = _model.noise_edge(tile.shape, read_std)
        stuck = _StuckCells(tile, self.stuck_after, read_std)
        predicted, since_read, err_obs = None, 0, math.nan
        while True:
            fresh = predicted is None or (self.k is not None and since_read >= self.k)
            if fresh:
                w = _reads.read(tile, read, over_sampling, rng)
                stuck.observe(w)
                predicted = w - target
                since_read = 0
                err_obs = float(np.linalg.norm(predicted) / norm)
                if self.observed_tol is not None and err_obs <= self.observed_tol:
                    return
            s, u, v = _top_component(stuck.mask(predicted, target))
            if not self._worth(tile, s, u, v, noise_sv, resolution):
                if fresh:
                    return
                predicted = None  # the prediction is spent: read again
                continue
            change, cycles = self._apply(tile, self.step * s, u, v)
            a = math.sqrt(self.step * s / cycles)
            stuck.pushed(change, _model.cycles_variance(tile, v * a, u * a, 1.0, cycles))
            predicted = predicted + change
            since_read += 1
            yield Step(err_obs, {"sv": s, "cycles": cycles})

    def _worth(self, tile, s: float, u, v, noise_sv: float, resolution: float) -> bool:
        """Whether applying ``-s u v^T`` is expected to lower the error (see the module doc)."""
        if s <= noise_sv or s * np.abs(u).max() * np.abs(v).max() < resolution:
            return False
        cycles = self._cycles(tile, s, u, v)
        a = math.sqrt(s / cycles)
        return s * s > float(_model.cycles_variance(tile, v * a, u * a, 1.0, cycles).sum())

    def _cycles(self, tile, s: float, u, v) -> int:
        peak = s * np.abs(u).max() * np.abs(v).max()
        limit = _model.max_step(tile)
        return max(1, math.ceil(peak / limit)) if math.isfinite(limit) else 1

    def _apply(self, tile, s: float, u, v):
        """Apply ``-s u v^T``; return the expected change and the number of cycles used."""
        cycles = self._cycles(tile, s, u, v)
        a = math.sqrt(s / cycles)
        tile.update(np.tile(v * a, (cycles, 1)), np.tile(u * a, (cycles, 1)), 1.0)
        return -s * np.outer(u, v), cycles


@dataclass(frozen=True)
class SVDHalfSelect(SVD):
    """``svd-hs``: ``svd`` with the update gain and error prediction of the half-selection model.

    ``max_gain`` caps the compensating gain (V/2 at ``2 strength prob`` near 1 leaves almost
    nothing of the coincident change to amplify).
    """

    name: ClassVar[str] = "svd-hs"
    max_gain: float = option(4.0, Interval(1.0, None))

    def _predict(self, tile, s, u, v, cycles):
        a = math.sqrt(s / cycles)
        x, d = v * a, u * a
        return cycles * (_model.expected_change(tile, x, d, 1.0) + _model.expected_disturb(tile, x, d, 1.0))

    def _apply(self, tile, s, u, v):
        hs = getattr(tile, "half_select", None)
        if hs is None or hs.mode == "none" or hs.strength * hs.prob == 0:
            return super()._apply(tile, s, u, v)
        wanted = -s * np.outer(u, v)
        wanted_sq = float((wanted * wanted).sum())
        gain = 1.0
        for _ in range(4):
            cycles = self._cycles(tile, gain * s, u, v)
            along = float((wanted * self._predict(tile, gain * s, u, v, cycles)).sum()) / wanted_sq
            if along <= 0:
                gain = self.max_gain
                break
            gain = min(gain / along, self.max_gain)
        cycles = self._cycles(tile, gain * s, u, v)
        a = math.sqrt(gain * s / cycles)
        tile.update(np.tile(v * a, (cycles, 1)), np.tile(u * a, (cycles, 1)), 1.0)
        return self._predict(tile, gain * s, u, v, cycles), cycles
