"""Every registered algorithm, driven to tolerance on an ideal tile; options; the models they use."""

import dataclasses
import math

import numpy as np
import pytest

import progsim_algorithms
from progsim_algorithms import _model, _reads
from progsim_algorithms.kalman import Kalman, _FilteredTile
from progsim import Crossbar, HalfSelect, IO, devices, pulses
from progsim.programming import Boolean, Options, algorithms_available, get_algorithm, program

ROWS, COLS = 32, 24
_rng = np.random.default_rng(2024)
TARGETS = {
    "identity": np.eye(ROWS, COLS),
    "rank1": np.outer(_rng.uniform(-1.0, 1.0, ROWS), _rng.uniform(-1.0, 1.0, COLS)),
    "random": _rng.normal(0.0, 0.1, (ROWS, COLS)),
}


def _ideal_tile(seed=0, **kw):
    cfg = dict(device=devices.Ideal(), pulses=pulses.Stochastic(bl=31), io=IO(is_perfect=True), seed=seed)
    cfg.update(kw)
    return Crossbar(ROWS, COLS, **cfg)


@pytest.mark.parametrize("target_name", sorted(TARGETS))
@pytest.mark.parametrize("key", algorithms_available())
def test_every_algorithm_reaches_two_percent_on_an_ideal_tile(key, target_name):
    target = TARGETS[target_name]
    result = program(_ideal_tile(), target, key, max_iter=3000, tol=0.019)
    assert result.final.err_fro < 0.02, (key, target_name, result.stop, result.final.iteration)


# ----------------------------------------------------------------------------- defaults on the default tile

CLOSED_LOOP = ("svd", "svd-hs", "write-verify", "kalman-gdp", "kalman-gdp-batched", "kalman-svd", "kalman-svd-hs")
AIHWKIT_STALL = 0.143  # aihwkit 1.2.0 program_weights on the 150x150 default-tile study (issue 7)


@pytest.fixture(scope="module")
def default_target():
    t = np.random.default_rng(11).standard_normal((48, 40))
    return t * (0.5 / np.abs(t).max())


@pytest.mark.parametrize("key", algorithms_available())
def test_every_algorithm_at_its_defaults_ends_below_its_starting_error(key, default_target):
    """The default tile (ConstantStep, Stochastic(31), IO()), no options, the algorithm's own run length;
    the closed-loop ones also end below where aihwkit's program_weights stalls. ``tol`` only
    shortens the run (the runner stops once the oracle error is there; the algorithm never sees it)."""
    xb = Crossbar(*default_target.shape, seed=5)
    result = program(xb, default_target, key, tol=0.9 * AIHWKIT_STALL if key in CLOSED_LOOP else 0.5)
    start, final = result.table.err_fro.iloc[0], result.final.err_fro
    assert final < start, (key, start, final)
    if key in CLOSED_LOOP:
        assert final < AIHWKIT_STALL, (key, final, result.final.err_floor)


# ----------------------------------------------------------------------------- options


def _bad_values(constraint):
    constraint = getattr(constraint, "constraint", constraint)  # OrNone: None is allowed, the rest is not
    if isinstance(constraint, Options):
        return ["bogus"]
    if isinstance(constraint, Boolean):
        return ["yes"]
    inner = constraint
    bad = [float("nan"), "1"]
    if inner.low is not None:
        bad.append(inner.low - 1.0)
    if inner.high is not None:
        bad.append(inner.high + 1.0)
    if inner.integral:
        bad.append(1.5)
    return bad


def _options(key):
    """(owner name, option, constraint) of every constrained option a registry key accepts."""
    algo = get_algorithm(key)
    inner = getattr(algo, "inner", None)
    for owner in (algo, inner) if inner is not None else (algo,):
        for f in dataclasses.fields(owner):
            if "constraint" in f.metadata and not (owner is algo and inner is not None and f.name == "seed"):
                yield owner.name, f.name, f.metadata["constraint"]


@pytest.mark.parametrize("key", [k for k in algorithms_available() if k in progsim_algorithms.BUILTIN])
def test_every_option_is_validated_with_its_name(key):
    for owner, option, constraint in _options(key):
        for bad in _bad_values(constraint):
            with pytest.raises(ValueError, match=rf"^The '{option}' parameter of {owner} must be .* Got .* instead\.$"):
                get_algorithm(key, **{option: bad})


def test_kalman_refuses_a_non_algorithm():
    with pytest.raises(ValueError, match="'inner' parameter of Kalman"):
        Kalman(inner=3)


# ----------------------------------------------------------------------------- reads


def test_hadamard_design_is_orthogonal_and_reads_exactly():
    x = _reads.design("hadamard", 24, 2, np.random.default_rng(0))
    assert x.shape == (64, 24) and set(np.unique(x)) == {-1.0, 1.0}
    np.testing.assert_allclose(x.T @ x, 64 * np.eye(24))
    xb = _ideal_tile()
    w = TARGETS["random"]
    xb.set_weights(w)
    np.testing.assert_allclose(_reads.read(xb, "hadamard", 1, np.random.default_rng(1)), w, atol=1e-12)


# ----------------------------------------------------------------------------- the half-selection model


@pytest.mark.parametrize("mode", ["v2", "v3"])
@pytest.mark.parametrize("signs", ["mixed", "positive-x"])
def test_expected_disturb_matches_the_crossbar_on_average(mode, signs):
    """Mean change of many identical cycles on an ideal device = expected change + disturb.

    Each cell's change per cycle is a sum of Bernoulli slot events, each moving it by at
    most ``dw_min``, about ``BL * 4`` events at most (4 quadrants), so its variance is at most
    ``dw_min^2 * 4 * BL``; the mean of ``B`` cycles is compared within 5 such standard errors.
    """
    rows, cols, cycles, bl = 6, 5, 8000, 8
    rng = np.random.default_rng(5)
    x = rng.uniform(0.2, 1.0, cols) * (1 if signs == "positive-x" else rng.choice([-1, 1], cols))
    d = rng.uniform(0.2, 1.0, rows) * rng.choice([-1, 1], rows)
    x[0] = 0.0  # a column that no quadrant fires
    hs = HalfSelect(mode, strength=0.2, prob=1.0)
    xb = Crossbar(rows, cols, device=devices.Ideal(), pulses=pulses.Stochastic(bl=bl), half_select=hs,
                  io=IO(is_perfect=True), seed=11)
    lr = 0.02
    xb.update(np.tile(x, (cycles, 1)), np.tile(d, (cycles, 1)), lr)
    mean = xb.weights / cycles
    predicted = _model.expected_change(xb, x, d, lr) + _model.expected_disturb(xb, x, d, lr)
    tolerance = 5 * 1e-3 * math.sqrt(4 * bl / cycles)
    np.testing.assert_allclose(mean, predicted, atol=tolerance)
    assert np.abs(_model.expected_disturb(xb, x, d, lr)).max() > 5 * tolerance  # the test can see it


def test_svd_hs_gain_undoes_the_v2_shrink():
    """On a mixed-sign component V/2 shrinks the change by 2 strength prob; svd-hs's gain undoes it."""
    from progsim_algorithms.svd import SVDHalfSelect

    rng = np.random.default_rng(3)
    u = rng.normal(size=ROWS); u /= np.linalg.norm(u)
    v = rng.normal(size=COLS); v /= np.linalg.norm(v)
    xb = _ideal_tile(half_select=HalfSelect("v2", strength=0.2))

    class Recorder:
        shape, device, pulses, half_select = xb.shape, xb.device, xb.pulses, xb.half_select
        calls = []

        def update(self, x, d, lr):
            self.calls.append((x, d, lr))

    tile = Recorder()
    s = 0.02
    predicted, cycles = SVDHalfSelect()._apply(tile, s, u, v)
    wanted = -s * np.outer(u, v)
    along = (predicted * wanted).sum() / (wanted * wanted).sum()
    assert along == pytest.approx(1.0, rel=0.02)
    x, d, lr = tile.calls[0]
    gain = (np.outer(d[0], x[0]) * cycles * lr * np.outer(u, v)).sum() / s
    assert gain == pytest.approx(1 / (1 - 2 * 0.2), rel=0.1)


# ----------------------------------------------------------------------------- the Kalman filter


def test_kalman_view_fuses_one_hot_reads_exactly():
    """For one-hot reads the per-cell filter is exact: after k reads P = R / k (prior-weighted)."""
    xb = Crossbar(40, 30, device=devices.Ideal(), io=IO(), seed=4)
    w = np.random.default_rng(1).uniform(-0.3, 0.3, (40, 30))
    xb.set_weights(w)
    view = _FilteredTile(xb, prior_std=1.0, read_noise=None, model_noise=1.0, seed=0)
    r = _model.read_noise_var(xb, np.eye(30)[:1])[0]
    est = view.read_weights(method="eye", over_sampling=8)
    expected_var = 1.0 / (1.0 + 8 / r)
    np.testing.assert_allclose(view.p, expected_var)
    # 1200 cells: the empirical variance is within 15% of the filter's (chi-square, 8 sigma)
    assert np.mean((est - w) ** 2) == pytest.approx(expected_var, rel=0.15)


def test_kalman_view_hadamard_reads_beat_one_hot_reads():
    xb = Crossbar(40, 30, device=devices.Ideal(), io=IO(), seed=4)
    w = np.random.default_rng(1).uniform(-0.3, 0.3, (40, 30))
    xb.set_weights(w)
    view = _FilteredTile(xb, prior_std=1.0, read_noise=None, model_noise=1.0, seed=0)
    est = view.read_weights(method="hadamard", over_sampling=1)  # 32 vectors
    r = _model.read_noise_var(xb, np.ones((1, 30)))[0]
    assert np.mean((est - w) ** 2) == pytest.approx(r / 32, rel=0.2)
    assert np.mean(view.p) == pytest.approx(r / 32, rel=0.05)


def test_kalman_prediction_follows_updates_and_pulses():
    xb = _ideal_tile(pulses=pulses.Ideal())
    view = _FilteredTile(xb, prior_std=1.0, read_noise=None, model_noise=1.0, seed=0)
    view.read_weights()
    x, d = np.ones(COLS), np.linspace(-1, 1, ROWS)
    view.update(x, d, 0.01)
    view.pulse(np.array([1, 1]), np.array([2, 2]), np.array([3, 4]))
    np.testing.assert_allclose(view.w, xb.weights, atol=1e-12)


@pytest.mark.parametrize("noise_management", ["abs_max", "none"])
def test_output_noise_var_matches_the_periphery(noise_management):
    """periphery.output_noise_var against the variance of mvm's outputs around W x.

    Each input row is repeated 4000 times over 12 outputs; the sample variance of N normal
    draws has relative standard deviation sqrt(2 / N) = 0.6 % here (the ADC step, 0.047, is
    below the noise, so its rounding is close to uniform), so 5 % is about 8 of them.
    """
    from progsim.periphery import IO, mvm, output_noise_var

    io = IO(out_noise=0.06, w_noise=0.04, noise_management=noise_management)
    rng = np.random.default_rng(0)
    w = rng.uniform(-0.3, 0.3, (12, 20))
    for x in (rng.uniform(-1, 1, 20), 0.4 * rng.uniform(-1, 1, 20)):
        y = mvm(w, np.tile(x, (4000, 1)), io, rng)
        empirical = y.var(axis=0).mean()  # around each output's mean: DAC rounding is a bias, not noise
        assert empirical == pytest.approx(output_noise_var(io, x)[0], rel=0.05)
    assert output_noise_var(IO(is_perfect=True), np.ones((3, 20))).tolist() == [0.0, 0.0, 0.0]
