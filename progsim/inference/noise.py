"""Statistical noise models of inference devices: programming noise, drift, read noise.

A weight matrix is stored as a pair of conductances per cell, ``g+`` and ``g-`` (in uS),
and read as ``W = (g+ - g-) / scale``. A noise model turns target conductances into
programmed ones (:meth:`NoiseModel.apply_programming_noise`), draws each device's drift
exponent once at programming (:meth:`NoiseModel.generate_drift_coefficients`), and gives
the conductance a time ``t`` after programming, with drift and accumulated read noise
(:meth:`NoiseModel.apply_drift_noise`). :meth:`NoiseModel.program` and
:meth:`NoiseModel.weights_at` compose these on weight matrices; another device's
statistics plug in by subclassing :class:`NoiseModel` and writing the three methods.

Weight -> conductance mapping (as aihwkit's ``SinglePairConductanceConverter``):
``scale = (g_max - g_min) / w_max`` uS per weight unit, with ``w_max`` the matrix's
``max|W|`` when the model's ``w_max`` is None (aihwkit's behaviour: the largest weight
lands on ``g_max``) or the fixed ``w_max`` given. Then ``g+ = clip(W scale, 0, g_max -
g_min) + g_min`` and ``g- = clip(-W scale, 0, g_max - g_min) + g_min``: one device of the
pair carries the weight, the other rests at ``g_min``, and weights beyond ``+-w_max``
(possible only with a fixed ``w_max``) are clipped to ``g_max``.

:class:`ProgrammedState` keeps the programmed conductances themselves, and drift and read
noise act on both devices of each pair. (aihwkit's ``InferenceTile.drift_weights`` instead
maps the programmed *weights* back to one conductance per cell, scaled by the noisy
matrix's ``max|W|``, before drifting: what programming noise leaves on the idle device
of a pair (a normal of std 0.26 uS clipped at 0, in the PCM model) merges into the other
device instead of drifting with its own exponent.)

Arrays are NumPy (float64); randomness comes from an explicit ``numpy.random.Generator``
(an int seed is accepted and turned into one). Times are in seconds after programming
ends, ``t >= 0``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from progsim._validate import Interval, check_array, param, param_error, validate_fields
from progsim._validate import OrNone

_POS = Interval(0.0, None, closed="neither")
_NONNEG = Interval(0.0, None, closed="left")


def as_generator(rng, owner: str) -> np.random.Generator:
    """``rng`` as a NumPy Generator: a Generator is used as is, an int seeds a new one."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise TypeError(f"The 'rng' parameter of {owner} must be a numpy.random.Generator or an int seed >= 0. "
                    f"Got {rng!r} instead.")


def _check_time(t, owner: str) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not (
            math.isfinite(t) and t >= 0):
        raise param_error(owner, "t", "a finite float >= 0 (seconds after programming)", t)
    return float(t)


def _conductance(g, name: str, owner: str) -> np.ndarray:
    arr = check_array(g, name, owner)
    if (arr < 0).any():
        raise ValueError(f"The '{name}' parameter of {owner} must be conductances >= 0 (uS). "
                         f"Got a minimum of {arr.min()!r} instead.")
    return arr


class Conductances(NamedTuple):
    """A weight matrix as conductance pairs: ``W = (g_plus - g_minus) / scale``."""

    g_plus: np.ndarray
    g_minus: np.ndarray
    scale: float


def _drifted(g_prog, nu, t, t0: float, rng, owner: str):
    """The checked inputs of ``apply_drift_noise`` and the drifted conductances
    ``g_prog ((t + t0)/t0)^-nu``: ``(g_drift, t, rng)``."""
    g = _conductance(g_prog, "g_prog", owner)
    nu = check_array(nu, "nu", owner, shape=g.shape)
    t = _check_time(t, owner)
    return g * ((t + t0) / t0) ** (-nu), t, as_generator(rng, owner)


@dataclass(frozen=True)
class ProgrammedState:
    """Programmed conductances and the drift exponents drawn for each device at programming.

    ``W(t)`` is :meth:`NoiseModel.weights_at` ``(state, t, rng)``; the state itself never
    changes, so the same programmed array can be read at many times (each read at ``t``
    draws its own accumulated read noise, as aihwkit's ``drift_weights``).
    """

    g_plus: np.ndarray
    g_minus: np.ndarray
    nu_plus: np.ndarray
    nu_minus: np.ndarray
    scale: float

    @property
    def weights(self) -> np.ndarray:
        """The weights right after programming (no drift, no read noise)."""
        return (self.g_plus - self.g_minus) / self.scale


@dataclass(frozen=True)
class NoiseModel(ABC):
    """Base of the inference noise models: the conductance mapping and the composed verbs.

    Subclasses declare their statistics as fields and write
    :meth:`apply_programming_noise`, :meth:`generate_drift_coefficients` and
    :meth:`apply_drift_noise` on conductance arrays (uS).
    """

    g_max: float = param(25.0, _POS)
    g_min: float = param(0.0, _NONNEG)
    w_max: float | None = param(None, OrNone(_POS))

    def __post_init__(self):
        validate_fields(self)
        if self.g_min >= self.g_max:
            raise param_error(type(self).__name__, "g_min", f"< g_max = {self.g_max:g}", self.g_min)

    # ----------------------------------------------------------------- device statistics

    @abstractmethod
    def apply_programming_noise(self, g_target, rng) -> np.ndarray:
        """Conductances after programming ``g_target`` (uS)."""

    @abstractmethod
    def generate_drift_coefficients(self, g_target, rng) -> np.ndarray:
        """Each device's drift exponent, drawn once at programming from its target."""

    @abstractmethod
    def apply_drift_noise(self, g_prog, nu, t, rng) -> np.ndarray:
        """Conductances ``t`` seconds after programming: drift and accumulated read noise."""

    # ----------------------------------------------------------------- mapping

    def to_conductances(self, weights) -> Conductances:
        """Map weights onto conductance pairs (see the module doc for the mapping)."""
        owner = f"{type(self).__name__}.to_conductances"
        w = check_array(weights, "weights", owner)
        w_max = self.w_max if self.w_max is not None else float(np.abs(w).max(initial=0.0))
        span = self.g_max - self.g_min
        scale = span / w_max if w_max > 0 else span  # an all-zero matrix maps to g_min
        return Conductances(*self._pair(w * scale), float(scale))

    def _pair(self, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        span = self.g_max - self.g_min
        return np.clip(scaled, 0.0, span) + self.g_min, np.clip(-scaled, 0.0, span) + self.g_min

    def to_weights(self, g_plus, g_minus, scale: float) -> np.ndarray:
        """Weights read from a pair: ``(g_plus - g_minus) / scale``."""
        return (np.asarray(g_plus, dtype=np.float64) - np.asarray(g_minus, dtype=np.float64)) / float(scale)

    # ----------------------------------------------------------------- composed verbs

    def program(self, weights, rng) -> ProgrammedState:
        """Map ``weights`` to pairs, apply programming noise and draw each device's exponent.

        The exponents are drawn from the target conductances, as aihwkit does.
        """
        rng = as_generator(rng, f"{type(self).__name__}.program")
        g = self.to_conductances(weights)
        return ProgrammedState(
            self.apply_programming_noise(g.g_plus, rng), self.apply_programming_noise(g.g_minus, rng),
            self.generate_drift_coefficients(g.g_plus, rng), self.generate_drift_coefficients(g.g_minus, rng),
            g.scale)

    def from_programmed(self, weights, rng, target=None) -> ProgrammedState:
        """The state of weights already written by other means (a pulsed programming run).

        ``weights`` become conductance pairs without programming noise, with the scale of
        ``target`` (the weights that were aimed at; ``weights`` themselves when None; entries
        beyond the target's range clip at ``g_max``), and the
        drift exponents are drawn from the mapped ``target``: a device drifts with the
        statistics of the conductance it was programmed to.
        """
        owner = f"{type(self).__name__}.from_programmed"
        rng = as_generator(rng, owner)
        w = check_array(weights, "weights", owner)
        ref = self.to_conductances(w if target is None else check_array(target, "target", owner, shape=w.shape))
        g_plus, g_minus = self._pair(w * ref.scale)
        return ProgrammedState(g_plus, g_minus, self.generate_drift_coefficients(ref.g_plus, rng),
                               self.generate_drift_coefficients(ref.g_minus, rng), ref.scale)

    def weights_at(self, state: ProgrammedState, t, rng) -> np.ndarray:
        """The weights ``t`` seconds after programming, with drift and read noise."""
        owner = f"{type(self).__name__}.weights_at"
        t = _check_time(t, owner)
        rng = as_generator(rng, owner)
        g_plus = self.apply_drift_noise(state.g_plus, state.nu_plus, t, rng)
        g_minus = self.apply_drift_noise(state.g_minus, state.nu_minus, t, rng)
        return self.to_weights(g_plus, g_minus, state.scale)


@dataclass(frozen=True)
class PCMLikeNoise(NoiseModel):
    r"""PCM statistics fitted to measured devices (Nandakumar et al. 2019, Joshi et al. 2020).

    The same model as aihwkit 1.2's ``PCMLikeNoiseModel``, with ``x = g / g_max``:

    * programming: ``g_prog = max(g_T + sigma_prog(x_T) xi, 0)``, ``sigma_prog =
      prog_noise_scale * max(c0 + c1 x + c2 x^2, 0) * g_max / g_ref`` uS with ``prog_coeff
      = (c0, c1, c2) = (0.26348, 1.9650, -1.1731)`` fitted at ``g_ref = 25`` uS (so that at
      ``g_T = g_max = 25`` uS, ``sigma_prog = 1.055`` uS). aihwkit has no ``max(., 0)``; it
      only matters for coefficients whose polynomial turns negative on ``[0, 1]``.
      Negative results are clipped to 0 (no negative conductance); there is no upper clip.
    * drift exponent, once per device from its target: ``nu = drift_scale * |mu + sigma xi|``
      with ``mu = clip(-0.0155 ln x + 0.0244, 0.049, 0.1)``, ``sigma = clip(-0.0125 ln x -
      0.0059, 0.008, 0.045)`` and ``x`` floored at ``1e-7`` (a device at 0 gets the
      largest ``mu`` and ``sigma``). The absolute value is aihwkit's; with these clips a
      negative draw needs ``xi < -mu/sigma``, between -1.94 (at ``x = 0.017``) and -6.1
      (``x >= 0.33``): rare (at most 2.6 % of devices) but not absent.
    * drift: ``g_drift = g_prog ((t + t0) / t0)^-nu`` with ``t0 = 20`` s.
    * read noise accumulated at ``t``: ``g = max(g_drift + |g_drift| read_noise_scale q_s
      sqrt(ln((t + t0 + t_read) / (2 t_read))) xi, 0)`` with ``q_s = min(0.0088 /
      max(x_prog^0.65, 1e-3), 0.2)``, ``x_prog = g_prog / g_max`` and ``t_read = 250`` ns.
      As in aihwkit the time in the 1/f term counts from the start of the read-out
      window ``t0`` (``t + t0``), so reading at ``t = 0`` already carries read noise
      (``sqrt(ln(4e7)) = 4.18`` times ``q_s``), and the noise is relative to the drifted
      conductance while ``q_s`` follows the programmed one. Conductances at 0 stay at 0.
    """

    t0: float = param(20.0, _POS)
    t_read: float = param(250e-9, _POS)
    prog_coeff: tuple = param((0.26348, 1.9650, -1.1731), None)
    g_ref: float = param(25.0, _POS)
    prog_noise_scale: float = param(1.0, _NONNEG)
    read_noise_scale: float = param(1.0, _NONNEG)
    drift_scale: float = param(1.0, _NONNEG)

    def __post_init__(self):
        super().__post_init__()
        coeff = self.prog_coeff
        if not (isinstance(coeff, tuple) and coeff and all(
                isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in coeff)):
            raise param_error(type(self).__name__, "prog_coeff", "a non-empty tuple of finite floats", coeff)

    def programming_noise_std(self, g_target) -> np.ndarray:
        """``sigma_prog`` (uS) of each target conductance."""
        x = np.asarray(g_target, dtype=np.float64) / self.g_max
        poly = np.polynomial.polynomial.polyval(x, self.prog_coeff)
        return self.prog_noise_scale * np.maximum(poly, 0.0) * self.g_max / self.g_ref

    def drift_exponent_params(self, g_target) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, sigma)`` of the normal whose absolute value is the drift exponent."""
        lx = np.log(np.maximum(np.abs(np.asarray(g_target, dtype=np.float64)) / self.g_max, 1e-7))
        return np.clip(-0.0155 * lx + 0.0244, 0.049, 0.1), np.clip(-0.0125 * lx - 0.0059, 0.008, 0.045)

    def read_noise_rel_std(self, g_prog, t) -> np.ndarray:
        """Relative std of the accumulated read noise, ``q_s sqrt(ln(...))``, before the scale."""
        q_s = np.minimum(0.0088 / np.maximum((np.abs(np.asarray(g_prog, dtype=np.float64)) / self.g_max) ** 0.65,
                                             1e-3), 0.2)
        t_tot = float(t) + self.t0
        return q_s * math.sqrt(math.log((t_tot + self.t_read) / (2.0 * self.t_read)))

    def apply_programming_noise(self, g_target, rng) -> np.ndarray:
        g = _conductance(g_target, "g_target", "PCMLikeNoise.apply_programming_noise")
        rng = as_generator(rng, "PCMLikeNoise.apply_programming_noise")
        return np.maximum(g + self.programming_noise_std(g) * rng.standard_normal(g.shape), 0.0)

    def generate_drift_coefficients(self, g_target, rng) -> np.ndarray:
        g = _conductance(g_target, "g_target", "PCMLikeNoise.generate_drift_coefficients")
        rng = as_generator(rng, "PCMLikeNoise.generate_drift_coefficients")
        mu, sigma = self.drift_exponent_params(g)
        return self.drift_scale * np.abs(mu + sigma * rng.standard_normal(g.shape))

    def apply_drift_noise(self, g_prog, nu, t, rng) -> np.ndarray:
        g_drift, t, rng = _drifted(g_prog, nu, t, self.t0, rng, "PCMLikeNoise.apply_drift_noise")
        g = np.asarray(g_prog, dtype=np.float64)
        sig = self.read_noise_scale * self.read_noise_rel_std(g, t)
        return np.maximum(g_drift + np.abs(g_drift) * sig * rng.standard_normal(g.shape), 0.0)


@dataclass(frozen=True)
class GaussianNoise(NoiseModel):
    """A device with plain Gaussian statistics, additive and multiplicative (all in uS).

    * programming: ``g_prog = max(g_T + sqrt(prog_std^2 + (prog_std_rel g_T)^2) xi, 0)``;
    * drift exponent: ``nu = |nu_mean + nu_std xi|``, independent of the conductance;
    * at ``t``: ``g_drift = g_prog ((t + t0)/t0)^-nu``, then ``max(g_drift + sqrt(read_std^2
      + (read_std_rel g_drift)^2) xi, 0)``, read noise not growing with time.

    With all widths 0 and ``nu_mean = 0`` it is the identity, a reference for tests.
    """

    prog_std: float = param(0.0, _NONNEG)
    prog_std_rel: float = param(0.0, _NONNEG)
    nu_mean: float = param(0.0, _NONNEG)
    nu_std: float = param(0.0, _NONNEG)
    t0: float = param(20.0, _POS)
    read_std: float = param(0.0, _NONNEG)
    read_std_rel: float = param(0.0, _NONNEG)

    def apply_programming_noise(self, g_target, rng) -> np.ndarray:
        g = _conductance(g_target, "g_target", "GaussianNoise.apply_programming_noise")
        rng = as_generator(rng, "GaussianNoise.apply_programming_noise")
        std = np.hypot(self.prog_std, self.prog_std_rel * g)
        return np.maximum(g + std * rng.standard_normal(g.shape), 0.0)

    def generate_drift_coefficients(self, g_target, rng) -> np.ndarray:
        g = _conductance(g_target, "g_target", "GaussianNoise.generate_drift_coefficients")
        rng = as_generator(rng, "GaussianNoise.generate_drift_coefficients")
        return np.abs(self.nu_mean + self.nu_std * rng.standard_normal(g.shape))

    def apply_drift_noise(self, g_prog, nu, t, rng) -> np.ndarray:
        g_drift, _, rng = _drifted(g_prog, nu, t, self.t0, rng, "GaussianNoise.apply_drift_noise")
        std = np.hypot(self.read_std, self.read_std_rel * g_drift)
        return np.maximum(g_drift + std * rng.standard_normal(g_drift.shape), 0.0)


# Wan et al., Nature 608, 504 (2022), "A compute-in-memory chip based on resistive random-access
# memory": spread of the conductance about its target (uS, g_max 40 uS) after program-and-verify,
# read 1 s, 1 day and 2 days later, as 4th-order polynomials in x = g_T / g_max, c0 first. These
# are the fits aihwkit 1.2 ships in ``ReRamWan2022NoiseModel`` (read off the paper's figures).
_WAN2022_TIMES = (1.0, 86400.0, 172800.0)
_WAN2022_COEFF = ((0.348, 16.030, -43.853, 45.393, -16.815),
                  (0.701, 22.086, -50.773, 47.095, -16.458),
                  (0.782, 20.274, -43.507, 37.062, -11.934))


@dataclass(frozen=True)
class ReRAMLikeNoise(NoiseModel):
    r"""ReRAM statistics from Wan et al., Nature 608, 504 (2022) (the fits of aihwkit 1.2's
    ``ReRamWan2022NoiseModel``).

    ReRAM shows no power-law drift; its conductances relax about their targets, the spread
    growing with time. The published spread ``sigma_k(x_T)`` (uS) at the times ``times[k]``
    after programming is a polynomial in ``x_T = g_T / g_max`` with the coefficients
    ``coeff[k]`` fitted at ``g_ref = 40`` uS; ``sigma_k`` scales with ``g_max / g_ref`` and
    ``noise_scale`` and is floored at 0.

    * programming: ``g_prog = max(g_T + sigma_0(x_T) xi, 0)`` (the spread at the first time,
      1 s, right after program-and-verify);
    * "drift coefficient": each device's target ``g_T`` (the relaxation depends on it);
    * at ``t``: ``sigma(x_T, t)`` is interpolated linearly in ``ln t`` between the fitted
      times, held at ``sigma_0`` before the first and at the last fit after the last (no
      data beyond 2 days); relaxation adds an independent deviation of std
      ``sqrt(max(sigma(x_T, t)^2 - sigma_0(x_T)^2, 0))`` to the programmed conductance, so
      that the total deviation from the target has the published spread at every fitted
      time and reading right after programming returns the programmed state. Negative
      results clip to 0. No read noise (the paper gives no separate 1/f data; aihwkit
      suggests a forward ``w_noise`` of about 0.01 for it).

    aihwkit instead draws the state at ``t`` afresh about the target with ``sigma(x_T, t)``,
    only at the fitted times; its reference scaling is defined but not applied, so with its
    default 25 uS converter the fitted uS values act as is at ``x = g / 25`` uS.
    """

    g_max: float = param(40.0, _POS)
    times: tuple = param(_WAN2022_TIMES, None)
    coeff: tuple = param(_WAN2022_COEFF, None)
    g_ref: float = param(40.0, _POS)
    noise_scale: float = param(1.0, _NONNEG)

    def __post_init__(self):
        super().__post_init__()
        owner = type(self).__name__
        times = self.times
        if not (isinstance(times, tuple) and times and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
                for v in times) and all(a < b for a, b in zip(times, times[1:]))):
            raise param_error(owner, "times", "a non-empty increasing tuple of finite floats > 0 (seconds)", times)
        coeff = self.coeff
        if not (isinstance(coeff, tuple) and len(coeff) == len(times) and all(
                isinstance(c, tuple) and c and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   and math.isfinite(v) for v in c) for c in coeff)):
            raise param_error(owner, "coeff", f"a tuple of {len(times)} non-empty tuples of finite floats "
                              "(one polynomial per time)", coeff)

    def spread(self, g_target, t) -> np.ndarray:
        """``sigma(x_T, t)`` (uS): the std of the conductance about its target at ``t``."""
        x = np.asarray(g_target, dtype=np.float64) / self.g_max
        sig = [np.maximum(np.polynomial.polynomial.polyval(x, c), 0.0) for c in self.coeff]
        t = float(t)
        if t <= self.times[0] or len(self.times) == 1:
            s = sig[0]
        elif t >= self.times[-1]:
            s = sig[-1]
        else:
            k = int(np.searchsorted(self.times, t)) - 1
            a = (math.log(t) - math.log(self.times[k])) / (math.log(self.times[k + 1]) - math.log(self.times[k]))
            s = (1.0 - a) * sig[k] + a * sig[k + 1]
        return self.noise_scale * s * self.g_max / self.g_ref

    def apply_programming_noise(self, g_target, rng) -> np.ndarray:
        g = _conductance(g_target, "g_target", "ReRAMLikeNoise.apply_programming_noise")
        rng = as_generator(rng, "ReRAMLikeNoise.apply_programming_noise")
        return np.maximum(g + self.spread(g, 0.0) * rng.standard_normal(g.shape), 0.0)

    def generate_drift_coefficients(self, g_target, rng) -> np.ndarray:
        return _conductance(g_target, "g_target", "ReRAMLikeNoise.generate_drift_coefficients").copy()

    def apply_drift_noise(self, g_prog, nu, t, rng) -> np.ndarray:
        owner = "ReRAMLikeNoise.apply_drift_noise"
        g = _conductance(g_prog, "g_prog", owner)
        g_target = _conductance(nu, "nu", owner)
        if g_target.shape != g.shape:
            raise ValueError(f"The 'nu' parameter of {owner} must have the shape of 'g_prog' {g.shape} "
                             f"(the targets). Got shape {g_target.shape} instead.")
        t = _check_time(t, owner)
        rng = as_generator(rng, owner)
        extra = np.sqrt(np.maximum(self.spread(g_target, t) ** 2 - self.spread(g_target, 0.0) ** 2, 0.0))
        return np.maximum(g + extra * rng.standard_normal(g.shape), 0.0)
