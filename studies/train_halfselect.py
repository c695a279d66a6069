"""Training under half-selection disturb: the digits MLP and CNN on analog tiles with V/2 and V/3
biasing at several disturb strengths (what no peer simulator models).

Every analog layer uses the default ConstantStep device and stochastic pulses; during each
update cycle the half-selected cells (V/2: on a firing row or column only; V/3: also the cells
on neither line, in the opposite direction) move by ``strength`` times a device step. Strength
0 is the ideal threshold device, identical for V/2 and V/3: it is trained once per seed and
reported under both modes. Trials are pure functions of (model, mode, strength, seed) and run
under the study harness (``progsim.study.run_study`` with this module's ``trial``): each
finished trial is written at once under ``OUT/trials``, so an interrupted run resumes where
it stopped, and ``--dask`` spreads the trials over a Dask cluster.

Writes ``OUT/train_halfselect.parquet`` (and ``.csv``): one row per (model, mode, strength,
seed, epoch) with the test accuracy, the training seconds and the pulse counts; and
``OUT/train_halfselect.png``: final test accuracy against strength, one panel per model,
hue = mode, bands over seeds. Prints the table of final accuracies (mean and std over seeds).

    python studies/train_halfselect.py results/train_halfselect --epochs 3 --seeds 2 --workers 2
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny matrices: BLAS threads only contend
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent), str(_HERE)]  # this checkout's progsim, then the study helpers
import _digits  # noqa: E402

from progsim import HalfSelect  # noqa: E402
from progsim.nn import AnalogSGD, AnalogSequential, TileConfig, convert_to_analog  # noqa: E402
from progsim.study import run_study  # noqa: E402

STRENGTHS = (0.0, 0.02, 0.05, 0.1)
MODES = ("v2", "v3")


def trial(params) -> list[dict]:
    """Train one model (``params``: model, mode, strength, seed, epochs, lr); one row per epoch.
    A module-level function of its parameters alone, so the study harness can run it in any
    worker and skip it when a re-run finds it finished."""
    model_name, seed = params["model"], int(params["seed"])
    data = _digits.digits()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    digital = _digits.MODELS[model_name]()
    strength = float(params["strength"])
    hs = HalfSelect(params["mode"], strength=strength) if strength > 0 else HalfSelect()
    model = AnalogSequential(*convert_to_analog(digital, TileConfig(half_select=hs), seed=seed))
    opt = AnalogSGD(model.parameters(), lr=float(params["lr"]))
    rows = []

    def log(epoch, m):
        c = model.counters()
        rows.append({"epoch": epoch + 1, "test_accuracy": _digits.accuracy(m, data[2], data[3]),
                     "pulses_full": c["pulses_full"], "pulses_half": c["pulses_half"]})

    seconds, _ = _digits.train(model, opt, data, epochs=int(params["epochs"]), seed=seed, on_epoch=log)
    for r, s in zip(rows, seconds):
        r["train_s"] = s
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (trials are independent)")
    ap.add_argument("--dask", default=None, help="a dask.distributed scheduler address, or 'local'")
    ap.add_argument("--models", nargs="+", default=list(_digits.MODELS), choices=list(_digits.MODELS))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    common = dict(model=args.models, seed=list(range(args.seeds)), epochs=args.epochs, lr=args.lr)
    grid = [dict(common, mode="none", strength=0.0), dict(common, mode=list(MODES), strength=list(STRENGTHS[1:]))]
    result = run_study(grid, trial_fn=trial, out=args.out / "trials", workers=args.workers, dask=args.dask)
    if result.n_failed:
        print(f"{result.n_failed} trials failed: see {args.out / 'trials' / 'trials.parquet'}")
    rows = result.iterations
    # strength 0 is the same trial under V/2 and V/3: report it under both
    none = rows[rows["mode"] == "none"]
    table = pd.concat([rows[rows["mode"] != "none"]] + [none.assign(mode=md) for md in MODES], ignore_index=True)
    cols = ["model", "mode", "strength", "seed", "epoch", "test_accuracy", "pulses_full", "pulses_half", "train_s"]
    table = table[cols].sort_values(cols[:5], ignore_index=True)
    table.to_parquet(args.out / "train_halfselect.parquet")
    table.to_csv(args.out / "train_halfselect.csv", index=False)
    final = table[table.epoch == table.epoch.max()]
    summary = final.groupby(["model", "mode", "strength"]).test_accuracy.agg(["mean", "std", "count"]).reset_index()
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    plot(final, args.out / "train_halfselect.png")


def plot(final: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    g = sns.relplot(data=final, x="strength", y="test_accuracy", hue="mode", col="model", kind="line",
                    errorbar="sd", marker="o", height=3.2, aspect=1.2)
    g.set_axis_labels("half-select strength", "test accuracy")
    g.figure.savefig(path, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
