"""AnalogSGD: pulsed updates for analog layers, plain SGD for digital parameters."""

from __future__ import annotations

import torch

from progsim.nn.base import analog_layer_of


class AnalogSGD(torch.optim.Optimizer):
    """Stochastic gradient descent on analog tiles.

    ``step()`` goes through the parameter groups: a parameter that is an analog layer's
    ``weight`` makes that layer apply its recorded ``(x, dy)`` pairs as pulsed update cycles
    ``tile.update(x, dy / alpha, lr)`` (one cycle per sample, per output position for
    convolutions, in sample order; see :mod:`progsim.nn.base`); any other parameter with a
    gradient gets ``p -= lr * p.grad``. Give it ``model.parameters()`` as any optimizer.
    """

    def __init__(self, params, lr: float = 0.01):
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0 or lr != lr or lr == float("inf"):
            raise ValueError(f"The 'lr' parameter of AnalogSGD must be a finite float > 0. Got {lr!r} instead.")
        super().__init__(params, {"lr": float(lr)})

    def add_param_group(self, param_group) -> None:
        """torch's ``add_param_group``; the analog layers whose weights the group holds are marked
        as held by an AnalogSGD (a layer that records reads for its update and is held by none
        warns: see :data:`progsim.nn.base.UNAPPLIED_WARN`)."""
        super().add_param_group(param_group)
        for p in self.param_groups[-1]["params"]:
            layer = analog_layer_of(p)
            if layer is not None:
                layer._optimizer_held = True

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                layer = analog_layer_of(p)
                if layer is not None:
                    layer.apply_update(lr)
                elif p.grad is not None:
                    p.add_(p.grad, alpha=-lr)
        return loss
