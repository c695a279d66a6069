"""Throughput of the study harness: trials per second on one and two workers, local and Dask.

The same small programming study (``--trials`` trials: svd with Hadamard reads on a 64x64
ConstantStep tile, 100 iterations, each trial its own seed) runs four times into fresh
directories: local processes and a Dask LocalCluster, with 1 and 2 workers (one numba
thread each). Printed per run: the wall time including worker start-up, and the steady
rate ``(N - 1) / (t_N - t_1)`` between the first and the last trial's completion, which
leaves out start-up (spawning workers, importing, loading cached kernels); the speed-up
and the scaling efficiency (speed-up / workers) compare steady rates with the 1-worker
run of the same runner. Target: 2 workers >= 1.8x one, on an otherwise idle machine.

Usage: ``python studies/bench_study.py [--trials N] [--runners local dask]``
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np
import pandas as pd

# Dask and spawned workers import this function by module name: keep its folder importable
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from progsim.study import loads_study, programming_trial, run_study  # noqa: E402

STUDY = """
[study]
name = "bench"
seeds = {trials}

[tile]
shape = [64, 64]
device = "ConstantStep"
io = "default"

[target]
kind = "uniform"
max_abs = 0.3

[algorithms.svd]
read = "hadamard"
max_iter = 100
record_every = 10
"""


def timed_trial(params):
    """The programming trial, stamped with the wall-clock time at which it finished."""
    return programming_trial(params).assign(finished_at=time.time())


def measure(study, runner: str, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = run_study(study, trial_fn=timed_trial, out=out, workers=workers,
                           dask="local" if runner == "dask" else None, progress=False)
        wall = time.perf_counter() - t0
    done = np.sort(result.iterations.groupby("trial_id").finished_at.max().to_numpy())
    n = len(done)
    return dict(runner=runner, workers=workers, trials=n, failed=result.n_failed, wall_s=wall,
                trials_per_s=n / wall, steady_trials_per_s=(n - 1) / (done[-1] - done[0]))


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--runners", nargs="+", choices=("local", "dask"), default=["local", "dask"])
    args = parser.parse_args(argv)
    study = loads_study(STUDY.format(trials=args.trials), name="bench")
    rows = []
    for runner in args.runners:
        for workers in (1, 2):
            rows.append(measure(study, runner, workers))
            print(f"{runner:5s} {workers} worker(s): {rows[-1]['steady_trials_per_s']:.3g} trials/s", flush=True)
    table = pd.DataFrame(rows)
    one = table[table.workers == 1].set_index("runner").steady_trials_per_s
    table["speedup"] = table.steady_trials_per_s / table.runner.map(one)
    table["efficiency"] = table.speedup / table.workers
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return table


if __name__ == "__main__":
    main()
