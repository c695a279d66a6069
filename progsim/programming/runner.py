"""The run loop: drive an algorithm on a tile, measure what it may not see, enforce budgets.

:func:`program` measures, after every step, the oracle errors of the true state
(:mod:`progsim.programming.metrics`), the tile's cost counters and the wall time, and
returns a :class:`ProgramResult` whose ``table`` has one row per iteration.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from progsim._validate import Interval, OrNone, check_value
from progsim.crossbar import Crossbar
from progsim.programming.metrics import METRICS, Metrics, bounds_floor, cost_floors
from progsim.programming.protocols import Step
from progsim.programming.registry import get_algorithm
from progsim.programming.view import TileView

DEFAULT_MAX_ITER = 200
COUNTERS = ("update_cycles", "pulses_full", "pulses_half", "pulses_single", "reads")
_RUNNER_COLUMNS = {"iteration", "wall_s", "compile_s", "pulse_floor", "cycle_floor", "pulses_over_floor",
                   "cycles_over_floor"}


@dataclass
class ProgramResult:
    """The outcome of :func:`program`: the iteration table and why the run stopped.

    ``stop`` is one of ``"max_iter"``, ``"max_pulses"``, ``"max_reads"``, ``"tol"`` or
    ``"finished"`` (the algorithm ended by itself); ``max_iter`` the iteration budget the
    run had.
    """

    table: pd.DataFrame
    algorithm: str
    stop: str
    max_iter: int

    @property
    def final(self) -> pd.Series:
        return self.table.iloc[-1]


def warm_up(tile) -> float:
    """Compile a Crossbar's kernels on a throwaway copy of its configuration; return the seconds.

    The copy has the tile's shape, configs, dtype and seed and runs a forward of one and
    of two vectors, an update of one and of two mixed-sign cycles and one single-device
    pulse, so the run's own calls find their kernels compiled (or loaded from the cache).
    The tile itself is not touched. Other tiles are not warmed (0 s).
    """
    if not isinstance(tile, Crossbar):
        return 0.0
    t0 = time.perf_counter()
    rows, cols = tile.shape
    copy = Crossbar(rows, cols, device=tile.device, pulses=tile.pulses, half_select=tile.half_select,
                    io=tile.io, io_backward=tile.io_backward, seed=tile.seed, dtype=tile.dtype)
    x = np.where(np.arange(cols) % 2 == 0, 1.0, -1.0)
    d = np.where(np.arange(rows) % 2 == 0, 0.01, -0.01)
    for b in (1, 2):
        copy.forward(np.tile(x, (b, 1)))
        copy.update(np.tile(x, (b, 1)), np.tile(d, (b, 1)), 0.01)
    copy.pulse(np.array([0]), np.array([0]), np.array([1]))
    return time.perf_counter() - t0


def _counts(tile, view: TileView, start: dict) -> dict:
    counters = getattr(tile, "counters", None)
    if counters is None:
        own = view.calls
        return dict(update_cycles=own["update_cycles"], pulses_full=math.nan, pulses_half=math.nan,
                    pulses_single=own["pulses_single"], reads=own["reads"])
    return {k: (float(counters[k]) - start[k]) if k in counters else math.nan for k in COUNTERS}


def _scalar_extra(algo_name: str, extra: Mapping[str, Any]) -> dict:
    reserved = set(COUNTERS) | set(METRICS) | _RUNNER_COLUMNS
    for key, value in extra.items():
        if key in reserved:
            raise ValueError(f"{algo_name} logged {key!r} in Step.extra; that column belongs to the runner.")
        if not (value is None or isinstance(value, (numbers.Number, str, np.generic))):
            raise TypeError(f"{algo_name} logged {key!r} = {type(value).__name__} in Step.extra; log scalars only.")
    return dict(extra)


def _algorithm(algorithm, options):
    if isinstance(algorithm, str):
        return get_algorithm(algorithm, **options)
    if callable(getattr(algorithm, "program", None)):
        if options:
            raise TypeError(f"Options {sorted(options)} apply only when 'algorithm' is a registry key; "
                            "configure the algorithm object instead.")
        return algorithm
    raise TypeError(f"The 'algorithm' parameter of program must be a registry key or an object "
                    f"with program(tile, target). Got {algorithm!r} instead.")


def program(
    tile,
    target,
    algorithm="svd",
    max_iter: int | None = None,
    max_pulses: float | None = None,
    max_reads: float | None = None,
    tol: float | None = None,
    *,
    oracle: Callable[[], np.ndarray] | None = None,
    record_every: int = 1,
    mvm_inputs: int = 32,
    warm: bool = True,
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
        ``max_iter`` None: the algorithm's own ``max_iter`` attribute (the run length its
        author suggests at its defaults), else ``DEFAULT_MAX_ITER``. Checked after every step: the run ends at the first iteration at which the
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
    warm : bool
        Compile the tile's kernels before the clock starts (:func:`warm_up`), so that
        ``wall_s`` is the algorithm's own time and ``compile_s`` the compilation's.

    Returns
    -------
    ProgramResult
        ``table``: one row per recorded iteration, iteration 0 being the initial state.
        Columns: ``iteration``; the errors of :mod:`progsim.programming.metrics`, all
        relative (``err_fro``, ``err_spec``, ``err_nuc``, ``err_mvm``, ``err_floor``,
        ``err_excess``) and ``err_observed`` (the algorithm's own estimate); the costs
        ``update_cycles``, ``pulses_full``, ``pulses_half``, ``pulses_single``, ``reads``
        (forward vectors), counted from the start of this run; ``wall_s``, the seconds
        spent in the algorithm's steps so far (the oracle's metrics excluded);
        ``compile_s``, the seconds of the warm-up before the run (constant); the floors
        ``pulse_floor = sum|T - W0| / dw_min`` and ``cycle_floor = max(rank(T - W0),
        max|T - W0| / (bl dw_min))`` from the tile's nominal ``dw_min`` and ``bl``, and
        ``pulses_over_floor``, ``cycles_over_floor``; then the algorithm's ``Step.extra``.
    """
    positive = OrNone(Interval(0, None, closed="neither"))
    check_value("program", "max_iter", max_iter, OrNone(Interval(1, None, integral=True)))
    check_value("program", "max_pulses", max_pulses, positive)
    check_value("program", "max_reads", max_reads, positive)
    check_value("program", "tol", tol, positive)
    check_value("program", "record_every", record_every, Interval(1, None, integral=True))
    check_value("program", "mvm_inputs", mvm_inputs, Interval(1, None, integral=True))

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

    algo = _algorithm(algorithm, options)
    name = str(getattr(algo, "name", type(algo).__name__))
    if max_iter is None:
        max_iter = getattr(algo, "max_iter", DEFAULT_MAX_ITER)
        check_value(name, "max_iter", max_iter, Interval(1, None, integral=True))
    compile_s = warm_up(tile) if warm else 0.0

    counters = getattr(tile, "counters", None)
    start = {k: float(counters[k]) if counters is not None and k in counters else 0.0 for k in COUNTERS}
    w0 = np.array(oracle(), dtype=np.float64)
    pulse_floor, cycle_floor = cost_floors(tile, target - w0)
    x_mvm = np.random.default_rng(0x5EED).standard_normal((mvm_inputs, view.shape[1]))
    metrics = Metrics(target, x_mvm, bounds_floor(tile, target))

    rows: list[dict] = []
    wall = 0.0

    def record(iteration: int, w: np.ndarray, step: Step) -> None:
        row = dict(iteration=iteration, **metrics.full(w), err_observed=float(step.err_observed))
        row.update(_counts(tile, view, start))
        row.update(wall_s=wall, compile_s=compile_s, pulse_floor=pulse_floor, cycle_floor=cycle_floor)
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
                raise TypeError(f"{name} yielded {step!r}; algorithms yield progsim.programming.Step objects.")
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
    return ProgramResult(table=pd.DataFrame(rows), algorithm=name, stop=stop, max_iter=int(max_iter))
