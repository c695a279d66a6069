"""Gradient-descent programming (Büchel et al., IEDM 2022).

Each iteration presents a batch ``X`` of inputs, reads ``Y = forward(X)`` and applies the
gradient of ``1/2 ||Y - X T^T||^2`` as one pulsed update, ``update(X, Y - X T^T, lr)``
(``b`` update cycles), so that in expectation ``W - T <- (W - T)(I - lr X^T X)``.
The observed error is ``||Y - X T^T||_F / ||X T^T||_F`` on the batch just read; the run
ends by itself once it is at or below ``observed_tol``.

Learning rates: one-hot inputs address one column each, so ``lr = 1`` corrects it in one
step (distinct columns in a batch do not interact). For standard-normal inputs the
eigenvalues of ``X^T X`` reach ``(sqrt(b) + sqrt(n))^2`` (Marchenko-Pastur edge), and
``lr = 1 / (sqrt(b) + sqrt(n))^2`` removes most of the error along the batch's span while
staying stable; both are the defaults when ``lr`` is None. Neither depends on the read
noise: on a noisy periphery plain GDP settles where its reads' noise puts it (``lr = 1``
copies a one-hot read's noise into the column), and the Kalman-filtered forms
(``kalman-gdp``, ``kalman-gdp-batched``) average the reads instead; the default run
lengths (``max_iter`` 4000 for ``gdp``, 800 for ``gdp-batched``: 8000 one-hot reads,
about 53 per column of a 150-column tile) give the filter enough reads to average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from progsim.programming import Interval, Options, OrNone, Step, check_options, option

POSITIVE_OR_NONE = OrNone(Interval(0.0, None, closed="neither"))


class _GradientDescent:
    """The loop shared by the GDP variants; subclasses choose the inputs with
    ``_inputs(rng, n, iteration) -> (b, n)``."""

    def __post_init__(self):
        check_options(self)

    def _default_lr(self, n: int) -> float:
        return 1.0

    def program(self, tile, target):
        n = tile.shape[1]
        lr = self._default_lr(n) if self.lr is None else self.lr
        rng = np.random.default_rng(self.seed)
        iteration = 0
        while True:
            x = self._inputs(rng, n, iteration)
            reference = x @ target.T
            residual = np.asarray(tile.forward(x)) - reference
            err = float(np.linalg.norm(residual) / (np.linalg.norm(reference) or 1.0))
            if self.observed_tol is not None and err <= self.observed_tol:
                return
            tile.update(x, residual, lr)
            iteration += 1
            yield Step(err)


@dataclass(frozen=True)
class GDP(_GradientDescent):
    """``gdp``: random inputs, standard normal or one-hot columns drawn with replacement."""

    name: ClassVar[str] = "gdp"
    max_iter: ClassVar[int] = 4000  # the run length program() gives it by default
    lr: float | None = option(None, POSITIVE_OR_NONE)
    batch_size: int = option(1, Interval(1, None, integral=True))
    inputs: str = option("normal", Options("normal", "onehot"))
    observed_tol: float | None = option(None, POSITIVE_OR_NONE)
    seed: int = option(0, Interval(0, None, integral=True))

    def _default_lr(self, n):
        return 1.0 if self.inputs == "onehot" else 1.0 / (math.sqrt(self.batch_size) + math.sqrt(n)) ** 2

    def _inputs(self, rng, n, iteration):
        if self.inputs == "normal":
            return rng.standard_normal((self.batch_size, n))
        return np.eye(n)[rng.integers(0, n, self.batch_size)]


@dataclass(frozen=True)
class GDPBatched(_GradientDescent):
    """``gdp-batched``: one-hot inputs, ``batch_size`` consecutive columns per iteration, cycling.

    A batch never holds a column twice (at most ``n`` columns), since both copies would be
    corrected from the same read.
    """

    name: ClassVar[str] = "gdp-batched"
    max_iter: ClassVar[int] = 800  # the run length program() gives it by default
    lr: float | None = option(None, POSITIVE_OR_NONE)
    batch_size: int = option(10, Interval(1, None, integral=True))
    observed_tol: float | None = option(None, POSITIVE_OR_NONE)
    seed: int = option(0, Interval(0, None, integral=True))

    def _inputs(self, rng, n, iteration):
        b = min(self.batch_size, n)
        return np.eye(n)[(iteration * b + np.arange(b)) % n]
