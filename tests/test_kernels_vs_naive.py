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
    xb = Crossbar(*shape, device=device, pulses=scheme, half_select=HalfSelect(mode, strength=strength),
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


@pytest.mark.parametrize("name", ["constant", "softbounds", "exp"])
def test_fast_and_general_kernels_take_the_same_steps_with_the_same_draws(name):
    """Without half-selection the per-model fast kernel runs; the general kernel must apply
    the same pulses in the same order with the same cycle-to-cycle draws, so with c2c noise
    on (and write noise off) both give bit-identical weights and counts. A kernel that drew
    in another order, or skipped or doubled a pulse, would differ in many cells."""
    device = dataclasses.replace(NOISELESS[name], dw_min_std=0.4)
    xb, x, d = _setup(device, pulses.Stochastic(bl=31), "none", 0.0, batch=6, shape=(9, 7))
    lr = 0.05
    cyc = make_cycles(xb.pulses, x, d, lr, device.dw_min, xb._key, 0)
    cfg = xb._kernel_cfg(1.0, 0)
    w0 = xb.hidden_weights
    w_fast, w_gen = w0.copy(), w0.copy()
    c_fast, c_gen = np.zeros((9, 2), dtype=np.int64), np.zeros((9, 2), dtype=np.int64)
    _kernels.pulsed_update(w_fast, w_fast, xb._cells, device.model, device.shape_params, cyc, cfg, c_fast)
    _kernels.general_update(w_gen, w_gen, xb._cells, device.model, device.shape_params, cyc, cfg, c_gen)
    assert c_fast[:, 0].sum() > 50  # enough pulses for the comparison to mean something
    np.testing.assert_array_equal(c_fast, c_gen)
    np.testing.assert_array_equal(w_fast, w_gen)
    assert not np.array_equal(w_fast, w0)


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
