"""GDP against SVD rank-one programming on a low-rank target (the original research notebook).

A 500x300 target of rank 20 (the top 20 SVD components of a standard-normal matrix,
scaled to ``max|T| = 0.3``) is programmed into a ConstantStep tile (the design's defaults:
device-to-device and cycle-to-cycle spread) and into an Ideal-device tile, both with
stochastic pulses (BL 31), by GDP (standard-normal inputs, batch sizes 1, 5, 10, 20, 50,
``lr = 1 / (sqrt(b) + sqrt(n))^2``) and by ``svd`` (top component of the read error per
iteration, one-hot reads). Reads are exact by default (``--io default`` for the noisy
periphery), so the comparison is about the updates.

Writes ``gdp_vs_svd_iterations.parquet`` (one row per recorded iteration and run),
``gdp_vs_svd_costs.parquet`` (costs to reach err_fro 50, 30, 20, 15, 10 and 5 %, and final errors)
and ``gdp_vs_svd.png`` (relative spectral-norm error against iteration and against pulses, log
scales). ``--quick``: a 100x60 target of rank 5 and short budgets (smoke run).

Usage: ``python studies/gdp_vs_svd.py OUT_DIR [--quick] [--io perfect|default] [--seed N]``
"""

from __future__ import annotations

import argparse
import pathlib
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

import progsim_algorithms  # noqa: E402,F401  (registers the built-ins in a source tree)
from progsim import Crossbar, IO, devices, pulses  # noqa: E402
from progsim.programming import program  # noqa: E402

BATCH_SIZES = (1, 5, 10, 20, 50)
TOLS = (0.5, 0.3, 0.2, 0.15, 0.1, 0.05)


def low_rank_target(rows: int, cols: int, rank: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((rows, cols))
    u, s, vt = np.linalg.svd(g, full_matrices=False)
    t = (u[:, :rank] * s[:rank]) @ vt[:rank]
    return t * (0.3 / np.abs(t).max())


def costs_to_tol(table: pd.DataFrame) -> dict:
    out = {}
    for tol in TOLS:
        hit = table[table.err_fro <= tol]
        row = hit.iloc[0] if len(hit) else None
        tag = f"{int(round(tol * 100))}pct"
        for col in ("iteration", "pulses_full", "update_cycles", "reads"):
            out[f"{col}_to_{tag}"] = float(row[col]) if row is not None else np.nan
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=pathlib.Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--io", choices=("perfect", "default"), default="perfect")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows, cols, rank = (100, 60, 5) if args.quick else (500, 300, 20)
    target = low_rank_target(rows, cols, rank, args.seed)
    io = IO(is_perfect=True) if args.io == "perfect" else IO()
    cycles_budget = 3000 if args.quick else 12000
    runs = [(f"gdp b={b}", "gdp", dict(batch_size=b), min(cycles_budget // b, 2000 if args.quick else 6000))
            for b in BATCH_SIZES]
    # the notebook's svd: one component per fresh one-hot read
    runs.append(("svd", "svd", dict(k=1, read="eye", over_sampling=1), 100 if args.quick else 400))

    tables, summary = [], []
    for device_name, device in (("ConstantStep", devices.ConstantStep()), ("Ideal", devices.Ideal())):
        for label, key, options, max_iter in runs:
            xb = Crossbar(rows, cols, device=device, pulses=pulses.Stochastic(bl=31), io=io, seed=args.seed)
            t0 = time.perf_counter()
            result = program(xb, target, key, max_iter=max_iter, record_every=max(1, max_iter // 300), **options)
            table = result.table.assign(algorithm=label, device=device_name, pulses="Stochastic(bl=31)",
                                        io=args.io, rows=rows, cols=cols, rank=rank, seed=args.seed,
                                        batch_size=options.get("batch_size", np.nan))
            tables.append(table)
            f = result.final
            summary.append(dict(device=device_name, algorithm=label, iterations=int(f.iteration),
                                final_err_fro=f.err_fro, final_err_spec=f.err_spec,
                                min_err_fro=table.err_fro.min(), pulses_full=f.pulses_full,
                                update_cycles=f.update_cycles, reads=f.reads,
                                wall_s=time.perf_counter() - t0, **costs_to_tol(table)))
            print(f"{device_name:12s} {label:8s} it {int(f.iteration):5d} err_fro {f.err_fro:.4f} "
                  f"err_spec {f.err_spec:.4f} pulses {f.pulses_full:.3g} reads {f.reads:.0f} "
                  f"({summary[-1]['wall_s']:.1f} s)", flush=True)

    iterations = pd.concat(tables, ignore_index=True)
    iterations.to_parquet(args.out_dir / "gdp_vs_svd_iterations.parquet")
    costs = pd.DataFrame(summary)
    costs.to_parquet(args.out_dir / "gdp_vs_svd_costs.parquet")
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(costs.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

    plot = iterations[iterations.iteration > 0]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharey="row")
    for r, device_name in enumerate(("ConstantStep", "Ideal")):
        data = plot[plot.device == device_name]
        for c, x in enumerate(("iteration", "pulses_full")):
            ax = axes[r, c]
            sns.lineplot(data=data, x=x, y="err_spec", hue="algorithm", ax=ax, legend=(r == 0 and c == 0))
            ax.set(xscale="log", yscale="log", title=f"{device_name}: spectral error vs {x}",
                   xlabel="iteration" if x == "iteration" else "full pulses", ylabel="||W - T||_2 / ||T||_2")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    fig.savefig(args.out_dir / "gdp_vs_svd.png", dpi=120)


if __name__ == "__main__":
    main()
