"""Inference on analog tiles: device noise models, drift, drift compensation, HWA training aids.

* :mod:`progsim.inference.noise`: the generic :class:`NoiseModel` (weights <-> conductance
  pairs, programming noise, drift exponents, drift and read noise at ``t``), the PCM-like
  model of the design (:class:`PCMLikeNoise`, as aihwkit's ``PCMLikeNoiseModel``) and a plain
  Gaussian one (:class:`GaussianNoise`);
* :mod:`progsim.inference.compensation`: :class:`GlobalDriftCompensation`;
* :mod:`progsim.inference.modifiers`: weight modifiers and clipping for hardware-aware
  training, torch functions on a weight tensor;
* :mod:`progsim.inference.aihwkit_adapter`: an aihwkit 1.2 analog tile as a progsim
  ``Programmable`` (imports aihwkit only when used).
"""

from progsim.inference.compensation import GlobalDriftCompensation
from progsim.inference.noise import Conductances, GaussianNoise, NoiseModel, PCMLikeNoise, ProgrammedState

__all__ = ["Conductances", "GaussianNoise", "GlobalDriftCompensation", "NoiseModel", "PCMLikeNoise",
           "ProgrammedState"]
