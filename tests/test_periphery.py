"""The periphery (progsim/periphery.py) against a slow per-vector reference and aihwkit's rules."""

import math

import numba
import numpy as np
import pytest

import naive
from _checks import stream_outputs
from progsim import Crossbar, IO, _config, _rng, devices, periphery
from progsim.periphery import io_params, mvm


def _quantise(v, res, bound):
    """Round to the converter's step (res relative to the full range 2 bound), then clip."""
    if res > 0:
        step = (res if res <= 1 else 1 / res) * 2 * bound
        v = round(v / step) * step
    return min(max(v, -bound), bound), abs(v) > bound


def naive_read(w, x, io, backward=False):
    """One vector, noise off, written from the module docstring and aihwkit's forwardVector loop."""
    scale = max(abs(v) for v in x) if io.noise_management == "abs_max" else 1.0
    scale = scale or 1.0
    factor = 1.0
    while True:
        xin = [min(max(v / (scale * factor), -io.inp_bound), io.inp_bound) for v in x]
        xin = [_quantise(v, io.inp_res, io.inp_bound)[0] for v in xin]
        y = naive.mvm_perfect(w, [xin])[0]
        outs = [_quantise(v, io.out_res, io.out_bound) for v in y]
        saturated = any(s for _, s in outs)
        if io.bound_management == "none" or backward or not saturated:
            break
        abs_inp_step = (io.inp_res if io.inp_res <= 1 else 1 / io.inp_res) * 2 * io.inp_bound
        if factor > io.max_bm_factor or (io.inp_res > 0 and factor > io.max_bm_res / abs_inp_step):
            break
        factor *= 2
    return np.array([v * factor * scale for v, _ in outs])


@pytest.mark.parametrize("batch", [6, 13])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("io", [IO(out_noise=0.0), IO(out_noise=0.0, inp_res=0.0, out_res=1 / 62),
                                IO(out_noise=0.0, noise_management="none", bound_management="none", inp_res=15)])
def test_noiseless_pass_equals_the_reference(io, dtype, batch, rng):
    """Inputs spread over three decades so that some vectors saturate and others do not; a
    float64 batch of 13 goes through the blocked product, its bound-management passes too."""
    w = rng.uniform(-0.6, 0.6, (7, 30)).astype(dtype)
    x = rng.normal(size=(batch, 30)) * np.resize([0.05, 0.5, 1, 3, 10, 30], batch)[:, None]
    got = mvm(w, x, io, np.random.default_rng(0))
    ref = np.array([naive_read(w.astype(np.float64), xv, io) for xv in x])
    # float32 tiles multiply in float32: 30 products of |w x| <= 0.6 * 30, relative error 6e-8
    tol = 1e-12 if dtype == np.float64 else 30 * 0.6 * 30 * 6e-8
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol)


def _saturating_tile(n_in, value, io):
    xb = Crossbar(3, n_in, device=devices.ConstantStep(w_max_dtod=0.0, w_min_dtod=0.0), io=io, seed=1)
    xb.set_weights(np.full((3, n_in), value))
    return xb


def test_bound_management_stops_at_aihwkit_factor_16_with_the_default_dac():
    """W x = 400 needs a factor 64 to fit out_bound 12. aihwkit stops after the read at
    factor f once f > max_bm_res / (inp_res 2 inp_bound) = 0.25 * 63 = 15.75, i.e. at 16:
    the output is the saturated 12 times 16 = 192 (the code before this rule returned ~400)."""
    xb = _saturating_tile(800, 0.5, IO(out_noise=0.0))
    np.testing.assert_allclose(xb.forward(np.ones(800)), 192.0, rtol=1e-12)
    # without a DAC only max_bm_factor limits it: 400 / 64 = 6.25 fits, 400 comes back exactly
    # (the ADC step 24/510 times 64 is 3.01, and 6.25 rounds to 6.259, times 64 = 400.56)
    y = _saturating_tile(800, 0.5, IO(out_noise=0.0, inp_res=0.0)).forward(np.ones(800))
    np.testing.assert_allclose(y, round(6.25 / (24 / 510)) * (24 / 510) * 64, rtol=1e-12)
    # max_bm_factor 4: the read at 4 still saturates and 4 > 4 is false, so one more at 8, then stop
    y = _saturating_tile(800, 0.5, IO(out_noise=0.0, inp_res=0.0, max_bm_factor=4.0)).forward(np.ones(800))
    np.testing.assert_allclose(y, 12.0 * 8, rtol=1e-12)


def test_backward_pass_has_no_bound_management():
    """The issue's example: a backward output of 38.4 (64 rows of 0.6) is clipped to
    out_bound 12 as in aihwkit, whatever io_backward.bound_management says (was 39.0)."""
    io = IO(out_noise=0.0, inp_res=0.0)
    xb = Crossbar(64, 2, device=devices.ConstantStep(w_max=0.6, w_max_dtod=0.0, w_min_dtod=0.0), io=io, seed=0)
    xb.set_weights(np.full((64, 2), 0.6))
    np.testing.assert_allclose(xb.backward(np.ones(64)), 12.0)
    np.testing.assert_allclose(xb.forward(np.ones(2)), 1.2, atol=24 / 510)  # forward unaffected
    assert io_params(io, backward=True)[periphery._BM_LIMIT] == 0.0 < io_params(io)[periphery._BM_LIMIT]


def test_weight_noise_has_the_configured_variance():
    """y - W xq has variance w_noise^2 ||xq||^2 + out_noise^2 per output (xq = x here: inputs on
    the DAC grid with max|x| = 1). The sample variance of n normals has relative standard
    error sqrt(2 / n); we allow 5 of them, so tripling either noise fails."""
    n_in, n_out, n = 9, 40, 500
    io = IO(out_noise=0.05, w_noise=0.04, out_res=0.0)
    xb = Crossbar(n_out, n_in, io=io, seed=4)
    step = 2 / 126
    x = np.tile(np.round(np.linspace(-1, 1, n_in) / step) * step, (n, 1))
    err = xb.forward(x) - x @ xb.weights.T
    expected = 0.04 ** 2 * np.sum(x[0] ** 2) + 0.05 ** 2
    assert abs(err.var() / expected - 1) < 5 * math.sqrt(2 / err.size)


def test_noise_draws_come_from_the_tile_generator_one_raw_draw_a_read():
    """Same generator state, same reads: a read takes one raw 64-bit draw of the tile's
    generator, and vector k's noise in pass q is the stream (draw, q, DOMAIN_READ, k), for each
    output its weight noise, then its output noise. Vector 1 saturates (W x = 1.5 against an
    out_bound of 1) and is read again at half its input; the others are read once."""
    io = IO(out_res=0.0, inp_res=0.0, w_noise=0.02, out_bound=1.0)
    w = np.random.default_rng(2).uniform(-0.2, 0.2, (5, 4))
    w[2] = 0.375
    x = np.random.default_rng(3).uniform(-1, 1, (3, 4))
    x /= np.abs(x).max(axis=1, keepdims=True)
    x[1] = 1.0
    gen = np.random.default_rng(7)
    y = mvm(w, x, io, gen)
    ref = np.random.default_rng(7)
    key = np.uint64(ref.bit_generator.random_raw())
    expected = x @ w.T
    for k in range(3):
        z = stream_outputs(10, key, _rng.DOMAIN_READ, k).reshape(5, 2)  # (weight, output) per output
        expected[k] += 0.02 * np.linalg.norm(x[k]) * z[:, 0] + 0.06 * z[:, 1]
    assert expected[1, 2] > 1.0  # the first pass saturates: the read at factor 2 counts
    z = stream_outputs(10, key, _rng.DOMAIN_READ, 1, counter=1).reshape(5, 2)
    expected[1] = 2 * (x[1] / 2 @ w.T + 0.02 * np.linalg.norm(x[1] / 2) * z[:, 0] + 0.06 * z[:, 1])
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)
    assert gen.bit_generator.random_raw() == ref.bit_generator.random_raw()  # one draw taken, no more
    np.testing.assert_array_equal(mvm(w, x, io, np.random.default_rng(7)), y)


@pytest.mark.parametrize("shape, batch", [((10, 37), 13), ((8, 9), 16), ((3, 5), 8), ((512, 512), 3)])
def test_blocked_product_is_the_naive_sum_bit_for_bit(shape, batch, rng):
    """A float64 read of at least 8 vectors multiplies with the blocked kernel: with the
    converters and noise off, every output is the plain sum over the inputs in increasing
    order, the naive product's bits exactly (tile rows not a multiple of 4, batches not a
    multiple of 8 included; on a tile of 512x512 cells from 2 vectors on), and numba's SLP
    setting is as it was after the compile."""
    io = IO(out_noise=0.0, inp_res=0.0, out_res=0.0, noise_management="none", bound_management="none",
            inp_bound=1e9, out_bound=1e9)
    w = rng.uniform(-0.6, 0.6, shape)
    x = rng.normal(size=(batch, shape[1]))
    slp = numba.config.SLP_VECTORIZE
    got = mvm(w, x, io, np.random.default_rng(0))
    np.testing.assert_array_equal(got, naive.mvm_perfect(w, x))
    assert periphery._READ_BLOCKED_CALLED  # the read of this test took the blocked kernel
    assert numba.config.SLP_VECTORIZE == slp  # the compile's setting was restored


def test_blocked_read_equals_the_blas_read_to_rounding(rng):
    """The same noisy read of 12 vectors through the blocked kernel and through BLAS: the same
    streams and converters, so the outputs are the same but where the two products (~1e-16
    apart, relative) fall on the two sides of an ADC rounding edge: one ADC step
    (24 / 510 at the default converter, times the noise-management scale max|x| <= 1) there,
    and such a pair is rare (the chance is ~1e-16 / (24 / 510) per output)."""
    w = rng.uniform(-0.3, 0.3, (40, 64))
    x = rng.uniform(-1, 1, (12, 64))
    p = io_params(IO())
    with _config.slp_vectorized():  # as mvm compiles it (a kernel compiled here is cached)
        blocked = periphery._read_blocked(w, x, np.uint64(7), p)
    blas = periphery._read(w, x, np.uint64(7), p)
    step = 2 * 12 / 510
    assert np.abs(blocked - blas).max() <= step * 1.0000001
    assert np.mean(blocked == blas) > 0.99


def test_parallel_blocked_read_takes_the_serial_ones_bits(rng):
    """The parallel variant of the blocked read splits the rows between threads, each output
    computed whole by one: the same bits as the serial variant, noise, converters and
    bound-management passes included (inputs large enough that some vectors are read again,
    among them passes of a single vector)."""
    w = rng.uniform(-0.6, 0.6, (37, 50))
    x = rng.normal(size=(11, 50)) * np.resize([0.05, 1, 30], 11)[:, None]
    p = io_params(IO())
    with _config.slp_vectorized():
        serial = periphery._read_blocked(w, x, np.uint64(9), p)
        parallel = periphery._read_blocked_parallel(w, x, np.uint64(9), p)
    np.testing.assert_array_equal(parallel, serial)
    assert np.abs(serial).max() > 12  # bound management did scale some outputs back
