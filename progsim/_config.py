"""Numba settings and thread count, in one place.

Every compiled function in progsim is decorated with :func:`jit` or :func:`jit_parallel`
from here, or made by :func:`serial_and_parallel`; no module hard-codes ``fastmath``,
``parallel`` or ``cache``.

* ``fastmath`` is off: device physics must be bit-reproducible across machines and thread
  counts, and fast-math reassociation would break the exact kernel/naive equality tests.
* ``cache`` is on unless ``PROGSIM_NUMBA_CACHE=0``: the compiled kernels are written beside
  the package (``progsim/__pycache__``) and loaded by later processes.
* LLVM's SLP vectoriser, off in numba by default, is switched on by :func:`slp_vectorized`
  around the first call of the one kernel written for it (the periphery's blocked product).
* Threads: :func:`set_num_threads` (or ``PROGSIM_NUM_THREADS``, read once at import) sets the
  threads of the parallel kernels for the whole process; with one thread, or below
  ``SERIAL_BELOW`` cells times cycles, the serial variant of a kernel runs instead (no
  parallel region, whose start-up dominates small calls and which waits for busy cores).
  Both variants take the same draws, so results do not depend on which ran.
* :func:`serial` runs the calls inside it on one thread whatever their size: the serial
  variant of every kernel, and BLAS (the product inside the periphery's kernel) limited to one
  thread. For many small calls interleaved with another library's parallel work (the torch
  layers of :mod:`progsim.nn`): there a parallel region or a threaded BLAS call waits for
  worker threads that share the cores with the other library's spinning OpenMP workers, and
  that wait, not the arithmetic, sets the time. numba's own thread count is left untouched.

numba checks a cached kernel only against its own source file, not against the functions it
inlines from other modules: after an edit of ``_rng.py`` or ``devices.py`` the kernels of
``_kernels.py`` would load stale machine code. So at import a hash of the progsim modules
that define kernels is compared with the one stamped beside the cache, and the package's cached kernels
are dropped when they differ (default cache location, ``progsim/__pycache__``).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import types
from pathlib import Path

import numba

from progsim._validate import param_error

FASTMATH = False
CACHE = os.environ.get("PROGSIM_NUMBA_CACHE", "1") != "0"

# Work (tile cells times update cycles, or lines times cycles for the trains) below which a
# kernel runs serially: about where two threads start to beat one on an idle two-core machine
# (the ``threshold`` table of ``studies/bench_update.py``). Below it a call is short, and a
# parallel region, which waits for every thread, loses far more on busy cores than it gains
# on idle ones.
SERIAL_BELOW = 128 * 128

_threads = {"n": None, "applied": False}
# serial(): how many callers are inside it (process-wide), and the BLAS libraries it limits,
# found again whenever modules were imported since (numba loads scipy's BLAS with the first
# kernel that multiplies).
_serial = {"depth": 0, "blas": None, "modules": -1, "restore": []}
_serial_lock = threading.Lock()


def _env_threads():
    raw = os.environ.get("PROGSIM_NUM_THREADS")
    if raw is None or raw == "":
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"The 'PROGSIM_NUM_THREADS' environment variable must be an int >= 1. Got {raw!r} instead.") from None
    return _checked_threads(n, "PROGSIM_NUM_THREADS")


def _checked_threads(n, name="n"):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise param_error("set_num_threads", name, "an int >= 1", n)
    return min(n, numba.config.NUMBA_NUM_THREADS)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in progsim's parallel kernels (and BLAS, through threadpoolctl where
    installed) for the rest of the process; ``set_num_threads(1)`` makes a worker process
    serial (a study worker beside others). Capped at numba's ``NUMBA_NUM_THREADS``.

    The BLAS limit covers the library numba's compiled products call (SciPy's, which numba
    would otherwise load only with the first kernel that multiplies, after the limit, and
    leave at its default thread count) as well as NumPy's."""
    _threads["n"] = _checked_threads(n)
    _threads["applied"] = False
    _apply_threads()
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        return
    import scipy.linalg.cython_blas  # noqa: F401, PLC0415 -- loads the BLAS numba's np.dot calls
    threadpool_limits(limits=_threads["n"], user_api="blas")


def num_threads() -> int:
    """Threads progsim's parallel kernels use (numba's default unless set)."""
    return numba.config.NUMBA_NUM_THREADS if _threads["n"] is None else _threads["n"]


def _apply_threads():
    if not _threads["applied"]:
        _threads["applied"] = True
        if _threads["n"] is not None:
            numba.set_num_threads(_threads["n"])


def use_parallel(work: int) -> bool:
    """Whether a call of ``work`` units should run the parallel variant of its kernel (and, if
    so, numba's thread count is applied first)."""
    if work < SERIAL_BELOW or _serial["depth"] or num_threads() == 1:
        return False
    _apply_threads()
    return True


def _thread_calls(lib):
    """``(get, set)`` of one threadpoolctl library controller: its C functions themselves for an
    OpenBLAS on its own threads (a few hundred ns a call, where the controller's Python layers
    take microseconds on every :func:`serial` of a layer's small calls), else the controller's
    methods."""
    if type(lib).__name__ == "OpenBLASController" and getattr(lib, "threading_layer", None) != "openmp":
        try:
            get = lib._get_symbol("openblas_get_num_threads")
            put = lib._get_symbol("openblas_set_num_threads")
        except Exception:  # noqa: BLE001 -- a threadpoolctl without the private helper: its methods
            get = put = None
        if get is not None and put is not None:
            return get, put
    return (lambda: lib.num_threads), lib.set_num_threads


def _blas_libraries():
    """``(get, set)`` thread-count calls of the loaded BLAS libraries ([] without threadpoolctl),
    found again whenever modules were imported since."""
    if _serial["modules"] != len(sys.modules):
        _serial["modules"] = len(sys.modules)
        try:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415
        except ImportError:
            _serial["blas"] = []
        else:
            libs = ThreadpoolController().select(user_api="blas").lib_controllers
            _serial["blas"] = [_thread_calls(lib) for lib in libs]
    return _serial["blas"]


class _Serial:
    """The context of :func:`serial` (a class: entered for every small call of a layer). The
    depth and the BLAS counts to restore are process-wide, changed under a lock: the BLAS limit
    is set by the first thread in and lifted by the last one out."""

    __slots__ = ()

    def __enter__(self):
        with _serial_lock:
            _serial["depth"] += 1
            if _serial["depth"] == 1:
                _serial["restore"] = [(put, n) for get, put in _blas_libraries() if (n := get()) != 1]
                for put, _ in _serial["restore"]:
                    put(1)
        return self

    def __exit__(self, *exc):
        with _serial_lock:
            _serial["depth"] -= 1
            if _serial["depth"] == 0:
                for put, n in _serial["restore"]:
                    put(n)
                _serial["restore"] = []
        return False


def serial():
    """A context running the enclosed progsim calls on one thread (see the module docstring):
    serial kernel variants, and every BLAS library that threadpoolctl finds limited to one
    thread, its count restored on leaving. Re-entrant and process-wide (the BLAS limit holds for
    every thread of the process meanwhile, until the last thread inside leaves); the same bits
    as the parallel variants."""
    return _Serial()


class _SLP:
    """The context of :func:`slp_vectorized`: numba's ``SLP_VECTORIZE`` on, the previous value
    restored on leaving. numba reads it whenever it builds a pass pipeline, i.e. per compile."""

    __slots__ = ("_saved",)

    def __enter__(self):
        self._saved = numba.config.SLP_VECTORIZE
        numba.config.SLP_VECTORIZE = 1
        return self

    def __exit__(self, *exc):
        numba.config.SLP_VECTORIZE = self._saved
        return False


def slp_vectorized():
    """A context in which numba compiles with LLVM's SLP (straight-line) vectoriser on, for the
    first call of a kernel written for it (the periphery's blocked product: its 32 scalar
    accumulators become vector registers). numba leaves that vectoriser off by default
    (``NUMBA_SLP_VECTORIZE=0``); it packs independent operations of the same kind into one
    vector instruction and reorders no floating-point operation, so a kernel gives the same
    bits with it or without it. The setting is process-wide while the context lasts. A cached
    kernel is loaded as compiled, whatever the setting."""
    return _SLP()


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


def renamed(fn, name: str):
    """A copy of the Python function ``fn`` under another name. numba names a kernel's cache
    file after the function's qualified name, so two kernels compiled from one Python function
    (serial and parallel, or one per device model) need names of their own."""
    g = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    g.__qualname__ = name
    g.__module__ = fn.__module__
    g.__doc__ = fn.__doc__
    return g


def entry_point(kernel, args):
    """The compiled entry of the jitted ``kernel`` for the types of ``args``, after a call with
    them has compiled it: a callable that skips numba's type dispatch (which, for a tuple of
    arrays among the arguments, goes through Python-level typing on every call). The caller
    must pass arguments of exactly those types (same array dtype, ndim and layout) on every
    later call: the entry unboxes them without checking. ``kernel`` itself when there is no
    such entry (the JIT disabled, or a numba without per-signature entries). The entry is not
    picklable: an object that keeps one leaves it out of its pickled state."""
    try:
        sig = tuple(kernel.typeof_pyval(a) for a in args)
        return kernel.overloads[sig].entry_point
    except (AttributeError, KeyError, TypeError):
        return kernel


def serial_and_parallel(fn):
    """``(serial, parallel)`` kernels compiled from one ``prange`` function: the serial one runs
    ``prange`` as ``range``. Each compiles on its first call only."""
    name = fn.__name__
    return jit(renamed(fn, name + "_serial")), jit_parallel(renamed(fn, name + "_parallel"))


def _drop_stale_kernels(package: Path | None = None) -> None:
    package = Path(__file__).resolve().parent if package is None else Path(package)
    cache = package / "__pycache__"
    digest = hashlib.sha1()
    for src in sorted(package.rglob("*.py")):
        text = src.read_bytes()
        if src.name == "_config.py" or b"_config import" in text and b"jit" in text:  # modules with kernels
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


_threads["n"] = _env_threads()
if CACHE:
    _drop_stale_kernels()
