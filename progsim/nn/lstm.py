"""AnalogLSTM: ``nn.LSTM``'s recurrence with each layer's gate matrix on one crossbar.

Layer ``l`` holds one :class:`~progsim.nn.AnalogLinear` of shape
``(4 hidden, in_l + hidden)``: the input and the previous hidden state are concatenated and
read together, ``[i, f, g, o] = tile([x_t, h_{t-1}]) + bias`` (torch's gate order), which is
``W_ih x_t + W_hh h_{t-1}`` with ``W = [W_ih, W_hh]``. The bias is one vector, torch's
``b_ih + b_hh``. A bidirectional LSTM holds a second tile per layer for the reverse direction,
which reads the sequence from its end; each layer's output is the two directions' hidden
states side by side (forward first), as torch's. The time loop runs in Python (the recurrence
is sequential); each step is one batched read, and in training one batched update per step,
layer and direction at the optimizer step.
"""

from __future__ import annotations

import torch
from torch import nn

from progsim.nn.config import TileConfig
from progsim.nn.layers import AnalogLinear, _check_int


class AnalogLSTM(nn.Module):
    """Multi-layer LSTM on analog tiles; the call signature and outputs of ``nn.LSTM``.

    ``forward(x, (h0, c0)=None)`` with ``x`` of shape ``(T, N, input_size)`` (``(N, T, ...)``
    with ``batch_first``) or unbatched ``(T, input_size)``; returns ``output, (h_n, c_n)``, the
    states of shape ``(num_layers * D, N, hidden_size)`` (D = 2 when bidirectional; layer by
    layer, forward direction first). ``layers[k * D + r]`` is the tile of layer ``k`` and
    direction ``r``; its seed is ``seed + k * D + r``. ``proj_size`` is not supported.
    """

    bidirectional = False  # set per module; the class default serves modules pickled before it existed

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, config: TileConfig | None = None,
                 *, bidirectional: bool = False, seed: int | None = None, dtype=None):
        super().__init__()
        _check_int("AnalogLSTM", "input_size", input_size)
        _check_int("AnalogLSTM", "hidden_size", hidden_size)
        _check_int("AnalogLSTM", "num_layers", num_layers)
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"The 'dropout' parameter of AnalogLSTM must be in the range [0, 1). Got {dropout!r} instead.")
        if not isinstance(bidirectional, bool):
            raise TypeError(f"The 'bidirectional' parameter of AnalogLSTM must be a bool. "
                            f"Got {bidirectional!r} instead.")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.dropout, self.bidirectional = bool(batch_first), float(dropout), bidirectional
        n_dir = 2 if bidirectional else 1
        self.layers = nn.ModuleList(
            AnalogLinear((input_size if k == 0 else n_dir * hidden_size) + hidden_size, 4 * hidden_size, bias,
                         config, seed=None if seed is None else seed + k * n_dir + r, dtype=dtype)
            for k in range(num_layers) for r in range(n_dir))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's LSTM initialisation: every weight and bias ``U(-1/sqrt(hidden), 1/sqrt(hidden))``."""
        bound = self.hidden_size ** -0.5
        for lin in self.layers:
            w = torch.empty(lin.weight_shape, dtype=torch.float64).uniform_(-bound, bound)
            b = None if lin.bias is None else torch.empty(lin.out_features, dtype=torch.float64).uniform_(-bound, bound)
            lin.set_weights(w, b)

    def forward(self, x: torch.Tensor, hx=None):
        if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3) or x.shape[-1] != self.input_size:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"The input of AnalogLSTM must be a tensor of shape (T, N, {self.input_size}) "
                             f"(batch_first: (N, T, {self.input_size})) or (T, {self.input_size}). Got {shape} instead.")
        single = x.dim() == 2
        seq = x.unsqueeze(1) if single else (x.transpose(0, 1) if self.batch_first else x)
        n_t, nb = seq.shape[0], seq.shape[1]
        if n_t == 0:
            raise ValueError(f"The input of AnalogLSTM must hold at least one time step (as torch's LSTM). "
                             f"Got shape {tuple(x.shape)} instead.")
        n_dir = 2 if self.bidirectional else 1
        shape = (self.num_layers * n_dir, nb, self.hidden_size)
        if hx is None:
            h0 = c0 = seq.new_zeros(shape)
        else:
            h0, c0 = (h.unsqueeze(1) if single else h for h in hx)
            for name, h in (("h0", h0), ("c0", c0)):
                if tuple(h.shape) != shape:
                    raise ValueError(f"The '{name}' state of AnalogLSTM must have shape {shape}. "
                                     f"Got {tuple(h.shape)} instead.")
        layer_in, h_n, c_n = seq, [], []
        for k in range(self.num_layers):
            outs = []
            for r in range(n_dir):
                idx = k * n_dir + r
                lin, h, c, steps = self.layers[idx], h0[idx], c0[idx], [None] * n_t
                for t in (range(n_t - 1, -1, -1) if r else range(n_t)):
                    i, f, g, o = lin(torch.cat([layer_in[t], h], dim=1)).chunk(4, dim=1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    steps[t] = h
                outs.append(torch.stack(steps))
                h_n.append(h)
                c_n.append(c)
            layer_in = outs[0] if n_dir == 1 else torch.cat(outs, dim=2)
            if self.dropout and self.training and k < self.num_layers - 1:
                layer_in = nn.functional.dropout(layer_in, self.dropout, training=True)
        out = layer_in
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)
        if single:
            return out[:, 0], (h_n[:, 0], c_n[:, 0])
        return (out.transpose(0, 1) if self.batch_first else out), (h_n, c_n)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}, dropout={self.dropout:g}"
                + (", bidirectional=True" if self.bidirectional else ""))

    @classmethod
    def from_digital(cls, module: nn.LSTM, config: TileConfig | None = None, *, seed=None) -> "AnalogLSTM":
        """An AnalogLSTM programmed with ``module``'s weights (``[W_ih, W_hh]``, ``b_ih + b_hh``, per
        layer and direction)."""
        if module.proj_size:
            raise ValueError("The 'module' parameter of AnalogLSTM.from_digital must be an nn.LSTM without "
                             f"proj_size. Got proj_size={module.proj_size} instead.")
        layer = cls(module.input_size, module.hidden_size, module.num_layers, module.bias, module.batch_first,
                    module.dropout, config, bidirectional=module.bidirectional, seed=seed,
                    dtype=module.weight_ih_l0.dtype)
        n_dir = 2 if module.bidirectional else 1
        for idx, lin in enumerate(layer.layers):
            name = f"l{idx // n_dir}" + ("_reverse" if idx % n_dir else "")
            w = torch.cat([getattr(module, f"weight_ih_{name}"), getattr(module, f"weight_hh_{name}")], dim=1).detach()
            b = None
            if module.bias:
                b = (getattr(module, f"bias_ih_{name}") + getattr(module, f"bias_hh_{name}")).detach()
            lin.set_weights(w, b)
        return layer
