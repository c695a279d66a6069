"""The algorithm registry: keys to factories.

Fed by the entry-point group ``"progsim.algorithms"`` (scanned lazily, on each look-up that
misses) and by :func:`register`. A factory is a class or function called with the run's
options as keyword arguments and returning an :class:`~progsim.programming.Algorithm`.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Callable
from typing import Any

from progsim.programming.options import check_known

ENTRY_POINT_GROUP = "progsim.algorithms"

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register(name: str, factory: Callable[..., Any] | None = None, *, replace: bool = False):
    """Register ``factory`` under ``name``; usable as a decorator when ``factory`` is None.

    Registering the same factory twice is harmless; a different factory under a taken
    name raises unless ``replace=True``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"The 'name' parameter of register must be a non-empty str. Got {name!r} instead.")

    def add(f):
        if not callable(f):
            raise TypeError(f"The factory registered as {name!r} must be callable. Got {f!r} instead.")
        old = _REGISTRY.get(name)
        if old is not None and old is not f and not replace:
            raise ValueError(
                f"An algorithm is already registered as {name!r} ({old!r}); "
                "pass replace=True to replace it."
            )
        _REGISTRY[name] = f
        return f

    return add if factory is None else add(factory)


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def algorithms_available() -> list[str]:
    """Sorted registry keys: registered factories and installed entry points."""
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_algorithm(name: str, **options):
    """Build the algorithm registered as ``name`` with ``options``.

    Options a dataclass factory does not declare raise TypeError before it is called.
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        ep = _entry_points().get(name)
        if ep is None:
            raise ValueError(
                f"The 'algorithm' parameter of program must be one of {algorithms_available()} "
                f"or an Algorithm object. Got {name!r} instead. Third-party algorithms register "
                f"under the entry-point group {ENTRY_POINT_GROUP!r} or with progsim.register() "
                "(progsim.programming.register)."
            )
        factory = ep.load()
        _REGISTRY[name] = factory
    if dataclasses.is_dataclass(factory):
        check_known(name, options, (f.name for f in dataclasses.fields(factory) if f.init))
    algo = factory(**options)
    if not callable(getattr(algo, "program", None)):
        raise TypeError(f"The factory registered as {name!r} returned {algo!r}, which has no program() method.")
    return algo
