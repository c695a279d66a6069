"""The benchmark script runs end to end and writes sensible tables (no timing asserted)."""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies"))

import bench_update  # noqa: E402


def test_bench_update_writes_its_tables(tmp_path):
    tables = bench_update.main(["--quick", "--no-peer", "--out", str(tmp_path)])
    table = tables["throughput"]
    assert set(table["half_select"]) == {"none", "v2"} and set(table["device"]) == {"ConstantStep", "SoftBounds"}
    saved = pd.read_parquet(tmp_path / "bench_update.parquet")
    assert len(saved) == 4
    # with V/2 every full pulse is also an event, and the disturbs come on top
    v2 = saved[saved.half_select == "v2"]
    assert (v2.events_per_s > v2.full_per_s).all()
    none = saved[saved.half_select == "none"]
    assert (none.events_per_s == none.full_per_s).all()
    per_call = pd.read_parquet(tmp_path / "per_call.parquet")
    # one row per batch (1, 2) and (op, dtype) in (update f64, forward f64, forward f32), all timed
    assert len(per_call) == 2 * 3 and (per_call.ours_us > 0).all()
    assert set(zip(per_call.op, per_call.dtype)) == {("update", "float64"), ("forward", "float64"),
                                                     ("forward", "float32")}
