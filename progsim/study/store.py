"""Where trials land: one Parquet file per finished trial, written atomically, and the
consolidated iteration and trial tables built from those files.

Layout of a results directory::

    trials/<trial_id>.parquet          iteration rows of a finished trial
    trials/<trial_id>.failed.parquet   one row: the failed trial's parameters and its error
    iterations.parquet, trials.parquet the consolidated tables (rewritten at each run's end)

A file appears only complete (written to a temporary name in the same directory, then
``os.replace``), so a study killed at any moment leaves finished trials readable and no
half-written ones; the next run skips every trial that has a file.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from progsim.study.grid import columns

TMP_SUFFIX = ".tmp"


def write_parquet_atomic(frame: pd.DataFrame, path: pathlib.Path) -> None:
    """Write ``frame`` to ``path`` so that readers see the whole file or none of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    frame.to_parquet(tmp, index=False)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def as_frame(rows) -> pd.DataFrame:
    """A trial function's result (DataFrame, list of dicts or dict of columns) as a DataFrame."""
    if isinstance(rows, pd.DataFrame):
        frame = rows.reset_index(drop=True)
    elif isinstance(rows, (Mapping, Sequence)) and not isinstance(rows, (str, bytes)):
        frame = pd.DataFrame(rows)
    else:
        raise TypeError(f"A trial function must return its iteration rows as a DataFrame, a list of dicts "
                        f"or a dict of columns. Got {type(rows).__name__} instead.")
    if frame.empty:
        raise ValueError("A trial function must return at least one iteration row. Got none instead.")
    return frame


class TrialStore:
    """The per-trial files of one results directory."""

    def __init__(self, out: str | os.PathLike):
        self.out = pathlib.Path(out)
        self.dir = self.out / "trials"

    def prepare(self) -> None:
        """Create the directories and drop temporary files left by a killed run."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.dir.glob(f".*{TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)

    def ok_path(self, tid: str) -> pathlib.Path:
        return self.dir / f"{tid}.parquet"

    def failed_path(self, tid: str) -> pathlib.Path:
        return self.dir / f"{tid}.failed.parquet"

    def status(self, tid: str) -> str | None:
        """``"ok"``, ``"failed"`` or None (not run yet)."""
        if self.ok_path(tid).exists():
            return "ok"
        return "failed" if self.failed_path(tid).exists() else None

    def forget_failure(self, tid: str) -> None:
        self.failed_path(tid).unlink(missing_ok=True)

    def write_ok(self, tid: str, params: Mapping[str, Any], rows: pd.DataFrame) -> None:
        write_parquet_atomic(_with_params(tid, params, rows), self.ok_path(tid))

    def write_failed(self, tid: str, params: Mapping[str, Any], error_type: str, error_message: str) -> None:
        row = pd.DataFrame([dict(error_type=error_type, error_message=error_message)])
        write_parquet_atomic(_with_params(tid, params, row), self.failed_path(tid))

    def read(self, tid: str) -> tuple[str, pd.DataFrame] | None:
        status = self.status(tid)
        if status is None:
            return None
        return status, pd.read_parquet(self.ok_path(tid) if status == "ok" else self.failed_path(tid))


def _with_params(tid: str, params: Mapping[str, Any], rows: pd.DataFrame) -> pd.DataFrame:
    cols = {"trial_id": tid, **columns(params)}
    clash = sorted(set(cols) & set(rows.columns))
    if clash:
        raise ValueError(f"The trial's rows have columns named like its parameters: {clash}; rename them.")
    head = pd.DataFrame({k: [v] * len(rows) for k, v in cols.items()}, index=rows.index)
    return pd.concat([head, rows], axis=1)


# --------------------------------------------------------------------------- consolidated tables


def _first_hit(frame: pd.DataFrame, metric: str, tol: float) -> pd.Series | None:
    hit = frame[frame[metric] <= tol]
    return None if hit.empty else hit.iloc[0]


def _pulses(row) -> float:
    return float(np.nansum([row.get("pulses_full", np.nan), row.get("pulses_single", np.nan)]))


def _trial_row(tid: str, params: Mapping[str, Any], status: str, frame: pd.DataFrame,
               tol: float | None, tol_metric: str) -> dict:
    row = {"trial_id": tid, **columns(params), "status": status}
    if status == "failed":
        row.update(error_type=frame["error_type"].iloc[0], error_message=frame["error_message"].iloc[0])
        return row
    row.update(error_type=None, error_message=None)
    last = frame.iloc[-1]
    measured = [c for c in frame.columns if c not in row and c != "trial_id"]
    if "iteration" in measured:
        row["iterations"] = last["iteration"]
    row.update({c: last[c] for c in measured if c != "iteration"})
    if tol is not None and tol_metric in frame.columns:
        hit = _first_hit(frame, tol_metric, tol)
        row["tol"] = tol
        row["converged"] = bool(last[tol_metric] <= tol)
        row["iterations_to_tol"] = float(hit["iteration"]) if hit is not None and "iteration" in hit else math.nan
        row["pulses_to_tol"] = _pulses(hit) if hit is not None else math.nan
        row["reads_to_tol"] = float(hit["reads"]) if hit is not None and "reads" in hit else math.nan
    return row


def _params_first(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    head = [c for c in first if c in frame.columns]
    return frame[head + [c for c in frame.columns if c not in head]].infer_objects()


def consolidate(store: TrialStore, trials: Sequence[tuple[str, Mapping[str, Any]]], *,
                tol: float | None = None, tol_metric: str = "err_fro") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The iteration and trial tables of ``trials`` (``(trial_id, params)`` in grid order).

    Iteration table: every finished trial's rows, parameters first. Trial table: one row
    per trial that has a file: parameters, ``status`` (``ok`` / ``failed``), ``error_type``
    and ``error_message``, the last row's values (``iterations`` = its ``iteration``), and,
    with ``tol``: ``converged`` (final ``tol_metric`` <= ``tol``), ``iterations_to_tol``,
    ``pulses_to_tol`` (full plus single-device) and ``reads_to_tol`` at the first recorded
    row at or below ``tol`` (NaN if none).
    """
    frames, rows = [], []
    for tid, params in trials:
        found = store.read(tid)
        if found is None:
            continue
        status, frame = found
        if status == "ok":
            frames.append(frame)
        rows.append(_trial_row(tid, params, status, frame, tol, tol_metric))
    # parameters first, in grid order, whichever trial brought them (an option of the
    # second algorithm would otherwise land after the first one's metrics)
    first = ["trial_id"] + list(dict.fromkeys(c for _, params in trials for c in columns(params)))
    iterations = _params_first(pd.concat(frames, ignore_index=True), first) if frames else pd.DataFrame()
    table = _params_first(pd.DataFrame(rows), first)
    if "converged" in table:
        table["converged"] = table["converged"].astype("boolean")
    return iterations, table
