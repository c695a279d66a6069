"""Compound tiles: several crossbars behind one cross-point, and the tile factory.

A layer talks to its tile through the Crossbar's verbs (``shape``, ``forward``, ``backward``,
``update``, ``weights``, ``set_weights``, ``counters``, ``state_dict``/``load_state_dict``).
A :class:`~progsim.Crossbar` has them; the compounds here have them too, built from
sub-crossbars (one per device of the cell) whose reads are summed in the analog domain:

* :class:`VectorTile`: ``W = sum_k gamma_k W_k`` with an update policy (vector unit cell);
* :class:`TikiTakaTile`: ``W = gamma A + C``, updates into ``A``, periodic column transfer
  from ``A`` into ``C``.

A compound's ``forward``/``backward`` pass the summed weights through the tile's own
periphery (one read of the summed currents, as the hardware does); the sub-crossbars' own
periphery is used only where the hardware reads one array alone (Tiki-Taka's transfer).
"""

from __future__ import annotations

import numpy as np

from progsim import Crossbar, IO
from progsim.periphery import mvm
from progsim.nn.config import TikiTaka, TileConfig, VectorUnitCell

_PERFECT = IO(is_perfect=True)


def _seeds(seed: int, n: int):
    """``n`` sub-crossbar seeds and one generator seed, all derived from ``seed``."""
    state = np.random.SeedSequence(seed).generate_state(n + 1, dtype=np.uint32)
    return [int(s) for s in state[:n]], np.random.SeedSequence(int(state[n]))


def make_tile(config: TileConfig, out_size: int, in_size: int, seed: int):
    """The tile of ``config``: a Crossbar, a VectorTile or a TikiTakaTile."""
    if isinstance(config.device, VectorUnitCell):
        return VectorTile(out_size, in_size, config, seed)
    if isinstance(config.device, TikiTaka):
        return TikiTakaTile(out_size, in_size, config, seed)
    return Crossbar(out_size, in_size, device=config.device, io=config.io, io_backward=config.backward_io,
                    seed=seed, pulses=config.pulses, half_select=config.half_select, dtype=np.dtype(config.dtype))


class _Compound:
    """What the compounds share: sub-crossbars, the summed read, counters and state."""

    def __init__(self, out_size, in_size, config: TileConfig, seed: int, devs, ios, gammas):
        self.gammas = tuple(gammas)
        self.shape = (int(out_size), int(in_size))
        self.config = config
        seeds, ss = _seeds(seed, len(devs))
        self.subs = [Crossbar(out_size, in_size, device=d, pulses=config.pulses, half_select=config.half_select,
                              io=io, seed=s, dtype=np.dtype(config.dtype)) for d, s, io in zip(devs, seeds, ios)]
        self._rng = np.random.default_rng(ss)
        self._reads = {"reads": 0, "reads_backward": 0}

    @property
    def weights(self) -> np.ndarray:
        """The summed true weights ``sum_k gamma_k W_k`` (metrics and tests only)."""
        return sum(g * s.weights for g, s in zip(self.gammas, self.subs))

    def forward(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        xb = x[None, :] if x.ndim == 1 else x
        y = mvm(self.weights, xb, self.config.io, self._rng)
        self._reads["reads"] += xb.shape[0]
        return y[0] if x.ndim == 1 else y

    def backward(self, d) -> np.ndarray:
        d = np.asarray(d, dtype=np.float64)
        db = d[None, :] if d.ndim == 1 else d
        y = mvm(self.weights.T, db, self.config.backward_io, self._rng)
        self._reads["reads_backward"] += db.shape[0]
        return y[0] if d.ndim == 1 else y

    @property
    def counters(self) -> dict:
        """Costs summed over the sub-crossbars, plus this tile's own summed reads."""
        out = dict(self._reads)
        for s in self.subs:
            for k, v in s.counters.items():
                out[k] = out.get(k, 0) + v
        return out

    def state_dict(self) -> dict:
        return {"subs": [s.state_dict() for s in self.subs], "rng": self._rng.bit_generator.state,
                "reads": dict(self._reads), **self._extra_state()}

    def load_state_dict(self, state: dict) -> None:
        for s, st in zip(self.subs, state["subs"]):
            s.load_state_dict(st)
        self._rng.bit_generator.state = state["rng"]
        self._reads = {k: int(v) for k, v in state["reads"].items()}
        self._load_extra_state(state)


class VectorTile(_Compound):
    """Vector unit cell: one sub-crossbar per device, ``W = sum_k gamma_k W_k``.

    ``set_weights(W)`` puts ``W / sum(gammas)`` on every device (each clipped to its bounds),
    so that the summed weight is ``W`` where the bounds allow.
    """

    def __init__(self, out_size, in_size, config: TileConfig, seed: int):
        cell: VectorUnitCell = config.device
        super().__init__(out_size, in_size, config, seed, cell.unit_cell_devices,
                         [_PERFECT] * len(cell.unit_cell_devices), cell.gammas)
        self.cell = cell
        self._next = cell.first_update_idx

    def set_weights(self, weights) -> None:
        w = np.asarray(weights, dtype=np.float64) / sum(self.cell.gammas)
        for s in self.subs:
            s.set_weights(w)

    def update(self, x, d, lr) -> None:
        """Every cycle of the batch goes to the device(s) the policy picks for this call."""
        policy = self.cell.update_policy
        if policy == "all":
            for s in self.subs:
                s.update(x, d, lr)
            return
        if policy == "single_fixed":
            k = self.cell.first_update_idx
        elif policy == "single_sequential":
            k = self._next
            self._next = (k + 1) % len(self.subs)
        else:
            k = int(self._rng.integers(len(self.subs)))
        self.subs[k].update(x, d, lr)

    def _extra_state(self):
        return {"next": self._next}

    def _load_extra_state(self, state):
        self._next = int(state["next"])


class TikiTakaTile(_Compound):
    """Tiki-Taka: ``W = gamma A + C`` (see :class:`progsim.nn.TikiTaka`)."""

    def __init__(self, out_size, in_size, config: TileConfig, seed: int):
        tt: TikiTaka = config.device
        super().__init__(out_size, in_size, config, seed, (tt.fast, tt.slow), (tt.transfer_io, _PERFECT),
                         (tt.gamma, 1.0))
        self.tt = tt
        self._since = 0  # update cycles since the last transfer
        self._col = 0  # next column of A to transfer

    @property
    def fast(self) -> Crossbar:
        return self.subs[0]

    @property
    def slow(self) -> Crossbar:
        return self.subs[1]

    def set_weights(self, weights) -> None:
        """The whole weight goes into ``C``; ``A`` starts at zero."""
        self.fast.set_weights(np.zeros(self.shape))
        self.slow.set_weights(weights)

    def update(self, x, d, lr) -> None:
        """Cycles go into ``A`` in order; a transfer runs after every ``transfer_every``-th cycle."""
        x = np.asarray(x, dtype=np.float64)
        d = np.asarray(d, dtype=np.float64)
        if x.ndim == 1:
            x, d = x[None, :], d[None, :]
        start, n, every = 0, x.shape[0], self.tt.transfer_every
        while start < n:
            stop = min(n, start + every - self._since)
            self.fast.update(x[start:stop], d[start:stop], lr)
            self._since += stop - start
            start = stop
            if self._since == every:
                self._transfer()
                self._since = 0

    def _transfer(self) -> None:
        e = np.zeros(self.shape[1])
        e[self._col] = 1.0
        column = self.fast.forward(e)
        self.slow.update(e, -column, self.tt.transfer_lr)
        self._col = (self._col + 1) % self.shape[1]

    def _extra_state(self):
        return {"since": self._since, "col": self._col}

    def _load_extra_state(self, state):
        self._since, self._col = int(state["since"]), int(state["col"])
