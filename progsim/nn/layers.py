"""Analog layers: Linear, Conv1d, Conv2d (unfolded onto one crossbar), their grouped forms (one
crossbar per group) and a Sequential.

Each is a ``torch.nn.Module`` with its parameters registered, ``reset_parameters`` and
``extra_repr``; it holds one tile (see :mod:`progsim.nn.base`). A convolution is unfolded: its kernel is a
``(out_channels, in_channels * prod(kernel))`` crossbar and every output position of every
sample is one read (and, in training, one update cycle), sample by sample, positions in
row-major order. The patches are cut by a compiled kernel (:mod:`progsim.nn._patches`) inside
the layer's one autograd node (``progsim.nn.base._ConvTileMVM``), the columns in
``torch.nn.functional.unfold``'s order; an inference layer (``InferenceConfig``), whose read is a
torch graph differentiable in its weight and input, unfolds with ``F.unfold``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from progsim.nn.base import SERIAL_CELLS, AnalogModule, check_seed
from progsim.nn.config import TileConfig


def _check_int(owner, name, value, low=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"The '{name}' parameter of {owner} must be an int >= {low}. Got {value!r} instead.")
    return value


def _tuple(owner, name, value, n, low):
    vals = (value,) * n if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(vals, (tuple, list)) or len(vals) != n:
        raise ValueError(f"The '{name}' parameter of {owner} must be an int >= {low} or a tuple of {n} of them. "
                         f"Got {value!r} instead.")
    return tuple(_check_int(owner, name, v, low) for v in vals)


def _same_padding(owner, kernel_size, stride, dilation, n):
    """torch's ``padding="same"`` as explicit padding: ``dilation * (kernel - 1) / 2`` on each side
    of each dimension, for stride 1 (as torch requires). An even total (an odd window) only:
    torch pads the extra entry on one side, which the unfolded convolution's symmetric
    padding cannot express."""
    ks, ds = _tuple(owner, "kernel_size", kernel_size, n, 1), _tuple(owner, "dilation", dilation, n, 1)
    if _tuple(owner, "stride", stride, n, 1) != (1,) * n:
        raise ValueError(f"The 'padding' parameter of {owner} can be 'same' only with stride 1 (as in torch). "
                         f"Got stride {stride!r} instead.")
    total = [d * (k - 1) for k, d in zip(ks, ds)]
    if any(t % 2 for t in total):
        raise ValueError(f"The 'padding' parameter of {owner} can be 'same' only when dilation * (kernel_size - 1) "
                         f"is even in every dimension (torch then pads one side more, which is not supported; "
                         f"give the padding explicitly). Got kernel_size {kernel_size!r}, dilation {dilation!r}.")
    return tuple(t // 2 for t in total)


# torch's padding modes: "zeros" pads the patches themselves; the others pad the input first, as
# torch's own convolutions do (``F.pad``, differentiable), and the layer then convolves unpadded.
_PAD_MODES = ("zeros", "reflect", "replicate", "circular")


def _unfold(x, kernel_size, dilation, padding, stride, serial: bool):
    """``F.unfold``, on one torch thread when ``serial``: for a small input its loop over the
    batch would open an OpenMP region that waits for torch's workers far longer than the copy
    takes (the same values either way)."""
    n_threads = torch.get_num_threads()
    if not serial or n_threads == 1:
        return F.unfold(x, kernel_size, dilation=dilation, padding=padding, stride=stride)
    torch.set_num_threads(1)
    try:
        return F.unfold(x, kernel_size, dilation=dilation, padding=padding, stride=stride)
    finally:
        torch.set_num_threads(n_threads)


class AnalogLinear(AnalogModule):
    """``y = alpha * tile.forward(x) + bias``: a linear layer on one crossbar.

    Inputs ``(*, in_features)`` (any leading dimensions, or none) give ``(*, out_features)``.
    ``seed`` seeds the tile (None: drawn from torch's generator, so ``torch.manual_seed``
    governs it); ``dtype`` is the dtype of the torch mirrors (the tile's storage is
    ``config.dtype``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, config: TileConfig | None = None,
                 *, seed: int | None = None, dtype=None):
        _check_int("AnalogLinear", "in_features", in_features)
        _check_int("AnalogLinear", "out_features", out_features)
        self.in_features = in_features
        super().__init__((out_features, in_features), bias, config, seed, dtype, "AnalogLinear")
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[-1] != self.in_features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"The input of AnalogLinear must be a tensor of shape (*, {self.in_features}). "
                             f"Got {shape} instead.")
        if x.dim() == 2:
            return self._mvm(x)
        lead = x.shape[:-1]
        return self._mvm(x.reshape(-1, self.in_features)).reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                + self._config_repr())

    @classmethod
    def from_digital(cls, module: nn.Linear, config: TileConfig | None = None, *, seed=None) -> "AnalogLinear":
        """An AnalogLinear programmed with ``module``'s weight and bias."""
        layer = cls(module.in_features, module.out_features, module.bias is not None, config, seed=seed,
                    dtype=module.weight.dtype)
        layer.set_weights(module.weight.detach(), None if module.bias is None else module.bias.detach())
        return layer


def _check_conv_input(layer, x, n: int) -> None:
    """Raise the error of a convolution ``layer`` with ``n`` spatial dimensions for an input ``x``
    that is not a (batched or unbatched) tensor with its ``in_channels``."""
    if not isinstance(x, torch.Tensor) or x.dim() not in (n + 1, n + 2) or x.shape[-n - 1] != layer.in_channels:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"The input of {type(layer).__name__} must be a tensor of shape (N, {layer.in_channels}, "
                         f"{'L' if n == 1 else 'H, W'}) or ({layer.in_channels}, {'L' if n == 1 else 'H, W'}). "
                         f"Got {shape} instead.")


def _conv_from_digital(cls, module, config, seed):
    """An analog convolution ``cls`` of torch convolution ``module``'s geometry, programmed with
    its weight and bias."""
    layer = cls(module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                module.dilation, module.groups, module.bias is not None, module.padding_mode, config, seed=seed,
                dtype=module.weight.dtype)
    layer.set_weights(module.weight.detach(), None if module.bias is None else module.bias.detach())
    return layer


class _AnalogConvNd(AnalogModule):
    """A convolution with ``n`` spatial dimensions, unfolded onto one crossbar. ``padding_mode``
    is torch's: ``"zeros"`` pads the patches; ``"reflect"``, ``"replicate"`` and ``"circular"``
    pad the input with ``F.pad`` first (differentiable, as torch's convolutions do)."""

    n_dims = 2
    groups = 1  # torch's geometry: one group (grouped convolutions are _AnalogGroupedConvNd)
    padding_mode = "zeros"  # set per layer; the class default serves layers pickled before it existed

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", config=None, *, seed=None, dtype=None):
        owner, n = type(self).__name__, self.n_dims
        _check_int(owner, "in_channels", in_channels)
        _check_int(owner, "out_channels", out_channels)
        if groups != 1:
            raise ValueError(f"The 'groups' parameter of {owner} must be 1: a grouped convolution is one tile per "
                             f"group, progsim.nn.AnalogGrouped{owner[len('Analog'):]} (convert_to_analog picks it). "
                             f"Got {groups!r} instead.")
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"The 'padding_mode' parameter of {owner} must be one of "
                             f"{', '.join(map(repr, _PAD_MODES))}. Got {padding_mode!r} instead.")
        self.padding_mode = padding_mode
        if padding == "valid":
            padding = 0
        elif padding == "same":
            padding = _same_padding(owner, kernel_size, stride, dilation, n)
        self.in_channels, self.kernel_size = in_channels, _tuple(owner, "kernel_size", kernel_size, n, 1)
        self.stride = _tuple(owner, "stride", stride, n, 1)
        self.padding = _tuple(owner, "padding", padding, n, 0)
        self.dilation = _tuple(owner, "dilation", dilation, n, 1)
        super().__init__((out_channels, in_channels, *self.kernel_size), bias, config, seed, dtype, owner)
        self.out_channels = out_channels
        self.reset_parameters()

    def _as_2d(self, t):
        """Spatial parameters padded to two dimensions (Conv1d runs as a 1 x k Conv2d)."""
        return (1,) * (2 - self.n_dims) + tuple(t) if self.n_dims < 2 else tuple(t)

    def _geometry(self, hw, in_shape):
        """``(kernel, dilation, padding, stride, out_hw)``, each a pair, for an input of spatial
        shape ``hw`` (two dimensions; ``in_shape`` as given, for the error), kept per shape and
        parameters (a layer sees few input shapes, and its forward runs once per batch)."""
        key = (hw, self.kernel_size, self.stride, self.padding, self.dilation, self.padding_mode)
        cache = self.__dict__.setdefault("_geometries", {})
        geometry = cache.get(key)
        if geometry is None:
            n = self.n_dims
            k, s = self._as_2d(self.kernel_size), self._as_2d(self.stride)
            p, d = (0,) * (2 - n) + self.padding, self._as_2d(self.dilation)
            if self.padding_mode != "zeros":  # ``hw`` is the shape after forward's F.pad
                p = (0, 0)
            out_hw = tuple((hw[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2))
            if min(out_hw) < 1:
                raise ValueError(f"The input of {type(self).__name__} is too small for the kernel: spatial shape "
                                 f"{in_shape} gives an output of {out_hw[2 - n:]}.")
            geometry = cache[key] = (k, d, p, s, out_hw)
        return geometry

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.n_dims
        _check_conv_input(self, x, n)
        single = x.dim() == n + 1
        xb = x.unsqueeze(0) if single else x
        in_shape = tuple(xb.shape[2:])
        if self.padding_mode != "zeros" and any(self.padding):
            # F.pad takes (left, right) pairs from the last dimension back
            pads = tuple(q for v in reversed(self.padding) for q in (v, v))
            xb = F.pad(xb, pads, mode=self.padding_mode)
        x4 = xb.unsqueeze(2) if n == 1 else xb
        geometry = self._geometry(tuple(x4.shape[2:]), in_shape)
        k, d, p, s, out_hw = geometry
        if self._inference:  # the inference read is a torch graph in the weight: unfold in torch
            size = x4.shape[0] * x4.shape[1] * math.prod(k) * math.prod(out_hw)  # elements of the unfolded input
            cols = _unfold(x4, k, d, p, s, serial=size < SERIAL_CELLS)  # (N, K, L)
            nb, kk, npos = cols.shape
            y = self._mvm(cols.transpose(1, 2).reshape(nb * npos, kk))
            y = y.reshape(nb, npos, self.out_channels).transpose(1, 2).reshape(nb, self.out_channels, *out_hw)
        else:
            y = self._conv_mvm(x4, geometry)
        if n == 1:
            y = y.reshape(y.shape[0], self.out_channels, out_hw[1])
        return y[0] if single else y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, bias={self.bias is not None}, "
                + ("" if self.padding_mode == "zeros" else f"padding_mode={self.padding_mode!r}, ")
                + self._config_repr())

    @classmethod
    def from_digital(cls, module, config: TileConfig | None = None, *, seed=None):
        """An analog convolution programmed with ``module``'s weight and bias (a grouped one,
        :class:`AnalogGroupedConv2d` or :class:`AnalogGroupedConv1d`, for ``groups > 1``)."""
        if module.groups != 1:
            return _GROUPED[cls].from_digital(module, config, seed=seed)
        return _conv_from_digital(cls, module, config, seed)


class AnalogConv1d(_AnalogConvNd):
    """``nn.Conv1d`` on one crossbar of shape ``(out_channels, in_channels * kernel_size)``."""

    n_dims = 1


class AnalogConv2d(_AnalogConvNd):
    """``nn.Conv2d`` on one crossbar of shape ``(out_channels, in_channels * kh * kw)``."""

    n_dims = 2


class _AnalogGroupedConvNd(nn.Module):
    """torch's grouped convolution (``groups > 1``; depthwise when ``groups == in_channels``):
    one analog convolution per group, on its own tile of shape ``(out_channels / groups,
    in_channels / groups * prod(kernel))``, reading its slice of the input channels; the
    groups' outputs are concatenated along the channels, as torch's. Group ``j`` holds output
    channels ``j * out_channels / groups`` onward and has the seed ``seed + j``. A crossbar
    would hold such a kernel either so or as a block-diagonal matrix whose zero blocks it
    must keep at zero under every update; separate tiles model the first. The groups are read
    and updated one after the other (a Python loop over the groups)."""

    conv_cls: type = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=2,
                 bias=True, padding_mode="zeros", config=None, *, seed=None, dtype=None):
        super().__init__()
        owner = type(self).__name__
        _check_int(owner, "in_channels", in_channels)
        _check_int(owner, "out_channels", out_channels)
        _check_int(owner, "groups", groups)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value % groups:
                raise ValueError(f"The '{name}' parameter of {owner} must be divisible by groups ({groups}). "
                                 f"Got {value} instead.")
        if seed is not None:  # checked before the groups' seeds seed + j are formed
            check_seed(owner, seed)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.convs = nn.ModuleList(
            self.conv_cls(in_channels // groups, out_channels // groups, kernel_size, stride, padding, dilation, 1,
                          bias, padding_mode, config, seed=None if seed is None else seed + j, dtype=dtype)
            for j in range(groups))

    # the geometry torch's grouped convolution states, read from the groups' (equal) convolutions
    kernel_size = property(lambda self: self.convs[0].kernel_size)
    stride = property(lambda self: self.convs[0].stride)
    padding = property(lambda self: self.convs[0].padding)
    dilation = property(lambda self: self.convs[0].dilation)
    padding_mode = property(lambda self: self.convs[0].padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.conv_cls.n_dims
        _check_conv_input(self, x, n)
        parts = x.chunk(self.groups, dim=-n - 1)
        return torch.cat([conv(part) for conv, part in zip(self.convs, parts)], dim=-n - 1)

    def set_weights(self, weight, bias=None) -> None:
        """Program torch's grouped ``weight`` (out_channels, in_channels / groups, *kernel) and
        ``bias``, each group's rows on its tile (see :meth:`AnalogModule.set_weights`)."""
        w = torch.as_tensor(weight)
        if w.dim() < 1 or w.shape[0] != self.out_channels:
            raise ValueError(f"The 'weight' parameter of {type(self).__name__}.set_weights must have "
                             f"{self.out_channels} rows (out_channels). Got shape {tuple(w.shape)} instead.")
        ws = w.chunk(self.groups, dim=0)
        bs = [None] * self.groups if bias is None else torch.as_tensor(bias).chunk(self.groups, dim=0)
        for conv, wj, bj in zip(self.convs, ws, bs):
            conv.set_weights(wj, bj)

    def get_weights(self):
        """``(weight, bias)`` in torch's grouped layout, from the groups' tiles."""
        parts = [conv.get_weights() for conv in self.convs]
        bias = None if parts[0][1] is None else torch.cat([b for _, b in parts])
        return torch.cat([w for w, _ in parts]), bias

    def extra_repr(self) -> str:
        first = self.convs[0]
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={first.bias is not None}"
                + ("" if self.padding_mode == "zeros" else f", padding_mode={self.padding_mode!r}"))

    @classmethod
    def from_digital(cls, module, config: TileConfig | None = None, *, seed=None):
        """A grouped analog convolution programmed with ``module``'s weight and bias."""
        return _conv_from_digital(cls, module, config, seed)


class AnalogGroupedConv1d(_AnalogGroupedConvNd):
    """``nn.Conv1d`` with ``groups > 1``: one :class:`AnalogConv1d` per group."""

    conv_cls = AnalogConv1d


class AnalogGroupedConv2d(_AnalogGroupedConvNd):
    """``nn.Conv2d`` with ``groups > 1``: one :class:`AnalogConv2d` per group."""

    conv_cls = AnalogConv2d


_GROUPED = {AnalogConv1d: AnalogGroupedConv1d, AnalogConv2d: AnalogGroupedConv2d}


def analog_modules(module: nn.Module):
    """The analog layers in ``module``'s tree, in ``modules()`` order."""
    return [m for m in module.modules() if isinstance(m, AnalogModule)]


class AnalogSequential(nn.Sequential):
    """``nn.Sequential`` that also lists its analog layers and sums their costs."""

    def analog_modules(self):
        return analog_modules(self)

    def counters(self) -> dict:
        """Tile costs (update cycles, pulses, reads) summed over the analog layers."""
        out: dict = {}
        for m in self.analog_modules():
            for k, v in m.counters.items():
                out[k] = out.get(k, 0) + v
        return out
