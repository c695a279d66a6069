"""aihwkit's training examples on progsim tiles, on the scikit-learn digits.

Each subcommand trains a digital model (torch SGD) and the same model on analog tiles
(``convert_to_analog`` + ``AnalogSGD``) from the same initial weights, data order and lr,
and prints both test accuracies:

* ``ex1``: one layer (a linear classifier 64-10) with pulsed SGD (aihwkit example 1);
* ``ex2``: two layers, 64-32-10 (example 2);
* ``ex3``: the MLP 64-256-128-10, tanh (example 3);
* ``ex4``: the LeNet-like CNN on the ReRAM soft-bounds preset, weights scaled to omega 0.6
  (example 4 and the intro notebook);
* ``ex7``: the MLP on a vector unit cell of two ConstantStep devices, update policy
  ``single_random`` (example 7);
* ``ex8``: the MLP with Tiki-Taka on SoftBounds devices (example 8);
* ``all``: every one in turn.

    python studies/nn_examples.py ex3 --epochs 5
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny matrices: BLAS threads only contend

import copy  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent), str(_HERE)]  # this checkout's progsim, then the study helpers
import _digits  # noqa: E402

from progsim import devices  # noqa: E402
from progsim.nn import AnalogSGD, TikiTaka, TileConfig, VectorUnitCell, convert_to_analog, preset  # noqa: E402


def _two_layers():
    return nn.Sequential(nn.Linear(64, 32), nn.Sigmoid(), nn.Linear(32, 10))


EXAMPLES = {
    "ex1": ("one layer, pulsed SGD", lambda: nn.Linear(64, 10), TileConfig()),
    "ex2": ("two layers", _two_layers, TileConfig()),
    "ex3": ("MLP 64-256-128-10", _digits.mlp, TileConfig()),
    "ex4": ("LeNet-like CNN, ReRAM soft bounds", _digits.cnn, preset("reram-sb", weight_scaling_omega=0.6)),
    "ex7": ("MLP, vector unit cell (2 x ConstantStep, single_random)", _digits.mlp,
            TileConfig(device=VectorUnitCell(unit_cell_devices=(devices.ConstantStep(), devices.ConstantStep()),
                                             update_policy="single_random"))),
    "ex8": ("MLP, Tiki-Taka (SoftBounds)", _digits.mlp,
            TileConfig(device=TikiTaka(fast=devices.SoftBounds(), slow=devices.SoftBounds(), gamma=0.1,
                                       transfer_every=2, transfer_lr=1.0))),
}


def run(name: str, epochs: int, lr: float, seed: int, data) -> dict:
    title, build, config = EXAMPLES[name]
    torch.manual_seed(seed)
    digital = build()
    analog = convert_to_analog(copy.deepcopy(digital), config, seed=seed)
    _digits.train(digital, torch.optim.SGD(digital.parameters(), lr=lr), data, epochs=epochs, seed=seed)
    seconds, _ = _digits.train(analog, AnalogSGD(analog.parameters(), lr=lr), data, epochs=epochs, seed=seed)
    out = {"example": name, "title": title, "digital_accuracy": _digits.accuracy(digital, data[2], data[3]),
           "analog_accuracy": _digits.accuracy(analog, data[2], data[3]), "analog_s_per_epoch": sum(seconds) / epochs}
    print(f"{name} {title}: digital {out['digital_accuracy']:.3f}, analog {out['analog_accuracy']:.3f} "
          f"({epochs} epochs, lr {lr:g})", flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("example", choices=[*EXAMPLES, "all"])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = _digits.digits()
    names = list(EXAMPLES) if args.example == "all" else [args.example]
    return [run(n, args.epochs, args.lr, args.seed, data) for n in names]


if __name__ == "__main__":
    main()
