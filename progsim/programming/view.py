"""The tile guard: what an algorithm sees of a tile.

An algorithm never receives the tile itself but a :class:`TileView`: the hardware verbs
(``forward``, ``update``, ``read_weights`` and, where offered, ``pulse``), the shape, and
the nominal public configs (``device``, ``pulses``, ``half_select``, ``io``). Asking the
view for anything else (``weights``, ``set_weights``, ``counters``) raises
:class:`OracleAccessError`. The guard protects honest code from mistakes; Python cannot
stop code that digs through closures on purpose.
"""

from __future__ import annotations

import numpy as np


class OracleAccessError(AttributeError):
    """An algorithm asked the tile for something hardware does not offer."""


def _vectors(x) -> int:
    return 1 if np.ndim(x) == 1 else int(np.shape(x)[0])


class TileView:
    """What an algorithm sees of a tile: the hardware verbs, the shape and nominal configs.

    It also counts what passes through it, which the runner uses for tiles that keep no
    counters of their own: forward vectors, update cycles, single-device pulses, and the
    vectors of ``read_weights``. A read goes through the tile's own forward (which the
    view does not see), so the view counts it as the :class:`Programmable` contract
    prices it, ``over_sampling * in_size`` vectors; a Crossbar counts the same itself.
    """

    _VERBS = ("forward", "update", "read_weights", "pulse")
    _CONFIGS = ("device", "pulses", "half_select", "io")
    __slots__ = ("_calls", "_verbs", "_configs", "_shape")

    def __init__(self, tile):
        missing = [v for v in ("forward", "update", "read_weights") if not callable(getattr(tile, v, None))]
        if missing or not hasattr(tile, "shape"):
            raise TypeError(
                f"The 'tile' parameter of program must satisfy Programmable (shape, forward, "
                f"update, read_weights); {type(tile).__name__} lacks {missing or ['shape']}."
            )
        object.__setattr__(self, "_shape", tuple(int(s) for s in tile.shape))
        object.__setattr__(self, "_calls", dict(reads=0, update_cycles=0, pulses_single=0))
        verbs = {v: getattr(tile, v) for v in self._VERBS if callable(getattr(tile, v, None))}
        object.__setattr__(self, "_verbs", verbs)
        configs = {c: getattr(tile, c) for c in self._CONFIGS if getattr(tile, c, None) is not None}
        object.__setattr__(self, "_configs", configs)

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def calls(self) -> dict:
        """What passed through the view: forward vectors (reads included), update cycles,
        single-device pulses."""
        return dict(self._calls)

    def forward(self, x):
        self._calls["reads"] += _vectors(x)
        return self._verbs["forward"](x)

    def update(self, x, d, lr):
        self._calls["update_cycles"] += _vectors(x)
        return self._verbs["update"](x, d, lr)

    def read_weights(self, **kw):
        w = self._verbs["read_weights"](**kw)
        self._calls["reads"] += int(kw.get("over_sampling", 1)) * self._shape[1]
        return w

    def __getattr__(self, name):
        # only reached for names that are not slots, properties or methods
        if name == "pulse" and "pulse" in self._verbs:
            return self._pulse
        if name in self._CONFIGS and name in self._configs:
            return self._configs[name]
        if name == "pulse":
            raise OracleAccessError("This tile offers no single-device pulse().")
        raise OracleAccessError(
            f"An algorithm asked the tile for {name!r}. Algorithms see only shape, forward, "
            f"update, read_weights, pulse and the nominal configs {list(self._configs)}; "
            "the true state and the counters are for the runner's metrics only."
        )

    def _pulse(self, rows, cols, n):
        self._calls["pulses_single"] += int(np.abs(np.asarray(n)).sum())
        return self._verbs["pulse"](rows, cols, n)

    def __setattr__(self, name, value):
        raise OracleAccessError(f"Algorithms may not set {name!r} on the tile view.")

    def __dir__(self):
        return ["shape", "calls", "forward", "update", "read_weights"] + (
            ["pulse"] if "pulse" in self._verbs else []) + list(self._configs)

    def __repr__(self) -> str:
        return f"TileView(shape={self._shape}, verbs={list(self._verbs)})"
