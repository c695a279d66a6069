"""Inference configuration of the analog layers: noise model, periphery, HWA training aids.

An :class:`InferenceConfig` given to a layer of :mod:`progsim.nn` (``AnalogLinear(...,
config=InferenceConfig())``, ``convert_to_analog(model, InferenceConfig())``) makes it an
inference layer (see :mod:`progsim.inference.tile`): its weight is a trainable parameter,
read through the forward periphery ``io``, perturbed in training by ``modifier`` and clipped
after each optimiser step by ``clip``; it is programmed into PCM-like conductances by
:func:`~progsim.inference.program_analog_weights` (statistically with ``noise_model``, or by a
programming algorithm on a crossbar of ``device``) and drifts with
:func:`~progsim.inference.drift_analog_weights`.

Defaults follow aihwkit 1.2's ``InferenceRPUConfig``: its forward ``IOParameters`` are
progsim's ``IO()`` defaults (``inp_res 1/126``, ``out_res 1/510``, ``out_noise 0.06``,
``out_bound 12``, ABS_MAX noise and ITERATIVE bound management, no weight noise), no
modifier, no clip, global drift compensation, ``PCMLikeNoiseModel`` (here
:class:`~progsim.inference.noise.PCMLikeNoise`), ``weight_scaling_omega`` 0 and a digital bias.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from progsim import devices as _devices
from progsim import pulses as _pulses
from progsim._validate import Boolean, Interval, Options, OrNone, param, param_error, validate_fields
from progsim.halfselect import HalfSelect
from progsim.inference import modifiers
from progsim.inference.noise import NoiseModel, PCMLikeNoise
from progsim.nn.config import InstanceOf
from progsim.periphery import IO

_NONNEG = Interval(0.0, None, closed="left")
_POS = Interval(0.0, None, closed="neither")

MODIFIER_KINDS = ("none", "add_gaussian", "mult_gaussian", "pcm_noise", "drop_connect")
CLIP_KINDS = ("none", "fixed", "sigma")


@dataclass(frozen=True)
class WeightModifier:
    """A perturbation of the weights in every training forward pass (aihwkit's ``WeightModifierType``).

    ``kind`` picks the function of :mod:`progsim.inference.modifiers`: ``"add_gaussian"``
    (``w + std amax xi``), ``"mult_gaussian"`` (``w (1 + std xi)``), ``"pcm_noise"`` (PCM
    programming noise scaled by ``std``, plus the spread of drift and the read noise at
    ``t_inference``), ``"drop_connect"`` (each weight zero with probability ``pdrop``) or
    ``"none"``. ``amax`` is ``max|W|`` (``rel_to_actual_wmax``) or ``assumed_wmax``.
    Gradients pass straight through to the clean weights; evaluation forwards are never
    modified.
    """

    kind: str = param("none", Options(*MODIFIER_KINDS))
    std: float = param(0.0, _NONNEG)
    pdrop: float = param(0.0, Interval(0.0, 1.0, closed="left"))
    rel_to_actual_wmax: bool = param(True, Boolean())
    assumed_wmax: float = param(1.0, _POS)
    t_inference: float = param(0.0, _NONNEG)

    def __post_init__(self):
        validate_fields(self)

    def apply(self, weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The perturbed weight for one forward pass (``weight`` itself for ``"none"``)."""
        wmax = {"rel_to_actual_wmax": self.rel_to_actual_wmax, "assumed_wmax": self.assumed_wmax}
        if self.kind == "add_gaussian":
            return modifiers.add_gaussian(weight, self.std, generator=generator, **wmax)
        if self.kind == "mult_gaussian":
            return modifiers.mult_gaussian(weight, self.std, generator=generator)
        if self.kind == "pcm_noise":
            return modifiers.pcm_noise(weight, self.std, t_inference=self.t_inference, generator=generator, **wmax)
        if self.kind == "drop_connect":
            return modifiers.drop_connect(weight, self.pdrop, generator=generator)
        return weight


@dataclass(frozen=True)
class WeightClip:
    """Clipping of the weights after each optimiser step (aihwkit's ``WeightClipType``).

    ``"fixed"``: ``clamp(w, -value, value)`` (``value`` required); ``"sigma"``: ``clamp(w,
    -a, a)`` with ``a = sigma std(W)``, at most ``value`` when given; ``"none"``.
    """

    kind: str = param("none", Options(*CLIP_KINDS))
    value: float | None = param(None, OrNone(_POS))
    sigma: float = param(2.5, _POS)

    def __post_init__(self):
        validate_fields(self)
        if self.kind == "fixed" and self.value is None:
            raise param_error("WeightClip", "value", "a float > 0 with kind='fixed'", self.value)

    def apply(self, weight: torch.Tensor) -> torch.Tensor:
        """The clipped weight (``weight`` itself for ``"none"``)."""
        if self.kind == "fixed":
            return modifiers.clip_fixed(weight, self.value)
        if self.kind == "sigma":
            return modifiers.clip_sigma(weight, self.sigma, fixed_value=self.value)
        return weight


@dataclass(frozen=True)
class InferenceConfig:
    """What an inference layer is made of.

    Parameters
    ----------
    noise_model : NoiseModel
        Programming noise, drift and read noise of the devices (default ``PCMLikeNoise()``).
        Its conductance converter maps and clips out-of-range weights (``noise_model.w_max``:
        None maps ``max|W|`` to ``g_max``, a fixed value clips beyond it).
    io : IO
        Forward periphery of training and evaluation reads (aihwkit's defaults).
    modifier : WeightModifier
        Perturbation of the weights in training forward passes.
    clip : WeightClip
        Clipping of the weights after each optimiser step.
    drift_compensation : bool
        Global drift compensation per layer after drift.
    weight_scaling_omega : float
        The periphery reads ``W / alpha`` with ``alpha = max|W| / omega`` and scales the output
        back by ``alpha`` (0: ``alpha = 1``, the weights read as they are).
    digital_bias : bool
        True: the bias is added digitally after the read. False: it is an extra column of the
        analog matrix (driven by a constant input 1), programmed and drifted with it.
    device, pulses, half_select, program_io :
        The crossbar a programming algorithm writes the weights into
        (:func:`~progsim.inference.program_analog_weights` with a registry key): a PCM-like
        pulsed device (default the ``"pcm"`` preset), its pulse scheme, half-selection and
        read periphery.
    program_fill : float
        The largest ``|W|`` of a layer is programmed to ``program_fill`` times the device's
        nominal bound ``min(w_max, -w_min)`` (headroom for the device-to-device spread of the
        bounds).
    """

    noise_model: NoiseModel = param(PCMLikeNoise, InstanceOf(NoiseModel, "a progsim.inference NoiseModel, "
                                                                          "e.g. PCMLikeNoise()"))
    io: IO = param(IO, InstanceOf(IO, "an IO, e.g. IO() or IO(is_perfect=True)"))
    modifier: WeightModifier = param(WeightModifier, InstanceOf(WeightModifier, "a WeightModifier"))
    clip: WeightClip = param(WeightClip, InstanceOf(WeightClip, "a WeightClip"))
    drift_compensation: bool = param(True, Boolean())
    weight_scaling_omega: float = param(0.0, _NONNEG)
    digital_bias: bool = param(True, Boolean())
    device: _devices.PulsedDevice = param(_devices.pcm_like, InstanceOf(
        _devices.PulsedDevice, "a device from progsim.devices, e.g. devices.preset('pcm')"))
    pulses: _pulses.PulseScheme = param(_pulses.Stochastic, InstanceOf(
        _pulses.PulseScheme, "a scheme from progsim.pulses, e.g. pulses.Stochastic()"))
    half_select: HalfSelect = param(HalfSelect, InstanceOf(HalfSelect, 'a HalfSelect, e.g. HalfSelect("none")'))
    program_io: IO = param(IO, InstanceOf(IO, "an IO, e.g. IO() or IO(is_perfect=True)"))
    program_fill: float = param(0.8, Interval(0.0, 1.0, closed="right"))

    def __post_init__(self):
        validate_fields(self)
        if self.half_select.mode != "none" and not self.pulses.pulsed:
            raise param_error("InferenceConfig", "half_select",
                              f"HalfSelect('none') with the unpulsed scheme {type(self.pulses).__name__}",
                              self.half_select)
        if not 0.0 < min(self.device.w_max, -self.device.w_min):
            raise param_error("InferenceConfig", "device", "a device whose range holds both signs "
                              "(w_max > 0 > w_min)", self.device)

    def replace(self, **changes) -> "InferenceConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)
