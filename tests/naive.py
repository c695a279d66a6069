"""Slow, obvious reference implementations (NumPy and Python loops) of the crossbar physics.

Nothing here is compiled or clever: the pulsed update is applied slot by slot over the whole
array, quadrant by quadrant, exactly as DESIGN.md describes it, with the device step
functions written again from the design's formulas. The kernels must equal these exactly
for noiseless devices and match their statistics for noisy ones.
"""

from __future__ import annotations

import math

import numpy as np

QUADRANTS = ((1, 1), (1, -1), (-1, 1), (-1, -1))


def step_magnitude(device, w, up, dw, w_max, w_min, gamma=None):
    """Mean step of ``device`` at state ``w`` (DESIGN.md device table), never negative.

    LinearStep/SoftBounds: ``gamma`` is the cell's own slope factor in the step's direction
    (drawn per cell, aihwkit's ``gamma_dtod``; the device's nominal one when None), measured
    against the nominal bound with ``mean_bound_reference``, else against the cell's bound."""
    name = type(device).__name__
    if name in ("Ideal", "ConstantStep"):
        return dw
    if name in ("LinearStep", "SoftBounds"):
        if gamma is None:
            gamma = device.gamma_up if up else device.gamma_down
        if up:
            ref = device.w_max if device.mean_bound_reference else w_max
        else:
            ref = device.w_min if device.mean_bound_reference else w_min
        f = 1.0 - (gamma / ref) * w if ref != 0 else 1.0
        return dw * max(f, 0.0)
    if name == "ExpStep":
        z = 2.0 * device.a * w / (w_max - w_min) + device.b
        if up:
            f = 1.0 - device.A_up * math.exp(device.gamma_up * z)
        else:
            f = 1.0 - device.A_down * math.exp(-device.gamma_down * z)
        return dw * max(f, 0.0)
    if name == "PowStep":
        r = (w_max - w) / (w_max - w_min) if up else (w - w_min) / (w_max - w_min)
        return dw * r ** device.gamma if r > 0 else 0.0
    if name == "Piecewise":
        nodes = device.nodes_up if up else device.nodes_down
        pos = (w - w_min) / (w_max - w_min) * (len(nodes) - 1)  # state in node units
        pos = min(max(pos, 0.0), len(nodes) - 1.0)
        k = min(int(pos), len(nodes) - 2)
        t = pos - k
        return dw * ((1.0 - t) * nodes[k] + t * nodes[k + 1])
    raise ValueError(f"no naive step for {name}")


def apply_pulse(device, cells, w, i, j, up, scale, rng=None):
    """One pulse (``scale`` 1) or disturb (``scale`` = strength) on cell (i, j), in place."""
    dw = float(cells.dw_up[i, j]) if up else float(cells.dw_down[i, j])
    w_max, w_min = float(cells.w_max[i, j]), float(cells.w_min[i, j])
    gamma = None
    if cells.gamma_up.size:  # a LinearStep cell's own slope factors
        gamma = float(cells.gamma_up[i, j]) if up else float(cells.gamma_down[i, j])
    mag = step_magnitude(device, float(w[i, j]), up, dw, w_max, w_min, gamma) * scale
    if device.dw_min_std > 0:
        mag *= 1.0 + device.dw_min_std * rng.standard_normal()
    v = float(w[i, j]) + (mag if up else -mag)
    w[i, j] = min(max(v, w_min), w_max)


def bit(train, k):
    return (int(train) >> k) & 1 == 1


def update_cycle(device, cells, w, row_bits, col_bits, d, x, lr, bl, mode, strength, prob=1.0, rng=None):
    """One pulsed update cycle, slot by slot. ``row_bits``/``col_bits``: the trains (ints).

    Returns (full pulses, half-select disturbs).
    """
    rows, cols = w.shape
    row_sign, col_sign = np.sign(d), np.sign(x)
    n_full = n_half = 0
    for s, t in QUADRANTS:
        if not ((row_sign == s).any() and (col_sign == t).any()):
            continue
        up = -math.copysign(1.0, lr) * s * t > 0
        for k in range(bl):
            row_fires = [row_sign[i] == s and bit(row_bits[i], k) for i in range(rows)]
            col_fires = [col_sign[j] == t and bit(col_bits[j], k) for j in range(cols)]
            for i in range(rows):
                for j in range(cols):
                    if row_fires[i] and col_fires[j]:
                        apply_pulse(device, cells, w, i, j, up, 1.0, rng)
                        n_full += 1
                        continue
                    if mode == "none" or strength == 0:
                        continue
                    half = row_fires[i] != col_fires[j]
                    if not half and mode != "v3":
                        continue
                    if prob < 1.0 and rng.uniform() >= prob:
                        continue
                    apply_pulse(device, cells, w, i, j, up if half else not up, strength, rng)
                    n_half += 1
    return n_full, n_half


def mean_count_cycle(device, cells, w, pd, px, d, x, lr, bl, mode, strength):
    """MeanCount: ``n = round(BL p_x p_d)`` coincidences, lines firing ``round(BL p)`` slots;
    per cell and quadrant the coincidences first, then the row's slots, then the column's."""
    rows, cols = w.shape
    row_sign, col_sign = np.sign(d), np.sign(x)
    for i in range(rows):
        for j in range(cols):
            r, c = round(bl * pd[i]), round(bl * px[j])
            n = min(round(bl * pd[i] * px[j]), r, c)
            for s, t in QUADRANTS:
                if not ((row_sign == s).any() and (col_sign == t).any()):
                    continue
                up = -math.copysign(1.0, lr) * s * t > 0
                rf, cf = row_sign[i] == s, col_sign[j] == t
                both = n if (rf and cf) else 0
                row_only = (r - both) if rf else 0
                col_only = (c - both) if cf else 0
                for _ in range(both):
                    apply_pulse(device, cells, w, i, j, up, 1.0)
                if mode == "none" or strength == 0:
                    continue
                for _ in range(row_only + col_only):
                    apply_pulse(device, cells, w, i, j, up, strength)
                if mode == "v3":
                    for _ in range(bl - both - row_only - col_only):
                        apply_pulse(device, cells, w, i, j, not up, strength)


def probabilities(x, d, lr, dw_min, bl_max, um=True, blm=True):
    """Firing probabilities ``(p_x, p_d)`` and ``BL`` of one vector pair, step by step as aihwkit
    1.2.0's ``PulsedUpdateMetaParameter::performUpdateManagement`` computes them (with ``|lr|``).

    aihwkit's ``B`` scales the x side and ``A`` the d side; when ``k > bl`` it shrinks the d
    maximum by ``bl / k`` before balancing, so only rows saturate.
    """
    lr = abs(lr)
    xmax, dmax = float(np.abs(x).max()), float(np.abs(d).max())
    k = lr * xmax * dmax / dw_min
    if k == 0:
        return np.zeros(len(x)), np.zeros(len(d)), 0
    bl = bl_max
    if blm:
        bl = min(math.ceil(k), bl_max)
    a = b = math.sqrt(lr / (dw_min * bl))
    if um:
        d_val = dmax
        if k > bl_max:
            d_val *= bl_max / k
        a *= math.sqrt(xmax / d_val)
        b *= math.sqrt(d_val / xmax)
    p_x = [min(b * abs(v), 1.0) for v in x]
    p_d = [min(a * abs(v), 1.0) for v in d]
    return np.array(p_x), np.array(p_d), bl


# The counter-based streams of progsim._rng, written again with Python integers (SplitMix64,
# Steele, Lea & Flood 2014), so that the naive trains take the same draws as the kernels'.
_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
DOMAIN_ROW_TRAIN, DOMAIN_COL_TRAIN = 1, 2


def _mix64(z):
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def uniforms(key, counter, domain, line, n):
    """The first ``n`` uniforms of the stream ``(key, counter, domain, line)``."""
    h = _mix64(int(key) ^ _mix64((counter * _GOLDEN + domain) & _MASK))
    state = _mix64((h + line * _M2 + _GOLDEN) & _MASK)
    out = []
    for _ in range(n):
        state = (state + _GOLDEN) & _MASK
        out.append((_mix64(state) >> 11) / 9007199254740992.0)
    return out


def stochastic_train(p, bl, key, counter, domain, line):
    """Bernoulli train: slot ``k`` fires when the stream's ``k``-th uniform is below ``p``."""
    if p <= 0 or bl == 0:
        return 0
    if p >= 1:
        return (1 << bl) - 1
    return sum(1 << k for k, u in enumerate(uniforms(key, counter, domain, line, bl)) if u < p)


def deterministic_trains(p_x, p_d, bl, x_res, d_res):
    """DeterministicImplicit: probabilities quantised to ``x_res``/``d_res``; row ``i`` fires in
    its first ``round(q_d BL)`` slots, column ``j`` in ``n = round(q_x BL)`` slots spread evenly,
    at ``floor((m + 1/2) BL / n)``."""
    rows = []
    for p in p_d:
        n = min(round(round(p / d_res) * d_res * bl), bl)
        rows.append((1 << n) - 1)
    cols = []
    for p in p_x:
        n = min(round(round(p / x_res) * x_res * bl), bl)
        cols.append(sum(1 << math.floor((m + 0.5) * bl / n) for m in range(n)))
    return rows, cols


def cycles(scheme, x, d, lr, dw_min, key, counter0):
    """Per cycle ``b`` of a batch: ``(bl, p_x, p_d, row_trains, col_trains)`` (trains as ints;
    MeanCount has none), from this module's probabilities and trains."""
    out = []
    for b in range(x.shape[0]):
        p_x, p_d, bl = probabilities(x[b], d[b], lr, dw_min, scheme.bl, scheme.update_management,
                                     scheme.bl_management)
        name = type(scheme).__name__
        if name == "Stochastic":
            rows = [stochastic_train(p, bl, key, counter0 + b, DOMAIN_ROW_TRAIN, i) for i, p in enumerate(p_d)]
            cols = [stochastic_train(p, bl, key, counter0 + b, DOMAIN_COL_TRAIN, j) for j, p in enumerate(p_x)]
        elif name == "DeterministicImplicit":
            rows, cols = deterministic_trains(p_x, p_d, bl, scheme.x_res, scheme.d_res)
        else:
            rows = cols = None
        out.append((bl, p_x, p_d, rows, cols))
    return out


def mvm_perfect(w, x):
    """y_b = W x_b by explicit sums."""
    return np.array([[sum(w[i, j] * xb[j] for j in range(w.shape[1])) for i in range(w.shape[0])] for xb in x])
