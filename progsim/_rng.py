"""Counter-based random streams for the kernels.

numba's ``np.random`` keeps one state per thread, so results would depend on how ``prange``
splits the work. Instead every random draw belongs to a stream identified by
``(key, counter, line)``: ``key`` comes from the tile's ``numpy.random.SeedSequence``,
``counter`` numbers the update cycle (or pulse call), ``line`` the row or column. A stream is
a SplitMix64 sequence (Steele, Lea & Flood 2014) started from a hash of its identity, so each
thread draws exactly the numbers the serial loop would, whatever the thread count.
The state lives in a one-element ``uint64`` array so helpers can advance it in place.
"""

from __future__ import annotations

import numpy as np

from progsim._config import jit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO53 = 1.0 / 9007199254740992.0
_TWO_PI = 2.0 * np.pi

# Domains separate the streams that share a (key, counter, line) identity.
DOMAIN_ROW_TRAIN = np.uint64(1)
DOMAIN_COL_TRAIN = np.uint64(2)
DOMAIN_CELL = np.uint64(3)
DOMAIN_SINGLE = np.uint64(4)


@jit(inline="always")
def mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@jit(inline="always")
def stream_seed(key, counter, domain, line):
    """Initial state of the stream ``(key, counter, domain, line)``."""
    h = mix64(key ^ mix64(np.uint64(counter) * _GOLDEN + domain))
    return mix64(h + np.uint64(line) * _M2 + _GOLDEN)


@jit(inline="always")
def next_u64(state):
    state[0] += _GOLDEN
    return mix64(state[0])


@jit(inline="always")
def uniform(state):
    """A double in [0, 1) with 53 random bits."""
    return float(next_u64(state) >> _S11) * _TWO53


@jit(inline="always")
def normal(state):
    """A standard normal draw (Box-Muller; the second variate is discarded for simplicity)."""
    u1 = 1.0 - uniform(state)  # (0, 1]: log is finite
    u2 = uniform(state)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)
