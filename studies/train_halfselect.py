"""Training under half-selection disturb: the digits MLP and CNN on analog tiles with V/2 and V/3
biasing at several disturb strengths (what no peer simulator models).

Every analog layer uses the default ConstantStep device and stochastic pulses; during each
update cycle the half-selected cells (V/2: on a firing row or column only; V/3: also the cells
on neither line, in the opposite direction) move by ``strength`` times a device step. Strength
0 is the ideal threshold device, identical for V/2 and V/3: it is trained once per seed and
reported under both modes. Trials are pure functions of (model, mode, strength, seed).

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

from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402

import pandas as pd  # noqa: E402
import torch  # noqa: E402

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent), str(_HERE)]  # this checkout's progsim, then the study helpers
import _digits  # noqa: E402

from progsim import HalfSelect  # noqa: E402
from progsim.nn import AnalogSGD, AnalogSequential, TileConfig, convert_to_analog  # noqa: E402

STRENGTHS = (0.0, 0.02, 0.05, 0.1)
MODES = ("v2", "v3")


def trial(model_name: str, mode: str, strength: float, seed: int, epochs: int, lr: float, data) -> list[dict]:
    """Train one model from seed ``seed``; one row per epoch."""
    torch.manual_seed(seed)
    digital = _digits.MODELS[model_name]()
    hs = HalfSelect(mode, strength=strength) if strength > 0 else HalfSelect()
    model = AnalogSequential(*convert_to_analog(digital, TileConfig(half_select=hs), seed=seed))
    opt = AnalogSGD(model.parameters(), lr=lr)
    rows = []

    def log(epoch, m):
        c = model.counters()
        rows.append({"model": model_name, "mode": mode, "strength": strength, "seed": seed, "epoch": epoch + 1,
                     "test_accuracy": _digits.accuracy(m, data[2], data[3]),
                     "pulses_full": c["pulses_full"], "pulses_half": c["pulses_half"]})

    seconds, _ = _digits.train(model, opt, data, epochs=epochs, seed=seed, on_epoch=log)
    for r, s in zip(rows, seconds):
        r["train_s"] = s
    return rows


def _run(point, epochs, lr):
    return trial(*point, epochs, lr, _digits.digits())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (trials are independent)")
    ap.add_argument("--models", nargs="+", default=list(_digits.MODELS), choices=list(_digits.MODELS))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    grid = [(m, mode, strength, seed) for m in args.models for seed in range(args.seeds)
            for mode, strength in [("none", 0.0)] + [(md, s) for md in MODES for s in STRENGTHS[1:]]]
    rows = []
    with ProcessPoolExecutor(args.workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = [pool.submit(_run, g, args.epochs, args.lr) for g in grid]
        for fut in as_completed(futures):
            got = fut.result()
            r = got[-1]
            print(f"{r['model']} seed {r['seed']} {r['mode']} {r['strength']:g}: {r['test_accuracy']:.3f}", flush=True)
            # strength 0 is the same trial under V/2 and V/3: report it under both
            rows += [{**x, "mode": md} for x in got for md in MODES] if r["mode"] == "none" else got
            pd.DataFrame(rows).to_csv(args.out / "train_halfselect.partial.csv", index=False)
    table = pd.DataFrame(rows).sort_values(["model", "mode", "strength", "seed", "epoch"], ignore_index=True)
    table.to_parquet(args.out / "train_halfselect.parquet")
    table.to_csv(args.out / "train_halfselect.csv", index=False)
    (args.out / "train_halfselect.partial.csv").unlink()
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
