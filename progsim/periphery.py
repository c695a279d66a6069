"""Forward and backward periphery: noise management, DAC, analog MVM noise, ADC, bound management.

A vector goes through, in order (all in the tile's normalised units):

1. Noise management (``abs_max``): the input is divided by ``max|x|`` so the DAC range is used
   fully; the output is multiplied back. ``none`` leaves the input as it is.
2. DAC: rounded to a step of ``inp_res * 2 * inp_bound`` and clipped to
   ``[-inp_bound, inp_bound]`` (``inp_res`` is the resolution relative to the full range, as in
   aihwkit: ``1/126`` is a 7-bit converter with a level at zero; a value > 1 means a number of steps).
3. Analog MVM ``W x`` with weight read noise ``w_noise`` (a fresh ``N(0, w_noise^2)`` on every
   weight for every read vector, applied as its exact output distribution
   ``w_noise * ||x||_2 * xi`` per output) and output noise ``out_noise * xi``.
4. ADC: rounded to ``out_res * 2 * out_bound`` and clipped to ``[-out_bound, out_bound]``.
5. Bound management (``iterative``, forward pass only): while an output of a vector lies beyond
   the ADC range after rounding, that vector is read again with its input halved, and the
   output is scaled back by the accumulated factor. As in aihwkit 1.2.0
   (``ForwardBackwardPassIOManaged::forwardVector``), after a read at factor ``f`` the halving
   stops when ``f > max_bm_factor`` or, with a DAC, when
   ``f > max_bm_res / (inp_res * 2 * inp_bound)``: with the default DAC (``inp_res`` 1/126) the
   largest factor is 16. The backward pass never applies bound management (aihwkit's
   ``backwardVector`` switches it off); ``Crossbar.backward`` saturates at ``out_bound``.

``IO(is_perfect=True)`` gives the exact product. Defaults follow aihwkit's, so results compare.

A read runs in one compiled kernel, in passes: the first reads every vector, each later one
only the vectors that bound management repeats. A pass's MVM is computed in the tile's dtype:
in a read of at least 8 vectors (2 on tiles of 512x512 cells and more) with float64 weights in
C layout (the forward read), by a register-blocked kernel whose every output is the plain sum
over the inputs in increasing order (the naive product's bits), in every pass, its rows split
between threads in the parallel variant of that read; else by one BLAS call (float32 tiles,
the backward read's transposed weights and fewer vectors, where BLAS's single-precision and
matrix-vector kernels are the faster ones). So a vector's product depends, by rounding only,
on how many vectors its read holds, never on the thread count. The noise comes from
counter-based streams (:mod:`progsim._rng`) seeded by one raw 64-bit draw of the tile's
``numpy.random.Generator`` per read: vector ``k`` draws, in pass ``q`` (0 first), from the
stream ``(draw, q, DOMAIN_READ, k)``, for each output in order its weight noise (if on), then
its output noise (if on). So the generator's state (what a saved tile keeps) fixes every read,
and the normals are drawn in the kernel, not by NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from progsim import _rng
from progsim._config import jit, jit_parallel, renamed, slp_vectorized, use_parallel
from progsim._validate import Boolean, Interval, Options, param, validate_fields

_NONNEG = Interval(0.0, None, closed="left")
_POS = Interval(0.0, None, closed="neither")


@dataclass(frozen=True)
class IO:
    """Periphery of one pass direction (forward or backward).

    ``max_bm_factor`` and ``max_bm_res`` limit the halving of bound management as aihwkit's
    fields of the same names do (see the module docstring).
    """

    is_perfect: bool = param(False, Boolean())
    inp_bound: float = param(1.0, _POS)
    inp_res: float = param(1.0 / 126.0, _NONNEG)
    out_bound: float = param(12.0, _POS)
    out_res: float = param(1.0 / 510.0, _NONNEG)
    out_noise: float = param(0.06, _NONNEG)
    w_noise: float = param(0.0, _NONNEG)
    noise_management: str = param("abs_max", Options("abs_max", "none"))
    bound_management: str = param("iterative", Options("iterative", "none"))
    max_bm_factor: float = param(1000.0, Interval(1.0, None))
    max_bm_res: float = param(0.25, _POS)

    def __post_init__(self):
        validate_fields(self)


_ZERO = np.uint64(0)
# Index of each scalar in the float64 vector that io_params builds for _read.
_NM, _INP_BOUND, _INP_STEP, _OUT_BOUND, _OUT_STEP, _W_NOISE, _OUT_NOISE, _BM_LIMIT, _N_NOISE = range(9)


def _step(res: float, bound: float) -> float:
    return 0.0 if res <= 0 else (res if res <= 1.0 else 1.0 / res) * 2.0 * bound


def io_params(io: IO, backward: bool = False) -> np.ndarray:
    """The scalars of ``io`` as :func:`mvm` hands them to its kernel (build once per tile).

    ``backward=True`` switches bound management off, as aihwkit does on the backward pass.
    ``BM_LIMIT`` is the largest factor after which another halving is allowed (0: none).
    """
    p = np.zeros(9)
    p[_NM] = io.noise_management == "abs_max"
    p[_INP_BOUND] = io.inp_bound
    p[_INP_STEP] = _step(io.inp_res, io.inp_bound)
    p[_OUT_BOUND] = io.out_bound
    p[_OUT_STEP] = _step(io.out_res, io.out_bound)
    p[_W_NOISE] = io.w_noise
    p[_OUT_NOISE] = io.out_noise
    if io.bound_management == "iterative" and not backward:
        limit = io.max_bm_factor
        if p[_INP_STEP] > 0:
            limit = min(limit, io.max_bm_res / p[_INP_STEP])
        p[_BM_LIMIT] = limit
    p[_N_NOISE] = (io.w_noise > 0) + (io.out_noise > 0)
    return p


# From this many vectors on, a float64 read multiplies with the blocked kernel; on tiles of at
# least _LARGE cells, from _BLOCK_FROM_LARGE on (there BLAS's double product of a few columns,
# which repacks the weights on every call, is the slower one: 600-1300 us against 370-400 at
# 1024x1024 and 2-6 columns; on small tiles BLAS is faster below 8).
_BLOCK_FROM = 8
_BLOCK_FROM_LARGE = 2
_LARGE = 512 * 512
# The blocked read runs its parallel variant from this many cells x vectors on (where two threads
# beat one on an idle two-core machine), and splits the rows into at most _ROW_BLOCKS blocks.
_PARALLEL_FROM = 1 << 19
_ROW_BLOCKS = 64


@jit(inline="always")
def _blocked_product(w, xin):
    """``w @ xin`` for a float64 ``w`` in C layout: :func:`_blocked_rows` over blocks of rows
    (``prange``: the parallel read splits them between its threads, each output computed whole
    by one) on ``xin`` padded with zero columns to a multiple of 8, their products dropped. A
    pass of a single vector (bound management reading one vector again) is padded too: no BLAS
    call inside the read, whose threads would wait for numba's on a busy core."""
    n = xin.shape[1]
    m = (n + 7) // 8 * 8
    x = xin
    if m != n:
        x = np.empty((xin.shape[0], m), dtype=xin.dtype)
        for j in range(xin.shape[0]):
            for r in range(n):
                x[j, r] = xin[j, r]
            for r in range(n, m):
                x[j, r] = 0.0
    n_out = w.shape[0]
    y = np.empty((n_out, m), dtype=w.dtype)
    nblk = min(max(n_out // 4, 1), _ROW_BLOCKS)
    for c in prange(nblk):
        _blocked_rows(w, x, y, c * n_out // nblk, (c + 1) * n_out // nblk)
    return y[:, :n]


@jit
def _blocked_rows(w, x, y, lo, hi):
    """Rows ``lo`` to ``hi - 1`` of ``y = w @ x`` for ``x`` of shape (in, n) with ``n`` a
    multiple of 8, C-contiguous, and ``w`` C-contiguous: blocks of 4 rows of ``w`` times 8
    columns of ``x`` held in 32 scalar accumulators, which LLVM's SLP vectoriser packs into
    vector registers (see :func:`progsim._config.slp_vectorized`; the sums are the same without
    it, only slower). Each output is the plain sum over the inputs in increasing order,
    ``((w0 x0 + w1 x1) + w2 x2) + ...``, in the dtype of ``w`` and with no fused multiply-add,
    so it does not depend on the vectorisation, the batch or the row blocks. ``w`` is read once
    per 8 vectors, where BLAS packs it anew on every call (the cost that dominates a product
    with few vectors)."""
    n_in = w.shape[1]
    n = x.shape[1]
    zero = y.dtype.type(0.0)
    full = hi - (hi - lo) % 4
    r = 0
    while r < n:  # not range(0, n, 8): through its index LLVM cannot see that r + k >= 0, and keeps
        # numba's negative-index wraparound on every load of x, which stops the vectoriser
        for i in range(lo, full, 4):
            a00 = a01 = a02 = a03 = a04 = a05 = a06 = a07 = zero
            a10 = a11 = a12 = a13 = a14 = a15 = a16 = a17 = zero
            a20 = a21 = a22 = a23 = a24 = a25 = a26 = a27 = zero
            a30 = a31 = a32 = a33 = a34 = a35 = a36 = a37 = zero
            for j in range(n_in):
                x0, x1, x2, x3 = x[j, r], x[j, r + 1], x[j, r + 2], x[j, r + 3]
                x4, x5, x6, x7 = x[j, r + 4], x[j, r + 5], x[j, r + 6], x[j, r + 7]
                v = w[i, j]
                a00 += v * x0; a01 += v * x1; a02 += v * x2; a03 += v * x3  # noqa: E702
                a04 += v * x4; a05 += v * x5; a06 += v * x6; a07 += v * x7  # noqa: E702
                v = w[i + 1, j]
                a10 += v * x0; a11 += v * x1; a12 += v * x2; a13 += v * x3  # noqa: E702
                a14 += v * x4; a15 += v * x5; a16 += v * x6; a17 += v * x7  # noqa: E702
                v = w[i + 2, j]
                a20 += v * x0; a21 += v * x1; a22 += v * x2; a23 += v * x3  # noqa: E702
                a24 += v * x4; a25 += v * x5; a26 += v * x6; a27 += v * x7  # noqa: E702
                v = w[i + 3, j]
                a30 += v * x0; a31 += v * x1; a32 += v * x2; a33 += v * x3  # noqa: E702
                a34 += v * x4; a35 += v * x5; a36 += v * x6; a37 += v * x7  # noqa: E702
            y[i, r], y[i, r + 1], y[i, r + 2], y[i, r + 3] = a00, a01, a02, a03
            y[i, r + 4], y[i, r + 5], y[i, r + 6], y[i, r + 7] = a04, a05, a06, a07
            y[i + 1, r], y[i + 1, r + 1], y[i + 1, r + 2], y[i + 1, r + 3] = a10, a11, a12, a13
            y[i + 1, r + 4], y[i + 1, r + 5], y[i + 1, r + 6], y[i + 1, r + 7] = a14, a15, a16, a17
            y[i + 2, r], y[i + 2, r + 1], y[i + 2, r + 2], y[i + 2, r + 3] = a20, a21, a22, a23
            y[i + 2, r + 4], y[i + 2, r + 5], y[i + 2, r + 6], y[i + 2, r + 7] = a24, a25, a26, a27
            y[i + 3, r], y[i + 3, r + 1], y[i + 3, r + 2], y[i + 3, r + 3] = a30, a31, a32, a33
            y[i + 3, r + 4], y[i + 3, r + 5], y[i + 3, r + 6], y[i + 3, r + 7] = a34, a35, a36, a37
        for i in range(full, hi):
            a00 = a01 = a02 = a03 = a04 = a05 = a06 = a07 = zero
            for j in range(n_in):
                v = w[i, j]
                a00 += v * x[j, r]; a01 += v * x[j, r + 1]; a02 += v * x[j, r + 2]; a03 += v * x[j, r + 3]  # noqa: E702
                a04 += v * x[j, r + 4]; a05 += v * x[j, r + 5]; a06 += v * x[j, r + 6]; a07 += v * x[j, r + 7]  # noqa: E702
            y[i, r], y[i, r + 1], y[i, r + 2], y[i, r + 3] = a00, a01, a02, a03
            y[i, r + 4], y[i, r + 5], y[i, r + 6], y[i, r + 7] = a04, a05, a06, a07
        r += 8


@jit(inline="always")
def _pass(w, x, todo, n, bm, key, pass_no, p, out, z, blocked):
    """One pass of a read kernel (:func:`_make_read`) over the vectors ``x[todo[:n]]`` at their bound-management
    factors ``bm``, writing their rows of ``out``. The noise of vector ``k`` comes from the
    stream ``(key, pass_no, DOMAIN_READ, k)``: per output, in order, its weight noise (if on),
    then its output noise (if on), drawn into ``z``. The vectors to read again (an output
    saturated and the factor may still double) have ``bm`` doubled and are moved to the front
    of ``todo``; returns how many there are. ``blocked``: the product is
    :func:`_blocked_product` (else one BLAS call)."""
    n_in = x.shape[1]
    n_out = w.shape[0]
    inp_bound, inp_step = p[_INP_BOUND], p[_INP_STEP]
    out_bound, out_step = p[_OUT_BOUND], p[_OUT_STEP]
    w_noise, out_noise, bm_limit = p[_W_NOISE], p[_OUT_NOISE], p[_BM_LIMIT]
    xin = np.empty((n_in, n), dtype=w.dtype)  # one column per vector: W @ xin is the faster BLAS call
    scale = np.empty(n)
    for r in range(n):
        k = todo[r]
        scale[r] = 1.0
        if p[_NM] != 0.0:
            s = 0.0
            for j in range(n_in):
                a = abs(x[k, j])
                if a > s:
                    s = a
            if s > 0.0:
                scale[r] = s
        f = 1.0 / (scale[r] * bm[k])
        for j in range(n_in):
            v = x[k, j] * f
            if inp_step > 0.0:
                v = np.rint(v / inp_step) * inp_step
            if v > inp_bound:
                v = inp_bound
            elif v < -inp_bound:
                v = -inp_bound
            xin[j, r] = v
    if blocked:  # a compile-time constant of each read kernel: numba drops the other branch
        y = _blocked_product(w, xin)
    else:
        y = np.dot(w, xin)
    both = w_noise > 0.0 and out_noise > 0.0
    base = _rng.stream_base(key, pass_no, _rng.DOMAIN_READ)
    n_retry = 0
    for r in range(n):
        k = todo[r]
        wn = 0.0
        if w_noise > 0.0:
            for j in range(n_in):
                wn += float(xin[j, r]) ** 2
            wn = w_noise * np.sqrt(wn)
        if z.shape[0]:
            _rng.stream_normals(z, base, k)
        saturated = False
        g = bm[k] * scale[r]
        for i in range(n_out):
            v = float(y[i, r])
            if w_noise > 0.0:
                v += wn * z[2 * i if both else i]
            if out_noise > 0.0:
                v += out_noise * z[2 * i + 1 if both else i]
            if out_step > 0.0:
                v = np.rint(v / out_step) * out_step
            if v > out_bound:
                v = out_bound
                saturated = True
            elif v < -out_bound:
                v = -out_bound
                saturated = True
            out[k, i] = v * g
        if saturated and bm[k] <= bm_limit:
            bm[k] *= 2.0
            todo[n_retry] = k  # n_retry <= r: a slot already read
            n_retry += 1
    return n_retry


def _make_read(blocked):
    def read(w, x, key, p):
        """The periphery's read of every row of ``x`` (see the module docstring): passes of
        :func:`_pass` until no vector is left to read again. Returns float64 (batch, out)."""
        nb = x.shape[0]
        out = np.empty((nb, w.shape[0]))
        bm = np.empty(nb)  # np.empty and loops, not np.ones/np.arange: fewer compiles on first use
        todo = np.empty(nb, dtype=np.int64)
        for k in range(nb):
            bm[k] = 1.0
            todo[k] = k
        z = np.empty(w.shape[0] * int(p[_N_NOISE]))
        n, pass_no = nb, 0
        while n > 0:
            n = _pass(w, x, todo, n, bm, key, pass_no, p, out, z, blocked)
            pass_no += 1
        return out
    return read


# The read with BLAS products, and the one with the blocked product (float64 weights in C
# layout, enough vectors) in a serial and a parallel variant: kernels of their own, so that a
# tile compiles the blocked read only once it reads a batch that uses it. Call the blocked ones
# through mvm, or inside _config.slp_vectorized(): the first compile is cached as it was made.
_read = jit(renamed(_make_read(False), "_read"))
_read_blocked = jit(renamed(_make_read(True), "_read_blocked"))
_read_blocked_parallel = jit_parallel(renamed(_make_read(True), "_read_blocked_parallel"))


def mvm(weights: np.ndarray, x: np.ndarray, io: IO, rng: np.random.Generator, params: np.ndarray | None = None,
        backward: bool = False) -> np.ndarray:
    """``y = weights @ x`` for a batch ``x`` of shape (batch, in) through the periphery ``io``.

    ``params`` is :func:`io_params` of ``io`` (computed here when not given); ``backward``
    reads without bound management. A call takes one raw 64-bit draw of ``rng`` (when ``io``
    has noise) to seed its streams (see the module docstring). Returns float64 of shape
    (batch, out).
    """
    if io.is_perfect:
        return x @ weights.T
    p = io_params(io, backward) if params is None else params
    if x.dtype != np.float64 or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=np.float64)
    key = np.uint64(rng.bit_generator.random_raw()) if p[_N_NOISE] > 0 else _ZERO
    if (x.shape[0] < (_BLOCK_FROM_LARGE if weights.size >= _LARGE else _BLOCK_FROM) or weights.dtype != _F64
            or not weights.flags.c_contiguous):
        return _read(weights, x, key, p)
    work = weights.size * x.shape[0]
    parallel = work >= _PARALLEL_FROM and use_parallel(work)
    read = _read_blocked_parallel if parallel else _read_blocked
    if parallel in _READ_BLOCKED_CALLED:
        return read(weights, x, key, p)
    with slp_vectorized():  # the first call compiles (or loads) the kernel
        out = read(weights, x, key, p)
    _READ_BLOCKED_CALLED.add(parallel)
    return out


_F64 = np.dtype(np.float64)
_READ_BLOCKED_CALLED = set()  # the variants of the blocked read called in this process (parallel or not)


def output_noise_var(io: IO, x) -> np.ndarray:
    """Variance of each output of :func:`mvm` for each input of the batch ``x`` (batch, in).

    Output noise and ADC rounding (uniform, ``step^2 / 12``) are added after noise
    management divides the input by ``max|x|`` (``abs_max``), so they scale with
    ``max|x|^2``; weight read noise scales with ``||x||_2^2``. DAC rounding and bound
    management are left out (the prediction holds while no output saturates). Zero for a
    perfect periphery.
    """
    x2 = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if io.is_perfect:
        return np.zeros(x2.shape[0])
    if io.noise_management == "abs_max":
        scale = np.abs(x2).max(axis=1)
        scale[scale == 0] = 1.0
    else:
        scale = np.ones(x2.shape[0])
    adc_step = (io.out_res if io.out_res <= 1.0 else 1.0 / io.out_res) * 2.0 * io.out_bound
    return scale**2 * (io.out_noise**2 + adc_step**2 / 12.0) + io.w_noise**2 * (x2**2).sum(axis=1)
