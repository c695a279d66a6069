"""Oracle metrics of a state against the target, and the physical floors of the costs.

Every error is relative to the target's own norm of the same kind, so they compare:

* ``err_fro = ||W - T||_F / ||T||_F``;
* ``err_spec = ||W - T||_2 / ||T||_2`` (largest singular values);
* ``err_nuc = ||W - T||_* / ||T||_*`` (sums of the singular values);
* ``err_mvm``: mean over fixed standard-normal inputs ``x`` of ``||(W - T) x|| / ||T x||``;
* ``err_floor = ||clip(T, w_min, w_max) - T||_F / ||T||_F``, with each cell's own bounds:
  the error of the best state the cells can hold, which no algorithm can go below;
* ``err_excess = err_fro - err_floor``: the part the algorithm is answerable for.

A zero target norm counts as 1 (the errors are then absolute).
"""

from __future__ import annotations

import math

import numpy as np

from progsim.programming import nominal

METRICS = ("err_fro", "err_spec", "err_nuc", "err_mvm", "err_observed", "err_floor", "err_excess")


def _nonzero(v: float) -> float:
    return float(v) or 1.0


def err_fro(w: np.ndarray, target: np.ndarray) -> float:
    """``||W - T||_F / ||T||_F`` (absolute when ``T`` is zero), the runner's ``err_fro``."""
    return float(np.linalg.norm(w - target) / _nonzero(np.linalg.norm(target)))


def bounds_floor(tile, target: np.ndarray) -> float:
    """``err_floor`` from the tile's per-cell bounds (``tile.cells.w_min``/``w_max``; NaN without)."""
    cells = getattr(tile, "cells", None)
    w_min, w_max = getattr(cells, "w_min", None), getattr(cells, "w_max", None)
    if w_min is None or w_max is None:
        return math.nan
    best = np.clip(target, np.asarray(w_min, dtype=np.float64), np.asarray(w_max, dtype=np.float64))
    return err_fro(best, target)


def cost_floors(tile, delta: np.ndarray) -> tuple[float, float]:
    """``pulse_floor = sum|delta| / dw_min`` and ``cycle_floor = max(rank(delta), max|delta| / (bl dw_min))``.

    ``delta = T - W0``; ``dw_min`` and ``bl`` are the tile's nominal ones
    (:mod:`progsim.programming.nominal`); without pulse trains the cycle floor is the rank.
    """
    pulse_floor = float(np.abs(delta).sum() / nominal.dw_min(tile))
    rank = float(np.linalg.matrix_rank(delta)) if delta.any() else 0.0
    limit = nominal.max_step(tile)
    if not math.isfinite(limit):
        return pulse_floor, rank
    return pulse_floor, max(rank, float(np.abs(delta).max() / limit))


class Metrics:
    """Oracle errors of states against one target, with fixed random MVM inputs."""

    def __init__(self, target: np.ndarray, mvm_inputs: np.ndarray, err_floor: float):
        self.target = target
        sv = np.linalg.svd(target, compute_uv=False)
        self.norm_fro = _nonzero(np.sqrt((sv**2).sum()))
        self.norm_spec = _nonzero(sv[0] if sv.size else 0.0)
        self.norm_nuc = _nonzero(sv.sum())
        self.x = mvm_inputs
        self.tx_norm = np.linalg.norm(mvm_inputs @ target.T, axis=1)
        self.tx_norm[self.tx_norm == 0] = 1.0
        self.err_floor = err_floor

    def fro(self, w: np.ndarray) -> float:
        return float(np.linalg.norm(w - self.target) / self.norm_fro)

    def full(self, w: np.ndarray) -> dict:
        e = w - self.target
        sv = np.linalg.svd(e, compute_uv=False)
        err_fro = float(np.sqrt((sv**2).sum()) / self.norm_fro)
        return dict(
            err_fro=err_fro,
            err_spec=float(sv[0] if sv.size else 0.0) / self.norm_spec,
            err_nuc=float(sv.sum()) / self.norm_nuc,
            err_mvm=float(np.mean(np.linalg.norm(self.x @ e.T, axis=1) / self.tx_norm)),
            err_floor=self.err_floor,
            err_excess=err_fro - self.err_floor,
        )
