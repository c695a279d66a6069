"""progsim: weight-programming algorithms on simulated analog in-memory-computing crossbars."""

from progsim import devices, pulses
from progsim._config import num_threads, set_num_threads
from progsim.crossbar import Crossbar
from progsim.halfselect import HalfSelect
from progsim.periphery import IO
from progsim.programming import ProgramResult, Step, algorithms_available, program, register

__version__ = "0.1.0"

__all__ = ["Crossbar", "HalfSelect", "IO", "ProgramResult", "Step", "algorithms_available", "devices",
           "num_threads", "program", "pulses", "register", "set_num_threads", "__version__"]
