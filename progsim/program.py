"""Programming algorithms: protocols, registry, run loop and metrics.

An algorithm is a small object with one verb, ``program(tile, target)``, that yields one
:class:`Step` per iteration. :func:`program` drives it on a tile and measures, after every
step, what the algorithm may not see: the oracle errors of the true state, the tile's
cost counters and the wall time. It enforces the budgets (iterations, pulses, reads) and
returns a :class:`ProgramResult` whose ``table`` has one row per iteration.

The algorithm never receives the tile itself but a :class:`TileView`: the hardware verbs
(``forward``, ``update``, ``read_weights`` and, where offered, ``pulse``), the shape, and
the nominal public configs (``device``, ``pulses``, ``half_select``, ``io``). Asking the
view for anything else (``weights``, ``set_weights``, ``counters``) raises
:class:`OracleAccessError`. The guard protects honest code from mistakes; Python cannot
stop code that digs through closures on purpose.

Algorithms are found by key in a registry fed by the entry-point group
``"progsim.algorithms"`` (scanned lazily, on each look-up that misses) and by
:func:`register`. An entry point names a factory: a class or function called with the
run's options as keyword arguments and returning an :class:`Algorithm`.

Options of dataclass algorithms declare their constraints next to their fields with
:func:`option` (the core's constraint classes, re-exported here for plug-ins);
:func:`check_options` turns a violation into the one error shape of the project:
"The 'lr' parameter of gdp must be a float > 0. Got -1 instead."
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
import numbers
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from progsim._validate import Boolean, Interval, Options, param, param_error

__all__ = [
    "Algorithm",
    "ENTRY_POINT_GROUP",
    "Boolean",
    "Interval",
    "Options",
    "OracleAccessError",
    "OrNone",
    "ProgramResult",
    "Programmable",
    "Step",
    "TileView",
    "algorithms_available",
    "check_options",
    "get_algorithm",
    "option",
    "program",
    "register",
]

ENTRY_POINT_GROUP = "progsim.algorithms"

COUNTERS = ("update_cycles", "pulses_full", "pulses_half", "pulses_single", "reads")
METRICS = ("err_fro", "err_spec", "err_nuc", "err_mvm", "err_observed")


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class Programmable(Protocol):
    """What hardware offers. Optional capability: ``pulse(rows, cols, n)``."""

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


# --------------------------------------------------------------------------- options


def option(default, constraint):
    """A dataclass field whose constraint sits next to it (checked by :func:`check_options`).

    Constraints are the project's own: :class:`Interval`, :class:`Options`, :class:`Boolean`.
    """
    return param(default, constraint)


def check_options(obj, owner: str | None = None) -> None:
    """Raise ValueError in the project's shape for the first option outside its constraint."""
    owner = owner or getattr(obj, "name", type(obj).__name__)
    for f in dataclasses.fields(obj):
        constraint = f.metadata.get("constraint")
        if constraint is None:
            continue
        _check(owner, f.name, getattr(obj, f.name), constraint)


def _check(owner: str, name: str, value, constraint) -> None:
    if not constraint.is_satisfied_by(value):
        raise param_error(owner, name, str(constraint), value)


class OrNone:
    """``constraint`` or None (budgets and tolerances that may be absent)."""

    def __init__(self, constraint):
        self.constraint = constraint

    def is_satisfied_by(self, value) -> bool:
        return value is None or self.constraint.is_satisfied_by(value)

    def __str__(self) -> str:
        return f"{self.constraint} or None"


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register(name: str, factory: Callable[..., Any] | None = None, *, replace: bool = False):
    """Register ``factory`` under ``name``; usable as a decorator when ``factory`` is None.

    Registering the same factory twice is harmless; a different factory under a taken
    name raises unless ``replace=True``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"The 'name' parameter of register must be a non-empty str. Got {name!r} instead.")

    def add(f):
        if not callable(f):
            raise TypeError(f"The factory registered as {name!r} must be callable. Got {f!r} instead.")
        old = _REGISTRY.get(name)
        if old is not None and old is not f and not replace:
            raise ValueError(
                f"An algorithm is already registered as {name!r} ({old!r}); "
                "pass replace=True to replace it."
            )
        _REGISTRY[name] = f
        return f

    return add if factory is None else add(factory)


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def algorithms_available() -> list[str]:
    """Sorted registry keys: registered factories and installed entry points."""
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_algorithm(name: str, **options) -> Algorithm:
    """Build the algorithm registered as ``name`` with ``options``."""
    factory = _REGISTRY.get(name)
    if factory is None:
        ep = _entry_points().get(name)
        if ep is None:
            raise ValueError(
                f"The 'algorithm' parameter of program must be one of {algorithms_available()} "
                f"or an Algorithm object. Got {name!r} instead. Third-party algorithms register "
                f"under the entry-point group {ENTRY_POINT_GROUP!r} or with progsim.program.register()."
            )
        factory = ep.load()
        _REGISTRY[name] = factory
    if dataclasses.is_dataclass(factory):
        known = {f.name for f in dataclasses.fields(factory) if f.init}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"{name} has no option {unknown[0]!r}; its options are {sorted(known)}."
            )
    algo = factory(**options)
    if not callable(getattr(algo, "program", None)):
        raise TypeError(f"The factory registered as {name!r} returned {algo!r}, which has no program() method.")
    return algo


# --------------------------------------------------------------------------- the guard


class OracleAccessError(AttributeError):
    """An algorithm asked the tile for something hardware does not offer."""


class TileView:
    """What an algorithm sees of a tile: the hardware verbs, the shape and nominal configs.

    It also counts what passes through it (forward vectors, update cycles, single-device
    pulses), which the runner uses for tiles that keep no counters of their own.
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
        """What passed through the view: forward vectors, update cycles, single-device pulses."""
        return dict(self._calls)

    def forward(self, x):
        self._calls["reads"] += 1 if np.ndim(x) == 1 else int(np.shape(x)[0])
        return self._verbs["forward"](x)

    def update(self, x, d, lr):
        self._calls["update_cycles"] += 1 if np.ndim(x) == 1 else int(np.shape(x)[0])
        return self._verbs["update"](x, d, lr)

    def read_weights(self, **kw):
        return self._verbs["read_weights"](**kw)

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


# --------------------------------------------------------------------------- metrics


def _nominal(tile, config: str, name: str) -> float:
    value = getattr(getattr(tile, config, None), name, None)
    return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan


def _floors(tile, delta: np.ndarray) -> tuple[float, float]:
    dw_min = _nominal(tile, "device", "dw_min")
    bl = _nominal(tile, "pulses", "bl")
    pulse_floor = float(np.abs(delta).sum() / dw_min)
    rank = float(np.linalg.matrix_rank(delta)) if delta.any() else 0.0
    if not math.isfinite(bl * dw_min):
        return pulse_floor, rank  # no pulse trains (ideal pulses) or unknown step: rank bound only
    return pulse_floor, max(rank, float(np.abs(delta).max() / (bl * dw_min)))


class _Metrics:
    """Oracle errors of a state against the target, with fixed random MVM inputs."""

    def __init__(self, target: np.ndarray, mvm_inputs: np.ndarray):
        self.target = target
        self.norm = float(np.linalg.norm(target)) or 1.0
        self.x = mvm_inputs
        tx = mvm_inputs @ target.T
        self.tx_norm = np.linalg.norm(tx, axis=1)
        self.tx_norm[self.tx_norm == 0] = 1.0

    def fro(self, w: np.ndarray) -> float:
        return float(np.linalg.norm(w - self.target) / self.norm)

    def full(self, w: np.ndarray) -> dict:
        e = w - self.target
        sv = np.linalg.svd(e, compute_uv=False)
        return dict(
            err_fro=float(np.sqrt((sv**2).sum()) / self.norm),
            err_spec=float(sv[0]) if sv.size else 0.0,
            err_nuc=float(sv.sum()),
            err_mvm=float(np.mean(np.linalg.norm(self.x @ e.T, axis=1) / self.tx_norm)),
        )


# --------------------------------------------------------------------------- runner


@dataclass
class ProgramResult:
    """The outcome of :func:`program`: the iteration table and why the run stopped.

    ``stop`` is one of ``"max_iter"``, ``"max_pulses"``, ``"max_reads"``, ``"tol"`` or
    ``"finished"`` (the algorithm ended by itself).
    """

    table: pd.DataFrame
    algorithm: str
    stop: str

    @property
    def final(self) -> pd.Series:
        return self.table.iloc[-1]


def _counts(tile, view: TileView, start: dict) -> dict:
    counters = getattr(tile, "counters", None)
    if counters is None:
        own = view.calls
        return dict(update_cycles=own["update_cycles"], pulses_full=math.nan, pulses_half=math.nan,
                    pulses_single=own["pulses_single"], reads=own["reads"])
    return {k: (float(counters[k]) - start[k]) if k in counters else math.nan for k in COUNTERS}


def _scalar_extra(algo_name: str, extra: Mapping[str, Any]) -> dict:
    reserved = set(COUNTERS) | set(METRICS) | {"iteration", "wall_s"}
    for key, value in extra.items():
        if key in reserved:
            raise ValueError(f"{algo_name} logged {key!r} in Step.extra; that column belongs to the runner.")
        if not (value is None or isinstance(value, (numbers.Number, str, np.generic))):
            raise TypeError(f"{algo_name} logged {key!r} = {type(value).__name__} in Step.extra; log scalars only.")
    return dict(extra)


def program(
    tile,
    target,
    algorithm: str | Algorithm = "svd",
    max_iter: int = 200,
    max_pulses: float | None = None,
    max_reads: float | None = None,
    tol: float | None = None,
    *,
    oracle: Callable[[], np.ndarray] | None = None,
    record_every: int = 1,
    mvm_inputs: int = 32,
    **options,
) -> ProgramResult:
    """Program ``target`` into ``tile`` with ``algorithm`` and measure every iteration.

    Parameters
    ----------
    tile : Programmable
        A Crossbar or any adapter with ``shape``, ``forward``, ``update``,
        ``read_weights`` (and optionally ``pulse``).
    target : array (out_size, in_size)
    algorithm : registry key or Algorithm object
        A key of :func:`algorithms_available`, built with ``**options``; or an object
        with ``name`` and ``program(tile, target)`` (then ``options`` must be empty).
    max_iter, max_pulses, max_reads : budgets
        Checked after every step: the run ends at the first iteration at which the
        full plus single-device pulses, or the forward reads, reach the budget.
    tol : float, optional
        Stop once the oracle ``err_fro`` is at or below ``tol`` (a study's
        "cost to reach accuracy"; the algorithm never sees it).
    oracle : callable, optional
        Returns the true weights; defaults to ``tile.weights``. Required for tiles
        without a ``weights`` attribute.
    record_every : int
        Table rows (and the SVD-based metrics) every ``record_every`` iterations, plus
        the first and the last; ``err_fro`` for ``tol`` is computed every iteration.
    mvm_inputs : int
        Number of fixed standard-normal inputs (seeded) averaged in ``err_mvm``.

    Returns
    -------
    ProgramResult
        ``table``: one row per recorded iteration, iteration 0 being the initial state;
        counters are counted from the start of this run. ``pulse_floor =
        sum|T - W0| / dw_min`` and ``cycle_floor = max(rank(T - W0), max|T - W0| /
        (bl dw_min))`` use the tile's nominal ``device.dw_min`` and ``pulses.bl``
        (NaN where the tile has none).
    """
    positive = OrNone(Interval(0, None, closed="neither"))
    _check("program", "max_iter", max_iter, Interval(1, None, integral=True))
    _check("program", "max_pulses", max_pulses, positive)
    _check("program", "max_reads", max_reads, positive)
    _check("program", "tol", tol, positive)
    _check("program", "record_every", record_every, Interval(1, None, integral=True))
    _check("program", "mvm_inputs", mvm_inputs, Interval(1, None, integral=True))

    view = TileView(tile)
    target = np.array(target, dtype=np.float64)
    if target.shape != view.shape:
        raise ValueError(f"The 'target' parameter of program must have the tile's shape {view.shape}. "
                         f"Got shape {target.shape} instead.")
    if not np.isfinite(target).all():
        raise ValueError("The 'target' parameter of program must be finite. Got NaN or inf entries instead.")
    target.flags.writeable = False

    if oracle is None:
        if not hasattr(tile, "weights"):
            raise TypeError(f"{type(tile).__name__} has no 'weights'; pass oracle=callable returning the true weights.")
        oracle = lambda: tile.weights  # noqa: E731

    if isinstance(algorithm, str):
        algo = get_algorithm(algorithm, **options)
    elif callable(getattr(algorithm, "program", None)):
        if options:
            raise TypeError(f"Options {sorted(options)} apply only when 'algorithm' is a registry key; "
                            "configure the algorithm object instead.")
        algo = algorithm
    else:
        raise TypeError(f"The 'algorithm' parameter of program must be a registry key or an object "
                        f"with program(tile, target). Got {algorithm!r} instead.")
    name = str(getattr(algo, "name", type(algo).__name__))

    counters = getattr(tile, "counters", None)
    start = {k: float(counters[k]) if counters is not None and k in counters else 0.0 for k in COUNTERS}
    w0 = np.array(oracle(), dtype=np.float64)
    pulse_floor, cycle_floor = _floors(tile, target - w0)
    x_mvm = np.random.default_rng(0x5EED).standard_normal((mvm_inputs, view.shape[1]))
    metrics = _Metrics(target, x_mvm)

    rows: list[dict] = []
    wall = 0.0

    def record(iteration: int, w: np.ndarray, step: Step) -> None:
        row = dict(iteration=iteration, **metrics.full(w), err_observed=float(step.err_observed))
        row.update(_counts(tile, view, start))
        row.update(wall_s=wall, pulse_floor=pulse_floor, cycle_floor=cycle_floor)
        row["pulses_over_floor"] = row["pulses_full"] / pulse_floor if pulse_floor else math.nan
        row["cycles_over_floor"] = row["update_cycles"] / cycle_floor if cycle_floor else math.nan
        row.update(_scalar_extra(name, step.extra))
        rows.append(row)

    record(0, w0, Step())
    steps = iter(algo.program(view, target))
    stop, iteration, last = "max_iter", 0, None
    try:
        while iteration < max_iter:
            t0 = time.perf_counter()
            step = next(steps, None)
            wall += time.perf_counter() - t0
            if step is None:
                stop = "finished"
                break
            if not isinstance(step, Step):
                raise TypeError(f"{name} yielded {step!r}; algorithms yield progsim.program.Step objects.")
            iteration += 1
            w = np.asarray(oracle(), dtype=np.float64)
            costs = _counts(tile, view, start)
            reason = None
            if tol is not None and metrics.fro(w) <= tol:
                reason = "tol"
            elif max_pulses is not None and np.nansum([costs["pulses_full"], costs["pulses_single"]]) >= max_pulses:
                reason = "max_pulses"
            elif max_reads is not None and costs["reads"] >= max_reads:
                reason = "max_reads"
            last = (iteration, w, step)
            if reason or iteration % record_every == 0 or iteration == max_iter:
                record(iteration, w, step)
                last = None
            if reason:
                stop = reason
                break
    finally:
        close = getattr(steps, "close", None)
        if close is not None:
            close()
    if last is not None:
        record(*last)
    return ProgramResult(table=pd.DataFrame(rows), algorithm=name, stop=stop)
