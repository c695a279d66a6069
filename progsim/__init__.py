"""progsim: weight-programming algorithms on simulated analog in-memory-computing crossbars."""

from progsim import devices, pulses
from progsim.crossbar import Crossbar
from progsim.halfselect import HalfSelect
from progsim.periphery import IO

__version__ = "0.1.0"

__all__ = ["Crossbar", "HalfSelect", "IO", "devices", "pulses", "__version__"]
