"""The inference backend of the analog layers: an InferenceTile in place of a crossbar.

A layer of :mod:`progsim.nn` built with an :class:`~progsim.inference.InferenceConfig` composes
an :class:`InferenceTile` instead of a Crossbar. Its "tile matrix" ``M`` is the layer's
weight flattened to ``(out_features, tile_in_features)`` (plus the bias as a last column when
the bias is analog, read with a constant input 1).

* The weight is an ordinary trainable ``nn.Parameter``: any torch optimiser trains it
  (hardware-aware training).
* Training forward: ``y = alpha mvm(M~ / alpha, x)`` through the forward periphery ``io``,
  where ``M~ = modifier(M)`` (fresh noise each call) and ``alpha = max|M| / omega``
  (``weight_scaling_omega``; 1 when 0). Backward is digital and straight through:
  ``dx = dy M~`` and ``dM = dy^T x``, computed from the weights used in the forward, so
  quantisation, saturation and noise of the periphery pass no gradient of their own.
* Clipping (``config.clip``) is applied to the weight parameter after each optimiser step,
  as aihwkit clips after each update: a global step post-hook
  (``torch.optim.optimizer.register_optimizer_step_post_hook``, installed with the first
  inference tile) clips the weights of every inference layer whose weight the stepping
  optimiser holds. Every ``torch.optim.Optimizer`` runs it, subclasses included (AnalogSGD
  too), whatever its update rule; forwards never clip, so a clip by sigma acts once per
  step. Weights set otherwise (initialisation, by hand) are clipped at the next step.
* Evaluation forward: once programmed (:meth:`InferenceTile.set_programmed`, called by
  :func:`~progsim.inference.program_analog_weights`), the periphery reads the programmed
  weights, or the drifted ones after :meth:`InferenceTile.drift`, times the drift
  compensation factor; before, the clean weights. The programmed state never touches the
  parameter: ``train()`` trains the clean weights, and programming again replaces the state.

The same class holds the drifted copy of a layer trained in situ on a pulsed crossbar
(:func:`~progsim.inference.drift_analog_weights` attaches it as the layer's ``drift_tile``).
Reads run in NumPy on the CPU through :func:`progsim.periphery.mvm`; outputs and gradients
are returned on the input's device and in its dtype.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from progsim.inference.compensation import GlobalDriftCompensation
from progsim.inference.config import InferenceConfig
from progsim.inference.noise import ProgrammedState
from progsim.nn.base import omega_scale
from progsim.periphery import io_params, mvm

# weight parameter id -> its inference layer, for the optimiser hook
_LAYERS: "weakref.WeakValueDictionary[int, object]" = weakref.WeakValueDictionary()
_HOOK = []


def _clip_after_step(optimizer, args, kwargs) -> None:
    """torch.optim step post-hook: clip the inference layers this optimiser just stepped."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            layer = _LAYERS.get(id(p))
            if layer is not None and layer.weight is p:
                layer.tile.clip(layer)


def _install_hook() -> None:
    if not _HOOK:
        _HOOK.append(register_optimizer_step_post_hook(_clip_after_step))


class _InferenceMVM(torch.autograd.Function):
    """``tile.read(w, x, alpha)`` forward; digital straight-through backward from ``w``."""

    @staticmethod
    def forward(ctx, x, w, tile, alpha):
        ctx.save_for_backward(x, w)
        xn = x.detach().cpu().numpy().astype(np.float64)
        y = tile.read(w.detach().cpu().numpy().astype(np.float64), xn, alpha)
        return torch.from_numpy(y).to(device=x.device, dtype=x.dtype)

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        dx = dy @ w.to(dy.dtype) if ctx.needs_input_grad[0] else None
        dw = (dy.transpose(0, 1) @ x.to(dy.dtype)).to(w.dtype) if ctx.needs_input_grad[1] else None
        return dx, dw, None, None


class InferenceTile:
    """Programmed state, drift and periphery reads of one layer's matrix ``(out_size, in_size)``.

    ``seed`` seeds the periphery's noise and the modifiers' draws. ``state`` is the
    :class:`~progsim.inference.noise.ProgrammedState` (None until programmed), ``target``
    the matrix that was programmed, ``weights_t`` the weights evaluation reads (programmed,
    then drifted), ``t`` the time of the last drift (None: right after programming) and
    ``factor`` the drift compensation factor applied to the outputs (1 without).
    """

    def __init__(self, config: InferenceConfig, out_size: int, in_size: int, seed: int):
        self.config = config
        self.shape = (int(out_size), int(in_size))
        self.seed = int(seed)
        s_io, s_mod = np.random.SeedSequence(self.seed).spawn(2)
        self._io_rng = np.random.default_rng(s_io)
        self._io_p = io_params(config.io)
        self._mod_seed = int(s_mod.generate_state(1, dtype=np.uint32)[0])
        self._gen = None
        self.reads = 0
        self.reset()
        _install_hook()

    def reset(self) -> None:
        """Forget the programmed and drifted state: evaluation reads the clean weights again."""
        self.state: ProgrammedState | None = None
        self.target = None
        self.alpha = 1.0
        self.weights_t = None
        self.t = None
        self.factor = 1.0
        self.compensation: GlobalDriftCompensation | None = None

    @property
    def programmed(self) -> bool:
        return self.state is not None

    @property
    def counters(self) -> dict:
        return {"reads": self.reads}

    # ------------------------------------------------------------------ reads

    def read(self, w: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
        """``alpha mvm(w / alpha, x)`` through the forward periphery (NumPy, float64)."""
        self.reads += x.shape[0]
        if not x.shape[0]:
            return np.zeros((0, w.shape[0]))
        return alpha * mvm(w / alpha, x, self.config.io, self._io_rng, self._io_p)

    def read_eval(self, x: np.ndarray) -> np.ndarray:
        """A read of the programmed (or drifted) weights, compensated (NumPy)."""
        return self.factor * self.read(self.weights_t, x, self.alpha)

    # ------------------------------------------------------------------ programming and drift

    def set_programmed(self, state: ProgrammedState, target: np.ndarray, alpha: float) -> None:
        """Take ``state`` as the programmed weights and calibrate the drift compensation on them
        (a read of the identity reference through the periphery, as aihwkit)."""
        self.reset()
        self.state, self.target, self.alpha = state, np.array(target, dtype=np.float64), float(alpha)
        self.weights_t = state.weights
        self.compensation = GlobalDriftCompensation(self.shape[1])
        self.compensation.calibrate(lambda ref: self.read(state.weights, ref, self.alpha))

    def drift(self, t: float, rng: np.random.Generator, compensate: bool | None = None) -> float:
        """Evaluation reads ``noise_model.weights_at(state, t, rng)`` from now on; with
        compensation (``compensate``, None: the config's) their outputs are multiplied by the
        factor measured on the reference. Returns the factor (1 without compensation)."""
        if self.state is None:
            raise RuntimeError("InferenceTile.drift needs a programmed state: call "
                               "progsim.inference.program_analog_weights(model) first.")
        self.weights_t = self.config.noise_model.weights_at(self.state, t, rng)
        self.t = float(t)
        compensate = self.config.drift_compensation if compensate is None else compensate
        self.factor = 1.0
        if compensate:
            self.factor = float(self.compensation.factor(lambda ref: self.read(self.weights_t, ref, self.alpha)))
        return self.factor

    # ------------------------------------------------------------------ the layer's forward

    def matrix(self, layer) -> torch.Tensor:
        """The layer's tile matrix ``M`` (differentiable): weight rows, bias column if analog."""
        m = layer.weight.reshape(layer.out_features, -1)
        if layer.analog_bias:
            m = torch.cat([m, layer.bias.to(m.dtype)[:, None]], dim=1)
        return m

    def clip(self, layer) -> None:
        """Clip the layer's weight parameter in place (``config.clip``)."""
        if self.config.clip.kind != "none":
            with torch.no_grad():
                layer.weight.copy_(self.config.clip.apply(layer.weight))

    def _generator(self, device) -> torch.Generator:
        if self._gen is None or self._gen.device != torch.device(device):
            self._gen = torch.Generator(device=device).manual_seed(self._mod_seed)
        return self._gen

    def layer_forward(self, layer, rows: torch.Tensor) -> torch.Tensor:
        """The forward of an inference layer on rows ``(n, tile_in_features)`` (module doc)."""
        _LAYERS[id(layer.weight)] = layer
        x = rows
        if layer.analog_bias:
            x = torch.cat([rows, rows.new_ones(rows.shape[0], 1)], dim=1)
        if not layer.training and self.weights_t is not None:
            w = torch.from_numpy(self.weights_t).to(device=rows.device, dtype=rows.dtype)
            return self.factor * _InferenceMVM.apply(x, w, self, self.alpha)
        m = self.matrix(layer)
        alpha = omega_scale(m.detach().cpu().numpy(), self.config.weight_scaling_omega)
        if layer.training:
            m = self.config.modifier.apply(m, self._generator(m.device))
        return _InferenceMVM.apply(x, m, self, alpha)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict:
        """Everything to resume: programmed state, drifted weights, factor and random streams."""
        st = self.state
        out = {"io_rng": self._io_rng.bit_generator.state, "reads": int(self.reads), "alpha": float(self.alpha),
               "factor": float(self.factor), "t": self.t, "target": self.target, "weights_t": self.weights_t,
               "baseline": None if self.compensation is None else self.compensation.baseline,
               "state": None if st is None else {"g_plus": st.g_plus, "g_minus": st.g_minus, "nu_plus": st.nu_plus,
                                                 "nu_minus": st.nu_minus, "scale": float(st.scale)},
               "modifier_rng": None if self._gen is None else self._gen.get_state()}
        return out

    def load_state_dict(self, sd: dict) -> None:
        self.reset()
        self._io_rng.bit_generator.state = sd["io_rng"]
        self.reads = int(sd["reads"])
        if sd["state"] is not None:
            s = sd["state"]
            self.state = ProgrammedState(*(np.asarray(s[k], dtype=np.float64)
                                           for k in ("g_plus", "g_minus", "nu_plus", "nu_minus")), float(s["scale"]))
            self.target = np.asarray(sd["target"], dtype=np.float64)
            self.weights_t = np.asarray(sd["weights_t"], dtype=np.float64)
            self.alpha, self.factor, self.t = float(sd["alpha"]), float(sd["factor"]), sd["t"]
            self.compensation = GlobalDriftCompensation(self.shape[1])
            self.compensation.baseline = float(sd["baseline"])
        if sd["modifier_rng"] is not None:
            self._gen = torch.Generator().manual_seed(self._mod_seed)
            self._gen.set_state(torch.as_tensor(sd["modifier_rng"]))
