"""The benchmark script runs end to end and writes sensible tables (no timing asserted)."""

import sys
from pathlib import Path

import numpy as np
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


def test_bench_nn_trains_every_seed_and_reports_the_spread(tmp_path):
    # One epoch of the digits MLP, two seeds, torch, progsim and the floor (aihwkit left out: its
    # own tests cover it): one row per framework, the seeds' mean accuracy (above chance, 0.1, after
    # one epoch at lr 0.1) and its standard error, which needs two seeds to exist.
    import subprocess
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, str(root / "studies" / "bench_nn.py"), str(tmp_path), "--epochs", "1",
                    "--seeds", "2", "--threads", "1", "--models", "mlp", "--frameworks", "torch", "progsim",
                    "torch-floor"],
                   check=True, capture_output=True, text=True, cwd=root)
    table = pd.read_csv(tmp_path / "bench_nn.csv")
    assert list(table.framework) == ["torch", "progsim", "torch-floor"] and (table.seeds == 2).all()
    floor = table.iloc[2]
    table = table.iloc[:2]
    # the floor's layers return one constant output whatever the input: one class for every
    # test image, so its accuracy is that class's share of the (stratified) test set, about 1/10
    assert floor.test_accuracy < 0.2 and floor.s_per_epoch > 0
    assert (table.test_accuracy > 0.5).all() and (table.test_accuracy <= 1).all()
    assert (table.accuracy_sem >= 0).all() and (table.s_per_epoch > 0).all()
    assert (table.accuracy_sem * 2 ** 0.5 - table.accuracy_std).abs().max() < 1e-12  # sem = std / sqrt(2)
    # the paired difference, recomputed from the per-seed table by hand
    seeds = pd.read_csv(tmp_path / "bench_nn_seeds.csv")
    assert len(seeds) == 6 and sorted(seeds.seed.unique()) == [0, 1]
    acc = {(r.framework, r.seed): r.test_accuracy for r in seeds.itertuples()}
    diffs = [acc["progsim", s] - acc["torch", s] for s in (0, 1)]
    torch_row, progsim_row = table.iloc[0], table.iloc[1]
    assert abs(torch_row.progsim_minus - (diffs[0] + diffs[1]) / 2) < 1e-12
    assert abs(torch_row.progsim_minus_sem - abs(diffs[0] - diffs[1]) / 2) < 1e-12  # std of 2 / sqrt(2)
    assert np.isnan(progsim_row.progsim_minus)
