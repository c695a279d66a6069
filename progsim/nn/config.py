"""Tile configuration of the analog layers: what a layer's crossbar is made of.

A :class:`TileConfig` names the device (a single :class:`~progsim.devices.PulsedDevice`, or a
compound: :class:`VectorUnitCell`, :class:`TikiTaka`), the pulse scheme, the half-selection
scheme, the forward and backward periphery, the weight scaling and where the bias lives.
All configs are frozen dataclasses validated at construction, with the project's one error
shape ("The 'gamma' parameter of TikiTaka must be >= 0. Got -1 instead.").

Weight scaling (``weight_scaling_omega``, as aihwkit's mapping): when a layer's weights are
set, the digital output scale ``alpha = max|W| / omega`` is chosen so that the largest weight
sits at ``omega`` in device units; the tile holds ``W / alpha`` and the layer multiplies its
output by ``alpha``. ``omega = 0`` turns scaling off (``alpha = 1``). ``alpha`` stays fixed
while the layer trains.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from progsim import devices as _devices
from progsim import pulses as _pulses
from progsim._validate import Boolean, Interval, Options, param, param_error, validate_fields
from progsim.halfselect import HalfSelect
from progsim.periphery import IO

UPDATE_POLICIES = ("all", "single_fixed", "single_sequential", "single_random")


class InstanceOf:
    """Constraint: an instance of ``cls`` (``hint`` says what to pass instead)."""

    def __init__(self, cls, hint: str, *, allow_none: bool = False):
        self.cls, self.hint, self.allow_none = cls, hint, allow_none

    def is_satisfied_by(self, value) -> bool:
        return (value is None and self.allow_none) or isinstance(value, self.cls)

    def __str__(self) -> str:
        return self.hint + (" or None" if self.allow_none else "")


_DEVICE = InstanceOf(_devices.PulsedDevice, "a device from progsim.devices, e.g. devices.ConstantStep()")


@dataclass(frozen=True)
class VectorUnitCell:
    """Several devices per cross-point whose weights are summed: ``W = sum_k gammas[k] W_k``.

    ``update_policy`` (aihwkit's ``VectorUnitCellUpdatePolicy``), applied per ``update`` call
    (one optimizer step, i.e. one mini-batch of update cycles):

    * ``"all"``: every device receives the whole update;
    * ``"single_fixed"``: only device ``first_update_idx``;
    * ``"single_sequential"``: one device per call, cycling from ``first_update_idx``;
    * ``"single_random"``: one device per call, drawn uniformly from the tile's seed.

    ``gammas`` defaults to ones.
    """

    unit_cell_devices: tuple = param(lambda: (_devices.ConstantStep(), _devices.ConstantStep()), None)
    gammas: tuple | None = param(None, None)
    update_policy: str = param("all", Options(*UPDATE_POLICIES))
    first_update_idx: int = param(0, Interval(0, None, integral=True))

    def __post_init__(self):
        validate_fields(self)
        devs = tuple(self.unit_cell_devices) if isinstance(self.unit_cell_devices, (list, tuple)) else None
        if not devs or not all(isinstance(d, _devices.PulsedDevice) for d in devs):
            raise param_error("VectorUnitCell", "unit_cell_devices",
                              "a non-empty sequence of devices from progsim.devices", self.unit_cell_devices)
        object.__setattr__(self, "unit_cell_devices", devs)
        gammas = (1.0,) * len(devs) if self.gammas is None else self.gammas
        g = np.asarray(gammas, dtype=float) if isinstance(gammas, (list, tuple)) else None
        if g is None or g.shape != (len(devs),) or not np.all(np.isfinite(g)) or np.any(g < 0):
            raise param_error("VectorUnitCell", "gammas",
                              f"None or {len(devs)} finite values >= 0 (one per device)", self.gammas)
        object.__setattr__(self, "gammas", tuple(float(v) for v in g))
        if self.first_update_idx >= len(devs):
            raise param_error("VectorUnitCell", "first_update_idx", f"< the number of devices ({len(devs)})",
                              self.first_update_idx)

    @property
    def dw_min(self) -> float:
        return min(d.dw_min for d in self.unit_cell_devices)


@dataclass(frozen=True)
class TikiTaka:
    """Tiki-Taka (Gokmen & Haensch, Front. Neurosci. 14, 103 (2020)): ``W = gamma A + C``.

    Gradient updates go to the fast array ``A``. Every ``transfer_every`` update cycles (samples),
    one column ``j`` of ``A`` (cycling through the columns in order) is read with a forward pass
    of the one-hot input ``e_j`` through ``transfer_io`` and written into the slow array ``C``
    with one pulsed update cycle ``C += transfer_lr * A[:, j]``. ``A`` is not reset (the
    original algorithm; its decay comes from the device's own dynamics).
    """

    fast: _devices.PulsedDevice = param(_devices.SoftBounds, _DEVICE)
    slow: _devices.PulsedDevice = param(_devices.SoftBounds, _DEVICE)
    gamma: float = param(0.1, Interval(0.0, None))
    transfer_every: int = param(2, Interval(1, None, integral=True))
    transfer_lr: float = param(1.0, Interval(0.0, None, closed="neither"))
    transfer_io: IO = param(IO, InstanceOf(IO, "an IO, e.g. IO() or IO(is_perfect=True)"))

    def __post_init__(self):
        validate_fields(self)

    @property
    def dw_min(self) -> float:
        return self.fast.dw_min


_ANY_DEVICE = InstanceOf((_devices.PulsedDevice, VectorUnitCell, TikiTaka),
                         "a device from progsim.devices or a compound (VectorUnitCell, TikiTaka)")


@dataclass(frozen=True)
class TileConfig:
    """What an analog layer's tile is made of.

    Parameters
    ----------
    device : PulsedDevice, VectorUnitCell or TikiTaka
        The cross-point (default ``devices.ConstantStep()``, aihwkit's default device).
    pulses : PulseScheme
        How updates become pulses (default ``pulses.Stochastic()``).
    half_select : HalfSelect
        Disturb of half-selected cells during updates (default none).
    io, io_backward : IO
        Forward and backward periphery (``io_backward=None``: the same as ``io``).
    weight_scaling_omega : float
        Maps ``max|W|`` onto ``omega`` device units (module docstring); 0 turns it off.
    digital_bias : bool
        True: the bias is a digital parameter added after the tile (trained by plain SGD).
        False: the bias is an extra tile column driven by a constant input of 1.
    dtype : str
        Storage of the tile's weights and per-cell parameters, ``"float64"`` or ``"float32"``.
    """

    device: object = param(_devices.ConstantStep, _ANY_DEVICE)
    pulses: _pulses.PulseScheme = param(_pulses.Stochastic, InstanceOf(
        _pulses.PulseScheme, "a scheme from progsim.pulses, e.g. pulses.Stochastic()"))
    half_select: HalfSelect = param(HalfSelect, InstanceOf(HalfSelect, 'a HalfSelect, e.g. HalfSelect("v2", strength=0.1)'))
    io: IO = param(IO, InstanceOf(IO, "an IO, e.g. IO() or IO(is_perfect=True)"))
    io_backward: IO | None = param(None, InstanceOf(IO, "an IO", allow_none=True))
    weight_scaling_omega: float = param(0.0, Interval(0.0, None))
    digital_bias: bool = param(True, Boolean())
    dtype: str = param("float64", Options("float64", "float32"))

    def __post_init__(self):
        validate_fields(self)
        if self.half_select.mode != "none" and not self.pulses.pulsed:
            raise param_error("TileConfig", "half_select",
                              f"HalfSelect('none') with the unpulsed scheme {type(self.pulses).__name__} "
                              "(use a pulsed scheme such as pulses.Stochastic() to model disturb)", self.half_select)

    @property
    def backward_io(self) -> IO:
        return self.io if self.io_backward is None else self.io_backward

    def replace(self, **changes) -> "TileConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def preset(name: str, **changes) -> TileConfig:
    """A :class:`TileConfig` on a preset device (``progsim.devices.PRESETS``), other fields
    at their defaults unless given: ``preset("reram-sb", half_select=HalfSelect("v2", strength=0.05))``."""
    return TileConfig(device=_devices.preset(name), **changes)


PRESETS = tuple(_devices.PRESETS)
