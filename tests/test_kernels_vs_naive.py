"""The compiled pulsed update against the slot-by-slot reference of tests/naive.py."""

import dataclasses

import numpy as np
import pytest

import naive
from progsim import Crossbar, HalfSelect, IO, _kernels, devices, pulses
from progsim.pulses import make_cycles

NOISELESS = {
    "constant": devices.ConstantStep(dw_min=0.02, dw_min_std=0.0, w_max=0.3, w_min=-0.3, up_down=0.1),
    "softbounds": devices.SoftBounds(dw_min=0.02, dw_min_std=0.0, w_max=0.3, w_min=-0.3),
    "linear": devices.LinearStep(dw_min=0.02, dw_min_std=0.0, gamma_up=0.4, gamma_down=0.7),
    "exp": devices.ExpStep(dw_min=0.02, dw_min_std=0.0, w_max=0.5, w_min=-0.5),
    "pow": devices.PowStep(dw_min=0.02, dw_min_std=0.0, gamma=1.7, w_max=0.4, w_min=-0.4),
    "piecewise": devices.Piecewise(dw_min=0.02, dw_min_std=0.0, nodes_up=(1.5, 1.0, 0.6, 0.1),
                                   nodes_down=(0.2, 0.8, 1.0, 1.4), w_max=0.3, w_min=-0.3),
}


def _setup(device, scheme, mode, strength, seed=3, batch=3, shape=(5, 4)):
    hs = HalfSelect(mode, strength=strength) if mode != "none" else HalfSelect()
    xb = Crossbar(*shape, device=device, pulses=scheme, half_select=hs,
                  io=IO(is_perfect=True), seed=seed)
    rng = np.random.default_rng(seed)
    xb.set_weights(rng.uniform(-0.25, 0.25, shape))
    x = rng.uniform(-1, 1, (batch, shape[1]))
    d = rng.uniform(-1, 1, (batch, shape[0]))
    x[0, 1] = 0.0  # a silent column and row: they belong to no quadrant
    d[-1, 2] = 0.0
    return xb, x, d


def _naive_run(xb, x, d, lr):
    """Replay the update with the naive model: its own probabilities (aihwkit's update
    management, step by step) and its own trains (the same counter-based draws, rebuilt with
    Python integers), so nothing of the production ``make_cycles`` is reused."""
    w = xb.weights.astype(np.float64)
    cells = xb.cells
    hs = xb.half_select
    totals = np.zeros(2, dtype=np.int64)
    cycles = naive.cycles(xb.pulses, x, d, lr, xb.device.dw_min, xb._key, xb._counter)
    for b, (bl, p_x, p_d, rows, cols) in enumerate(cycles):
        if bl == 0:
            continue
        if xb.pulses.kind == pulses.KIND_MEAN_COUNT:
            naive.mean_count_cycle(xb.device, cells, w, p_d, p_x, d[b], x[b], lr, bl, hs.mode, hs.strength)
            continue
        totals += naive.update_cycle(xb.device, cells, w, rows, cols, d[b], x[b], lr, bl, hs.mode, hs.strength)
    return w, totals


@pytest.mark.parametrize("dev", sorted(NOISELESS))
@pytest.mark.parametrize("mode", ["none", "v2", "v3"])
def test_stochastic_update_equals_naive(dev, mode):
    xb, x, d = _setup(NOISELESS[dev], pulses.Stochastic(bl=13), mode, 0.3)
    lr = 0.05
    expected, totals = _naive_run(xb, x, d, lr)
    xb.update(x, d, lr)
    np.testing.assert_array_equal(xb.weights, expected)
    c = xb.counters
    assert (c["pulses_full"], c["pulses_half"]) == tuple(totals)
    assert c["pulses_full"] > 0 and (mode == "none") == (c["pulses_half"] == 0)


@pytest.mark.parametrize("mode", ["none", "v2", "v3"])
def test_mean_count_and_deterministic_equal_naive(mode):
    for scheme in (pulses.MeanCount(bl=11), pulses.DeterministicImplicit(bl=11)):
        xb, x, d = _setup(NOISELESS["softbounds"], scheme, mode, 0.25, seed=7)
        lr = -0.03  # a negative rate flips every direction
        expected, _ = _naive_run(xb, x, d, lr)
        xb.update(x, d, lr)
        np.testing.assert_array_equal(xb.weights, expected)


def test_noisy_update_matches_naive_statistics():
    """Same trains, cycle-to-cycle noise on: the kernel's and the naive model's per-cell
    increments agree in mean and variance. Far from the bounds a ConstantStep cell's increment
    is a sum of independent pulses ``+-scale dw (1 + std xi)`` with ``E[xi] = 0``, so both means
    must also equal the noiseless replay."""
    device = devices.ConstantStep(dw_min=0.01, dw_min_std=0.4, dw_min_dtod=0.2, w_max=10.0, w_min=-10.0)
    xb, x, d = _setup(device, pulses.Stochastic(bl=9), "v2", 0.2, seed=11, batch=1, shape=(3, 4))
    lr = 0.02
    cyc = make_cycles(xb.pulses, x, d, lr, device.dw_min, xb._key, xb._counter)
    w0 = xb.hidden_weights
    noiseless = dataclasses.replace(device, dw_min_std=0.0)
    ref = w0.copy()
    naive.update_cycle(noiseless, xb.cells, ref, cyc.row_bits[0], cyc.col_bits[0], d[0], x[0], lr, int(cyc.bl[0]), "v2", 0.2)
    mean_expected = ref - w0
    n_reps = 400
    rng = np.random.default_rng(0)
    k_out, n_out = [], []
    cfg = xb._kernel_cfg(1.0, 0)
    for r in range(n_reps):
        w = w0.copy()
        counts = np.zeros((3, 2), dtype=np.int64)
        _kernels.pulsed_update(w, w, xb._cells, device.model, device.shape_params, cyc,
                               cfg._replace(key=np.uint64(1000 + r)), counts)
        k_out.append(w - w0)
        wn = w0.copy()
        naive.update_cycle(device, xb.cells, wn, cyc.row_bits[0], cyc.col_bits[0], d[0], x[0], lr, int(cyc.bl[0]),
                           "v2", 0.2, rng=rng)
        n_out.append(wn - w0)
    k_out, n_out = np.array(k_out), np.array(n_out)
    se = k_out.std(axis=0, ddof=1) / np.sqrt(n_reps)
    se_n = n_out.std(axis=0, ddof=1) / np.sqrt(n_reps)
    # 5 standard errors per cell: a false alarm over 12 cells has probability ~7e-6
    assert np.all(np.abs(k_out.mean(axis=0) - mean_expected) <= 5 * se + 1e-15)
    assert np.all(np.abs(n_out.mean(axis=0) - mean_expected) <= 5 * se_n + 1e-15)
    assert np.all(np.abs(k_out.mean(axis=0) - n_out.mean(axis=0)) <= 5 * np.hypot(se, se_n) + 1e-15)
    # variances: the ratio of two sample variances of n=400 normals has sd ~ sqrt(4/n) = 0.1
    vk, vn = k_out.var(axis=0, ddof=1), n_out.var(axis=0, ddof=1)
    moved = vn > 0
    assert moved.sum() >= 6 and np.all(vk[~moved] == 0)
    assert np.all(np.abs(vk[moved] / vn[moved] - 1.0) < 0.5)


@pytest.mark.parametrize("name", ["constant", "softbounds", "linear", "exp"])
def test_fast_and_general_kernels_take_the_same_steps_with_the_same_draws(name):
    """Without half-selection the fast kernel runs; the general kernel must apply the same
    pulses in the same order with the same cycle-to-cycle and write-noise draws, so with both
    noises on they give bit-identical hidden and apparent weights and counts. A kernel that
    drew in another order, or skipped or doubled a pulse, would differ in many cells. The fast
    kernel picks a cell's step size and slope by arithmetic on its direction, the general one by
    branches: LinearStep against the mean bounds ("linear") and against each cell's own
    ("softbounds") check both picks."""
    device = dataclasses.replace(NOISELESS[name], dw_min_std=0.4, write_noise_std=3.0)
    xb, x, d = _setup(device, pulses.Stochastic(bl=31), "none", 0.0, batch=6, shape=(9, 7))
    lr = 0.05
    cyc = make_cycles(xb.pulses, x, d, lr, device.dw_min, xb._key, 0)
    cfg = xb._kernel_cfg(1.0, 0)
    w0 = xb.hidden_weights
    runs = {}
    for fast in (True, False):
        w, wa, counts = w0.copy(), w0.copy(), np.zeros((9, 2), dtype=np.int64)
        _kernels.update_kernel(device.model, fast, parallel=False)(w, wa, xb._cells, device.shape_params, cyc, cfg,
                                                                    counts)
        runs[fast] = (w, wa, counts)
    (w_f, wa_f, c_f), (w_g, wa_g, c_g) = runs[True], runs[False]
    assert c_f[:, 0].sum() > 50  # enough pulses for the comparison to mean something
    np.testing.assert_array_equal(c_f, c_g)
    np.testing.assert_array_equal(w_f, w_g)
    np.testing.assert_array_equal(wa_f, wa_g)
    assert not np.array_equal(w_f, w0) and not np.array_equal(wa_f, w_f)


@pytest.mark.parametrize("mode", ["none", "v3"])
def test_serial_and_parallel_kernels_give_the_same_bits(mode):
    """The serial variant (small tiles, one thread) and the parallel one (prange over rows)
    draw from the same per-row streams: identical weights, apparent weights and counts."""
    device = devices.ConstantStep(dw_min=0.01, dw_min_std=0.3, write_noise_std=1.0)
    xb, x, d = _setup(device, pulses.Stochastic(bl=31), mode, 0.2, batch=4, shape=(12, 10))
    cyc = make_cycles(xb.pulses, x, d, 0.05, device.dw_min, xb._key, 0)
    cfg = xb._kernel_cfg(1.0, 0)
    w0 = xb.hidden_weights
    out = []
    for parallel in (False, True):
        w, wa, counts = w0.copy(), w0.copy(), np.zeros((12, 2), dtype=np.int64)
        _kernels.pulsed_update(w, wa, xb._cells, device.model, device.shape_params, cyc, cfg, counts, parallel=parallel)
        out.append((w, wa, counts))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    assert out[0][2][:, 0].sum() > 20 and (mode == "none") == (out[0][2][:, 1].sum() == 0)
    p = np.random.default_rng(0).uniform(0, 1, (3, 200))
    bl = np.array([31, 7, 0])
    np.testing.assert_array_equal(pulses._bernoulli_serial(p, bl, xb._key, np.uint64(5), 1),
                                  pulses._bernoulli_parallel(p, bl, xb._key, np.uint64(5), 1))


def test_half_select_none_rejects_a_disturb():
    with pytest.raises(ValueError, match="The 'strength' parameter of HalfSelect must be 0.0 with mode 'none'"):
        HalfSelect("none", strength=0.5)
    with pytest.raises(ValueError, match="The 'prob' parameter of HalfSelect"):
        HalfSelect("none", prob=0.5)
    assert HalfSelect("none").code == 0 and HalfSelect("v3", strength=0.5).code == 2


@pytest.mark.parametrize("scheme", [pulses.Stochastic(bl=13), pulses.DeterministicImplicit(bl=13),
                                    pulses.MeanCount(bl=13), pulses.Stochastic(bl=9, update_management=False),
                                    pulses.Stochastic(bl=9, bl_management=False)],
                         ids=["stochastic", "deterministic", "mean-count", "no-um", "no-blm"])
def test_saturated_updates_equal_naive(scheme):
    """lr 0.5 asks for ~25 pulses of the largest cell, beyond BL 13 (9): the saturated branch
    of update management (only the d side shrinks), compared with the naive replay."""
    xb, x, d = _setup(NOISELESS["constant"], scheme, "v2", 0.2, seed=5)
    expected, totals = _naive_run(xb, x, d, 0.5)
    xb.update(x, d, 0.5)
    np.testing.assert_array_equal(xb.weights, expected)
    if scheme.kind != pulses.KIND_MEAN_COUNT:
        assert (xb.counters["pulses_full"], xb.counters["pulses_half"]) == tuple(totals)
    assert xb.counters["pulses_full"] > 0
