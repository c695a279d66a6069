"""The programming runner: registry and plug-ins, the tile guard, budgets, costs and metrics."""

import importlib
import sys
import textwrap
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import algorithms  # noqa: F401  (registers the built-ins in a source tree)
from progsim import Crossbar, IO, devices, pulses
from progsim.program import (
    COUNTERS, OracleAccessError, Step, TileView, algorithms_available, get_algorithm, program, register,
)
prog = importlib.import_module("progsim.program")  # the module: progsim.program is the function

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


# ----------------------------------------------------------------------------- registry


def test_builtins_registered():
    for key in ("gdp", "gdp-batched", "svd", "svd-hs", "write-verify", "one-shot", "kalman-gdp", "kalman-svd"):
        assert key in algorithms_available()


def test_unknown_key_names_the_choices():
    with pytest.raises(ValueError, match="'algorithm' parameter of program must be one of .*'svd'"):
        get_algorithm("no-such-algorithm")


def test_register_refuses_a_taken_name_unless_replaced(monkeypatch):
    monkeypatch.setattr(prog, "_REGISTRY", dict(prog._REGISTRY))
    register("column-writer", ColumnWriter)
    register("column-writer", ColumnWriter)  # the same factory again is harmless
    with pytest.raises(ValueError, match="already registered"):
        register("column-writer", lambda: ColumnWriter())
    register("column-writer", lambda: ColumnWriter(use_pulse=True), replace=True)
    assert get_algorithm("column-writer").use_pulse


PLUGIN = '''
import numpy as np
from progsim.program import Step


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
    monkeypatch.setattr(prog, "_REGISTRY", dict(prog._REGISTRY))
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
    class NumpyTile:
        def __init__(self, shape):
            self.shape = shape
            self._w = np.zeros(shape)

        def forward(self, x):
            return x @ self._w.T

        def update(self, x, d, lr):
            self._w -= lr * np.atleast_2d(d).T @ np.atleast_2d(x)

        def read_weights(self, **kw):
            return self._w.copy()

    tile = NumpyTile((ROWS, COLS))
    with pytest.raises(TypeError, match="oracle"):
        program(tile, target, ColumnWriter())
    result = program(tile, target, ColumnWriter(), max_iter=2 * COLS, oracle=lambda: tile._w)
    assert result.final.err_fro < 1e-12
    assert result.final.reads == result.final.update_cycles == 2 * COLS
    assert np.isnan(result.final.pulses_full)


# ----------------------------------------------------------------------------- budgets and costs


def test_max_iter_and_finished():
    xb = _tile()
    t = np.random.default_rng(0).normal(0, 0.1, (ROWS, COLS))
    assert program(xb, t, ColumnWriter(), max_iter=5).final.iteration == 5


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
    for col in ("iteration", "err_fro", "err_spec", "err_nuc", "err_mvm", "err_observed", *COUNTERS, "wall_s",
                "pulse_floor", "cycle_floor", "pulses_over_floor", "cycles_over_floor", "column"):
        assert col in table.columns, col
    assert list(table.iteration) == [0, 4, 8, 9]
    first = table.iloc[0]
    sv = np.linalg.svd(target, compute_uv=False)
    assert first.err_fro == pytest.approx(1.0)
    assert first.err_spec == pytest.approx(sv[0]) and first.err_nuc == pytest.approx(sv.sum())
    assert first.err_mvm == pytest.approx(1.0)
    assert first.pulse_floor == pytest.approx(np.abs(target).sum() / 1e-3)
    assert first.cycle_floor == pytest.approx(max(np.linalg.matrix_rank(target), np.abs(target).max() / 0.031))
    e = xb.weights - target
    assert result.final.err_fro == pytest.approx(np.linalg.norm(e) / np.linalg.norm(target))
    assert result.final.pulses_over_floor == pytest.approx(result.final.pulses_full / first.pulse_floor)
    assert table.wall_s.is_monotonic_increasing


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
