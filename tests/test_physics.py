"""The simulator's physics against analytic expectations."""

import numpy as np

from progsim import Crossbar, HalfSelect, IO, devices, pulses
from progsim.pulses import make_cycles

PERFECT = IO(is_perfect=True)


def _flat_constant(**kw):
    """A ConstantStep device without noise, variation or (reachable) bounds."""
    base = dict(dw_min=1e-3, dw_min_dtod=0.0, dw_min_std=0.0, up_down=0.0, up_down_dtod=0.0,
                w_max=100.0, w_min=-100.0, w_max_dtod=0.0, w_min_dtod=0.0)
    base.update(kw)
    return devices.ConstantStep(**base)


def test_stochastic_update_is_unbiased():
    """E[dW] = -lr d x^T for ConstantStep without noise or bounds (Gokmen & Vlasov 2016).

    Per cycle the count n_ij of a cell is Binomial(BL, q_ij), q_ij = p_x p_d, since row and
    column slots are independent Bernoulli draws; so dW_ij = -sign n_ij dw has variance
    dw^2 BL q (1 - q) per cycle and the mean over N cycles a standard error of
    dw sqrt(BL q (1 - q) / N). We allow 5 standard errors per cell (false alarm over 30 cells
    ~2e-5, for any seed)."""
    rng = np.random.default_rng(1)
    rows, cols, n_cycles, lr = 6, 5, 3000, 0.01
    xb = Crossbar(rows, cols, device=_flat_constant(), pulses=pulses.Stochastic(bl=31), io=PERFECT, seed=4)
    x = rng.uniform(-1, 1, cols)
    d = rng.uniform(-1, 1, rows)
    xb.update(np.tile(x, (n_cycles, 1)), np.tile(d, (n_cycles, 1)), lr)
    mean = xb.weights / n_cycles
    expected = -lr * np.outer(d, x)
    bl = int(np.ceil(lr * np.abs(x).max() * np.abs(d).max() / 1e-3))
    a = np.sqrt(lr / (1e-3 * bl)) * np.sqrt(np.abs(d).max() / np.abs(x).max())
    b = np.sqrt(lr / (1e-3 * bl)) * np.sqrt(np.abs(x).max() / np.abs(d).max())
    q = np.outer(np.minimum(b * np.abs(d), 1), np.minimum(a * np.abs(x), 1))
    np.testing.assert_allclose(q * bl * 1e-3, np.abs(expected), rtol=1e-12)  # probabilities unclipped
    se = 1e-3 * np.sqrt(bl * q * (1 - q) / n_cycles)
    assert np.all(np.abs(mean - expected) <= 5 * se)
    assert xb.counters["update_cycles"] == n_cycles


def test_softbounds_saturates_along_the_analytic_curve():
    """Repeated up pulses on SoftBounds: w_{n+1} = w_n + dw (1 - w_n / w_max), so
    w_n = w_max - (w_max - w_0) (1 - dw / w_max)^n, approaching w_max and never passing it."""
    dev = devices.SoftBounds(dw_min=0.01, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0,
                             w_max=0.6, w_min=-0.6, w_max_dtod=0.0, w_min_dtod=0.0)
    xb = Crossbar(1, 1, device=dev, io=PERFECT, seed=0)
    w0 = -0.2
    xb.set_weights([[w0]])
    trace = []
    for _ in range(400):
        xb.pulse([0], [0], [1])
        trace.append(xb.weights[0, 0])
    n = np.arange(1, 401)
    analytic = 0.6 - (0.6 - w0) * (1 - 0.01 / 0.6) ** n
    np.testing.assert_allclose(trace, analytic, rtol=1e-12, atol=1e-15)
    assert max(trace) < 0.6 and trace[-1] > 0.6 - 0.8 * np.exp(-400 * 0.01 / 0.6) - 1e-9
    # down pulses follow the mirrored law towards w_min
    for _ in range(50):
        xb.pulse([0], [0], [-1])
    w = trace[-1]
    for _ in range(50):
        w -= 0.01 * (1 - w / -0.6)
    np.testing.assert_allclose(xb.weights[0, 0], w, rtol=1e-12)


def _popcount(v):
    return bin(int(v)).count("1")


def test_v2_half_select_losses_match_the_design_count():
    """V/2 on a symmetric ConstantStep cell: per cycle the cell (signs s_i, t_j; row and column
    train popcounts R_i, C_j; coincidences N_ij) gets N full pulses in its direction delta,
    R + C - 2N half pulses in delta from its own quadrant, and R_i (C_j) half pulses in -delta
    from the quadrant sharing only its row (column), when that quadrant runs."""
    rng = np.random.default_rng(5)
    rows, cols, h, lr = 7, 6, 0.1, 0.05
    dev = _flat_constant(dw_min=0.01, dw_min_dtod=0.3)
    xb = Crossbar(rows, cols, device=dev, pulses=pulses.Stochastic(bl=31),
                  half_select=HalfSelect("v2", strength=h), io=PERFECT, seed=9)
    x = rng.uniform(-1, 1, (1, cols))
    d = rng.uniform(-1, 1, (1, rows))
    cyc = make_cycles(xb.pulses, x, d, lr, dev.dw_min, xb._key, xb._counter)
    s, t = np.sign(d[0]), np.sign(x[0])
    dw = xb.cells.dw_up
    expected = np.zeros((rows, cols))
    n_half = 0
    for i in range(rows):
        for j in range(cols):
            r, c = _popcount(cyc.row_bits[0, i]), _popcount(cyc.col_bits[0, j])
            nn = _popcount(int(cyc.row_bits[0, i]) & int(cyc.col_bits[0, j]))
            own = r + c - 2 * nn
            row_only = r if (t == -t[j]).any() else 0
            col_only = c if (s == -s[i]).any() else 0
            delta = -np.sign(lr) * s[i] * t[j]
            expected[i, j] = dw[i, j] * delta * (nn + h * own - h * (row_only + col_only))
            n_half += own + row_only + col_only
    xb.update(x, d, lr)
    np.testing.assert_allclose(xb.weights, expected, rtol=1e-12, atol=1e-15)
    assert xb.counters["pulses_half"] == n_half
    assert n_half > xb.counters["pulses_full"] > 0


def test_device_to_device_spreads_have_the_configured_std():
    """aihwkit's per-cell draws: ``(dw_up + dw_down) / (2 dw_min) = 1 + dw_min_dtod xi - |up_down|/2``
    and ``(dw_up - dw_down) / (2 dw_min) = up_down/2 + up_down_dtod xi'`` (the spread of the
    asymmetry is additive in dw_min units); bounds relative to their means. The sample std of
    n normals has standard error sigma / sqrt(2 n), the mean sigma / sqrt(n); 5 of them allowed.
    (The ~0.1% of step draws below zero, reflected, move the stds far less than that.)"""
    dev = devices.ConstantStep(dw_min=0.002, dw_min_dtod=0.3, up_down=0.1, up_down_dtod=0.05,
                               w_max=0.6, w_min=-0.4, w_max_dtod=0.2, w_min_dtod=0.1)
    xb = Crossbar(200, 200, device=dev, seed=2)
    cells = xb.cells
    n = cells.dw_up.size
    assert np.all(cells.dw_up > 0) and np.all(cells.dw_down > 0)  # reflected: no dead cells
    gain = (cells.dw_up + cells.dw_down) / (2 * 0.002)
    ud = (cells.dw_up - cells.dw_down) / (2 * 0.002)
    for values, sigma, mean in ((gain, 0.3, 0.95), (ud, 0.05, 0.05),
                                (cells.w_max / 0.6, 0.2, 1.0), (cells.w_min / -0.4, 0.1, 1.0)):
        assert abs(values.std() - sigma) < 5 * sigma / np.sqrt(2 * n)
        assert abs(values.mean() - mean) < 5 * sigma / np.sqrt(n)
    assert np.all(cells.w_min <= 0) and np.all(cells.w_max >= 0)


def test_ideal_scheme_is_the_exact_increment(rng):
    xb = Crossbar(4, 3, device=devices.Ideal(), pulses=pulses.Ideal(), io=PERFECT)
    w0 = rng.normal(size=(4, 3))
    xb.set_weights(w0)
    x, d = rng.normal(size=(5, 3)), rng.normal(size=(5, 4))
    xb.update(x, d, 0.1)
    expected = w0 - 0.1 * sum(np.outer(d[b], x[b]) for b in range(5))
    np.testing.assert_allclose(xb.weights, expected, rtol=1e-12)


def test_ideal_with_device_clips_at_each_cycle():
    dev = devices.ConstantStep(w_max=0.5, w_min=-0.5, w_max_dtod=0.0, w_min_dtod=0.0)
    xb = Crossbar(1, 1, device=dev, pulses=pulses.IdealWithDevice(), io=PERFECT)
    # +0.8 (clipped at 0.5), then -0.3: 0.2, whereas the unclipped sum would give 0.5
    xb.update([[1.0], [1.0]], [[-0.8], [0.3]], 1.0)
    np.testing.assert_allclose(xb.weights, [[0.2]])


def test_ideal_device_pulses_are_exact_multiples_of_dw_min(rng):
    xb = Crossbar(5, 4, device=devices.Ideal(dw_min=0.01), pulses=pulses.Stochastic(bl=31), io=PERFECT)
    xb.update(rng.uniform(-1, 1, (20, 4)), rng.uniform(-1, 1, (20, 5)), 0.05)
    k = xb.weights / 0.01
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    assert np.abs(np.round(k)).sum() <= xb.counters["pulses_full"]


def test_single_pulse_half_selects_its_row_and_column():
    """One pulse on (i, j) under V/2 moves (i, j) by dw and the other rows+cols-2 cells of its
    lines by strength*dw in the same direction; under V/3 every other cell by -strength*dw."""
    dev = _flat_constant(dw_min=0.01)
    for mode in ("v2", "v3"):
        xb = Crossbar(4, 5, device=dev, half_select=HalfSelect(mode, strength=0.2), io=PERFECT)
        xb.pulse([1], [3], [2])
        expected = np.zeros((4, 5))
        expected[1, :] = expected[:, 3] = 2 * 0.2 * 0.01
        if mode == "v3":
            expected[np.ix_([0, 2, 3], [0, 1, 2, 4])] = -2 * 0.2 * 0.01
        expected[1, 3] = 2 * 0.01
        np.testing.assert_allclose(xb.weights, expected, rtol=1e-12)
        n_half = 2 * ((4 + 5 - 2) + (12 if mode == "v3" else 0))
        assert xb.counters["pulses_single"] == 2 and xb.counters["pulses_half"] == n_half


def test_piecewise_from_conductance_trace_reproduces_the_measured_steps():
    """A trace generated by a SoftBounds-like law is fitted back: the table's nominal step at
    each node equals the measured step there (linear law: exact up to interpolation)."""
    g = [1.0]
    for _ in range(60):
        g.append(g[-1] + 0.5 * (1 - (g[-1] - 1.0) / 40.0))  # step falls linearly with g
    g_up = np.array(g)
    g_down = g_up[::-1].copy()
    dev = devices.Piecewise.from_conductance_trace(g_up, g_down, n_nodes=8, w_max=0.5, w_min=-0.5)
    lo, hi = g_up.min(), g_up.max()
    scale = 1.0 / (hi - lo)
    for w in np.linspace(-0.4, 0.3, 5):
        gw = lo + (w + 0.5) / scale
        measured_up = 0.5 * (1 - (gw - 1.0) / 40.0) * scale
        assert abs(dev.nominal_step(w, True) - measured_up) < 1e-9


def linear_step_factors(device, shape, w0, seed=0):
    """Each cell's slope factor ``gamma_ij``, measured by one up and one down pulse from ``w0``
    (and ``-w0``) on a LinearStep tile without step noise or step spread: the up step is
    ``dw_min (1 - gamma_up_ij w0 / w_ref)``, so ``gamma_up_ij = (1 - dw / dw_min) w_ref / w0``
    with ``w_ref`` the nominal ``w_max`` (``w_min`` down). Returns (up, down, cells) with NaN
    where a cell's drawn bound clipped the start state."""
    xb = Crossbar(*shape, device=device, io=PERFECT, seed=seed)
    rows, cols = np.indices(shape).reshape(2, -1)
    out = []
    for start, n, ref in ((w0, 1, device.w_max), (-w0, -1, device.w_min)):
        xb.set_weights(np.full(shape, start))
        before = xb.weights
        xb.pulse(rows, cols, np.full(rows.size, n))
        dw = np.abs(xb.weights - before)
        gamma = (1.0 - dw / device.dw_min) * ref / start
        reachable = (xb.cells.w_max > abs(w0) + 2 * device.dw_min) & (xb.cells.w_min < -abs(w0) - 2 * device.dw_min)
        out.append(np.where(reachable, gamma, np.nan))
    return out[0], out[1], xb.cells


def _ls_spread_device(**kw):
    base = dict(dw_min=1e-3, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max=1.0, w_min=-1.0,
                w_max_dtod=0.3, w_min_dtod=0.3, gamma_up=0.3, gamma_down=0.2)
    base.update(kw)
    return devices.LinearStep(**base)


def test_linear_step_slopes_spread_between_cells_against_the_mean_bound():
    """aihwkit's LinearStep law: ``gamma_ij = |gamma + gamma_dtod xi|`` per cell, measured against
    the nominal bound. With gamma 0.3 (up), 0.2 (down) and dtod 0.05 the absolute value never acts
    (6 sigma), so the measured factors of n cells have mean gamma (standard error
    0.05/sqrt(n)) and standard deviation 0.05 (standard error of a sample std of a normal:
    0.05/sqrt(2(n-1))); 5 standard errors each. The factors do not follow the cells' bounds
    (drawn with spread 0.3): their correlation with 1/w_max_ij is within 5/sqrt(n) of 0. The
    law before (the cell's own bound) gives a std near 0.3 * 0.3 = 0.09 and a correlation near 1."""
    up, down, cells = linear_step_factors(_ls_spread_device(gamma_up_dtod=0.05, gamma_down_dtod=0.05), (40, 40), 0.25)
    for g, gamma, bound in ((up, 0.3, cells.w_max), (down, 0.2, -cells.w_min)):
        ok = np.isfinite(g)
        n = ok.sum()
        assert n > 1500
        assert abs(g[ok].mean() - gamma) < 5 * 0.05 / np.sqrt(n)
        assert abs(g[ok].std(ddof=1) - 0.05) < 5 * 0.05 / np.sqrt(2 * (n - 1))
        assert abs(np.corrcoef(g[ok], 1.0 / bound[ok])[0, 1]) < 5 / np.sqrt(n)


def test_linear_step_without_slope_spread_has_one_slope_despite_the_bound_spread():
    """``gamma_dtod = 0`` with mean-bound reference: every cell has exactly the nominal slope
    (up to rounding), whatever its drawn bounds; with ``mean_bound_reference=False`` the slope
    follows the cell's own bound, ``gamma w_max / w_max_ij`` in nominal units."""
    dev = _ls_spread_device(gamma_up_dtod=0.0, gamma_down_dtod=0.0)
    up, down, _ = linear_step_factors(dev, (12, 12), 0.25)
    np.testing.assert_allclose(up[np.isfinite(up)], 0.3, rtol=1e-9)
    np.testing.assert_allclose(down[np.isfinite(down)], 0.2, rtol=1e-9)
    own = _ls_spread_device(gamma_up_dtod=0.0, gamma_down_dtod=0.0, mean_bound_reference=False)
    up, down, cells = linear_step_factors(own, (12, 12), 0.25)
    ok = np.isfinite(up)
    np.testing.assert_allclose(up[ok], 0.3 * 1.0 / cells.w_max[ok], rtol=1e-9)
    ok = np.isfinite(down)
    np.testing.assert_allclose(down[ok], 0.2 * -1.0 / cells.w_min[ok], rtol=1e-9)


def test_state_without_slope_factors_restores_with_the_tiles_own():
    """A state saved before LinearStep cells carried their slope factors loads into a tile of the
    same configuration and seed, which keeps its own factors: the next update equals the
    original tile's bit for bit."""
    dev = _ls_spread_device(gamma_up_dtod=0.05, gamma_down_dtod=0.05, dw_min_std=0.3)
    rng = np.random.default_rng(2)
    x, d = rng.uniform(-1, 1, (3, 5)), rng.uniform(-1, 1, (3, 4))
    a = Crossbar(4, 5, device=dev, seed=6)
    a.update(x, d, 0.05)
    state = a.state_dict()
    for name in ("gamma_up", "gamma_down"):
        del state["cells"][name]
    b = Crossbar(4, 5, device=dev, seed=6)
    b.load_state_dict(state)
    a.update(x, d, 0.05)
    b.update(x, d, 0.05)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.cells.gamma_up, b.cells.gamma_up)
