"""What an algorithm may use (:class:`Programmable`), what it is (:class:`Algorithm`) and
what it reports each iteration (:class:`Step`)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Programmable(Protocol):
    """What hardware offers. Optional capability: ``pulse(rows, cols, n)``.

    ``read_weights(method="eye" | "lstsq", over_sampling=k)`` estimates the weights from
    ``k * in_size`` forward vectors (the runner counts it so for tiles that keep no
    counters of their own).
    """

    shape: tuple[int, int]

    def forward(self, x): ...

    def update(self, x, d, lr): ...

    def read_weights(self, **kw): ...


@dataclass(frozen=True)
class Step:
    """One iteration's report: the algorithm's own error estimate and anything to log.

    ``err_observed`` is what the algorithm measured (NaN when it measured nothing);
    ``extra`` holds scalars that become table columns of the same name.
    """

    err_observed: float = math.nan
    extra: Mapping[str, Any] = field(default_factory=dict)


class Algorithm(Protocol):
    """A programming algorithm: yields one :class:`Step` per iteration."""

    name: str

    def program(self, tile: Programmable, target: np.ndarray) -> Iterator[Step]: ...
