"""The kernels' random streams: the normal quantile and the distribution of draws."""

import numpy as np
from scipy import stats

from _checks import stream_outputs
from progsim import _rng
from progsim._config import jit


def test_ziggurat_layers_have_equal_area():
    """Each layer of the ziggurat (rectangle [0, x_i] between heights f(x_i), f(x_{i+1}))
    has the area v of the base strip plus the tail; r is Marsaglia & Tsang's 3.6541528853610088."""
    x, f = _rng._ZX, np.exp(-0.5 * _rng._ZX ** 2)
    v = x[1] * f[1] + np.sqrt(2 * np.pi) * stats.norm.sf(x[1])
    areas = x[1:-1] * (f[2:] - f[1:-1])
    np.testing.assert_allclose(areas, v, rtol=1e-9)
    assert abs(x[1] - 3.6541528853610088) < 1e-12


@jit(cache=False)  # inlines progsim._rng: a cached copy would outlive edits there
def _draws(n, key):
    st = np.empty(1, dtype=np.uint64)
    st[0] = _rng.stream_seed(key, np.uint64(0), _rng.DOMAIN_CELL, 0)
    out = np.empty((2, n))
    for k in range(n):
        out[0, k] = _rng.uniform(st)
        out[1, k] = _rng.normal(st)
    return out


def test_stream_draws_are_uniform_and_normal():
    """Kolmogorov-Smirnov against U(0,1) and N(0,1): the statistic's p-value is uniform
    under the null, so 1e-4 is a false alarm once in 10^4 runs, for any key."""
    u, z = _draws(1_000_000, np.uint64(123456789))
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    assert stats.kstest(z, "norm").pvalue > 1e-4
    # the tail beyond r = 3.654 is sampled separately: its frequency 2.58e-4 (258 expected,
    # Poisson sd 16) must come out within 5 sd
    tail = np.sum(np.abs(z) > _rng._ZR)
    expected = 2 * stats.norm.sf(_rng._ZR) * z.size
    assert abs(tail - expected) < 5 * np.sqrt(expected)
    # distinct keys give distinct streams
    u2, _ = _draws(10, np.uint64(123456790))
    assert not np.array_equal(u[:10], u2)


@jit(cache=False)  # inlines progsim._rng: a cached copy would outlive edits there
def _buffered_draws(n, key, line):
    st = np.empty(_rng.NST, dtype=np.uint64)
    buf = np.empty(_rng.NBUF)
    _rng.seed_buffered(st, _rng.stream_base(key, np.uint64(0), _rng.DOMAIN_CELL), line)
    out = np.empty(n)
    for k in range(n):
        out[k] = _rng.normal_buffered(st, buf)
    return out


@jit(cache=False)
def _stream_normals(z, key, line):
    _rng.stream_normals(z, _rng.stream_base(key, np.uint64(0), _rng.DOMAIN_CELL), line)


def test_buffered_normals_are_standard_normal_including_the_slow_path():
    """The kernels' buffered normals: the fast path fills a block, the ~1% of slots that miss
    it finish on the slow path. Finishing them with a fresh draw instead of the
    ziggurat's continuation would leave the wedges under-filled; KS at n = 2e6 resolves a
    CDF error of ~1.4e-3 at p = 1e-4 (1.95/sqrt(n)). The tail, only reached through the slow
    path, must hold its 2 sf(r) share within 5 Poisson sd; the variance within 5 se
    (sd of s^2 is sqrt(2/n))."""
    z = _buffered_draws(2_000_000, np.uint64(987654321), 7)
    assert stats.kstest(z, "norm").pvalue > 1e-4
    tail = np.sum(np.abs(z) > _rng._ZR)
    expected = 2 * stats.norm.sf(_rng._ZR) * z.size
    assert abs(tail - expected) < 5 * np.sqrt(expected)
    assert abs(z.var() - 1.0) < 5 * np.sqrt(2.0 / z.size)
    assert np.all(np.isfinite(z))  # no slot left marked
    # same identity, same draws; another line, other draws
    np.testing.assert_array_equal(z[:1000], _buffered_draws(1000, np.uint64(987654321), 7))
    assert not np.array_equal(z[:1000], _buffered_draws(1000, np.uint64(987654321), 8))


@jit(cache=False)  # inlines progsim._rng: a cached copy would outlive edits there
def _fast_path_misses(n, key):
    missed = 0
    s = key
    for _ in range(n):
        s += _rng._GOLDEN
        missed += not _rng._zig_fast(_rng.mix64(s))[1]
    return missed


def test_fast_path_misses_at_the_ziggurat_rate():
    """An output misses the fast path when u >= x[i+1]/x[i] for its layer i (uniform over the
    256 layers): rate mean(1 - ratio), ~1%. Binomial count within 5 sd."""
    n = 2_000_000
    rate = np.mean(1.0 - _rng._ZRATIO[:256])
    missed = _fast_path_misses(n, np.uint64(42))
    assert abs(missed - n * rate) < 5 * np.sqrt(n * rate * (1 - rate))


def test_stale_kernel_cache_is_dropped_when_a_kernel_module_changes(tmp_path):
    """numba validates a cached kernel only against its own file; our guard hashes every
    kernel module and drops the package's cached kernels when any of them changed."""
    from progsim._config import _drop_stale_kernels

    pkg = tmp_path / "pkg"
    (pkg / "__pycache__").mkdir(parents=True)
    mod = pkg / "kern.py"
    mod.write_text("from progsim._config import jit\n")
    (pkg / "other.py").write_text("x = 1\n")
    _drop_stale_kernels(pkg)
    cached = pkg / "__pycache__" / "kern.f-1.py311.nbi"
    cached.write_text("cached")
    _drop_stale_kernels(pkg)
    assert cached.exists()  # nothing changed: the cache stays
    (pkg / "other.py").write_text("x = 2\n")  # not a kernel module
    _drop_stale_kernels(pkg)
    assert cached.exists()
    mod.write_text("from progsim._config import jit\n# edited\n")
    _drop_stale_kernels(pkg)
    assert not cached.exists()


def test_buffered_draws_do_not_depend_on_the_block_sizes():
    """Blocks grow 8, 8, 16, 32, 64, 64, ... as a stream gives draws; output k must still be the
    stream's k-th output whatever block it falls in, so a kernel that takes three normals from
    a stream draws the first three of the stream a long run draws (and serial, parallel, short
    and long paths agree)."""
    n = 1000
    z = _buffered_draws(n, np.uint64(2024), 3)
    ref = stream_outputs(n, np.uint64(2024), _rng.DOMAIN_CELL, 3)
    np.testing.assert_array_equal(z, ref)
    assert np.sum(ref != ref) == 0
    block = np.empty(n)  # the periphery's one-block fill of a stream (progsim.periphery)
    _stream_normals(block, np.uint64(2024), 3)
    np.testing.assert_array_equal(block, ref)
