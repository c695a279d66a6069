"""The programming runner: registry and plug-ins, the tile guard, budgets, costs and metrics."""

import importlib
import re
import sys
import textwrap
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import progsim_algorithms  # noqa: F401  (registers the built-ins in a source tree)
import progsim
from progsim import Crossbar, IO, devices, pulses
from progsim.programming import (
    COUNTERS, OracleAccessError, Step, TileView, algorithms_available, get_algorithm, program, register,
)
registry = importlib.import_module("progsim.programming.registry")

ROWS, COLS = 12, 8


def _tile(**kw):
    cfg = dict(device=devices.Ideal(), pulses=pulses.Stochastic(bl=31), io=IO(is_perfect=True), seed=3)
    cfg.update(kw)
    return Crossbar(ROWS, COLS, **cfg)


@pytest.fixture(scope="module")
def target():
    return np.random.default_rng(7).normal(0.0, 0.1, (ROWS, COLS))


@dataclass
class ColumnWriter:
    """A small exact algorithm for the runner tests: one-hot read, one-hot update, one pulse."""

    name: ClassVar[str] = "column-writer"
    use_pulse: bool = False

    def program(self, tile, target):
        n = tile.shape[1]
        j = 0
        while True:
            x = np.eye(n)[j % n]
            err = tile.forward(x) - target[:, j % n]
            tile.update(x, err, 1.0)
            if self.use_pulse:
                tile.pulse(np.array([0, 1]), np.array([j % n, j % n]), np.array([2, -3]))
            j += 1
            yield Step(float(np.linalg.norm(err)), {"column": j % n})


@dataclass
class Idle:
    """Touches nothing; ends by itself after ``steps`` steps."""

    name: ClassVar[str] = "idle"
    steps: int = 10**9

    def program(self, tile, target):
        for _ in range(self.steps):
            yield Step()


@dataclass
class Reader:
    """Reads the weights with ``read_weights(over_sampling=k)`` every step, writes nothing."""

    name: ClassVar[str] = "reader"
    over_sampling: int = 2

    def program(self, tile, target):
        while True:
            w = tile.read_weights(over_sampling=self.over_sampling)
            yield Step(float(np.linalg.norm(w - target)))


# ----------------------------------------------------------------------------- registry


def test_builtins_registered():
    for key in ("gdp", "gdp-batched", "svd", "svd-hs", "write-verify", "one-shot", "kalman-gdp", "kalman-svd"):
        assert key in algorithms_available()


def test_unknown_key_names_the_choices():
    with pytest.raises(ValueError, match="'algorithm' parameter of program must be one of .*'svd'"):
        get_algorithm("no-such-algorithm")


def test_the_error_names_a_register_that_exists():
    with pytest.raises(ValueError) as info:
        get_algorithm("no-such-algorithm")
    paths = re.findall(r"(progsim(?:\.\w+)*)\.register\(?", str(info.value))
    assert paths, str(info.value)
    for path in paths:
        assert getattr(importlib.import_module(path), "register") is register
    assert progsim.program is program and callable(progsim.program)


def test_register_refuses_a_taken_name_unless_replaced(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register("column-writer", ColumnWriter)
    register("column-writer", ColumnWriter)  # the same factory again is harmless
    with pytest.raises(ValueError, match="already registered"):
        register("column-writer", lambda: ColumnWriter())
    register("column-writer", lambda: ColumnWriter(use_pulse=True), replace=True)
    assert get_algorithm("column-writer").use_pulse


PLUGIN = '''
import numpy as np
from progsim.programming import Step


class Throwaway:
    """One-hot GDP with lr = 1: exact on an ideal tile."""

    name = "throwaway"

    def __init__(self, sweeps=3):
        self.sweeps = sweeps

    def program(self, tile, target):
        n = tile.shape[1]
        for _ in range(self.sweeps):
            x = np.eye(n)
            err = tile.forward(x) - target.T
            tile.update(x, err, 1.0)
            yield Step(float(np.linalg.norm(err)))
'''


def test_plugin_from_a_throwaway_package_is_found_and_runs(tmp_path, monkeypatch, target):
    pkg = tmp_path / "throwaway_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    dist = tmp_path / "throwaway_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: throwaway-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[progsim.algorithms]\nthrowaway = throwaway_plugin:Throwaway\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    importlib.invalidate_caches()
    try:
        assert "throwaway" in algorithms_available()
        result = program(_tile(), target, "throwaway", sweeps=15)
        assert result.algorithm == "throwaway" and result.stop == "finished"
        assert result.final.iteration == 15
        assert result.final.err_fro < 0.02
    finally:
        sys.modules.pop("throwaway_plugin", None)


# ----------------------------------------------------------------------------- the guard


def test_view_exposes_only_hardware_verbs_and_nominal_configs():
    xb = _tile()
    view = TileView(xb)
    assert view.shape == xb.shape
    assert view.device is xb.device and view.half_select is xb.half_select
    assert callable(view.pulse)
    for name in ("weights", "set_weights", "counters", "hidden_weights", "cells", "_w", "state_dict"):
        assert not hasattr(view, name)
        with pytest.raises(OracleAccessError, match="true state"):
            getattr(view, name)
    with pytest.raises(OracleAccessError):
        view.weights = np.zeros(xb.shape)


def test_an_algorithm_reaching_for_the_true_state_is_stopped(target):
    class Cheat:
        name = "cheat"

        def program(self, tile, target):
            tile.set_weights(target)
            yield Step()

    xb = _tile()
    with pytest.raises(OracleAccessError, match="'set_weights'"):
        program(xb, target, Cheat())
    assert np.all(xb.weights == 0)


def test_foreign_tile_needs_an_oracle_and_is_counted_by_the_view(target):
    tile = NumpyTile((ROWS, COLS))
    with pytest.raises(TypeError, match="oracle"):
        program(tile, target, ColumnWriter())
    result = program(tile, target, ColumnWriter(), max_iter=2 * COLS, oracle=lambda: tile._w)
    assert result.final.err_fro < 1e-12
    assert result.final.reads == result.final.update_cycles == 2 * COLS
    assert np.isnan(result.final.pulses_full) and np.isnan(result.final.err_floor)


class NumpyTile:
    """A minimal third-party tile: exact reads and writes, no counters, no configs."""

    def __init__(self, shape):
        self.shape = shape
        self._w = np.zeros(shape)

    def forward(self, x):
        return x @ self._w.T

    def update(self, x, d, lr):
        self._w -= lr * np.atleast_2d(d).T @ np.atleast_2d(x)

    def read_weights(self, method="eye", over_sampling=1):
        return self.forward(np.eye(self.shape[1])).T


def test_reads_of_a_third_party_tile_are_counted_and_budgeted(target):
    tile = NumpyTile((ROWS, COLS))
    result = program(tile, target, Reader(over_sampling=3), max_iter=5, oracle=lambda: tile._w)
    assert list(result.table.reads) == [3 * COLS * i for i in range(6)]
    result = program(tile, target, Reader(over_sampling=3), max_iter=100, max_reads=10 * COLS,
                     oracle=lambda: tile._w)
    assert result.stop == "max_reads" and result.final.iteration == 4  # 12 COLS >= 10 COLS > 9 COLS
    # on a Crossbar the view's tally of a read equals the crossbar's own count (no double count)
    xb = _tile()
    view = TileView(xb)
    before = xb.counters["reads"]
    view.read_weights(over_sampling=2)
    view.read_weights(method="lstsq")
    assert view.calls["reads"] == xb.counters["reads"] - before == 3 * COLS
    result = program(xb, target, Reader(over_sampling=2), max_iter=3)
    assert result.final.reads == 3 * 2 * COLS


def test_an_algorithm_that_ends_by_itself_is_finished(target):
    result = program(_tile(), target, Idle(steps=4), max_iter=10)
    assert result.stop == "finished" and result.final.iteration == 4 and len(result.table) == 5
    # ending by itself before the first step records the initial state only
    result = program(_tile(), target, Idle(steps=0), max_iter=10)
    assert result.stop == "finished" and list(result.table.iteration) == [0]
    # the budget wins when the algorithm would go on: max_iter, not finished
    assert program(_tile(), target, Idle(steps=4), max_iter=4).stop == "max_iter"
    # a built-in that ends by itself: write-verify on an exact tile, every cell within tolerance
    xb = _tile()
    result = program(xb, target, "write-verify", max_iter=50)
    assert result.stop == "finished" and result.final.iteration < 50
    assert np.abs(xb.weights - target).max() <= 1e-3 + 1e-12  # its own criterion: within one dw_min


# ----------------------------------------------------------------------------- budgets and costs


def test_max_iter():
    xb = _tile()
    t = np.random.default_rng(0).normal(0, 0.1, (ROWS, COLS))
    result = program(xb, t, ColumnWriter(), max_iter=5)
    assert result.final.iteration == 5 and result.stop == "max_iter"


@pytest.mark.parametrize("budget", ["max_pulses", "max_reads"])
def test_budgets_stop_runs(budget, target):
    limit = {"max_pulses": 3000, "max_reads": 5}[budget]
    result = program(_tile(), target, ColumnWriter(use_pulse=True), max_iter=10_000, **{budget: limit})
    assert result.stop == budget
    spent = result.table.pulses_full + result.table.pulses_single if budget == "max_pulses" else result.table.reads
    assert spent.iloc[-1] >= limit and spent.iloc[-2] < limit  # stops at the first step that reaches it


def test_tol_stops_on_the_oracle_error(target):
    result = program(_tile(), target, ColumnWriter(), max_iter=10_000, tol=0.05)
    assert result.stop == "tol"
    assert result.final.err_fro <= 0.05 < result.table.err_fro.iloc[-2]


def test_costs_add_up_to_the_crossbar_counters(target):
    xb = _tile()
    xb.update(np.ones(COLS), np.ones(ROWS) * 0.01, 0.1)  # costs before the run are not the run's
    before = xb.counters
    result = program(xb, target, ColumnWriter(use_pulse=True), max_iter=20)
    after = xb.counters
    for key in COUNTERS:
        assert result.final[key] == after[key] - before[key], key
    # the view's own tally of what passed through it agrees with the crossbar
    view = TileView(xb)
    algo = ColumnWriter(use_pulse=True).program(view, target)
    start = xb.counters
    for _ in range(7):
        next(algo)
    now = xb.counters
    view_counts = view.calls  # the runner's tally for tiles without counters
    assert view_counts["reads"] == now["reads"] - start["reads"] == 7
    assert view_counts["update_cycles"] == now["update_cycles"] - start["update_cycles"] == 7
    assert view_counts["pulses_single"] == now["pulses_single"] - start["pulses_single"] == 35


# ----------------------------------------------------------------------------- table and metrics


def test_table_columns_and_metrics(target):
    xb = _tile()
    result = program(xb, target, ColumnWriter(), max_iter=9, record_every=4)
    table = result.table
    for col in ("iteration", "err_fro", "err_spec", "err_nuc", "err_mvm", "err_observed", "err_floor", "err_excess",
                *COUNTERS, "wall_s", "compile_s", "pulse_floor", "cycle_floor", "pulses_over_floor",
                "cycles_over_floor", "column"):
        assert col in table.columns, col
    assert list(table.iteration) == [0, 4, 8, 9]
    first = table.iloc[0]
    # from W0 = 0 every relative error is exactly 1, whatever the norm
    for col in ("err_fro", "err_spec", "err_nuc", "err_mvm"):
        assert first[col] == pytest.approx(1.0), col
    assert first.pulse_floor == pytest.approx(np.abs(target).sum() / 1e-3)
    assert first.cycle_floor == pytest.approx(max(np.linalg.matrix_rank(target), np.abs(target).max() / 0.031))
    e = xb.weights - target
    final = result.final
    assert final.err_fro == pytest.approx(np.linalg.norm(e) / np.linalg.norm(target))
    assert final.err_spec == pytest.approx(np.linalg.norm(e, 2) / np.linalg.norm(target, 2))
    assert final.err_nuc == pytest.approx(np.linalg.norm(e, "nuc") / np.linalg.norm(target, "nuc"))
    assert final.pulses_over_floor == pytest.approx(final.pulses_full / first.pulse_floor)
    assert table.wall_s.is_monotonic_increasing
    assert (table.compile_s == first.compile_s).all() and first.compile_s >= 0


def test_err_floor_is_the_part_no_algorithm_can_remove():
    """err_floor from each cell's own bounds, against a cell-by-cell loop; err_excess = err_fro - err_floor."""
    xb = Crossbar(ROWS, COLS, device=devices.ConstantStep(w_max_dtod=0.5, w_min_dtod=0.5), seed=2)
    cells = xb.cells
    t = np.random.default_rng(4).uniform(-0.8, 0.8, (ROWS, COLS))
    outside = 0.0
    for i in range(ROWS):
        for j in range(COLS):
            outside += max(t[i, j] - cells.w_max[i, j], 0.0) ** 2 + max(cells.w_min[i, j] - t[i, j], 0.0) ** 2
    floor = np.sqrt(outside) / np.linalg.norm(t)
    assert floor > 0.05  # the target asks for more than some cells hold
    result = program(xb, t, ColumnWriter(), max_iter=3)
    np.testing.assert_allclose(result.table.err_floor, floor, rtol=1e-12)
    np.testing.assert_allclose(result.table.err_excess, result.table.err_fro - floor)
    # the best state the cells allow has no excess
    xb.set_weights(t)
    assert program(xb, t, Idle(), max_iter=3).final.err_excess == pytest.approx(0.0, abs=1e-12)


def test_warm_up_leaves_the_tile_alone_and_is_recorded_apart(target):
    xb = _tile(device=devices.ConstantStep(), io=IO())
    xb.set_weights(target)
    before, counters = xb.weights, xb.counters
    result = program(xb, target, Idle(), max_iter=3)
    np.testing.assert_array_equal(xb.weights, before)
    assert xb.counters == counters
    assert result.final.compile_s > 0 and result.final.wall_s >= 0
    assert program(xb, target, Idle(), max_iter=3, warm=False).final.compile_s == 0


def test_step_extra_may_not_shadow_runner_columns(target):
    class Shadow:
        name = "shadow"

        def program(self, tile, target):
            yield Step(0.0, {"reads": 0})

    with pytest.raises(ValueError, match="'reads'"):
        program(_tile(), target, Shadow())


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("param, value", [("max_iter", 0), ("max_iter", 2.5), ("max_pulses", -1),
                                          ("max_reads", 0), ("tol", float("nan")), ("record_every", 0)])
def test_bad_runner_parameters(param, value, target):
    with pytest.raises(ValueError, match=f"The '{param}' parameter of program must be"):
        program(_tile(), target, "gdp", **{param: value})


def test_bad_options_name_the_option_and_the_fix(target):
    with pytest.raises(ValueError, match=r"^The 'lr' parameter of gdp must be .*> 0.* or None\. Got -1 instead\.$"):
        program(_tile(), target, "gdp", lr=-1)
    with pytest.raises(TypeError, match="gdp has no option 'learning_rate'; its options are"):
        program(_tile(), target, "gdp", learning_rate=0.1)
    with pytest.raises(TypeError, match="apply only when 'algorithm' is a registry key"):
        program(_tile(), target, ColumnWriter(), lr=0.1)
    with pytest.raises(ValueError, match="'target' parameter of program must have the tile's shape"):
        program(_tile(), target.T, "gdp")


def test_the_distribution_lists_every_package_and_installs_algorithms_under_our_name():
    """pyproject lists packages explicitly (progsim_algorithms lives in the folder algorithms/):
    a new progsim subpackage that is not listed would be missing from the wheel."""
    import pathlib
    import tomllib

    root = pathlib.Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    setuptools = config["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(root).parts) for p in (root / "progsim").rglob("__init__.py")}
    assert on_disk <= set(setuptools["packages"]), on_disk - set(setuptools["packages"])
    assert setuptools["package-dir"] == {"progsim_algorithms": "algorithms"}
    assert "algorithms" not in setuptools["packages"]
    targets = config["project"]["entry-points"]["progsim.algorithms"].values()
    assert all(t.startswith("progsim_algorithms.") for t in targets)
