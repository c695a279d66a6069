"""The kernels' random streams: the normal quantile and the distribution of draws."""

import numpy as np
from scipy import stats

from progsim import _rng
from progsim._config import jit


def test_normal_quantile_matches_scipy():
    p = np.concatenate([np.logspace(-15, -1, 300), np.linspace(0.01, 0.99, 999), 1 - np.logspace(-15, -1, 300)])
    got = np.array([_rng.normal_ppf(v) for v in p])
    want = stats.norm.ppf(p)
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-3)) < 1.2e-9 * 10


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
    u, z = _draws(200_000, np.uint64(123456789))
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    assert stats.kstest(z, "norm").pvalue > 1e-4
    # distinct keys give distinct streams
    u2, _ = _draws(10, np.uint64(123456790))
    assert not np.array_equal(u[:10], u2)
