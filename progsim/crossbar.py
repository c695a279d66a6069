"""The crossbar tile: true state, per-cell device parameters, periphery and counters.

``W[i, j]`` sits on row ``i`` (output, "d side") and column ``j`` (input, "x side").
``forward(x) = W x`` through the periphery, ``backward(d) = W^T d``, ``update(x, d, lr)``
moves ``W`` by ``-lr sum_b outer(d_b, x_b)`` in expectation, one pulsed update cycle per
batch row, applied one after another as on hardware.

The true state (``weights``) is for metrics and tests; algorithms see only ``forward``,
``backward``, ``update``, ``read_weights`` and ``pulse``, all of which are counted.
Randomness: device-to-device parameters and periphery noise come from numpy generators
spawned from ``SeedSequence(seed)``; pulse noise and trains from counter-based streams keyed
by the same sequence, so a seed gives bit-identical results whatever the thread count.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from progsim import _kernels, devices, pulses as _pulses
from progsim._config import entry_point, use_parallel
from progsim._validate import check_array, param_error
from progsim.halfselect import MODE_NONE, HalfSelect
from progsim.periphery import IO, io_params, mvm

COUNTER_NAMES = ("update_cycles", "pulses_full", "pulses_half", "pulses_single", "reads", "reads_backward")
_DTYPES = (np.float32, np.float64)
_F64 = np.dtype(np.float64)


class Crossbar:
    """A simulated crossbar tile.

    Parameters
    ----------
    out_size, in_size : int
        Rows (outputs) and columns (inputs).
    device : devices.PulsedDevice
        Device model; its per-cell parameters are drawn once, here, from ``seed``.
    pulses : pulses.PulseScheme
        How updates become pulses (default ``Stochastic(bl=31)``).
    half_select : HalfSelect
        Disturb of half-selected cells (default ``HalfSelect("none")``).
    io, io_backward : IO
        Periphery of the forward and backward passes (``io_backward`` defaults to ``io``).
    seed : int
        Seeds everything random in the tile.
    dtype : numpy.float32 or numpy.float64
        Storage of the weights and per-cell parameters.
    """

    def __init__(self, out_size, in_size, *, device=None, pulses=None, half_select=None, io=None,
                 io_backward=None, seed=0, dtype=np.float64):
        for name, v in (("out_size", out_size), ("in_size", in_size)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise param_error("Crossbar", name, "an int >= 1", v)
        device = devices.ConstantStep() if device is None else device
        pulses = _pulses.Stochastic() if pulses is None else pulses
        half_select = HalfSelect() if half_select is None else half_select
        io = IO() if io is None else io
        io_backward = io if io_backward is None else io_backward
        checks = (("device", device, devices.PulsedDevice, "a device from progsim.devices, e.g. devices.ConstantStep()"),
                  ("pulses", pulses, _pulses.PulseScheme, "a scheme from progsim.pulses, e.g. pulses.Stochastic()"),
                  ("half_select", half_select, HalfSelect, 'a HalfSelect, e.g. HalfSelect("v2", strength=0.1)'),
                  ("io", io, IO, "an IO, e.g. IO() or IO(is_perfect=True)"),
                  ("io_backward", io_backward, IO, "an IO"))
        for name, value, cls, hint in checks:
            if not isinstance(value, cls):
                raise param_error("Crossbar", name, hint, value)
        if half_select.mode != "none" and not pulses.pulsed:
            raise param_error("Crossbar", "half_select",
                              f"HalfSelect('none') with the unpulsed scheme {type(pulses).__name__} "
                              "(use a pulsed scheme such as pulses.Stochastic() to model disturb)", half_select)
        if np.dtype(dtype) not in [np.dtype(t) for t in _DTYPES]:
            raise param_error("Crossbar", "dtype", "numpy.float32 or numpy.float64", dtype)
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise param_error("Crossbar", "seed", "an int >= 0", seed)

        self.shape = (int(out_size), int(in_size))
        self.device, self.pulses, self.half_select = device, pulses, half_select
        self.io, self.io_backward = io, io_backward
        self._io_p = io_params(io)
        self._io_p_backward = io_params(io_backward, backward=True)
        self.dtype = np.dtype(dtype)
        self.seed = int(seed)
        ss = np.random.SeedSequence(self.seed)
        ss_cells, ss_io, ss_key = ss.spawn(3)
        self._cells = device.draw_cells(self.shape, np.random.default_rng(ss_cells), self.dtype)
        self._io_rng = np.random.default_rng(ss_io)
        self._key = np.uint64(ss_key.generate_state(1, dtype=np.uint64)[0])
        self._counter = 0  # update cycles and pulse calls drawn so far: the streams' counter
        self._shape_params = device.shape_params
        self._w = np.zeros(self.shape, dtype=self.dtype)
        self._wa = np.zeros(self.shape, dtype=self.dtype) if self._write_noise > 0 else self._w
        self._counters = dict.fromkeys(COUNTER_NAMES, 0)
        self._warned_resolution = False  # see _warn_below_resolution
        self._short = self._short_update()
        self._short_entry = None  # the short kernel's compiled entry, after its first call

    # ------------------------------------------------------------------ state

    @property
    def _write_noise(self) -> float:
        return float(self.device.write_noise_std * self.device.dw_min)

    @property
    def weights(self) -> np.ndarray:
        """The true (apparent) weights, a copy. For metrics and tests only."""
        return self._wa.copy()

    @property
    def hidden_weights(self) -> np.ndarray:
        """The hidden device state (equal to ``weights`` without write noise)."""
        return self._w.copy()

    @property
    def cells(self) -> devices.CellParams:
        """Per-cell device parameters drawn at construction (read-only copies)."""
        return devices.CellParams(*(a.copy() for a in self._cells))

    @property
    def counters(self) -> dict:
        """Costs so far: update cycles, full / half-select / single-device pulses, read vectors."""
        return dict(self._counters)

    def reset_counters(self) -> None:
        self._counters = dict.fromkeys(COUNTER_NAMES, 0)

    def set_weights(self, weights) -> None:
        """Set the state exactly (clipped to each cell's bounds); not counted. For tests and set-up."""
        w = check_array(weights, "weights", "Crossbar.set_weights", ndim=2, shape=self.shape)
        w = np.clip(w, self._cells.w_min, self._cells.w_max).astype(self.dtype)
        self._w[...] = w
        if self._wa is not self._w:
            self._wa[...] = w + self._write_noise * self._io_rng.standard_normal(self.shape)

    def state_dict(self) -> dict:
        """Everything needed to resume the tile: weights, per-cell parameters, counters, RNG state."""
        return {
            "weights": self._w.copy(), "apparent_weights": self._wa.copy(),
            "cells": {k: v.copy() for k, v in self._cells._asdict().items()},
            "counters": dict(self._counters), "counter": self._counter,
            "io_rng": self._io_rng.bit_generator.state, "key": int(self._key),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a state saved by :meth:`state_dict` on a tile of the same configuration."""
        w = check_array(state["weights"], "weights", "Crossbar.load_state_dict", ndim=2, shape=self.shape)
        self._w[...] = w
        if self._wa is not self._w:
            self._wa[...] = state["apparent_weights"]
        # a state saved before a field existed (LinearStep's gammas) keeps this tile's own draw of it
        cells = {**self._cells._asdict(), **state["cells"]}
        self._cells = devices.CellParams(**{k: np.asarray(v, dtype=getattr(self._cells, k).dtype).copy()
                                            for k, v in cells.items()})
        self._counters = {k: int(state["counters"][k]) for k in COUNTER_NAMES}
        self._counter = int(state["counter"])
        self._io_rng.bit_generator.state = state["io_rng"]
        self._key = np.uint64(state["key"])

    def __getstate__(self) -> dict:
        """The instance's attributes for pickling and copying, without the short kernel's
        compiled entry point (not picklable; the next update finds it again)."""
        state = self.__dict__.copy()
        state["_short_entry"] = None
        return state

    # ------------------------------------------------------------------ reads

    def _batch(self, v, name, size, method):
        # the common call (a finite float64 array of the right shape) skips check_array's conversions
        if not (type(v) is np.ndarray and v.dtype == np.float64 and 1 <= v.ndim <= 2 and v.shape[-1] == size
                and _kernels._all_finite(v)):
            v = check_array(v, name, f"Crossbar.{method}", ndim=(1, 2), shape=(size,))
        arr = v
        return arr[None, :] if arr.ndim == 1 else arr, arr.ndim == 1

    def forward(self, x) -> np.ndarray:
        """``y = W x`` through the forward periphery; ``x`` of shape (batch, in) or (in,)."""
        xb, single = self._batch(x, "x", self.shape[1], "forward")
        y = mvm(self._wa, xb, self.io, self._io_rng, self._io_p)
        self._counters["reads"] += xb.shape[0]
        return y[0] if single else y

    def backward(self, d) -> np.ndarray:
        """``W^T d`` through the backward periphery; ``d`` of shape (batch, out) or (out,).

        Without bound management, as in aihwkit: outputs beyond ``io_backward.out_bound`` saturate."""
        db, single = self._batch(d, "d", self.shape[0], "backward")
        y = mvm(self._wa.T, db, self.io_backward, self._io_rng, self._io_p_backward, backward=True)
        self._counters["reads_backward"] += db.shape[0]
        return y[0] if single else y

    def read_weights(self, method: str = "eye", over_sampling: int = 1) -> np.ndarray:
        """Estimate ``W`` from forward passes (counted as reads).

        ``"eye"``: each one-hot input ``over_sampling`` times, averaged.
        ``"lstsq"``: ``over_sampling * in_size`` random normal inputs, least-squares fit.
        """
        if method not in ("eye", "lstsq"):
            raise param_error("read_weights", "method", "one of 'eye', 'lstsq'", method)
        if not isinstance(over_sampling, (int, np.integer)) or isinstance(over_sampling, bool) or over_sampling < 1:
            raise param_error("read_weights", "over_sampling", "an int >= 1", over_sampling)
        n_in = self.shape[1]
        if method == "eye":
            x = np.tile(np.eye(n_in), (over_sampling, 1))
            y = self.forward(x).reshape(over_sampling, n_in, self.shape[0])
            # the first read plus the mean deviation from it: exact when all k reads agree (a
            # perfect periphery), where the plain mean of k equal floats can be off by an ulp
            return (y[0] + (y - y[0]).mean(axis=0)).T
        x = self._io_rng.standard_normal((over_sampling * n_in, n_in))
        y = self.forward(x)
        return np.linalg.lstsq(x, y, rcond=None)[0].T

    # ------------------------------------------------------------------ writes

    def _kernel_cfg(self, lr_sign: float, counter0: int) -> _kernels.KernelCfg:
        hs, dev = self.half_select, self.device
        return _kernels.KernelCfg(
            self.pulses.kind == _pulses.KIND_MEAN_COUNT, hs.code if hs.active else MODE_NONE,
            float(hs.strength), float(hs.prob), float(dev.dw_min_std), float(dev.write_noise_std),
            float(dev.dw_min), self._key, np.uint64(counter0), float(lr_sign))

    def _short_update(self):
        """The serial one-call kernel of a Stochastic tile and the scalars of its configuration
        (see :func:`progsim._kernels.stochastic_update`), or None for the other schemes."""
        if self.pulses.kind != _pulses.KIND_STOCHASTIC:
            return None
        hs, dev, p = self.half_select, self.device, self.pulses
        kernel = _kernels.stochastic_update(type(dev).model, hs.code if hs.active else MODE_NONE)
        scalars = (float(dev.dw_min), int(p.bl), bool(p.update_management), bool(p.bl_management),
                   float(dev.dw_min_std), float(dev.write_noise_std), float(hs.strength), float(hs.prob))
        return kernel, scalars

    def _update_short(self, x, d, lr) -> bool:
        """The common call (float64 C-contiguous ``x`` and ``d`` of matching shapes, a float ``lr``,
        a Stochastic tile below the parallel size) in one compiled call; False when the call is
        not of that kind or holds a non-finite value, for :meth:`update` to check it in full.

        After the first call the kernel is called through its compiled entry point
        (:func:`progsim._config.entry_point`), which needs exactly the argument types checked here:
        2-d C-contiguous float64 ``x`` and ``d``, a float ``lr``."""
        if not (type(x) is np.ndarray and type(d) is np.ndarray and type(lr) is float and x.dtype == _F64
                and d.dtype == _F64 and x.flags.c_contiguous and d.flags.c_contiguous and math.isfinite(lr)):
            return False
        n_out, n_in = self.shape
        if x.ndim == 2 and d.ndim == 2:
            nb = x.shape[0]
            if x.shape[1] != n_in or d.shape[1] != n_out or d.shape[0] != nb:
                return False
        elif x.ndim == 1 and d.ndim == 1 and x.shape[0] == n_in and d.shape[0] == n_out:
            x, d, nb = x.reshape(1, n_in), d.reshape(1, n_out), 1
        else:
            return False
        if nb == 0 or use_parallel(self._w.size * nb):
            return False
        kernel, scalars = self._short
        args = (self._w, self._wa, self._cells, self._shape_params, x, d, lr, self._key, self._counter, *scalars)
        entry = self._short_entry
        if entry is None:
            finite, n_full, n_half = kernel(*args)
            self._short_entry = entry_point(kernel, args)
        else:
            finite, n_full, n_half = entry(*args)
        if not finite:
            return False
        c = self._counters
        c["pulses_full"] += n_full
        c["pulses_half"] += n_half
        c["update_cycles"] += nb
        self._counter += nb
        return True

    def update(self, x, d, lr) -> None:
        """Pulsed update: in expectation ``W <- W - lr * sum_b outer(d_b, x_b)``.

        ``x`` (batch, in) or (in,), ``d`` (batch, out) or (out,); each batch row is one update
        cycle, applied in order. An exact (unpulsed) update whose increment or result would
        overflow raises ValueError and leaves the tile as it was. Under a deterministic scheme
        (MeanCount, DeterministicImplicit) an update whose trains all round to zero slots, below
        the device's resolution, applies no pulse: the first such update of a tile warns
        (RuntimeWarning).
        """
        if self._short is not None and self._update_short(x, d, lr):
            return
        xb, _ = self._batch(x, "x", self.shape[1], "update")
        db, _ = self._batch(d, "d", self.shape[0], "update")
        if xb.shape[0] != db.shape[0]:
            raise ValueError(f"The 'd' parameter of Crossbar.update must have the same batch size as 'x' "
                             f"({xb.shape[0]}). Got {db.shape[0]} instead.")
        if type(lr) is not float:  # the common call skips the checks a float needs no more of
            if isinstance(lr, bool) or not np.isscalar(lr) or not np.isreal(lr):
                raise param_error("Crossbar.update", "lr", "a finite float", lr)
            lr = float(lr)
        if not math.isfinite(lr):
            raise param_error("Crossbar.update", "lr", "a finite float", lr)
        nb = xb.shape[0]
        counter0 = self._counter
        kind = self.pulses.kind
        if kind in (_pulses.KIND_IDEAL, _pulses.KIND_IDEAL_DEVICE):
            self._update_exact(xb, db, lr, counter0)
        else:
            cfg = self._kernel_cfg(1.0 if lr > 0 else (-1.0 if lr < 0 else 0.0), counter0)
            cyc = _pulses.make_cycles(self.pulses, xb, db, lr, self.device.dw_min, self._key, counter0,
                                      with_quadrants=cfg.half_select != MODE_NONE)
            counts = np.zeros((self.shape[0], 2), dtype=np.int64)
            _kernels.pulsed_update(self._w, self._wa, self._cells, type(self.device).model, self._shape_params,
                                   cyc, cfg, counts)
            n_full, n_half = counts.sum(axis=0).tolist()
            self._counters["pulses_full"] += n_full
            self._counters["pulses_half"] += n_half
            if n_full == 0 and kind != _pulses.KIND_STOCHASTIC and cyc.bl.any():
                self._warn_below_resolution(xb, db, lr)
        self._counter += nb
        self._counters["update_cycles"] += nb

    def _update_exact(self, xb, db, lr, counter0) -> None:
        """The unpulsed schemes (Ideal, IdealWithDevice), computed into temporaries and committed
        only when every weight and the pulse count stay finite: an update that would overflow
        raises ValueError and leaves the tile as it was."""
        w, wa = self._w.copy(), (self._wa.copy() if self._wa is not self._w else None)
        with np.errstate(over="ignore", invalid="ignore"):
            if self.pulses.kind == _pulses.KIND_IDEAL:
                dw = lr * (db.T @ xb)
                w -= dw.astype(self.dtype)
                moved = np.abs(dw).sum() / self.device.dw_min
            else:
                _kernels.ideal_with_device(w, w if wa is None else wa, xb, db, lr, self._cells.w_max,
                                           self._cells.w_min, self._kernel_cfg(np.sign(lr), counter0))
                moved = np.abs(w.astype(np.float64) - self._w).sum() / self.device.dw_min
        if not (np.isfinite(moved) and np.isfinite(w).all()):
            with np.errstate(over="ignore"):
                scale = abs(lr) * np.abs(xb).max() * np.abs(db).max()
            raise ValueError(
                f"The 'x' parameter of Crossbar.update must keep the increment lr * d x^T and the weights finite "
                f"in {self.dtype.name} (|lr| max|x| max|d| = {scale:.3g}). "
                f"Got max|x| = {np.abs(xb).max():.3g} instead; the tile is unchanged.")
        if wa is not None and self.pulses.kind == _pulses.KIND_IDEAL:
            touched = dw != 0
            wa[touched] = w[touched] + self._write_noise * self._io_rng.standard_normal(touched.sum())
        self._w[...] = w
        if wa is not None:
            self._wa[...] = wa
        self._counters["pulses_full"] += int(np.rint(moved))

    def _warn_below_resolution(self, xb, db, lr) -> None:
        """Warn (once per tile) that a deterministic scheme rounded a whole update to no pulse."""
        if self._warned_resolution:
            return
        self._warned_resolution = True
        k = abs(lr) * (np.abs(xb).max(axis=1) * np.abs(db).max(axis=1)).max() / self.device.dw_min
        warnings.warn(
            f"Crossbar.update applied no pulse: under {type(self.pulses).__name__} the largest expected "
            f"pulse count |lr| max|x| max|d| / dw_min = {k:.3g} rounds every train to zero slots (the "
            f"change asked for is below the device's resolution dw_min = {self.device.dw_min:g}). Raise "
            f"lr or use pulses.Stochastic(), whose trains are unbiased at any lr. (Warned once per tile.)",
            RuntimeWarning, stacklevel=3)

    def pulse(self, rows, cols, n) -> None:
        """Single-device pulses, applied in order: ``n[k]`` pulses on cell ``(rows[k], cols[k])``,
        raising the weight when ``n[k] > 0``. Half-selection disturbs the cells that share the
        pulsed cell's row or column (and, under V/3, all others)."""
        r = np.atleast_1d(np.asarray(rows))
        c = np.atleast_1d(np.asarray(cols))
        m = np.atleast_1d(np.asarray(n))
        for name, arr, hi in (("rows", r, self.shape[0]), ("cols", c, self.shape[1])):
            if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
                raise param_error("Crossbar.pulse", name, "a 1-d array of ints", arr)
            if arr.size and (arr.min() < 0 or arr.max() >= hi):
                raise param_error("Crossbar.pulse", name, f"indices in [0, {hi})", arr)
        if m.ndim != 1 or not np.issubdtype(m.dtype, np.integer):
            raise param_error("Crossbar.pulse", "n", "a 1-d array of ints (signed pulse counts)", m)
        if m.size == 1 and r.size > 1:
            m = np.full(r.size, m[0])
        if not (r.size == c.size == m.size):
            raise ValueError(f"The 'rows', 'cols' and 'n' parameters of Crossbar.pulse must have the same length. "
                             f"Got {r.size}, {c.size} and {m.size} instead.")
        counts = np.zeros(2, dtype=np.int64)
        _kernels.single_pulses(self._w, self._wa, self._cells, type(self.device).model, self._shape_params,
                               r.astype(np.int64), c.astype(np.int64), m.astype(np.int64),
                               self._kernel_cfg(1.0, self._counter), counts)
        self._counter += 1
        self._counters["pulses_single"] += int(counts[0])
        self._counters["pulses_half"] += int(counts[1])

    def __repr__(self) -> str:
        return (f"Crossbar({self.shape[0]}, {self.shape[1]}, device={self.device!r}, pulses={self.pulses!r}, "
                f"half_select={self.half_select!r}, dtype={self.dtype.name})")
