"""What every analog layer shares: its tile, the digital scale, the autograd bridge and its state.

A layer composes a tile (:func:`progsim.nn.compound.make_tile`) with a
:class:`~progsim.nn.config.TileConfig`; it does not inherit from either.

* Forward: ``y = alpha * tile.forward(x)`` through the forward periphery (``+ bias`` when the
  bias is digital). Backward (a ``torch.autograd.Function``): ``dx = alpha * tile.backward(dy)``
  through the backward periphery. The Function keeps the forward's tile input ``x`` and, when the
  backward runs, hands the pair ``(x, dy)`` to the layer; :meth:`AnalogModule.apply_update` (called
  by :class:`~progsim.nn.AnalogSGD`) applies ``tile.update(x, dy / alpha, lr)``: one pulsed cycle
  per row, the rows of every forward call in call order. The weight the user sees,
  ``alpha W_tile``, then moves by ``-lr dy x^T`` in expectation: plain SGD with ``lr`` whatever
  the scaling, as aihwkit 1.2.0 does (its ``pre_update`` divides ``d`` by the mapping scale).
  DESIGN.md's ``dy * alpha`` would be SGD on the tile's own state, an effective rate of
  ``lr alpha^2`` on the visible weight, which stalls layers mapped with ``alpha << 1``.
* Pairs are recorded only in training mode with gradients enabled; ``eval()`` and
  ``torch.no_grad()`` forward without recording (and without building a graph under no_grad).
* The analog weight is visible to torch as ``weight``, an ``nn.Parameter`` with
  ``requires_grad=False`` that mirrors ``alpha * tile.weights`` after every change of the tile:
  it is in ``parameters()`` (so :class:`~progsim.nn.AnalogSGD` finds the layer) and in
  ``state_dict``, but it never receives a gradient, so other optimizers skip it. Writing to it
  does not program the tile; :meth:`AnalogModule.set_weights` does.
* ``state_dict`` carries, beside the mirrors, the tile's full state (true and apparent weights,
  per-cell device parameters, counters, random-stream counter and generator states) and
  ``alpha`` as torch's ``_extra_state``, every array as a tensor, so that
  ``torch.load(..., weights_only=True)`` reads it and a resumed run continues bit for bit.

With a :class:`~progsim.inference.InferenceConfig` instead of a TileConfig the layer composes an
:class:`~progsim.inference.tile.InferenceTile`: the weight is then a trainable parameter read
through the periphery with a digital straight-through backward, and the layer can be
programmed and drifted (see :mod:`progsim.inference.tile`). A layer trained in situ may hold a
drifted copy of its tile in ``drift_tile`` that its evaluation forwards read
(:func:`progsim.inference.drift_analog_weights`).

Computation happens in NumPy on the CPU; inputs may live anywhere, outputs and gradients
are returned on the input's device and in its dtype.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
import weakref

import numpy as np
import torch
from torch import nn

from progsim import _config
from progsim.nn._patches import col2im, im2col, rows_to_channels
from progsim.nn.compound import make_tile
from progsim.nn.config import TileConfig

_LAYERS: "weakref.WeakValueDictionary[int, AnalogModule]" = weakref.WeakValueDictionary()

# Tiles with fewer cells than this run their calls on one thread (progsim._config.serial: serial
# kernels, one BLAS thread), and so does torch's unfolding of a convolution's input with fewer
# elements (layers._unfold): a layer's calls are small and come between torch's own parallel
# work, whose OpenMP workers would take the cores a parallel region waits for (same seed, same
# bits whatever the thread count, so this changes speed only).
SERIAL_CELLS = 1 << 16

# A training layer that has recorded this many reads without an update, and whose weight no
# AnalogSGD holds, warns (once per accumulation): it is being trained with an optimizer that
# cannot update it. Gradient accumulation under AnalogSGD never warns, however long.
UNAPPLIED_WARN = 256


def _tile_threads(tile):
    """A context running the enclosed tile calls on one thread when the tile is small."""
    if tile.shape[0] * tile.shape[1] < SERIAL_CELLS:
        return _config.serial()
    return contextlib.nullcontext()


def check_seed(owner: str, seed) -> None:
    """Raise the error of layer ``owner`` for a ``seed`` that is not an int >= 0 (None is drawn
    by the caller before this check)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"The 'seed' parameter of {owner} must be an int >= 0 or None. Got {seed!r} instead.")


def omega_scale(m: np.ndarray, omega: float) -> float:
    """The digital scale ``alpha = max|M| / omega`` that maps a layer's matrix onto ``omega``
    device units (1 when ``omega`` is 0 or ``M`` is all zero)."""
    peak = float(np.abs(m).max()) if m.size else 0.0
    return peak / omega if omega > 0 and peak > 0 else 1.0


def analog_layer_of(p: torch.Tensor):
    """The analog layer whose ``weight`` is ``p`` (None for a digital parameter)."""
    layer = _LAYERS.get(id(p))
    return layer if layer is not None and layer.weight is p else None


def _to_torch(obj):
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, dict):
        return {k: _to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_torch(v) for v in obj)
    return obj


def _to_numpy(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v) for v in obj)
    return obj


_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _like(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """``a`` (any strides) as a contiguous tensor in ``like``'s dtype and on its device (cast by
    NumPy for a CPU float32 or float64 tensor: the same rounding as torch's, without a torch
    operation; a contiguous ``a`` of that dtype is not copied)."""
    np_dtype = _NUMPY_DTYPES.get(like.dtype)
    if np_dtype is not None and like.is_cpu:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np_dtype))
    return torch.from_numpy(np.ascontiguousarray(a)).to(device=like.device, dtype=like.dtype)


def _numpy(t: torch.Tensor) -> np.ndarray:
    """``t`` as a CPU NumPy array (dtypes NumPy lacks, bfloat16, widened to float64 first)."""
    t = t.detach().cpu()
    return (t if t.dtype in _NUMPY_DTYPES or t.dtype == torch.float16 else t.to(torch.float64)).numpy()


def _mirror(param: torch.Tensor, values: np.ndarray, views: dict) -> None:
    """``param[...] = values`` (same number of elements, row-major), cast to ``param``'s dtype.

    A contiguous CPU float32/float64 ``param`` is written through a NumPy view of its memory,
    kept in ``views`` (the layer's) under ``id(param)`` with the storage address it was made
    for: a parameter whose storage was replaced (``module.float()`` assigns ``param.data``)
    gets a new view. The view holds the storage it was made for, so that address cannot be
    reused while the entry lives."""
    entry = views.get(id(param))
    if entry is not None and entry[0] is param and entry[1] == param.data_ptr():
        np.copyto(entry[2], values.reshape(entry[2].shape), casting="same_kind")
    elif param.dtype in _NUMPY_DTYPES and param.is_cpu and param.is_contiguous():
        view = param.detach().numpy().reshape(values.shape)
        views[id(param)] = (param, param.data_ptr(), view)
        np.copyto(view, values, casting="same_kind")
    else:
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.ascontiguousarray(values)).reshape(param.shape))


def _output(y: np.ndarray, bias, like: torch.Tensor, shape) -> torch.Tensor:
    """The tile's output rows ``y`` (float64, (N * P, C): sample by sample, positions in order) as
    a tensor of ``shape`` (N, C, ...; P positions after the channel axis) in ``like``'s dtype and
    on its device, plus the digital ``bias`` (a tensor or None) along the channels, added in the
    output's dtype as ``y + bias`` in torch would. One compiled pass for a CPU float32 or
    float64 output (:func:`progsim.nn._patches.rows_to_channels`), torch's operations else."""
    np_dtype = _NUMPY_DTYPES.get(like.dtype)
    if np_dtype is not None and like.is_cpu and (bias is None or bias.is_cpu):
        b = None if bias is None else np.ascontiguousarray(bias.detach().to(like.dtype).numpy())
        return torch.from_numpy(rows_to_channels(y, b, shape, np_dtype))
    n, c = shape[0], shape[1]
    out = _like(y.reshape(n, -1, c).transpose(0, 2, 1).reshape(shape), like)
    if bias is None:
        return out
    view = [1] * out.dim()
    view[1] = -1
    return out + bias.detach().to(device=out.device, dtype=out.dtype).reshape(view)


@torch.compiler.disable
def _eagerly(fn, *args):
    """``fn(*args)`` outside torch.compile's tracing: under ``torch.compile`` a layer's analog
    call (NumPy and numba, which the compiler cannot trace) breaks the graph and runs eagerly,
    while the digital parts of the model compile. Eager calls do not come through here (the
    wrapper costs microseconds a call)."""
    return fn(*args)


def _bias_grad(dy: torch.Tensor, dtype, channel_axis: int) -> torch.Tensor:
    """The gradient of a digital bias of ``dtype`` added along ``channel_axis``: ``dy`` summed
    over the other axes."""
    dims = [i for i in range(dy.dim()) if i != channel_axis]
    return dy.sum(dim=dims).to(dtype)


class _TileMVM(torch.autograd.Function):
    """``alpha * tile.forward(x) (+ bias)`` for rows ``x`` of shape (n, tile_in_features);
    backward ``alpha * tile.backward(dy)``, recording ``(x, dy)``, and ``dy`` summed for the bias."""

    @staticmethod
    def forward(ctx, x, bias, token, layer, record):
        xin = layer._tile_input(x)
        ctx.layer, ctx.xin, ctx.record, ctx.seq = layer, xin, record, next(layer._seq)
        ctx.bias_dtype = None if bias is None else bias.dtype
        y = layer._read(xin)
        return _output(y, bias, x, y.shape)

    @staticmethod
    def backward(ctx, dy):
        d = _numpy(dy).astype(np.float64)
        g = ctx.layer._backward_rows(d, ctx)
        dx = _like(g, dy) if g is not None else None
        db = _bias_grad(dy, ctx.bias_dtype, 1) if ctx.needs_input_grad[1] else None
        return dx, db, None, None, None


class _ConvTileMVM(torch.autograd.Function):
    """An unfolded convolution on the tile: ``x`` of shape (N, C, H, W) is cut into its patches
    (:func:`progsim.nn._patches.im2col`; rows ordered sample by sample, positions row-major),
    read as :class:`_TileMVM` reads rows, and returned as (N, out_channels, Ho, Wo) with the
    digital bias added; backward reads ``dy`` back through the tile and folds the patch
    gradients onto ``x`` (:func:`progsim.nn._patches.col2im`). One autograd node per
    convolution: no torch unfold, layout copies or bias addition in the graph."""

    @staticmethod
    def forward(ctx, x, bias, token, layer, record, geometry):
        xin, y = layer._conv_read(x, geometry)
        ctx.layer, ctx.xin, ctx.record, ctx.seq = layer, xin, record, next(layer._seq)
        ctx.geometry, ctx.in_shape = geometry, tuple(x.shape)
        ctx.bias_dtype = None if bias is None else bias.dtype
        return _output(y, bias, x, (x.shape[0], layer.out_features, *geometry[4]))

    @staticmethod
    def backward(ctx, dy):
        n, c_out = dy.shape[0], dy.shape[1]
        npos = math.prod(dy.shape[2:])  # explicit: reshape cannot infer -1 for an empty batch
        d = np.ascontiguousarray(_numpy(dy).reshape(n, c_out, npos).transpose(0, 2, 1), dtype=np.float64)
        g = ctx.layer._backward_rows(d.reshape(-1, c_out), ctx)
        dx = _like(col2im(g, ctx.in_shape, ctx.geometry), dy) if g is not None else None
        db = _bias_grad(dy, ctx.bias_dtype, 1) if ctx.needs_input_grad[1] else None
        return dx, db, None, None, None, None


class AnalogModule(nn.Module):
    """Base of the analog layers: one tile holding a weight of ``weight_shape``
    (``(out_features, tile_in_features)`` once flattened) and an optional bias.

    Subclasses reshape their inputs into rows of ``tile_in_features`` and call :meth:`_mvm`.
    """

    _optimizer_held = False  # set on the layer by the AnalogSGD that holds its weight

    def __init__(self, weight_shape, bias: bool, config: TileConfig | None, seed: int | None, dtype, owner: str):
        super().__init__()
        from progsim.inference.config import InferenceConfig  # progsim.inference imports progsim.nn

        config = TileConfig() if config is None else config
        if not isinstance(config, (TileConfig, InferenceConfig)):
            raise TypeError(f"The 'config' parameter of {owner} must be a progsim.nn.TileConfig, a "
                            f"progsim.inference.InferenceConfig or None. Got {type(config).__name__} instead.")
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        check_seed(owner, seed)
        if not isinstance(bias, bool):
            raise TypeError(f"The 'bias' parameter of {owner} must be a bool. Got {bias!r} instead.")
        self.config, self.seed = config, int(seed)
        self.weight_shape = tuple(int(s) for s in weight_shape)
        self.out_features = self.weight_shape[0]
        self.tile_in_features = int(np.prod(self.weight_shape[1:]))
        self.analog_bias = bias and not config.digital_bias
        # an InferenceConfig gives the inference backend (progsim.inference.tile): a trainable weight
        self._inference = isinstance(config, InferenceConfig)
        n_in = self.tile_in_features + int(self.analog_bias)
        if self._inference:
            from progsim.inference.tile import InferenceTile
            self.tile = InferenceTile(config, self.out_features, n_in, self.seed)
        else:
            self.tile = make_tile(config, self.out_features, n_in, self.seed)
        self.drift_tile = None  # in-situ layers: the drifted copy (progsim.inference.drift_analog_weights)
        self.alpha = 1.0
        factory = {"dtype": dtype}
        self.weight = nn.Parameter(torch.zeros(self.weight_shape, **factory), requires_grad=self._inference)
        if bias:
            self.bias = nn.Parameter(torch.zeros(self.out_features, **factory),
                                     requires_grad=self._inference or not self.analog_bias)
        else:
            self.register_parameter("bias", None)
        self._pending: list = []
        self._mirror_views: dict = {}  # _mirror's NumPy views of the mirrors' memory
        self._seq = itertools.count()
        self._token = torch.empty(0, requires_grad=True)  # makes the Function record when x needs no grad
        if not self._inference:
            _LAYERS[id(self.weight)] = self

    def __getstate__(self):
        """The module's state for pickling and copying, without :func:`_mirror`'s views (which
        would carry a second copy of the weights; the copy makes its own on its first sync)."""
        state = super().__getstate__()
        state["_mirror_views"] = {}
        return state

    # ------------------------------------------------------------------ weights

    def reset_parameters(self) -> None:
        """torch's default initialisation (as ``nn.Linear``/``nn.ConvNd``), programmed exactly."""
        w = torch.empty(self.weight_shape, dtype=torch.float64)
        nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        b = None
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.tile_in_features) if self.tile_in_features > 0 else 0.0
            b = torch.empty(self.out_features, dtype=torch.float64).uniform_(-bound, bound)
        self.set_weights(w, b)

    def set_weights(self, weight, bias=None) -> None:
        """Program ``weight`` (and ``bias``) exactly, within each cell's bounds; chooses ``alpha``
        from ``config.weight_scaling_omega``. ``bias`` is required when the layer has one."""
        w = torch.as_tensor(weight).detach().cpu().to(torch.float64)
        if tuple(w.shape) != self.weight_shape:
            raise ValueError(f"The 'weight' parameter of {type(self).__name__}.set_weights must have shape "
                             f"{self.weight_shape}. Got {tuple(w.shape)} instead.")
        m = w.reshape(self.out_features, -1).numpy()
        if self.bias is not None:
            if bias is None:
                raise ValueError(f"The 'bias' parameter of {type(self).__name__}.set_weights must be a tensor of "
                                 f"shape ({self.out_features},) (the layer has a bias). Got None instead.")
            b = torch.as_tensor(bias).detach().cpu().to(torch.float64)
            if tuple(b.shape) != (self.out_features,):
                raise ValueError(f"The 'bias' parameter of {type(self).__name__}.set_weights must have shape "
                                 f"({self.out_features},). Got {tuple(b.shape)} instead.")
            if self.analog_bias:
                m = np.concatenate([m, b.numpy()[:, None]], axis=1)
            else:
                with torch.no_grad():
                    self.bias.copy_(b)
        for name, v in (("weight", m), ("bias", m)):
            if not np.all(np.isfinite(v)):
                raise ValueError(f"The '{name}' parameter of {type(self).__name__}.set_weights must be finite. "
                                 "Got non-finite entries instead.")
        if self._inference:  # the weights live in the parameters; a programmed state is stale now
            with torch.no_grad():
                self.weight.copy_(w.to(self.weight.dtype))
                if self.analog_bias:
                    self.bias.copy_(b)
            self.tile.reset()
            return
        self.alpha = omega_scale(m, self.config.weight_scaling_omega)
        self.tile.set_weights(m / self.alpha)
        self._sync()

    def get_weights(self):
        """``(weight, bias)``: the tile's true state times ``alpha`` (bias None when absent); the
        clean parameters of an inference layer."""
        if self._inference:
            w = self.weight.detach().cpu().to(torch.float64).clone()
            return w, None if self.bias is None else self.bias.detach().cpu().to(torch.float64).clone()
        m = self.alpha * self.tile.weights
        w = torch.from_numpy(m[:, :self.tile_in_features].reshape(self.weight_shape).copy())
        if self.bias is None:
            return w, None
        b = torch.from_numpy(m[:, -1].copy()) if self.analog_bias else self.bias.detach().to(torch.float64).clone()
        return w, b

    def _sync(self) -> None:
        """Refresh the torch mirrors from the tile (after every change of it, which also drops a
        drifted copy of its former weights): ``alpha * W_tile`` rounded to the mirrors' dtype,
        written straight into their memory when they are contiguous CPU tensors."""
        if self.drift_tile is not None:
            self.drift_tile = None
        if self._inference:
            return
        m = self.tile.weights
        if self.alpha != 1.0:
            m *= self.alpha
        w = m[:, :self.tile_in_features] if self.analog_bias else m
        _mirror(self.weight, w, self._mirror_views)
        if self.analog_bias:
            _mirror(self.bias, m[:, -1], self._mirror_views)

    # ------------------------------------------------------------------ passes

    def _tile_input(self, x: torch.Tensor) -> np.ndarray:
        """Rows ``x`` (n, tile_in_features) as the tile's float64 input (a column of ones appended
        for an analog bias), always a copy (the caller may change ``x`` before the update reads
        the kept input)."""
        x = _numpy(x)
        if not self.analog_bias:
            return x.astype(np.float64)
        xin = np.empty((x.shape[0], x.shape[1] + 1))
        xin[:, :-1] = x
        xin[:, -1] = 1.0
        return xin

    def _read(self, xin: np.ndarray) -> np.ndarray:
        """``alpha * tile.forward(xin)`` (or the drifted copy's evaluation read), float64 (n, out)."""
        if not xin.shape[0]:
            return np.zeros((0, self.out_features))
        if self.drift_tile is not None and not self.training:
            return np.asarray(self.drift_tile.read_eval(xin), dtype=np.float64)
        with _tile_threads(self.tile):
            y = self.tile.forward(xin)
        if self.alpha != 1.0:
            y *= self.alpha
        return y

    def _backward_rows(self, d: np.ndarray, ctx) -> np.ndarray | None:
        """The backward of a recorded read: keeps ``(x, d)`` for the update when the read was
        recorded and returns ``alpha * tile.backward(d)`` without the bias column (None when the
        input needs no gradient)."""
        if ctx.record:
            self._pending.append((ctx.seq, ctx.xin, d))
            if len(self._pending) == UNAPPLIED_WARN and not self._optimizer_held:
                warnings.warn(
                    f"{type(self).__name__} has kept {UNAPPLIED_WARN} recorded reads for its pulsed update, and no "
                    "progsim.nn.AnalogSGD holds its weight: torch's own optimizers cannot update an analog tile "
                    "(its weight never has a gradient), so the tile does not learn and the records keep growing. "
                    "Train with progsim.nn.AnalogSGD(model.parameters(), lr=...), or run forwards that should not "
                    "update the tile under model.eval() or torch.no_grad() (drop_pending() forgets the records).",
                    RuntimeWarning, stacklevel=2)
        if not ctx.needs_input_grad[0]:
            return None
        with _tile_threads(self.tile):
            g = self.tile.backward(d)
        if self.alpha != 1.0:
            g *= self.alpha
        return g[:, :self.tile_in_features] if self.analog_bias else g

    def _digital_bias(self):
        return None if self.bias is None or self.analog_bias else self.bias

    def _check_float(self, x: torch.Tensor) -> None:
        if not torch.is_floating_point(x):
            raise TypeError(f"The input of {type(self).__name__} must be a floating-point tensor. "
                            f"Got dtype {x.dtype} instead.")

    def _records(self, x: torch.Tensor):
        """Whether a read of ``x`` goes through the autograd Function (gradients on, and training
        or an input that needs a gradient), and whether it records its pair for the update."""
        if _LAYERS.get(id(self.weight)) is not self:  # a new weight Parameter (e.g. after load or copy)
            _LAYERS[id(self.weight)] = self
        record = self.training
        bias = self._digital_bias()
        grad = torch.is_grad_enabled() and (record or x.requires_grad or (bias is not None and bias.requires_grad))
        return grad, record

    def _mvm(self, rows: torch.Tensor) -> torch.Tensor:
        """``alpha * tile.forward(rows) + bias`` for rows of shape (n, tile_in_features), differentiable
        in ``rows`` and the digital bias."""
        if torch.compiler.is_compiling():
            return _eagerly(self._mvm, rows)
        self._check_float(rows)
        if self._inference:
            return self._add_bias(self.tile.layer_forward(self, rows), (-1,))
        grad, record = self._records(rows)
        bias = self._digital_bias()
        if not grad:
            y = self._read(self._tile_input(rows))
            return _output(y, bias, rows, y.shape)
        return _TileMVM.apply(rows, bias, self._token if record else None, self, record)

    def _conv_mvm(self, x4: torch.Tensor, geometry) -> torch.Tensor:
        """The unfolded convolution of ``x4`` (N, C, H, W) on the tile plus the digital bias, as
        (N, out_channels, Ho, Wo); ``geometry`` is ``(kernel, dilation, padding, stride, out_hw)``,
        each a pair."""
        if torch.compiler.is_compiling():
            return _eagerly(self._conv_mvm, x4, geometry)
        self._check_float(x4)
        grad, record = self._records(x4)
        if not grad:
            return _output(self._conv_read(x4, geometry)[1], self._digital_bias(), x4,
                           (x4.shape[0], self.out_features, *geometry[4]))
        return _ConvTileMVM.apply(x4, self._digital_bias(), self._token if record else None, self, record, geometry)

    def _conv_read(self, x4: torch.Tensor, geometry):
        """``(xin, y)``: the tile input rows of ``x4``'s patches (:func:`progsim.nn._patches.im2col`,
        with the ones column of an analog bias) and their read :meth:`_read`, float64 rows
        (N * Ho * Wo, out_channels) in the patches' order (:func:`_output` lays them out)."""
        xin = im2col(_numpy(x4), geometry, self.analog_bias)
        return xin, self._read(xin)

    def _add_bias(self, y: torch.Tensor, view) -> torch.Tensor:
        """``y + bias`` in torch (the inference backend, whose read is a torch graph)."""
        if self.bias is None or self.analog_bias:
            return y
        b = self.bias if self.bias.dtype == y.dtype else self.bias.to(y.dtype)
        return y + (b if len(view) == 1 else b.view(view))

    # ------------------------------------------------------------------ training

    @property
    def has_pending_update(self) -> bool:
        return bool(self._pending)

    def apply_update(self, lr: float) -> None:
        """Apply the recorded ``(x, dy)`` pairs as pulsed cycles ``tile.update(x, dy / alpha, lr)``,
        in the order of the forward calls, then forget them."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if len(pending) == 1:
            x, d = pending[0][1], pending[0][2]
        else:
            pending.sort(key=lambda p: p[0])
            x = np.concatenate([p[1] for p in pending])
            d = np.concatenate([p[2] for p in pending])
        if self.alpha != 1.0:  # d / 1.0 is d bit for bit
            d = d / self.alpha
        with _tile_threads(self.tile):
            self.tile.update(x, d, lr)
        self._sync()

    def drop_pending(self) -> None:
        """Forget recorded pairs without updating (e.g. after a backward that is not followed by a step)."""
        self._pending = []

    @property
    def counters(self) -> dict:
        return self.tile.counters

    # ------------------------------------------------------------------ state

    def get_extra_state(self):
        return {"alpha": float(self.alpha), "tile": _to_torch(self.tile.state_dict())}

    def set_extra_state(self, state) -> None:
        self.alpha = float(state["alpha"])
        self.tile.load_state_dict(_to_numpy(state["tile"]))
        self._pending = []
        self._sync()

    def _config_repr(self) -> str:
        if self._inference:
            c = self.config
            return (f"inference, noise_model={type(c.noise_model).__name__}, modifier={c.modifier.kind}, "
                    f"clip={c.clip.kind}" + (f", omega={c.weight_scaling_omega:g}" if c.weight_scaling_omega else "")
                    + ("" if c.digital_bias else ", analog_bias=True"))
        dev = self.config.device
        hs = self.config.half_select
        return (f"device={type(dev).__name__}, pulses={type(self.config.pulses).__name__}, "
                f"half_select={hs.mode}" + (f"({hs.strength:g})" if hs.mode != "none" else "")
                + (f", omega={self.config.weight_scaling_omega:g}" if self.config.weight_scaling_omega else "")
                + ("" if self.config.digital_bias else ", analog_bias=True"))
