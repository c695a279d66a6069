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


def step_magnitude(device, w, up, dw, w_max, w_min):
    """Mean step of ``device`` at state ``w`` (DESIGN.md device table), never negative."""
    name = type(device).__name__
    if name in ("Ideal", "ConstantStep"):
        return dw
    if name in ("LinearStep", "SoftBounds"):
        if up:
            f = 1.0 - (device.gamma_up / w_max) * w if w_max != 0 else 1.0
        else:
            f = 1.0 - (device.gamma_down / w_min) * w if w_min != 0 else 1.0
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
    mag = step_magnitude(device, float(w[i, j]), up, dw, w_max, w_min) * scale
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
    """Gokmen & Vlasov stochastic-pulse probabilities for one vector pair (DESIGN.md)."""
    xmax, dmax = np.abs(x).max(), np.abs(d).max()
    bl = min(math.ceil(abs(lr) * xmax * dmax / dw_min), bl_max) if blm else bl_max
    bl = max(bl, 1)
    a = b = math.sqrt(abs(lr) / (dw_min * bl))
    if um:
        a, b = a * math.sqrt(dmax / xmax), b * math.sqrt(xmax / dmax)
    return np.minimum(a * np.abs(x), 1.0), np.minimum(b * np.abs(d), 1.0), bl


def mvm_perfect(w, x):
    """y_b = W x_b by explicit sums."""
    return np.array([[sum(w[i, j] * xb[j] for j in range(w.shape[1])) for i in range(w.shape[0])] for xb in x])
