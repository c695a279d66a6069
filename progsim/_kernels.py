"""Numba kernels of the crossbar (private: no validation, no exceptions).

``pulsed_update`` applies ``b`` update cycles in one parallel region: rows are independent
under every half-selection scheme (a cell depends only on its own row and column trains),
so the parallel loop runs over rows and each row walks through the cycles in order. All
randomness of row ``i`` in cycle ``c`` comes from the stream ``(key, c, CELL, i)``, drawn in
column order, so the result is the same for any thread count.

Without half-selection and with stochastic trains (the common case) a lean per-model kernel
runs (``_FAST``); every other scheme runs :func:`general_update`. Both apply the same events
in the same order with the same step draws (write noise is drawn in another order). Normal
draws come from buffered streams (``_rng.normal_buffered``): a block of 64 is drawn at once
in a vectorised loop.

Within a quadrant a cell's events are applied in slot order (lowest slot first), each a
full pulse (row and column fire), a half-select disturb (exactly one fires) or, under V/3,
an opposite disturb (neither fires). Events come from bit masks, so the cost is one step
evaluation per event: half-selection multiplies the events, not the cost of each.

Where the time goes (one thread of this project's 2-core Xeon, ``studies/bench_update.py``):
the fast kernel spends ~6 ns a pulse with cycle-to-cycle noise, ~3.5 ns without, about 2.5
pulses a cell at BL 31. Without noise most of it is branch misprediction that the data
impose (whether a cell has a coincidence, and how many, is random). Measured and kept:
buffered vectorised normals (+35%), per-model kernels (+12%), per-cell constants and a sign
factor instead of direction branches (+10-25%), write noise in its own pass (+8-15%).
Measured and dropped: pre-drawing each 64-column chunk's normals after a popcount of its
pulses (-10%), float32 tiles (no change), a non-inlined refill in the fast loop (-25%).
A prototype that runs 8 cells in lock-step (masked, branch-free, draws by prefix offsets, so
the same draws) reached 8.9e7 cells/s with fast-path-only normals but 6.9e7 (+7%) with exact
ones: exact normal sampling, ~2.3 ns a pulse with its slow path, is now the binding cost. numba reference-counts an
array handed to an inlined helper that holds a call or a loop, on every use, in loops with
many branches: keep such helpers out of the disturb loops (``_rng.refill``/``_rng.take``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import prange

from progsim import _rng
from progsim.devices import MODEL_CONSTANT, MODEL_EXP, MODEL_LINEAR, MODEL_PIECEWISE, MODEL_POW, cell_consts, device_step
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
def _pulse(w, up, scale, dw_up, dw_down, w_max, w_min, model, p, k, std, st, buf):
    dw = dw_up if up else dw_down
    mag = device_step(model, w, up, dw, w_max, w_min, p, k) * scale
    if std > 0.0:
        mag *= 1.0 + std * _rng.normal_buffered(st, buf)
    return _clip(w + (1.0 if up else -1.0) * mag, w_max, w_min)


@jit(inline="always")
def _clip(w, w_max, w_min):
    if w > w_max:
        return w_max
    if w < w_min:
        return w_min
    return w


@jit(inline="always")
def _low_bits(n):
    if n <= 0:
        return _ZERO
    if n >= 64:
        return ~_ZERO
    return (_ONE << np.uint64(n)) - _ONE


@jit(inline="always")
def _update_row(i, w, wa, cells, model, dev_p, cyc, cfg, counts):
    """Row ``i`` of :func:`pulsed_update`, any scheme: quadrants, half-selection, MeanCount."""
    cols = w.shape[1]
    nb = cyc.bl.shape[0]
    hs = cfg.hs_mode
    strength = cfg.hs_strength
    prob = cfg.hs_prob
    std = cfg.dw_min_std
    st = np.empty(2, dtype=np.uint64)
    buf = np.empty(_rng.NBUF)
    nbuf = np.uint64(_rng.NBUF)
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
        _rng.seed_buffered(st, cfg.key, cfg.counter0 + np.uint64(b), _rng.DOMAIN_CELL, i)
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
            k = cell_consts(model, wmax, wmin, dev_p)
            touched = False
            for q in range(4 if hs != 0 else 1):
                if hs == 0:  # MeanCount without half-selection: the coincidences only
                    ev = rbits & cbits
                    both = ev
                    one = _ZERO
                    up = -cfg.lr_sign * si * tj > 0
                else:
                    if not cyc.quad[b, q]:
                        continue
                    rb = rbits if si == _QS[q] else _ZERO
                    cb = cbits if tj == _QT[q] else _ZERO
                    if cfg.mean_count and si != _QS[q] and tj == _QT[q]:
                        cb = c_alone
                    ev = (blmask | rb | cb) if hs == 2 else (rb | cb)
                    up = -cfg.lr_sign * _QS[q] * _QT[q] > 0
                    both = rb & cb
                    one = rb ^ cb
                while ev != _ZERO:
                    low = ev & (~ev + _ONE)
                    ev ^= low
                    if (both & low) != _ZERO:
                        up_e = up
                        scale = 1.0
                        nfull += 1
                    elif prob >= 1.0 or _rng.uniform(st) < prob:
                        # half-selected (one line fires): same direction; V/3 with
                        # neither line firing: the opposite one.
                        up_e = up == ((one & low) != _ZERO)
                        scale = strength
                        nhalf += 1
                    else:
                        continue
                    mag = device_step(model, wij, up_e, dwu if up_e else dwd, wmax, wmin, dev_p, k) * scale
                    if std > 0.0:  # draws through refill/take, not _pulse: see _disturb_block
                        if st[1] >= nbuf:
                            _rng.refill(st, buf)
                        mag *= 1.0 + std * _rng.take(st, buf)
                    wij = _clip(wij + (1.0 if up_e else -1.0) * mag, wmax, wmin)
                    touched = True
            if touched:
                w[i, j] = wij
                if cfg.write_noise > 0.0:
                    if st[1] >= nbuf:
                        _rng.refill(st, buf)
                    wa[i, j] = wij + cfg.write_noise * _rng.take(st, buf)
    counts[i, 0] = nfull
    counts[i, 1] = nhalf


@jit(inline="always")
def _fast_row(i, w, wa, cells, model, dev_p, cyc, cfg, counts):
    """Row ``i`` of :func:`pulsed_update` without half-selection, with stochastic trains: in
    each cycle every cell takes its coincidences ``row_bits & col_bits`` as full pulses, then
    the touched cells redraw their write noise.

    The common case, kept free of the quadrant and MeanCount logic (~1.5x the general loop).
    Measured choices: the arrays unpacked from their named tuples (reading through the tuples
    in the loop cost ~10%); the pulse direction as a sign factor chosen once per cell (a
    branch on it, random per cell, was mispredicted half the time); write noise in a pass
    of its own (a second draw site inside the pulse loop cost it 8-15%, even with write
    noise off)."""
    cols = w.shape[1]
    dwu_a, dwd_a, wmx_a, wmn_a = cells.dw_up, cells.dw_down, cells.w_max, cells.w_min
    col_bits, col_sign = cyc.col_bits, cyc.col_sign
    std, wn = cfg.dw_min_std, cfg.write_noise
    st = np.empty(2, dtype=np.uint64)
    buf = np.empty(_rng.NBUF)
    nfull = 0
    for b in range(cyc.bl.shape[0]):
        rbits = cyc.row_bits[b, i]
        if cyc.bl[b] == 0 or rbits == _ZERO:
            continue
        _rng.seed_buffered(st, cfg.key, cfg.counter0 + np.uint64(b), _rng.DOMAIN_CELL, i)
        up_sign = -cfg.lr_sign * cyc.row_sign[b, i]
        for j in range(cols):
            full = rbits & col_bits[b, j]
            if full == _ZERO:
                continue
            wij = float(w[i, j])
            wmax = float(wmx_a[i, j])
            wmin = float(wmn_a[i, j])
            k = cell_consts(model, wmax, wmin, dev_p)
            up = up_sign * col_sign[b, j] > 0
            dw = float(dwu_a[i, j]) if up else float(dwd_a[i, j])
            sgn = 1.0 if up else -1.0
            while full != _ZERO:
                full &= full - _ONE
                mag = device_step(model, wij, up, dw, wmax, wmin, dev_p, k)
                if std > 0.0:
                    mag *= 1.0 + std * _rng.normal_buffered(st, buf)
                wij = _clip(wij + sgn * mag, wmax, wmin)
                nfull += 1
            w[i, j] = wij
        if wn > 0.0:
            for j in range(cols):
                if (rbits & col_bits[b, j]) != _ZERO:
                    wa[i, j] = w[i, j] + wn * _rng.normal_buffered(st, buf)
    counts[i, 0] = nfull
    counts[i, 1] = 0


# One kernel per device model for the common case (the model a compile-time constant, so the
# other models' branches vanish: ~12% on ConstantStep), one generic kernel for the rest.
# Written out rather than made by a factory: numba does not disk-cache closures, and
# numba.literally on the model recompiled the kernel's typing on every call.
@jit_parallel
def _fast_constant(w, wa, cells, dev_p, cyc, cfg, counts):
    for i in prange(w.shape[0]):
        _fast_row(i, w, wa, cells, MODEL_CONSTANT, dev_p, cyc, cfg, counts)


@jit_parallel
def _fast_linear(w, wa, cells, dev_p, cyc, cfg, counts):
    for i in prange(w.shape[0]):
        _fast_row(i, w, wa, cells, MODEL_LINEAR, dev_p, cyc, cfg, counts)


@jit_parallel
def _fast_exp(w, wa, cells, dev_p, cyc, cfg, counts):
    for i in prange(w.shape[0]):
        _fast_row(i, w, wa, cells, MODEL_EXP, dev_p, cyc, cfg, counts)


@jit_parallel
def _fast_pow(w, wa, cells, dev_p, cyc, cfg, counts):
    for i in prange(w.shape[0]):
        _fast_row(i, w, wa, cells, MODEL_POW, dev_p, cyc, cfg, counts)


@jit_parallel
def _fast_piecewise(w, wa, cells, dev_p, cyc, cfg, counts):
    for i in prange(w.shape[0]):
        _fast_row(i, w, wa, cells, MODEL_PIECEWISE, dev_p, cyc, cfg, counts)


_FAST = {MODEL_CONSTANT: _fast_constant, MODEL_LINEAR: _fast_linear, MODEL_EXP: _fast_exp,
         MODEL_POW: _fast_pow, MODEL_PIECEWISE: _fast_piecewise}


@jit_parallel
def general_update(w, wa, cells, model, dev_p, cyc, cfg, counts):
    """:func:`pulsed_update` for any scheme (the model a runtime code)."""
    for i in prange(w.shape[0]):
        _update_row(i, w, wa, cells, model, dev_p, cyc, cfg, counts)


def pulsed_update(w, wa, cells, model, dev_p, cyc, cfg, counts):
    """Apply the cycles ``cyc`` to the hidden weights ``w`` (apparent ``wa``), in place.

    ``counts[i]`` receives row ``i``'s (full pulses, half-select disturbs). Without
    half-selection and with stochastic trains the per-model kernel runs. Both kernels apply
    the same events in the same order with the same cycle-to-cycle draws; with write noise on
    the fast kernel draws it after the row's pulses, the general one after each cell's.
    """
    if cfg.hs_mode == 0 and not cfg.mean_count:
        _FAST[model](w, wa, cells, dev_p, cyc, cfg, counts)
    else:
        general_update(w, wa, cells, model, dev_p, cyc, cfg, counts)


@jit(inline="always")
def _disturb_block(w, wa, dwu, dwd, wmx, wmn, model, dev_p, rows, cols, skip_i, skip_j, up, strength, prob, std, wn,
                   st, buf):
    """Disturb every cell of ``rows x cols`` (ranges) except row ``skip_i`` and column
    ``skip_j``, in row-major order; returns the number disturbed. A flat loop body on
    purpose: the same steps behind a per-cell helper with an early return cost ~120 ns a
    disturb (reference counting of the arrays it received). Likewise the normals are read
    with ``_rng.refill``/``_rng.take``: through ``_pulse``, whose inlined draw code holds a
    loop, each disturb paid ~20 ns of reference counting on ``st`` and ``buf``; a disturb
    costs ~5 ns now."""
    dw_a = dwu if up else dwd
    sgn = 1.0 if up else -1.0
    nbuf = np.uint64(buf.shape[0])
    n = 0
    for ii in rows:
        if ii == skip_i:
            continue
        for jj in cols:
            if jj == skip_j:
                continue
            if prob < 1.0 and _rng.uniform(st) >= prob:
                continue
            wmax = wmx[ii, jj]
            wmin = wmn[ii, jj]
            wv = w[ii, jj]
            mag = device_step(model, wv, up, dw_a[ii, jj], wmax, wmin, dev_p,
                              cell_consts(model, wmax, wmin, dev_p)) * strength
            if std > 0.0:
                if st[1] >= nbuf:
                    _rng.refill(st, buf)
                mag *= 1.0 + std * _rng.take(st, buf)
            wv = _clip(wv + sgn * mag, wmax, wmin)
            w[ii, jj] = wv
            if wn > 0.0:
                if st[1] >= nbuf:
                    _rng.refill(st, buf)
                wa[ii, jj] = wv + wn * _rng.take(st, buf)
            n += 1
    return n


@jit
def single_pulses(w, wa, cells, model, dev_p, rows_idx, cols_idx, n, cfg, counts):
    """Single-device pulses, in the given order: ``n[k]`` pulses on cell
    ``(rows_idx[k], cols_idx[k])``, up when ``n[k] > 0``. Under V/2 each pulse disturbs the
    other cells of the cell's row and column; under V/3 also every cell on neither line
    (opposite direction). ``counts`` receives (single pulses, disturbs).
    """
    rows, cols = w.shape
    st = np.empty(2, dtype=np.uint64)
    buf = np.empty(_rng.NBUF)
    dwu, dwd, wmx, wmn = cells.dw_up, cells.dw_down, cells.w_max, cells.w_min
    hs = cfg.hs_mode
    strength, prob, std, wn = cfg.hs_strength, cfg.hs_prob, cfg.dw_min_std, cfg.write_noise
    nsingle = 0
    nhalf = 0
    for s in range(rows_idx.shape[0]):
        m = n[s]
        if m == 0:
            continue
        i = rows_idx[s]
        j = cols_idx[s]
        up = m > 0
        _rng.seed_buffered(st, cfg.key, cfg.counter0, _rng.DOMAIN_SINGLE, s)
        kc = cell_consts(model, wmx[i, j], wmn[i, j], dev_p)
        for _ in range(abs(m)):
            v = _pulse(w[i, j], up, 1.0, dwu[i, j], dwd[i, j], wmx[i, j], wmn[i, j], model, dev_p, kc, std, st, buf)
            w[i, j] = v
            if wn > 0.0:
                wa[i, j] = v + wn * _rng.normal_buffered(st, buf)
            nsingle += 1
            if hs == 0:
                continue
            nhalf += _disturb_block(w, wa, dwu, dwd, wmx, wmn, model, dev_p, range(i, i + 1), range(cols), -1, j,
                                    up, strength, prob, std, wn, st, buf)
            nhalf += _disturb_block(w, wa, dwu, dwd, wmx, wmn, model, dev_p, range(rows), range(j, j + 1), i, -1,
                                    up, strength, prob, std, wn, st, buf)
            if hs == 2:
                nhalf += _disturb_block(w, wa, dwu, dwd, wmx, wmn, model, dev_p, range(rows), range(cols), i, j,
                                        not up, strength, prob, std, wn, st, buf)
    counts[0] = nsingle
    counts[1] = nhalf


@jit
def ideal_with_device(w, wa, x, d, lr, w_max, w_min, write_noise, key, counter0):
    """Exact increments cycle by cycle, clipped to the cells' bounds."""
    nb = x.shape[0]
    rows, cols = w.shape
    st = np.empty(2, dtype=np.uint64)
    buf = np.empty(_rng.NBUF)
    for b in range(nb):
        for i in range(rows):
            g = lr * d[b, i]
            if g == 0.0:
                continue
            _rng.seed_buffered(st, key, counter0 + np.uint64(b), _rng.DOMAIN_CELL, i)
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
                    wa[i, j] = v + write_noise * _rng.normal_buffered(st, buf)
