"""Compiled layout kernels of :mod:`progsim.nn.base`: patch cutting for the unfolded
convolutions, and the tile's output rows laid out as torch's channels-first output.

A convolution's geometry is ``(kernel, dilation, padding, stride, out_hw)``, each a pair
(rows, columns). Patch row ``(b, oh, ow)`` (sample by sample, output positions row-major) holds
the input entries ``x[b, c, oh * s0 - p0 + i * d0, ow * s1 - p1 + j * d1]`` in the column order
of ``torch.nn.functional.unfold`` (channel, then kernel row, then kernel column), zero where the
index falls in the padding. Plain loops over small arrays: a strided NumPy copy of the same
patches walks a six-dimensional view with inner extents of a few elements and costs several
times more.
"""

from __future__ import annotations

import math

import numpy as np

from progsim._config import jit


@jit
def _patch_pass(x, rows, kh, kw, d0, d1, p0, p1, s0, s1, ho, wo, adjoint):
    """``adjoint`` False: cut the patches of ``x`` (N, C, H, W) into ``rows``; True: add
    ``rows`` onto the entries of ``x`` they were cut from (the padding's entries dropped)."""
    n, c, h, w = x.shape
    for b in range(n):
        for oh in range(ho):
            for ow in range(wo):
                row = (b * ho + oh) * wo + ow
                col = 0
                for ch in range(c):
                    for i in range(kh):
                        r = oh * s0 - p0 + i * d0
                        for j in range(kw):
                            q = ow * s1 - p1 + j * d1
                            inside = 0 <= r < h and 0 <= q < w
                            if adjoint:
                                if inside:
                                    x[b, ch, r, q] += rows[row, col]
                            else:
                                rows[row, col] = x[b, ch, r, q] if inside else 0.0
                            col += 1


def im2col(x: np.ndarray, geometry, ones_column: bool = False) -> np.ndarray:
    """The patches of ``x`` (N, C, H, W; float32 or float64) as float64 rows
    (N * Ho * Wo, C * kh * kw), plus a last column of ones when ``ones_column`` (an analog
    bias's input); see the module docstring for the order."""
    (kh, kw), (d0, d1), (p0, p1), (s0, s1), (ho, wo) = geometry
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    x = np.ascontiguousarray(x)
    k = x.shape[1] * kh * kw
    out = np.empty((x.shape[0] * ho * wo, k + int(ones_column)))
    _patch_pass(x, out, kh, kw, d0, d1, p0, p1, s0, s1, ho, wo, False)
    if ones_column:
        out[:, k] = 1.0
    return out


def col2im(g: np.ndarray, in_shape, geometry) -> np.ndarray:
    """The adjoint of :func:`im2col` (without its ones column): the rows of patch gradients
    ``g`` (N * Ho * Wo, C * kh * kw) summed onto the input entries they were cut from, float64
    of shape ``in_shape`` (N, C, H, W)."""
    (kh, kw), (d0, d1), (p0, p1), (s0, s1), (ho, wo) = geometry
    out = np.zeros(tuple(in_shape))
    _patch_pass(out, np.ascontiguousarray(g, dtype=np.float64), kh, kw, d0, d1, p0, p1, s0, s1, ho, wo, True)
    return out


@jit
def _rows_to_channels(y, bias, out):
    """``out[b, c, q] = y[b * P + q, c]`` rounded to ``out``'s dtype, then ``+ bias[c]`` added in
    that dtype (an empty ``bias``: none), for ``out`` of shape (N, C, P)."""
    n, c_out, npos = out.shape
    with_bias = bias.shape[0] > 0
    for b in range(n):
        for q in range(npos):
            r = b * npos + q
            for c in range(c_out):
                out[b, c, q] = y[r, c]
                if with_bias:
                    out[b, c, q] = out[b, c, q] + bias[c]


_NO_BIAS = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}


def rows_to_channels(y: np.ndarray, bias: np.ndarray | None, shape, dtype) -> np.ndarray:
    """The tile's output rows ``y`` (float64, (N * P, C): sample by sample, positions in order) as
    a new array of ``shape`` (N, C, ...) with P positions after the channel axis, in ``dtype``
    (float32 or float64): each entry rounded to ``dtype`` and ``bias`` (of ``dtype``, or None)
    added along the channels in ``dtype``, as ``torch.from_numpy(y...).to(dtype) + bias`` would."""
    out = np.empty(shape, dtype=dtype)
    b = _NO_BIAS[out.dtype] if bias is None else bias
    _rows_to_channels(y, b, out.reshape(shape[0], shape[1], math.prod(shape[2:])))
    return out
