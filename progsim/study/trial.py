"""The built-in trial: program one target into one tile and return the iteration table.

:func:`programming_trial` is a pure function of its parameters (one entry of
:meth:`progsim.study.Study.trials`): the target, the tile's per-cell draws and streams,
and the algorithm's seed all come from the trial's SeedSequence (``study_seed``,
``seed``), spawned in that order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from progsim import Crossbar, HalfSelect, program
from progsim.study.grid import SPECS, int_seed, seed_sequence
from progsim.study.spec import accepts_option, build_device, build_io, build_pulses, load_builtin_algorithms


def make_target(kind: str, rows: int, cols: int, rank: int, max_abs: float, rng: np.random.Generator) -> np.ndarray:
    """A random ``rows x cols`` target of the given rank, scaled to ``max|T| = max_abs``.

    The base matrix has standard-normal (``"normal"``) or uniform(-1, 1) (``"uniform"``)
    entries; for ``rank < min(rows, cols)`` only its top ``rank`` SVD components are kept.
    """
    base = rng.standard_normal((rows, cols)) if kind == "normal" else rng.uniform(-1.0, 1.0, (rows, cols))
    if rank < min(rows, cols):
        u, s, vt = np.linalg.svd(base, full_matrices=False)
        base = (u[:, :rank] * s[:rank]) @ vt[:rank]
    return base * (max_abs / np.abs(base).max())


def programming_trial(params: Mapping[str, Any]) -> pd.DataFrame:
    """Run ``progsim.program`` for one trial of a :class:`~progsim.study.Study`; its iteration table.

    With ``clip > 0`` the target is clipped to ``clip`` times each cell's own bounds (read
    from the tile's per-cell parameters: the study's choice of a reachable target, never
    seen by the algorithm). The table gains a ``stop`` column (why the run ended).
    """
    load_builtin_algorithms()
    specs = params[SPECS]
    ss_target, ss_tile, ss_algorithm = seed_sequence(params).spawn(3)
    rows, cols = int(params["rows"]), int(params["cols"])
    tile = Crossbar(rows, cols, device=build_device(specs["device"]), pulses=build_pulses(specs["pulses"]),
                    half_select=HalfSelect(params["half_select"], strength=params["strength"], prob=params["prob"]),
                    io=build_io(specs["io"]), seed=int_seed(ss_tile))
    target = make_target(params["target"], rows, cols, int(params["rank"]), float(params["max_abs"]),
                         np.random.default_rng(ss_target))
    if params["clip"] > 0:
        cells = tile.cells
        target = np.clip(target, params["clip"] * cells.w_min, params["clip"] * cells.w_max)
    options = {name: params[name] for name in specs["options"]}
    if accepts_option(params["algorithm"], "seed"):
        options["seed"] = int_seed(ss_algorithm)
    result = program(tile, target, params["algorithm"], max_iter=int(params["max_iter"]),
                     max_pulses=params.get("max_pulses"), max_reads=params.get("max_reads"),
                     tol=params.get("stop_tol"), record_every=int(params["record_every"]),
                     **options)
    return result.table.assign(stop=result.stop)
