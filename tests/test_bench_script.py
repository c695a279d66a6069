"""The benchmark script runs end to end and writes a sensible table (no timing asserted)."""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies"))

import bench_update  # noqa: E402


def test_bench_update_writes_its_table(tmp_path):
    table = bench_update.main(["--sizes", "16", "--seconds", "0.001", "--threads", "1", "--no-peer",
                               "--out", str(tmp_path)])
    assert set(table["half_select"]) == {"none", "v2"} and set(table["device"]) == {"ConstantStep", "SoftBounds"}
    saved = pd.read_parquet(tmp_path / "bench_update.parquet")
    assert len(saved) == 4
    # with V/2 every full pulse is also an event, and the disturbs come on top
    v2 = saved[saved.half_select == "v2"]
    assert (v2.events_per_s > v2.full_per_s).all()
    none = saved[saved.half_select == "none"]
    assert (none.events_per_s == none.full_per_s).all()
