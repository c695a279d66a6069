"""convert_to_analog: swap digital layers for analog ones by a mapping table.

The default table maps exactly these types (subclasses are left alone):

============  ==============
nn.Linear     AnalogLinear
nn.Conv1d     AnalogConv1d (AnalogGroupedConv1d when ``groups > 1``)
nn.Conv2d     AnalogConv2d (AnalogGroupedConv2d when ``groups > 1``)
nn.LSTM       AnalogLSTM
============  ==============

Every other module is kept as it is, including containers, which are walked.

``nn.MultiheadAttention`` stays digital, with its subtree: its forward reads the fused
``in_proj_weight`` and ``out_proj.weight`` as raw tensors
(``F.multi_head_attention_forward``) and never calls ``out_proj``'s forward, so a swapped
``out_proj`` would be computed digitally from the mirror while its tile never trained. In a
``nn.TransformerEncoderLayer`` the feed-forward ``linear1``/``linear2`` become analog and
the attention stays digital. torch runs such a layer in eval mode through a fused kernel
that reads ``linear1.weight`` directly; the conversion registers a forward pre-hook (which
changes nothing) on every encoder layer holding analog layers, because torch falls back
to the module-by-module path whenever a submodule has hooks.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from progsim.nn.base import AnalogModule
from progsim.nn.config import TileConfig
from progsim.nn.layers import AnalogConv1d, AnalogConv2d, AnalogGroupedConv1d, AnalogGroupedConv2d, AnalogLinear
from progsim.nn.lstm import AnalogLSTM

DEFAULT_MAPPING = {
    nn.Linear: AnalogLinear.from_digital,
    nn.Conv1d: AnalogConv1d.from_digital,
    nn.Conv2d: AnalogConv2d.from_digital,
    nn.LSTM: AnalogLSTM.from_digital,
}
KEEP_DIGITAL = (nn.MultiheadAttention,)


def _module_path_only(module, args):
    """Forward pre-hook that returns None (no change): its presence keeps torch off the fused
    transformer kernel that would bypass the analog tiles."""
    return None


def convert_to_analog(model: nn.Module, config: TileConfig | None = None, *, mapping=None, seed: int | None = None,
                      inplace: bool = False) -> nn.Module:
    """``model`` with every module whose exact type is in ``mapping`` replaced by its analog
    counterpart, programmed with the digital weights (with an InferenceConfig: inference
    layers holding them as trainable parameters, see :mod:`progsim.inference.tile`).

    ``mapping`` maps a module type to a function ``(module, config, seed=...) -> analog module``
    (default :data:`DEFAULT_MAPPING`). ``seed``: the k-th converted layer (in ``named_modules``
    order) gets ``seed + 1000 k``; None draws the seeds from torch's generator. The model is
    deep-copied first unless ``inplace``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"The 'model' parameter of convert_to_analog must be a torch.nn.Module. "
                        f"Got {type(model).__name__} instead.")
    from progsim.inference.config import InferenceConfig  # progsim.inference imports progsim.nn

    config = TileConfig() if config is None else config
    if not isinstance(config, (TileConfig, InferenceConfig)):
        raise TypeError(f"The 'config' parameter of convert_to_analog must be a progsim.nn.TileConfig, a "
                        f"progsim.inference.InferenceConfig or None. Got {type(config).__name__} instead.")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"The 'seed' parameter of convert_to_analog must be an int >= 0 or None. Got {seed!r} instead.")
    mapping = DEFAULT_MAPPING if mapping is None else mapping
    model = model if inplace else copy.deepcopy(model)
    if type(model) in mapping:
        return mapping[type(model)](model, config, seed=seed)
    count = [0]

    def walk(parent):
        for name, child in list(parent.named_children()):
            if isinstance(child, KEEP_DIGITAL) or isinstance(child, AnalogModule):
                continue
            if type(child) in mapping:
                s = None if seed is None else seed + 1000 * count[0]
                count[0] += 1
                setattr(parent, name, mapping[type(child)](child, config, seed=s))
            else:
                walk(child)
        if isinstance(parent, nn.TransformerEncoderLayer) and any(isinstance(m, AnalogModule) for m in parent.modules()):
            parent.register_forward_pre_hook(_module_path_only)

    walk(model)
    return model


def convert_to_digital(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every AnalogLinear and analog (grouped) convolution replaced by the
    torch layer of the same geometry holding its current true weights (``get_weights``), e.g. to
    compare with a digital evaluation. An AnalogLSTM keeps its module, with digital
    ``nn.Linear`` gate matrices in place of its tiles (the same computation)."""
    model = copy.deepcopy(model)

    def walk(parent):
        for name, child in list(parent.named_children()):
            if type(child) in _TO_DIGITAL:
                w, b = child.get_weights()
                layer = _TO_DIGITAL[type(child)](child)
                with torch.no_grad():
                    layer.weight.copy_(w)
                    if b is not None:
                        layer.bias.copy_(b)
                setattr(parent, name, layer)
            else:
                walk(child)

    walk(model)
    return model


def _digital_conv(cls, m):
    """The torch convolution of the analog (grouped) convolution ``m``'s geometry."""
    first = m.convs[0] if isinstance(m, (AnalogGroupedConv1d, AnalogGroupedConv2d)) else m
    return cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
               groups=m.groups, bias=first.bias is not None, padding_mode=m.padding_mode,
               dtype=first.weight.dtype)


_TO_DIGITAL = {
    AnalogLinear: lambda m: nn.Linear(m.in_features, m.out_features, m.bias is not None, dtype=m.weight.dtype),
    AnalogConv1d: lambda m: _digital_conv(nn.Conv1d, m),
    AnalogConv2d: lambda m: _digital_conv(nn.Conv2d, m),
    AnalogGroupedConv1d: lambda m: _digital_conv(nn.Conv1d, m),
    AnalogGroupedConv2d: lambda m: _digital_conv(nn.Conv2d, m),
}
