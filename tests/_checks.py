"""Assertions several test files share."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from progsim import _rng
from progsim._config import jit


def assert_field_error(cls, bad_fields: dict, field: str) -> None:
    """``bad_fields`` (one bad value per field of the dataclass ``cls``) covers every field, and
    ``cls(field=bad)`` raises the project's one error shape naming ``field`` and ``cls``."""
    assert {f.name for f in dataclasses.fields(cls)} == set(bad_fields)  # every field is covered
    with pytest.raises(ValueError, match=rf"^The '{field}' parameter of {cls.__name__} must be .* Got .* instead\.$"):
        cls(**{field: bad_fields[field]})


@jit(cache=False)  # inlines progsim._rng: a cached copy would outlive edits there
def stream_outputs(n, key, domain, line, counter=0):
    """The first ``n`` outputs of the buffered stream ``(key, counter, domain, line)``, each
    computed on its own: the fast path on the (k + 1)-th SplitMix64 output of the stream's seed,
    else the slow path on that output's sub-stream (the reference the kernels' blocks must match)."""
    base = _rng.stream_seed(key, np.uint64(counter), domain, line)
    out = np.empty(n)
    for k in range(n):
        bits = _rng.mix64(base + np.uint64(k + 1) * _rng._GOLDEN)
        x, ok = _rng._zig_fast(bits)
        out[k] = x if ok else _rng._zig_finish(bits)
    return out
