"""Pulse schemes: how an update ``(x, d, lr)`` becomes pulse trains on rows and columns.

Notation per update cycle (one vector pair): ``x`` (columns, "x side"), ``d`` (rows),
``xmax = max|x|``, ``dmax = max|d|``, ``dw_min`` the device's nominal step.

* BL management: ``BL = min(ceil(k), bl)`` with ``k = |lr| xmax dmax / dw_min`` (the
  expected pulses of the largest cell), else ``BL = bl``.
* ``A = B = sqrt(|lr| / (dw_min BL))``; update management: ``A *= sqrt(dmax'/xmax)``,
  ``B *= sqrt(xmax/dmax')``, which balances the two sides so both probabilities stay <= 1.
  When the update saturates (``k > bl``) only the ``d`` side is shrunk: ``dmax' = dmax bl / k``
  (else ``dmax' = dmax``), so column probabilities keep the proportions of ``x`` and the
  largest reaches 1 while row probabilities clip at 1. This is aihwkit's
  ``PulsedUpdateMetaParameter::performUpdateManagement`` (1.2.0), applied with ``|lr|``.
* Column ``j`` fires in a slot with probability ``p_x = min(A |x_j|, 1)``, row ``i`` with
  ``p_d = min(B |d_i|, 1)``; a coincidence gives cell ``(i, j)`` one pulse in direction
  ``-sign(lr d_i x_j)``. Then ``E[n_ij] dw_min = |lr d_i x_j|`` (Gokmen & Vlasov 2016) as long
  as no probability clips.

The schemes differ in how the trains are drawn:

* :class:`Stochastic`: Bernoulli trains (one draw per slot and line, from counter-based
  streams, so results do not depend on the thread count).
* :class:`DeterministicImplicit`: ``p`` quantised to ``x_res`` / ``d_res``; row ``i`` fires in
  its first ``n_d = round(p_d BL)`` slots, column ``j`` in ``n_x = round(p_x BL)`` evenly spaced
  slots ``floor((m + 1/2) BL / n_x)``, so the coincidences count ``~ n_x n_d / BL`` without any
  randomness.
* :class:`MeanCount`: no trains: ``n_ij = round(BL p_x p_d)`` coincidences, deterministic. For
  half-selection its lines fire ``R = round(BL p_d)`` and ``C = round(BL p_x)`` slots per cell:
  the ``n_ij`` coincidences first, then the row's ``R - n_ij``, then the column's ``C - n_ij``.
* :class:`Ideal`: the exact increment ``-lr d x^T``, no device physics (floating-point reference).
* :class:`IdealWithDevice`: the exact increment, then the cells' bounds.

Trains of up to 64 slots fit one ``uint64`` per line and cycle; ``bl`` is limited to 64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import prange

from progsim import _rng
from progsim._config import jit, serial_and_parallel, use_parallel
from progsim._validate import Boolean, Interval, param, validate_fields

_BL = Interval(1, 64, integral=True)
_RES = Interval(0.0, 1.0, closed="right")

KIND_IDEAL, KIND_IDEAL_DEVICE, KIND_MEAN_COUNT, KIND_STOCHASTIC, KIND_DET_IMPLICIT = range(5)


@dataclass(frozen=True)
class PulseScheme:
    """Base of the pulse schemes (``kind`` selects the kernel path)."""

    kind = KIND_IDEAL

    def __post_init__(self):
        validate_fields(self)

    @property
    def pulsed(self) -> bool:
        return self.kind >= KIND_MEAN_COUNT


@dataclass(frozen=True)
class Ideal(PulseScheme):
    """Exact ``W -= lr d x^T``: no pulses, no bounds, no noise (floating-point reference)."""

    kind = KIND_IDEAL


@dataclass(frozen=True)
class IdealWithDevice(PulseScheme):
    """Exact increment per cycle, then clipped to each cell's bounds."""

    kind = KIND_IDEAL_DEVICE


@dataclass(frozen=True)
class _Trained(PulseScheme):
    bl: int = param(31, _BL)
    update_management: bool = param(True, Boolean())
    bl_management: bool = param(True, Boolean())


@dataclass(frozen=True)
class MeanCount(_Trained):
    """Deterministic coincidence counts ``n_ij = round(BL p_x p_d)``."""

    kind = KIND_MEAN_COUNT


@dataclass(frozen=True)
class Stochastic(_Trained):
    """Stochastic Bernoulli pulse trains (Gokmen & Vlasov 2016)."""

    kind = KIND_STOCHASTIC


@dataclass(frozen=True)
class DeterministicImplicit(_Trained):
    """Deterministic trains of quantised length whose coincidences give the product."""

    x_res: float = param(1.0 / 31.0, _RES)
    d_res: float = param(1.0 / 31.0, _RES)

    kind = KIND_DET_IMPLICIT


class Cycles(NamedTuple):
    """Per-cycle pulse data handed to the update kernel (``b`` cycles)."""

    row_bits: np.ndarray  # (b, rows) uint64 trains (MeanCount: unused)
    col_bits: np.ndarray  # (b, cols) uint64
    row_sign: np.ndarray  # (b, rows) int8, sign(d)
    col_sign: np.ndarray  # (b, cols) int8, sign(x)
    row_p: np.ndarray  # (b, rows) float64 firing probabilities
    col_p: np.ndarray  # (b, cols) float64
    bl: np.ndarray  # (b,) int64, 0 for a cycle that does nothing
    quad: np.ndarray  # (b, 4) bool, which sign quadrants run


_FMAX = np.finfo(np.float64).max


@jit
def _probabilities(x, d, alr, dw_min, bl_max, bl_management, update_management):
    """The kernel of :func:`probabilities`: one pass over each cycle's lines, with the same
    floating-point operations in the same order as the formulas of the module docstring, so
    that the trains drawn from these probabilities do not depend on how they were computed."""
    nb, n_x = x.shape
    n_d = d.shape[1]
    px = np.empty((nb, n_x))
    pd = np.empty((nb, n_d))
    bl_out = np.empty(nb, dtype=np.int64)
    for b in range(nb):
        xmax = 0.0
        for j in range(n_x):
            v = abs(x[b, j])
            if v > xmax:
                xmax = v
        dmax = 0.0
        for i in range(n_d):
            v = abs(d[b, i])
            if v > dmax:
                dmax = v
        k = alr * xmax * dmax / dw_min
        active = k > 0.0
        if bl_management:
            c = np.ceil(k) if active else 1.0
            bl = bl_max if c > bl_max else (1 if c < 1.0 else int(c))
        else:
            bl = bl_max
        if update_management:
            xm = xmax if active else 1.0
            dm = dmax if active else 1.0
            saturated = k > bl_max
            root = np.sqrt(1.0 if saturated else (k if active else 0.0) / bl)
            sx = min(root, _FMAX)
            sd = min(k / bl_max if saturated else root, _FMAX)
            for j in range(n_x):
                px[b, j] = min(abs(x[b, j]) / xm * sx, 1.0)
            for i in range(n_d):
                pd[b, i] = min(abs(d[b, i]) / dm * sd, 1.0)
        else:
            a = min(np.sqrt(alr / (dw_min * bl)), _FMAX)
            for j in range(n_x):
                px[b, j] = min(abs(x[b, j]) * a, 1.0)
            for i in range(n_d):
                pd[b, i] = min(abs(d[b, i]) * a, 1.0)
        bl_out[b] = bl if active else 0
    return px, pd, bl_out


def probabilities(scheme: _Trained, x: np.ndarray, d: np.ndarray, lr: float, dw_min: float):
    """Firing probabilities ``(p_x, p_d)`` and train lengths ``BL`` of each cycle (see the
    module docstring for the formulas, aihwkit's), computed in one compiled pass.

    A cycle whose expected pulse count ``k`` is 0 (a zero input, a zero ``lr``, or a product
    that underflows) gets ``BL = 0`` and does nothing. With update management the
    probabilities are computed from ``x / xmax`` and ``d / dmax`` and ``sqrt(k / BL)``, which is
    the formula above rearranged so that no intermediate overflows or divides by zero
    for subnormal or huge (finite) maxima; a scale beyond the float range saturates every
    line that has a non-zero value.
    """
    return _probabilities(np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(d, dtype=np.float64),
                          abs(float(lr)), float(dw_min), int(scheme.bl), bool(scheme.bl_management),
                          bool(scheme.update_management))


def quadrants(row_sign: np.ndarray, col_sign: np.ndarray) -> np.ndarray:
    """(b, 4) mask of the quadrants (+,+), (+,-), (-,+), (-,-) that run in each cycle."""
    rp, rn = (row_sign > 0).any(axis=1), (row_sign < 0).any(axis=1)
    cp, cn = (col_sign > 0).any(axis=1), (col_sign < 0).any(axis=1)
    return np.stack([rp & cp, rp & cn, rn & cp, rn & cn], axis=1)


def _bernoulli_trains(p, bl, key, counter0, domain):
    """Bernoulli trains of each line and cycle: slot ``k`` of line ``line`` fires when the
    ``k``-th uniform of the stream ``(key, counter0 + b, domain, line)`` is below ``p``."""
    nb, n = p.shape
    out = np.empty((nb, n), dtype=np.uint64)
    one = np.uint64(1)
    base = _rng.stream_bases(key, counter0, domain, nb)
    for line in prange(n):
        for b in range(nb):
            pb = p[b, line]
            if pb <= 0.0 or bl[b] == 0:
                out[b, line] = 0
                continue
            bits = np.uint64(0)
            if pb >= 1.0:
                for k in range(bl[b]):
                    bits |= one << np.uint64(k)
            else:
                s = _rng.line_seed(base[b], line)
                for k in range(bl[b]):
                    u, s = _rng.uniform_s(s)
                    if u < pb:
                        bits |= one << np.uint64(k)
            out[b, line] = bits
    return out


_bernoulli_serial, _bernoulli_parallel = serial_and_parallel(_bernoulli_trains)


def bernoulli_trains(p, bl, key, counter0, domain):
    """:func:`_bernoulli_trains` in its serial or parallel variant (the same bits either way)."""
    kernel = _bernoulli_parallel if use_parallel(p.size) else _bernoulli_serial
    return kernel(p, bl, key, counter0, domain)


@jit
def _block_trains(count):
    """Row trains: the first ``count`` slots."""
    nb, n = count.shape
    out = np.zeros((nb, n), dtype=np.uint64)
    one = np.uint64(1)
    for b in range(nb):
        for line in range(n):
            bits = np.uint64(0)
            for k in range(count[b, line]):
                bits |= one << np.uint64(k)
            out[b, line] = bits
    return out


@jit
def _spread_trains(count, bl):
    """Column trains: ``count`` slots spread evenly, at ``floor((m + 1/2) BL / count)``."""
    nb, n = count.shape
    out = np.zeros((nb, n), dtype=np.uint64)
    one = np.uint64(1)
    for b in range(nb):
        for line in range(n):
            c = count[b, line]
            bits = np.uint64(0)
            for m in range(c):
                k = int(np.floor((m + 0.5) * bl[b] / c))
                bits |= one << np.uint64(k)
            out[b, line] = bits
    return out


def make_cycles(scheme: _Trained, x, d, lr, dw_min, key: np.uint64, counter0: int, with_quadrants: bool = True) -> Cycles:
    """All per-cycle pulse data for a batch of ``b`` update cycles. ``with_quadrants=False``
    leaves ``quad`` all False, for the kernel without half-selection, which does not read it."""
    px, pd, bl = probabilities(scheme, x, d, lr, dw_min)
    row_sign = np.sign(d).astype(np.int8)
    col_sign = np.sign(x).astype(np.int8)
    nb = x.shape[0]
    if scheme.kind == KIND_STOCHASTIC:
        col_bits = bernoulli_trains(px, bl, key, np.uint64(counter0), _rng.DOMAIN_COL_TRAIN)
        row_bits = bernoulli_trains(pd, bl, key, np.uint64(counter0), _rng.DOMAIN_ROW_TRAIN)
    elif scheme.kind == KIND_DET_IMPLICIT:
        qx = np.round(px / scheme.x_res) * scheme.x_res
        qd = np.round(pd / scheme.d_res) * scheme.d_res
        nx = np.minimum(np.round(qx * bl[:, None]), bl[:, None]).astype(np.int64)
        nd = np.minimum(np.round(qd * bl[:, None]), bl[:, None]).astype(np.int64)
        col_bits = _spread_trains(nx, bl)
        row_bits = _block_trains(nd)
    else:  # MeanCount: the kernel builds per-cell slot masks from the probabilities
        col_bits = np.zeros((nb, x.shape[1]), dtype=np.uint64)
        row_bits = np.zeros((nb, d.shape[1]), dtype=np.uint64)
    quad = quadrants(row_sign, col_sign) if with_quadrants else np.zeros((nb, 4), dtype=np.bool_)
    return Cycles(row_bits, col_bits, row_sign, col_sign, pd, px, bl, quad)
