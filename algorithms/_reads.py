"""Reading a tile's weights through its forward pass.

Three input designs, all counted as ``N`` forward vectors:

* ``"eye"``: each one-hot input ``over_sampling`` times (``N = k n``). One cell per output
  and read: the output noise lands on each estimate undivided (variance ``R / k``).
* ``"lstsq"``: ``k n`` standard-normal inputs and a least-squares fit (the tile's own
  ``read_weights(method="lstsq")``). Noise management divides each input by its maximum,
  about ``sqrt(2 ln n)``, so the inputs sit well inside the DAC range.
* ``"hadamard"``: the first ``n`` columns of a Sylvester-Hadamard matrix of order
  ``2^ceil(log2 n)``, ``k`` times with fresh random column signs. Every entry is +-1,
  so the DAC range is used fully, and the columns are exactly orthogonal
  (``X^T X = N I``), so each cell's estimate has variance ``R / N``: about ``n`` times
  below one-hot reads at a similar read count, with no ill-conditioned fit.

``eye`` and ``lstsq`` are the tile's :meth:`read_weights`; ``hadamard`` is done here from
``forward``, so it works on any Programmable tile.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

METHODS = ("eye", "lstsq", "hadamard")


def design(method: str, n: int, over_sampling: int, rng: np.random.Generator) -> np.ndarray:
    """The (N, n) input batch of a read."""
    if method == "eye":
        return np.tile(np.eye(n), (over_sampling, 1))
    if method == "lstsq":
        return rng.standard_normal((over_sampling * n, n))
    order = 1 << max(int(np.ceil(np.log2(n))), 0)
    h = scipy.linalg.hadamard(order).astype(np.float64)[:, :n]
    return np.concatenate([h * rng.choice((-1.0, 1.0), size=n) for _ in range(over_sampling)])


def read(tile, method: str, over_sampling: int, rng: np.random.Generator) -> np.ndarray:
    """Estimate the tile's weights with the given design (see module doc)."""
    if method in ("eye", "lstsq"):
        return np.asarray(tile.read_weights(method=method, over_sampling=over_sampling), dtype=np.float64)
    x = design(method, tile.shape[1], over_sampling, rng)
    y = np.asarray(tile.forward(x), dtype=np.float64)
    return (y.T @ x) / (x * x).sum(axis=0)  # orthogonal columns: the fit is a projection
