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

import math

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


# Normal draws: a 256-layer ziggurat (Marsaglia & Tsang, J. Stat. Softw. 5(8), 2000) built
# for one 64-bit draw: 8 bits pick the layer, 1 bit the sign, 53 bits the abscissa. About
# 99% of draws return after one multiply and one compare (~2 ns); the rest test the wedge
# against the density or sample the tail beyond r exactly. Box-Muller (log, sqrt and cos on
# every draw, 35 ns) made cycle-to-cycle noise cost several times the rest of a pulse.
_ZIG_N = 256


def _ziggurat_tables(n=_ZIG_N):
    """Layer abscissae x[0..n] (x[0] = v/f(r) for the base strip, x[1] = r, x[n] = 0) of the
    half-normal density f(x) = exp(-x^2/2) cut into n layers of equal area v. ``r`` solves
    x[n] = 0 (bisection on the layer recursion)."""
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731

    def top(r):
        v = r * f(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
        x = [v / f(r), r]
        for _ in range(1, n - 1):
            y = f(x[-1]) + v / x[-1]
            if y >= 1.0:
                return -1.0, v, x  # r too small: the layers overshoot the peak
            x.append(math.sqrt(-2.0 * math.log(y)))
        return 1.0 - (f(x[-1]) + v / x[-1]), v, x  # area left for the top layer's closure

    lo, hi = 2.0, 5.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if top(mid)[0] < 0:
            lo = mid
        else:
            hi = mid
    _, v, x = top(hi)
    x.append(0.0)
    x = np.array(x)
    fx = np.exp(-0.5 * x * x)
    fx[0] = 0.0  # the base strip's wedge test never runs (its overflow is the tail)
    return x, x[1:] / x[:-1], fx, float(x[1])


_ZX, _ZRATIO, _ZF, _ZR = _ziggurat_tables()
_ZRATIO = np.append(_ZRATIO, 0.0)
_MASK8 = np.uint64(255)
_S8 = np.uint64(8)


@jit(inline="always")
def _ziggurat(state):
    while True:
        bits = next_u64(state)
        i = int(bits & _MASK8)
        neg = (bits >> _S8) & np.uint64(1)
        u = float(bits >> _S11) * _TWO53
        x = u * _ZX[i]
        if u < _ZRATIO[i]:
            return -x if neg else x
        if i == 0:
            # tail beyond r (Marsaglia 1964): exact
            while True:
                a = -np.log(1.0 - uniform(state)) / _ZR
                b = -np.log(1.0 - uniform(state))
                if 2.0 * b > a * a:
                    return -(_ZR + a) if neg else _ZR + a
        # wedge: a uniform height in the layer, accepted under the density
        y = _ZF[i] + uniform(state) * (_ZF[i + 1] - _ZF[i])
        if y < np.exp(-0.5 * x * x):
            return -x if neg else x


@jit(inline="always")
def normal(state):
    """A standard normal draw (ziggurat)."""
    return _ziggurat(state)
