"""Inference on analog tiles: noise models, drift and compensation, HWA training, programming.

* :mod:`progsim.inference.noise`: the generic :class:`NoiseModel` (weights <-> conductance
  pairs, programming noise, drift exponents, drift and read noise at ``t``), the PCM-like
  model of the design (:class:`PCMLikeNoise`, as aihwkit's ``PCMLikeNoiseModel``), a ReRAM
  model from Wan et al. 2022 (:class:`ReRAMLikeNoise`) and a plain Gaussian one
  (:class:`GaussianNoise`);
* :mod:`progsim.inference.compensation`: :class:`GlobalDriftCompensation`;
* :mod:`progsim.inference.modifiers`: weight modifiers and clipping for hardware-aware
  training, torch functions on a weight tensor;
* :mod:`progsim.inference.config`: :class:`InferenceConfig` (with :class:`WeightModifier`,
  :class:`WeightClip`), which makes the layers of :mod:`progsim.nn` inference layers;
* :mod:`progsim.inference.tile`: :class:`InferenceTile`, the backend of those layers
  (trainable weight, periphery reads, straight-through backward, programmed and drifted state);
* :mod:`progsim.inference.api`: :func:`program_analog_weights` (statistically or by any
  programming algorithm on a crossbar), :func:`drift_analog_weights` (inference layers and
  layers trained in situ on PCM or ReRAM presets), :func:`reset_analog_weights`;
* :mod:`progsim.inference.aihwkit_adapter`: an aihwkit 1.2 analog tile as a progsim
  ``Programmable`` (imports aihwkit only when used).
"""

from progsim.inference.compensation import GlobalDriftCompensation
from progsim.inference.noise import (Conductances, GaussianNoise, NoiseModel, PCMLikeNoise, ProgrammedState,
                                     ReRAMLikeNoise)
from progsim.inference.config import InferenceConfig, WeightClip, WeightModifier
from progsim.inference.tile import InferenceTile
from progsim.inference.api import (device_noise_model, drift_analog_weights, program_analog_weights,
                                   reset_analog_weights)

__all__ = ["Conductances", "GaussianNoise", "GlobalDriftCompensation", "InferenceConfig", "InferenceTile",
           "NoiseModel", "PCMLikeNoise", "ProgrammedState", "ReRAMLikeNoise", "WeightClip", "WeightModifier",
           "device_noise_model", "drift_analog_weights", "program_analog_weights", "reset_analog_weights"]
