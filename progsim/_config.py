"""Numba settings, in one place.

Every compiled function in progsim is decorated with :func:`jit` or :func:`jit_parallel`
from here; no module hard-codes ``fastmath``, ``parallel`` or ``cache``.

* ``fastmath`` is off: device physics must be bit-reproducible across machines and thread
  counts, and fast-math reassociation would break the exact kernel/naive equality tests.
* ``cache`` is on unless ``PROGSIM_NUMBA_CACHE=0``: compile time dominates short runs, and
  the on-disk cache lets a test session, a study and a later session share kernels.

numba checks a cached kernel only against its own source file, not against the functions it
inlines from other modules: after an edit of ``_rng.py`` or ``devices.py`` the kernels of
``_kernels.py`` would load stale machine code. So at import a hash of the progsim modules
that define kernels is compared with the one stamped beside the cache, and the package's cached kernels
are dropped when they differ (default cache location, ``progsim/__pycache__``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

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


def _drop_stale_kernels(package: Path | None = None) -> None:
    package = Path(__file__).resolve().parent if package is None else Path(package)
    cache = package / "__pycache__"
    digest = hashlib.sha1()
    for src in sorted(package.rglob("*.py")):
        text = src.read_bytes()
        if src.name == "_config.py" or b"_config import jit" in text:  # modules with kernels
            digest.update(src.relative_to(package).as_posix().encode())
            digest.update(text)
    stamp = cache / "progsim-kernels.sha1"
    try:
        if stamp.is_file() and stamp.read_text() == digest.hexdigest():
            return
        cache.mkdir(exist_ok=True)
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink()
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass  # a read-only install: numba falls back to compiling in memory


if CACHE:
    _drop_stale_kernels()
