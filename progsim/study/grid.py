"""Parameter grids, trial identities and per-trial seeds.

A study is a list of trials; a trial is a dict of parameters. :func:`expand_grid` turns a
grid (a mapping of axis name to values, or a list of such mappings, as scikit-learn's
``ParameterGrid``) into that list, in a fixed order. :func:`trial_id` names a trial by a
hash of its parameters and its trial function, so a finished trial is recognised
whatever order or machine it ran in. :func:`seed_sequence` gives a trial its random
streams from ``(study_seed, seed)`` only: trials that differ in anything else (the
algorithm, its options) but share a seed see the same target and the same tile, which
makes comparisons paired, and no stream depends on the number of workers or on the order
in which trials finish.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

SPECS = "specs"  # parameter key holding non-scalar configuration (never a table column)

Scalar = (str, bool, int, float, type(None))


def _scalar(value, key: str):
    """``value`` as a plain Python scalar (numpy scalars unwrapped), else a TypeError."""
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, Scalar):
        raise TypeError(f"The '{key}' parameter of the study grid must be a scalar (str, bool, int, float "
                        f"or None; a list is an axis). Got {value!r} instead.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"The '{key}' parameter of the study grid must be finite. Got {value!r} instead.")
    return value


def expand_grid(grid: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[dict]:
    """All parameter combinations of ``grid``, in order, without duplicates.

    ``grid`` maps each parameter to a scalar or a list of scalars (an axis); the last key
    varies fastest. A list of such mappings is the union of their grids, in order.
    """
    grids = [grid] if isinstance(grid, Mapping) else list(grid)
    if not grids or not all(isinstance(g, Mapping) for g in grids):
        raise TypeError(f"The 'grid' parameter of run_study must be a mapping of parameter to values or a "
                        f"non-empty list of such mappings. Got {grid!r} instead.")
    out, seen = [], set()
    for g in grids:
        axes = []
        for key, values in g.items():
            if not isinstance(key, str) or key == SPECS:
                raise ValueError(f"The grid key {key!r} is not allowed (keys are str, {SPECS!r} is reserved).")
            values = list(values) if isinstance(values, (list, tuple, np.ndarray)) else [values]
            if not values:
                raise ValueError(f"The '{key}' parameter of the study grid must have at least one value. Got [] instead.")
            axes.append([(key, _scalar(v, key)) for v in values])
        for combo in itertools.product(*axes):
            params = dict(combo)
            tid = canonical(params)
            if tid not in seen:
                seen.add(tid)
                out.append(params)
    return out


def canonical(obj) -> str:
    """A stable text form of JSON-like data (sorted keys, exact float repr)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def function_name(fn: Callable) -> str:
    """``module:qualname`` of a trial function; it must be importable by worker processes."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not callable(fn) or module is None or qualname is None or "<" in qualname:
        raise TypeError(f"The 'trial_fn' parameter of run_study must be a module-level function (worker "
                        f"processes import it by name). Got {fn!r} instead.")
    return f"{module}:{qualname}"


def trial_id(fn_name: str, params: Mapping[str, Any]) -> str:
    """Hex digest naming the trial ``fn_name(params)``; the name of its result file."""
    return hashlib.sha256(canonical({"fn": fn_name, "params": params}).encode()).hexdigest()[:20]


def columns(params: Mapping[str, Any]) -> dict:
    """The parameters that are table columns (all but the non-scalar ``specs``)."""
    return {k: v for k, v in params.items() if k != SPECS}


def seed_sequence(params: Mapping[str, Any]) -> np.random.SeedSequence:
    """The trial's SeedSequence: entropy ``study_seed`` (default 0), spawn key ``(seed,)``.

    Depends on nothing else, so trials with equal seeds share their random streams
    (paired comparisons) and no stream depends on workers or scheduling. Spawn children
    from it for independent streams (target, tile, algorithm...).
    """
    study_seed = params.get("study_seed", 0)
    seed = params.get("seed")
    for key, v in (("study_seed", study_seed), ("seed", seed)):
        if v is not None and (not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0):
            raise ValueError(f"The '{key}' parameter of a trial must be an int >= 0. Got {v!r} instead.")
    return np.random.SeedSequence(int(study_seed), spawn_key=() if seed is None else (int(seed),))


def int_seed(ss: np.random.SeedSequence) -> int:
    """An int seed (for APIs that take one, e.g. ``Crossbar(seed=...)``) drawn from ``ss``."""
    return int(ss.generate_state(1, dtype=np.uint32)[0])
