"""A per-cell Kalman filter around any programming algorithm.

``Kalman(inner)`` runs ``inner`` on a filtered view of the tile. The view keeps, per cell,
a state estimate ``w^`` and its variance ``P`` (prior ``N(0, prior_std^2)``), and:

* predicts on every write: ``update(x, d, lr)`` moves ``w^`` by the expected change of the
  nominal pulse model (coincidences and half-selection disturb, :mod:`progsim_algorithms._model`)
  and adds its variance (pulse-count noise, cycle-to-cycle noise, the unknown per-cell
  step spread) to ``P``; ``pulse(rows, cols, n)`` likewise, with ``n dw_min`` per cell;
* corrects on every read: ``forward(X)`` runs on the tile, each output's noise variance
  ``R`` comes from the nominal periphery (``read_noise`` overrides it), and the reading
  is fused into ``w^``, ``P``. A batch with full column rank (``N >= n``: the reads of
  ``read_weights``) is fused as its weighted least-squares estimate, cell by cell with
  the fit's variances ``diag((X^T R^-1 X)^-1)``; smaller batches vector by vector, each
  row's gain ``K_ij = P_ij x_j / (sum_j P_ij x_j^2 + R)``. Both keep ``P`` diagonal, the
  per-cell approximation (exact for one-hot inputs and orthogonal designs);
* answers the inner algorithm with the filtered state: ``forward`` returns ``w^ x`` after
  fusing the reading, ``read_weights`` returns ``w^`` after a read of the requested
  design (``"eye"``, ``"lstsq"`` with standard-normal inputs, or ``"hadamard"``).

So every read the inner algorithm pays for keeps its information: later, cheaper reads
refine the estimate instead of replacing it. ``model_noise`` scales the predicted process
variance (above 1 when the device is worse than its nominal description).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from . import _model, _reads
from .gdp import GDP, GDPBatched
from .svd import SVD, SVDHalfSelect
from progsim.programming import DEFAULT_MAX_ITER, Interval, OrNone, Step, check_known, check_options, option

_TINY = 1e-30


class _FilteredTile:
    """The tile as the inner algorithm sees it under the filter."""

    def __init__(self, tile, prior_std: float, read_noise: float | None, model_noise: float, seed: int):
        self._tile = tile
        self.shape = tuple(tile.shape)
        for config in ("device", "pulses", "half_select", "io"):
            if hasattr(tile, config):
                setattr(self, config, getattr(tile, config))
        if hasattr(tile, "pulse"):
            self.pulse = self._pulse
        self.w = np.zeros(self.shape)
        self.p = np.full(self.shape, prior_std**2)
        self._read_noise = read_noise
        self._model_noise = model_noise
        self._rng = np.random.default_rng(seed)

    # ---------------------------------------------------------------- predict

    def update(self, x, d, lr):
        self._tile.update(x, d, lr)
        change = _model.expected_change(self._tile, x, d, lr) + _model.expected_disturb(self._tile, x, d, lr)
        self.w += change
        self.p += self._model_noise * _model.change_variance(self._tile, change)

    def _pulse(self, rows, cols, n):
        self._tile.pulse(rows, cols, n)
        change = np.zeros(self.shape)
        np.add.at(change, (np.asarray(rows), np.asarray(cols)), np.asarray(n, dtype=np.float64))
        change *= _model.dw_min(self._tile)
        self.w += change
        self.p += self._model_noise * _model.change_variance(self._tile, change)

    # ---------------------------------------------------------------- correct

    def _noise_var(self, x):
        if self._read_noise is None:
            return _model.read_noise_var(self._tile, x)
        return self._read_noise**2 * np.abs(x).max(axis=1) ** 2

    def forward(self, x):
        x2 = np.atleast_2d(np.asarray(x, dtype=np.float64))
        y = np.atleast_2d(np.asarray(self._tile.forward(x2), dtype=np.float64))
        r = self._noise_var(x2) + _TINY
        if not self._fuse_block(x2, y, r):
            for b in range(x2.shape[0]):
                xb = x2[b]
                gain = self.p * xb / ((self.p * xb * xb).sum(axis=1) + r[b])[:, None]
                self.w += gain * (y[b] - self.w @ xb)[:, None]
                self.p *= 1.0 - gain * xb
        out = x2 @ self.w.T
        return out[0] if np.ndim(x) == 1 else out

    def _fuse_block(self, x, y, r) -> bool:
        if x.shape[0] < x.shape[1]:
            return False
        info = (x / r[:, None]).T @ x
        try:
            chol = np.linalg.cholesky(info)
        except np.linalg.LinAlgError:
            return False
        cov = np.linalg.inv(chol).T @ np.linalg.inv(chol)
        fit = ((y / r[:, None]).T @ x) @ cov
        var = np.maximum(np.diag(cov), _TINY)[None, :]
        gain = self.p / (self.p + var)
        self.w += gain * (fit - self.w)
        self.p *= 1.0 - gain
        return True

    def read_weights(self, method: str = "eye", over_sampling: int = 1):
        self.forward(_reads.design(method, self.shape[1], over_sampling, self._rng))
        return self.w.copy()

    @property
    def mean_std(self) -> float:
        return float(np.sqrt(self.p.mean()))


@dataclass(frozen=True)
class Kalman:
    """``kalman-<inner>``: ``inner`` run on a per-cell Kalman-filtered view of the tile."""

    inner: object = None
    prior_std: float | None = option(None, OrNone(Interval(0.0, None, closed="neither")))
    read_noise: float | None = option(None, OrNone(Interval(0.0, None)))
    model_noise: float = option(1.0, Interval(0.0, None))
    seed: int = option(0, Interval(0, None, integral=True))

    def __post_init__(self):
        if not callable(getattr(self.inner, "program", None)):
            raise ValueError(f"The 'inner' parameter of Kalman must be an algorithm object. Got {self.inner!r} instead.")
        check_options(self)

    @property
    def max_iter(self) -> int:
        """The inner algorithm's suggested run length (``program()``'s default when it has none)."""
        return getattr(self.inner, "max_iter", DEFAULT_MAX_ITER)

    @property
    def name(self) -> str:
        return f"kalman-{getattr(self.inner, 'name', type(self.inner).__name__)}"

    def program(self, tile, target):
        prior = self.prior_std
        if prior is None:
            w_max = _model.nominal(tile, "device", "w_max", 1.0)
            prior = w_max if math.isfinite(w_max) and w_max > 0 else 1.0
        view = _FilteredTile(tile, prior, self.read_noise, self.model_noise, self.seed)
        for step in self.inner.program(view, target):
            yield Step(step.err_observed, {**step.extra, "kf_std": view.mean_std})


_OWN = ("prior_std", "read_noise", "model_noise")


def _wrapping(inner_cls):
    def factory(**options):
        own = {k: options.pop(k) for k in _OWN if k in options}
        check_known(f"kalman-{inner_cls.name}", options, {f.name for f in dataclasses.fields(inner_cls)} | set(_OWN))
        inner = inner_cls(**options)
        return Kalman(inner=inner, seed=getattr(inner, "seed", 0), **own)

    factory.__name__ = f"kalman_{inner_cls.name.replace('-', '_')}"
    factory.__doc__ = f"``kalman-{inner_cls.name}``: :class:`Kalman` around ``{inner_cls.__name__}(**options)``."
    return factory


kalman_gdp = _wrapping(GDP)
kalman_gdp_batched = _wrapping(GDPBatched)
kalman_svd = _wrapping(SVD)
kalman_svd_hs = _wrapping(SVDHalfSelect)
