"""progsim's algorithms programming an aihwkit 1.2 tile through the adapter, beside our crossbar.

A 64x64 random target (uniform in [-0.3, 0.3]) on aihwkit's default ``ConstantStepDevice``
(``SingleRPUConfig``: ``dw_min`` 1e-3, 30 % device-to-device spread of steps and bounds,
30 % cycle noise, stochastic compressed pulses with BL 31, the default forward periphery),
wrapped by :class:`progsim.inference.aihwkit_adapter.AihwkitTile`, programmed by every
registered algorithm that needs only ``forward``/``update``/``read_weights`` (write-verify
needs single-device pulses, which aihwkit tiles do not offer), with the settings of
``studies/accuracy_vs_noise.py``. Beside each: the same algorithm on progsim's
``Crossbar`` with the same nominal device, pulses and periphery, and aihwkit's own
``program_weights`` (one-hot GDP, 1000 iterations).

``floor`` is the error of the best state the tile can hold (the target clipped to each
cell's bounds: for aihwkit, what its ``set_weights`` leaves; for ours, the per-cell bounds).
Times are wall-clock on whatever machine runs it.

Usage: ``python studies/aihwkit_adapter.py [OUT_DIR] [--size 64] [--seed 0] [--quick]``; prints
the table and writes ``aihwkit_adapter.parquet`` into OUT_DIR when given.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import pandas as pd

import progsim_algorithms  # noqa: F401  (registers the built-in algorithms)
from progsim import IO, Crossbar, devices, pulses  # noqa: E402
from progsim.inference.aihwkit_adapter import AihwkitTile  # noqa: E402
from progsim import program  # noqa: E402

# (label, registry key, options, max_iter): the settings of accuracy_vs_noise.py
ALGORITHMS = [
    ("gdp", "gdp", dict(batch_size=10), 1500),
    ("gdp-batched", "gdp-batched", dict(batch_size=64, lr=0.5), 200),
    ("kalman-gdp-batched", "kalman-gdp-batched", dict(batch_size=64), 200),
    ("svd", "svd", dict(read="hadamard"), 600),
    ("svd-hs", "svd-hs", dict(read="hadamard"), 600),
    ("kalman-svd", "kalman-svd", dict(read="hadamard"), 600),
    # on tiles without single-device pulses one-shot writes through one-hot update cycles,
    # in ceil(max|T - W0| / (bl dw_min)) passes of one iteration each; it ends by itself
    ("one-shot", "one-shot", dict(read="hadamard", over_sampling=4), 100),
]


def run(tile, target, key, options, max_iter):
    t0 = time.perf_counter()
    res = program(tile, target, key, max_iter=max_iter, record_every=max_iter, **options)
    f = res.final
    return dict(err_fro=f.err_fro, err_first=res.table.err_fro.iloc[0], iterations=int(f.iteration),
                stop=res.stop, update_cycles=f.update_cycles, reads=f.reads, wall_s=time.perf_counter() - t0)


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a tenth of the iterations")
    ap.add_argument("--only", nargs="*", help="run only these algorithm labels (and skip aihwkit's own)")
    args = ap.parse_args(argv)
    try:
        import aihwkit
    except ImportError:
        print("aihwkit is not importable: nothing to compare.", file=sys.stderr)
        return pd.DataFrame()
    n = args.size
    target = np.random.default_rng(args.seed).uniform(-0.3, 0.3, (n, n))
    norm = np.linalg.norm(target)
    rows = []
    for label, key, options, max_iter in ALGORITHMS:
        if args.only and label not in args.only:
            continue
        iters = max(1, max_iter // 10) if args.quick else max_iter
        ours = Crossbar(n, n, device=devices.ConstantStep(), pulses=pulses.Stochastic(bl=31), io=IO(),
                        seed=args.seed)
        ours.set_weights(np.zeros((n, n)))
        floor_ours = np.linalg.norm(np.clip(target, ours.cells.w_min, ours.cells.w_max) - target) / norm
        theirs = AihwkitTile.create(n, n, seed=args.seed)
        theirs.set_weights(target)
        floor_theirs = np.linalg.norm(theirs.weights - target) / norm  # aihwkit clips to each cell's bounds
        theirs.set_weights(np.zeros((n, n)))
        for sim, tile, floor in (("aihwkit (adapter)", theirs, floor_theirs), ("progsim", ours, floor_ours)):
            rows.append(dict(algorithm=label, tile=sim, floor=floor, **run(tile, target, key, options, iters)))
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    if not args.only:
        sys.path.insert(0, str(pathlib.Path(__file__).parent))
        import _aihwkit_peer as peer

        n_iter = 100 if args.quick else 1000
        t0 = time.perf_counter()
        own = peer.program_weights_error(target, n_iter=n_iter, seed=args.seed)
        rows.append(dict(algorithm="aihwkit program_weights", tile=f"aihwkit {aihwkit.__version__}",
                         floor=own["err_fro_floor"], err_fro=own["err_fro"], err_first=1.0, iterations=n_iter,
                         stop="max_iter", update_cycles=n_iter * n, reads=n_iter * n,
                         wall_s=time.perf_counter() - t0))
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out_dir:
        out = pathlib.Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out / "aihwkit_adapter.parquet")
    return table


if __name__ == "__main__":
    main()
