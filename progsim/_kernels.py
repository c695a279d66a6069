"""Numba kernels of the crossbar (private: no validation, no exceptions).

``pulsed_update`` applies ``b`` update cycles in one call: rows are independent under every
half-selection scheme (a cell depends only on its own row and column trains), so the loop
runs over rows (``prange`` in the parallel variant) and each row walks through the cycles in
order. All randomness of row ``i`` in cycle ``c`` comes from the stream
``(key, c, CELL, i)``, drawn in column order: first the cycle-to-cycle noise of each event in
the order the events are applied, then, in a second pass over the row, the write noise of
each cell the cycle touched. So the result is the same for any thread count, serial or
parallel.

Two update kernels, compiled per device model (the ``model`` code a compile-time constant,
so only the tile's own model compiles, on its first update, and the other models' branches
vanish), each in a serial and a parallel variant (:func:`progsim._config.use_parallel`
chooses by size and thread count):

* the fast kernel (``_fast_update_<step>``), for stochastic trains without half-selection:
  each cell takes its coincidences ``row_bits & col_bits`` as full pulses;
* the general kernel (``_general_update_<step>``): sign quadrants, half-selection and
  MeanCount.

Both apply the same events in the same order and take the same draws (cycle-to-cycle and
write noise), so where both apply they give the same bits (a test).

A tile with Stochastic trains below the parallel size calls :func:`stochastic_update` instead:
one serial compiled call that checks the vectors are finite, computes the probabilities, draws
the trains and runs the same row loops, so that a small tile's call is not dominated by the
Python and dispatch costs of the steps in between. It gives the same bits as the two steps. Normal draws come from
buffered streams (``_rng.normal_buffered``, or ``_rng.refill``/``_rng.take`` in the loops
with many branches, where numba would otherwise reference-count the buffer on every use).

Within a quadrant a cell's events are applied in slot order (lowest slot first), each a
full pulse (row and column fire), a half-select disturb (exactly one fires) or, under V/3,
an opposite disturb (neither fires). Events come from bit masks, so the cost is one step
evaluation per event.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import prange

from progsim import _rng
from progsim._config import jit, jit_parallel, renamed, use_parallel
from progsim.devices import MODELS, cell_consts, cell_consts_toward, device_step
from progsim.halfselect import MODE_NONE, MODE_V3, QUADRANTS
from progsim.pulses import Cycles, _bernoulli_serial, _probabilities

_QS = tuple(s for s, _ in QUADRANTS)
_QT = tuple(t for _, t in QUADRANTS)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_NO_LINE = np.int64(-1)  # "no row/column to skip" for _disturb_block, typed as the indices it stands beside


class KernelCfg(NamedTuple):
    """Scalars of an update or pulse call, named as in the API."""

    mean_count: bool  # pulses.MeanCount: per-cell slot masks from the probabilities
    half_select: int  # halfselect.MODE_* (MODE_NONE also when the scheme cannot move a cell)
    strength: float  # HalfSelect.strength
    prob: float  # HalfSelect.prob
    dw_min_std: float  # device: relative cycle-to-cycle noise of a step
    write_noise_std: float  # device: write noise in units of dw_min
    dw_min: float  # device: nominal step (scales write_noise_std)
    key: np.uint64  # the tile's stream key
    counter0: np.uint64  # stream counter of the first cycle (or of the pulse call)
    lr_sign: float  # sign of the learning rate


@jit
def _clip(w, w_max, w_min):
    if w > w_max:
        return w_max
    if w < w_min:
        return w_min
    return w


@jit
def _low_bits(n):
    if n <= 0:
        return _ZERO
    if n >= 64:
        return ~_ZERO
    return (_ONE << np.uint64(n)) - _ONE


@jit(inline="always")
def _write_noise_pass(i, w, wa, touched, wn, st, buf):
    """Redraw the apparent weight of every cell of row ``i`` that the cycle touched."""
    nbuf = np.uint64(buf.shape[0])
    for j in range(w.shape[1]):
        if touched[j]:
            touched[j] = False
            if st[1] >= nbuf:
                _rng.refill(st, buf)
            wa[i, j] = w[i, j] + wn * _rng.take(st, buf)


@jit(inline="always")
def _update_rows(lo, hi, w, wa, cells, model, dev_p, cyc, cfg, counts, st, buf, touched):
    """Rows ``lo`` to ``hi - 1`` of the general update kernel: quadrants, half-selection,
    MeanCount. ``st``, ``buf``: a buffered stream's arrays (reseeded here); ``touched``: all
    False, left so. One call takes a range of rows so that the named tuples are unpacked
    (and their arrays reference-counted) once per call, not once per row."""
    cols = w.shape[1]
    nb = cyc.bl.shape[0]
    hs = cfg.half_select
    strength = cfg.strength
    prob = cfg.prob
    std = cfg.dw_min_std
    wn = cfg.write_noise_std * cfg.dw_min
    nbuf = np.uint64(_rng.NBUF)
    cell_base = _rng.stream_bases(cfg.key, cfg.counter0, _rng.DOMAIN_CELL, nb)
    for i in range(lo, hi):
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
                r_cnt = int(np.rint(bl * cyc.row_p[b, i]))
                rbits = _low_bits(r_cnt)
            if hs == MODE_NONE and rbits == _ZERO:
                continue
            _rng.seed_buffered(st, cell_base[b], i)
            blmask = _low_bits(bl)
            for j in range(cols):
                tj = cyc.col_sign[b, j]
                cbits = cyc.col_bits[b, j]
                if cfg.mean_count:
                    # Lines fire round(BL p) slots; the n_ij = round(BL p_x p_d) coincidences
                    # come first, then the row's other slots, then the column's.
                    c_cnt = int(np.rint(bl * cyc.col_p[b, j]))
                    n = int(np.rint(bl * cyc.row_p[b, i] * cyc.col_p[b, j]))
                    if n > r_cnt:
                        n = r_cnt
                    if n > c_cnt:
                        n = c_cnt
                    cbits = _low_bits(n) | (_low_bits(c_cnt - n) << np.uint64(r_cnt))
                    c_alone = _low_bits(c_cnt)  # the column's slots where the row takes no part
                if hs == MODE_NONE and (rbits & cbits) == _ZERO:
                    continue
                wij = float(w[i, j])
                dwu = float(cells.dw_up[i, j])
                dwd = float(cells.dw_down[i, j])
                wmax = float(cells.w_max[i, j])
                wmin = float(cells.w_min[i, j])
                k = cell_consts(model, cells, i, j, wmax, wmin, dev_p)
                moved = False
                for q in range(4 if hs != MODE_NONE else 1):
                    if hs == MODE_NONE:  # MeanCount without half-selection: the coincidences only
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
                        ev = (blmask | rb | cb) if hs == MODE_V3 else (rb | cb)
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
                        if std > 0.0:
                            if st[1] >= nbuf:
                                _rng.refill(st, buf)
                            mag *= 1.0 + std * _rng.take(st, buf)
                        wij = _clip(wij + (1.0 if up_e else -1.0) * mag, wmax, wmin)
                        moved = True
                if moved:
                    w[i, j] = wij
                    touched[j] = wn > 0.0
            if wn > 0.0:
                _write_noise_pass(i, w, wa, touched, wn, st, buf)
        counts[i, 0] = nfull
        counts[i, 1] = nhalf


@jit(inline="always")
def _fast_rows(lo, hi, w, wa, cells, model, dev_p, cyc, cfg, counts, st, buf, act, n_act):
    """Rows ``lo`` to ``hi - 1`` of the fast update kernel (stochastic trains, no
    half-selection): in each cycle every cell takes its coincidences ``row_bits & col_bits`` as
    full pulses, then the touched cells redraw their write noise. The arrays are unpacked from
    their named tuples and the pulse direction is a sign factor chosen once per cell, to keep
    the pulse loop short. ``st``, ``buf``: a buffered stream's arrays, reseeded here. ``act[b, :n_act[b]]``
    lists, in order, the columns whose train fires in cycle ``b`` (:func:`_active_columns`):
    the others cannot coincide, so the loops visit only these (the same cells in the same
    order as a loop over every column, so the same draws). One call takes a range of rows so
    that the named tuples are unpacked (and their arrays reference-counted) once per call."""
    dwu_a, dwd_a, wmx_a, wmn_a = cells.dw_up, cells.dw_down, cells.w_max, cells.w_min
    col_bits, col_sign = cyc.col_bits, cyc.col_sign
    std, wn = cfg.dw_min_std, cfg.write_noise_std * cfg.dw_min
    nbuf = np.uint64(_rng.NBUF)
    cell_base = _rng.stream_bases(cfg.key, cfg.counter0, _rng.DOMAIN_CELL, cyc.bl.shape[0])
    for i in range(lo, hi):
        nfull = 0
        for b in range(cyc.bl.shape[0]):
            rbits = cyc.row_bits[b, i]
            if cyc.bl[b] == 0 or rbits == _ZERO:
                continue
            _rng.seed_buffered(st, cell_base[b], i)
            up_sign = -cfg.lr_sign * cyc.row_sign[b, i]
            for q in range(n_act[b]):
                j = act[b, q]
                full = rbits & col_bits[b, j]
                if full == _ZERO:
                    continue
                wij = float(w[i, j])
                wmax = float(wmx_a[i, j])
                wmin = float(wmn_a[i, j])
                # The direction by arithmetic, not by branches (it is random, so a branch on it is
                # mispredicted half the time): upf is 1.0 or 0.0, dw_up * 1.0 + dw_down * 0.0 is
                # dw_up exactly (and the reverse), and the step's constants are the direction's
                up = up_sign * col_sign[b, j] > 0
                upf = float(np.int64(up))
                sgn = 2.0 * upf - 1.0
                dw = float(dwu_a[i, j]) * upf + float(dwd_a[i, j]) * (1.0 - upf)
                k = cell_consts_toward(model, cells, i, j, wmax, wmin, dev_p, upf)
                while full != _ZERO:
                    full &= full - _ONE
                    mag = device_step(model, wij, up, dw, wmax, wmin, dev_p, k)
                    if std > 0.0:
                        if st[1] >= nbuf:
                            _rng.refill(st, buf)
                        mag *= 1.0 + std * _rng.take(st, buf)
                    wij = _clip(wij + sgn * mag, wmax, wmin)
                    nfull += 1
                w[i, j] = wij
            if wn > 0.0:  # the draws of _write_noise_pass, through the same refill/take helpers
                for q in range(n_act[b]):
                    j = act[b, q]
                    if (rbits & col_bits[b, j]) != _ZERO:
                        if st[1] >= nbuf:
                            _rng.refill(st, buf)
                        wa[i, j] = w[i, j] + wn * _rng.take(st, buf)
        counts[i, 0] = nfull
        counts[i, 1] = 0


@jit(inline="always")
def _active_columns(col_bits):
    """``(act, n_act)``: ``act[b, :n_act[b]]`` are the columns ``j`` with ``col_bits[b, j] != 0``,
    in increasing order (the rest of each row of ``act`` is unset)."""
    nb, cols = col_bits.shape
    act = np.empty((nb, cols), dtype=np.uint64)
    n_act = np.empty(nb, dtype=np.int64)
    for b in range(nb):
        n = 0
        for j in range(cols):
            if col_bits[b, j] != _ZERO:
                act[b, n] = np.uint64(j)
                n += 1
        n_act[b] = n
    return act, n_act


# The row loops of the two-step kernels run over blocks of rows (at most _ROW_BLOCKS, ``prange``
# in the parallel variant), so that each call of the row function covers many rows.
_ROW_BLOCKS = 64


def _make_fast(model):
    def kernel(w, wa, cells, dev_p, cyc, cfg, counts):
        act, n_act = _active_columns(cyc.col_bits)
        n = w.shape[0]
        nblk = min(n, _ROW_BLOCKS)
        for c in prange(nblk):
            _fast_rows(c * n // nblk, (c + 1) * n // nblk, w, wa, cells, model, dev_p, cyc, cfg, counts,
                       np.empty(_rng.NST, dtype=np.uint64), np.empty(_rng.NBUF), act, n_act)
    return kernel


def _make_general(model):
    def kernel(w, wa, cells, dev_p, cyc, cfg, counts):
        n = w.shape[0]
        nblk = min(n, _ROW_BLOCKS)
        for c in prange(nblk):
            _update_rows(c * n // nblk, (c + 1) * n // nblk, w, wa, cells, model, dev_p, cyc, cfg, counts,
                         np.empty(_rng.NST, dtype=np.uint64), np.empty(_rng.NBUF), np.zeros(w.shape[1], dtype=np.bool_))
    return kernel


_KERNELS = {}


def update_kernel(model: int, fast: bool, parallel: bool):
    """The update kernel ``kernel(w, wa, cells, dev_p, cyc, cfg, counts)`` of device ``model``
    (``fast``: the one without half-selection), made on first request and compiled on its
    first call. Named ``_fast_update_<step>_serial`` etc. after the model's step function."""
    key = ("update", model, fast, parallel)
    kernel = _KERNELS.get(key)
    if kernel is None:
        fn = (_make_fast if fast else _make_general)(model)
        name = f"_{'fast' if fast else 'general'}_update_{MODELS[model].__name__}_{'parallel' if parallel else 'serial'}"
        kernel = _KERNELS[key] = (jit_parallel if parallel else jit)(renamed(fn, name))
    return kernel


def pulsed_update(w, wa, cells, model, dev_p, cyc, cfg, counts, parallel=None):
    """Apply the cycles ``cyc`` to the hidden weights ``w`` (apparent ``wa``), in place.

    ``counts[i]`` receives row ``i``'s (full pulses, half-select disturbs). Without
    half-selection and with stochastic trains the fast kernel runs, else the general one;
    ``parallel`` (default: :func:`progsim._config.use_parallel` of cells times cycles) picks
    the variant. Every choice gives the same result.
    """
    fast = cfg.half_select == MODE_NONE and not cfg.mean_count
    if parallel is None:
        parallel = use_parallel(w.size * cyc.bl.shape[0])
    update_kernel(model, fast, parallel)(w, wa, cells, dev_p, cyc, cfg, counts)


@jit
def _all_finite(a):
    for v in a.flat:
        if not np.isfinite(v):
            return False
    return True


@jit
def _any_equal(signs, s):
    for v in signs:
        if v == s:
            return True
    return False


@jit(inline="always")
def _stochastic_cycles(x, d, lr, key, counter0, dw_min, bl, update_management, bl_management, with_quadrants):
    """:func:`progsim.pulses.make_cycles` of a Stochastic scheme inside a kernel: the same
    probabilities and trains (the same compiled functions), signs and quadrants."""
    nb, cols = x.shape
    rows = d.shape[1]
    px, pd, bls = _probabilities(x, d, abs(lr), dw_min, bl, bl_management, update_management)
    col_bits = _bernoulli_serial(px, bls, key, counter0, _rng.DOMAIN_COL_TRAIN)
    row_bits = _bernoulli_serial(pd, bls, key, counter0, _rng.DOMAIN_ROW_TRAIN)
    row_sign = np.empty((nb, rows), dtype=np.int8)
    col_sign = np.empty((nb, cols), dtype=np.int8)
    quad = np.empty((nb, 4), dtype=np.bool_)
    for b in range(nb):
        for i in range(rows):
            row_sign[b, i] = 1 if d[b, i] > 0.0 else (-1 if d[b, i] < 0.0 else 0)
        for j in range(cols):
            col_sign[b, j] = 1 if x[b, j] > 0.0 else (-1 if x[b, j] < 0.0 else 0)
        for q in range(4):
            quad[b, q] = with_quadrants and _any_equal(row_sign[b], _QS[q]) and _any_equal(col_sign[b], _QT[q])
    return Cycles(row_bits, col_bits, row_sign, col_sign, pd, px, bls, quad)


@jit(inline="always")
def _totals(counts):
    n_full = 0
    n_half = 0
    for i in range(counts.shape[0]):
        n_full += counts[i, 0]
        n_half += counts[i, 1]
    return n_full, n_half


@jit(inline="always")
def _stochastic_setup(w, lr, key, counter0, dw_min, dw_min_std, write_noise_std, strength, prob, hs):
    """What both one-call Stochastic kernels build besides their cycles before the row loop:
    the kernel configuration, the per-row counts and the stream state and buffer."""
    lr_sign = 1.0 if lr > 0.0 else (-1.0 if lr < 0.0 else 0.0)
    cfg = KernelCfg(False, hs, strength, prob, dw_min_std, write_noise_std, dw_min, key, counter0, lr_sign)
    counts = np.empty((w.shape[0], 2), dtype=np.int64)  # the row loops write every row
    return cfg, counts, np.empty(_rng.NST, dtype=np.uint64), np.empty(_rng.NBUF)


def _make_stochastic_fast(model):
    def kernel(w, wa, cells, dev_p, x, d, lr, key, counter, dw_min, bl, update_management, bl_management,
               dw_min_std, write_noise_std, strength, prob):
        if not (_all_finite(x) and _all_finite(d)):
            return False, 0, 0
        counter0 = np.uint64(counter)
        cyc = _stochastic_cycles(x, d, lr, key, counter0, dw_min, bl, update_management, bl_management, False)
        cfg, counts, st, buf = _stochastic_setup(w, lr, key, counter0, dw_min, dw_min_std, write_noise_std, strength,
                                                 prob, MODE_NONE)
        act, n_act = _active_columns(cyc.col_bits)
        _fast_rows(0, w.shape[0], w, wa, cells, model, dev_p, cyc, cfg, counts, st, buf, act, n_act)
        n_full, n_half = _totals(counts)
        return True, n_full, n_half
    return kernel


def _make_stochastic_general(model, hs):
    def kernel(w, wa, cells, dev_p, x, d, lr, key, counter, dw_min, bl, update_management, bl_management,
               dw_min_std, write_noise_std, strength, prob):
        if not (_all_finite(x) and _all_finite(d)):
            return False, 0, 0
        counter0 = np.uint64(counter)
        cyc = _stochastic_cycles(x, d, lr, key, counter0, dw_min, bl, update_management, bl_management, True)
        cfg, counts, st, buf = _stochastic_setup(w, lr, key, counter0, dw_min, dw_min_std, write_noise_std, strength,
                                                 prob, hs)
        touched = np.zeros(w.shape[1], dtype=np.bool_)
        _update_rows(0, w.shape[0], w, wa, cells, model, dev_p, cyc, cfg, counts, st, buf, touched)
        n_full, n_half = _totals(counts)
        return True, n_full, n_half
    return kernel


def stochastic_update(model: int, half_select: int):
    """The serial one-call update of a tile with Stochastic trains: ``kernel(w, wa, cells, dev_p,
    x, d, lr, key, counter, dw_min, bl, update_management, bl_management, dw_min_std,
    write_noise_std, strength, prob) -> (finite, n_full, n_half)``.

    One compiled call computes the probabilities, draws the trains and applies the cycles, with
    the same functions and in the same order as :func:`progsim.pulses.make_cycles` followed by
    :func:`pulsed_update`, so it gives the same bits; it is the short path for small tiles,
    where the calls in between would cost more than the update. ``x`` and ``d`` are 2-d float64
    arrays; when either holds a non-finite value it returns ``finite = False`` and leaves the
    tile untouched. ``half_select`` is the mode code (``MODE_NONE`` runs the fast row loop)."""
    key = ("stochastic", model, half_select)
    kernel = _KERNELS.get(key)
    if kernel is None:
        fn = _make_stochastic_fast(model) if half_select == MODE_NONE else _make_stochastic_general(model, half_select)
        name = f"_stochastic_update_{MODELS[model].__name__}_hs{half_select}"
        kernel = _KERNELS[key] = jit(renamed(fn, name))
    return kernel


@jit
def _disturb_block(w, wa, cells, model, dev_p, rows, cols, skip_i, skip_j, up, cfg, st, buf):
    """Disturb every cell of ``rows x cols`` (ranges) of the hidden and apparent weights ``w``,
    ``wa`` (per-cell parameters ``cells``, a :class:`~progsim.devices.CellParams`) except row
    ``skip_i`` and column ``skip_j``, in row-major order, each with probability
    ``cfg.prob`` by ``cfg.strength`` steps in direction ``up``; returns the number disturbed.
    A flat loop body that reads the normals with ``_rng.refill``/``_rng.take``, so that numba
    does not reference-count the arrays per disturb. Not inlined: compiled once (``model`` a
    runtime code here) and shared by the three calls of every single-pulse kernel."""
    wmx, wmn = cells.w_max, cells.w_min
    dw_a = cells.dw_up if up else cells.dw_down
    strength, prob, std = cfg.strength, cfg.prob, cfg.dw_min_std
    wn = cfg.write_noise_std * cfg.dw_min
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
                              cell_consts(model, cells, ii, jj, wmax, wmin, dev_p)) * strength
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


def _make_single(model):
    def kernel(w, wa, cells, dev_p, rows_idx, cols_idx, n, cfg, counts):
        rows, cols = w.shape
        st = np.empty(_rng.NST, dtype=np.uint64)
        buf = np.empty(_rng.NBUF)
        hs = cfg.half_select
        std, wn = cfg.dw_min_std, cfg.write_noise_std * cfg.dw_min
        nsingle = 0
        nhalf = 0
        single_base = _rng.stream_base(cfg.key, cfg.counter0, _rng.DOMAIN_SINGLE)
        for s in range(rows_idx.shape[0]):
            m = n[s]
            if m == 0:
                continue
            i = rows_idx[s]
            j = cols_idx[s]
            up = m > 0
            _rng.seed_buffered(st, single_base, s)
            wmax, wmin = cells.w_max[i, j], cells.w_min[i, j]
            dw = cells.dw_up[i, j] if up else cells.dw_down[i, j]
            kc = cell_consts(model, cells, i, j, wmax, wmin, dev_p)
            for _ in range(abs(m)):
                mag = device_step(model, w[i, j], up, dw, wmax, wmin, dev_p, kc)
                if std > 0.0:
                    mag *= 1.0 + std * _rng.normal_buffered(st, buf)
                v = _clip(w[i, j] + (mag if up else -mag), wmax, wmin)
                w[i, j] = v
                if wn > 0.0:
                    wa[i, j] = v + wn * _rng.normal_buffered(st, buf)
                nsingle += 1
                if hs == MODE_NONE:
                    continue
                nhalf += _disturb_block(w, wa, cells, model, dev_p, range(i, i + 1), range(cols), _NO_LINE, j, up,
                                        cfg, st, buf)
                nhalf += _disturb_block(w, wa, cells, model, dev_p, range(rows), range(j, j + 1), i, _NO_LINE, up,
                                        cfg, st, buf)
                if hs == MODE_V3:
                    nhalf += _disturb_block(w, wa, cells, model, dev_p, range(rows), range(cols), i, j, not up, cfg,
                                            st, buf)
        counts[0] = nsingle
        counts[1] = nhalf
    return kernel


def single_pulses(w, wa, cells, model, dev_p, rows_idx, cols_idx, n, cfg, counts):
    """Single-device pulses, in the given order: ``n[k]`` pulses on cell
    ``(rows_idx[k], cols_idx[k])``, up when ``n[k] > 0``. Under V/2 each pulse disturbs the
    other cells of the cell's row and column; under V/3 also every cell on neither line
    (opposite direction). ``counts`` receives (single pulses, disturbs). One serial kernel per
    device model (``_single_pulses_<step>``), compiled on first use.
    """
    key = ("single", model)
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = jit(renamed(_make_single(model), f"_single_pulses_{MODELS[model].__name__}"))
    kernel(w, wa, cells, dev_p, rows_idx, cols_idx, n, cfg, counts)


@jit
def ideal_with_device(w, wa, x, d, lr, w_max, w_min, cfg):
    """Exact increments cycle by cycle, clipped to the cells' bounds; the touched cells redraw
    their write noise (stream of cycle ``cfg.counter0 + b``, row ``i``)."""
    nb = x.shape[0]
    rows, cols = w.shape
    wn = cfg.write_noise_std * cfg.dw_min
    st = np.empty(_rng.NST, dtype=np.uint64)
    buf = np.empty(_rng.NBUF)
    cell_base = _rng.stream_bases(cfg.key, cfg.counter0, _rng.DOMAIN_CELL, nb)
    for b in range(nb):
        for i in range(rows):
            g = lr * d[b, i]
            if g == 0.0:
                continue
            _rng.seed_buffered(st, cell_base[b], i)
            for j in range(cols):
                if x[b, j] == 0.0:
                    continue
                v = float(w[i, j]) - g * x[b, j]
                if v > w_max[i, j]:
                    v = w_max[i, j]
                elif v < w_min[i, j]:
                    v = w_min[i, j]
                w[i, j] = v
                if wn > 0.0:
                    wa[i, j] = v + wn * _rng.normal_buffered(st, buf)
