"""Per-call times, first-call compile times and update throughput of the crossbar (and of
aihwkit, where importable).

Four tables, printed and written as Parquet under ``--out``:

* ``per_call``: median microseconds of one ``Crossbar.update(x, d, 0.01)`` and one
  ``Crossbar.forward(x)`` call on square tiles (8 to 1024) at the library's defaults
  (ConstantStep, Stochastic(31), IO()), batch 1 and 16, on 1 and 2 threads (forward in float64
  and float32); with aihwkit importable, its time for the same call beside ours and
  ``aihwkit_over_ours`` (above 1: ours is faster; the target is no row below 1).
* ``compile``: seconds of each first call in a fresh process with an empty numba cache
  (``NUMBA_CACHE_DIR`` a new temporary folder): import, first update, first forward, first
  single-device pulse, first V/2 update, first SoftBounds update, in that order (a later call
  reuses what an earlier one compiled, as in a user's first script); wall clock, and the
  process's CPU seconds (``... cpu``), which other work on the machine inflates less. A second
  row repeats it in a fresh process after ``python -m progsim warmup`` (its own seconds in
  ``warmup``) compiled into another empty cache, as after the README's set-up.
* ``threshold``: per-call update time of the serial and the parallel kernel variant on two
  threads, batch 1, by tile size: where the parallel variant starts to win is
  ``progsim._config.SERIAL_BELOW``.
* ``throughput`` (``bench_update.parquet``): for each tile size (256, 512, 1024 square),
  device (ConstantStep, SoftBounds at their defaults), half-selection (none, v2 with strength
  0.1) and thread count (1, 2), ``Crossbar.update`` on random uniform [-1, 1] vector pairs at
  ``lr = 0.01``, BL 31 with update and BL management (so ~10 slots per cycle with the default
  ``dw_min`` 0.001), after one warm-up call that compiles (or loads) the kernel:

  * ``cells/s``: tile cells times update cycles per second;
  * ``full/s``: coincidence pulses per second;
  * ``events/s``: full pulses plus half-select disturbs per second;
  * with half-selection on, ``events/full(none)``: events/s over the full-pulse rate of the
    same configuration without half-selection (the target is > 0.5: within 2x);
  * with aihwkit importable, aihwkit's cells/s and pulses/s for the same device, BL and
    threads (its pulses are the expected coincidence count of the same vectors: aihwkit 1.2.0
    counts pulses only on CUDA tiles), and our cells/s ratio (target >= 3 on one thread with
    half-selection off). aihwkit's CPU update is serial, so its figure is the same on 1 or 2
    threads.

Times are wall clock: on a machine shared with other work they are upper bounds.

Usage: ``python studies/bench_update.py [--quick] [--sizes 256 512 1024] [--per-call-sizes 8 32 128 512 1024]
[--seconds 1.0] [--repeats 3] [--no-compile] [--out results/bench_update]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from progsim import Crossbar, HalfSelect, IO, _config, devices, pulses, set_num_threads  # noqa: E402

DEVICES = {"ConstantStep": devices.ConstantStep, "SoftBounds": devices.SoftBounds}


def time_ours(size, device, mode, threads, seconds, lr=0.01, bl=31, seed=0, repeats=3):
    set_num_threads(threads)
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


# Seconds of rest before each per-call measurement, ours and aihwkit's alike: the worker threads
# that the previous measurement's library (numba's, torch's or BLAS's OpenMP pool) leaves
# spinning go to sleep first, instead of taking the cores from the next measurement's first calls.
_SETTLE = 0.2


def per_call_ours(size, batch, op, threads, dtype=np.float64, seconds=0.2, max_calls=400, lr=0.01, seed=0):
    """Median microseconds of one call of ``op`` ("update" or "forward") on a default tile."""
    set_num_threads(threads)
    xb = Crossbar(size, size, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    xb.set_weights(rng.uniform(-0.3, 0.3, (size, size)))
    x = rng.uniform(-1, 1, (batch, size))
    d = rng.uniform(-1, 1, (batch, size))
    call = (lambda: xb.update(x, d, lr)) if op == "update" else (lambda: xb.forward(x))
    call()  # compile or load from cache
    times = []
    start = time.perf_counter()
    while len(times) < 5 or (len(times) < max_calls and time.perf_counter() - start < seconds):
        t0 = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times)) / 1e3


_COLD = """
import json, time
t, c = time.perf_counter(), time.process_time()
import numpy as np
from progsim import Crossbar, HalfSelect, devices
out = {"import": time.perf_counter() - t, "import cpu": time.process_time() - c}
rng = np.random.default_rng(0)
x, d = rng.uniform(-1, 1, (1, 32)), rng.uniform(-1, 1, (1, 32))
xb = Crossbar(32, 32, seed=0)
def first(name, call):
    t, c = time.perf_counter(), time.process_time()
    call()
    out[name] = time.perf_counter() - t
    out[name + " cpu"] = time.process_time() - c
first("first update", lambda: xb.update(x, d, 0.01))
first("first forward", lambda: xb.forward(x))
first("first pulse", lambda: xb.pulse([0], [1], [2]))
xv = Crossbar(32, 32, half_select=HalfSelect("v2", strength=0.1), seed=0)
first("first V/2 update", lambda: xv.update(x, d, 0.01))
xs = Crossbar(32, 32, device=devices.SoftBounds(), seed=0)
first("first SoftBounds update", lambda: xs.update(x, d, 0.01))
print(json.dumps(out))
"""


def compile_times():
    """First-call seconds in a fresh interpreter with an empty numba cache, then the same in a
    fresh interpreter after ``python -m progsim warmup`` filled another empty cache (see the
    module docstring): one row each, and the warm-up's own seconds."""
    root = Path(__file__).resolve().parents[1]
    rows = []
    for warm in (False, True):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
            row = {"cache": "after progsim warmup" if warm else "empty"}
            if warm:
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "progsim", "warmup"], env=env, capture_output=True, text=True,
                               check=True, cwd=root)
                row["warmup"] = time.perf_counter() - t0
            res = subprocess.run([sys.executable, "-c", _COLD], env=env, capture_output=True, text=True, check=True,
                                 cwd=root)
            row.update(json.loads(res.stdout.strip().splitlines()[-1]))
            rows.append(row)
    return rows


def threshold_table(sizes, seconds):
    """Per-call update time of the forced serial and parallel variants on two threads."""
    saved = _config.SERIAL_BELOW
    rows = []
    try:
        for size in sizes:
            row = dict(size=size, cells=size * size)
            for variant, below in (("serial", 2 ** 62), ("parallel", 0)):
                _config.SERIAL_BELOW = below
                row[f"{variant}_us"] = per_call_ours(size, 1, "update", 2, seconds=seconds)
            rows.append(row)
    finally:
        _config.SERIAL_BELOW = saved
    return pd.DataFrame(rows)


def _load_peer(no_peer):
    if no_peer:
        return None
    try:
        import _aihwkit_peer as peer  # noqa: PLC0415
    except ImportError:
        return None
    return peer if peer.aihwkit_version() is not None else None


def _print(title, table):
    with pd.option_context("display.width", 200, "display.float_format", "{:.3g}".format):
        print(f"\n{title}\n{table.to_string(index=False)}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024], help="throughput table sizes")
    ap.add_argument("--per-call-sizes", type=int, nargs="+", default=[8, 32, 128, 512, 1024])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--threshold-sizes", type=int, nargs="+", default=[16, 32, 64, 96, 128, 192, 256])
    ap.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per throughput configuration")
    ap.add_argument("--call-seconds", type=float, default=0.3, help="timed seconds per per-call configuration")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per throughput configuration; the fastest counts")
    ap.add_argument("--out", type=Path, default=Path("results/bench_update"))
    ap.add_argument("--no-peer", action="store_true", help="skip aihwkit even if importable")
    ap.add_argument("--no-compile", action="store_true", help="skip the cold-cache compile times (minutes)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one thread, no compile times: a smoke run")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.per_call_sizes, args.batches, args.threshold_sizes = [16], [8], [1, 2], [8]
        args.seconds, args.call_seconds, args.repeats, args.threads, args.no_compile = 0.001, 0.001, 1, [1], True
    threads = [t for t in args.threads if t <= numba.config.NUMBA_NUM_THREADS]
    peer = _load_peer(args.no_peer)
    args.out.mkdir(parents=True, exist_ok=True)
    tables = {}

    rows = []
    for size in args.per_call_sizes:
        for batch in args.batches:
            for t in threads:
                for op, dtype in (("update", np.float64), ("forward", np.float64), ("forward", np.float32)):
                    time.sleep(_SETTLE)
                    row = dict(size=size, batch=batch, op=op, threads=t, dtype=np.dtype(dtype).name,
                               ours_us=per_call_ours(size, batch, op, t, dtype, seconds=args.call_seconds))
                    if peer is not None:
                        time.sleep(_SETTLE)
                        row["aihwkit_us"] = peer.per_call_us(size, size, batch, op, threads=t)
                        row["aihwkit_over_ours"] = row["aihwkit_us"] / row["ours_us"]
                    rows.append(row)
    tables["per_call"] = pd.DataFrame(rows)
    _print("Per call (median microseconds):", tables["per_call"])

    if 2 in threads:
        tables["threshold"] = threshold_table(args.threshold_sizes, args.call_seconds)
        _print(f"Serial vs parallel update, 2 threads, batch 1 (SERIAL_BELOW = {_config.SERIAL_BELOW} cells):",
               tables["threshold"])

    if not args.no_compile:
        tables["compile"] = pd.DataFrame(compile_times())
        _print("First calls in a fresh process, empty numba cache (seconds):", tables["compile"])

    tables["throughput"] = throughput_table(args, threads, peer)
    for name, table in tables.items():
        table.to_parquet(args.out / ("bench_update.parquet" if name == "throughput" else f"{name}.parquet"))
    if peer is None:
        print("\naihwkit is not importable here: no peer figures (see README, 'Comparing with aihwkit').")
    else:
        print(f"\naihwkit {peer.aihwkit_version()} measured beside us.")
    print(f"numba {numba.__version__}, {os.cpu_count()} cpus; tables written to {args.out}")
    return tables


def throughput_table(args, threads, peer):
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
    cols = ["size", "device", "half_select", "threads", "cycles", "cells_per_s", "full_per_s", "events_per_s",
            "events_over_full_none"] + [c for c in ("aihwkit_cells_per_s", "aihwkit_pulses_per_s", "ratio_vs_aihwkit") if c in table]
    _print("Update throughput:", table.reindex(columns=cols))
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
