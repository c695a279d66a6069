"""Parameter validation with one error shape.

Configs declare their constraints next to their fields (``field(metadata=...)`` via
:func:`param`); :func:`validate_fields` checks them all in ``__post_init__``. Errors read::

    The 'dw_min' parameter of ConstantStep must be > 0. Got -0.1 instead.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import numpy as np


class Interval:
    """A real (or integral) interval constraint with open or closed ends."""

    def __init__(self, low=None, high=None, *, closed="both", integral=False, allow_inf=False):
        self.low, self.high, self.closed = low, high, closed
        self.integral, self.allow_inf = integral, allow_inf

    def is_satisfied_by(self, value) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.integral:
            if not isinstance(value, (numbers.Integral, np.integer)):
                return False
        elif not isinstance(value, (numbers.Real, np.floating, np.integer)):
            return False
        v = float(value)
        if math.isnan(v) or (math.isinf(v) and not self.allow_inf):
            return False
        lo_ok = self.low is None or (v >= self.low if self.closed in ("both", "left") else v > self.low)
        hi_ok = self.high is None or (v <= self.high if self.closed in ("both", "right") else v < self.high)
        return lo_ok and hi_ok

    def __str__(self) -> str:
        kind = "an int " if self.integral else ""
        fmt = lambda v: f"{v:g}"  # noqa: E731
        if self.low is not None and self.high is not None:
            if self.low == self.high:
                return f"{kind or ''}equal to {fmt(self.low)} (fixed for this model)"
            lb = "[" if self.closed in ("both", "left") else "("
            rb = "]" if self.closed in ("both", "right") else ")"
            return f"{kind}in the range {lb}{fmt(self.low)}, {fmt(self.high)}{rb}"
        if self.low is not None:
            op = ">=" if self.closed in ("both", "left") else ">"
            return f"{kind}{op} {fmt(self.low)}"
        if self.high is not None:
            op = "<=" if self.closed in ("both", "right") else "<"
            return f"{kind}{op} {fmt(self.high)}"
        return "a finite int" if self.integral else "a finite float"


class Options:
    """Membership in a fixed set of values."""

    def __init__(self, *values):
        self.values = values

    def is_satisfied_by(self, value) -> bool:
        try:
            return value in self.values
        except TypeError:
            return False

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


class Boolean:
    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, (bool, np.bool_))

    def __str__(self) -> str:
        return "a bool"


class OrNone:
    """``constraint`` or None (budgets, tolerances and derived defaults that may be absent)."""

    def __init__(self, constraint):
        self.constraint = constraint

    def is_satisfied_by(self, value) -> bool:
        return value is None or self.constraint.is_satisfied_by(value)

    def __str__(self) -> str:
        return f"{self.constraint} or None"


def param(default, constraint, **kwargs):
    """A dataclass field carrying its constraint."""
    if callable(default) and not isinstance(default, (numbers.Number, str, bool)):
        return dataclasses.field(default_factory=default, metadata={"constraint": constraint}, **kwargs)
    return dataclasses.field(default=default, metadata={"constraint": constraint}, **kwargs)


def param_error(owner: str, name: str, requirement: str, value: Any) -> ValueError:
    return ValueError(f"The '{name}' parameter of {owner} must be {requirement}. Got {value!r} instead.")


def check_value(owner: str, name: str, value, constraint) -> None:
    """Raise :func:`param_error` when ``value`` violates ``constraint``."""
    if not constraint.is_satisfied_by(value):
        raise param_error(owner, name, str(constraint), value)


def validate_fields(obj, owner: str | None = None) -> None:
    """Check every dataclass field of ``obj`` that declares a constraint.

    ``owner`` names the object in the message (default: its class name).
    """
    owner = owner or type(obj).__name__
    for f in dataclasses.fields(obj):
        constraint = f.metadata.get("constraint")
        if constraint is not None:
            check_value(owner, f.name, getattr(obj, f.name), constraint)


def check_array(value, name: str, owner: str, *, ndim=None, shape=None, dtype=np.float64, finite=True):
    """Convert ``value`` to an array and check its rank, shape and finiteness."""
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"The '{name}' parameter of {owner} must be numeric array-like. Got {type(value).__name__} instead.") from exc
    if ndim is not None and arr.ndim not in np.atleast_1d(ndim):
        raise ValueError(
            f"The '{name}' parameter of {owner} must have {' or '.join(map(str, np.atleast_1d(ndim)))} dimensions. "
            f"Got shape {arr.shape} instead."
        )
    if shape is not None:
        for axis, (got, want) in enumerate(zip(arr.shape[::-1], shape[::-1])):
            if want is not None and got != want:
                raise ValueError(
                    f"The '{name}' parameter of {owner} must have size {want} along its last axes "
                    f"(expected trailing shape {tuple(shape)}). Got shape {arr.shape} instead."
                )
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"The '{name}' parameter of {owner} must be finite (no NaN or inf). Got non-finite entries instead.")
    return arr
