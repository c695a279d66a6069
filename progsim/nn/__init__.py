"""progsim.nn: analog training tiles as torch layers.

Layers (:class:`AnalogLinear`, :class:`AnalogConv1d`, :class:`AnalogConv2d`, their grouped
forms :class:`AnalogGroupedConv1d` and :class:`AnalogGroupedConv2d` (one tile per group),
:class:`AnalogLSTM`, :class:`AnalogSequential`) compose a tile (a Crossbar or a compound) with
a :class:`TileConfig`; :class:`AnalogSGD` applies their updates as pulsed update cycles;
:func:`convert_to_analog` swaps the layers of a digital model. See :mod:`progsim.nn.base` for
the contract of forward, backward, update and state.
"""

from progsim.nn.base import AnalogModule, analog_layer_of
from progsim.nn.compound import TikiTakaTile, VectorTile, make_tile
from progsim.nn.config import PRESETS, TikiTaka, TileConfig, VectorUnitCell, preset
from progsim.nn.convert import DEFAULT_MAPPING, convert_to_analog, convert_to_digital
from progsim.nn.layers import (AnalogConv1d, AnalogConv2d, AnalogGroupedConv1d, AnalogGroupedConv2d, AnalogLinear,
                               AnalogSequential, analog_modules)
from progsim.nn.lstm import AnalogLSTM
from progsim.nn.optim import AnalogSGD

__all__ = ["AnalogConv1d", "AnalogConv2d", "AnalogGroupedConv1d", "AnalogGroupedConv2d", "AnalogLSTM", "AnalogLinear",
           "AnalogModule", "AnalogSGD", "AnalogSequential", "DEFAULT_MAPPING", "PRESETS", "TikiTaka", "TikiTakaTile",
           "TileConfig", "VectorTile", "VectorUnitCell", "analog_layer_of", "analog_modules", "convert_to_analog",
           "convert_to_digital", "make_tile", "preset"]
