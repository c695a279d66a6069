"""Numba settings, in one place.

Every compiled function in progsim is decorated with :func:`jit` or :func:`jit_parallel`
from here; no module hard-codes ``fastmath``, ``parallel`` or ``cache``.

* ``fastmath`` is off: device physics must be bit-reproducible across machines and thread
  counts, and fast-math reassociation would break the exact kernel/naive equality tests.
* ``cache`` is on unless ``PROGSIM_NUMBA_CACHE=0``: compile time dominates short runs, and
  the on-disk cache lets a test session, a study and a later session share kernels.
"""

from __future__ import annotations

import os

import numba

FASTMATH = False
CACHE = os.environ.get("PROGSIM_NUMBA_CACHE", "1") != "0"


def jit(fn=None, **overrides):
    """Serial ``numba.njit`` with the project's flags (``inline`` etc. may be overridden)."""
    opts = dict(cache=CACHE, fastmath=FASTMATH, nogil=True)
    opts.update(overrides)
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)


def jit_parallel(fn):
    """``numba.njit(parallel=True)`` with the project's flags, for ``prange`` kernels."""
    return numba.njit(cache=CACHE, fastmath=FASTMATH, nogil=True, parallel=True)(fn)
