"""Reference measurements against IBM aihwkit (optional peer simulator).

aihwkit is *not* a dependency of progsim: it is imported lazily inside each
function, so this module imports fine without it.  Written against
aihwkit 1.2.0 (CPU build, ``aihwkit.simulator.tiles.analog.AnalogTile``).

Functions
---------
aihwkit_version()        -> installed version string or None.
update_throughput(...)   -> CPU pulsed-update speed of one analog tile.
program_weights_error(.) -> accuracy of aihwkit's built-in closed-loop
                            weight programming (``AnalogTile.program_weights``).
"""

from __future__ import annotations

import time

import numpy as np


def aihwkit_version() -> str | None:
    """Version of the importable aihwkit (None if it cannot be imported)."""
    try:
        import aihwkit
    except Exception:  # ImportError, or a broken binary extension
        return None
    return str(aihwkit.__version__)


def _make_tile(rows: int, cols: int, device: str = "constant", bl: int = 31,
               perfect_forward: bool = False, construction_seed: int = 0):
    """AnalogTile (rows=out, cols=in) with a SingleRPUConfig at aihwkit defaults.

    Kept at defaults: StochasticCompressed pulses, update and BL management on,
    mapping.weight_scaling_omega=0 (no weight scaling).  ``count_pulses`` is
    switched on (only the CUDA tiles fill the counters in 1.2.0).
    ``construction_seed`` != 0 fixes the device-to-device variations; the
    cycle-to-cycle / pulse RNG of the C++ tile is always seeded from the clock
    (aihwkit 1.2.0 exposes no seed for it).
    """
    from aihwkit.simulator.configs import (ConstantStepDevice, SingleRPUConfig,
                                           SoftBoundsDevice)
    from aihwkit.simulator.tiles.analog import AnalogTile

    devices = {"constant": ConstantStepDevice, "softbounds": SoftBoundsDevice}
    if device not in devices:
        raise ValueError(f"device must be one of {sorted(devices)}, got {device!r}")
    cfg = SingleRPUConfig(device=devices[device](count_pulses=True,
                                                 construction_seed=construction_seed))
    cfg.update.desired_bl = bl
    cfg.mapping.weight_scaling_omega = 0.0  # (the default) no weight re-scaling
    cfg.forward.is_perfect = perfect_forward
    return AnalogTile(rows, cols, cfg), cfg


def _expected_coincidences(x: np.ndarray, d: np.ndarray, lr: float, dw_min: float,
                           bl: int) -> float:
    """Expected number of coincidences summed over the batch.

    Mirrors rpucuda ``PulsedUpdateMetaParameter::performUpdateManagement``
    (per batch row: BL = min(ceil(lr*xmax*dmax/dw_min), bl), A=B=sqrt(lr/(dw_min*BL)),
    x scale *= sqrt(dmax/xmax), d scale *= sqrt(xmax/dmax), with dmax shrunk by
    bl/k when k > bl) and the StochasticCompressed bit rule P(bit)=min(scale*|v|, 1).
    Checked against aihwkit (one-sample updates on a noise-free ConstantStep
    device, |dW|/dw_min summed): measured/expected = 0.996 .. 1.001.
    """
    ax, ad = np.abs(x.astype(np.float64)), np.abs(d.astype(np.float64))
    xm, dm = ax.max(axis=1), ad.max(axis=1)
    k = lr * xm * dm / dw_min
    ok = k > 0
    BL = np.minimum(np.ceil(k), bl)
    dm = np.where(k > bl, dm * bl / np.where(ok, k, 1.0), dm)
    a0 = np.sqrt(lr / (dw_min * np.where(ok, BL, 1.0)))
    sx = a0 * np.sqrt(dm / np.where(ok, xm, 1.0))
    sd = a0 * np.sqrt(np.where(ok, xm, 1.0) / np.where(ok, dm, 1.0))
    px = np.minimum(sx[:, None] * ax, 1.0).sum(axis=1)
    pd = np.minimum(sd[:, None] * ad, 1.0).sum(axis=1)
    return float(np.sum(np.where(ok, BL * px * pd, 0.0)))


def update_throughput(rows: int, cols: int, device: str = "constant", bl: int = 31,
                      n_cycles: int = 1000, threads: int = 1, half_select: bool = False,
                      lr: float = 0.01, seed: int = 0, repeats: int = 1) -> dict:
    """Time aihwkit's CPU pulsed update of a rows x cols tile (the best of ``repeats`` calls).

    One ``tile.update(x, d)`` call with x: (n_cycles, cols), d: (n_cycles, rows)
    uniform in [-1, 1] (aihwkit loops over the batch, one pulse cycle per row),
    timed with ``time.perf_counter`` after one warm-up call; the fastest of ``repeats``
    calls counts (as for ours in bench_update.py).

    Returns dict(cells_per_s, pulses_per_s, pulses_source, seconds, cycles).
    ``pulses_source`` is "counter" if aihwkit's pulse counters returned data
    (only implemented for CUDA tiles in 1.2.0), else "expected" (analytic
    expectation from the same x, d; see ``_expected_coincidences``).
    """
    if half_select:
        raise ValueError("The 'half_select' parameter of update_throughput must be False: aihwkit 1.2.0 has no half-select disturb model. Got True instead.")
    import torch

    # How we know this is the pulsed CPU path and not a floating-point update:
    # the tile's C++ object is rpu_base.tiles.AnalogTile ("RPUPulsed<float>[...]"
    # in get_brief_info, checked below), pulse_type is StochasticCompressed (not
    # NONE), and the device is not an IdealDevice/FloatingPointDevice, so
    # RPUWeightUpdater takes the SparseBitLineMaker branch.  Checked once by hand:
    # with all device variabilities set to 0, weights after an update from zero
    # are integer multiples of dw_min (|n - round(n)| < 2e-4) and deviate ~35 %
    # from -lr*d^T x, as expected for stochastic pulse trains.
    # Note: the CPU pulsed loop over the batch is serial in aihwkit 1.2.0 (no
    # OpenMP there for single devices), so ``threads`` barely matters.
    tile, cfg = _make_tile(rows, cols, device, bl=bl, construction_seed=seed + 1)
    info = tile.get_brief_info()
    if not info.startswith("RPUPulsed") or cfg.update.pulse_type.name != "STOCHASTIC_COMPRESSED":
        raise RuntimeError(f"not a pulsed tile: {info}")
    tile.set_learning_rate(lr)

    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n_cycles, cols, generator=gen) * 2 - 1
    d = torch.rand(n_cycles, rows, generator=gen) * 2 - 1
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        tile.update(x[:1], d[:1])  # warm-up
        seconds = float("inf")
        for _ in range(max(1, repeats)):
            before = tile.tile.get_pulse_counters()
            t0 = time.perf_counter()
            tile.update(x, d)
            seconds = min(seconds, time.perf_counter() - t0)
            after = tile.tile.get_pulse_counters()
    finally:
        torch.set_num_threads(old_threads)

    if after.numel():
        pulses, source = float((after - before).sum()), "counter"
    else:
        pulses = _expected_coincidences(x.numpy(), d.numpy(), lr, cfg.device.dw_min, bl)
        source = "expected"
    return dict(cells_per_s=rows * cols * n_cycles / seconds, pulses_per_s=pulses / seconds,
                pulses_source=source, seconds=seconds, cycles=n_cycles)


def program_weights_error(target: np.ndarray, n_iter: int = 1000, perfect_reads: bool = False,
                          seed: int = 0) -> dict:
    """Program ``target`` (out, in) with aihwkit's ``AnalogTile.program_weights``.

    aihwkit 1.2.0 (``TileWithPeriphery.program_weights``): target = the weights
    stored by ``set_weights``; weights re-initialised U(-0.01, 0.01); then
    ``max_iter`` iterations of: y = tile.forward(I) (analog read with the
    forward IOParameters, one-hot inputs), tile.update(I, y - target) (pulsed
    update, learning_rate=0.1).  We pass max_iter=n_iter and tolerance=None so
    exactly n_iter iterations run (the default tolerance=0.01 may stop early).
    No scaling: set_weights(apply_weight_scaling=False), weight_scaling_omega=0,
    so target values are used directly in conductance units (|T| <= 0.5 fits
    the default w_max=0.6 on average; w_max has 30 % device-to-device spread).

    Device: ConstantStepDevice at aihwkit defaults (``seed`` only fixes its
    device-to-device variations via construction_seed=seed+1; pulse and read
    noise are clock-seeded in aihwkit); forward IO at defaults, or
    ``is_perfect`` reads when ``perfect_reads``.  Returns dict(err_fro, wall_s,
    n_iter) with err_fro = ||W - T||_F / ||T||_F from the true (not read-out)
    tile weights, plus err_fro_floor = ||clip(T) - T||_F / ||T||_F (T clipped
    to the per-device hard bounds w_min/w_max, 30 % device-to-device spread:
    a floor no programming can beat) and err_fro_reachable = ||W - clip(T)||_F
    / ||T||_F.
    """
    import torch

    target = np.asarray(target, dtype=np.float32)
    tile, _ = _make_tile(target.shape[0], target.shape[1], "constant",
                         perfect_forward=perfect_reads, construction_seed=seed + 1)
    tile.set_weights(torch.from_numpy(target), apply_weight_scaling=False)
    # set_weights clips to each device's hard bounds: this is the target
    # program_weights actually aims at (its "reference" weights).
    reachable = tile.get_weights(apply_weight_scaling=False)[0].numpy().astype(np.float64)
    t0 = time.perf_counter()
    tile.program_weights(max_iter=n_iter, tolerance=None)
    wall_s = time.perf_counter() - t0
    w = tile.get_weights(apply_weight_scaling=False)[0].numpy().astype(np.float64)
    t_norm = np.linalg.norm(target)
    return dict(err_fro=float(np.linalg.norm(w - target) / t_norm), wall_s=wall_s,
                n_iter=n_iter,
                err_fro_reachable=float(np.linalg.norm(w - reachable) / t_norm),
                err_fro_floor=float(np.linalg.norm(reachable - target) / t_norm))


def per_call_us(rows: int, cols: int, batch: int, op: str = "update", threads: int = 1, n_calls: int = 50,
                lr: float = 0.01, seed: int = 0) -> float:
    """Median wall time in microseconds of one aihwkit call on a rows x cols ConstantStep tile
    at its defaults (pulsed update, default forward IO): ``op="update"`` times
    ``tile.update(x, d)`` with ``batch`` vector pairs, ``op="forward"`` times
    ``tile.forward(x)`` with ``batch`` inputs (float32, aihwkit's CPU dtype); one warm-up call
    first, as for ours in bench_update.py."""
    if op not in ("update", "forward"):
        raise ValueError(f"The 'op' parameter of per_call_us must be one of 'update', 'forward'. Got {op!r} instead.")
    import torch

    tile, _ = _make_tile(rows, cols, "constant", construction_seed=seed + 1)
    tile.set_learning_rate(lr)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, cols, generator=gen) * 2 - 1
    d = torch.rand(batch, rows, generator=gen) * 2 - 1
    call = (lambda: tile.update(x, d)) if op == "update" else (lambda: tile.forward(x))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        call()
        times = []
        for _ in range(max(1, n_calls)):
            t0 = time.perf_counter_ns()
            call()
            times.append(time.perf_counter_ns() - t0)
    finally:
        torch.set_num_threads(old_threads)
    return float(np.median(times)) / 1e3
