"""The aihwkit adapter (progsim.inference.aihwkit_adapter).

The first tests drive the adapter over a stand-in for aihwkit's C++ tile that applies the
exact floating-point update ``W -= lr d^T x`` (aihwkit's convention, see
``TileWithPeriphery.program_weights``), so the adapter's own logic (signs, batches, reads,
counters) is checked wherever the suite runs. The rest needs aihwkit 1.2 and skips cleanly
without it.
"""

import numpy as np
import pytest
import torch

import progsim
from progsim.inference.aihwkit_adapter import AihwkitTile

import progsim_algorithms  # noqa: F401  (registers the built-in algorithms)


class ExactSimTile:
    """aihwkit's C++ tile interface with an exact update and exact forward (a naive reference)."""

    def __init__(self, out_size, in_size, rng):
        self.w = torch.from_numpy(rng.uniform(-0.1, 0.1, (out_size, in_size)).astype(np.float32))
        self.lr = None

    def get_d_size(self):
        return self.w.shape[0]

    def get_x_size(self):
        return self.w.shape[1]

    def forward(self, x, bias, x_trans, d_trans, is_test):
        return x @ self.w.T

    def set_learning_rate(self, lr):
        assert lr > 0  # aihwkit supports positive learning rates only
        self.lr = lr

    def update(self, x, d, bias):
        for xb, db in zip(x, d):  # one cycle per batch row, in order
            self.w -= self.lr * torch.outer(db, xb)

    def get_weights(self):
        return self.w.clone()

    def set_weights(self, w):
        self.w = w.clone()


class ExactTile:
    analog_bias = False

    def __init__(self, out_size, in_size, seed=0):
        self.tile = ExactSimTile(out_size, in_size, np.random.default_rng(seed))


def test_update_sign_batches_and_negative_learning_rate():
    rng = np.random.default_rng(0)
    tile = AihwkitTile(ExactTile(5, 4))
    w0 = tile.weights
    x, d = rng.standard_normal((3, 4)), rng.standard_normal((3, 5))
    tile.update(x, d, 0.01)
    np.testing.assert_allclose(tile.weights, w0 - 0.01 * d.T @ x, atol=1e-6)
    tile.update(x[0], d[0], -0.02)  # applied as update(x, -d, 0.02)
    np.testing.assert_allclose(tile.weights, w0 - 0.01 * d.T @ x + 0.02 * np.outer(d[0], x[0]), atol=1e-6)
    tile.update(x, d, 0.0)
    assert tile.counters == dict(reads=0, update_cycles=7)


def test_reads_estimate_weights_and_are_counted():
    tile = AihwkitTile(ExactTile(6, 5), seed=1)
    np.testing.assert_allclose(tile.read_weights(), tile.weights, atol=1e-6)
    np.testing.assert_allclose(tile.read_weights(method="lstsq", over_sampling=2), tile.weights, atol=1e-5)
    assert tile.counters["reads"] == 5 + 10
    assert tile.forward(np.ones(5)).shape == (6,)


def test_program_drives_an_exact_tile_to_the_target():
    rng = np.random.default_rng(2)
    target = rng.uniform(-0.3, 0.3, (8, 6))
    tile = AihwkitTile(ExactTile(8, 6))
    res = progsim.program(tile, target, algorithm="svd", max_iter=20)
    assert res.final.err_fro < 1e-4 * res.table.err_fro.iloc[0]
    # the adapter's counters feed the table: whole read designs (Hadamard, order 8 for 6
    # inputs, svd's default on a tile with a noisy nominal periphery), up to the last step
    assert 0 < res.final.reads <= tile.counters["reads"] and res.final.reads % 8 == 0


def test_bad_tiles_and_arguments_are_rejected():
    with pytest.raises(TypeError, match="must be an aihwkit analog tile"):
        AihwkitTile(object())
    biased = ExactTile(2, 2)
    biased.analog_bias = True
    with pytest.raises(ValueError, match="no analog bias"):
        AihwkitTile(biased)
    tile = AihwkitTile(ExactTile(3, 2))
    with pytest.raises(ValueError, match="The 'method' parameter of AihwkitTile.read_weights"):
        tile.read_weights(method="svd")
    with pytest.raises(ValueError, match="The 'x' parameter of AihwkitTile.update must have size 2"):
        tile.update(np.ones(3), np.ones(3), 0.1)


# --------------------------------------------------------------------------- with aihwkit


@pytest.fixture(scope="module")
def aihwkit():
    return pytest.importorskip("aihwkit")


def test_nominal_configs_follow_the_rpu_config(aihwkit):
    from aihwkit.simulator.configs import ConstantStepDevice, SingleRPUConfig

    cfg = SingleRPUConfig(device=ConstantStepDevice(dw_min=0.002, w_max=0.8, w_min=-0.8))
    cfg.update.desired_bl = 15
    cfg.forward.out_noise = 0.02
    tile = AihwkitTile.create(4, 3, cfg, seed=0)
    assert isinstance(tile.device, progsim.devices.ConstantStep)
    assert (tile.device.dw_min, tile.device.w_max, tile.device.w_min) == (0.002, 0.8, -0.8)
    assert isinstance(tile.pulses, progsim.pulses.Stochastic) and tile.pulses.bl == 15
    assert tile.io.out_noise == 0.02 and tile.half_select.mode == "none"
    assert cfg.device.construction_seed == 0  # the tile got a copy; the caller's config is untouched


def test_nominal_linear_step_carries_the_slope_spread(aihwkit):
    from aihwkit.simulator.configs import LinearStepDevice

    from progsim.inference.aihwkit_adapter import nominal_device

    dev = nominal_device(LinearStepDevice(gamma_up=0.2, gamma_down=0.3, gamma_up_dtod=0.07, gamma_down_dtod=0.02,
                                          mean_bound_reference=False))
    assert isinstance(dev, progsim.devices.LinearStep)
    assert (dev.gamma_up, dev.gamma_down, dev.gamma_up_dtod, dev.gamma_down_dtod) == (0.2, 0.3, 0.07, 0.02)
    assert dev.mean_bound_reference is False


def test_aihwkit_update_moves_weights_along_minus_lr_d_x(aihwkit):
    # many one-sample cycles of the same (x, d): the pulsed change averages to -n lr d x^T
    rng = np.random.default_rng(3)
    tile = AihwkitTile.create(12, 10, seed=3)
    tile.set_weights(np.zeros((12, 10)))
    x, d = rng.uniform(-1, 1, 10), rng.uniform(-1, 1, 12)
    n, lr = 50, 0.002
    w0 = tile.weights
    tile.update(np.tile(x, (n, 1)), np.tile(d, (n, 1)), lr)
    change, expected = tile.weights - w0, -n * lr * np.outer(d, x)
    # a 30 % per-cell spread of dw_min and stochastic trains leave a scatter, not a sign error
    assert np.corrcoef(change.ravel(), expected.ravel())[0, 1] > 0.9
    tile.update(np.tile(x, (n, 1)), np.tile(d, (n, 1)), -lr)  # the negative rate undoes it on average
    assert np.linalg.norm(tile.weights - w0) < 0.5 * np.linalg.norm(expected)


@pytest.mark.parametrize("key, options", [("svd", {}), ("gdp", {})])
def test_progsim_algorithms_program_an_aihwkit_tile(aihwkit, key, options):
    rng = np.random.default_rng(4)
    target = rng.uniform(-0.3, 0.3, (16, 12))
    tile = AihwkitTile.create(16, 12, seed=4)
    res = progsim.program(tile, target, algorithm=key, max_iter=60, **options)
    first, last = res.table.err_fro.iloc[0], res.final.err_fro
    assert last < 0.5 * first, (key, first, last)
    assert res.final.update_cycles > 0 and res.final.reads > 0


def test_study_script_runs(aihwkit, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies"))
    import aihwkit_adapter as study

    table = study.main([str(tmp_path), "--size", "8", "--quick", "--only", "one-shot"])  # the cheapest run
    assert set(table.algorithm) == {"one-shot"} and set(table.tile) == {"aihwkit (adapter)", "progsim"}
    assert (table.err_fro < table.err_first).all()  # every run lowers the error from the zero state
    assert (tmp_path / "aihwkit_adapter.parquet").exists()
