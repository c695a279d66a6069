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


# Acklam's rational approximation of the normal quantile (relative error < 1.2e-9):
# one uniform and ~12 flops per draw in the central 95%, a log and a sqrt in the tails.
# It replaces Box-Muller (log, sqrt and cos on every draw), which made cycle-to-cycle noise
# cost six times the rest of a pulse.
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW = 0.02425


@jit(inline="always")
def normal_ppf(p):
    """Standard normal quantile of ``p`` in (0, 1) (Acklam's approximation)."""
    if p < _P_LOW or p > 1.0 - _P_LOW:
        q = np.sqrt(-2.0 * np.log(p if p < 0.5 else 1.0 - p))
        x = (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / (
            (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0)
        return x if p < 0.5 else -x
    q = p - 0.5
    r = q * q
    return (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q / (
        ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0)


@jit(inline="always")
def normal(state):
    """A standard normal draw: the quantile of a uniform on the open interval (0, 1)."""
    u = (float(next_u64(state) >> _S11) + 0.5) * _TWO53
    return normal_ppf(u)
