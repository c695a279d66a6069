"""What an algorithm may predict about a tile from its nominal, public configuration.

Algorithms never see per-cell state; they may know the scheme a tile uses (``tile.device``,
``tile.pulses``, ``tile.half_select``, ``tile.io``: nominal values). From those this module
predicts, for a planned update cycle ``(x, d, lr)``:

* the expected coincidence change: ``E[dW_ij] = -sign(lr d_i x_j) BL p_x_j p_d_i dw_min``
  (equal to ``-lr d_i x_j`` until the firing probabilities saturate at 1), with ``p`` and
  ``BL`` from :func:`progsim.pulses.probabilities`;
* the expected half-selection disturb of the design's model: in each sign quadrant
  ``q = (s, t)`` that runs, with ``delta_q = -sign(lr) s t``, row ``i`` fires in a slot
  with probability ``a_i = p_d_i [sign d_i = s]`` and column ``j`` with
  ``b_j = p_x_j [sign x_j = t]``, so cell ``(i, j)`` is half-selected in
  ``BL (a_i + b_j - 2 a_i b_j)`` slots on average (direction ``delta_q``) and, under V/3,
  on neither line in ``BL (1 - a_i)(1 - b_j)`` slots (direction ``-delta_q``). Each disturb
  moves it by ``strength * dw_min`` with probability ``prob``;
* the variance of the change, for filters: pulse-count (shot) noise ``dw_min |E[dW]|``,
  cycle-to-cycle noise ``dw_min_std^2`` of each step, and the unknown per-cell step spread
  ``(dw_min_dtod E[dW])^2`` (systematic per cell, treated as noise).

For a cell whose four quadrants all run, the disturb sums to ``-2 strength prob`` times its
coincidence change: V/2 bias shrinks a mixed-sign update uniformly. Single-signed ``x`` or
``d`` (one-hot inputs) leave quadrants idle and add row (column) shifts
``-sign(lr) s_i strength prob dw_min BL p_d_i`` to every cell of the row, whatever its ``x_j``.
"""

from __future__ import annotations

import math

import numpy as np

from progsim import pulses as _pulses
from progsim.halfselect import QUADRANTS
from progsim.periphery import output_noise_var
from progsim.programming import nominal as _nominal
from progsim.programming.nominal import dw_min, max_step, nominal

__all__ = ["change_variance", "cycles_variance", "dw_min", "expected_change", "expected_disturb", "max_step", "nominal",
           "read_cell_std", "read_noise_var"]

_pulsed = _nominal.pulse_scheme


def expected_change(tile, x, d, lr: float) -> np.ndarray:
    """Expected coincidence change ``E[dW]`` of the cycles ``(x, d, lr)`` (batch rows summed)."""
    x2, d2 = np.atleast_2d(x), np.atleast_2d(d)
    scheme = _pulsed(tile)
    if scheme is None:
        return -lr * d2.T @ x2
    px, pd, bl = _pulses.probabilities(scheme, x2, d2, lr, dw_min(tile))
    ps = (np.sign(x2) * px) * (bl[:, None] * dw_min(tile))
    return -math.copysign(1.0, lr) * (np.sign(d2) * pd).T @ ps


def expected_disturb(tile, x, d, lr: float) -> np.ndarray:
    """Expected half-selection disturb of the cycles ``(x, d, lr)`` (zeros without one)."""
    x2, d2 = np.atleast_2d(x), np.atleast_2d(d)
    out = np.zeros((d2.shape[1], x2.shape[1]))
    hs, scheme = getattr(tile, "half_select", None), _pulsed(tile)
    if hs is None or scheme is None or hs.mode == "none" or hs.strength * hs.prob == 0:
        return out
    px, pd, bl = _pulses.probabilities(scheme, x2, d2, lr, dw_min(tile))
    sx, sd = np.sign(x2), np.sign(d2)
    unit = hs.strength * hs.prob * dw_min(tile) * -math.copysign(1.0, lr)
    for c in range(x2.shape[0]):
        if bl[c] == 0:
            continue
        for s, t in QUADRANTS:
            rows, cols = sd[c] == s, sx[c] == t
            if not (rows.any() and cols.any()):
                continue
            a = np.where(rows, pd[c], 0.0)[:, None]
            b = np.where(cols, px[c], 0.0)[None, :]
            slots = a + b - 2.0 * a * b
            if hs.mode == "v3":
                slots = slots - (1.0 - a) * (1.0 - b)
            out += (unit * s * t * bl[c]) * slots
    return out


def change_variance(tile, change: np.ndarray) -> np.ndarray:
    """Variance of a cell's actual change around the expected ``change`` (see module doc)."""
    step = dw_min(tile)
    std = nominal(tile, "device", "dw_min_std", 0.0)
    dtod = nominal(tile, "device", "dw_min_dtod", 0.0)
    mag = np.abs(change)
    shot = step * mag if _pulsed(tile) is not None else 0.0
    return shot + (std**2) * step * mag + (dtod * mag) ** 2


def cycles_variance(tile, x, d, lr: float, cycles: int = 1) -> np.ndarray:
    """Variance of each cell's change over ``cycles`` identical update cycles ``(x, d, lr)``.

    Sharper than :func:`change_variance` for one planned cycle: under stochastic pulses a
    cell's coincidences in a cycle are ``BL`` Bernoulli draws of ``q = p_x p_d``, so the
    count varies by ``BL q (1 - q)`` (not ``BL q``: lines firing with probability near 1
    are nearly deterministic); the other schemes count deterministically. Cycle-to-cycle
    noise and the unknown per-cell step spread are added as in :func:`change_variance`.
    """
    x2, d2 = np.atleast_2d(x)[:1], np.atleast_2d(d)[:1]
    step = dw_min(tile)
    mean = cycles * np.abs(expected_change(tile, x2, d2, lr))
    scheme = _pulsed(tile)
    shot = 0.0
    if scheme is not None and scheme.kind == _pulses.KIND_STOCHASTIC:
        px, pd, bl = _pulses.probabilities(scheme, x2, d2, lr, step)
        q = pd[0][:, None] * px[0][None, :]
        shot = cycles * float(bl[0]) * step * step * q * (1.0 - q)
    std = nominal(tile, "device", "dw_min_std", 0.0)
    dtod = nominal(tile, "device", "dw_min_dtod", 0.0)
    return shot + (std**2) * step * mean + (dtod * mean) ** 2


def read_noise_var(tile, x) -> np.ndarray:
    """Predicted variance of each output of ``forward(x)``: the nominal periphery's
    :func:`progsim.periphery.output_noise_var` (the design's default ``IO()`` for tiles
    without ``io``)."""
    return output_noise_var(_nominal.io(tile), x)


def read_cell_std(tile, method: str, over_sampling: int) -> float:
    """Nominal standard deviation of one cell's estimate from a read (see ``_reads``)."""
    n = tile.shape[1]
    if method == "eye":
        return float(np.sqrt(read_noise_var(tile, np.eye(n)[:1])[0] / over_sampling))
    if method == "hadamard":
        rows = over_sampling * (1 << max(int(np.ceil(np.log2(n))), 0))
        return float(np.sqrt(read_noise_var(tile, np.ones((1, n)))[0] / rows))
    # standard-normal inputs scaled by their maximum (about 2 ln n squared) and an
    # inverse-Wishart fit variance 1 / (N - n - 1), taken as 1 / n when N = n
    unit = read_noise_var(tile, np.ones((1, 1)))[0]
    return float(np.sqrt(unit * 2 * np.log(max(n, 2)) / max(over_sampling * n - n - 1, n)))


MAX_OVER_SAMPLING = 64


def read_plan(tile, read: str | None, over_sampling: int | None) -> tuple[str, int]:
    """The read design and over-sampling to use: the ones given, or derived from the nominal tile.

    * ``read=None``: ``"eye"`` for a perfect periphery (exact, ``n`` vectors), else
      ``"hadamard"`` (+-1 inputs use the DAC's full range, and each cell's estimate has the
      output variance divided by the number of vectors, ``n`` times less than one-hot reads
      of the same count);
    * ``over_sampling=None``: the smallest ``k`` whose cell standard deviation
      (:func:`read_cell_std`) is at most one nominal step ``dw_min``, so a read resolves the
      step writes are made of; at most ``MAX_OVER_SAMPLING``.
    """
    method = read if read is not None else ("eye" if _nominal.io(tile).is_perfect else "hadamard")
    if over_sampling is not None:
        return method, int(over_sampling)
    ratio = read_cell_std(tile, method, 1) / dw_min(tile)
    return method, int(min(max(math.ceil(ratio * ratio - 1e-9), 1), MAX_OVER_SAMPLING))


def noise_edge(shape: tuple[int, int], cell_std: float) -> float:
    """Largest singular value of an (m, n) matrix of independent noise of ``cell_std``:
    ``cell_std (sqrt(m) + sqrt(n))`` (the Marchenko-Pastur edge)."""
    return float(cell_std * (math.sqrt(shape[0]) + math.sqrt(shape[1])))
