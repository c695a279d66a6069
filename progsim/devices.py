"""Device models: one frozen dataclass and one ``@njit`` step function each.

A device is data. It draws its per-cell parameters once, at construction of a tile, from
the tile's seed (device-to-device variation, "dtod"); the generic pulse kernel draws the
cycle-to-cycle noise of each pulse ("std") and calls the device's step function, which
numba specialises per device.

Per cell ``(i, j)`` (each ``xi`` an independent standard normal, drawn once), as aihwkit 1.2.0
draws them (``PulsedRPUDevice::populate`` with its default ``enforce_consistency``):

* ``gain_ij = 1 + dw_min_dtod * xi`` and ``r_ij = up_down_dtod * xi`` (additive, in ``dw_min`` units);
* ``dw_up = |dw_min (gain_ij + min(up_down, 0) + r_ij)|``, ``dw_down = |dw_min (gain_ij - max(up_down, 0) - r_ij)|``:
  ``up_down`` weakens one direction only (``up_down = 0.2``: up ``dw_min``, down ``0.8 dw_min``),
  while ``r_ij`` moves the two directions apart symmetrically. A step drawn below zero is
  reflected, not clipped, so no cell is dead and none is reversed (at the default
  ``dw_min_dtod`` 0.3 that is ``P(xi < -1/0.3)``, about 0.043% of the directions);
* ``w_max_ij = w_max (1 + w_max_dtod * xi)``, ``w_min_ij = w_min (1 + w_min_dtod * xi)``; a pair
  drawn inverted (``w_min_ij > w_max_ij``) is swapped, then each bound is reflected to its side
  of zero (``w_max_ij = |w_max_ij|``, ``w_min_ij = -|w_min_ij|``), so ``w_min_ij <= 0 <= w_max_ij``
  and no draw collapses a cell's range. A unipolar device (``w_min = 0``) keeps
  ``w_min_ij = 0`` except where ``w_max_ij`` draws below zero: that pair is swapped, and the cell
  holds ``[w_max_ij, 0]`` (aihwkit's result, width kept).

A cell with ``w_max_ij == w_min_ij`` (only from loaded or float32-underflowed parameters) is a
dead cell: every step function returns 0 for it and the clip holds it at its bound.

Each pulse moves a cell by ``step(w) * (1 + dw_min_std * xi)`` in its direction and clips the
result to the cell's bounds. Write noise: the weight the periphery sees is the hidden weight
plus ``write_noise_std * dw_min * xi``, redrawn whenever an update touches the cell.

The step functions share one signature, ``step(w, up, dw, w_max, w_min, p) -> magnitude``:
``dw`` is the cell's ``dw_up`` or ``dw_down`` (chosen by ``up``), ``w_max``/``w_min`` its
bounds and ``p`` a float64 array of the model's shape parameters (``Device.shape_params``).
The magnitude is the mean step, ``>= 0``; the kernel adds noise, sign and clipping.

The device table ``MODELS`` lists the step functions; a device class names its step function
(``step``) and its ``model`` code is the function's index in the table. The kernels receive
the code and reach the step through :func:`device_step` (inlined, one branch per model);
``progsim._kernels`` compiles its update kernels per code, on first use, with the code a
compile-time constant, so a tile compiles only its own model's kernels. Passing the step
function itself as a kernel argument would be the more direct shape, but numba (0.68) does not
reuse an on-disk cached kernel whose signature holds a dispatcher type. A new model is a step
function, its entry in ``MODELS`` and its branch in :func:`device_step` (and in
:func:`cell_consts` if it has per-cell constants to hoist out of the pulse loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from progsim._config import jit
from progsim._validate import Boolean, Interval, Options, param, param_error, validate_fields

_POS = Interval(0.0, None, closed="neither")
_NONNEG = Interval(0.0, None, closed="left")
_FRAC = Interval(0.0, 1.0, closed="both")
_REAL = Interval()
_UD = Interval(-1.0, 1.0, closed="neither")


class CellParams(NamedTuple):
    """Per-cell device parameters, each an array of the tile's shape and dtype, except
    ``gamma_up`` and ``gamma_down`` (a LinearStep cell's slope factors): float64 whatever the
    tile's dtype, so that a float32 tile's slopes round as the nominal slope would, and empty,
    shape (0, 0), for the models without them."""

    dw_up: np.ndarray
    dw_down: np.ndarray
    w_max: np.ndarray
    w_min: np.ndarray
    gamma_up: np.ndarray
    gamma_down: np.ndarray


# --------------------------------------------------------------------------- step functions
# Plain ``@jit`` functions, not numba-inlined: each compiles once and LLVM inlines the calls,
# where numba's own inlining would re-type every model's body at every call site of
# ``device_step`` before the unused models' branches are pruned (seconds of first-call compile).


@jit
def constant_step(w, up, dw, w_max, w_min, p):
    return dw


@jit
def linear_slopes(gamma_up, gamma_down, w_ref_up, w_ref_down):
    """A LinearStep cell's relative slopes ``(gamma_up / w_ref_up, gamma_down / w_ref_down)`` (0
    at a zero reference). The kernels compute them once per cell, before its pulses, so that
    the division leaves the dependency chain of successive pulses."""
    k_up = gamma_up / w_ref_up if w_ref_up != 0.0 else 0.0
    k_down = gamma_down / w_ref_down if w_ref_down != 0.0 else 0.0
    return k_up, k_down


@jit
def linear_step_sloped(w, up, dw, k_up, k_down):
    """LinearStep's magnitude from precomputed slopes (see :func:`linear_slopes`)."""
    f = 1.0 - (k_up if up else k_down) * w
    return dw * f if f > 0.0 else 0.0


@jit
def linear_step(w, up, dw, w_max, w_min, p):
    # p = LinearStep.shape_params; the nominal cell: gammas p[0], p[1] against its bounds
    k_up, k_down = linear_slopes(p[0], p[1], w_max, w_min)
    return linear_step_sloped(w, up, dw, k_up, k_down)


@jit
def exp_step(w, up, dw, w_max, w_min, p):
    # p = (A_up, A_down, gamma_up, gamma_down, a, b); a zero-width cell is dead
    span = w_max - w_min
    if span <= 0.0:
        return 0.0
    z = 2.0 * p[4] * w / span + p[5]
    if up:
        f = 1.0 - p[0] * np.exp(p[2] * z)
    else:
        f = 1.0 - p[1] * np.exp(-p[3] * z)
    return dw * f if f > 0.0 else 0.0


@jit
def pow_step(w, up, dw, w_max, w_min, p):
    # p = (gamma,); a zero-width cell is dead
    span = w_max - w_min
    if span <= 0.0:
        return 0.0
    r = (w_max - w) / span if up else (w - w_min) / span
    if r <= 0.0:
        return 0.0
    return dw * r ** p[0]


@jit
def piecewise_step(w, up, dw, w_max, w_min, p):
    # p = (n_up, nodes_up..., n_down, nodes_down...); nodes evenly spaced over [w_min, w_max].
    # A zero-width cell is dead.
    span = w_max - w_min
    if span <= 0.0:
        return 0.0
    n_up = int(p[0])
    off = 1 if up else 2 + n_up
    n = n_up if up else int(p[1 + n_up])
    x = (w - w_min) / span * (n - 1)
    if x <= 0.0:
        return dw * p[off]
    if x >= n - 1:
        return dw * p[off + n - 1]
    k = int(x)
    t = x - k
    return dw * ((1.0 - t) * p[off + k] + t * p[off + k + 1])


# The device table: a model's code is the index of its step function.
MODELS = (constant_step, linear_step, exp_step, pow_step, piecewise_step)
MODEL_CONSTANT, MODEL_LINEAR, MODEL_EXP, MODEL_POW, MODEL_PIECEWISE = range(len(MODELS))


@jit(inline="always")
def cell_consts(model, cells, i, j, w_max, w_min, p):
    """Per-cell constants of ``model``'s step that the kernels hoist out of a cell's pulse loop
    (LinearStep: its two slopes, from the cell's gammas ``cells.gamma_up[i, j]``,
    ``cells.gamma_down[i, j]`` against the nominal bounds ``p[3]``, ``p[4]`` when ``p[2]`` is set
    (mean-bound reference) or else against the cell's own ``w_max``, ``w_min``; the other
    models: none, zeros)."""
    if model == MODEL_LINEAR:
        g_up, g_down = cells.gamma_up[i, j], cells.gamma_down[i, j]
        if p[2] != 0.0:
            return linear_slopes(g_up, g_down, p[3], p[4])
        return linear_slopes(g_up, g_down, w_max, w_min)
    return 0.0, 0.0


@jit(inline="always")
def cell_consts_toward(model, cells, i, j, w_max, w_min, p, upf):
    """:func:`cell_consts` of one direction, ``upf`` 1.0 (up) or 0.0 (down), in both slots, for a
    kernel whose cell pulses one way: the slope's gamma and reference bound are picked by
    arithmetic (``x * 1.0 + y * 0.0`` equals ``x`` for finite ``x`` and ``y``) rather than by a
    branch on a direction that is random from cell to cell, then divided by
    :func:`linear_slopes`, so the step gets the value :func:`cell_consts` gives it."""
    if model == MODEL_LINEAR:
        dn = 1.0 - upf
        g = cells.gamma_up[i, j] * upf + cells.gamma_down[i, j] * dn
        ref = (p[3] * upf + p[4] * dn) if p[2] != 0.0 else (w_max * upf + w_min * dn)
        kd = linear_slopes(g, g, ref, ref)[0]
        return kd, kd
    return 0.0, 0.0


@jit(inline="always")
def device_step(model, w, up, dw, w_max, w_min, p, k):
    """The step function of device ``model`` (one of the ``MODEL_*`` codes); ``k`` is the
    cell's :func:`cell_consts`."""
    if model == MODEL_LINEAR:
        return linear_step_sloped(w, up, dw, k[0], k[1])
    if model == MODEL_EXP:
        return exp_step(w, up, dw, w_max, w_min, p)
    if model == MODEL_POW:
        return pow_step(w, up, dw, w_max, w_min, p)
    if model == MODEL_PIECEWISE:
        return piecewise_step(w, up, dw, w_max, w_min, p)
    return constant_step(w, up, dw, w_max, w_min, p)


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class PulsedDevice:
    """Common fields of every pulsed device (defaults: aihwkit's ConstantStep, see DESIGN)."""

    dw_min: float = param(0.001, _POS)
    dw_min_dtod: float = param(0.3, _NONNEG)
    dw_min_std: float = param(0.3, _NONNEG)
    up_down: float = param(0.0, _UD)
    up_down_dtod: float = param(0.01, _NONNEG)
    w_max: float = param(0.6, _NONNEG)
    w_min: float = param(-0.6, Interval(None, 0.0, closed="right"))
    w_max_dtod: float = param(0.3, _NONNEG)
    w_min_dtod: float = param(0.3, _NONNEG)
    write_noise_std: float = param(0.0, _NONNEG)

    step: ClassVar = staticmethod(constant_step)
    model: ClassVar[int] = MODELS.index(constant_step)  # set from ``step`` for every subclass

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.model = MODELS.index(cls.step)

    def __post_init__(self):
        validate_fields(self)
        if self.w_min > self.w_max:
            raise param_error(type(self).__name__, "w_min", f"<= w_max ({self.w_max})", self.w_min)
        if self.w_max == self.w_min:
            raise param_error(type(self).__name__, "w_max", "> w_min (a cell needs a range)", self.w_max)

    @property
    def shape_params(self) -> np.ndarray:
        """The model's shape parameters, as the step function receives them."""
        return np.zeros(1, dtype=np.float64)

    def draw_cells(self, shape, rng: np.random.Generator, dtype=np.float64) -> CellParams:
        """Per-cell parameters drawn once (device-to-device variation), as aihwkit draws them:
        steps ``|dw_min (1 + dw_min_dtod xi + min(up_down, 0) + up_down_dtod xi')|`` up and
        ``|dw_min (1 + dw_min_dtod xi - max(up_down, 0) - up_down_dtod xi')|`` down; bounds
        drawn relative to ``w_max``/``w_min``, an inverted pair swapped, then each reflected to
        its side of zero (see the module docstring)."""
        gain = 1.0 + self.dw_min_dtod * rng.standard_normal(shape)
        r = self.up_down_dtod * rng.standard_normal(shape)
        dw_up = np.abs(self.dw_min * (gain + min(self.up_down, 0.0) + r))
        dw_down = np.abs(self.dw_min * (gain - max(self.up_down, 0.0) - r))
        hi = self.w_max * (1.0 + self.w_max_dtod * rng.standard_normal(shape))
        lo = self.w_min * (1.0 + self.w_min_dtod * rng.standard_normal(shape))
        inverted = lo > hi
        w_max = np.abs(np.where(inverted, lo, hi))
        w_min = -np.abs(np.where(inverted, hi, lo))
        none = np.zeros((0, 0))
        return CellParams(dw_up.astype(dtype), dw_down.astype(dtype), w_max.astype(dtype), w_min.astype(dtype),
                          none, none.copy())

    def nominal_step(self, w, up: bool) -> float:
        """Mean step magnitude of a nominal cell (no dtod, no noise) at state ``w``: ``up_down``
        weakens one direction, as in :meth:`draw_cells`."""
        dw = self.dw_min * (1.0 + min(self.up_down, 0.0) if up else 1.0 - max(self.up_down, 0.0))
        return float(type(self).step(float(w), bool(up), dw, float(self.w_max), float(self.w_min), self.shape_params))


@dataclass(frozen=True)
class Ideal(PulsedDevice):
    """Exact steps of ``dw_min``: no variation, no noise, no bounds, no write noise."""

    dw_min: float = param(0.001, _POS)
    dw_min_dtod: float = param(0.0, Interval(0.0, 0.0))
    dw_min_std: float = param(0.0, Interval(0.0, 0.0))
    up_down: float = param(0.0, Interval(0.0, 0.0))
    up_down_dtod: float = param(0.0, Interval(0.0, 0.0))
    w_max: float = param(np.inf, Interval(np.inf, np.inf, allow_inf=True))
    w_min: float = param(-np.inf, Interval(-np.inf, -np.inf, allow_inf=True))
    w_max_dtod: float = param(0.0, Interval(0.0, 0.0))
    w_min_dtod: float = param(0.0, Interval(0.0, 0.0))
    write_noise_std: float = param(0.0, Interval(0.0, 0.0))

    def draw_cells(self, shape, rng, dtype=np.float64) -> CellParams:
        full = lambda v: np.full(shape, v, dtype=dtype)  # noqa: E731
        none = np.zeros((0, 0))
        return CellParams(full(self.dw_min), full(self.dw_min), full(np.inf), full(-np.inf), none, none.copy())


@dataclass(frozen=True)
class ConstantStep(PulsedDevice):
    """Step ``dw_up`` / ``dw_down`` whatever the state (Gokmen & Vlasov 2016)."""


@dataclass(frozen=True)
class LinearStep(PulsedDevice):
    """Step falling linearly with the state, as aihwkit 1.2.0's ``LinearStepDevice``: up
    ``dw_up (1 - gamma_up_ij w / w_max)``, down ``dw_down (1 - gamma_down_ij w / w_min)``,
    clamped at 0.

    Each cell draws its own slope factors once, ``gamma_up_ij = |gamma_up + gamma_up_dtod xi|``
    and ``gamma_down_ij = |gamma_down + gamma_down_dtod xi|`` (defaults 0.05, aihwkit's; the
    absolute value is aihwkit's ``allow_increasing=False``). With ``mean_bound_reference``
    (default, aihwkit's) the slope is measured against the nominal bounds ``w_max``/``w_min``,
    so a cell's slope does not depend on its drawn bounds; without it, against the cell's own
    bounds ``w_max_ij``/``w_min_ij``. The gammas are drawn after the common per-cell
    parameters, so the other parameters of a tile do not change with them.
    """

    gamma_up: float = param(0.0, _NONNEG)
    gamma_down: float = param(0.0, _NONNEG)
    gamma_up_dtod: float = param(0.05, _NONNEG)
    gamma_down_dtod: float = param(0.05, _NONNEG)
    mean_bound_reference: bool = param(True, Boolean())

    step: ClassVar = staticmethod(linear_step)

    @property
    def shape_params(self):
        """``(gamma_up, gamma_down, mean_bound_reference, w_max, w_min)``."""
        return np.array([self.gamma_up, self.gamma_down, float(self.mean_bound_reference), self.w_max, self.w_min],
                        dtype=np.float64)

    def draw_cells(self, shape, rng, dtype=np.float64) -> CellParams:
        """The common per-cell parameters (:meth:`PulsedDevice.draw_cells`), then the cells'
        slope factors ``|gamma + gamma_dtod xi|`` (up, then down)."""
        cells = super().draw_cells(shape, rng, dtype)
        g_up = np.abs(self.gamma_up + self.gamma_up_dtod * rng.standard_normal(shape))
        g_down = np.abs(self.gamma_down + self.gamma_down_dtod * rng.standard_normal(shape))
        return cells._replace(gamma_up=g_up, gamma_down=g_down)


@dataclass(frozen=True)
class SoftBounds(LinearStep):
    """LinearStep with both gammas 1, no spread and each cell's own bounds as the reference
    (aihwkit's ``SoftBoundsDevice``): the step vanishes at the cell's bounds."""

    gamma_up: float = param(1.0, Interval(1.0, 1.0))
    gamma_down: float = param(1.0, Interval(1.0, 1.0))
    gamma_up_dtod: float = param(0.0, Interval(0.0, 0.0))
    gamma_down_dtod: float = param(0.0, Interval(0.0, 0.0))
    mean_bound_reference: bool = param(False, Options(False))


@dataclass(frozen=True)
class ExpStep(PulsedDevice):
    """Exponential saturation: ``z = 2 a w/(w_max - w_min) + b``; up
    ``dw_up max(1 - A_up exp(gamma_up z), 0)``, down ``dw_down max(1 - A_down exp(-gamma_down z), 0)``.
    Defaults are aihwkit's ExpStepDevice fit."""

    A_up: float = param(0.00081, _REAL)
    A_down: float = param(0.36833, _REAL)
    gamma_up: float = param(12.44625, _REAL)
    gamma_down: float = param(12.78785, _REAL)
    a: float = param(0.244, _REAL)
    b: float = param(0.2425, _REAL)

    step: ClassVar = staticmethod(exp_step)

    @property
    def shape_params(self):
        return np.array([self.A_up, self.A_down, self.gamma_up, self.gamma_down, self.a, self.b], dtype=np.float64)


@dataclass(frozen=True)
class PowStep(PulsedDevice):
    """Power-law saturation: up ``dw_up ((w_max - w)/(w_max - w_min))^gamma``, down
    ``dw_down ((w - w_min)/(w_max - w_min))^gamma``."""

    gamma: float = param(1.0, _NONNEG)

    step: ClassVar = staticmethod(pow_step)

    @property
    def shape_params(self):
        return np.array([self.gamma], dtype=np.float64)


@dataclass(frozen=True)
class Piecewise(PulsedDevice):
    """Step-size tables: ``dw_up * interp(w, nodes_up)``, ``dw_down * interp(w, nodes_down)``.

    The nodes are relative step sizes at evenly spaced states from the cell's ``w_min`` to its
    ``w_max`` (at least two each), linearly interpolated. Build them from measured data with
    :meth:`from_conductance_trace`.
    """

    nodes_up: tuple = param((1.0, 1.0), None)
    nodes_down: tuple = param((1.0, 1.0), None)

    step: ClassVar = staticmethod(piecewise_step)

    def __post_init__(self):
        super().__post_init__()
        for name in ("nodes_up", "nodes_down"):
            nodes = np.asarray(getattr(self, name), dtype=float)
            if nodes.ndim != 1 or nodes.size < 2 or not np.all(np.isfinite(nodes)) or np.any(nodes < 0):
                raise param_error("Piecewise", name, "a sequence of at least 2 finite values >= 0", getattr(self, name))
            object.__setattr__(self, name, tuple(float(v) for v in nodes))
        if not (np.isfinite(self.w_max) and np.isfinite(self.w_min)):
            raise param_error("Piecewise", "w_max", "finite (the nodes span [w_min, w_max])", self.w_max)

    @property
    def shape_params(self):
        up, down = np.asarray(self.nodes_up), np.asarray(self.nodes_down)
        return np.concatenate([[up.size], up, [down.size], down]).astype(np.float64)

    @classmethod
    def from_conductance_trace(cls, g_up, g_down, *, n_nodes=16, w_max=0.6, w_min=-0.6, **fields) -> "Piecewise":
        """Fit step tables to measured conductances after successive pulses.

        ``g_up`` is the conductance after each of a train of potentiation pulses, ``g_down``
        after each of a train of depression pulses (any units). Conductances map linearly
        onto ``[w_min, w_max]`` (the extremes over both traces give the ends); each pulse's
        step ``|w_{k+1} - w_k|`` is attributed to the state ``w_k`` it started from and
        linearly interpolated (then averaged per bin) onto ``n_nodes`` evenly spaced states.
        ``dw_min`` becomes the mean step over both traces and the nodes the steps relative
        to it, so that ``nominal_step`` reproduces the measured mean step curve.
        """
        g_up = np.asarray(g_up, dtype=float)
        g_down = np.asarray(g_down, dtype=float)
        for name, g in (("g_up", g_up), ("g_down", g_down)):
            if g.ndim != 1 or g.size < 3 or not np.all(np.isfinite(g)):
                raise param_error("Piecewise.from_conductance_trace", name, "a 1-d finite sequence of >= 3 values", g)
        if not (isinstance(n_nodes, (int, np.integer)) and n_nodes >= 2):
            raise param_error("Piecewise.from_conductance_trace", "n_nodes", "an int >= 2", n_nodes)
        lo = min(g_up.min(), g_down.min())
        hi = max(g_up.max(), g_down.max())
        if hi <= lo:
            raise param_error("Piecewise.from_conductance_trace", "g_up", "a trace that changes the conductance", g_up)
        to_w = lambda g: w_min + (g - lo) / (hi - lo) * (w_max - w_min)  # noqa: E731
        grid = np.linspace(w_min, w_max, n_nodes)

        def table(g):
            w = to_w(g)
            start, step = w[:-1], np.abs(np.diff(w))
            order = np.argsort(start)
            return np.interp(grid, start[order], step[order]), step

        t_up, s_up = table(g_up)
        t_down, s_down = table(g_down)
        dw_min = float(np.mean(np.concatenate([s_up, s_down])))
        if dw_min <= 0:
            raise param_error("Piecewise.from_conductance_trace", "g_up", "traces with non-zero steps", g_up)
        return cls(dw_min=dw_min, w_max=w_max, w_min=w_min,
                   nodes_up=tuple(t_up / dw_min), nodes_down=tuple(t_down / dw_min), **fields)


# --------------------------------------------------------------------------- presets


def reram_es() -> ExpStep:
    """ReRAM-like (HfO2 RRAM): ExpStep fit to Gong et al., Nat. Commun. 9, 2102 (2018), with
    the parameters of aihwkit's ``ReRamESPresetDevice``. Very noisy steps (``dw_min_std`` 5)
    and large write noise (75 ``dw_min``), strong up/down asymmetry (``up_down`` 0.26: down steps
    26% weaker than up steps)."""
    return ExpStep(dw_min=0.00135, up_down=0.259359, w_max=1.0, w_min=-1.0, a=-0.5, b=-0.5,
                   gamma_up=5.0, gamma_down=5.0, A_up=-1.18445, A_down=-0.081404,
                   dw_min_dtod=0.2, up_down_dtod=0.05, w_max_dtod=0.3, w_min_dtod=0.3,
                   dw_min_std=5.0, write_noise_std=75.0)


def reram_sb() -> SoftBounds:
    """ReRAM-like, soft bounds: loose SoftBounds fit to Gong et al. (2018), aihwkit's
    ``ReRamSBPresetDevice`` (symmetry point assumed calibrated to 0)."""
    return SoftBounds(dw_min=0.002, up_down=0.0, w_max=1.25, w_min=-0.75, dw_min_dtod=0.3,
                      up_down_dtod=0.01, w_max_dtod=0.3 / 1.25, w_min_dtod=0.3 / 0.75,
                      dw_min_std=3.75, write_noise_std=56.0)


def ecram() -> LinearStep:
    """ECRAM-like (Li-based ECRAM): LinearStep fit to Tang et al., IEDM 2018, aihwkit's
    ``EcRamPresetDevice`` (range shifted so the symmetry point is at 0). Near-linear, ~1000 states."""
    return LinearStep(dw_min=0.002, up_down=0.0, w_max=1.1724, w_min=-0.8276, gamma_up=0.1153,
                      gamma_down=0.5085, dw_min_dtod=0.1, up_down_dtod=0.01, w_max_dtod=0.05,
                      w_min_dtod=0.05, dw_min_std=0.3, write_noise_std=0.0)


def capacitor() -> LinearStep:
    """Capacitor-like (CMOS capacitor cell): LinearStep fit to Li et al., VLSI 2018, aihwkit's
    ``CapacitorPresetDevice`` (leakage not modelled, slope spread 0.01 as there). Almost linear, small variation,
    400 states."""
    return LinearStep(dw_min=0.005, up_down=0.0, w_max=1.0, w_min=-1.0, gamma_up=0.05,
                      gamma_down=0.05, dw_min_dtod=0.1, up_down_dtod=0.06, w_max_dtod=0.07,
                      w_min_dtod=0.07, dw_min_std=0.3, write_noise_std=0.0, gamma_up_dtod=0.01,
                      gamma_down_dtod=0.01)


def pcm_like() -> PowStep:
    """PCM-like (GST mushroom cells as a differential pair), bidirectional effective model.

    Nandakumar et al., Front. Neurosci. 14, 406 (2020): the mean SET increment falls with
    conductance and the device saturates after a few tens of pulses; the cycle-to-cycle spread
    of a step is about 0.6 of its mean (aihwkit's ``PCMPresetDevice`` fit, ``dw_min_std`` 0.6,
    ``dw_min_dtod`` 0.2, ``w_max_dtod`` 0.1). A depression is a SET of the minus device, so
    the pair moves both ways with the same saturating law. We model the pair's difference in
    ``[-1, 1]`` with PowStep ``gamma = 1.5`` and ``dw_min = 0.04`` (about 100 pulses across the
    range). Reset/refresh of the pair is not modelled.
    """
    return PowStep(dw_min=0.04, up_down=0.0, w_max=1.0, w_min=-1.0, gamma=1.5, dw_min_dtod=0.2,
                   up_down_dtod=0.05, w_max_dtod=0.1, w_min_dtod=0.1, dw_min_std=0.6, write_noise_std=0.0)


def gokmen_vlasov() -> ConstantStep:
    """ConstantStep of Gokmen & Vlasov, Front. Neurosci. 10, 333 (2016), range [-1, 1], 1250 nominal steps
    (``2 / dw_min``)."""
    return ConstantStep(dw_min=0.0016, dw_min_dtod=0.3, dw_min_std=0.3, up_down=0.0, up_down_dtod=0.01,
                        w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3)


PRESETS = {
    "reram-es": reram_es,
    "reram-sb": reram_sb,
    "ecram": ecram,
    "capacitor": capacitor,
    "pcm": pcm_like,
    "gokmen-vlasov": gokmen_vlasov,
}


def preset(name: str) -> PulsedDevice:
    """A preset device by name (see ``PRESETS``)."""
    if name not in PRESETS:
        raise ValueError(f"The 'name' parameter of preset must be one of {sorted(PRESETS)}. Got {name!r} instead.")
    return PRESETS[name]()
