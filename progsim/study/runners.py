"""Run a study's trials on local processes or a Dask cluster, resumably.

Runners only schedule: each trial is ``trial_fn(params)`` in a worker, its rows come back
to this process, which writes them at once (:class:`~progsim.study.store.TrialStore`), so
the tables depend neither on where nor in which order trials ran. At most a few trials per
worker are in flight at any time, which bounds what a killed study loses.

A trial that raises is recorded (``error_type``, ``error_message`` in the trial table)
and the study goes on; a re-run skips it unless ``retry_failed``. A trial lost with its
worker (a crashed process, a Dask ``KilledWorker``) is counted as failed in the progress
bar but not recorded, so the next run retries it.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import pandas as pd

from progsim.study.grid import expand_grid, function_name, trial_id
from progsim.study.spec import Study, load_study
from progsim.study.store import TrialStore, as_frame, consolidate, write_parquet_atomic

IN_FLIGHT_PER_WORKER = 2


def limit_threads(numba_threads: int) -> None:
    """Run numba, BLAS and OpenMP/MKL libraries loaded later (e.g. torch) on ``numba_threads``
    threads.

    Called at the start of every trial. :func:`progsim.set_num_threads` picks progsim's serial
    kernels for one thread and limits the BLAS pools already loaded (numpy's OpenBLAS
    starts with one thread per core: two workers running BLAS on two threads each fight
    over the cores); ``numba.set_num_threads`` holds for the calling thread, which under
    Dask is a worker's executor thread, not its main thread.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(numba_threads))
    import numba

    import progsim

    n = min(numba_threads, numba.config.NUMBA_NUM_THREADS)
    progsim.set_num_threads(n)
    numba.set_num_threads(n)


def execute(trial_fn: Callable, params: Mapping[str, Any], numba_threads: int) -> tuple[str, Any]:
    """Run one trial in a worker: ``("ok", rows)`` or ``("failed", (type, message))``."""
    limit_threads(numba_threads)
    try:
        return "ok", as_frame(trial_fn(params))
    except Exception as exc:  # a failing trial is a result, not the study's end
        message = f"{exc}\n{traceback.format_exc(limit=-3)}"
        return "failed", (type(exc).__name__, message)


@dataclass
class StudyResult:
    """The consolidated tables of a study run, and where its files are."""

    iterations: pd.DataFrame
    trials: pd.DataFrame
    out: Any
    n_failed: int


class _Progress:
    """tqdm bar: done (of all trials, including those finished before), running, failed."""

    def __init__(self, total: int, done: int, name: str, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=done, desc=name, unit="trial", disable=not enabled, dynamic_ncols=True)
        self.running = self.failed = 0
        self.slots = 1

    def show(self) -> None:
        self.bar.set_postfix(running=min(self.running, self.slots), failed=self.failed, refresh=True)

    def finished(self, ok: bool) -> None:
        self.failed += not ok
        self.bar.update(1)
        self.show()

    def close(self) -> None:
        self.running = 0
        self.show()
        self.bar.close()


def _record(store: TrialStore, tid: str, params, outcome) -> bool:
    status, payload = outcome
    if status == "ok":
        try:
            store.write_ok(tid, params, payload)
            return True
        except ValueError as exc:  # rows whose columns clash with the parameters
            status, payload = "failed", (type(exc).__name__, str(exc))
    store.write_failed(tid, params, *payload)
    return False


def _run_serial(todo, trial_fn, store, progress, numba_threads):
    progress.slots = 1
    for tid, params in todo:
        progress.running = 1
        progress.show()
        progress.finished(_record(store, tid, params, execute(trial_fn, params, numba_threads)))


def _run_local(todo, trial_fn, store, progress, workers, numba_threads, mp_context):
    ctx = multiprocessing.get_context(mp_context)
    progress.slots = workers
    queue: Iterator = iter(todo)
    pending: dict = {}
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        def submit() -> None:
            for tid, params in queue:
                pending[pool.submit(execute, trial_fn, params, numba_threads)] = (tid, params)
                if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                    return

        submit()
        while pending:
            progress.running = len(pending)
            progress.show()
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                tid, params = pending.pop(fut)
                try:
                    outcome = fut.result()
                except BrokenProcessPool as exc:
                    raise RuntimeError("A worker process died (killed, out of memory?); the finished "
                                       "trials are saved, run the study again to resume.") from exc
                progress.finished(_record(store, tid, params, outcome))
            submit()
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)


def _run_dask(todo, trial_fn, store, progress, address, workers, numba_threads):
    import logging

    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        slots = max(1, sum(client.nthreads().values()))
        progress.slots = slots
        queue: Iterator = iter(todo)
        pending: dict = {}
        ac = as_completed()

        def submit() -> None:
            for tid, params in queue:
                fut = client.submit(execute, trial_fn, params, numba_threads, key=f"trial-{tid}", pure=False)
                pending[fut.key] = (tid, params)
                ac.add(fut)
                if len(pending) >= IN_FLIGHT_PER_WORKER * slots:
                    return

        submit()
        progress.running = len(pending)
        progress.show()
        for fut in ac:
            tid, params = pending.pop(fut.key)
            try:
                ok = _record(store, tid, params, fut.result())
            except Exception:  # KilledWorker, lost connection: not recorded, retried next run
                ok = False
            progress.finished(ok)
            submit()
            progress.running = len(pending)
            progress.show()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_study(study, trial_fn: Callable | None = None, *, out, workers: int | None = None,
              dask: str | None = None, numba_threads: int = 1, seed: int = 0, tol: float | None = None,
              tol_metric: str = "err_fro", retry_failed: bool = False, progress: bool = True,
              mp_context: str = "spawn", name: str | None = None) -> StudyResult:
    """Run every unfinished trial of ``study`` and return the consolidated tables.

    Parameters
    ----------
    study : Study, path to a TOML file, mapping or list of mappings
        A programming study (:class:`Study`, its file or its mapping), run by the built-in
        :func:`~progsim.study.programming_trial` (or by ``trial_fn``, given the same
        parameters); or, with ``trial_fn``, a grid for :func:`~progsim.study.expand_grid`
        (axis name to values).
    trial_fn : callable, optional
        ``trial_fn(params) -> rows`` (DataFrame, list of dicts or dict of columns): one
        trial. It must be a module-level function, importable by worker processes (not a
        lambda, not defined in ``__main__`` of an interactive session), and a pure function
        of ``params``; draw its randomness from :func:`~progsim.study.seed_sequence`.
    out : path
        Results directory (created): per-trial files, ``iterations.parquet``, ``trials.parquet``
        and, for a programming study, ``study.json`` (its description).
    workers : int, optional
        Worker processes (default: the CPUs available); 0 runs trials in this process, one
        after another. With ``dask``: LocalCluster workers (ignored for a scheduler address).
    dask : str, optional
        A ``dask.distributed`` scheduler address, or ``"local"`` for a LocalCluster of
        single-threaded worker processes.
    numba_threads : int
        Numba threads of each trial (default 1: N workers run N trials side by side).
    seed : int
        ``study_seed`` added to every grid trial (programming studies carry their own).
    tol, tol_metric
        Tolerance of the trial table's ``converged`` and ``*_to_tol`` columns (a
        programming study's default: its ``study.tol`` on ``err_fro``).
    retry_failed : bool
        Run again the trials recorded as failed.
    progress : bool
        Show the tqdm progress bar (done, running, failed).
    mp_context : str
        ``"spawn"`` or ``"forkserver"``: how local worker processes start.
    """
    study, params_list, trial_fn, tol, name = _resolve(study, trial_fn, seed, tol, name)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    for key, value, low in (("workers", workers, 0), ("numba_threads", numba_threads, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"The '{key}' parameter of run_study must be an int >= {low}. Got {value!r} instead.")
    if mp_context not in ("spawn", "forkserver"):
        raise ValueError(f"The 'mp_context' parameter of run_study must be 'spawn' or 'forkserver'. Got {mp_context!r} instead.")
    if dask is not None and not isinstance(dask, str):
        raise ValueError(f"The 'dask' parameter of run_study must be a scheduler address or 'local'. Got {dask!r} instead.")

    fn_name = function_name(trial_fn)
    trials = [(trial_id(fn_name, p), p) for p in params_list]
    store = TrialStore(out)
    store.prepare()
    if isinstance(study, Study):  # the description the tables came from, beside them
        (store.out / "study.json").write_text(json.dumps(study.source, indent=2, sort_keys=False) + "\n")
    if retry_failed:
        for tid, _ in trials:
            store.forget_failure(tid)
    todo = [(tid, p) for tid, p in trials if store.status(tid) is None]
    bar = _Progress(len(trials), len(trials) - len(todo), name, progress)
    try:
        if dask is not None and todo:
            _run_dask(todo, trial_fn, store, bar, dask, max(workers, 1), numba_threads)
        elif workers == 0 or not todo:
            _run_serial(todo, trial_fn, store, bar, numba_threads)
        else:
            _run_local(todo, trial_fn, store, bar, workers, numba_threads, mp_context)
    finally:
        bar.close()
    iterations, table = consolidate(store, trials, tol=tol, tol_metric=tol_metric)
    write_parquet_atomic(iterations, store.out / "iterations.parquet")
    write_parquet_atomic(table, store.out / "trials.parquet")
    n_failed = int((table["status"] == "failed").sum()) if "status" in table else 0
    return StudyResult(iterations=iterations, trials=table, out=store.out, n_failed=n_failed)


def _resolve(study, trial_fn, seed, tol, name):
    """(study, trial parameters, trial function, tol, name) of what run_study was given."""
    from progsim.study.trial import programming_trial

    if trial_fn is None:
        if isinstance(study, (str, os.PathLike)):
            study = load_study(study)
        elif isinstance(study, Mapping):
            study = Study.from_dict(study, name=name)
        if not isinstance(study, Study):
            raise TypeError(f"The 'study' parameter of run_study must be a Study, a TOML path or a study "
                            f"mapping when no trial_fn is given. Got {type(study).__name__} instead.")
        return study, study.trials(), programming_trial, study.tol if tol is None else tol, name or study.name
    if isinstance(study, Study):  # a programming study's trials under another function (a wrapper)
        return study, study.trials(), trial_fn, study.tol if tol is None else tol, name or study.name
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"The 'seed' parameter of run_study must be an int >= 0. Got {seed!r} instead.")
    params = [p if "study_seed" in p else {**p, "study_seed": seed} for p in expand_grid(study)]
    return study, params, trial_fn, tol, name or getattr(trial_fn, "__name__", "study")

