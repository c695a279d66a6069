"""Numba kernels of the crossbar (private: no validation, no exceptions).

``pulsed_update`` applies ``b`` update cycles in one parallel region: rows are independent
under every half-selection scheme (a cell depends only on its own row and column trains),
so the parallel loop runs over rows and each row walks through the cycles in order. All
randomness of row ``i`` in cycle ``c`` comes from the stream ``(key, c, CELL, i)``, drawn in
column order, so the result is the same for any thread count.

Within a quadrant a cell's events are applied in slot order (lowest slot first), each a
full pulse (row and column fire), a half-select disturb (exactly one fires) or, under V/3,
an opposite disturb (neither fires). Events come from bit masks, so the cost is one step
evaluation per event: half-selection multiplies the events, not the cost of each.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import prange

from progsim import _rng
from progsim.devices import device_step
from progsim._config import jit, jit_parallel

_QS = (1, 1, -1, -1)
_QT = (1, -1, 1, -1)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


class KernelCfg(NamedTuple):
    """Scalars of an update or pulse call."""

    mean_count: bool
    hs_mode: int  # 0 none, 1 v2, 2 v3 (0 also when the scheme cannot move a cell)
    hs_strength: float
    hs_prob: float
    dw_min_std: float
    write_noise: float  # absolute std of the apparent-weight offset
    key: np.uint64
    counter0: np.uint64
    lr_sign: float


@jit(inline="always")
def _pulse(w, up, scale, dw_up, dw_down, w_max, w_min, model, p, std, st):
    dw = dw_up if up else dw_down
    mag = device_step(model, w, up, dw, w_max, w_min, p) * scale
    if std > 0.0:
        mag *= 1.0 + std * _rng.normal(st)
    w = w + mag if up else w - mag
    if w > w_max:
        w = w_max
    elif w < w_min:
        w = w_min
    return w


@jit(inline="always")
def _low_bits(n):
    if n <= 0:
        return _ZERO
    if n >= 64:
        return ~_ZERO
    return (_ONE << np.uint64(n)) - _ONE


@jit_parallel
def pulsed_update(w, wa, cells, model, dev_p, cyc, cfg, counts):
    """Apply the cycles ``cyc`` to the hidden weights ``w`` (apparent ``wa``), in place.

    ``counts[i]`` receives row ``i``'s (full pulses, half-select disturbs).
    """
    rows, cols = w.shape
    nb = cyc.bl.shape[0]
    hs = cfg.hs_mode
    strength = cfg.hs_strength
    prob = cfg.hs_prob
    std = cfg.dw_min_std
    for i in prange(rows):
        st = np.empty(1, dtype=np.uint64)
        nfull = 0
        nhalf = 0
        r_cnt = 0
        c_alone = _ZERO
        for b in range(nb):
            bl = cyc.bl[b]
            if bl == 0:
                continue
            si = cyc.row_sign[b, i]
            rbits = cyc.row_bits[b, i]
            if cfg.mean_count:
                r_cnt = int(np.round(bl * cyc.row_p[b, i]))
                rbits = _low_bits(r_cnt)
            if hs == 0 and rbits == _ZERO:
                continue
            st[0] = _rng.stream_seed(cfg.key, cfg.counter0 + np.uint64(b), _rng.DOMAIN_CELL, i)
            blmask = _low_bits(bl)
            for j in range(cols):
                tj = cyc.col_sign[b, j]
                cbits = cyc.col_bits[b, j]
                if cfg.mean_count:
                    # Lines fire round(BL p) slots; the n_ij = round(BL p_x p_d) coincidences
                    # come first, then the row's other slots, then the column's.
                    c_cnt = int(np.round(bl * cyc.col_p[b, j]))
                    n = int(np.round(bl * cyc.row_p[b, i] * cyc.col_p[b, j]))
                    if n > r_cnt:
                        n = r_cnt
                    if n > c_cnt:
                        n = c_cnt
                    cbits = _low_bits(n) | (_low_bits(c_cnt - n) << np.uint64(r_cnt))
                    c_alone = _low_bits(c_cnt)  # the column's slots where the row takes no part
                if hs == 0 and (rbits & cbits) == _ZERO:
                    continue
                wij = float(w[i, j])
                dwu = float(cells.dw_up[i, j])
                dwd = float(cells.dw_down[i, j])
                wmax = float(cells.w_max[i, j])
                wmin = float(cells.w_min[i, j])
                touched = False
                if hs == 0:
                    full = rbits & cbits
                    up = -cfg.lr_sign * si * tj > 0
                    while full != _ZERO:
                        full &= full - _ONE
                        wij = _pulse(wij, up, 1.0, dwu, dwd, wmax, wmin, model, dev_p, std, st)
                        nfull += 1
                    touched = True
                else:
                    for q in range(4):
                        if not cyc.quad[b, q]:
                            continue
                        rb = rbits if si == _QS[q] else _ZERO
                        cb = cbits if tj == _QT[q] else _ZERO
                        if cfg.mean_count and si != _QS[q] and tj == _QT[q]:
                            cb = c_alone
                        ev = (blmask | rb | cb) if hs == 2 else (rb | cb)
                        if ev == _ZERO:
                            continue
                        up = -cfg.lr_sign * _QS[q] * _QT[q] > 0
                        both = rb & cb
                        one = rb ^ cb
                        while ev != _ZERO:
                            low = ev & (~ev + _ONE)
                            ev ^= low
                            if (both & low) != _ZERO:
                                wij = _pulse(wij, up, 1.0, dwu, dwd, wmax, wmin, model, dev_p, std, st)
                                nfull += 1
                                touched = True
                            elif prob >= 1.0 or _rng.uniform(st) < prob:
                                # half-selected (one line fires): same direction; V/3 with
                                # neither line firing: the opposite one.
                                same = (one & low) != _ZERO
                                wij = _pulse(wij, up == same, strength, dwu, dwd, wmax, wmin, model, dev_p, std, st)
                                nhalf += 1
                                touched = True
                if touched:
                    w[i, j] = wij
                    if cfg.write_noise > 0.0:
                        wa[i, j] = wij + cfg.write_noise * _rng.normal(st)
        counts[i, 0] = nfull
        counts[i, 1] = nhalf


@jit(inline="always")
def _disturb(w, wa, i, j, up, dwu, dwd, wmx, wmn, model, dev_p, strength, prob, std, wn, st):
    if prob < 1.0 and _rng.uniform(st) >= prob:
        return 0
    v = _pulse(w[i, j], up, strength, dwu[i, j], dwd[i, j], wmx[i, j], wmn[i, j], model, dev_p, std, st)
    w[i, j] = v
    if wn > 0.0:
        wa[i, j] = v + wn * _rng.normal(st)
    return 1


@jit
def single_pulses(w, wa, cells, model, dev_p, rows_idx, cols_idx, n, cfg, counts):
    """Single-device pulses, in the given order: ``n[k]`` pulses on cell
    ``(rows_idx[k], cols_idx[k])``, up when ``n[k] > 0``. Under V/2 each pulse disturbs the
    other cells of the cell's row and column; under V/3 also every cell on neither line
    (opposite direction). ``counts`` receives (single pulses, disturbs).

    The per-cell arrays and settings are unpacked into locals once: reading them through the
    named tuples inside the disturb loops cost ~100 ns a disturb, against ~30 ns now.
    """
    rows, cols = w.shape
    st = np.empty(1, dtype=np.uint64)
    dwu, dwd, wmx, wmn = cells.dw_up, cells.dw_down, cells.w_max, cells.w_min
    hs = cfg.hs_mode
    strength, prob, std, wn = cfg.hs_strength, cfg.hs_prob, cfg.dw_min_std, cfg.write_noise
    nsingle = 0
    nhalf = 0
    for k in range(rows_idx.shape[0]):
        m = n[k]
        if m == 0:
            continue
        i = rows_idx[k]
        j = cols_idx[k]
        up = m > 0
        st[0] = _rng.stream_seed(cfg.key, cfg.counter0, _rng.DOMAIN_SINGLE, k)
        for _ in range(abs(m)):
            v = _pulse(w[i, j], up, 1.0, dwu[i, j], dwd[i, j], wmx[i, j], wmn[i, j], model, dev_p, std, st)
            w[i, j] = v
            if wn > 0.0:
                wa[i, j] = v + wn * _rng.normal(st)
            nsingle += 1
            if hs == 0:
                continue
            for jj in range(cols):
                if jj != j:
                    nhalf += _disturb(w, wa, i, jj, up, dwu, dwd, wmx, wmn, model, dev_p, strength, prob, std, wn, st)
            for ii in range(rows):
                if ii != i:
                    nhalf += _disturb(w, wa, ii, j, up, dwu, dwd, wmx, wmn, model, dev_p, strength, prob, std, wn, st)
            if hs == 2:
                for ii in range(rows):
                    if ii == i:
                        continue
                    for jj in range(cols):
                        if jj != j:
                            nhalf += _disturb(w, wa, ii, jj, not up, dwu, dwd, wmx, wmn, model, dev_p, strength,
                                              prob, std, wn, st)
    counts[0] = nsingle
    counts[1] = nhalf


@jit
def ideal_with_device(w, wa, x, d, lr, w_max, w_min, write_noise, key, counter0):
    """Exact increments cycle by cycle, clipped to the cells' bounds."""
    nb = x.shape[0]
    rows, cols = w.shape
    st = np.empty(1, dtype=np.uint64)
    for b in range(nb):
        for i in range(rows):
            g = lr * d[b, i]
            if g == 0.0:
                continue
            st[0] = _rng.stream_seed(key, counter0 + np.uint64(b), _rng.DOMAIN_CELL, i)
            for j in range(cols):
                if x[b, j] == 0.0:
                    continue
                v = float(w[i, j]) - g * x[b, j]
                if v > w_max[i, j]:
                    v = w_max[i, j]
                elif v < w_min[i, j]:
                    v = w_min[i, j]
                w[i, j] = v
                if write_noise > 0.0:
                    wa[i, j] = v + write_noise * _rng.normal(st)
