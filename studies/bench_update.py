"""Pulsed-update throughput of the crossbar kernel (and of aihwkit, where importable).

For each tile size (256, 512, 1024 square), device (ConstantStep, SoftBounds at their
defaults), half-selection (none, v2 with strength 0.1) and thread count (1, 2), it times
``Crossbar.update`` on random uniform [-1, 1] vector pairs at ``lr = 0.01``, BL 31 with update
and BL management (so ~10 slots per cycle with the default ``dw_min`` 0.001), after one
warm-up call that compiles (or loads) the kernel. It prints

* ``cells/s``: tile cells times update cycles per second;
* ``full/s``: coincidence pulses per second;
* ``events/s``: full pulses plus half-select disturbs per second;
* with half-selection on, ``events/full(none)``: events/s over the full-pulse rate of the
  same configuration without half-selection (the target is > 0.5: within 2x);
* with aihwkit importable, aihwkit's cells/s and pulses/s for the same device, BL and threads
  (its pulses are the expected coincidence count of the same vectors: aihwkit 1.2.0 counts
  pulses only on CUDA tiles), and our cells/s ratio (target >= 3 with half-selection off).
  aihwkit's CPU update is serial, so its figure is the same on 1 or 2 threads.

Usage: ``python studies/bench_update.py [--sizes 256 512 1024] [--seconds 1.0] [--repeats 3] [--out results/bench_update]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from progsim import Crossbar, HalfSelect, IO, devices, pulses  # noqa: E402

DEVICES = {"ConstantStep": devices.ConstantStep, "SoftBounds": devices.SoftBounds}


def time_ours(size, device, mode, threads, seconds, lr=0.01, bl=31, seed=0, repeats=3):
    numba.set_num_threads(threads)
    hs = HalfSelect(mode, strength=0.1) if mode != "none" else HalfSelect()
    xb = Crossbar(size, size, device=DEVICES[device](), pulses=pulses.Stochastic(bl=bl), half_select=hs,
                  io=IO(is_perfect=True), seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (64, size))
    d = rng.uniform(-1, 1, (64, size))
    xb.update(x[:1], d[:1], lr)  # compile or load from cache
    n = 1
    while True:  # grow the batch until one call takes `seconds`
        elapsed = _timed_update(xb, np.resize(x, (n, size)), np.resize(d, (n, size)), lr)[0]
        if elapsed >= seconds or n >= 4096:
            break
        n = min(4096, max(2 * n, int(n * 1.2 * seconds / max(elapsed, 1e-6))))
    batch_x, batch_d = np.resize(x, (n, size)), np.resize(d, (n, size))
    elapsed, c = min((_timed_update(xb, batch_x, batch_d, lr) for _ in range(repeats)), key=lambda r: r[0])
    return dict(cycles=n, seconds=elapsed, cells_per_s=size * size * n / elapsed,
                full_per_s=c["pulses_full"] / elapsed,
                events_per_s=(c["pulses_full"] + c["pulses_half"]) / elapsed)


def _timed_update(xb, x, d, lr):
    xb.reset_counters()
    t0 = time.perf_counter()
    xb.update(x, d, lr)
    return time.perf_counter() - t0, xb.counters


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per configuration")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per configuration; the fastest counts")
    ap.add_argument("--out", type=Path, default=Path("results/bench_update"))
    ap.add_argument("--no-peer", action="store_true", help="skip aihwkit even if importable")
    args = ap.parse_args(argv)
    threads = [t for t in args.threads if t <= numba.config.NUMBA_NUM_THREADS]

    peer = None
    if not args.no_peer:
        try:
            import _aihwkit_peer as peer  # noqa: PLC0415
            if peer.aihwkit_version() is None:
                peer = None
        except ImportError:
            peer = None

    rows = []
    for size in args.sizes:
        for device in DEVICES:
            for t in threads:
                base = None
                for mode in ("none", "v2"):
                    r = time_ours(size, device, mode, t, args.seconds, repeats=args.repeats)
                    row = dict(size=size, device=device, half_select=mode, threads=t, **r)
                    if mode == "none":
                        base = r["full_per_s"]
                    else:
                        row["events_over_full_none"] = r["events_per_s"] / base
                    if peer is not None and mode == "none":
                        pr = peer.update_throughput(size, size, device="constant" if device == "ConstantStep" else "softbounds",
                                                    bl=31, n_cycles=max(8, min(r["cycles"], 256)), threads=t,
                                                    repeats=args.repeats)
                        row["aihwkit_cells_per_s"] = pr["cells_per_s"]
                        row["aihwkit_pulses_per_s"] = pr["pulses_per_s"]
                        row["ratio_vs_aihwkit"] = r["cells_per_s"] / pr["cells_per_s"]
                    rows.append(row)
                    print(_fmt_row(row), flush=True)
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(args.out / "bench_update.parquet")
    cols = ["size", "device", "half_select", "threads", "cycles", "cells_per_s", "full_per_s", "events_per_s",
            "events_over_full_none"] + [c for c in ("aihwkit_cells_per_s", "aihwkit_pulses_per_s", "ratio_vs_aihwkit") if c in table]
    with pd.option_context("display.width", 200, "display.float_format", "{:.3g}".format):
        print()
        print(table.reindex(columns=cols).to_string(index=False))
    if peer is None:
        print("\naihwkit is not importable here: no peer figures (see README, 'Comparing with aihwkit').")
    else:
        print(f"\naihwkit {peer.aihwkit_version()} measured beside us.")
    print(f"numba {numba.__version__}, {os.cpu_count()} cpus; table written to {args.out / 'bench_update.parquet'}")
    return table


def _fmt_row(r):
    s = (f"{r['size']:5d} {r['device']:12s} {r['half_select']:4s} t={r['threads']} "
         f"cells/s={r['cells_per_s']:.3g} full/s={r['full_per_s']:.3g} events/s={r['events_per_s']:.3g}")
    if "events_over_full_none" in r:
        s += f" events/full(none)={r['events_over_full_none']:.2f}"
    if "ratio_vs_aihwkit" in r:
        s += f" aihwkit cells/s={r['aihwkit_cells_per_s']:.3g} ratio={r['ratio_vs_aihwkit']:.2f}"
    return s


if __name__ == "__main__":
    main()
