"""Weight modifiers and clipping for hardware-aware training, as pure torch functions.

A modifier returns a perturbed copy of a weight tensor for one training forward pass; the
layer uses it in place of its weights and keeps the clean ones. Gradients pass straight
through (``w + (w_mod - w).detach()``): the gradient of the loss at the perturbed weights
is applied to the clean weights, which is what aihwkit's tiles do when they compute the
backward pass with the modified weights and update the stored ones. Clipping returns a
clipped copy; a layer applies it to its stored weights after each optimiser step
(``with torch.no_grad(): w.copy_(clip_sigma(w, 2.5))``).

Every function works on any device and floating dtype: the noise is drawn with
``torch.randn``/``torch.rand`` like the weight, from ``generator`` when one is given (it
must live on the weight's device).

Definitions follow aihwkit 1.2 (``WeightModifierType``, ``WeightClipType``):

* :func:`add_gaussian`: ``w + std * amax * xi``, ``amax = max|W|`` (``rel_to_actual_wmax``)
  or ``assumed_wmax``;
* :func:`mult_gaussian`: ``w (1 + std xi)`` (the torch tile's ``MULT_NORMAL``);
* :func:`pcm_noise`: the ``PCM_NOISE`` modifier, PCM programming noise (and, for
  ``t_inference > 0``, the spread of drift and the accumulated read noise) of a single
  device per weight, the sign kept;
* :func:`drop_connect`: each weight set to 0 with probability ``pdrop``;
* :func:`clip_fixed`: ``clamp(w, -value, value)`` (``FIXED_VALUE``);
* :func:`clip_sigma`: ``clamp(w, -a, a)``, ``a = sigma * std(W)``, at most ``fixed_value``
  (``LAYER_GAUSSIAN``; ``std`` about the mean with ``n - 1``, as aihwkit).
"""

from __future__ import annotations

import math

import torch

from progsim._validate import Interval, param_error
from progsim.inference.noise import PCMLikeNoise

_NONNEG = Interval(0.0, None, closed="left")
_POS = Interval(0.0, None, closed="neither")


def _weight(weight, owner: str) -> torch.Tensor:
    if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
        got = f"a tensor of {weight.dtype}" if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise TypeError(f"The 'weight' parameter of {owner} must be a floating-point torch.Tensor. Got {got} instead.")
    return weight


def _check(owner: str, name: str, value, constraint) -> float:
    if not constraint.is_satisfied_by(value):
        raise param_error(owner, name, str(constraint), value)
    return float(value)


def _amax(w: torch.Tensor, rel_to_actual_wmax: bool, assumed_wmax: float) -> torch.Tensor:
    if not rel_to_actual_wmax:
        return torch.as_tensor(assumed_wmax, dtype=w.dtype, device=w.device)
    amax = w.detach().abs().max() if w.numel() else torch.zeros((), dtype=w.dtype, device=w.device)
    return torch.where(amax > 0, amax, torch.ones_like(amax))  # an all-zero matrix: unit scale, as aihwkit


def _randn(w: torch.Tensor, generator) -> torch.Tensor:
    return torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)


def _straight_through(w: torch.Tensor, w_mod: torch.Tensor) -> torch.Tensor:
    return w + (w_mod - w).detach()


def add_gaussian(weight, std: float, *, rel_to_actual_wmax: bool = True, assumed_wmax: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``w + std * amax * xi`` with ``amax = max|W|`` (or ``assumed_wmax``)."""
    w = _weight(weight, "add_gaussian")
    std = _check("add_gaussian", "std", std, _NONNEG)
    _check("add_gaussian", "assumed_wmax", assumed_wmax, _POS)
    with torch.no_grad():
        noisy = w + std * _amax(w, rel_to_actual_wmax, assumed_wmax) * _randn(w, generator)
    return _straight_through(w, noisy)


def mult_gaussian(weight, std: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``w (1 + std xi)``: noise proportional to each weight."""
    w = _weight(weight, "mult_gaussian")
    std = _check("mult_gaussian", "std", std, _NONNEG)
    with torch.no_grad():
        noisy = w * (1.0 + std * _randn(w, generator))
    return _straight_through(w, noisy)


def drop_connect(weight, pdrop: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each weight set to 0 with probability ``pdrop`` (fresh draws every call)."""
    w = _weight(weight, "drop_connect")
    pdrop = _check("drop_connect", "pdrop", pdrop, Interval(0.0, 1.0, closed="left"))
    with torch.no_grad():
        keep = torch.rand(w.shape, generator=generator, dtype=w.dtype, device=w.device) >= pdrop
        dropped = torch.where(keep, w, torch.zeros_like(w))
    return _straight_through(w, dropped)


def pcm_noise(weight, noise_scale: float = 1.0, *, t_inference: float = 0.0, model: PCMLikeNoise | None = None,
              rel_to_actual_wmax: bool = True, assumed_wmax: float = 1.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """PCM-like programming noise on the weights (aihwkit's ``PCM_NOISE`` modifier).

    Each weight is one device: ``g = clip(w, -amax, amax) g_max / amax``; a nonzero ``g``
    gets ``g_prog = g + noise_scale sigma_prog(|g|) xi`` with the programming noise of
    ``model`` (:class:`~progsim.inference.noise.PCMLikeNoise` defaults when None). For
    ``t_inference > 0`` it then drifts by ``((t + t0)/t0)^-nu`` with ``nu = |sigma_nu xi|``
    (the spread of the exponent only: the mean drift is taken as compensated, as in aihwkit);
    at any ``t_inference`` the accumulated read noise at ``t_inference + t0`` is added
    (``noise_scale`` scales it too), and the result keeps the sign of ``w``
    (noise that crosses zero is reflected). Zero weights stay zero.
    """
    w = _weight(weight, "pcm_noise")
    scale = _check("pcm_noise", "noise_scale", noise_scale, _NONNEG)
    t_inf = _check("pcm_noise", "t_inference", t_inference, _NONNEG)
    _check("pcm_noise", "assumed_wmax", assumed_wmax, _POS)
    m = PCMLikeNoise() if model is None else model
    if not isinstance(m, PCMLikeNoise):
        raise TypeError(f"The 'model' parameter of pcm_noise must be a PCMLikeNoise or None. Got {m!r} instead.")
    with torch.no_grad():
        amax = _amax(w, rel_to_actual_wmax, assumed_wmax)
        g = torch.maximum(torch.minimum(w, amax), -amax).abs() * (m.g_max / amax)
        x = g / m.g_max
        poly = torch.zeros_like(x)
        for c in reversed(m.prog_coeff):  # Horner
            poly = poly * x + c
        g_prog = g + scale * torch.clamp(poly, min=0.0) * (m.g_max / m.g_ref) * _randn(w, generator)
        x_prog = g_prog.abs() / m.g_max
        t = t_inf + m.t0
        if t_inf > 0:
            sig_nu = torch.clamp(-0.0125 * torch.log(torch.clamp(x_prog, min=1e-6)) - 0.0059, 0.008, 0.045)
            nu = (sig_nu * _randn(w, generator)).abs()
            g_prog = g_prog * (t / m.t0) ** (-nu)
        q_s = torch.clamp(0.0088 / torch.clamp(x_prog**0.65, min=1e-3), max=0.2)
        sig_read = q_s * math.sqrt(math.log((t + m.t_read) / (2.0 * m.t_read)))
        g_final = g_prog + scale * g_prog.abs() * sig_read * _randn(w, generator)
        noisy = torch.where(g > 0, torch.sign(w) * g_final.abs() * (amax / m.g_max), torch.zeros_like(w))
    return _straight_through(w, noisy)


def clip_fixed(weight, value: float) -> torch.Tensor:
    """``clamp(w, -value, value)``."""
    w = _weight(weight, "clip_fixed")
    value = _check("clip_fixed", "value", value, _POS)
    return torch.clamp(w, -value, value)


def clip_sigma(weight, sigma: float = 2.5, *, fixed_value: float | None = None) -> torch.Tensor:
    """``clamp(w, -a, a)`` with ``a = sigma * std(W)`` (at most ``fixed_value`` when given)."""
    w = _weight(weight, "clip_sigma")
    sigma = _check("clip_sigma", "sigma", sigma, _POS)
    if fixed_value is not None:
        _check("clip_sigma", "fixed_value", fixed_value, _POS)
    if w.numel() < 2:
        raise ValueError(f"The 'weight' parameter of clip_sigma must have at least 2 entries for a std. "
                         f"Got shape {tuple(w.shape)} instead.")
    a = sigma * w.detach().std()
    if fixed_value is not None:
        a = torch.clamp(a, max=fixed_value)
    return torch.clamp(w, -a, a)
