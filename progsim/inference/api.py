"""Program a model's analog layers, let them drift, and forget it again.

* :func:`program_analog_weights`: every inference layer (built with an
  :class:`~progsim.inference.InferenceConfig`) gets a programmed state, drawn statistically
  from its noise model or written by a programming algorithm on a crossbar;
* :func:`drift_analog_weights`: every analog layer reads its weights ``t`` seconds after
  programming, inference layers and layers trained in situ on pulsed devices alike;
* :func:`reset_analog_weights`: evaluation reads the clean (trained) weights again.

Layers are visited in ``named_modules`` order and drawn from one generator (``rng``: a seed
or a ``numpy.random.Generator``), so the same seed gives the same programmed model.
"""

from __future__ import annotations

import numpy as np

from progsim import devices as _devices
from progsim.crossbar import Crossbar
from progsim.inference.config import InferenceConfig
from progsim.inference.noise import NoiseModel, PCMLikeNoise, ReRAMLikeNoise, _check_time, as_generator
from progsim.inference.tile import InferenceTile
from progsim.nn.base import AnalogModule, omega_scale
from progsim.programming import program
from progsim.programming.metrics import err_fro


def _layers(model, owner: str):
    if not hasattr(model, "named_modules"):
        raise TypeError(f"The 'model' parameter of {owner} must be a torch.nn.Module. "
                        f"Got {type(model).__name__} instead.")
    return [(name, m) for name, m in model.named_modules() if isinstance(m, AnalogModule)]


def _program_layer(layer, algorithm, gen: np.random.Generator, options: dict) -> dict:
    """Program one inference layer; its report row."""
    tile: InferenceTile = layer.tile
    cfg: InferenceConfig = tile.config
    m = tile.matrix(layer).detach().cpu().numpy().astype(np.float64)
    alpha = omega_scale(m, cfg.weight_scaling_omega)
    nm = cfg.noise_model
    if algorithm is None:
        state = nm.program(m, gen)
        row = {"algorithm": "statistical", "err_fro": err_fro(state.weights, m)}
    else:
        seed = int(gen.integers(0, 2**31 - 1))
        dev = cfg.device
        bound = min(dev.w_max, -dev.w_min)
        bound = bound if np.isfinite(bound) else 1.0
        peak = float(np.abs(m).max())
        scale = peak / (cfg.program_fill * bound) if peak > 0 else 1.0
        xb = Crossbar(*m.shape, device=dev, pulses=cfg.pulses, half_select=cfg.half_select, io=cfg.program_io,
                      seed=seed)
        result = program(xb, m / scale, algorithm=algorithm, **options)
        state = nm.from_programmed(xb.weights * scale, gen, target=m)
        final = result.final
        row = {"algorithm": result.algorithm, "seed": seed, "scale": scale, "stop": result.stop,
               "iterations": int(final["iteration"]), "err_fro_crossbar": float(final["err_fro"]),
               "err_fro": err_fro(state.weights, m)}
        row.update({k: float(final[k]) for k in ("update_cycles", "pulses_full", "pulses_half", "pulses_single",
                                                  "reads") if k in final.index})
    tile.set_programmed(state, m, alpha)
    return row


def program_analog_weights(model, algorithm=None, *, rng=0, **options) -> dict:
    """Program every inference layer of ``model``; returns ``{layer name: report}``.

    ``algorithm=None``: the statistical shortcut, ``config.noise_model.program`` (the
    weights mapped to conductance pairs plus programming noise). A registry key (``"gdp"``,
    ``"svd"``, ``"write-verify"``, ...) or an Algorithm object: per layer, a
    :class:`~progsim.Crossbar` of ``config.device`` (with ``config.pulses``,
    ``half_select``, ``program_io``, seeded from ``rng``) starts at zero and
    :func:`progsim.program` writes the layer's matrix ``M / scale`` into it (``scale`` puts
    ``max|M|`` at ``program_fill`` of the device's bound; ``**options`` go to ``program``:
    budgets, algorithm options); the crossbar's true state times ``scale`` then becomes the
    programmed weights through ``noise_model.from_programmed(weights, rng, target=M)``:
    mapped with the target's conductance scale (entries beyond ``max|M|`` clip at
    ``g_max``), no further programming noise, drift exponents drawn from the target.

    The report of a layer holds ``err_fro`` (``||W_prog - M|| / ||M||``) and, for an
    algorithm, ``err_fro_crossbar`` (the final ``err_fro`` that ``program`` reports, equal to
    ``err_fro`` unless the mapping clipped), the crossbar's ``seed`` and ``scale``, the
    ``stop`` reason, ``iterations`` and the costs (``update_cycles``, ``pulses_full``,
    ``pulses_half``, ``pulses_single``, ``reads``).

    Evaluation forwards read the programmed weights from now on (training forwards keep
    the clean ones); :func:`drift_analog_weights` moves them in time.
    """
    owner = "program_analog_weights"
    layers = [(n, m) for n, m in _layers(model, owner) if isinstance(m.tile, InferenceTile)]
    if not layers:
        raise ValueError(f"The 'model' parameter of {owner} must hold analog layers built with an InferenceConfig "
                         "(e.g. convert_to_analog(model, InferenceConfig())). Got none instead.")
    if algorithm is None and options:
        raise TypeError(f"{owner} takes options ({', '.join(sorted(options))}) only with an algorithm; "
                        "the statistical programming (algorithm=None) has none.")
    gen = as_generator(rng, owner)
    return {name: _program_layer(layer, algorithm, gen, options) for name, layer in layers}


def device_noise_model(device) -> NoiseModel | None:
    """The statistics a pulsed preset device drifts with: the ``"pcm"`` preset
    :class:`PCMLikeNoise`, the ReRAM presets (``"reram-es"``, ``"reram-sb"``)
    :class:`ReRAMLikeNoise`; None for any other device (give a noise model explicitly)."""
    if device == _devices.pcm_like():
        return PCMLikeNoise()
    if device in (_devices.reram_es(), _devices.reram_sb()):
        return ReRAMLikeNoise()
    return None


def _in_situ_tile(layer, noise_model, gen) -> InferenceTile:
    """The drift tile of a layer trained in situ: its current weights taken as programmed."""
    owner = "drift_analog_weights"
    nm = device_noise_model(layer.config.device) if noise_model is None else noise_model
    if nm is None:
        raise ValueError(f"The 'noise_model' parameter of {owner} must be a NoiseModel for the layer of device "
                         f"{type(layer.config.device).__name__} (only the 'pcm' and ReRAM presets have default "
                         "drift statistics). Got None instead.")
    old = layer.drift_tile
    if old is not None and old.config.noise_model == nm:
        return old
    cfg = InferenceConfig(noise_model=nm, io=layer.config.io)
    tile = InferenceTile(cfg, *layer.tile.shape, seed=layer.seed)
    w = layer.alpha * np.asarray(layer.tile.weights, dtype=np.float64)
    tile.set_programmed(nm.from_programmed(w, gen), w, layer.alpha)
    layer.drift_tile = tile
    return tile


def drift_analog_weights(model, t, *, rng=0, noise_model: NoiseModel | None = None,
                         drift_compensation: bool | None = None) -> dict:
    """Evaluation forwards of every analog layer read its weights ``t`` seconds after
    programming; returns ``{layer name: {"t": t, "factor": compensation factor}}``.

    * Inference layers: ``noise_model.weights_at(state, t, rng)`` of their programmed state
      (each call draws afresh from the programmed state, drift being a function of ``t``);
      a layer not yet programmed is first programmed statistically (as
      ``program_analog_weights(model)`` would, from the same generator).
    * Layers trained in situ on a pulsed tile (``TileConfig``): the tile's current weights
      (times ``alpha``, bias column included) are taken as programmed, without programming
      noise, with ``noise_model`` or, when None, the statistics of the tile's preset device
      (:func:`device_noise_model`: PCM or ReRAM; any other device raises ValueError). The
      state is taken at the first call and kept while the tile and the noise model stay the
      same; the layer's ``drift_tile`` holds it and its evaluation forwards read it through
      the tile's forward periphery. The crossbar is never written: ``train()`` forwards and
      updates use it as before, an AnalogSGD update drops the drifted copy, and
      :func:`reset_analog_weights` returns evaluation to the crossbar.
    * Drift compensation (``drift_compensation``; None: the inference config's, True for in
      situ layers): the layer's outputs are multiplied by ``mean|y_0| / mean|y_t|``, both
      read through the periphery with the identity reference (one one-hot input per
      column), ``y_0`` right after programming.
    """
    owner = "drift_analog_weights"
    t = _check_time(t, owner)
    if noise_model is not None and not isinstance(noise_model, NoiseModel):
        raise TypeError(f"The 'noise_model' parameter of {owner} must be a progsim.inference NoiseModel or None. "
                        f"Got {type(noise_model).__name__} instead.")
    if drift_compensation is not None and not isinstance(drift_compensation, bool):
        raise TypeError(f"The 'drift_compensation' parameter of {owner} must be a bool or None. "
                        f"Got {drift_compensation!r} instead.")
    layers = _layers(model, owner)
    if not layers:
        raise ValueError(f"The 'model' parameter of {owner} must hold analog layers. Got none instead.")
    gen = as_generator(rng, owner)
    report = {}
    for name, layer in layers:
        if isinstance(layer.tile, InferenceTile):
            tile = layer.tile
            if not tile.programmed:
                _program_layer(layer, None, gen, {})
            compensate = drift_compensation
        else:
            tile = _in_situ_tile(layer, noise_model, gen)
            compensate = True if drift_compensation is None else drift_compensation
        report[name] = {"t": t, "factor": tile.drift(t, gen, compensate)}
    return report


def reset_analog_weights(model) -> None:
    """Forget every programmed and drifted state: evaluation forwards read the clean weights
    (inference layers) or the crossbar (layers trained in situ) again."""
    for _, layer in _layers(model, "reset_analog_weights"):
        if isinstance(layer.tile, InferenceTile):
            layer.tile.reset()
        layer.drift_tile = None
