"""Compile the crossbar kernels of common configurations ahead of use (``progsim warmup``).

Every kernel compiles on its first call and is cached (``cache=True``) in the package's
``__pycache__`` (or numba's fall-back cache folder on a read-only install). A new user's
first script would otherwise wait seconds for each kernel it touches; run once after
installing, this compiles them into the cache, and later processes load them instead.

What it calls, on each device asked for (by class name; ``"all"`` is every class of
:mod:`progsim.devices`), on tiles of the library's defaults otherwise:

* ``update`` of a small tile under no half-selection, V/2 and V/3 (the one-call kernels of
  :func:`progsim._kernels.stochastic_update`), and the same under ``pulses.MeanCount`` (the
  two-step path: :func:`progsim.pulses.make_cycles` and the general kernel);
* with more than one numba thread, ``update`` of a tile above the parallel size under each
  half-selection mode (the parallel variants);
* ``pulse`` (the single-device kernel) under each mode;

and once: ``forward`` of one vector and of a batch of 8 (the periphery's read with BLAS
products and the one with the blocked product; with more than one numba thread, also the
blocked read's parallel variant), ``backward`` and ``read_weights``, and the
patch kernel of :mod:`progsim.nn`'s convolutions (float32 and float64 inputs, and its adjoint).
"""

from __future__ import annotations

import time

import numpy as np

DEFAULT_DEVICES = ("ConstantStep", "SoftBounds")


def _device_classes(names):
    from progsim import devices

    known = {cls.__name__: cls for cls in vars(devices).values()
             if isinstance(cls, type) and issubclass(cls, devices.PulsedDevice) and cls is not devices.PulsedDevice}
    if list(names) == ["all"]:
        return list(known.values())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"The 'devices' parameter of warmup must name device classes of progsim.devices "
                         f"({', '.join(sorted(known))}) or be ['all']. Got {unknown} instead.")
    return [known[n] for n in names]


def warmup(devices=DEFAULT_DEVICES, report=None) -> list[tuple[str, float]]:
    """Call the kernels listed in the module docstring once; returns ``(what, seconds)`` per
    call, in order (a kernel already compiled or cached takes milliseconds). ``report(what,
    seconds)``, when given, is called after each."""
    from progsim import Crossbar, HalfSelect, _config, pulses

    rng = np.random.default_rng(0)
    steps: list[tuple[str, float]] = []

    def timed(what, call):
        t0 = time.perf_counter()
        call()
        steps.append((what, time.perf_counter() - t0))
        if report is not None:
            report(*steps[-1])

    modes = {"none": HalfSelect(), "v2": HalfSelect("v2", strength=0.1), "v3": HalfSelect("v3", strength=0.1)}
    big = int(np.ceil(np.sqrt(_config.SERIAL_BELOW)))  # one cycle on a big x big tile is parallel work
    for cls in _device_classes(devices):
        name = cls.__name__
        for mode, hs in modes.items():
            for scheme in (pulses.Stochastic(), pulses.MeanCount()):
                xb = Crossbar(8, 8, device=cls(), pulses=scheme, half_select=hs, seed=0)
                x, d = rng.uniform(-1, 1, (2, 8)), rng.uniform(-1, 1, (2, 8))
                timed(f"{name} {mode} update ({type(scheme).__name__})", lambda: xb.update(x, d, 0.01))
            timed(f"{name} {mode} pulse", lambda: xb.pulse([0], [1], [2]))
            if _config.num_threads() > 1:
                xp = Crossbar(big, big, device=cls(), half_select=hs, seed=0)
                x, d = rng.uniform(-1, 1, (1, big)), rng.uniform(-1, 1, (1, big))
                timed(f"{name} {mode} update (parallel)", lambda: xp.update(x, d, 0.01))
    xb = Crossbar(8, 8, seed=0)
    x = rng.uniform(-1, 1, (2, 8))
    timed("forward", lambda: xb.forward(x))
    timed("forward (batch of 8)", lambda: xb.forward(rng.uniform(-1, 1, (8, 8))))
    if _config.num_threads() > 1:
        xf = Crossbar(256, 256, seed=0)
        timed("forward (parallel)", lambda: xf.forward(rng.uniform(-1, 1, (8, 256))))
    timed("backward", lambda: xb.backward(x))
    timed("read_weights", lambda: xb.read_weights())
    from progsim.nn._patches import col2im, im2col, rows_to_channels

    geometry = ((3, 3), (1, 1), (1, 1), (1, 1), (4, 4))
    for dtype in (np.float32, np.float64):
        timed(f"convolution patches ({np.dtype(dtype).name})", lambda: im2col(np.ones((1, 2, 4, 4), dtype), geometry))
    timed("convolution patches (adjoint)", lambda: col2im(np.ones((16, 18)), (1, 2, 4, 4), geometry))
    for dtype in (np.float32, np.float64):
        timed(f"layer outputs ({np.dtype(dtype).name})",
              lambda: rows_to_channels(np.ones((4, 3)), np.ones(3, dtype), (2, 3, 2), dtype))
    return steps
