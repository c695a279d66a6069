"""What a tile's nominal, public configuration says: the one place both the runner (cost
floors) and the algorithms (gains, step limits, read noise) take it from.

A tile may expose ``device``, ``pulses``, ``half_select`` and ``io`` (a Crossbar does; a
third-party adapter may expose some or none). Where it does not say:

* ``dw_min``: the design's default device step, ``devices.ConstantStep().dw_min``;
* the largest change one update cycle gives a cell, ``bl * dw_min``: unlimited (``inf``)
  when the tile has no pulse trains (``pulses.Ideal``, ``IdealWithDevice``, or no
  ``pulses`` config);
* the periphery: the design's default ``IO()`` (noisy reads, aihwkit's defaults).
"""

from __future__ import annotations

import math

from progsim import devices
from progsim.periphery import IO

DEFAULT_DW_MIN = devices.ConstantStep().dw_min
DEFAULT_IO = IO()


def nominal(tile, config: str, name: str, default: float = math.nan) -> float:
    """A nominal scalar of one of the tile's public configs, or ``default``."""
    value = getattr(getattr(tile, config, None), name, None)
    if isinstance(value, bool):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def dw_min(tile) -> float:
    """The nominal device step (``DEFAULT_DW_MIN`` when the tile does not say)."""
    return nominal(tile, "device", "dw_min", DEFAULT_DW_MIN)


def pulse_scheme(tile):
    """The tile's pulse scheme if it draws pulse trains (has a ``bl``), else None."""
    scheme = getattr(tile, "pulses", None)
    return scheme if scheme is not None and getattr(scheme, "pulsed", False) else None


def max_step(tile) -> float:
    """Largest change one update cycle can give one cell: ``bl * dw_min`` (inf if unpulsed)."""
    scheme = pulse_scheme(tile)
    return math.inf if scheme is None else float(scheme.bl) * dw_min(tile)


def io(tile) -> IO:
    """The tile's forward periphery (``DEFAULT_IO`` when it has none)."""
    value = getattr(tile, "io", None)
    return value if isinstance(value, IO) else DEFAULT_IO
