"""The study harness: resuming after SIGKILL, local = Dask, failures recorded, bad files named.

Tiles are 8x6 and studies a dozen trials so that the file runs in well under a minute.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from progsim.study import (expand_grid, load_study, loads_study, make_target, plot_results, run_study,
                           seed_sequence)
from progsim.study.plots import summary_table

ROOT = pathlib.Path(__file__).resolve().parents[1]

SMALL = """
[study]
name = "small"
seeds = 3
tol = 0.3

[tile]
shape = [8, 6]
device = ["ConstantStep", "Ideal"]
pulses = "Stochastic"
io = "default"

[target]
rank = 2
max_abs = 0.3

[algorithms.gdp]
batch_size = [1, 4]
max_iter = 40
record_every = 4

[algorithms.svd]
max_iter = 10
"""


TIMINGS = ("wall_s", "compile_s")


def without_wall_time(frame: pd.DataFrame) -> pd.DataFrame:
    # wall and compile seconds measure the machine (its load, which worker compiled or
    # loaded the kernels), not the trial: the only outputs that are not a function of the
    # trial's parameters, so they are left out of the equality
    return frame.drop(columns=[c for c in frame.columns if c in TIMINGS])


def assert_same_tables(a, b) -> None:
    for x, y, keys in ((a.iterations, b.iterations, ["trial_id", "iteration"]), (a.trials, b.trials, ["trial_id"])):
        x = without_wall_time(x).sort_values(keys, ignore_index=True)
        y = without_wall_time(y).sort_values(keys, ignore_index=True)
        pdt.assert_frame_equal(x, y)


@pytest.fixture(scope="module")
def small_study():
    return loads_study(SMALL, name="small")


@pytest.fixture(scope="module")
def reference(small_study, tmp_path_factory):
    """The uninterrupted run, in this process."""
    return run_study(small_study, out=tmp_path_factory.mktemp("reference"), workers=0, progress=False)


def test_reference_run_has_every_trial(small_study, reference):
    n = len(small_study.trials())
    assert n == (2 + 1) * 2 * 3  # (gdp x 2 batch sizes + svd) x 2 devices x 3 seeds
    assert len(reference.trials) == n and (reference.trials.status == "ok").all()
    # iteration rows: gdp records 0, 4, ..., 40 (11 rows), svd 0..10 (11 rows)
    assert len(reference.iterations) == n * 11
    assert list(reference.iterations.columns[:3]) == ["trial_id", "algorithm", "device"]
    assert json.loads((reference.out / "study.json").read_text())["tile"]["shape"] == [8, 6]


def test_killed_study_resumes_to_the_uninterrupted_tables(small_study, reference, tmp_path):
    study_file = tmp_path / "small.toml"
    study_file.write_text(SMALL)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "progsim", "study", str(study_file), "--out", str(out),
                             "--workers", "1", "--no-progress", "--no-plot"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    trials_dir = out / "trials"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if trials_dir.is_dir() and len(list(trials_dir.glob("*.parquet"))) >= 2:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker process, as kill -9 would
        proc.wait()
    written = len(list(trials_dir.glob("*.parquet")))
    assert proc.returncode == -signal.SIGKILL
    assert 2 <= written < len(small_study.trials()), "the kill must land mid-study"

    resumed = run_study(small_study, out=out, workers=1, progress=False)
    assert sorted(resumed.trials.trial_id) == sorted(reference.trials.trial_id)
    assert_same_tables(resumed, reference)
    assert not list(trials_dir.glob(".*")), "no temporary files left behind"


def test_dask_local_cluster_gives_the_local_tables(small_study, reference, tmp_path):
    pytest.importorskip("distributed")
    result = run_study(small_study, out=tmp_path, dask="local", workers=2, progress=False)
    assert_same_tables(result, reference)


def test_summary_and_figure_from_the_tables(reference):
    summary = plot_results(reference.out, echo=False)
    for name in ("summary.csv", "summary.md", "convergence.png"):
        assert (reference.out / name).stat().st_size > 0
    # one row per device x variant; the median is over the three seeds' final errors
    assert len(summary) == 2 * 3
    t = reference.trials
    expected = t[(t.algorithm == "svd") & (t.device == "Ideal")].err_fro.median()
    row = summary[(summary.variant == "svd") & (summary.condition == "device=Ideal")]
    assert row.final_err_fro.item() == pytest.approx(expected)
    assert set(summary.variant) == {"gdp batch_size=1", "gdp batch_size=4", "svd"}


# --------------------------------------------------------------------------- any trial function

CALLS = []


def decay_trial(params):
    """err_fro = (1 - rate)^k exactly; rate < 0 raises (a failing trial)."""
    CALLS.append(params["rate"])
    if params["rate"] < 0:
        raise ValueError(f"rate must be >= 0, got {params['rate']}")
    noise = np.random.default_rng(seed_sequence(params)).uniform(size=params["steps"] + 1)
    k = np.arange(params["steps"] + 1)
    return pd.DataFrame({"iteration": k, "err_fro": (1 - params["rate"]) ** k, "draw": noise})


def test_trial_function_failures_recorded_and_finished_trials_skipped(tmp_path):
    grid = {"rate": [0.5, -1.0, 0.2], "steps": 12, "seed": [0, 1]}
    CALLS.clear()
    result = run_study(grid, trial_fn=decay_trial, out=tmp_path, workers=0, tol=0.1, progress=False)
    assert len(CALLS) == 6 and result.n_failed == 2
    failed = result.trials[result.trials.status == "failed"]
    assert set(failed.rate) == {-1.0} and set(failed.error_type) == {"ValueError"}
    assert failed.error_message.str.contains("rate must be >= 0").all()
    ok = result.trials[result.trials.status == "ok"]
    for rate, group in ok.groupby("rate"):
        # first k with (1 - rate)^k <= 0.1
        assert (group.iterations_to_tol == math.ceil(math.log(0.1) / math.log(1 - rate))).all()
        assert group.converged.all()
    # the seeds give different draws, the same seed the same draws whatever the rate
    it = result.iterations
    d = {(r.rate, r.seed): r.draw for r in it[it.iteration == 3].itertuples()}
    assert d[(0.5, 0)] == d[(0.2, 0)] != d[(0.5, 1)]

    again = run_study(grid, trial_fn=decay_trial, out=tmp_path, workers=0, tol=0.1, progress=False)
    assert len(CALLS) == 6, "a re-run skips finished (and failed) trials"
    assert_same_tables(again, result)
    run_study(grid, trial_fn=decay_trial, out=tmp_path, workers=0, tol=0.1, progress=False, retry_failed=True)
    assert CALLS[6:] == [-1.0, -1.0]


def test_parameters_come_first_whichever_trial_brings_them(tmp_path):
    # the second grid's parameter must not land after the first trial's measured columns
    grid = [{"rate": 0.5, "steps": 2}, {"rate": 0.5, "steps": 2, "extra": "x"}]
    result = run_study(grid, trial_fn=decay_trial, out=tmp_path, workers=0, tol=0.3, progress=False)
    params = ["trial_id", "rate", "steps", "study_seed", "extra"]
    assert list(result.trials.columns[:6]) == params + ["status"]
    assert list(result.iterations.columns[:6]) == params + ["iteration"]


def numba_threads_trial(params):
    import numba

    return [{"iteration": 0, "threads": numba.get_num_threads()}]


def test_each_trial_runs_numba_on_the_asked_threads(tmp_path):
    import numba

    before = numba.get_num_threads()
    try:
        for asked in (1, 2):
            result = run_study({"asked": asked}, trial_fn=numba_threads_trial, out=tmp_path / str(asked),
                               workers=0, numba_threads=asked, progress=False)
            assert result.trials.threads.item() == min(asked, numba.config.NUMBA_NUM_THREADS)
    finally:
        numba.set_num_threads(before)


def test_trial_function_must_be_importable(tmp_path):
    with pytest.raises(TypeError, match="module-level function"):
        run_study({"a": 1}, trial_fn=lambda p: [p], out=tmp_path, workers=0)


def test_grid_expansion_order_and_union():
    assert expand_grid({"a": [1, 2], "b": "x"}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert expand_grid([{"a": 1}, {"a": [1, 3]}]) == [{"a": 1}, {"a": 3}]
    with pytest.raises(TypeError, match="'b' parameter of the study grid must be a scalar"):
        expand_grid({"b": [{"x": 1}]})


def test_targets_have_their_rank_and_scale():
    rng = np.random.default_rng(3)
    for kind in ("normal", "uniform"):
        t = make_target(kind, 12, 9, 3, 0.25, rng)
        assert np.linalg.matrix_rank(t) == 3 and np.abs(t).max() == pytest.approx(0.25)


# --------------------------------------------------------------------------- bad study files

BAD = [
    ("[study]\nname='bad'\nspeed = 1\n[algorithms.svd]\n", "The 'study.speed' key of study 'bad' is unknown"),
    ("[tiles]\n[algorithms.svd]\n", "The 'tiles' key of study 'study' is unknown"),
    ("[tile]\nstrength = [0.1, 2.0]\n[algorithms.svd]\n",
     "The 'tile.strength[1]' parameter of study 'study' must be in the range [0, 1]. Got 2.0 instead."),
    ("[tile]\ndevice = {model = 'ConstantStep', dw_min = -0.1}\n[algorithms.svd]\n",
     "The 'tile.device.dw_min' parameter of study 'study' must be > 0. Got -0.1 instead."),
    ("[tile]\ndevice = {model = 'ConstantStep', dw_mn = 0.1}\n[algorithms.svd]\n", "'tile.device.dw_mn' key"),
    ("[tile]\ndevice = 'memristor'\n[algorithms.svd]\n", "The 'tile.device' parameter"),
    ("[tile]\nshape = [8]\n[algorithms.svd]\n", "The 'tile.shape' parameter"),
    ("[tile]\npulses = 'Ideal'\nhalf_select = 'v2'\n[algorithms.svd]\n", "The 'tile.half_select' parameter"),
    ("[tile]\nshape = [8, 6]\n[target]\nrank = 7\n[algorithms.svd]\n", "The 'target.rank' parameter"),
    ("[algorithms.sdv]\n", "The 'algorithms.sdv' parameter"),
    ("[algorithms.gdp]\nlr = -1.0\n", "The 'algorithms.gdp.lr' parameter of study 'study' must be"),
    ("[algorithms.gdp]\nbatch = 4\n", "The 'algorithms.gdp.batch' key of study 'study' is unknown"),
    ("[algorithms.gdp]\nseed = 4\n", "The 'algorithms.gdp.seed' parameter"),
    ("[algorithms.kalman-svd]\nreed = 4\n", "'algorithms.kalman-svd' entry"),
    ("[[algorithms.gdp]]\nmax_iter = 0\n", "The 'algorithms.gdp.max_iter' parameter"),
    ("[study]\nseeds = 0\n[algorithms.svd]\n", "The 'study.seeds' parameter"),
    ("[study]\n", "The 'algorithms' parameter"),
    ("[study\n", "not valid TOML"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_bad_study_files_name_the_key(text, message):
    with pytest.raises(ValueError) as info:
        loads_study(text)
    assert message in str(info.value)


def test_cli_reports_a_bad_file_and_exits_2(tmp_path, capsys):
    from progsim.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[tile]\nprob = -1\n[algorithms.svd]\n")
    assert main(["study", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "The 'tile.prob' parameter of study 'bad' must be in the range [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "o").exists(), "nothing runs before the file is checked"


@pytest.mark.parametrize("path", sorted((ROOT / "studies").glob("*.toml")), ids=lambda p: p.name)
def test_project_study_files_are_valid(path):
    study = load_study(path)
    assert study.trials() and study.name == path.stem


def test_warmup_compiles_the_configured_kernels_and_rejects_unknown_devices(capsys):
    from progsim.cli import main

    # `progsim warmup` must leave compiled (hence cached) the one-call update of every
    # half-selection mode, the general kernel that MeanCount takes and the single-pulse
    # kernel of each device it names; an unknown device is a usage error that names it.
    from progsim import _kernels, devices
    from progsim.halfselect import MODE_NONE, MODE_V2, MODE_V3

    assert main(["warmup", "--devices", "ConstantStep"]) == 0
    out = capsys.readouterr().out
    assert "ConstantStep v3 update (MeanCount)" in out and "read_weights" in out
    model = devices.ConstantStep.model
    for code in (MODE_NONE, MODE_V2, MODE_V3):
        assert _kernels._KERNELS[("stochastic", model, code)].signatures
    assert _kernels._KERNELS[("update", model, False, False)].signatures  # general, serial
    assert _kernels._KERNELS[("single", model)].signatures
    from progsim import _config, periphery

    assert periphery._read.signatures and periphery._read_blocked.signatures  # the forward's two reads
    if _config.num_threads() > 1:
        assert periphery._read_blocked_parallel.signatures
    from progsim.nn._patches import _patch_pass, _rows_to_channels

    assert {str(sig[0].dtype) for sig in _patch_pass.signatures} >= {"float32", "float64"}  # the convolutions' patches
    assert {str(sig[2].dtype) for sig in _rows_to_channels.signatures} >= {"float32", "float64"}  # the layers' outputs
    assert main(["warmup", "--devices", "Bogus"]) == 2
    err = capsys.readouterr().err
    assert "'devices' parameter of warmup" in err and "Bogus" in err
