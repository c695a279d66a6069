"""Global drift compensation: a fixed reference read rescales a layer's output.

Right after programming, a fixed reference input goes through the layer and the mean
absolute output is kept (:meth:`GlobalDriftCompensation.calibrate`). After drift the same
input goes through again; the ratio of the two readouts is the factor by which the
layer's outputs are multiplied (:meth:`GlobalDriftCompensation.factor`). This is
aihwkit's ``GlobalDriftCompensation``: one-hot reference inputs (the identity), readout
``mean|y|``; ``per_column=True`` gives its ``PerColumnDriftCompensation`` (one factor per
output, the mean over the reference batch only).

The layer is seen only through ``forward_fn(x) -> y``, a batch of reference inputs in and
outputs out, so the same object serves NumPy and torch layers: pass a torch
``reference`` for a torch forward; outputs are read back to NumPy.
"""

from __future__ import annotations

import numpy as np

from progsim._validate import Boolean, param_error


def _numpy(y) -> np.ndarray:
    if hasattr(y, "detach"):  # a torch tensor, on any device
        y = y.detach().cpu().numpy()
    return np.asarray(y, dtype=np.float64)


class GlobalDriftCompensation:
    """Output rescaling from a fixed reference read before and after drift.

    Parameters
    ----------
    in_size : int, optional
        Input size of the layer; the reference is then the identity, one one-hot input
        per column (aihwkit's readout tensor).
    reference : array (batch, in_size), optional
        A reference batch of one's own (NumPy or torch, as the layer's forward takes).
    per_column : bool
        One factor per output instead of one for the layer.
    """

    def __init__(self, in_size: int | None = None, *, reference=None, per_column: bool = False):
        owner = "GlobalDriftCompensation"
        if (in_size is None) == (reference is None):
            raise TypeError(f"{owner} takes exactly one of 'in_size' and 'reference'.")
        if reference is None:
            if isinstance(in_size, bool) or not isinstance(in_size, (int, np.integer)) or in_size < 1:
                raise param_error(owner, "in_size", "an int >= 1", in_size)
            reference = np.eye(int(in_size))
        elif len(getattr(reference, "shape", ())) != 2:
            raise ValueError(f"The 'reference' parameter of {owner} must be a 2-D batch (batch, in_size). "
                             f"Got shape {tuple(getattr(reference, 'shape', ()))} instead.")
        if not Boolean().is_satisfied_by(per_column):
            raise param_error(owner, "per_column", "a bool", per_column)
        self.reference = reference
        self.per_column = bool(per_column)
        self.baseline = None

    def readout(self, y) -> np.ndarray | float:
        """``mean|y|`` over the whole batch (or over the batch per output)."""
        a = np.abs(_numpy(y))
        return a.mean(axis=0) if self.per_column else float(a.mean())

    def calibrate(self, forward_fn):
        """Read the reference through the freshly programmed layer and keep the readout."""
        self.baseline = self.readout(forward_fn(self.reference))
        return self.baseline

    def factor(self, forward_fn):
        """``baseline / readout`` after drift: multiply the layer's outputs by it.

        Outputs whose readout is 0 (an all-zero column) get the factor 1.
        """
        if self.baseline is None:
            raise RuntimeError("GlobalDriftCompensation.factor needs a baseline: call calibrate(forward_fn) "
                               "right after programming first.")
        current = np.asarray(self.readout(forward_fn(self.reference)), dtype=np.float64)
        base = np.asarray(self.baseline, dtype=np.float64)
        ratio = np.divide(base, current, out=np.ones_like(current), where=current > 0)
        return ratio if self.per_column else float(ratio)

    def __repr__(self) -> str:
        shape = tuple(getattr(self.reference, "shape", ()))
        return f"GlobalDriftCompensation(reference_shape={shape}, per_column={self.per_column})"
