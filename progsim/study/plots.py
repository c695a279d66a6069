"""Figures and the summary table of a study, read straight from its tidy tables.

Lines are labelled by ``variant``: the algorithm plus the options that vary within it
(``gdp batch_size=5``). Panels split the trials by ``condition``: every other parameter
that varies in the study (device, half-selection, shape...), the seed excepted, since
the bands are over seeds (median line, band from the lowest to the highest seed).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from progsim.study.spec import BUDGETS, PARAM_COLUMNS

X_AXES = ("iteration", "pulses_total", "reads")
_NOT_CONDITIONS = {"algorithm", "seed", "study_seed", "trial_id", *BUDGETS}


def _param_columns(table: pd.DataFrame) -> list[str]:
    """Parameter columns of a table: those before ``status`` (trial table) or ``iteration``."""
    cols = list(table.columns)
    for end in ("status", "iteration"):
        if end in cols:
            return [c for c in cols[:cols.index(end)] if c != "trial_id"]
    return [c for c in cols if c in PARAM_COLUMNS]


def _varying(table: pd.DataFrame, cols) -> list[str]:
    return [c for c in cols if table[c].astype(str).nunique() > 1]


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def label_trials(table: pd.DataFrame, params: list[str] | None = None) -> pd.DataFrame:
    """``table`` with ``variant`` and ``condition`` columns (see the module docstring)."""
    params = _param_columns(table) if params is None else params
    options = [c for c in params if c not in PARAM_COLUMNS]
    variant = table["algorithm"].astype(str) if "algorithm" in table else pd.Series("trial", index=table.index)
    for algo, rows in table.groupby(variant, sort=False):
        varying = (_varying(rows, [c for c in options if rows[c].notna().any()])
                   or _varying(rows, [c for c in BUDGETS if c in rows]))
        if varying:
            variant.loc[rows.index] = algo + " " + rows[varying].apply(
                lambda r: " ".join(f"{k}={_fmt(v)}" for k, v in r.items()), axis=1)
    cond_cols = _varying(table, [c for c in params if c not in _NOT_CONDITIONS and c not in options])
    condition = (table[cond_cols].apply(lambda r: ", ".join(f"{k}={_fmt(v)}" for k, v in r.items()), axis=1)
                 if cond_cols else pd.Series("all trials", index=table.index))
    return table.assign(variant=variant.values, condition=condition.values)


def _with_pulses(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``pulses_total``: full plus single-device pulses (``pulses`` names the scheme)."""
    if "pulses_total" in frame or "pulses_full" not in frame:
        return frame
    single = frame["pulses_single"].fillna(0.0) if "pulses_single" in frame else 0.0
    return frame.assign(pulses_total=frame["pulses_full"].fillna(0.0) + single)


def _on_cost_grid(frame: pd.DataFrame, x: str, y: str, n: int = 60) -> pd.DataFrame:
    """Each trial's ``y`` at shared geometric values of cost ``x`` (the last row at or below it).

    Trials of one variant do not share cost values, so seaborn could not band them over
    seeds at raw costs; a grid point past a trial's last row has no value (NaN).
    """
    out = []
    for (cond, variant), rows in frame.groupby(["condition", "variant"], sort=False):
        positive = rows.loc[rows[x] > 0, x]
        if positive.empty:
            continue
        grid = np.geomspace(positive.min(), positive.max(), n)
        for tid, trial in rows.groupby("trial_id", sort=False):
            xs, ys = trial[x].to_numpy(float), trial[y].to_numpy(float)
            at = np.searchsorted(xs, grid, side="right") - 1
            vals = np.where((at >= 0) & (grid <= xs.max()), ys[np.clip(at, 0, None)], np.nan)
            out.append(pd.DataFrame({"condition": cond, "variant": variant, "trial_id": tid, x: grid, y: vals}))
    return pd.concat(out, ignore_index=True) if out else frame.iloc[:0]


def convergence_figure(iterations: pd.DataFrame, path, *, y: str = "err_fro", xs=X_AXES):
    """Save ``y`` against each of ``xs`` (log-log), hue = variant, one row of panels per condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = _with_pulses(label_trials(iterations))
    xs = [x for x in xs if x in data]
    conditions = list(dict.fromkeys(data["condition"]))
    fig, axes = plt.subplots(len(conditions), len(xs), figsize=(4.6 * len(xs), 3.4 * len(conditions)),
                             squeeze=False)
    palette = dict(zip(dict.fromkeys(data["variant"]), sns.color_palette("tab10", data["variant"].nunique())))
    for r, cond in enumerate(conditions):
        rows = data[data["condition"] == cond]
        for c, x in enumerate(xs):
            ax = axes[r, c]
            part = rows[rows[x] > 0]
            if x != "iteration":
                part = _on_cost_grid(part, x, y)
            sns.lineplot(data=part, x=x, y=y, hue="variant", palette=palette, estimator="median",
                         errorbar=("pi", 100), ax=ax, legend=(r == 0 and c == len(xs) - 1))
            ax.set(xscale="log", yscale="log", title=cond if c == 0 else "", xlabel=x, ylabel=y)
    handles = axes[0, -1].get_legend()
    if handles is not None:
        sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def summary_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per variant and condition: trials, failures, share converged, and medians over seeds.

    ``final_<metric>`` medians run over all finished trials; ``iterations_to_tol``,
    ``pulses_to_tol`` and ``reads_to_tol`` medians over the trials that reached ``tol``.
    """
    table = _with_pulses(label_trials(trials))
    ok = table["status"] == "ok"
    rows = []
    for (cond, variant), group in table.groupby(["condition", "variant"], sort=False):
        done = group[ok.loc[group.index]]
        row = {"condition": cond, "variant": variant, "trials": len(group), "failed": int((~ok.loc[group.index]).sum())}
        for metric in ("err_fro", "err_spec", "err_mvm"):
            if metric in done:
                row[f"final_{metric}"] = done[metric].median()
        for col in ("iterations", "pulses_total", "reads"):
            if col in done:
                row[col] = done[col].median()
        if "converged" in done:
            row["tol"] = done["tol"].iloc[0] if len(done) else np.nan
            row["converged"] = done["converged"].astype(float).mean() if len(done) else np.nan
            reached = done[done["iterations_to_tol"].notna()]
            for col in ("iterations_to_tol", "pulses_to_tol", "reads_to_tol"):
                row[col] = reached[col].median() if len(reached) else np.nan
        rows.append(row)
    summary = pd.DataFrame(rows)
    order = {c: i for i, c in enumerate(dict.fromkeys(summary["condition"]))}
    return summary.sort_values("condition", key=lambda c: c.map(order), kind="stable", ignore_index=True)


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (4 significant digits)."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.4g}"
        return str(v)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def plot_results(out, *, y: str = "err_fro", xs=X_AXES, echo: bool = True) -> pd.DataFrame:
    """Read a results directory's tables; write ``convergence.png``, ``summary.csv`` and ``summary.md``."""
    out = pathlib.Path(out)
    for name in ("iterations.parquet", "trials.parquet"):
        if not (out / name).is_file():
            raise ValueError(f"The 'out' parameter of plot_results must be a study's results directory "
                             f"(with {name}). Got {str(out)!r} instead.")
    iterations = pd.read_parquet(out / "iterations.parquet")
    trials = pd.read_parquet(out / "trials.parquet")
    summary = summary_table(trials)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(to_markdown(summary))
    if echo:
        with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 60):
            print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if not iterations.empty and y in iterations:
        convergence_figure(iterations, out / "convergence.png", y=y, xs=xs)
    return summary
