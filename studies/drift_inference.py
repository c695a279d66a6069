"""Drift of programmed networks over a year: digital against hardware-aware (HWA) training.

A replication of Rasch et al., "Hardware-aware training for large-scale and diverse deep
learning inference workloads using in-memory computing-based accelerators" (Nat. Commun.
14, 5282, 2023) at a size two CPU cores train in minutes:

* models: the digits CNN and MLP of ``studies/_digits.py`` (test accuracy) and a one-layer
  LSTM (16 hidden) predicting the next symbol of a random second-order Markov chain
  (``studies/_sequence.py``; test perplexity, whose floor ``exp(entropy rate)`` is known);
* training, per seed: a digital pre-training, then ``fine_epochs`` more epochs either
  digitally (``training = "digital"``) or hardware-aware (``"hwa"``: the model converted with
  the HWA inference config and trained with any torch optimiser through the forward
  periphery, the weights perturbed by the PCM-noise modifier and clipped at 2.5 sigma after
  each step). Both arms see the same data for the same number of steps;
* programming, once per (model, training, seed, method) and reused for every ``t`` and
  compensation: ``"statistical"`` (one draw of the PCM programming noise,
  ``program_analog_weights(model)``) or a programming algorithm on a PCM-like pulsed crossbar
  per layer (``"gdp"``, ``"svd"``, ``"write-verify"``, run lengths in :data:`PROGRAM_OPTIONS`);
* drift: ``drift_analog_weights(model, t)`` at t = 1 s, 1 h, 1 d, 1 y, with and without global
  drift compensation (the same drift draw for both: the rng seed is shared), then the test
  metric in eval mode;
* aihwkit 1.2's own pipeline beside it where it imports (CNN and MLP): ``InferenceRPUConfig``
  with ``PCMLikeNoiseModel`` and ``GlobalDriftCompensation``, HWA fine-tuning with its
  ``AnalogSGD`` and the same modifier and clip, ``program_analog_weights()``,
  ``drift_analog_weights(t)``; rows with ``programming = "aihwkit-statistical"``. aihwkit
  seeds its forward noise from the clock, so its rows repeat only statistically.

Rows with ``programming = "unprogrammed"`` (``"aihwkit-unprogrammed"``) and ``t = 0`` hold the
trained model read through the periphery before programming: the reference a drop is
measured from.

Writes into ``--out`` (default ``results/drift_inference``): ``drift_inference.parquet`` and
``.csv`` (columns model, training, programming, t, compensation, seed, metric, value),
``programming.parquet`` (one row per programmed layer: its report from
``program_analog_weights``), ``drift_inference.png`` (metric against t, log x, hue =
programming, col = model, style = training, bands over seeds; compensated rows) and prints the
mean +- std over seeds.

Usage: ``python studies/drift_inference.py [--out DIR] [--seeds N] [--models cnn mlp lstm]
[--quick] [--no-aihwkit]``
"""

from __future__ import annotations

import argparse
import copy
import pathlib
import sys
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _digits  # noqa: E402
import _sequence  # noqa: E402
import progsim_algorithms  # noqa: E402,F401  (registers the built-in algorithms in a source tree)
from progsim.inference import (InferenceConfig, WeightClip, WeightModifier, drift_analog_weights,  # noqa: E402
                               program_analog_weights)
from progsim.nn import convert_to_analog  # noqa: E402

TIMES = (1.0, 3600.0, 86400.0, 365.0 * 86400.0)
METHODS = ("statistical", "gdp", "svd", "write-verify")
# Programming run lengths, per layer (every layer of a model gets the same options):
# * gdp: one-hot inputs in batches of 8 (lr 1 corrects a read column in one step; standard-normal
#   inputs do not converge on the coarse, noisy PCM steps), 400 iterations = 3200 column reads,
#   12.5 visits per column of the widest layer (the MLP's 256 inputs);
# * svd: its own stopping rule (it ends when no component of the read error is worth its write
#   noise), at most 60 rank-one updates (on the MLP's layers it would otherwise run to ~250,
#   a minute and a half each, for a few points of err_fro);
# * write-verify: 20 rounds of read and single-device pulses (its default is 40; the error
#   stops falling after about 15 on these devices).
# record_every spares the runner's per-iteration SVD metrics: only the final row is used.
PROGRAM_OPTIONS = {
    "gdp": dict(inputs="onehot", batch_size=8, max_iter=400, record_every=100_000),
    "svd": dict(max_iter=60, record_every=100_000),
    "write-verify": dict(max_iter=20, record_every=100_000),
}
COLUMNS = ["model", "training", "programming", "t", "compensation", "seed", "metric", "value"]


@dataclass(frozen=True)
class Plan:
    """What one run of the study does: models, seeds, epochs, HWA noise, programming methods."""

    models: tuple = ("cnn", "mlp", "lstm")
    seeds: int = 3
    # digital pre-training, then fine-tuning (digital or HWA) for the same number of steps
    epochs: dict = field(default_factory=lambda: {"cnn": 30, "mlp": 15, "lstm": 30})
    fine_epochs: dict = field(default_factory=lambda: {"cnn": 10, "mlp": 3, "lstm": 3})
    lr: dict = field(default_factory=lambda: {"cnn": 0.05, "mlp": 0.05, "lstm": 0.01})
    fine_lr: dict = field(default_factory=lambda: {"cnn": 0.01, "mlp": 0.01, "lstm": 0.003})
    # HWA modifier: PCM programming noise scaled by hwa_noise (3x the physical noise: training
    # under more noise than the hardware has is what Rasch et al. recommend), with the drift
    # spread and read noise of hwa_t_inference seconds when > 0 (aihwkit's PCM_NOISE with std_dev
    # and pcm_t_inference; 0 matches the PROG_NOISE modifier aihwkit's CPU tiles run)
    hwa_noise: float = 3.0
    hwa_t_inference: float = 0.0
    clip_sigma: float = 2.5
    methods: tuple = METHODS
    times: tuple = TIMES
    # drift draws per (programmed model, t), the metric averaged over them: each draw is a fresh
    # sample of the drift exponents' effect and the read noise accumulated up to t
    drift_draws: int = 1
    n_train_seq: int = 500  # LSTM task size
    n_test_seq: int = 300
    seq_length: int = 16
    aihwkit: bool = True


def quick_plan() -> Plan:
    """A smoke run of every code path (under a minute once the kernels are compiled): the CNN
    and the LSTM (the MLP takes the CNN's path with bigger layers), one seed, few epochs, short
    programming runs."""
    return Plan(models=("cnn", "lstm"), seeds=1, epochs={"cnn": 4, "mlp": 2, "lstm": 3},
                fine_epochs={"cnn": 1, "mlp": 1, "lstm": 1}, n_train_seq=100, n_test_seq=100, seq_length=10)


QUICK_PROGRAM_OPTIONS = {
    "gdp": dict(inputs="onehot", batch_size=8, max_iter=40, record_every=100_000),
    "svd": dict(max_iter=30, record_every=100_000),
    "write-verify": dict(max_iter=4, record_every=100_000),
}


# ---------------------------------------------------------------------------------- tasks

@dataclass
class Task:
    """One model's data, digital network factory, training loop and test metric."""

    name: str
    metric: str  # "accuracy" (higher is better) or "perplexity" (lower is better)
    data: tuple
    make: object
    train: object
    evaluate: object
    floor: float | None = None


def make_task(name: str, plan: Plan) -> Task:
    if name in ("cnn", "mlp"):
        data = _digits.digits(split_seed=0)

        def train(model, opt, epochs, seed):
            _digits.train(model, opt, data, epochs=epochs, batch_size=16, seed=seed)

        return Task(name, "accuracy", data, _digits.MODELS[name], train,
                    lambda model: _digits.accuracy(model, data[2], data[3]))
    if name == "lstm":
        chain = _sequence.MarkovChain.random(n_symbols=6, concentration=0.3, chain_seed=0)
        data = _sequence.sequences(chain, plan.n_train_seq, plan.n_test_seq, plan.seq_length, data_seed=0)

        def train(model, opt, epochs, seed):
            _sequence.train(model, opt, data, epochs=epochs, batch_size=32, seed=seed)

        return Task(name, "perplexity", data, lambda: _sequence.NextSymbolLSTM(chain.n_symbols, 16), train,
                    lambda model: _sequence.perplexity(model, data[2], data[3]),
                    floor=float(np.exp(chain.entropy_rate())))
    raise ValueError(f"The 'models' parameter of drift_inference must hold 'cnn', 'mlp' or 'lstm'. Got {name!r} instead.")


def _optimizer(params, lr: float, metric: str):
    # SGD with momentum for the digits models, Adam for the LSTM (plain SGD trains it slowly)
    if metric == "perplexity":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def hwa_config(plan: Plan) -> InferenceConfig:
    """The HWA training config: PCM-noise modifier, clip at ``clip_sigma``, global compensation."""
    return InferenceConfig(modifier=WeightModifier("pcm_noise", std=plan.hwa_noise, t_inference=plan.hwa_t_inference),
                           clip=WeightClip("sigma", sigma=plan.clip_sigma), drift_compensation=True)


def eval_config() -> InferenceConfig:
    """The config a digitally trained model is evaluated with: the same devices and periphery,
    no modifier, no clip (the weights map as trained, max|W| to g_max)."""
    return InferenceConfig(drift_compensation=True)


def train_models(task: Task, plan: Plan, seed: int):
    """``(pretrained digital, fine-tuned digital, HWA analog)`` for one seed."""
    torch.manual_seed(seed)
    net = task.make()
    task.train(net, _optimizer(net.parameters(), plan.lr[task.name], task.metric), plan.epochs[task.name], seed)
    pretrained = copy.deepcopy(net)
    fine = plan.fine_epochs[task.name]
    task.train(net, _optimizer(net.parameters(), plan.fine_lr[task.name], task.metric), fine, seed + 1)
    hwa = convert_to_analog(pretrained, hwa_config(plan), seed=seed)
    task.train(hwa, _optimizer(hwa.parameters(), plan.fine_lr[task.name], task.metric), fine, seed + 1)
    return pretrained, net, hwa


# ---------------------------------------------------------------------------------- drift

def drift_rows(model, task: Task, plan: Plan, training: str, programming: str, seed: int) -> list[dict]:
    """The metric at every t, compensated and not, of a programmed model: the mean over
    ``plan.drift_draws`` drift draws, the same draws for both compensation arms (shared rng seeds)."""
    base = {"model": task.name, "training": training, "programming": programming, "seed": seed,
            "metric": task.metric}
    rows = []
    for k, t in enumerate(plan.times):
        for comp in (False, True):
            values = []
            for j in range(plan.drift_draws):
                drift_analog_weights(model, t, rng=(seed * 1000 + k) * 1000 + j, drift_compensation=comp)
                values.append(task.evaluate(model))
            rows.append({**base, "t": t, "compensation": comp, "value": float(np.mean(values))})
    return rows


def program_and_drift(analog, task: Task, plan: Plan, training: str, seed: int, program_options: dict):
    """Rows of every programming method for one trained analog model, and the layer reports."""
    # the reference: the trained weights read through the periphery, averaged over as many
    # evaluations as the drifted rows (the periphery's output noise is redrawn in each)
    reference = float(np.mean([task.evaluate(analog) for _ in range(plan.drift_draws)]))
    rows = [{"model": task.name, "training": training, "programming": "unprogrammed", "t": 0.0,
             "compensation": False, "seed": seed, "metric": task.metric, "value": reference}]
    reports = []
    for method in plan.methods:
        model = copy.deepcopy(analog)
        t0 = time.perf_counter()
        if method == "statistical":
            report = program_analog_weights(model, None, rng=seed)
        else:
            report = program_analog_weights(model, method, rng=seed, **program_options[method])
        wall = time.perf_counter() - t0
        for layer, r in report.items():
            reports.append({"model": task.name, "training": training, "programming": method, "seed": seed,
                            "layer": layer, "program_wall_s": wall, **{k: v for k, v in r.items() if k != "algorithm"}})
        rows += drift_rows(model, task, plan, training, method, seed)
    return rows, reports


# ---------------------------------------------------------------------------------- aihwkit

def aihwkit_available() -> bool:
    try:
        import aihwkit.simulator.configs  # noqa: F401
    except Exception:  # ImportError, or a broken binary extension
        return False
    return True


def _aihwkit_config(plan: Plan, hwa: bool):
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.simulator.configs import InferenceRPUConfig
    from aihwkit.simulator.parameters import WeightClipType, WeightModifierType

    cfg = InferenceRPUConfig()
    cfg.noise_model = PCMLikeNoiseModel(g_max=25.0)
    cfg.drift_compensation = GlobalDriftCompensation()
    if hwa:
        # aihwkit 1.2's CPU tiles do not implement PCM_NOISE; PROG_NOISE is its programming-noise
        # part (the same polynomial, sign kept), without the drift spread and read noise
        cfg.modifier.type = WeightModifierType.PROG_NOISE
        cfg.modifier.std_dev = plan.hwa_noise
        cfg.clip.type = WeightClipType.LAYER_GAUSSIAN
        cfg.clip.sigma = plan.clip_sigma
    return cfg


def aihwkit_rows(pretrained, task: Task, plan: Plan, seed: int) -> list[dict]:
    """aihwkit's pipeline on the same pre-trained network: digital fine-tuning (the same
    ``fine-tuned`` schedule) or HWA fine-tuning with its AnalogSGD, statistical programming,
    drift, compensation on and off (its compensation factor set to 1)."""
    from aihwkit.nn.conversion import convert_to_analog as ai_convert
    from aihwkit.optim import AnalogSGD
    from aihwkit.simulator.tiles.inference import InferenceTileWithPeriphery

    fine, lr = plan.fine_epochs[task.name], plan.fine_lr[task.name]
    rows = []
    for training in ("digital", "hwa"):
        torch.manual_seed(seed)
        if training == "digital":
            net = copy.deepcopy(pretrained)
            task.train(net, _optimizer(net.parameters(), lr, task.metric), fine, seed + 1)
            model = ai_convert(net, _aihwkit_config(plan, hwa=False))
        else:
            model = ai_convert(pretrained, _aihwkit_config(plan, hwa=True))
            opt = AnalogSGD(model.parameters(), lr=lr, momentum=0.9)
            opt.regroup_param_groups(model)
            task.train(model, opt, fine, seed + 1)
        base = {"model": task.name, "training": training, "seed": seed, "metric": task.metric}
        model.eval()
        rows.append({**base, "programming": "aihwkit-unprogrammed", "t": 0.0, "compensation": False,
                     "value": task.evaluate(model)})
        model.eval()
        model.program_analog_weights()
        tiles = [t for t in model.analog_tiles() if isinstance(t, InferenceTileWithPeriphery)]
        for t_inf in plan.times:
            model.eval()
            model.drift_analog_weights(t_inf)  # sets each tile's compensation factor alpha
            rows.append({**base, "programming": "aihwkit-statistical", "t": t_inf, "compensation": True,
                         "value": task.evaluate(model)})
            for tile in tiles:
                tile.alpha = torch.ones_like(tile.alpha)
            rows.append({**base, "programming": "aihwkit-statistical", "t": t_inf, "compensation": False,
                         "value": task.evaluate(model)})
    return rows


# ---------------------------------------------------------------------------------- study

def run_study(plan: Plan, *, program_options: dict | None = None, log=print):
    """``(table, programming table)``: the long-form results of ``plan``.

    Runs with one torch thread (restored afterwards): the layers are small, and on a shared
    machine torch's spinning OpenMP threads fight the NumPy periphery for the cores.
    """
    program_options = PROGRAM_OPTIONS if program_options is None else program_options
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(plan, program_options, log)
    finally:
        torch.set_num_threads(threads)


def _run(plan: Plan, program_options: dict, log):
    use_aihwkit = plan.aihwkit and aihwkit_available()
    rows, reports = [], []
    for name in plan.models:
        task = make_task(name, plan)
        for seed in range(plan.seeds):
            t0 = time.perf_counter()
            pretrained, digital, hwa = train_models(task, plan, seed)
            t1 = time.perf_counter()
            for training, analog in (("digital", convert_to_analog(digital, eval_config(), seed=seed)),
                                     ("hwa", hwa)):
                r, rep = program_and_drift(analog, task, plan, training, seed, program_options)
                rows += r
                reports += rep
            t2 = time.perf_counter()
            if use_aihwkit and name in ("cnn", "mlp"):
                rows += aihwkit_rows(pretrained, task, plan, seed)
            log(f"{name} seed {seed}: training {t1 - t0:.1f} s, programming and drift {t2 - t1:.1f} s, "
                f"aihwkit {time.perf_counter() - t2:.1f} s")
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(reports)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean +- std over seeds: one row per (model, training, programming, compensation), one
    column per t."""
    g = table.groupby(["model", "metric", "training", "programming", "compensation", "t"])["value"]
    stats = g.agg(["mean", "std", "count"]).reset_index()
    stats["cell"] = [f"{m:.3f} ± {s:.3f}" if c > 1 else f"{m:.3f}"
                     for m, s, c in zip(stats["mean"], stats["std"].fillna(0.0), stats["count"])]
    out = stats.pivot(index=["model", "metric", "training", "programming", "compensation"], columns="t",
                      values="cell")
    out.columns = [_t_label(t) for t in out.columns]
    return out.fillna("")


def _t_label(t: float) -> str:
    for value, label in ((0.0, "t=0"), (1.0, "1 s"), (3600.0, "1 h"), (86400.0, "1 d"), (365.0 * 86400.0, "1 y")):
        if t == value:
            return label
    return f"{t:g} s"


def drops(table: pd.DataFrame, t: float, programming: str = "statistical", compensation: bool = True,
          baseline: str = "unprogrammed") -> pd.DataFrame:
    """Per (model, training, seed): the loss at ``t`` from the unprogrammed reference (accuracy
    lost, or perplexity gained: positive is worse)."""
    keys = ["model", "training", "seed", "metric"]
    ref = table[table.programming == baseline].set_index(keys)["value"]
    at = table[(table.programming == programming) & (table.t == t) & (table.compensation == compensation)]
    at = at.set_index(keys)["value"]
    d = (ref - at).rename("drop").reset_index()
    d.loc[d.metric == "perplexity", "drop"] *= -1.0
    return d


def plot(table: pd.DataFrame, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    data = table[(table.t > 0) & table.compensation].copy()
    grid = sns.relplot(data=data, x="t", y="value", hue="programming", style="training", col="model", kind="line",
                       errorbar="sd", markers=True, facet_kws={"sharey": False}, height=3.2, aspect=1.1)
    grid.set(xscale="log")
    ref = table[table.programming == "unprogrammed"].groupby(["model", "training"])["value"].mean()
    for model, ax in zip(grid.col_names, grid.axes.flat):
        ax.set_ylabel(data.loc[data.model == model, "metric"].iloc[0])
        ax.set_xticks(list(TIMES), ["1 s", "1 h", "1 d", "1 y"])
        for training, dashes in (("digital", "-"), ("hwa", "--")):
            if (model, training) in ref.index:
                ax.axhline(ref[(model, training)], color="grey", lw=0.8, ls=dashes)
    grid.figure.suptitle("programmed at t = 0, global drift compensation; bands: sd over seeds; "
                         "grey: unprogrammed", y=1.03)
    grid.savefig(path, dpi=120, bbox_inches="tight")


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="results/drift_inference", help="output folder")
    ap.add_argument("--seeds", type=int, default=None, help="seeds (bands); default 3, --quick 1")
    ap.add_argument("--models", nargs="+", default=None, choices=["cnn", "mlp", "lstm"])
    ap.add_argument("--quick", action="store_true", help="a smoke run: few epochs, short programming")
    ap.add_argument("--no-aihwkit", action="store_true", help="skip aihwkit's pipeline even where it imports")
    args = ap.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        ap.error(f"The 'seeds' parameter of drift_inference must be >= 1. Got {args.seeds} instead.")
    plan = quick_plan() if args.quick else Plan()
    changes = {"aihwkit": not args.no_aihwkit}
    if args.seeds is not None:
        changes["seeds"] = args.seeds
    if args.models:
        changes["models"] = tuple(args.models)
    plan = replace(plan, **changes)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    table, reports = run_study(plan, program_options=QUICK_PROGRAM_OPTIONS if args.quick else PROGRAM_OPTIONS)
    table.to_parquet(out / "drift_inference.parquet")
    table.to_csv(out / "drift_inference.csv", index=False)
    reports.to_parquet(out / "programming.parquet")
    plot(table, out / "drift_inference.png")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", 200):
        print(summary(table).to_string())
        layer_err = reports.groupby(["model", "training", "programming"])["err_fro"].mean().unstack()
        print("\nmean relative programming error per layer (err_fro):\n" + layer_err.round(3).to_string())
    if "lstm" in plan.models:
        print(f"\nLSTM perplexity floor (entropy rate of the chain): {make_task('lstm', plan).floor:.3f}")
    print(f"\n{len(table)} rows in {time.perf_counter() - t0:.0f} s -> {out}")
    return table


if __name__ == "__main__":
    main()
