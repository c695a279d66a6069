"""Options of algorithms: constraints declared next to the fields, checked in one shape.

The constraint classes and the checks are the core's (:mod:`progsim._validate`); this module
re-exports them for plug-ins and adds the one check of option *names*:
:func:`check_known`, used by the registry and by algorithms that build others.
"""

from __future__ import annotations

from collections.abc import Iterable

from progsim._validate import Boolean, Interval, Options, OrNone, param, validate_fields

__all__ = ["Boolean", "Interval", "Options", "OrNone", "check_known", "check_options", "option"]


def option(default, constraint):
    """A dataclass field whose constraint sits next to it (checked by :func:`check_options`).

    Constraints are the project's own: :class:`Interval`, :class:`Options`, :class:`Boolean`,
    :class:`OrNone`.
    """
    return param(default, constraint)


def check_options(obj, owner: str | None = None) -> None:
    """Raise ValueError in the project's shape for the first option outside its constraint.

    ``owner`` names the algorithm in the message (default: its ``name``, else its class):
    "The 'lr' parameter of gdp must be a float > 0 or None. Got -1 instead."
    """
    validate_fields(obj, owner or getattr(obj, "name", type(obj).__name__))


def check_known(owner: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Raise TypeError naming the first option in ``given`` that is not in ``known``."""
    known = sorted(known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise TypeError(f"{owner} has no option {unknown[0]!r}; its options are {known}.")
