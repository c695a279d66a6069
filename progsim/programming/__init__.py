"""Programming algorithms: protocols, options, registry, tile guard, metrics and runner.

An algorithm is a small object with one verb, ``program(tile, target)``, that yields one
:class:`Step` per iteration. :func:`program` drives it on a tile (seen through a
:class:`TileView`) and measures what the algorithm may not see: oracle errors, costs,
wall time; it enforces budgets and returns a :class:`ProgramResult`.

==================  ==============================================================
module              what lives there
==================  ==============================================================
``protocols``       :class:`Programmable`, :class:`Algorithm`, :class:`Step`
``options``         :func:`option`, :func:`check_options`, :func:`check_known` and
                    the constraint classes for plug-ins
``registry``        :func:`register`, :func:`algorithms_available`, :func:`get_algorithm`
``view``            :class:`TileView`, :class:`OracleAccessError`
``nominal``         the tile's nominal ``dw_min``, ``bl * dw_min`` and periphery
``metrics``         relative oracle errors, ``err_floor``/``err_excess``, cost floors
``runner``          :func:`program`, :class:`ProgramResult`, :func:`warm_up`
==================  ==============================================================

``progsim.program`` is the function; this package is its home.
"""

from progsim.programming import nominal
from progsim.programming.metrics import METRICS
from progsim.programming.options import (
    Boolean, Interval, Options, OrNone, check_known, check_options, option,
)
from progsim.programming.protocols import Algorithm, Programmable, Step
from progsim.programming.registry import ENTRY_POINT_GROUP, algorithms_available, get_algorithm, register
from progsim.programming.runner import COUNTERS, DEFAULT_MAX_ITER, ProgramResult, program, warm_up
from progsim.programming.view import OracleAccessError, TileView

__all__ = [
    "Algorithm", "Boolean", "COUNTERS", "DEFAULT_MAX_ITER", "ENTRY_POINT_GROUP", "Interval", "METRICS", "Options",
    "OracleAccessError", "OrNone", "ProgramResult", "Programmable", "Step", "TileView",
    "algorithms_available", "check_known", "check_options", "get_algorithm", "nominal", "option",
    "program", "register", "warm_up",
]
