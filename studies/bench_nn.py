"""Benchmark of analog training: seconds per epoch and test accuracy on the digits MLP and CNN.

Models (``studies/_digits.py``): MLP 64-256-128-10 tanh; CNN conv 8@3x3, tanh, pool 2,
conv 16@3x3, tanh, linear 16-10. Batch 16, lr 0.1, cross-entropy, the same split and data
order for every framework, in one run:

* ``torch``: the digital model, ``torch.optim.SGD`` (the floor);
* ``progsim``: ``progsim.nn.convert_to_analog`` with the default TileConfig (ConstantStep,
  stochastic pulses, aihwkit's default periphery), ``progsim.nn.AnalogSGD``;
* ``aihwkit``: aihwkit's ``convert_to_analog`` with ``SingleRPUConfig(device=ConstantStepDevice())``
  and its ``AnalogSGD``, when aihwkit imports (skipped otherwise);
* ``torch-floor`` (only when asked for, ``--frameworks torch-floor``): the digital model with its
  linear and convolution layers swapped for autograd functions that return a precomputed output
  at almost no cost; its seconds per epoch are torch's own work around the layers, to which any
  implementation of the layers adds its time (its accuracy is meaningless).

Seeds: each framework trains ``--seeds`` times (seeds ``--seed``, ``--seed + 1``, ...: torch's
initial weights, the data order and progsim's tile streams; aihwkit seeds its own device noise
from the clock). Seconds per epoch: the median over every epoch of every seed of the wall-clock
time (training only; the test pass is outside the timing), and beside it the process CPU
seconds (the steadier figure on a shared machine; with several threads it sums them). Test
accuracy: the mean over the seeds, with its standard deviation across them and the standard
error of the mean (``std / sqrt(seeds)``); two frameworks' accuracies differ beyond chance when
their difference exceeds about twice the root sum of squares of their standard errors. Since
every framework starts a seed from the same initial weights and sees the same data order, the
sharper comparison is paired: ``progsim_minus`` is the mean over the seeds of progsim's accuracy
minus this framework's on the same seed, ``progsim_minus_sem`` its standard error (the spread
of the per-seed differences over sqrt(seeds)); the per-seed accuracies go to
``OUT/bench_nn_seeds.csv``. Threads: ``--threads`` sets torch's, numba's and BLAS's thread counts (set before
numpy loads). ``--omp-wait-policy passive`` sets ``OMP_WAIT_POLICY`` before torch loads its
OpenMP runtime (``default`` leaves the environment as it is): idle OpenMP workers then sleep
instead of spinning, which matters on a machine shared with other processes. Prints one table
and writes it to ``OUT/bench_nn.csv``.

    python studies/bench_nn.py results/bench_nn --epochs 10 --threads 2
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _option_from_argv(argv, name: str, default: str) -> str:
    """The value of ``--name`` in ``argv``, read before the libraries that need it load."""
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


_N = _option_from_argv(sys.argv, "--threads", "2")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = _N
_WAIT = _option_from_argv(sys.argv, "--omp-wait-policy", "default")
if _WAIT in ("passive", "active"):
    os.environ["OMP_WAIT_POLICY"] = _WAIT.upper()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent), str(_HERE)]  # this checkout's progsim, then the study helpers
import _digits  # noqa: E402

from progsim.nn import AnalogSGD, TileConfig, convert_to_analog  # noqa: E402


def build_torch(model, seed):
    return model, torch.optim.SGD(model.parameters(), lr=LR)


def build_progsim(model, seed):
    analog = convert_to_analog(model, TileConfig(), seed=seed)
    return analog, AnalogSGD(analog.parameters(), lr=LR)


def build_aihwkit(model, seed):
    from aihwkit.nn.conversion import convert_to_analog as aihwkit_convert
    from aihwkit.optim import AnalogSGD as AihwkitSGD
    from aihwkit.simulator.configs import ConstantStepDevice, SingleRPUConfig

    analog = aihwkit_convert(model, SingleRPUConfig(device=ConstantStepDevice()))
    opt = AihwkitSGD(analog.parameters(), lr=LR)
    opt.regroup_param_groups(analog)
    return analog, opt


class _Free(torch.autograd.Function):
    """A layer's precomputed output for one sample, repeated over ``x``'s batch; backward: zeros
    for ``x``."""

    @staticmethod
    def forward(ctx, x, out):
        ctx.shape = x.shape
        return out.expand(x.shape[0], *out.shape[1:]).clone()

    @staticmethod
    def backward(ctx, g):
        return g.new_zeros(ctx.shape), None


class _FreeLayer(torch.nn.Module):
    """Stands in for a torch layer at almost no cost: the output of the real layer on one sample
    of zeros, computed once, plus a trainable scalar so that the optimizer has a parameter."""

    def __init__(self, real, in_shape):
        super().__init__()
        self.shift = torch.nn.Parameter(torch.zeros(()))
        with torch.no_grad():
            self.register_buffer("out", real(torch.zeros(in_shape)))

    def forward(self, x):
        return _Free.apply(x, self.out) + self.shift


def build_torch_floor(model, seed):
    """The digital model with its linear and convolution layers swapped for :class:`_FreeLayer`:
    its epoch is torch's own work around the layers (activations, pooling, loss, autograd and
    optimizer machinery), what any implementation of the layers adds its own time to."""
    shapes = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out: shapes.__setitem__(mod, tuple(inp[0].shape)))
             for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d))]
    with torch.no_grad():
        model(_digits.digits()[0][:1])
    for h in hooks:
        h.remove()

    def swap(parent):
        for name, child in parent.named_children():
            if child in shapes:
                setattr(parent, name, _FreeLayer(child, shapes[child]))
            else:
                swap(child)

    swap(model)
    return model, torch.optim.SGD(model.parameters(), lr=LR)


LR = 0.1
FRAMEWORKS = {"torch": build_torch, "progsim": build_progsim, "aihwkit": build_aihwkit,
              "torch-floor": build_torch_floor}
DEFAULT_FRAMEWORKS = ["torch", "progsim", "aihwkit"]


def aihwkit_available() -> str | None:
    try:
        import aihwkit
        from aihwkit.nn.conversion import convert_to_analog as _  # noqa: F401
    except Exception:  # ImportError, or a broken binary extension
        return None
    return str(aihwkit.__version__)


def _paired(table: pd.DataFrame, per_seed: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``progsim_minus`` and ``progsim_minus_sem``: per model and framework, the mean
    and standard error of progsim's per-seed accuracy minus the framework's (NaN for progsim
    itself, or without progsim rows)."""
    acc = per_seed.pivot_table(index=["model", "seed"], columns="framework", values="test_accuracy")
    minus, sem = [], []
    for model, fw in zip(table.model, table.framework):
        if fw == "progsim" or "progsim" not in acc.columns:
            minus.append(np.nan)
            sem.append(np.nan)
            continue
        d = (acc.loc[model, "progsim"] - acc.loc[model, fw]).to_numpy()
        minus.append(float(d.mean()))
        sem.append(float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else np.nan)
    return table.assign(progsim_minus=minus, progsim_minus_sem=sem)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="the first seed")
    ap.add_argument("--seeds", type=int, default=5, help="training runs per framework and model")
    ap.add_argument("--omp-wait-policy", choices=["default", "passive", "active"], default="default",
                    help="OMP_WAIT_POLICY for torch's and numba's OpenMP workers (default: the environment's)")
    ap.add_argument("--models", nargs="+", default=list(_digits.MODELS), choices=list(_digits.MODELS))
    ap.add_argument("--frameworks", nargs="+", default=DEFAULT_FRAMEWORKS, choices=list(FRAMEWORKS),
                    help="which to run (aihwkit only where it imports; torch-floor: the digital model with "
                         "near-free layers, its accuracy meaningless)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    data = _digits.digits()
    version = aihwkit_available()
    frameworks = [f for f in args.frameworks if f != "aihwkit" or version is not None]
    if version is None and "aihwkit" in args.frameworks:
        print("aihwkit is not importable: its rows are skipped")
    rows, per_seed = [], []
    if args.seeds < 1:
        ap.error(f"--seeds must be >= 1. Got {args.seeds} instead.")
    for model_name in args.models:
        for fw in frameworks:
            seconds, cpu, acc = [], [], []
            for seed in range(args.seed, args.seed + args.seeds):
                torch.manual_seed(seed)
                model, opt = FRAMEWORKS[fw](_digits.MODELS[model_name](), seed)
                wall_s, cpu_s = _digits.train(model, opt, data, epochs=args.epochs, seed=seed)
                seconds += wall_s
                cpu += cpu_s
                acc.append(_digits.accuracy(model, data[2], data[3]))
                per_seed.append({"model": model_name, "framework": fw, "seed": seed, "test_accuracy": acc[-1]})
            rows.append({"model": model_name, "framework": fw, "version": version if fw == "aihwkit" else "",
                         "threads": args.threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
                         "epochs": args.epochs, "seeds": args.seeds,
                         "s_per_epoch": float(np.median(seconds)), "first_epoch_s": seconds[0],
                         "cpu_s_per_epoch": float(np.median(cpu)),
                         "test_accuracy": float(np.mean(acc)),
                         "accuracy_std": float(np.std(acc, ddof=1)) if len(acc) > 1 else float("nan"),
                         "accuracy_sem": float(np.std(acc, ddof=1) / np.sqrt(len(acc))) if len(acc) > 1 else float("nan")})
            r = rows[-1]
            print(f"{model_name:4s} {fw:8s} {r['s_per_epoch']:.3f} s/epoch (cpu {r['cpu_s_per_epoch']:.3f})  "
                  f"accuracy {r['test_accuracy']:.4f} +- {r['accuracy_sem']:.4f} (sem, {args.seeds} seeds)", flush=True)
    seeds = pd.DataFrame(per_seed)
    table = _paired(pd.DataFrame(rows), seeds)
    seeds.to_csv(args.out / "bench_nn_seeds.csv", index=False)
    table.to_csv(args.out / "bench_nn.csv", index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return table


if __name__ == "__main__":
    main()
