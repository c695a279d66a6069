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
DOMAIN_READ = np.uint64(5)  # the periphery's read noise (progsim.periphery)


# The scalar helpers are plain ``@jit`` (LLVM inlines them): numba's inlining would re-type
# them at every call site, which costs compile time and nothing at run time.
@jit
def mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@jit
def stream_base(key, counter, domain):
    """The part of :func:`stream_seed` that every line of ``(key, counter, domain)`` shares: a
    loop over lines computes it once (:func:`line_seed`), not once per line."""
    return mix64(key ^ mix64(np.uint64(counter) * _GOLDEN + domain))


@jit
def line_seed(base, line):
    """Initial state of line ``line`` of the streams whose :func:`stream_base` is ``base``."""
    return mix64(base + np.uint64(line) * _M2 + _GOLDEN)


@jit
def stream_seed(key, counter, domain, line):
    """Initial state of the stream ``(key, counter, domain, line)``: the definition the kernels
    follow in two parts, :func:`stream_base` once per ``(key, counter, domain)`` and
    :func:`line_seed` per line."""
    return line_seed(stream_base(key, counter, domain), line)


@jit(inline="always")
def stream_bases(key, counter0, domain, n):
    """:func:`stream_base` of the ``n`` cycles ``counter0, counter0 + 1, ...`` (uint64 array),
    for kernels that seed a stream per line and cycle."""
    out = np.empty(n, dtype=np.uint64)
    for b in range(n):
        out[b] = stream_base(key, counter0 + np.uint64(b), domain)
    return out


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
# 99% of draws return after one multiply and one compare; the rest test the wedge against
# the density or sample the tail beyond r exactly.
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


@jit
def _zig_fast(bits):
    """The ziggurat's fast path for one 64-bit output: (signed x, accepted). About 99% of
    outputs land inside their layer's inner rectangle and are accepted."""
    i = bits & _MASK8
    u = float(bits >> _S11) * _TWO53
    x = u * _ZX[i]
    return (-x if (bits >> _S8) & np.uint64(1) else x), u < _ZRATIO[i]


@jit
def uniform_s(s):
    """:func:`uniform` on a state held in a scalar: (draw, new state)."""
    s = s + _GOLDEN
    return float(mix64(s) >> _S11) * _TWO53, s


@jit(inline="always")
def _zig_slow(bits, s):
    """The ziggurat's slow path for an output ``bits`` its fast path rejected: the tail beyond
    r (layer 0; Marsaglia 1964, exact, always accepts) or the wedge test, a uniform height in
    the layer accepted under the density. Draws from the scalar state ``s``; returns
    (signed x, accepted, new state)."""
    i = int(bits & _MASK8)
    neg = (bits >> _S8) & np.uint64(1)
    x = float(bits >> _S11) * _TWO53 * _ZX[i]
    if i == 0:
        while True:
            u1, s = uniform_s(s)
            u2, s = uniform_s(s)
            a = -np.log(1.0 - u1) / _ZR
            b = -np.log(1.0 - u2)
            if 2.0 * b > a * a:
                return (-(_ZR + a) if neg else _ZR + a), True, s
    u, s = uniform_s(s)
    y = _ZF[i] + u * (_ZF[i + 1] - _ZF[i])
    return (-x if neg else x), y < np.exp(-0.5 * x * x), s


@jit(inline="always")
def _ziggurat_s(s):
    """A standard normal from the scalar state ``s``: (draw, new state)."""
    while True:
        s = s + _GOLDEN
        bits = mix64(s)
        x, ok = _zig_fast(bits)
        if ok:
            return x, s
        x, ok, s = _zig_slow(bits, s)
        if ok:
            return x, s


@jit(inline="always")
def normal(state):
    """A standard normal draw (ziggurat)."""
    x, state[0] = _ziggurat_s(state[0])
    return x


# Buffered normals. The kernels draw one normal per pulse. ``fill_normals`` runs the
# ziggurat's fast path over a block of outputs at once, in a branch-free loop that LLVM can
# vectorise (the rejection loop of a one-at-a-time draw keeps it from overlapping with the
# cell's arithmetic), then finishes the ~1% of slots that missed it on the exact slow path;
# the pulse loop reads the block back. A buffered stream is a uint64 array ``st`` of NST =
# ``[fast-path counter state, position in buf, outputs drawn]`` and a float64 array ``buf``
# of NBUF. Output ``k`` of a stream is a function of the stream and ``k`` alone: its fast-path
# draw is the ``(k + 1)``-th SplitMix64 output, and a miss finishes on a sub-stream seeded by
# that output. So the draws do not depend on the block sizes, and blocks grow with the draws
# a stream has given (8, 8, 16, 32, then NBUF): a kernel that seeds a stream per row and
# cycle and takes a few normals from it does not pay for NBUF.
NBUF = 64
NST = 3
_FIRST_BLOCK = 8


@jit(inline="always")
def seed_buffered(st, base, line):
    """Start line ``line`` of the streams whose :func:`stream_base` is ``base`` in ``st``, with
    an empty buffer."""
    st[0] = line_seed(base, line)
    st[1] = np.uint64(NBUF)
    st[2] = np.uint64(0)


@jit
def _zig_finish(bits):
    """A draw whose fast path missed on the output ``bits``, finished as :func:`_ziggurat_s`
    would: the slow path, and fresh draws while the wedge rejects, all from the sub-stream
    seeded by ``bits``; so every buffered slot is an exact, independent standard normal. A
    scalar in and out, so that no array crosses this call (see :func:`refill` on reference
    counting). Written as one loop so that the slow path compiles once here."""
    s = mix64(bits ^ _M1)
    x, ok, s = _zig_slow(bits, s)
    while not ok:
        s = s + _GOLDEN
        bits = mix64(s)
        x, ok = _zig_fast(bits)
        if not ok:
            x, ok, s = _zig_slow(bits, s)
    return x


@jit(inline="always")
def _normals_block(blk, base):
    """``blk[k]`` = the exact standard normal of output ``k + 1`` after the stream state
    ``base``: the fast path over the block in a branch-free (vectorised) pass that marks its
    misses NaN, then the slow path for those (:func:`_zig_finish`)."""
    missed = 0
    for k in range(blk.shape[0]):
        x, ok = _zig_fast(mix64(base + np.uint64(k + 1) * _GOLDEN))
        blk[k] = x if ok else np.nan
        missed += not ok
    if missed:
        for k in range(blk.shape[0]):
            if blk[k] != blk[k]:
                blk[k] = _zig_finish(mix64(base + np.uint64(k + 1) * _GOLDEN))


@jit(inline="always")
def fill_normals(st, buf):
    """Refill the tail of ``buf`` with the stream's next block of exact standard normals
    (:func:`_normals_block`) and point the position at its first slot. The block holds
    as many outputs as the stream has given so far, at least 8 and at most ``len(buf)``."""
    base = st[0]
    nbuf = buf.shape[0]
    m = min(nbuf, max(_FIRST_BLOCK, np.int64(st[2])))
    start = nbuf - m
    _normals_block(buf[start:], base)
    st[0] = base + np.uint64(m) * _GOLDEN
    st[1] = np.uint64(start)
    st[2] = st[2] + np.uint64(m)


@jit
def refill(st, buf):
    """:func:`fill_normals` as a call, for loops that read the buffer with :func:`take`::

        if st[1] >= nbuf:
            refill(st, buf)
        z = take(st, buf)

    In loops with many branches (the disturb and half-selection loops) an inlined helper
    that receives ``st`` and ``buf`` and holds a call or a loop makes numba reference-count
    both arrays on every use; this shape keeps the loop free of it. Both shapes give the
    same draws."""
    fill_normals(st, buf)


@jit(inline="always")
def take(st, buf):
    """The next slot of a buffered stream the caller has refilled if empty (see :func:`refill`)."""
    q = st[1]
    st[1] = q + np.uint64(1)
    return buf[q]


@jit(inline="always")
def stream_normals(z, base, line):
    """Write the first ``len(z)`` outputs of line ``line`` of the buffered streams whose
    :func:`stream_base` is ``base`` into ``z`` in one block: the values :func:`seed_buffered`
    and :func:`take` give one by one (output ``k`` depends only on the stream and ``k``), for
    a caller that knows how many it needs."""
    _normals_block(z, line_seed(base, line))


@jit(inline="always")
def normal_buffered(st, buf):
    """The next standard normal of the buffered stream ``(st, buf)`` (refilled through the
    compiled-once :func:`refill`, not a fresh inlined copy of the ziggurat)."""
    if st[1] >= np.uint64(buf.shape[0]):
        refill(st, buf)
    return take(st, buf)
