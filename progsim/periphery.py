"""Forward and backward periphery: noise management, DAC, analog MVM noise, ADC, bound management.

A vector goes through, in order (all in the tile's normalised units):

1. Noise management (``abs_max``): the input is divided by ``max|x|`` so the DAC range is used
   fully; the output is multiplied back. ``none`` leaves the input as it is.
2. DAC: clipped to ``[-inp_bound, inp_bound]`` and rounded to a step of
   ``inp_res * 2 * inp_bound`` (``inp_res`` is the resolution relative to the full range, as in
   aihwkit: ``1/126`` is a 7-bit converter with a level at zero; a value > 1 means a number of steps).
3. Analog MVM ``W x`` with weight read noise ``w_noise`` (a fresh ``N(0, w_noise^2)`` on every
   weight for every read vector, applied as its exact output distribution
   ``w_noise * ||x||_2 * xi`` per output) and output noise ``out_noise * xi``.
4. ADC: clipped to ``[-out_bound, out_bound]``, rounded to ``out_res * 2 * out_bound``.
5. Bound management (``iterative``): while some output of a vector saturated the ADC, that
   vector is repeated with its input halved (up to ``max_bm_factor``), and the output is scaled
   back by the accumulated factor.

``IO(is_perfect=True)`` gives the exact product. Defaults follow aihwkit's, so results compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from progsim._validate import Boolean, Interval, Options, param, validate_fields

_NONNEG = Interval(0.0, None, closed="left")
_POS = Interval(0.0, None, closed="neither")


@dataclass(frozen=True)
class IO:
    """Periphery of one pass direction (forward or backward)."""

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

    def __post_init__(self):
        validate_fields(self)


def _quantise(v: np.ndarray, res: float, bound: float) -> np.ndarray:
    np.clip(v, -bound, bound, out=v)
    if res > 0:
        step = (res if res <= 1.0 else 1.0 / res) * 2.0 * bound
        np.round(v / step, out=v)
        v *= step
    return v


def mvm(weights: np.ndarray, x: np.ndarray, io: IO, rng: np.random.Generator) -> np.ndarray:
    """``y = weights @ x`` for a batch ``x`` of shape (batch, in) through the periphery ``io``."""
    if io.is_perfect:
        return x @ weights.T
    x = np.asarray(x, dtype=np.float64)
    if io.noise_management == "abs_max":
        scale = np.abs(x).max(axis=1)
        scale[scale == 0] = 1.0
    else:
        scale = np.ones(x.shape[0])
    xs = x / scale[:, None]
    bm = np.ones(x.shape[0])
    out = np.empty((x.shape[0], weights.shape[0]))
    todo = np.arange(x.shape[0])
    wt = np.asarray(weights, dtype=np.float64).T
    while todo.size:
        xin = _quantise(xs[todo] / bm[todo, None], io.inp_res, io.inp_bound)
        y = xin @ wt
        if io.w_noise > 0:
            y += io.w_noise * np.linalg.norm(xin, axis=1)[:, None] * rng.standard_normal(y.shape)
        if io.out_noise > 0:
            y += io.out_noise * rng.standard_normal(y.shape)
        saturated = (np.abs(y) >= io.out_bound).any(axis=1)
        out[todo] = _quantise(y, io.out_res, io.out_bound)
        if io.bound_management != "iterative":
            break
        retry = saturated & (bm[todo] * 2.0 <= io.max_bm_factor)
        todo = todo[retry]
        bm[todo] *= 2.0
    return out * (bm * scale)[:, None]


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
