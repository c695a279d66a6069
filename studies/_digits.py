"""Shared pieces of the progsim.nn studies: the digits data, the two models, train and test loops.

Data: scikit-learn's 8x8 digits (1797 images, shipped with the package), pixels scaled to
[0, 1], a stratified 80/20 split fixed by ``split_seed``.
Models (torch, digital; ``convert_to_analog`` or aihwkit makes them analog):

* MLP: 64-256-128-10, tanh;
* CNN: conv 8@3x3, tanh, max-pool 2, conv 16@3x3, tanh, linear 16-10.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn


def digits(split_seed: int = 0, dtype=torch.float32):
    """``(x_train, y_train, x_test, y_test)`` as tensors; x of shape (n, 64)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.data / 16.0).astype(np.float64)
    xtr, xte, ytr, yte = train_test_split(x, data.target, test_size=0.2, random_state=split_seed, stratify=data.target)
    t = lambda a: torch.tensor(a, dtype=dtype)  # noqa: E731
    return t(xtr), torch.tensor(ytr), t(xte), torch.tensor(yte)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 128), nn.Tanh(), nn.Linear(128, 10))


class _Image(nn.Module):
    """Reshapes flat 64-pixel rows into 1x8x8 images."""

    def forward(self, x):
        return x.reshape(-1, 1, 8, 8)


def cnn() -> nn.Module:
    return nn.Sequential(_Image(), nn.Conv2d(1, 8, 3), nn.Tanh(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.Tanh(),
                         nn.Flatten(), nn.Linear(16, 10))


MODELS = {"mlp": mlp, "cnn": cnn}


def accuracy(model: nn.Module, x, y) -> float:
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(dim=1) == y).double().mean())
    model.train()
    return acc


def train(model: nn.Module, optimizer, data, *, epochs: int = 10, batch_size: int = 16, seed: int = 0,
          on_epoch=None):
    """Mini-batch training with cross-entropy; returns ``(wall, cpu)``, the wall-clock and the
    process CPU seconds of each epoch (training only; on a shared machine the CPU seconds are
    the steadier measure of one single-threaded run).

    ``on_epoch(epoch, model)`` runs after each epoch, outside the timed part.
    """
    xtr, ytr = data[0], data[1]
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    wall, cpu = [], []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(xtr.shape[0], generator=gen)
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, xtr.shape[0], batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            optimizer.step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if on_epoch is not None:
            on_epoch(epoch, model)
    return wall, cpu
