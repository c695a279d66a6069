"""Inference layers: HWA training, programming (statistical and by algorithm), drift, in-situ drift.

The noise models' own statistics are tested in tests/test_inference.py; here the layers,
the programming and drift functions and their plumbing are compared with torch's digital
layers, with ``progsim.program`` run directly, and with the analytic statistics of the models.
"""

from __future__ import annotations

import io
import math

import numpy as np
import progsim_algorithms  # noqa: F401  (registers the built-ins in a source tree)
import pytest
from _checks import assert_field_error
import torch
from torch import nn

from progsim import IO, Crossbar, devices, program
from progsim.inference import (GaussianNoise, InferenceConfig, InferenceTile, PCMLikeNoise, ReRAMLikeNoise,
                               WeightClip, WeightModifier, drift_analog_weights, program_analog_weights,
                               reset_analog_weights)
from progsim.nn import (AnalogConv1d, AnalogConv2d, AnalogLinear, AnalogLSTM, AnalogModule, AnalogSGD,
                        TileConfig, convert_to_analog, preset)

Z = 4.0  # statistical tolerances: Z standard errors
DAY = 86400.0
PERFECT = InferenceConfig(io=IO(is_perfect=True))


def _linear(n_in, n_out, config=PERFECT, bias=True, seed=0):
    return AnalogLinear(n_in, n_out, bias, config, seed=seed, dtype=torch.float64)


def _signs(shape, c, seed):
    """A matrix of +-c with random signs: every device of the carrying side at g_max."""
    return c * np.where(np.random.default_rng(seed).random(shape) < 0.5, -1.0, 1.0)


# --------------------------------------------------------------------------- HWA forward and backward


def test_perfect_io_without_modifier_is_the_digital_layer():
    torch.manual_seed(0)
    x = torch.randn(9, 7, dtype=torch.float64)
    for digital_bias in (True, False):
        layer = _linear(7, 5, PERFECT.replace(digital_bias=digital_bias))
        ref = nn.Linear(7, 5, dtype=torch.float64)
        with torch.no_grad():
            ref.weight.copy_(layer.weight)
            ref.bias.copy_(layer.bias)
        for mode in (True, False):
            layer.train(mode)
            torch.testing.assert_close(layer(x), ref(x), rtol=0, atol=1e-12)
    conv = AnalogConv2d(2, 3, 3, padding=1, config=PERFECT, seed=1, dtype=torch.float64)
    ref2 = nn.Conv2d(2, 3, 3, padding=1, dtype=torch.float64)
    with torch.no_grad():
        ref2.weight.copy_(conv.weight)
        ref2.bias.copy_(conv.bias)
    img = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(conv(img), ref2(img), rtol=0, atol=1e-12)


def test_gradients_are_straight_through_and_digital():
    """Noisy periphery: the gradients are the digital ones of the weights, dW = dy^T x, dx = dy W."""
    torch.manual_seed(1)
    layer = _linear(6, 4, InferenceConfig(), bias=False)
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    c = torch.randn(5, 4, dtype=torch.float64)
    (layer(x) * c).sum().backward()
    torch.testing.assert_close(layer.weight.grad, c.T @ x.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(x.grad, c @ layer.weight.detach(), rtol=0, atol=1e-12)


def test_backward_uses_the_weights_of_the_forward():
    """Drop-connect: with one-hot inputs the forward returns the used matrix column by column
    (y[k] = W~[:, k]); the input gradient of sum(y) is then the column sums of that same W~."""
    n = 32
    layer = _linear(n, n, PERFECT.replace(modifier=WeightModifier("drop_connect", pdrop=0.5)), bias=False)
    x = torch.eye(n, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    used = y.detach().T  # W~
    torch.testing.assert_close(x.grad, used.sum(dim=0).expand(n, n), rtol=0, atol=1e-12)
    kept = (used != 0).double().mean().item()
    # a binomial fraction of n^2 draws: Z standard errors around 1 - pdrop
    assert abs(kept - 0.5) <= Z * math.sqrt(0.25 / n**2)
    w = layer.weight.detach()
    assert torch.all((used == 0) | (used == w))


def test_modifiers_act_only_in_training():
    torch.manual_seed(2)
    layer = _linear(8, 6, PERFECT.replace(modifier=WeightModifier("add_gaussian", std=0.1)))
    x = torch.randn(4, 8, dtype=torch.float64)
    clean = nn.functional.linear(x, layer.weight, layer.bias).detach()
    y1, y2 = layer(x).detach(), layer(x).detach()
    assert not torch.allclose(y1, clean) and not torch.allclose(y1, y2)
    layer.eval()
    torch.testing.assert_close(layer(x), clean, rtol=0, atol=1e-12)


def test_any_torch_optimizer_trains_the_digital_trajectory():
    """Perfect periphery, no modifier: SGD with momentum (and AnalogSGD, plain SGD on an
    inference layer's parameters) follow nn.Linear's trajectory exactly."""
    torch.manual_seed(3)
    x, t = torch.randn(20, 5, dtype=torch.float64), torch.randn(20, 3, dtype=torch.float64)
    for make in (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), lambda p: AnalogSGD(p, lr=0.05)):
        layer = _linear(5, 3)
        ref = nn.Linear(5, 3, dtype=torch.float64)
        with torch.no_grad():
            ref.weight.copy_(layer.weight)
            ref.bias.copy_(layer.bias)
        for model in (layer, ref):
            opt = make(model.parameters())
            for k in range(5):
                opt.zero_grad()
                ((model(x[4 * k:4 * k + 4]) - t[4 * k:4 * k + 4]) ** 2).mean().backward()
                opt.step()
        torch.testing.assert_close(layer.weight, ref.weight, rtol=0, atol=1e-12)
        torch.testing.assert_close(layer.bias, ref.bias, rtol=0, atol=1e-12)


def test_clip_is_applied_after_each_step_and_once():
    torch.manual_seed(4)
    x, t = torch.randn(8, 10, dtype=torch.float64), torch.randn(8, 6, dtype=torch.float64)
    layer = _linear(10, 6, PERFECT.replace(clip=WeightClip("fixed", value=0.05)))
    assert layer.weight.abs().max().item() > 0.05  # initial weights: clipped at the first step
    opt = torch.optim.Adam(layer.parameters(), lr=0.5)
    ((layer(x) - t) ** 2).mean().backward()
    opt.step()
    assert layer.weight.abs().max().item() <= 0.05  # clipped by the step itself
    assert (layer.weight.abs() == 0.05).any()

    layer = _linear(10, 6, PERFECT.replace(clip=WeightClip("sigma", sigma=1.0)))
    opt = torch.optim.SGD(layer.parameters(), lr=2.0)
    for _ in range(2):
        opt.zero_grad()
        ((layer(x) - t) ** 2).mean().backward()
        stepped = layer.weight.detach() - 2.0 * layer.weight.grad
        opt.step()
        a = stepped.std()  # clip by sigma of the stepped weights, as aihwkit
        torch.testing.assert_close(layer.weight.detach(), stepped.clamp(-a, a), rtol=0, atol=1e-12)
    after = layer.weight.detach().clone()
    layer(x)
    layer.eval()(x)
    torch.testing.assert_close(layer.weight.detach(), after, rtol=0, atol=0)  # forwards never clip
    other = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=1.0)
    other.step()  # an optimizer that does not hold the layer leaves it alone
    torch.testing.assert_close(layer.weight.detach(), after, rtol=0, atol=0)


# --------------------------------------------------------------------------- programming


def test_statistical_programming_noise_maps_back_to_the_weights():
    """Weights +-c: the carrying device at g_max = 25 uS gets sigma_prog(25) = 1.055 uS, the idle
    one at 0 is max(N(0, 0.2635^2), 0); mapped back (scale 25/c uS per unit) the error of each
    weight, sign-aligned, has mean -0.2635/sqrt(2 pi) uS and variance 1.055^2 + 0.2635^2 (1/2 - 1/(2 pi))."""
    n, c = 64, 0.3
    layer = _linear(n, n, PERFECT, bias=False)
    w = _signs((n, n), c, 5)
    layer.set_weights(torch.from_numpy(w))
    report = program_analog_weights(layer, rng=6)
    err = (layer.tile.state.weights - w) * np.sign(w) * (25.0 / c)  # uS
    s1 = 0.26348 + 1.9650 - 1.1731
    s0 = 0.26348
    mean = -s0 / math.sqrt(2 * math.pi)
    std = math.sqrt(s1**2 + s0**2 * (0.5 - 0.5 / math.pi))
    m = err.size
    assert abs(err.mean() - mean) <= Z * std / math.sqrt(m)
    assert abs(err.std(ddof=1) - std) <= Z * std / math.sqrt(2 * (m - 1))
    assert report[""]["err_fro"] == pytest.approx(np.linalg.norm(layer.tile.state.weights - w) / np.linalg.norm(w))


def test_svd_programming_equals_program_on_the_same_crossbar():
    layer = _linear(8, 6, InferenceConfig(), seed=7)
    opts = {"max_iter": 25}
    report = program_analog_weights(layer, "svd", rng=8, **opts)[""]
    m = torch.cat([layer.weight, layer.bias[:, None]], 1).detach().numpy() if layer.analog_bias \
        else layer.weight.detach().numpy()
    cfg = layer.config
    xb = Crossbar(*m.shape, device=cfg.device, pulses=cfg.pulses, half_select=cfg.half_select, io=cfg.program_io,
                  seed=report["seed"])
    result = program(xb, m / report["scale"], algorithm="svd", **opts)
    assert report["err_fro_crossbar"] == result.final["err_fro"]
    assert report["pulses_full"] == result.final["pulses_full"]
    peak = np.abs(m).max()
    state = np.clip(xb.weights * report["scale"], -peak, peak)  # the converter clips beyond max|M|
    np.testing.assert_allclose(layer.tile.state.weights, state, rtol=0, atol=1e-12)
    assert report["err_fro"] <= report["err_fro_crossbar"] + 1e-12  # clipping toward the range never hurts
    assert report["err_fro_crossbar"] < 0.5


# --------------------------------------------------------------------------- drift and compensation


def _drift_factor_moments(t):
    """E[f], Var[f] of f = ((t + t0)/t0)^-nu at x = 1: nu ~ N(0.049, 0.008^2) (the abs of the
    model changes nothing: a negative draw needs xi < -6.1)."""
    lt = math.log((t + 20.0) / 20.0)
    mu, s = 0.049, 0.008
    e1 = math.exp(-mu * lt + 0.5 * (s * lt) ** 2)
    e2 = math.exp(-2 * mu * lt + 2 * (s * lt) ** 2)
    return e1, e2 - e1**2


def test_drift_scales_the_mean_output_and_compensation_restores_it():
    n, c = 64, 0.4
    quiet = PCMLikeNoise(prog_noise_scale=0.0, read_noise_scale=0.0)
    w = torch.from_numpy(_signs((n, n), c, 9))
    ef, vf = _drift_factor_moments(DAY)
    eye = torch.eye(n, dtype=torch.float64)

    layer = _linear(n, n, PERFECT.replace(noise_model=quiet, drift_compensation=False), bias=False)
    layer.set_weights(w)
    program_analog_weights(layer, rng=10)
    layer.eval()
    assert layer(eye).abs().mean().item() == pytest.approx(c, rel=1e-12)
    drift_analog_weights(layer, DAY, rng=11)
    ratio = layer(eye).abs().mean().item() / c  # one-hot reads: the mean factor over n^2 devices
    assert abs(ratio - ef) <= Z * math.sqrt(vf / n**2)

    layer = _linear(n, n, PERFECT.replace(noise_model=quiet), bias=False)
    layer.set_weights(w)
    program_analog_weights(layer, rng=10)
    layer.eval()
    x = torch.randn(256, n, dtype=torch.float64, generator=torch.Generator().manual_seed(12))
    y0 = layer(x).abs().mean().item()
    report = drift_analog_weights(layer, DAY, rng=11)
    yt = layer(x).abs().mean().item()
    # compensated outputs differ from y0 only by the spread of f about its mean, relative r =
    # sd(f)/E[f]: a bias of about r^2/2 of mean|y| and a sampling error of about r/sqrt(N)
    r = math.sqrt(vf) / ef
    assert abs(yt / y0 - 1.0) <= r**2 + Z * r / math.sqrt(x.numel())
    assert abs(yt / report[""]["factor"] / y0 - ef) <= Z * math.sqrt(vf / n**2) + r**2
    drift_analog_weights(layer, DAY, rng=11, drift_compensation=False)
    assert layer(x).abs().mean().item() / y0 < 1.0 - 0.5 * (1.0 - ef)


def test_drift_of_an_unprogrammed_model_programs_it_statistically_first():
    layer = _linear(5, 4, PERFECT)
    twin = _linear(5, 4, PERFECT)
    twin.set_weights(*layer.get_weights())
    drift_analog_weights(layer, 3600.0, rng=13)
    program_analog_weights(twin, rng=13)
    np.testing.assert_array_equal(layer.tile.state.g_plus, twin.tile.state.g_plus)
    x = torch.randn(3, 5, dtype=torch.float64)
    clean = nn.functional.linear(x, layer.weight, layer.bias)
    reset_analog_weights(layer)
    layer.eval()
    assert layer.tile.state is None
    torch.testing.assert_close(layer.eval()(x), clean, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- in-situ drift


N_SITU = 32


def _train_in_situ(config, seed=14, steps=3):
    torch.manual_seed(seed)
    layer = AnalogLinear(N_SITU, N_SITU, False, config, seed=seed, dtype=torch.float64)
    opt = AnalogSGD(layer.parameters(), lr=0.1)
    x, t = (torch.randn(4 * steps, N_SITU, dtype=torch.float64) for _ in range(2))
    for k in range(steps):
        opt.zero_grad()
        ((layer(x[4 * k:4 * k + 4]) - t[4 * k:4 * k + 4]) ** 2).mean().backward()
        opt.step()
    return layer, opt, x, t


def test_in_situ_reram_layer_drifts_with_wan2022_statistics_and_keeps_its_state():
    layer, opt, x, t = _train_in_situ(preset("reram-sb", io=IO(is_perfect=True)))
    layer.eval()
    before = layer(x).detach()
    tile_w = layer.tile.weights
    drift_analog_weights(layer, DAY, rng=15, drift_compensation=False)
    w = layer.alpha * tile_w
    w_t = layer(torch.eye(N_SITU, dtype=torch.float64)).detach().numpy().T
    # both devices of each pair relax: the carrying one at x = |w| scale / g_max by
    # v1 = s_day(x)^2 - s_1s(x)^2, the idle one at 0 by v0, clipped at 0 (a rectified normal)
    nm = ReRAMLikeNoise()
    scale = nm.g_max / np.abs(w).max()
    g = np.abs(w) * scale
    v1 = nm.spread(g, DAY) ** 2 - nm.spread(g, 0.0) ** 2
    v0 = float(nm.spread(0.0, DAY) ** 2 - nm.spread(0.0, 0.0) ** 2)
    keep = g > 5 * np.sqrt(v1)  # the carrying device far from the clip at 0 (P < 3e-7)
    d = (w_t - w)[keep] * np.sign(w[keep]) * scale
    z = (d + math.sqrt(v0 / (2 * math.pi))) / np.sqrt(v1[keep] + v0 * (0.5 - 0.5 / math.pi))
    assert keep.sum() > 100
    assert abs(z.mean()) <= Z / math.sqrt(z.size)
    assert abs(z.std(ddof=1) - 1.0) <= Z / math.sqrt(2 * (z.size - 1))
    np.testing.assert_array_equal(layer.tile.weights, tile_w)  # the crossbar is never written
    layer.train()
    torch.testing.assert_close(layer(x).detach(), before, rtol=0, atol=0)
    layer.eval()
    assert not torch.equal(layer(x).detach(), before)
    reset_analog_weights(layer)
    torch.testing.assert_close(layer(x).detach(), before, rtol=0, atol=0)
    drift_analog_weights(layer, DAY, rng=15)
    layer.train()
    opt.zero_grad()
    ((layer(x[:4]) - t[:4]) ** 2).mean().backward()
    opt.step()
    assert layer.drift_tile is None  # an update drops the drifted copy of the old weights


def test_in_situ_pcm_layer_drifts_with_pcm_statistics():
    """Weights +-c on the 'pcm' preset, taken as programmed (no programming noise): each weight
    reads w f (1 + q xi) at t, f the drift factor at x = 1 and q the read noise at g_max."""
    n, c = 48, 0.5
    layer = AnalogLinear(n, n, False, preset("pcm", io=IO(is_perfect=True)), seed=16, dtype=torch.float64)
    w = _signs((n, n), c, 17)
    layer.set_weights(torch.from_numpy(w))
    assert isinstance(layer.tile, Crossbar)
    drift_analog_weights(layer, DAY, rng=18, drift_compensation=False)
    layer.eval()
    ratio = layer(torch.eye(n, dtype=torch.float64)).detach().numpy().T / w
    ef, vf = _drift_factor_moments(DAY)
    q = 0.0088 * math.sqrt(math.log((DAY + 20.0 + 250e-9) / (2 * 250e-9)))
    var = (vf + ef**2) * (1 + q**2) - ef**2
    assert abs(ratio.mean() - ef) <= Z * math.sqrt(var / ratio.size)
    assert abs(ratio.std(ddof=1) - math.sqrt(var)) <= Z * math.sqrt(var) / math.sqrt(2 * (ratio.size - 1)) * 1.5


def test_in_situ_drift_needs_statistics_for_other_devices():
    layer = AnalogLinear(4, 3, config=TileConfig(io=IO(is_perfect=True)), seed=0, dtype=torch.float64)
    with pytest.raises(ValueError, match="The 'noise_model' parameter of drift_analog_weights"):
        drift_analog_weights(layer, DAY)
    drift_analog_weights(layer, DAY, noise_model=GaussianNoise(), drift_compensation=False)
    layer.eval()
    x = torch.randn(2, 4, dtype=torch.float64)
    # GaussianNoise() is the identity: the drifted copy reads the crossbar's weights
    torch.testing.assert_close(layer(x), nn.functional.linear(x, layer.weight, layer.bias), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- state, errors, conversion


def test_state_dict_round_trip_continues_bit_for_bit():
    cfg = InferenceConfig(modifier=WeightModifier("mult_gaussian", std=0.05))
    layer = _linear(6, 5, cfg, seed=19)
    x = torch.randn(4, 6, dtype=torch.float64)
    layer(x)  # draws from the modifier's and the periphery's streams
    program_analog_weights(layer, rng=20)
    drift_analog_weights(layer, 3600.0, rng=21)
    buf = io.BytesIO()
    torch.save(layer.state_dict(), buf)
    buf.seek(0)
    other = _linear(6, 5, cfg, seed=99)
    other.load_state_dict(torch.load(buf, weights_only=True))
    for mode in (False, True):
        layer.train(mode)
        other.train(mode)
        torch.testing.assert_close(other(x), layer(x), rtol=0, atol=0)
    assert other.tile.t == 3600.0 and other.tile.factor == layer.tile.factor


def test_bad_inputs_raise_named_errors():
    with pytest.raises(ValueError, match="The 'io' parameter of InferenceConfig must be an IO"):
        InferenceConfig(io="perfect")
    with pytest.raises(ValueError, match="The 'kind' parameter of WeightModifier must be one of"):
        WeightModifier("gaussian")
    with pytest.raises(ValueError, match="The 'value' parameter of WeightClip must be a float > 0"):
        WeightClip("fixed")
    with pytest.raises(ValueError, match="The 'program_fill' parameter of InferenceConfig"):
        InferenceConfig(program_fill=0.0)
    with pytest.raises(ValueError, match="The 'times' parameter of ReRAMLikeNoise"):
        ReRAMLikeNoise(times=(2.0, 1.0), coeff=((1.0,), (1.0,)))
    with pytest.raises(TypeError, match="The 'config' parameter of AnalogLinear"):
        AnalogLinear(3, 2, config="inference")
    layer = _linear(3, 2)
    with pytest.raises(ValueError, match="The 't' parameter of drift_analog_weights must be a finite float >= 0"):
        drift_analog_weights(layer, -1.0)
    with pytest.raises(TypeError, match="The 'rng' parameter of program_analog_weights"):
        program_analog_weights(layer, rng=-3)
    with pytest.raises(TypeError, match="only with an algorithm"):
        program_analog_weights(layer, max_iter=3)
    with pytest.raises(ValueError, match="built with an InferenceConfig"):
        program_analog_weights(nn.Sequential(nn.Linear(2, 2)))


class _MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x):
        return self.body(x)


class _CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv1d(2, 3, 3), nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(3 * 4 + 2 * 9, 2)

    def forward(self, x1, x2):
        return self.fc(torch.cat([self.c1(x1).flatten(1), self.c2(x2).flatten(1)], 1))


class _Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.head = nn.LSTM(3, 5, num_layers=2), nn.Linear(5, 2)

    def forward(self, x):
        return self.head(self.lstm(x)[0])


def test_convert_to_analog_swaps_mlp_cnn_and_lstm_layers():
    torch.manual_seed(22)
    cases = [(_MLP(), (torch.randn(4, 6),)), (_CNN(), (torch.randn(2, 2, 6), torch.randn(2, 1, 5, 5))),
             (_Seq(), (torch.randn(4, 2, 3),))]
    kinds = {_MLP: (AnalogLinear,), _CNN: (AnalogConv1d, AnalogConv2d, AnalogLinear), _Seq: (AnalogLSTM, AnalogLinear)}
    for model, inputs in cases:
        model = model.double()
        inputs = tuple(v.double() for v in inputs)
        analog = convert_to_analog(model, PERFECT, seed=0)
        assert not any(type(m) in (nn.Linear, nn.Conv1d, nn.Conv2d, nn.LSTM) for m in analog.modules())
        assert {type(m) for m in analog.children()} <= set(kinds[type(model)]) | {nn.Sequential}
        layers = [m for m in analog.modules() if isinstance(m, AnalogModule)]
        assert layers and all(isinstance(m.tile, InferenceTile) for m in layers)
        torch.testing.assert_close(analog(*inputs), model(*inputs), rtol=0, atol=1e-10)
        report = program_analog_weights(analog, rng=23)
        assert set(report) == {n for n, m in analog.named_modules() if isinstance(m, AnalogModule)}


BAD_FIELDS = {
    InferenceConfig: {"noise_model": "pcm", "io": None, "modifier": "add_gaussian", "clip": 2.5,
                      "drift_compensation": 1, "weight_scaling_omega": -1.0, "digital_bias": "yes",
                      "device": "pcm", "pulses": None, "half_select": "v2", "program_io": 0, "program_fill": 1.5},
    WeightModifier: {"kind": "gauss", "std": -0.1, "pdrop": 1.0, "rel_to_actual_wmax": 0, "assumed_wmax": 0.0,
                     "t_inference": -1.0},
    WeightClip: {"kind": "layer", "value": 0.0, "sigma": -2.0},
    ReRAMLikeNoise: {"g_max": 0.0, "g_min": -1.0, "w_max": 0.0, "times": (), "coeff": ((1.0,),), "g_ref": -40.0,
                     "noise_scale": -1.0},
}


@pytest.mark.parametrize("cls, field", [(c, f) for c, fs in BAD_FIELDS.items() for f in fs])
def test_bad_config_fields_give_one_error_shape(cls, field):
    assert_field_error(cls, BAD_FIELDS[cls], field)


# --------------------------------------------------------------------------- against aihwkit


def test_defaults_are_aihwkits_inference_rpu_config():
    pytest.importorskip("aihwkit")
    from aihwkit.simulator.configs import InferenceRPUConfig

    theirs, ours = InferenceRPUConfig(), InferenceConfig()
    fwd = theirs.forward
    for name in ("is_perfect", "inp_bound", "inp_res", "out_bound", "out_res", "out_noise", "w_noise",
                 "max_bm_factor", "max_bm_res"):
        assert getattr(ours.io, name) == pytest.approx(getattr(fwd, name)), name
    assert fwd.noise_management.value == "AbsMax" and ours.io.noise_management == "abs_max"
    assert fwd.bound_management.value == "Iterative" and ours.io.bound_management == "iterative"
    assert theirs.mapping.weight_scaling_omega == ours.weight_scaling_omega
    assert theirs.mapping.digital_bias == ours.digital_bias
    assert theirs.modifier.type.value == "None" and ours.modifier.kind == "none"
    assert theirs.clip.type.value == "None" and ours.clip.kind == "none"
    assert type(theirs.noise_model).__name__ == "PCMLikeNoiseModel" and isinstance(ours.noise_model, PCMLikeNoise)


@pytest.mark.parametrize("g_target", [40.0, 20.0, 4.0])
def test_reram_statistics_match_aihwkits_wan2022_model(g_target):
    """At g_max 40 uS (where aihwkit's fit applies unscaled) the programmed conductance and the
    one a day later have the same means and stds in both (within Z standard errors of the
    difference of two independent estimates, from each sample's fourth moment)."""
    pytest.importorskip("aihwkit")
    from aihwkit.inference.noise.reram import ReRamWan2022NoiseModel

    n = 100_000
    theirs, ours = ReRamWan2022NoiseModel(g_max=40.0), ReRAMLikeNoise()
    rng = np.random.default_rng()
    g = np.full(n, g_target)
    gt = torch.full((n,), g_target, dtype=torch.float64)
    g_prog = ours.apply_programming_noise(g, rng)
    day = ours.apply_drift_noise(g_prog, ours.generate_drift_coefficients(g, rng), DAY, rng)
    tg_prog = theirs.apply_programming_noise_to_conductance(gt)
    tday = theirs.apply_drift_noise_to_conductance(tg_prog, theirs.generate_drift_coefficients(gt), DAY)
    for a, b in ((g_prog, tg_prog.numpy()), (day, tday.numpy())):
        assert abs(a.mean() - b.mean()) <= Z * math.sqrt(a.var() / n + b.var() / n)
        se_std = math.sqrt(sum((((x - x.mean()) ** 4).mean() - x.var() ** 2) / (4 * n * x.var()) for x in (a, b)))
        assert abs(a.std() - b.std()) <= Z * se_std
