"""Accuracy of the programming algorithms on a realistic tile, against aihwkit, and under half-selection.

A 150x150 random target (uniform in [-0.3, 0.3]) on the default ConstantStep device
(``dw_min`` 1e-3, 30 % device-to-device spread of steps and bounds, 30 % cycle noise) read
through the default (aihwkit-like) periphery, with stochastic pulses (BL 31). Part 1 runs
every algorithm at its study settings and prints ``err_fro``, pulses, reads and wall time;
aihwkit's own ``program_weights`` (one-hot GDP) runs beside it where aihwkit imports.
Part 2 repeats the parallel algorithms and write-verify with V/2 half-selection at
strengths 0, 0.05, 0.1 and 0.2: how much each loses, and how much ``svd-hs`` wins back.

Some cells cannot hold a raw uniform(-0.3, 0.3) entry at all: the 30 % bound spread puts
a few bounds near 0 (5.9 % error floor for seed 0, whatever the algorithm; aihwkit's own
cells give it a similar floor, about 5 %, which is where its perfect-read GDP stalls). By
default (``--target reachable``) the study therefore programs the raw matrix clipped to
90 % of each cell's bounds, a random target the tile can hold; ``--target raw`` programs
the raw matrix. ``floor`` is the error of the best state the device allows (target clipped
to each cell's bounds, read from the tile's per-cell parameters: the study's oracle, never
the algorithms'), and ``excess`` = ``||W - W_best||_F / ||T||_F`` is the part an algorithm is
answerable for. aihwkit's rows report its error on the same target, its own floor and its
error against the state its own cells can hold.

Usage: ``python studies/accuracy_vs_noise.py OUT_DIR [--quick] [--seed N] [--part accuracy|halfselect]``. Writes
``accuracy_iterations.parquet``, ``accuracy_final.parquet``, ``halfselect_final.parquet``,
``halfselect_iterations.parquet``, ``accuracy.png`` and ``halfselect.png`` into OUT_DIR.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

import progsim_algorithms  # noqa: E402,F401  (registers the built-ins in a source tree)
from progsim import Crossbar, HalfSelect, IO, devices, pulses  # noqa: E402
from progsim.programming import program  # noqa: E402

# (label, registry key, options, max_iter): settings chosen per algorithm for the realistic tile
ALGORITHMS = [
    ("gdp", "gdp", dict(batch_size=10), 1500),
    ("gdp-batched", "gdp-batched", dict(batch_size=150, lr=0.5), 200),
    ("kalman-gdp-batched", "kalman-gdp-batched", dict(batch_size=150), 200),
    ("svd", "svd", dict(read="hadamard", over_sampling=1, k=1), 600),
    ("kalman-svd", "kalman-svd", dict(read="hadamard", over_sampling=1, k=1), 600),
    ("write-verify", "write-verify", dict(read="hadamard", over_sampling=16, gain=0.8), 60),
    ("one-shot", "one-shot", dict(read="hadamard", over_sampling=4), 1),
]
# Part 2: the same settings; the one-hot GDP runs are shortened (60 iterations, 60 passes
# over the columns) because every cycle of theirs disturbs whole rows and costs the most.
HS_RUNS = [
    ("gdp-batched", "gdp-batched", dict(batch_size=150, lr=0.5), 60),
    ("kalman-gdp-batched", "kalman-gdp-batched", dict(batch_size=150), 60),
    ("svd", "svd", dict(read="hadamard", over_sampling=1, k=1), 600),
    ("svd-hs", "svd-hs", dict(read="hadamard", over_sampling=1, k=1), 600),
    ("kalman-svd", "kalman-svd", dict(read="hadamard", over_sampling=1, k=1), 600),
    ("kalman-svd-hs", "kalman-svd-hs", dict(read="hadamard", over_sampling=1, k=1), 600),
    # 10 rounds only: under V/2 every single-device pulse disturbs the other 298 cells of
    # its row and column (~4e6 pulses in the first rounds), the costliest run of the study
    ("write-verify", "write-verify", dict(read="hadamard", over_sampling=16, gain=0.8), 10),
]
STRENGTHS = [0.0, 0.05, 0.1, 0.2]


def best_state(xb: Crossbar, target: np.ndarray) -> np.ndarray:
    """The closest state the tile's cells can hold (study oracle: uses per-cell parameters)."""
    cells = xb.cells
    return np.clip(target, cells.w_min, cells.w_max)


def run(label, key, options, max_iter, target, seed, half_select, record_every):
    rows, cols = target.shape
    xb = Crossbar(rows, cols, device=devices.ConstantStep(), pulses=pulses.Stochastic(bl=31),
                  half_select=half_select, io=IO(), seed=seed)
    best = best_state(xb, target)
    t0 = time.perf_counter()
    result = program(xb, target, key, max_iter=max_iter, record_every=record_every, **options)
    wall = time.perf_counter() - t0
    norm = np.linalg.norm(target)
    table = result.table.assign(algorithm=label, half_select=half_select.mode, strength=half_select.strength,
                                seed=seed, rows=rows, cols=cols, **{f"opt_{k}": str(v) for k, v in options.items()})
    f = result.final
    final = dict(algorithm=label, strength=half_select.strength, seed=seed, iterations=int(f.iteration),
                 stop=result.stop, err_fro=f.err_fro, floor=np.linalg.norm(best - target) / norm,
                 excess=np.linalg.norm(xb.weights - best) / norm, err_observed=f.err_observed,
                 pulses=f.pulses_full + f.pulses_single, pulses_half=f.pulses_half,
                 update_cycles=f.update_cycles, reads=f.reads, wall_s=wall)
    return table, final


def aihwkit_rows(target, seed, quick):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    try:
        import _aihwkit_peer as peer
    except ImportError:
        return []
    version = peer.aihwkit_version()
    if version is None:
        return []
    settings = [(100, False)] if quick else [(100, False), (1000, False), (1000, True)]
    rows = []
    for n_iter, perfect in settings:
        r = peer.program_weights_error(target, n_iter=n_iter, perfect_reads=perfect, seed=seed)
        rows.append(dict(algorithm=f"aihwkit {version} program_weights" + (" (perfect reads)" if perfect else ""),
                         strength=0.0, seed=seed, iterations=n_iter, stop="max_iter", err_fro=r["err_fro"],
                         floor=r.get("err_fro_floor", np.nan), excess=r.get("err_fro_reachable", np.nan),
                         err_observed=np.nan, pulses=np.nan, pulses_half=np.nan,
                         update_cycles=n_iter * target.shape[1], reads=n_iter * target.shape[1],
                         wall_s=r["wall_s"]))
    return rows


def _print(df: pd.DataFrame, title: str) -> None:
    cols = ["algorithm", "strength", "iterations", "err_fro", "floor", "excess", "pulses", "update_cycles",
            "reads", "wall_s"]
    print(f"\n{title}")
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=pathlib.Path)
    parser.add_argument("--quick", action="store_true", help="48x48 target and short budgets (smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=("all", "accuracy", "halfselect"), default="all")
    parser.add_argument("--strengths", type=float, nargs="+", default=STRENGTHS, help="V/2 strengths of part 2")
    parser.add_argument("--only", nargs="+", default=None, help="labels of part 2's runs to keep")
    parser.add_argument("--target", choices=("reachable", "raw"), default="reachable",
                        help="clip the random target to 90%% of each cell's bounds (default) or not")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    size = 48 if args.quick else 150
    scale = 0.1 if args.quick else 1.0
    target = np.random.default_rng(args.seed).uniform(-0.3, 0.3, (size, size))
    if args.target == "reachable":
        cells = Crossbar(size, size, device=devices.ConstantStep(), seed=args.seed).cells  # same cells as run()
        target = np.clip(target, 0.9 * cells.w_min, 0.9 * cells.w_max)

    def budget(n):
        return max(1, int(n * scale))

    if args.part in ("all", "accuracy"):
        accuracy_part(args, target, budget, size)
    if args.part in ("all", "halfselect"):
        halfselect_part(args, target, budget)


def accuracy_part(args, target, budget, size):
    none = HalfSelect("none")
    tables, finals = [], []
    for label, key, options, max_iter in ALGORITHMS:
        table, final = run(label, key, options, budget(max_iter), target, args.seed, none, record_every=1)
        tables.append(table)
        finals.append(final)
        print(f"{label:20s} err_fro {final['err_fro']:.4f} excess {final['excess']:.4f} "
              f"({final['wall_s']:.1f} s)", flush=True)
    finals += aihwkit_rows(target, args.seed, args.quick)
    accuracy = pd.DataFrame(finals)
    iterations = pd.concat(tables, ignore_index=True)
    accuracy.to_parquet(args.out_dir / "accuracy_final.parquet")
    iterations.to_parquet(args.out_dir / "accuracy_iterations.parquet")
    _print(accuracy, f"Accuracy, {size}x{size} uniform(-0.3, 0.3) target ({args.target}), ConstantStep + default IO "
                     f"(floor: the best state the cells allow; excess: the error above it)")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    iterations = iterations.assign(pulses=iterations.pulses_full + iterations.pulses_single)
    for ax, x in zip(axes, ("reads", "pulses")):
        sns.lineplot(data=iterations[iterations[x] > 0], x=x, y="err_fro", hue="algorithm", ax=ax)
        ax.set(xscale="log", yscale="log", ylabel="err_fro")
    axes[0].axhline(accuracy.floor.iloc[0], color="grey", ls=":", label="floor")
    fig.tight_layout()
    fig.savefig(args.out_dir / "accuracy.png", dpi=120)


def halfselect_part(args, target, budget):
    hs_tables, hs_finals = [], []
    runs = [r for r in HS_RUNS if args.only is None or r[0] in args.only]
    for strength in args.strengths:
        hs = HalfSelect("v2", strength=strength, prob=1.0)
        for label, key, options, max_iter in runs:
            table, final = run(label, key, options, budget(max_iter), target, args.seed, hs,
                               record_every=5)
            hs_tables.append(table)
            hs_finals.append(final)
            print(f"v2 {strength:4.2f} {label:20s} err_fro {final['err_fro']:.4f} ({final['wall_s']:.1f} s)",
                  flush=True)
    halfselect = pd.DataFrame(hs_finals)
    base = halfselect[halfselect.strength == min(args.strengths)].set_index("algorithm").err_fro
    halfselect["loss"] = halfselect.err_fro - halfselect.algorithm.map(base)
    halfselect.to_parquet(args.out_dir / "halfselect_final.parquet")
    pd.concat(hs_tables, ignore_index=True).to_parquet(args.out_dir / "halfselect_iterations.parquet")
    _print(halfselect.assign(loss=halfselect.loss), "V/2 half-selection sweep (loss: err_fro above strength 0)")
    print(halfselect.pivot(index="strength", columns="algorithm", values="err_fro").to_string(
        float_format=lambda v: f"{v:.4f}"))
    for pair in (("svd", "svd-hs"), ("kalman-svd", "kalman-svd-hs")):
        plain = halfselect[halfselect.algorithm == pair[0]].set_index("strength")
        comp = halfselect[halfselect.algorithm == pair[1]].set_index("strength")
        if plain.empty or comp.empty:
            continue
        for s in sorted(args.strengths)[1:]:
            lost = plain.loss[s]
            won = plain.err_fro[s] - comp.err_fro[s]
            share = won / lost if lost > 0 else np.nan
            print(f"strength {s:4.2f}: {pair[0]} loses {lost:+.4f}; {pair[1]} wins back {won:+.4f} ({share:.0%})")

    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(data=halfselect, x="strength", y="err_fro", hue="algorithm", marker="o", ax=ax)
    ax.set(yscale="log", xlabel="V/2 half-select strength", ylabel="final err_fro")
    fig.tight_layout()
    fig.savefig(args.out_dir / "halfselect.png", dpi=120)


if __name__ == "__main__":
    main()
