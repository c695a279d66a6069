"""Parity with aihwkit 1.2.0 where progsim follows its conventions (issue 7, section 1).

Each test asserts against aihwkit's rule written out from its C++ source
(``src/rpucuda/rpu_pulsed_meta_parameter.cpp`` ``performUpdateManagement``,
``src/rpucuda/rpu_pulsed_device.cpp`` ``PulsedRPUDevice::populate``); where aihwkit itself is
importable, a side-by-side test compares with it too (skipped otherwise).
"""

import math

import numpy as np
import pytest

import naive
from progsim import Crossbar, IO, devices, pulses
from test_physics import _flat_constant

PERFECT = IO(is_perfect=True)


# ----------------------------------------------------------------------------- update management


@pytest.mark.parametrize("um,blm", [(True, True), (True, False), (False, True), (False, False)])
def test_probabilities_follow_aihwkit_update_management(um, blm):
    """Firing probabilities and BL equal aihwkit's procedure (tests/naive.py, step by step) for
    unsaturated and saturated cycles (lr from 1e-4 to 10, so ``k = lr xmax dmax / dw_min`` runs
    from below 1 to far beyond bl), with zeros in the vectors."""
    rng = np.random.default_rng(0)
    scheme = pulses.Stochastic(bl=31, update_management=um, bl_management=blm)
    n_sat = 0
    for lr in (1e-4, 3e-3, 0.02, 0.1, 1.0, 10.0):
        x = rng.uniform(-1, 1, (6, 9)) * rng.uniform(0.1, 3.0, (6, 1))
        d = rng.uniform(-1, 1, (6, 7)) * rng.uniform(0.1, 3.0, (6, 1))
        x[:, 0] = d[:, 1] = 0.0
        px, pd, bl = pulses.probabilities(scheme, x, d, lr, 1e-3)
        for b in range(6):
            ex, ed, ebl = naive.probabilities(x[b], d[b], lr, 1e-3, 31, um, blm)
            assert bl[b] == ebl
            np.testing.assert_allclose(px[b], ex, rtol=1e-12, atol=0)
            np.testing.assert_allclose(pd[b], ed, rtol=1e-12, atol=0)
            n_sat += lr * np.abs(x[b]).max() * np.abs(d[b]).max() / 1e-3 > 31
    assert n_sat >= 12  # half of the cycles exercise the saturated branch


def test_saturated_update_keeps_the_proportions_of_x():
    """k > bl: aihwkit shrinks only the d side, so the column probabilities are exactly
    ``|x| / max|x|`` (the largest fires in every slot) and the rows clip at 1."""
    x = np.array([[0.25, -1.0, 0.5, 0.0]])
    d = np.array([[1.0, -0.5, 0.01]])
    lr, dw_min, bl = 0.1, 1e-3, 31  # k = 100 > 31
    px, pd, n = pulses.probabilities(pulses.Stochastic(bl=bl), x, d, lr, dw_min)
    assert n[0] == bl
    np.testing.assert_array_equal(px[0], [0.25, 1.0, 0.5, 0.0])
    np.testing.assert_allclose(pd[0], [1.0, 1.0, 0.01 * 100 / 31], rtol=1e-14)


def test_saturated_update_slope_matches_aihwkit():
    """A noiseless, unbounded ConstantStep tile repeats one saturated cycle (lr 0.1: k up to
    100 > BL 31). The mean change per cycle of every cell equals aihwkit's expectation
    ``-sign(d x) BL p_x p_d dw_min`` with p from aihwkit's update management. Per cycle the
    pulse count is Binomial(BL, q), q = p_x p_d, so the mean of N cycles has standard error
    ``dw_min sqrt(BL q (1 - q) / N)``; 5 of them per cell (false alarm over 192 cells ~1e-4).
    The old scheme (both sides saturated) predicts a slope 0.05 higher here, ~20 standard
    errors of the slope away."""
    rng = np.random.default_rng(3)
    rows, cols, n_cycles, lr, dw = 16, 12, 1500, 0.1, 1e-3
    x = rng.uniform(-1, 1, cols)
    d = rng.uniform(-1, 1, rows)
    x[np.argmax(np.abs(x))] = 1.0
    d[np.argmax(np.abs(d))] = 1.0
    xb = Crossbar(rows, cols, device=_flat_constant(), pulses=pulses.Stochastic(bl=31), io=PERFECT, seed=1)
    xb.update(np.tile(x, (n_cycles, 1)), np.tile(d, (n_cycles, 1)), lr)
    mean = xb.weights / n_cycles
    p_x, p_d, bl = naive.probabilities(x, d, lr, dw, 31)
    q = np.outer(p_d, p_x)
    expected = -np.sign(np.outer(d, x)) * bl * q * dw
    se = dw * np.sqrt(bl * q * (1 - q) / n_cycles)
    assert np.all(np.abs(mean - expected) <= 5 * se + 1e-12)  # cells with q = 1: rounding only
    target = -lr * np.outer(d, x)
    slope = (mean * target).sum() / (target * target).sum()
    slope_aihwkit = (expected * target).sum() / (target * target).sum()
    a = math.sqrt(lr / (dw * bl))
    q_old = np.outer(np.minimum(a * np.abs(d), 1), np.minimum(a * np.abs(x), 1))
    slope_old = (-np.sign(np.outer(d, x)) * bl * q_old * dw * target).sum() / (target * target).sum()
    se_slope = np.sqrt((se**2 * target**2).sum()) / (target * target).sum()
    assert abs(slope - slope_aihwkit) < 5 * se_slope
    assert slope_old - slope_aihwkit > 10 * se_slope


# ----------------------------------------------------------------------------- per-cell draws


def _aihwkit_populate(dev, normals):
    """aihwkit's ``PulsedRPUDevice::populate`` (default ``enforce_consistency``), cell by cell,
    from the four standard normals of each cell (gain, up/down, w_max, w_min)."""
    g, u, hi_n, lo_n = normals
    out = [np.empty(g.shape) for _ in range(4)]
    up_bias = min(dev.up_down, 0.0)
    down_bias = -dev.up_down if dev.up_down > 0 else 0.0
    for idx in np.ndindex(g.shape):
        hi = dev.w_max * (1.0 + dev.w_max_dtod * hi_n[idx])
        lo = dev.w_min * (1.0 + dev.w_min_dtod * lo_n[idx])
        gain = 1.0 + dev.dw_min_dtod * g[idx]
        r = dev.up_down_dtod * u[idx]
        up = abs((up_bias + gain + r) * dev.dw_min)
        down = abs((down_bias + gain - r) * dev.dw_min)
        if lo > hi:
            lo, hi = hi, lo
        out[0][idx], out[1][idx], out[2][idx], out[3][idx] = up, down, abs(hi), -abs(lo)
    return out


@pytest.mark.parametrize("dev", [
    devices.ConstantStep(up_down=0.2, up_down_dtod=0.05, dw_min_dtod=0.4, w_max_dtod=0.5, w_min_dtod=0.6),
    devices.ConstantStep(up_down=-0.3, up_down_dtod=0.1, w_max=0.4, w_min=-0.8, w_max_dtod=0.7),
    devices.PowStep(w_min=0.0, w_max=1.0, w_max_dtod=3.0),
], ids=["up-down", "down-up", "unipolar"])
def test_cells_follow_aihwkit_populate(dev):
    """Per-cell steps and bounds equal aihwkit's populate rule applied to the same normals:
    ``up_down`` weakens one direction, its spread is additive in ``dw_min`` units, inverted
    bound pairs are swapped and every bound reflected to its side of zero."""
    shape = (40, 30)
    ss_cells = np.random.SeedSequence(4).spawn(3)[0]  # the stream Crossbar(seed=4) draws its cells from
    rng = np.random.default_rng(ss_cells)
    normals = [rng.standard_normal(shape) for _ in range(4)]
    cells = Crossbar(*shape, device=dev, seed=4).cells
    for got, want in zip(cells, _aihwkit_populate(dev, normals)):
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
    assert np.all(cells.w_max > cells.w_min)  # no draw collapses a cell


def test_up_down_weakens_one_direction_only():
    """``up_down = 0.2`` without spreads: up steps are ``dw_min``, down steps ``0.8 dw_min``
    (aihwkit), not 1.2 / 0.8; negative ``up_down`` weakens the up direction. Pulses move a
    cell by exactly these steps."""
    for ud, up, down in ((0.2, 1.0, 0.8), (-0.2, 0.8, 1.0)):
        dev = _flat_constant(dw_min=0.01, up_down=ud)
        xb = Crossbar(1, 1, device=dev, io=PERFECT)
        assert xb.cells.dw_up[0, 0] == pytest.approx(up * 0.01, rel=1e-15)
        assert xb.cells.dw_down[0, 0] == pytest.approx(down * 0.01, rel=1e-15)
        assert dev.nominal_step(0.0, True) == pytest.approx(up * 0.01, rel=1e-15)
        assert dev.nominal_step(0.0, False) == pytest.approx(down * 0.01, rel=1e-15)
        xb.pulse([0, 0], [0, 0], [3, -5])
        assert xb.weights[0, 0] == pytest.approx(0.01 * (3 * up - 5 * down), rel=1e-12)


def test_bounds_drawn_below_zero_are_reflected_not_clipped():
    """The default device on 256x256: about P(xi < -1/0.3) = 0.043% of each bound draws
    past zero; clipping made those exactly 0, reflection leaves none at 0. A unipolar PowStep
    (``w_min = 0``, wide spread) keeps every cell's range non-empty (no 0/0 in its step)."""
    cells = Crossbar(256, 256, seed=0).cells
    assert np.all(cells.w_max > 0) and np.all(cells.w_min < 0)
    uni = Crossbar(64, 64, device=devices.PowStep(w_min=0.0, w_max=1.0, w_max_dtod=3.0), seed=1).cells
    assert np.all(uni.w_max > uni.w_min) and np.all(uni.w_min <= 0) and np.all(uni.w_max >= 0)
    flipped = uni.w_max == 0  # w_max drawn below zero: the pair swapped, the cell holds [w, 0]
    assert 0 < flipped.sum() < uni.w_max.size and np.all(uni.w_min[flipped] < 0)


# ----------------------------------------------------------------------------- side by side


def _aihwkit_hidden(device_cls, rows, cols, **fields):
    aihwkit = pytest.importorskip("aihwkit")  # noqa: F841
    from aihwkit.simulator.configs import SingleRPUConfig
    from aihwkit.simulator.tiles.analog import AnalogTile

    cfg = SingleRPUConfig(device=device_cls(construction_seed=11, **fields))
    tile = AnalogTile(rows, cols, cfg)
    return {k: v.numpy().astype(np.float64) for k, v in tile.get_hidden_parameters().items()}


def test_side_by_side_up_down_with_aihwkit():
    """aihwkit's own cells for ``up_down = 0.2`` without spreads: up ``dw_min``, down
    ``0.8 dw_min``, as ours."""
    pytest.importorskip("aihwkit")
    from aihwkit.simulator.configs import ConstantStepDevice

    fields = dict(dw_min=0.01, up_down=0.2, dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    theirs = _aihwkit_hidden(ConstantStepDevice, 3, 2, **fields)
    ours = Crossbar(3, 2, device=devices.ConstantStep(**fields)).cells
    np.testing.assert_allclose(np.abs(theirs["dwmin_up"]), ours.dw_up, rtol=1e-6)
    np.testing.assert_allclose(np.abs(theirs["dwmin_down"]), ours.dw_down, rtol=1e-6)


def test_side_by_side_bound_draws_with_aihwkit():
    """With a wide bound spread aihwkit's cells, like ours, never sit at 0 and keep
    ``w_min <= 0 <= w_max``; the mean |bound| agrees within 5 standard errors."""
    pytest.importorskip("aihwkit")
    from aihwkit.simulator.configs import ConstantStepDevice

    fields = dict(w_max_dtod=0.8, w_min_dtod=0.8)
    theirs = _aihwkit_hidden(ConstantStepDevice, 64, 64, **fields)
    ours = Crossbar(64, 64, device=devices.ConstantStep(**fields), seed=2).cells
    for name, mine in (("max_bound", ours.w_max), ("min_bound", ours.w_min)):
        t = theirs[name]
        assert np.all(t != 0) and np.all(mine != 0)
        se = np.hypot(np.abs(t).std(), np.abs(mine).std()) / np.sqrt(t.size)
        assert abs(np.abs(t).mean() - np.abs(mine).mean()) < 5 * se
    assert np.all(theirs["max_bound"] >= 0) and np.all(theirs["min_bound"] <= 0)


def test_side_by_side_saturated_update_with_aihwkit():
    """aihwkit's own tile repeats one saturated cycle (lr 0.1, k up to ~100 > BL 31) on a
    noiseless, unbounded ConstantStep; its mean change per cell equals the expectation from
    aihwkit's update management, as ours does (test above). ``dw_min = 2^-10`` keeps aihwkit's
    float32 sums exact; per cell 5 standard errors ``dw_min sqrt(BL q (1 - q) / N)``."""
    pytest.importorskip("aihwkit")
    import torch
    from aihwkit.simulator.configs import ConstantStepDevice, SingleRPUConfig
    from aihwkit.simulator.tiles.analog import AnalogTile

    rows, cols, n_cycles, lr, dw = 16, 12, 1500, 0.1, 2.0**-10
    rng = np.random.default_rng(3)
    x, d = rng.uniform(-1, 1, cols), rng.uniform(-1, 1, rows)
    x[np.argmax(np.abs(x))] = 1.0
    d[np.argmax(np.abs(d))] = 1.0
    dev = ConstantStepDevice(dw_min=dw, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max=100.0,
                             w_min=-100.0, w_max_dtod=0.0, w_min_dtod=0.0)
    cfg = SingleRPUConfig(device=dev)
    cfg.update.desired_bl = 31
    tile = AnalogTile(rows, cols, cfg)
    tile.set_learning_rate(lr)
    tile.set_weights(torch.zeros(rows, cols))
    tile.update(torch.tensor(np.tile(x, (n_cycles, 1)), dtype=torch.float32),
                torch.tensor(np.tile(d, (n_cycles, 1)), dtype=torch.float32))
    mean = tile.get_weights()[0].numpy().astype(np.float64) / n_cycles
    p_x, p_d, bl = naive.probabilities(x, d, lr, dw, 31)
    q = np.outer(p_d, p_x)
    expected = -np.sign(np.outer(d, x)) * bl * q * dw
    se = dw * np.sqrt(bl * q * (1 - q) / n_cycles)
    assert np.all(np.abs(mean - expected) <= 5 * se + 1e-6)  # 1e-6: float32 inputs, q = 1 cells


def test_side_by_side_linear_step_slopes_with_aihwkit():
    """aihwkit's LinearStepDevice at its default slope spread (``gamma_*_dtod`` 0.05, mean-bound
    reference): its per-cell factors ``-slope_up w_max / dwmin_up`` (``-slope_down w_min /
    dwmin_down``) and ours, measured by pulses (tests/test_physics.py), have the same mean
    (standard error of the difference ``0.05 sqrt(1/n + 1/m)``) and the same std (sample-std
    standard error ``0.05 / sqrt(2 n)`` each), 5 standard errors; neither follows the cells' bounds
    (correlation with 1/bound within 5/sqrt(n) of 0)."""
    pytest.importorskip("aihwkit")
    from aihwkit.simulator.configs import LinearStepDevice

    from test_physics import _ls_spread_device, linear_step_factors

    dev = _ls_spread_device()
    assert dev.gamma_up_dtod == dev.gamma_down_dtod == 0.05 == LinearStepDevice().gamma_up_dtod
    fields = dict(dw_min=dev.dw_min, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=dev.w_max, w_min=dev.w_min,
                  w_max_dtod=0.3, w_min_dtod=0.3, gamma_up=0.3, gamma_down=0.2)
    theirs = _aihwkit_hidden(LinearStepDevice, 40, 40, **fields)
    up, down, _ = linear_step_factors(dev, (40, 40), 0.25)
    for mine, t, bound in ((up, -theirs["slope_up"] * dev.w_max / theirs["dwmin_up"], theirs["max_bound"]),
                           (down, -theirs["slope_down"] * dev.w_min / theirs["dwmin_down"], -theirs["min_bound"])):
        mine = mine[np.isfinite(mine)]
        n, m = mine.size, t.size
        assert abs(mine.mean() - t.mean()) < 5 * 0.05 * np.sqrt(1 / n + 1 / m)
        assert abs(mine.std(ddof=1) - t.std(ddof=1)) < 5 * 0.05 * np.sqrt(1 / (2 * n) + 1 / (2 * m))
        assert abs(np.corrcoef(t.ravel(), 1.0 / bound.ravel())[0, 1]) < 5 / np.sqrt(m)
