"""Half-selection: the disturb of cells that share a firing line with the pulsed cells.

Coincidence updates run in sign quadrants, in the fixed order (+,+), (+,-), (-,+), (-,-)
(row sign ``s`` = sign of ``d_i``, column sign ``t`` = sign of ``x_j``; zeros belong to no
quadrant). A quadrant runs when some row has sign ``s`` and some column sign ``t``; its
rows and columns replay their trains slot by slot and coincident cells get full pulses in
direction ``delta = -sign(lr) s t``.

* ``none``: only coincident cells change (aihwkit's behaviour).
* ``v2``: V/2 biasing. In a slot, a cell whose row fires but whose column does not (or the
  reverse) sees V/2: with probability ``prob`` it moves by ``strength * step(w, delta)``.
* ``v3``: V/3 biasing. Half-selected cells as in ``v2`` (V/3), and cells on neither firing
  line see -V/3: with probability ``prob`` they move by ``strength * step(w, -delta)``.

``strength = 0`` is an ideal threshold device. The disturb step is the device's step
function at the cell's state, including its cycle-to-cycle noise, scaled by ``strength``
(a half-amplitude pulse modelled as a weaker full pulse: the simplest model that keeps the
state dependence and saturation of the device; the design fixes this shape).

Single-device pulses (``Crossbar.pulse``) are selected the same way: the cell's row and
column fire, so under ``v2`` every other cell of that row and column gets a disturb in the
pulse's direction, and under ``v3`` every cell on neither line one in the opposite direction.
"""

from __future__ import annotations

from dataclasses import dataclass

from progsim._validate import Interval, Options, param, param_error, validate_fields

MODES = ("none", "v2", "v3")
MODE_NONE, MODE_V2, MODE_V3 = range(len(MODES))  # the codes the kernels receive
MODE_CODES = dict(zip(MODES, range(len(MODES))))
# The sign quadrants (row sign s, column sign t) in the order they run; the kernels and any
# model of the disturb import this table.
QUADRANTS = ((1, 1), (1, -1), (-1, 1), (-1, -1))


@dataclass(frozen=True)
class HalfSelect:
    """Half-selection bias scheme: ``HalfSelect("v2", strength=0.1, prob=1.0)``.

    ``strength`` and ``prob`` describe the disturb of a biased scheme: with ``"none"`` they
    must stay at their defaults (0 and 1), so that a forgotten mode does not pass silently.
    """

    mode: str = param("none", Options(*MODES))
    strength: float = param(0.0, Interval(0.0, 1.0))
    prob: float = param(1.0, Interval(0.0, 1.0))

    def __post_init__(self):
        validate_fields(self)
        if self.mode == "none":
            for name, default in (("strength", 0.0), ("prob", 1.0)):
                if getattr(self, name) != default:
                    raise param_error("HalfSelect", name, f"{default} with mode 'none' (choose mode 'v2' or 'v3' "
                                      "for a disturb)", getattr(self, name))

    @property
    def code(self) -> int:
        """The mode's code in the kernels (``MODE_NONE``, ``MODE_V2``, ``MODE_V3``)."""
        return MODE_CODES[self.mode]

    @property
    def active(self) -> bool:
        """Whether the scheme can move any half-selected cell."""
        return self.mode != "none" and self.strength > 0.0 and self.prob > 0.0
