"""The kernels' random streams: the normal quantile and the distribution of draws."""

import numpy as np
from scipy import stats

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


@jit
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
