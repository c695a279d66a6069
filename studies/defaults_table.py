"""Every registered algorithm at its defaults on the default tile, beside aihwkit's program_weights.

A ``size x size`` target (default 150x150), standard normal scaled to ``max|T| = 0.5``, is
programmed into the default tile, ``Crossbar(size, size, seed=SEED)`` (ConstantStep,
``Stochastic(bl=31)``, ``IO()``), by ``program(xb, T, algorithm=key)`` with no options: every
option derives from the tile's nominal configuration and the run length is the
algorithm's own ``max_iter`` (or the runner's 200). One fresh tile per algorithm, same seed,
so every run starts from the same cells.

Columns: ``err_fro`` (relative Frobenius error of the true state), ``err_floor`` (the error of
the target clipped to each cell's bounds: what no algorithm can remove), ``err_excess =
err_fro - err_floor``, the costs (full-array pulses, single-device pulses, forward read
vectors, update cycles), ``wall_s`` (the algorithm's own time) and ``compile_s`` (kernel
compilation or cache loading before the run, not in ``wall_s``). aihwkit's
``AnalogTile.program_weights`` (one-hot GDP, its own ConstantStep cells and periphery) runs
on the same target where aihwkit imports (``studies/_aihwkit_peer.py``); its ``err_floor``
is its own cells'.

Usage: ``python studies/defaults_table.py [--size N] [--seed N] [--only KEY ...]
[--aihwkit-iter N] [--out FILE.parquet]``
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
import pandas as pd

import progsim_algorithms
from progsim import Crossbar
from progsim.programming import program

COLUMNS = ["algorithm", "max_iter", "iterations", "stop", "err_fro", "err_floor", "err_excess", "pulses_full",
           "pulses_single", "reads", "update_cycles", "wall_s", "compile_s"]


def default_target(size: int, seed: int) -> np.ndarray:
    t = np.random.default_rng(seed).standard_normal((size, size))
    return t * (0.5 / np.abs(t).max())


def run(key: str, target: np.ndarray, seed: int) -> dict:
    xb = Crossbar(*target.shape, seed=seed)
    result = program(xb, target, algorithm=key)
    f = result.final
    row = {c: f[c] for c in COLUMNS if c in f.index}
    row.update(algorithm=key, max_iter=result.max_iter, iterations=int(f.iteration), stop=result.stop)
    return row


def aihwkit_row(target: np.ndarray, seed: int, n_iter: int) -> dict | None:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import _aihwkit_peer as peer

    version = peer.aihwkit_version()
    if version is None:
        return None
    r = peer.program_weights_error(target, n_iter=n_iter, seed=seed)
    cols = target.shape[1]
    return dict(algorithm=f"aihwkit {version} program_weights", max_iter=n_iter, iterations=n_iter,
                stop="max_iter", err_fro=r["err_fro"], err_floor=r["err_fro_floor"],
                err_excess=r["err_fro"] - r["err_fro_floor"], pulses_full=np.nan, pulses_single=np.nan,
                reads=n_iter * cols, update_cycles=n_iter * cols, wall_s=r["wall_s"], compile_s=np.nan)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", default=None, help="registry keys to run (default: the built-ins)")
    parser.add_argument("--aihwkit-iter", type=int, default=1000, help="program_weights iterations")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="write the table as Parquet")
    args = parser.parse_args(argv)
    target = default_target(args.size, args.seed)
    keys = args.only or sorted(progsim_algorithms.BUILTIN)
    rows = []
    for key in keys:
        rows.append(run(key, target, args.seed))
        r = rows[-1]
        print(f"{key:20s} err_fro {r['err_fro']:.4f} (floor {r['err_floor']:.4f}) it {r['iterations']} "
              f"{r['stop']} {r['wall_s']:.1f} s", flush=True)
    peer = aihwkit_row(target, args.seed, args.aihwkit_iter)
    if peer is not None:
        rows.append(peer)
    table = pd.DataFrame(rows)[COLUMNS]
    print(f"\n{args.size}x{args.size} randn target, max|T| = 0.5, default tile (ConstantStep, Stochastic(31), IO()),"
          f" seed {args.seed}, every algorithm at its defaults" + ("" if peer else "; aihwkit not importable"))
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(args.out)


if __name__ == "__main__":
    main()
