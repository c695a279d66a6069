"""An aihwkit 1.2 analog tile as a progsim ``Programmable``: every progsim algorithm programs it.

:class:`AihwkitTile` wraps an aihwkit tile with a pulsed update (``AnalogTile`` with a
``SingleRPUConfig``, a unit cell or any config whose C++ tile offers ``forward``, ``update``
and ``get_weights``) and speaks progsim's tile verbs through aihwkit's own machinery:

* ``forward(x)``: the C++ tile's forward pass, i.e. aihwkit's forward periphery (noise and
  bound management, DAC, output noise, ADC) as configured in ``rpu_config.forward``;
* ``update(x, d, lr)``: aihwkit's pulsed update. aihwkit applies ``W -= lr d^T x`` with
  the learning rate set by ``set_learning_rate(lr)`` (its ``program_weights`` calls
  ``update(x, y - target)`` for gradient-descent programming), the design's convention;
  aihwkit takes only positive learning rates, so a negative ``lr`` is applied as
  ``update(x, -d, |lr|)``, and ``lr = 0`` writes nothing. Each batch row is one update
  cycle, in order, as in aihwkit's CPU loop;
* ``read_weights(method, over_sampling)``: estimated from ``forward`` as
  :meth:`progsim.Crossbar.read_weights` does (``"eye"`` or ``"lstsq"``);
* ``weights`` (the oracle) and ``set_weights``: the C++ tile's ``get_weights`` /
  ``set_weights``, in the tile's normalised units. Like aihwkit's own
  ``program_weights``, the adapter works below the digital mapping scales
  (``weight_scaling_omega``) and needs a tile without analog bias;
* nominal configs for progsim's algorithms, converted from the tile's ``rpu_config``:
  ``device`` (the matching :mod:`progsim.devices` class with ``dw_min`` and the spreads),
  ``pulses`` (``bl`` = ``desired_bl``, update and BL management), ``io`` (forward
  periphery) and ``half_select`` (``"none"``: aihwkit has no half-selection);
* ``counters``: forward vectors (``reads``, those of ``read_weights`` included) and
  ``update_cycles``. aihwkit's CPU tiles count no pulses, so ``pulses_full`` is absent
  (NaN in a run's table).

aihwkit is imported only when a tile is built with :meth:`AihwkitTile.create`, or through
the wrapped tile itself; this module imports without it. Pulse and read noise of the C++
tile are seeded by aihwkit from the clock (1.2 exposes no seed); ``seed`` here fixes the
adapter's own random read inputs and, in :meth:`create`, the device-to-device draws
(``construction_seed``).
"""

from __future__ import annotations

import copy

import numpy as np

from progsim import devices as _devices
from progsim import pulses as _pulses
from progsim._validate import check_array, param_error
from progsim.halfselect import HalfSelect
from progsim.periphery import IO

_DEVICES = {  # aihwkit device class -> progsim device class and its extra shape fields
    "IdealDevice": (_devices.Ideal, ()),
    "ConstantStepDevice": (_devices.ConstantStep, ()),
    "LinearStepDevice": (_devices.LinearStep, ("gamma_up", "gamma_down", "gamma_up_dtod", "gamma_down_dtod",
                                             "mean_bound_reference")),
    "SoftBoundsDevice": (_devices.SoftBounds, ()),
    "ExpStepDevice": (_devices.ExpStep, ("A_up", "A_down", "gamma_up", "gamma_down", "a", "b")),
    "PowStepDevice": (_devices.PowStep, ("pow_gamma",)),
}
_COMMON = ("dw_min", "dw_min_dtod", "dw_min_std", "up_down", "up_down_dtod", "w_max", "w_min", "w_max_dtod",
           "w_min_dtod", "write_noise_std")


def nominal_device(aihw_device):
    """The progsim device with the nominal parameters of an aihwkit device config.

    Only the fields both simulators share are carried over; an aihwkit device of another
    kind (compound devices) becomes the progsim ``ConstantStep`` of its ``dw_min`` (or
    ``None`` when it has none): the step size is what the algorithms derive defaults from.
    """
    name = type(aihw_device).__name__
    cls, extra = _DEVICES.get(name, (_devices.ConstantStep, ()))
    if name not in _DEVICES:
        dw_min = getattr(aihw_device, "dw_min", None)
        return None if dw_min is None else _devices.ConstantStep(dw_min=float(dw_min))
    if cls is _devices.Ideal:
        return _devices.Ideal(dw_min=float(getattr(aihw_device, "dw_min", 0.001)))
    if name == "PowStepDevice":
        extra_kw = {"gamma": float(aihw_device.pow_gamma)}
    else:
        extra_kw = {f: (bool if f == "mean_bound_reference" else float)(getattr(aihw_device, f)) for f in extra}
    fields = {f: float(getattr(aihw_device, f)) for f in _COMMON if hasattr(aihw_device, f)}
    return cls(**fields, **extra_kw)


def nominal_pulses(update):
    """The progsim pulse scheme of an aihwkit ``UpdateParameters``."""
    kind = update.pulse_type.name
    if kind == "NONE":
        return _pulses.Ideal()
    if kind == "NONE_WITH_DEVICE":
        return _pulses.IdealWithDevice()
    bl = int(update.desired_bl)
    if not 1 <= bl <= 64:
        raise ValueError(f"The 'desired_bl' parameter of the aihwkit tile must be in [1, 64] for progsim's "
                         f"nominal pulse model (trains of at most 64 slots). Got {bl} instead.")
    common = dict(bl=bl, update_management=bool(update.update_management),
                  bl_management=bool(update.update_bl_management))
    if kind == "MEAN_COUNT":
        return _pulses.MeanCount(**common)
    if kind == "DETERMINISTIC_IMPLICIT":
        res = lambda r: float(r) if 0 < r <= 1 else 1.0 / bl  # noqa: E731  (aihwkit: <= 0 means 1/BL)
        return _pulses.DeterministicImplicit(**common, x_res=res(update.x_res_implicit),
                                             d_res=res(update.d_res_implicit))
    return _pulses.Stochastic(**common)  # STOCHASTIC and STOCHASTIC_COMPRESSED: the same statistics


def nominal_io(forward):
    """The progsim periphery of an aihwkit forward ``IOParameters`` (the fields both share).

    Noise management other than ``NONE`` is reported as ``"abs_max"`` and bound management
    other than ``NONE`` as ``"iterative"`` (the defaults of both); weight noise counts only
    when its type is additive. Resolutions <= 0 (aihwkit: no quantisation) become 0.
    """
    w_noise_type = getattr(getattr(forward, "w_noise_type", None), "name", "NONE")
    return IO(
        is_perfect=bool(forward.is_perfect),
        inp_bound=float(forward.inp_bound), inp_res=max(float(forward.inp_res), 0.0),
        out_bound=float(forward.out_bound) if forward.out_bound > 0 else 1e12,
        out_res=max(float(forward.out_res), 0.0), out_noise=float(forward.out_noise),
        w_noise=float(forward.w_noise) if w_noise_type == "ADDITIVE_CONSTANT" else 0.0,
        noise_management="none" if forward.noise_management.name == "NONE" else "abs_max",
        bound_management="none" if forward.bound_management.name == "NONE" else "iterative",
    )


class AihwkitTile:
    """An aihwkit analog tile behind progsim's ``Programmable`` verbs (see the module doc).

    Parameters
    ----------
    tile : aihwkit tile
        An aihwkit ``AnalogTile`` (or any tile module with ``.tile``, the C++ simulator
        tile, and ``rpu_config``), without analog bias.
    seed : int
        Seed of the adapter's random read inputs (``read_weights(method="lstsq")``).
    """

    def __init__(self, tile, seed: int = 0):
        sim = getattr(tile, "tile", None)
        missing = [v for v in ("forward", "update", "get_weights", "set_weights", "set_learning_rate")
                   if not callable(getattr(sim, v, None))]
        if missing:
            raise TypeError(f"The 'tile' parameter of AihwkitTile must be an aihwkit analog tile whose C++ "
                            f"simulator tile (.tile) offers {missing}. Got {type(tile).__name__} instead.")
        if getattr(tile, "analog_bias", False):
            raise ValueError("The 'tile' parameter of AihwkitTile must have no analog bias (bias=False): "
                             "the adapter programs the weight matrix only. Got a tile with analog_bias=True instead.")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise param_error("AihwkitTile", "seed", "an int >= 0", seed)
        import torch  # aihwkit's tiles run on torch tensors

        self._torch = torch
        self.aihwkit_tile = tile
        self._sim = sim
        self.shape = (int(sim.get_d_size()), int(sim.get_x_size()))
        self._rng = np.random.default_rng(seed)
        self._counters = dict(reads=0, update_cycles=0)
        cfg = getattr(tile, "rpu_config", None)
        self.device = nominal_device(cfg.device) if hasattr(cfg, "device") else None
        self.pulses = nominal_pulses(cfg.update) if hasattr(cfg, "update") else None
        self.io = nominal_io(cfg.forward) if hasattr(cfg, "forward") else None
        self.half_select = HalfSelect("none")

    @classmethod
    def create(cls, out_size: int, in_size: int, rpu_config=None, *, seed: int = 0) -> AihwkitTile:
        """Build an aihwkit ``AnalogTile`` (default: ``SingleRPUConfig`` with a
        ``ConstantStepDevice`` at aihwkit's defaults) and wrap it.

        ``seed`` also sets the device's ``construction_seed`` (``seed + 1``: aihwkit reads
        0 as "from the clock"), which fixes the device-to-device draws; the tile gets a
        copy of ``rpu_config``, the caller's stays as it was.
        """
        from aihwkit.simulator.configs import ConstantStepDevice, SingleRPUConfig
        from aihwkit.simulator.tiles.analog import AnalogTile

        for name, value in (("out_size", out_size), ("in_size", in_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise param_error("AihwkitTile.create", name, "an int >= 1", value)
        rpu_config = SingleRPUConfig(device=ConstantStepDevice()) if rpu_config is None else copy.deepcopy(rpu_config)
        if hasattr(rpu_config, "device") and hasattr(rpu_config.device, "construction_seed"):
            rpu_config.device.construction_seed = int(seed) + 1
        return cls(AnalogTile(int(out_size), int(in_size), rpu_config), seed=seed)

    # ------------------------------------------------------------------ hardware verbs

    def _tensor(self, a, name: str, size: int, owner: str):
        arr = check_array(a, name, owner, ndim=(1, 2), shape=(size,))
        return self._torch.from_numpy(np.ascontiguousarray(np.atleast_2d(arr), dtype=np.float32)), arr.ndim

    def forward(self, x) -> np.ndarray:
        """``y = W x`` through aihwkit's forward periphery; ``x`` (batch, in) or (in,)."""
        xt, ndim = self._tensor(x, "x", self.shape[1], "AihwkitTile.forward")
        self._counters["reads"] += xt.shape[0]
        y = self._sim.forward(xt, False, False, False, False).detach().cpu().numpy().astype(np.float64)
        return y if ndim == 2 else y[0]

    def update(self, x, d, lr) -> None:
        """aihwkit's pulsed update, in expectation ``W <- W - lr sum_b outer(d_b, x_b)``."""
        owner = "AihwkitTile.update"
        xt, _ = self._tensor(x, "x", self.shape[1], owner)
        dt, _ = self._tensor(d, "d", self.shape[0], owner)
        if xt.shape[0] != dt.shape[0]:
            raise ValueError(f"The 'd' parameter of {owner} must have the same batch size as 'x' "
                             f"({xt.shape[0]}). Got {dt.shape[0]} instead.")
        if isinstance(lr, bool) or not np.isscalar(lr) or not np.isfinite(lr):
            raise param_error(owner, "lr", "a finite float", lr)
        self._counters["update_cycles"] += xt.shape[0]
        if lr == 0:
            return
        if lr < 0:
            dt = -dt
        self._sim.set_learning_rate(abs(float(lr)))
        self._sim.update(xt, dt, False)

    def read_weights(self, method: str = "eye", over_sampling: int = 1) -> np.ndarray:
        """Estimate ``W`` from forward passes (counted as reads).

        ``"eye"``: each one-hot input ``over_sampling`` times, averaged.
        ``"lstsq"``: ``over_sampling * in_size`` random normal inputs, least-squares fit.
        """
        if method not in ("eye", "lstsq"):
            raise param_error("AihwkitTile.read_weights", "method", "one of 'eye', 'lstsq'", method)
        if isinstance(over_sampling, bool) or not isinstance(over_sampling, (int, np.integer)) or over_sampling < 1:
            raise param_error("AihwkitTile.read_weights", "over_sampling", "an int >= 1", over_sampling)
        n_in = self.shape[1]
        if method == "eye":
            y = self.forward(np.tile(np.eye(n_in), (over_sampling, 1)))
            return y.reshape(over_sampling, n_in, self.shape[0]).mean(axis=0).T
        x = self._rng.standard_normal((over_sampling * n_in, n_in))
        return np.linalg.lstsq(x, self.forward(x), rcond=None)[0].T

    # ------------------------------------------------------------------ oracle and set-up

    @property
    def weights(self) -> np.ndarray:
        """The tile's true weights (aihwkit's ``get_weights``): metrics and tests only."""
        return np.asarray(self._sim.get_weights().detach().cpu().numpy(), dtype=np.float64)

    def set_weights(self, w) -> None:
        """Set the weights exactly (aihwkit clips them to each device's bounds)."""
        arr = check_array(w, "w", "AihwkitTile.set_weights", ndim=2, shape=self.shape)
        self._sim.set_weights(self._torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)))

    @property
    def counters(self) -> dict:
        """Forward vectors (``reads``) and ``update_cycles`` since construction."""
        return dict(self._counters)

    def __repr__(self) -> str:
        return f"AihwkitTile(shape={self.shape}, device={type(self.device).__name__}, pulses={self.pulses!r})"
