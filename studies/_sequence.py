"""A generated next-symbol task for the LSTM studies: sequences from a random second-order Markov chain.

The chain has ``n_symbols`` symbols; the next symbol depends on the last two, with transition
probabilities ``P[a, b, :] ~ Dirichlet(concentration)`` drawn once from ``chain_seed`` (a small
concentration makes each row peaked, so the task is far from uniform). Sequences start from
the stationary distribution of symbol pairs, so every position has the same statistics.

Because the chain is known, so is the best any predictor can do: the entropy rate
``H = sum_{a,b} pi(a, b) H(P[a, b, :])`` gives the perplexity floor ``exp(H)``. A predictor
that sees only the last symbol is held to ``exp(H(X_t | X_{t-1}))``, higher: the gap is
what the LSTM's memory buys. Perplexity is scored on positions 2 .. L-1 (the first two
symbols have no full context), ``exp`` of the mean cross-entropy in nats.

Model: one-hot symbols into ``nn.LSTM(n_symbols, hidden)``, then ``nn.Linear(hidden,
n_symbols)`` on every step; ``convert_to_analog`` turns both into analog layers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class MarkovChain:
    """Second-order chain: ``probs[a, b, c] = P(x_t = c | x_{t-2} = a, x_{t-1} = b)``."""

    probs: np.ndarray

    @classmethod
    def random(cls, n_symbols: int = 6, concentration: float = 0.3, chain_seed: int = 0) -> "MarkovChain":
        if not isinstance(n_symbols, int) or n_symbols < 2:
            raise ValueError(f"The 'n_symbols' parameter of MarkovChain.random must be an int >= 2. Got {n_symbols!r} instead.")
        if not concentration > 0:
            raise ValueError(f"The 'concentration' parameter of MarkovChain.random must be > 0. Got {concentration!r} instead.")
        rng = np.random.default_rng(chain_seed)
        probs = rng.dirichlet(np.full(n_symbols, concentration), size=(n_symbols, n_symbols))
        # rows of Dirichlet draws can hold exact zeros in float64; keep every transition possible
        # so the pair chain is irreducible and the stationary distribution unique
        probs = (probs + 1e-6) / (probs + 1e-6).sum(axis=-1, keepdims=True)
        return cls(probs)

    @property
    def n_symbols(self) -> int:
        return self.probs.shape[0]

    def pair_stationary(self) -> np.ndarray:
        """Stationary distribution ``pi[a, b]`` of consecutive pairs (the chain on pairs)."""
        v = self.n_symbols
        # pair (a, b) -> (b, c) with probability probs[a, b, c]
        trans = np.zeros((v * v, v * v))
        for a in range(v):
            for b in range(v):
                trans[a * v + b, b * v: (b + 1) * v] = self.probs[a, b]
        vals, vecs = np.linalg.eig(trans.T)
        pi = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
        return (pi / pi.sum()).reshape(v, v)

    def entropy_rate(self) -> float:
        """``H(X_t | X_{t-2}, X_{t-1})`` at stationarity, in nats."""
        p = self.probs
        h_rows = -(p * np.log(p)).sum(axis=-1)
        return float((self.pair_stationary() * h_rows).sum())

    def first_order_entropy(self) -> float:
        """``H(X_t | X_{t-1})`` at stationarity: the best a predictor without memory achieves."""
        pi = self.pair_stationary()
        joint = (pi[:, :, None] * self.probs).sum(axis=0)  # P(x_{t-1} = b, x_t = c)
        cond = joint / joint.sum(axis=1, keepdims=True)
        return float(-(joint * np.log(cond)).sum())

    def sample(self, n_seq: int, length: int, seed: int) -> np.ndarray:
        """``(n_seq, length)`` int64 symbols, each sequence started from the pair distribution."""
        if length < 3:
            raise ValueError(f"The 'length' parameter of MarkovChain.sample must be >= 3. Got {length!r} instead.")
        rng = np.random.default_rng(seed)
        v = self.n_symbols
        out = np.empty((n_seq, length), dtype=np.int64)
        start = rng.choice(v * v, size=n_seq, p=self.pair_stationary().ravel())
        out[:, 0], out[:, 1] = start // v, start % v
        cum = np.cumsum(self.probs, axis=-1)
        for t in range(2, length):
            c = cum[out[:, t - 2], out[:, t - 1]]
            u = rng.random(n_seq)[:, None]
            out[:, t] = np.minimum((u > c).sum(axis=1), v - 1)
        return out


def sequences(chain: MarkovChain, n_train: int = 1000, n_test: int = 300, length: int = 20, data_seed: int = 0):
    """``(x_train, y_train, x_test, y_test)``: x one-hot ``(n, length - 1, V)`` float32, y the next
    symbols ``(n, length - 1)`` int64 (``y[:, t] = seq[:, t + 1]``)."""
    def split(seq):
        x = nn.functional.one_hot(torch.from_numpy(seq[:, :-1]), chain.n_symbols).float()
        return x, torch.from_numpy(seq[:, 1:])

    return (*split(chain.sample(n_train, length, data_seed)), *split(chain.sample(n_test, length, data_seed + 1)))


class NextSymbolLSTM(nn.Module):
    """One-hot input -> LSTM -> linear read-out on every step; batch first."""

    def __init__(self, n_symbols: int = 6, hidden: int = 16):
        super().__init__()
        self.lstm = nn.LSTM(n_symbols, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_symbols)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out)


def _scored_nll(model: nn.Module, x, y) -> torch.Tensor:
    """Mean cross-entropy (nats) over the scored positions (the targets with two symbols of context)."""
    logits = model(x)[:, 1:]
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[:, 1:].reshape(-1))


def perplexity(model: nn.Module, x, y, batch_size: int = 100) -> float:
    """``exp`` of the mean cross-entropy over the scored positions, in eval mode."""
    model.eval()
    with torch.no_grad():
        total = sum(float(_scored_nll(model, x[s:s + batch_size], y[s:s + batch_size])) * len(x[s:s + batch_size])
                    for s in range(0, len(x), batch_size))
    model.train()
    return float(np.exp(total / len(x)))


def train(model: nn.Module, optimizer, data, *, epochs: int = 10, batch_size: int = 32, seed: int = 0):
    """Mini-batch training on the scored cross-entropy; returns the wall seconds of each epoch."""
    xtr, ytr = data[0], data[1]
    gen = torch.Generator().manual_seed(seed)
    wall = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(xtr.shape[0], generator=gen)
        t0 = time.perf_counter()
        for start in range(0, xtr.shape[0], batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad()
            _scored_nll(model, xtr[idx], ytr[idx]).backward()
            optimizer.step()
        wall.append(time.perf_counter() - t0)
    return wall
