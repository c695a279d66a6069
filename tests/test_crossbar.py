"""Crossbar contracts: validation, periphery, read-out, counters, determinism, saved state."""

import dataclasses
import warnings

import numba
import numpy as np
import pytest

import naive
from progsim import Crossbar, HalfSelect, IO, devices, pulses
from progsim._validate import Boolean, Options

CONFIGS = [devices.Ideal, devices.ConstantStep, devices.LinearStep, devices.SoftBounds, devices.ExpStep,
           devices.PowStep, devices.Piecewise, pulses.Stochastic, pulses.MeanCount, pulses.DeterministicImplicit,
           HalfSelect, IO]


def _bad_values(constraint):
    if isinstance(constraint, Options):
        return ["bogus"]
    if isinstance(constraint, Boolean):
        return ["yes"]
    bad = [float("nan"), "1"]
    if constraint.low is not None and np.isfinite(constraint.low):
        bad.append(constraint.low - 1.0)
    if constraint.high is not None and np.isfinite(constraint.high):
        bad.append(constraint.high + 1.0)
    if constraint.integral:
        bad.append(1.5)
    return bad


CASES = [(cls, f.name, bad) for cls in CONFIGS for f in dataclasses.fields(cls)
         if f.metadata.get("constraint") is not None for bad in _bad_values(f.metadata["constraint"])]


@pytest.mark.parametrize("cls,name,bad", CASES, ids=[f"{c.__name__}.{n}={b!r}" for c, n, b in CASES])
def test_every_field_rejects_bad_values_naming_the_field(cls, name, bad):
    with pytest.raises(ValueError, match=rf"The '{name}' parameter of {cls.__name__} must be"):
        cls(**{name: bad})


def test_cross_field_and_tile_errors_name_the_parameter():
    with pytest.raises(ValueError, match="'w_min' parameter of ConstantStep must be <= 0"):
        devices.ConstantStep(w_min=0.3, w_max=0.2)  # w_min > w_max
    with pytest.raises(ValueError, match="'w_max' parameter of ConstantStep must be > w_min"):
        devices.ConstantStep(w_min=0.0, w_max=0.0)
    with pytest.raises(ValueError, match="'w_max' parameter of ConstantStep"):
        devices.ConstantStep(w_max=-0.5)
    with pytest.raises(ValueError, match="'dw_min' parameter of ConstantStep must be > 0"):
        devices.ConstantStep(dw_min=-0.1)
    with pytest.raises(ValueError, match="'mode' parameter of HalfSelect"):
        HalfSelect("v4")
    with pytest.raises(ValueError, match="'nodes_up' parameter of Piecewise"):
        devices.Piecewise(nodes_up=(1.0, -1.0))
    with pytest.raises(ValueError, match="'half_select' parameter of Crossbar"):
        Crossbar(2, 2, pulses=pulses.Ideal(), half_select=HalfSelect("v2", strength=0.1))
    with pytest.raises(ValueError, match="'device' parameter of Crossbar"):
        Crossbar(2, 2, device="ConstantStep")
    with pytest.raises(ValueError, match="'out_size' parameter of Crossbar"):
        Crossbar(0, 2)
    with pytest.raises(ValueError, match="'dtype' parameter of Crossbar"):
        Crossbar(2, 2, dtype=np.int32)
    with pytest.raises(ValueError, match="'name' parameter of preset"):
        devices.preset("flash")


def test_bad_inputs_are_rejected_and_leave_the_state_unchanged():
    xb = Crossbar(3, 2, seed=1)
    xb.set_weights(np.full((3, 2), 0.1))
    before = xb.weights
    with pytest.raises(ValueError, match="'x' parameter of Crossbar.forward"):
        xb.forward(np.ones(3))
    with pytest.raises(ValueError, match="'x' parameter of Crossbar.update must be finite"):
        xb.update([np.nan, 1.0], np.ones(3), 0.1)
    with pytest.raises(ValueError, match="'d' parameter of Crossbar.update must have the same batch size"):
        xb.update(np.ones((2, 2)), np.ones((3, 3)), 0.1)
    with pytest.raises(ValueError, match="'lr' parameter of Crossbar.update"):
        xb.update(np.ones(2), np.ones(3), float("inf"))
    with pytest.raises(ValueError, match="'rows' parameter of Crossbar.pulse"):
        xb.pulse([5], [0], [1])
    with pytest.raises(ValueError, match="'weights' parameter of Crossbar.set_weights"):
        xb.set_weights(np.ones((2, 3)))
    with pytest.raises(ValueError, match="'method' parameter of read_weights"):
        xb.read_weights(method="svd")
    np.testing.assert_array_equal(xb.weights, before)
    assert xb.counters["update_cycles"] == 0 and xb.counters["reads"] == 0


def test_perfect_forward_backward_equal_explicit_sums(rng):
    xb = Crossbar(4, 3, io=IO(is_perfect=True), seed=0)
    xb.set_weights(rng.uniform(-0.5, 0.5, (4, 3)))
    x, d = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    np.testing.assert_allclose(xb.forward(x), naive.mvm_perfect(xb.weights, x), rtol=1e-12)
    np.testing.assert_allclose(xb.backward(d), naive.mvm_perfect(xb.weights.T, d), rtol=1e-12)
    assert xb.counters["reads"] == 2 and xb.counters["reads_backward"] == 2


def test_dac_quantises_the_managed_input(rng):
    """With no output noise or ADC, forward = W quantise(x / max|x|) * max|x|, step 2 inp_bound inp_res."""
    io = IO(out_noise=0.0, out_res=0.0, out_bound=1e6)
    xb = Crossbar(3, 5, io=io)
    w = rng.uniform(-0.5, 0.5, (3, 5))
    xb.set_weights(w)
    w = xb.weights
    x = rng.normal(size=(4, 5))
    s = np.abs(x).max(axis=1, keepdims=True)
    step = 2.0 / 126.0
    xq = np.round(x / s / step) * step
    np.testing.assert_allclose(xb.forward(x), (xq @ w.T) * s, rtol=1e-12, atol=1e-14)


def test_output_noise_has_the_configured_std():
    """y - W x has std out_noise (inputs with max|x| = 1, so no scaling). The sample std of
    n normals has standard error sigma / sqrt(2 n); we allow 5."""
    io = IO(out_noise=0.06, out_res=0.0, inp_res=0.0)
    xb = Crossbar(50, 4, io=io, seed=3)
    x = np.tile([1.0, -0.5, 0.25, 0.0], (400, 1))
    err = xb.forward(x) - x @ xb.weights.T
    n = err.size
    assert abs(err.std() - 0.06) < 5 * 0.06 / np.sqrt(2 * n)
    assert abs(err.mean()) < 5 * 0.06 / np.sqrt(n)


def test_bound_management_recovers_saturated_outputs():
    """Outputs beyond out_bound are clipped without bound management and recovered (to
    within the ADC step times the factor used) with the iterative scheme."""
    n_in = 40
    w = np.full((2, n_in), 0.5)
    x = np.ones((1, n_in))  # W x = 20 > out_bound = 12
    for bm, ok in (("iterative", True), ("none", False)):
        io = IO(out_noise=0.0, inp_res=0.0, bound_management=bm)
        xb = Crossbar(2, n_in, device=devices.ConstantStep(w_max_dtod=0.0), io=io)
        xb.set_weights(w)
        y = xb.forward(x)
        if ok:
            np.testing.assert_allclose(y, 20.0, atol=2 * 24.0 / 510.0)
        else:
            np.testing.assert_allclose(y, 12.0)


def test_read_weights_eye_and_lstsq(rng):
    w = rng.uniform(-0.5, 0.5, (6, 5))
    xb = Crossbar(6, 5, io=IO(is_perfect=True))
    xb.set_weights(w)
    w = xb.weights
    np.testing.assert_allclose(xb.read_weights("eye"), w, rtol=1e-12)
    np.testing.assert_allclose(xb.read_weights("lstsq", over_sampling=2), w, rtol=1e-9, atol=1e-12)
    assert xb.counters["reads"] == 5 + 10
    noisy = Crossbar(6, 5, io=IO(out_res=0.0, inp_res=0.0), seed=2)
    noisy.set_weights(w)
    # the error of an average of k reads falls as 1/sqrt(k): 16 reads -> 4x smaller (we ask 2x)
    e1 = np.linalg.norm(noisy.read_weights("eye", over_sampling=1) - w)
    e16 = np.linalg.norm(noisy.read_weights("eye", over_sampling=16) - w)
    assert e16 < e1 / 2


def _noisy_run(seed):
    dev = devices.ConstantStep(write_noise_std=2.0)
    xb = Crossbar(33, 17, device=dev, pulses=pulses.Stochastic(bl=31),
                  half_select=HalfSelect("v2", strength=0.1, prob=0.7), seed=seed)
    rng = np.random.default_rng(0)
    xb.update(rng.uniform(-1, 1, (40, 17)), rng.uniform(-1, 1, (40, 33)), 0.02)
    xb.pulse([1, 2], [3, 4], [5, -3])
    return xb.weights, xb.counters


def test_same_seed_same_result_for_one_or_two_threads():
    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        w1, c1 = _noisy_run(7)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        w2, c2 = _noisy_run(7)
    finally:
        numba.set_num_threads(n)
    np.testing.assert_array_equal(w1, w2)
    assert c1 == c2
    w3, _ = _noisy_run(8)
    assert not np.array_equal(w1, w3)


_BLAS_THREADS = """
from progsim import Crossbar, set_num_threads
set_num_threads(1)
Crossbar(4, 4, seed=0).forward([1.0, 0.5, 0.0, -1.0])  # numba's product kernel is loaded now
from threadpoolctl import threadpool_info
print(sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}))
"""


def test_set_num_threads_limits_the_blas_that_kernels_load_later():
    # numba loads SciPy's BLAS with the first kernel that multiplies; a limit set before that
    # must still hold for it (a study worker asked for one thread otherwise runs BLAS on all).
    pytest.importorskip("threadpoolctl")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _BLAS_THREADS], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[1]"


def test_state_dict_resumes_bit_identically(rng):
    xb = Crossbar(5, 4, device=devices.ConstantStep(write_noise_std=1.0), seed=3)
    x, d = rng.uniform(-1, 1, (6, 4)), rng.uniform(-1, 1, (6, 5))
    xb.update(x, d, 0.05)
    state = xb.state_dict()
    xb.update(x, d, 0.05)
    y = xb.forward(x)
    w = xb.weights
    other = Crossbar(5, 4, device=devices.ConstantStep(write_noise_std=1.0), seed=99)
    other.load_state_dict(state)
    other.update(x, d, 0.05)
    np.testing.assert_array_equal(other.weights, w)
    np.testing.assert_array_equal(other.forward(x), y)


def test_float32_tile_follows_float64(rng):
    x, d = rng.uniform(-1, 1, (10, 6)), rng.uniform(-1, 1, (10, 7))
    out = {}
    for dtype in (np.float32, np.float64):
        xb = Crossbar(7, 6, device=devices.SoftBounds(dw_min_std=0.0), seed=5, dtype=dtype)
        xb.update(x, d, 0.05)
        assert xb.weights.dtype == dtype
        out[dtype] = xb.weights
    np.testing.assert_allclose(out[np.float32], out[np.float64], atol=1e-6)


@pytest.mark.parametrize("name", sorted(devices.PRESETS))
def test_presets_build_and_update(name):
    dev = devices.preset(name)
    xb = Crossbar(8, 8, device=dev, seed=0)
    xb.update(np.ones((20, 8)), np.ones((20, 8)), 0.05)
    # 20 cycles of -0.05 each push every cell down by ~1 (to its bound); even the noisiest
    # preset (ReRAM, c2c std 5 dw) has a per-cell spread of ~0.2, so the mean must be < -0.2
    w = xb.hidden_weights
    assert np.isfinite(w).all() and w.mean() < -0.2


# ----------------------------------------------------------------------------- noise scales


def _write_noise_tile(path):
    dev = devices.ConstantStep(dw_min=0.01, write_noise_std=2.0, dw_min_std=0.0, w_max=10.0, w_min=-10.0,
                               w_max_dtod=0.0, w_min_dtod=0.0)
    scheme = {"ideal": pulses.Ideal(), "ideal-device": pulses.IdealWithDevice(),
              "general": pulses.MeanCount(bl=31)}.get(path, pulses.Stochastic(bl=31))
    hs = HalfSelect("v2", strength=0.1) if path == "general-v2" else HalfSelect()
    return Crossbar(40, 50, device=dev, pulses=scheme, half_select=hs, io=IO(is_perfect=True), seed=5)


@pytest.mark.parametrize("path", ["set_weights", "ideal", "ideal-device", "fast", "general", "general-v2", "pulse"])
def test_write_noise_has_the_configured_std(path):
    """Every path that redraws write noise: the apparent weight of a touched cell is its hidden
    weight plus ``write_noise_std * dw_min * xi`` (std 0.02 here). The tile starts with no
    offsets, so the touched cells are those with one. Over n offsets the mean square estimates
    the variance with relative standard error sqrt(2/n) (n >= 1000: < 4.5%); 5 of them are
    allowed, so a std off by 25% or more (a tripled one by far) fails."""
    tile = _write_noise_tile(path)
    rng = np.random.default_rng(1)
    x, d = rng.uniform(0.5, 1.0, (3, 50)), rng.uniform(0.5, 1.0, (3, 40))
    if path == "set_weights":
        tile.set_weights(np.full((40, 50), 0.3))
    elif path == "pulse":
        rows, cols = np.divmod(np.arange(40 * 50), 50)
        tile.pulse(rows, cols, np.ones(rows.size, dtype=np.int64))
    else:
        tile.update(x, d, 0.2)
    offset = tile.weights - tile.hidden_weights
    touched = offset != 0
    n = int(touched.sum())
    assert n >= 1000
    sigma2 = (2.0 * 0.01) ** 2
    var = float((offset[touched] ** 2).mean())
    assert abs(var / sigma2 - 1.0) < 5 * np.sqrt(2.0 / n)
    assert abs(offset[touched].mean()) < 5 * np.sqrt(sigma2 / n)


def test_weight_read_noise_has_the_configured_std():
    """Weight read noise alone (no output noise, no converters): each output of ``forward(x)``
    is off by ``w_noise ||x||_2 xi``, independently per output and read. Over n = 12000
    normalised errors the sample variance has relative standard error sqrt(2/n) = 1.3%; 5 of
    them allowed, so a tripled (or halved) w_noise fails."""
    w_noise = 0.05
    io = IO(w_noise=w_noise, out_noise=0.0, out_res=0.0, inp_res=0.0, bound_management="none")
    tile = Crossbar(40, 30, io=io, seed=4)
    rng = np.random.default_rng(2)
    tile.set_weights(rng.uniform(-0.2, 0.2, (40, 30)))  # |W x / max|x|| <= 6: the ADC never clips
    x = rng.uniform(-1, 1, (300, 30)) * rng.uniform(0.1, 3.0, (300, 1))
    z = (tile.forward(x) - x @ tile.weights.T) / np.linalg.norm(x, axis=1, keepdims=True)
    n = z.size
    assert abs(z.var() / w_noise**2 - 1.0) < 5 * np.sqrt(2.0 / n)
    assert abs(z.mean()) < 5 * w_noise / np.sqrt(n)
    # independent per output: the mean over outputs of one read has variance w_noise^2 / 40
    assert abs(z.mean(axis=1).var() / (w_noise**2 / 40) - 1.0) < 5 * np.sqrt(2.0 / 300)


# ----------------------------------------------------------------------------- below resolution


@pytest.mark.parametrize("kind", [pulses.DeterministicImplicit, pulses.MeanCount])
def test_update_below_the_device_resolution_warns_once(kind):
    """Issue 7: a pcm tile (dw_min 0.04) under a deterministic scheme at lr 0.01 applied no
    pulse in 160 cycles without a word. Inputs within 0.8: every firing probability is at most
    sqrt(0.01 * 0.64 / 0.04) = 0.4 of one slot, which rounds to no slot. The first such update
    warns, later ones of the same tile do not; Stochastic trains at the same lr do pulse."""
    rng = np.random.default_rng(0)
    x, d = rng.uniform(-0.8, 0.8, (160, 8)), rng.uniform(-0.8, 0.8, (160, 8))
    tile = Crossbar(8, 8, device=devices.preset("pcm"), pulses=kind(), seed=0)
    with pytest.warns(RuntimeWarning, match="applied no pulse.*below the device's resolution") as record:
        tile.update(x, d, 0.01)
    assert len(record) == 1 and tile.counters["pulses_full"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tile.update(x, d, 0.01)  # once per tile
        stochastic = Crossbar(8, 8, device=devices.preset("pcm"), pulses=pulses.Stochastic(), seed=0)
        stochastic.update(x, d, 0.01)
        kind_big = Crossbar(8, 8, device=devices.preset("pcm"), pulses=kind(), seed=0)
        kind_big.update(x, d, 1.0)  # large enough to pulse: no warning
    assert stochastic.counters["pulses_full"] > 0 and kind_big.counters["pulses_full"] > 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_short_update_entry_point_takes_the_two_step_paths_bits(rng, dtype):
    """A small Stochastic tile's update runs one compiled call, through numba's dispatcher on the
    first call and its compiled entry point after; inputs of other kinds (float32, 1-d, Fortran
    order, a Python-int lr) take the validated path. Every call must leave the bits of the
    two-step path (make_cycles, then pulsed_update) that a tile without the short call takes."""
    dev = devices.ConstantStep(write_noise_std=0.5)
    short, steps = (Crossbar(6, 5, device=dev, dtype=dtype, seed=4) for _ in range(2))
    steps._short = None  # the reference: every update through make_cycles and pulsed_update
    x, d = rng.uniform(-1, 1, (3, 5)), rng.uniform(-1, 1, (3, 6))
    calls = [(x, d, 0.3), (x[0], d[0], 0.3), (x.astype(np.float32), d, 0.3), (np.asfortranarray(x), d, 0.3),
             (x, d, 1), (x, d, -0.2), (x[1], d[1], 0.5)]
    for xi, di, lr in calls:
        short.update(xi, di, lr)
        steps.update(xi, di, lr)
        np.testing.assert_array_equal(short.hidden_weights, steps.hidden_weights)
        np.testing.assert_array_equal(short.weights, steps.weights)
        assert short.counters == steps.counters
    assert short._short_entry is not None and short.counters["pulses_full"] > 0


def test_pickled_tile_continues_bit_identically(rng):
    """A tile pickled after updates (its short kernel's compiled entry point in use, which is
    not picklable) unpickles and then takes the same updates and reads as the original;
    copy.deepcopy and torch.save of a whole layer go the same way."""
    import copy
    import pickle

    xb = Crossbar(6, 5, device=devices.ConstantStep(write_noise_std=0.5), seed=2)
    x, d = rng.uniform(-1, 1, (4, 5)), rng.uniform(-1, 1, (4, 6))
    xb.update(x, d, 0.2)
    xb.update(x, d, 0.2)  # through the entry point
    twins = [pickle.loads(pickle.dumps(xb)), copy.deepcopy(xb)]
    xb.update(x, d, 0.2)
    y = xb.forward(x)
    for twin in twins:
        twin.update(x, d, 0.2)
        np.testing.assert_array_equal(twin.hidden_weights, xb.hidden_weights)
        np.testing.assert_array_equal(twin.forward(x), y)
        assert twin.counters == xb.counters
