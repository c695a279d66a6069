"""progsim.nn: analog layers against torch, the periphery, the pulse statistics and themselves."""

from __future__ import annotations

import io
import math
import warnings

import naive
import numpy as np
import pytest
from hypothesis import given, strategies as st
from _checks import assert_field_error
import torch
from torch import nn

from progsim import HalfSelect, IO, devices, pulses
from progsim.nn import (AnalogConv1d, AnalogConv2d, AnalogGroupedConv1d, AnalogGroupedConv2d, AnalogLinear, AnalogLSTM, AnalogSGD,
                        AnalogSequential, TikiTaka, TileConfig, VectorUnitCell, convert_to_analog, convert_to_digital,
                        preset)

IDEAL = TileConfig(device=devices.Ideal(), pulses=pulses.Ideal(), io=IO(is_perfect=True))
# ConstantStep without any variation, noise or reachable bound: E[dW] = -lr d x^T exactly (DESIGN)
CLEAN = devices.ConstantStep(dw_min=0.01, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max=1000.0,
                             w_min=-1000.0, w_max_dtod=0.0, w_min_dtod=0.0)


def _train_pair(digital, analog, opt_d, opt_a, steps=15, batch=4, seed=0):
    """Same data through both models; per-step losses of each."""
    g = torch.Generator().manual_seed(seed)
    n_in = digital.in_features
    x = torch.randn(steps * batch, n_in, generator=g, dtype=torch.float64)
    t = torch.randn(steps * batch, digital.out_features, generator=g, dtype=torch.float64)
    losses = []
    for k in range(steps):
        xb, tb = x[k * batch:(k + 1) * batch], t[k * batch:(k + 1) * batch]
        pair = []
        for model, opt in ((digital, opt_d), (analog, opt_a)):
            opt.zero_grad()
            loss = ((model(xb) - tb) ** 2).mean()
            loss.backward()
            opt.step()
            pair.append(loss.item())
        losses.append(pair)
    return np.array(losses)


@pytest.mark.parametrize("digital_bias", [True, False])
@pytest.mark.parametrize("omega", [0.0, 0.4])
def test_ideal_layer_trains_like_torch_sgd(digital_bias, omega):
    # The tile gets update(x, dy / alpha, lr), so the user's weight alpha W moves by -lr dy x^T:
    # torch SGD with the same lr whatever omega (alpha = 1 for omega = 0), for a digital bias
    # and for an analog one (a tile column driven by 1) alike.
    # Tolerance: both sides are float64 and compute the same sums in different orders; each step
    # adds a rounding of ~ 1e-16 relative to |W| ~ 0.5, a 15-step quadratic-loss run amplifies it
    # by at most (1 + lr ||H||)^15 < 10, so the losses (~1) agree to 1e-12 with margin.
    torch.manual_seed(0)
    lin = nn.Linear(6, 3).double()
    cfg = IDEAL.replace(weight_scaling_omega=omega, digital_bias=digital_bias)
    layer = AnalogLinear.from_digital(lin, cfg, seed=1).double()
    alpha = layer.alpha
    assert alpha == (1.0 if omega == 0 else pytest.approx(lin.weight.abs().max().item() / omega
                                                          if digital_bias else
                                                          max(lin.weight.abs().max(), lin.bias.abs().max()).item() / omega))
    lr = 0.1
    opt_d = torch.optim.SGD(lin.parameters(), lr=lr)
    opt_a = AnalogSGD(layer.parameters(), lr=lr)
    losses = _train_pair(lin, layer, opt_d, opt_a)
    assert losses[-1, 0] < 0.8 * losses[0, 0]  # it does train
    np.testing.assert_allclose(losses[:, 1], losses[:, 0], rtol=0, atol=1e-12)
    w, b = layer.get_weights()
    np.testing.assert_allclose(w.numpy(), lin.weight.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(b.numpy(), lin.bias.detach().numpy(), atol=1e-12)
    np.testing.assert_array_equal(layer.weight.detach().numpy(), w.numpy())


def _periphery_reference(w, x, io_):
    """Noise-free periphery by hand (DESIGN): abs-max scaling, DAC, exact sums, ADC, scale back."""
    out = []
    for xb in x:
        s = np.abs(xb).max()
        q_in = io_.inp_res * 2 * io_.inp_bound
        xin = np.round(np.clip(xb / s, -io_.inp_bound, io_.inp_bound) / q_in) * q_in
        y = naive.mvm_perfect(w, xin[None, :])[0]
        q_out = io_.out_res * 2 * io_.out_bound
        out.append(np.round(np.clip(y, -io_.out_bound, io_.out_bound) / q_out) * q_out * s)
    return np.array(out)


def test_input_gradient_is_the_transposed_periphery():
    # Forward perfect, backward through a quantising, noise-free periphery: dx must be that
    # periphery applied to W^T (times alpha), not the exact product.
    io_b = IO(out_noise=0.0, inp_res=1 / 30, out_res=1 / 100, out_bound=4.0)
    cfg = IDEAL.replace(io_backward=io_b, weight_scaling_omega=0.5)
    torch.manual_seed(3)
    layer = AnalogLinear(5, 4, config=cfg, seed=2, dtype=torch.float64)
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    dy = torch.randn(3, 4, dtype=torch.float64)
    layer(x).backward(dy)
    w_tile = layer.tile.weights
    expected = layer.alpha * _periphery_reference(w_tile.T, dy.numpy(), io_b)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12, atol=1e-12)
    exact = dy.numpy() @ (layer.alpha * w_tile)
    assert np.abs(x.grad.numpy() - exact).max() > 1e-4  # the periphery did act


def test_stochastic_expected_update_is_minus_lr_d_xT():
    # One optimizer step = n identical update cycles (the same x in every batch row, dy = c
    # from the loss sum(c * y)). Per cycle a cell gets n_ij ~ Binomial(BL, p_x p_d) pulses of
    # exactly dw_min (CLEAN device), E = |lr c_i x_j| / dw_min. Over n cycles the change has
    # mean -n lr c_i x_j and standard deviation dw_min sqrt(n BL q (1 - q)), q = p_x p_d;
    # 5 standard deviations per cell (12 cells: false-alarm probability ~ 1e-5).
    cfg = TileConfig(device=CLEAN, pulses=pulses.Stochastic(bl=31), io=IO(is_perfect=True))
    layer = AnalogLinear(4, 3, bias=False, config=cfg, seed=7, dtype=torch.float64)
    x1 = np.array([0.9, -0.4, 0.15, -0.7])
    c = np.array([0.5, -0.25, 0.8])
    lr, n = 0.05, 4000
    w0 = layer.get_weights()[0].numpy()
    x = torch.tensor(np.tile(x1, (n, 1)))
    opt = AnalogSGD(layer.parameters(), lr=lr)
    (layer(x) * torch.tensor(c)).sum().backward()
    opt.step()
    dw = layer.get_weights()[0].numpy() - w0
    px, pd, bl = naive.probabilities(x1, c, lr, CLEAN.dw_min, 31)
    q = np.outer(pd, px)
    sd = CLEAN.dw_min * np.sqrt(n * bl * q * (1 - q))
    expected = -n * lr * np.outer(c, x1)
    assert np.all(np.abs(dw - expected) <= 5 * sd), (dw, expected, sd)
    assert layer.counters["update_cycles"] == n


def _model(cfg, seed):
    torch.manual_seed(seed)
    return AnalogSequential(AnalogConv2d(1, 3, 3, config=cfg, seed=seed), nn.Tanh(), nn.Flatten(),
                            AnalogLinear(12, 4, config=cfg, seed=seed + 1))


def _steps(model, n, seed):
    g = torch.Generator().manual_seed(seed)
    opt = AnalogSGD(model.parameters(), lr=0.2)
    for _ in range(n):
        x = torch.randn(5, 1, 4, 4, generator=g)
        t = torch.randint(0, 4, (5,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), t).backward()
        opt.step()


@pytest.mark.parametrize("device", [devices.ConstantStep(write_noise_std=2.0),
                                    TikiTaka(transfer_every=3),
                                    VectorUnitCell(update_policy="single_random")],
                         ids=["constant-step", "tiki-taka", "vector"])
def test_state_dict_resume_is_bit_identical(device):
    cfg = TileConfig(device=device, half_select=HalfSelect("v2", strength=0.1), io=IO(w_noise=0.01),
                     weight_scaling_omega=0.6)
    a = _model(cfg, seed=1)
    _steps(a, 3, seed=10)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    _steps(a, 3, seed=11)
    b = _model(cfg, seed=99)
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=True))
    _steps(b, 3, seed=11)
    for la, lb in zip(a.analog_modules(), b.analog_modules()):
        np.testing.assert_array_equal(la.tile.weights, lb.tile.weights)
        assert la.counters == lb.counters
        assert la.alpha == lb.alpha
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        if isinstance(va, torch.Tensor):
            assert torch.equal(va, vb), ka


def test_train_eval_no_grad_batched_unbatched_dtypes():
    layer = AnalogLinear(3, 2, config=IDEAL, seed=0)
    x = torch.randn(4, 3, dtype=torch.float64)
    y = layer(x)
    assert y.dtype == torch.float64 and y.shape == (4, 2)
    assert layer(x.float()).dtype == torch.float32
    np.testing.assert_allclose(layer(x[1]).detach().numpy(), y[1].detach().numpy(), rtol=1e-12)
    assert layer(x.reshape(2, 2, 3)).shape == (2, 2, 2)
    with torch.no_grad():
        assert not layer(x).requires_grad
    layer.eval()
    layer(x).sum().backward()
    assert not layer.has_pending_update  # eval mode records nothing
    layer.train()
    layer(x).sum().backward()
    assert layer.has_pending_update
    conv = AnalogConv1d(2, 3, 2, padding=1, config=IDEAL, seed=0)
    ref = nn.Conv1d(2, 3, 2, padding=1)
    with torch.no_grad():
        ref.weight.copy_(conv.weight)
        ref.bias.copy_(conv.bias)
    xc = torch.randn(2, 2, 5)
    np.testing.assert_allclose(conv(xc).detach().numpy(), ref(xc).detach().numpy(), atol=1e-6)
    assert conv(xc[0]).shape == (3, 6)


def test_convolution_gradients_match_torch():
    # Perfect periphery: the unfolded layer's input gradient and its recorded update (one cycle
    # per output position) must equal torch's conv2d gradients.
    torch.manual_seed(0)
    ref = nn.Conv2d(2, 3, 3, stride=2, padding=1, dilation=1).double()
    layer = AnalogConv2d.from_digital(ref, IDEAL.replace(digital_bias=False), seed=0).double()
    x = torch.randn(2, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    dy = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    ref(x).backward(dy)
    layer(x2).backward(dy)
    np.testing.assert_allclose(x2.grad.numpy(), x.grad.numpy(), atol=1e-12)
    w_before = layer.get_weights()
    AnalogSGD(layer.parameters(), lr=0.5).step()
    w_after = layer.get_weights()
    np.testing.assert_allclose((w_before[0] - w_after[0]).numpy(), 0.5 * ref.weight.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose((w_before[1] - w_after[1]).numpy(), 0.5 * ref.bias.grad.numpy(), atol=1e-12)
    assert layer.counters["update_cycles"] == 2 * 9  # samples x output positions


def _check_converted(digital, analog, x, n_analog, atol=1e-10):
    kinds = [type(m) for m in analog.modules()]
    assert sum(issubclass(k, (AnalogLinear, AnalogConv1d, AnalogConv2d, AnalogLSTM)) for k in kinds) == n_analog
    with torch.no_grad():
        yd, ya = digital(x), analog(x)
    yd, ya = (yd[0], ya[0]) if isinstance(yd, tuple) else (yd, ya)
    np.testing.assert_allclose(ya.numpy(), yd.numpy(), atol=atol)


GEOMETRIES = [(AnalogConv2d, nn.Conv2d, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2)), (7, 6)),
              (AnalogConv2d, nn.Conv2d, dict(kernel_size=1), (3, 4)),
              (AnalogConv2d, nn.Conv2d, dict(kernel_size=2, stride=(2, 3), padding=1), (5, 7)),
              (AnalogConv1d, nn.Conv1d, dict(kernel_size=3, stride=2, padding=2, dilation=2), (9,)),
              (AnalogConv2d, nn.Conv2d, dict(kernel_size=(3, 5), padding="same", dilation=(2, 1)), (5, 6)),
              (AnalogConv1d, nn.Conv1d, dict(kernel_size=4, padding="same", dilation=2), (7,)),
              (AnalogConv2d, nn.Conv2d, dict(kernel_size=3, padding=(1, 2), padding_mode="reflect"), (5, 6)),
              (AnalogConv1d, nn.Conv1d, dict(kernel_size=3, stride=2, padding=2, padding_mode="circular"), (7,)),
              (AnalogConv2d, nn.Conv2d, dict(kernel_size=3, padding="same", padding_mode="replicate"), (4, 5))]


def _forward_backward_like_torch(ref, layer, x):
    """Run ``x`` through ``ref`` and (a copy) through ``layer``, backward the same random ``dy``,
    and check the outputs and input gradients agree to rounding; returns ``(x2, y_ref, dy)``."""
    x2 = x.detach().clone().requires_grad_()
    y_ref, y = ref(x), layer(x2)
    np.testing.assert_allclose(y.detach().numpy(), y_ref.detach().numpy(), atol=1e-12)
    dy = torch.randn_like(y_ref)
    y_ref.backward(dy)
    y.backward(dy)
    np.testing.assert_allclose(x2.grad.numpy(), x.grad.numpy(), atol=1e-12)
    return x2, y_ref, dy


@pytest.mark.parametrize("cls,ref_cls,kw,spatial", GEOMETRIES,
                         ids=["conv2d", "conv2d-1x1", "conv2d-apart", "conv1d", "conv2d-same", "conv1d-same",
                              "conv2d-reflect", "conv1d-circular", "conv2d-same-replicate"])
def test_unfolded_convolution_with_digital_bias_matches_torch(cls, ref_cls, kw, spatial):
    # The layer cuts its patches and folds their gradients back in its own kernels: with a
    # perfect periphery its output, input gradient and bias gradient must be torch's own
    # convolution's (float64: to rounding), for strides, padding and dilation that make windows
    # overlap; in float32 with an analog bias (a ones column in the patches), to float32 rounding.
    torch.manual_seed(1)
    ref = ref_cls(3, 4, **kw).double()
    layer = cls.from_digital(ref, IDEAL, seed=0).double()
    x = torch.randn(2, 3, *spatial, dtype=torch.float64, requires_grad=True)
    x2, y_ref, dy = _forward_backward_like_torch(ref, layer, x)
    np.testing.assert_allclose(layer.bias.grad.numpy(), ref.bias.grad.numpy(), atol=1e-12)
    with torch.no_grad():  # the read without a graph takes the same path
        np.testing.assert_allclose(layer(x2).numpy(), y_ref.detach().numpy(), atol=1e-12)
    layer32 = cls.from_digital(ref, IDEAL.replace(digital_bias=False), seed=0).float()
    x32 = x.detach().float().requires_grad_()
    y32 = layer32(x32)
    assert y32.dtype == torch.float32
    np.testing.assert_allclose(y32.detach().numpy(), y_ref.detach().numpy(), atol=1e-5)
    y32.backward(dy.float())
    np.testing.assert_allclose(x32.grad.numpy(), x.grad.numpy(), atol=1e-5)


def test_convert_mlp_cnn_lstm():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    am = convert_to_analog(mlp, IDEAL, seed=0)
    assert isinstance(am[1], nn.ReLU) and isinstance(am[0], AnalogLinear)
    assert isinstance(mlp[0], nn.Linear)  # the original is untouched
    _check_converted(mlp, am, torch.randn(3, 5, dtype=torch.float64), 2)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 3)).double()
    _check_converted(cnn, convert_to_analog(cnn, IDEAL, seed=0), torch.randn(2, 1, 6, 6, dtype=torch.float64), 2)
    lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True).double()
    al = convert_to_analog(lstm, IDEAL, seed=0)
    assert isinstance(al, AnalogLSTM)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    _check_converted(lstm, al, x, 3)  # the LSTM and its two layer tiles
    with torch.no_grad():
        _, (h_d, c_d) = lstm(x)
        _, (h_a, c_a) = al(x)
    np.testing.assert_allclose(c_a.numpy(), c_d.numpy(), atol=1e-10)
    np.testing.assert_allclose(al(x[0])[0].detach().numpy(), lstm(x[0])[0].detach().numpy(), atol=1e-10)


def test_bidirectional_lstm_is_torchs_in_outputs_states_gradients_and_one_sgd_step():
    # Two bidirectional layers (the reverse direction reads the sequence from its end; the
    # second layer reads both directions' states): with ideal tiles the outputs, final states
    # and input gradient are torch's, and one AnalogSGD step moves each direction's [W_ih, W_hh]
    # by -lr times torch's gradients.
    torch.manual_seed(2)
    ref = nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    lstm = convert_to_analog(ref, IDEAL, seed=0)
    assert len(lstm.layers) == 4 and "bidirectional=True" in repr(lstm)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    h0 = torch.randn(4, 2, 4, dtype=torch.float64)
    out_r, (h_r, c_r) = ref(x, (h0, -h0))
    out_a, (h_a, c_a) = lstm(x2, (h0, -h0))
    assert out_a.shape == (5, 2, 8) and h_a.shape == (4, 2, 4)
    for got, want in ((out_a, out_r), (h_a, h_r), (c_a, c_r)):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), atol=1e-12)
    g_out, g_h = torch.randn_like(out_r), torch.randn_like(h_r)
    ((out_r * g_out).sum() + (h_r * g_h).sum()).backward()
    ((out_a * g_out).sum() + (h_a * g_h).sum()).backward()
    np.testing.assert_allclose(x2.grad.numpy(), x.grad.numpy(), atol=1e-12)
    before = [lin.get_weights()[0] for lin in lstm.layers]
    AnalogSGD(lstm.parameters(), lr=0.1).step()
    for idx, lin in enumerate(lstm.layers):
        name = f"l{idx // 2}" + ("_reverse" if idx % 2 else "")
        grad = torch.cat([getattr(ref, f"weight_ih_{name}").grad, getattr(ref, f"weight_hh_{name}").grad], dim=1)
        np.testing.assert_allclose((before[idx] - lin.get_weights()[0]).numpy(), 0.1 * grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("ref_cls, kw, spatial", [
    (nn.Conv2d, dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2, padding_mode="reflect"), (5, 4)),
    (nn.Conv1d, dict(in_channels=3, out_channels=6, kernel_size=3, stride=2, groups=3), (9,))],
    ids=["conv2d-groups2-reflect", "conv1d-depthwise"])
def test_grouped_convolution_is_torchs_and_converts_both_ways(ref_cls, kw, spatial):
    # One tile per group on its slice of the channels: with ideal tiles the outputs, input and
    # bias gradients are torch's grouped convolution's, one AnalogSGD step moves the weights by
    # -lr times torch's weight gradient (in torch's grouped layout), and convert_to_digital gives
    # back a torch convolution of the same geometry computing the same.
    torch.manual_seed(3)
    ref = ref_cls(**kw).double()
    model = convert_to_analog(nn.Sequential(ref), IDEAL, seed=0)
    layer = model[0]
    assert type(layer).__name__ == f"AnalogGrouped{ref_cls.__name__}" and len(layer.convs) == kw["groups"]
    x = torch.randn(2, kw["in_channels"], *spatial, dtype=torch.float64, requires_grad=True)
    _forward_backward_like_torch(ref, model, x)
    np.testing.assert_allclose(torch.cat([c.bias.grad for c in layer.convs]).numpy(), ref.bias.grad.numpy(), atol=1e-12)
    w0 = layer.get_weights()[0]
    AnalogSGD(model.parameters(), lr=0.5).step()
    np.testing.assert_allclose((w0 - layer.get_weights()[0]).numpy(), 0.5 * ref.weight.grad.numpy(), atol=1e-12)
    digital = convert_to_digital(model)
    assert type(digital[0]) is ref_cls and digital[0].groups == kw["groups"]
    assert digital[0].padding_mode == kw.get("padding_mode", "zeros")
    with torch.no_grad():
        np.testing.assert_allclose(digital(x).numpy(), model(x).numpy(), atol=1e-12)


def test_convert_to_digital_keeps_geometry_and_weights():
    # The digital copy of a trained analog model computes what the analog model computes with
    # ideal tiles: every layer's geometry (a circular padding included) and true weights.
    torch.manual_seed(4)
    ref = nn.Sequential(nn.Conv1d(2, 3, 3, padding=2, dilation=2, padding_mode="circular"), nn.Tanh(), nn.Flatten(),
                        nn.Linear(3 * 6, 2)).double()
    model = convert_to_analog(ref, IDEAL, seed=0)
    x = torch.randn(4, 2, 6, dtype=torch.float64)
    opt = AnalogSGD(model.parameters(), lr=0.1)
    model(x).square().sum().backward()
    opt.step()
    digital = convert_to_digital(model)
    assert [type(m) for m in digital] == [nn.Conv1d, nn.Tanh, nn.Flatten, nn.Linear]
    assert digital[0].padding_mode == "circular" and digital[0].dilation == (2,)
    with torch.no_grad():
        np.testing.assert_allclose(digital(x).numpy(), model(x).numpy(), atol=1e-12)
        assert not torch.equal(digital[3].weight, ref[3].weight)  # the trained weights, not the initial ones


def test_convert_transformer_encoder_keeps_attention_digital():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)
    enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).double()
    aenc = convert_to_analog(enc, IDEAL, seed=0)
    for blk in aenc.layers:
        assert isinstance(blk.linear1, AnalogLinear) and isinstance(blk.linear2, AnalogLinear)
        assert type(blk.self_attn.out_proj) is nn.modules.linear.NonDynamicallyQuantizableLinear
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    enc.eval()
    aenc.eval()
    reads = aenc.layers[0].linear1.counters["reads"]
    _check_converted(enc, aenc, x, 4)
    # the analog tiles served the eval-mode pass (torch's fused encoder kernel would bypass them)
    assert aenc.layers[0].linear1.counters["reads"] == reads + 6
    aenc.train()
    opt = AnalogSGD(aenc.parameters(), lr=0.1)
    aenc(x).pow(2).mean().backward()
    opt.step()
    assert aenc.layers[1].linear2.counters["update_cycles"] == 6


def test_vector_unit_cell_policies():
    cell = dict(unit_cell_devices=(devices.Ideal(), devices.Ideal(), devices.Ideal()), gammas=(1.0, 0.5, 0.25))
    x = torch.randn(2, 3, dtype=torch.float64)
    moved = {}
    for policy in ("all", "single_fixed", "single_sequential"):
        cfg = IDEAL.replace(device=VectorUnitCell(**cell, update_policy=policy, first_update_idx=1))
        layer = AnalogLinear(3, 2, bias=False, config=cfg, seed=0, dtype=torch.float64)
        tile = layer.tile
        # the summed weight is what the layer shows and what it reads
        np.testing.assert_allclose(sum(g * s.weights for g, s in zip(cell["gammas"], tile.subs)),
                                   layer.get_weights()[0].numpy(), rtol=1e-12)
        opt = AnalogSGD(layer.parameters(), lr=0.1)
        history = []
        for _ in range(3):
            before = [s.weights for s in tile.subs]
            layer(x).sum().backward()
            opt.step()
            history.append([not np.array_equal(b, s.weights) for b, s in zip(before, tile.subs)])
        moved[policy] = history
    assert moved["all"] == [[True, True, True]] * 3
    assert moved["single_fixed"] == [[False, True, False]] * 3
    assert moved["single_sequential"] == [[False, True, False], [False, False, True], [True, False, False]]


def test_tiki_taka_transfers_columns_of_A_into_C():
    # Ideal devices and pulses, perfect transfer reads: after every `transfer_every` cycles,
    # column j of A (cycling) is added into C times transfer_lr, exactly.
    tt = TikiTaka(fast=devices.Ideal(), slow=devices.Ideal(), gamma=0.5, transfer_every=2, transfer_lr=0.3,
                  transfer_io=IO(is_perfect=True))
    layer = AnalogLinear(3, 2, bias=False, config=IDEAL.replace(device=tt), seed=0, dtype=torch.float64)
    tile = layer.tile
    c0 = tile.slow.weights
    x = torch.randn(5, 3, dtype=torch.float64)
    dy = torch.randn(5, 2, dtype=torch.float64)
    layer(x).backward(dy)
    AnalogSGD(layer.parameters(), lr=0.1).step()
    # A after cycles 1-2 is -lr dy[:2]^T x[:2]; transfer col 0. After 1-4: col 1. Cycle 5 pending.
    a2 = -0.1 * dy[:2].numpy().T @ x[:2].numpy()
    a4 = -0.1 * dy[:4].numpy().T @ x[:4].numpy()
    expected_c = c0.copy()
    expected_c[:, 0] += 0.3 * a2[:, 0]
    expected_c[:, 1] += 0.3 * a4[:, 1]
    np.testing.assert_allclose(tile.slow.weights, expected_c, atol=1e-12)
    np.testing.assert_allclose(tile.fast.weights, -0.1 * dy.numpy().T @ x.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.get_weights()[0].numpy(), 0.5 * tile.fast.weights + tile.slow.weights,
                               atol=1e-12)


BAD_FIELDS = {
    TileConfig: {"device": "ConstantStep", "pulses": None, "half_select": "v2", "io": None, "io_backward": 3,
                 "weight_scaling_omega": -1.0, "digital_bias": 1, "dtype": "float16"},
    VectorUnitCell: {"unit_cell_devices": (), "gammas": (1.0,), "update_policy": "best",
                     "first_update_idx": 5},
    TikiTaka: {"fast": None, "slow": 1.0, "gamma": -0.5, "transfer_every": 0, "transfer_lr": 0.0,
               "transfer_io": "perfect"},
}


@pytest.mark.parametrize("cls, field", [(c, f) for c, fs in BAD_FIELDS.items() for f in fs])
def test_bad_config_fields_give_one_error_shape(cls, field):
    assert_field_error(cls, BAD_FIELDS[cls], field)


def test_bad_shapes_and_arguments():
    layer = AnalogLinear(4, 3, config=IDEAL, seed=0)
    with pytest.raises(ValueError, match=r"input of AnalogLinear must be a tensor of shape \(\*, 4\)\. Got \(2, 5\)"):
        layer(torch.randn(2, 5))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"'weight' parameter of AnalogLinear.set_weights must have shape \(3, 4\)"):
        layer.set_weights(torch.zeros(4, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="'bias' parameter of AnalogLinear.set_weights"):
        layer.set_weights(torch.zeros(3, 4))
    conv = AnalogConv2d(2, 3, 3, config=IDEAL, seed=0)
    with pytest.raises(ValueError, match=r"input of AnalogConv2d must be a tensor of shape \(N, 2, H, W\)"):
        conv(torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="too small for the kernel"):
        conv(torch.randn(1, 2, 2, 2))
    with pytest.raises(ValueError, match="'padding' parameter of AnalogConv2d can be 'same' only when"):
        AnalogConv2d.from_digital(nn.Conv2d(2, 2, 2, padding="same"))  # torch pads one side more
    with pytest.raises(ValueError, match="'padding' parameter of AnalogConv1d can be 'same' only with stride 1"):
        AnalogConv1d(2, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="'groups' parameter of AnalogConv2d must be 1: .*AnalogGroupedConv2d"):
        AnalogConv2d(2, 2, 3, groups=2)
    with pytest.raises(ValueError, match="'out_channels' parameter of AnalogGroupedConv1d must be divisible by groups"):
        AnalogGroupedConv1d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="'padding_mode' parameter of AnalogConv1d must be one of 'zeros', 'reflect'"):
        AnalogConv1d(2, 2, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="'lr' parameter of AnalogSGD must be a finite float > 0. Got -1"):
        AnalogSGD(layer.parameters(), lr=-1)
    with pytest.raises(TypeError, match="'config' parameter of AnalogLinear must be a progsim.nn.TileConfig"):
        AnalogLinear(2, 2, config=devices.ConstantStep())
    with pytest.raises(ValueError, match="'half_select' parameter of TileConfig"):
        TileConfig(pulses=pulses.Ideal(), half_select=HalfSelect("v2", strength=0.1))
    with pytest.raises(ValueError, match="must be an nn.LSTM without proj_size. Got proj_size=1"):
        convert_to_analog(nn.LSTM(2, 2, proj_size=1))
    with pytest.raises(ValueError, match=r"AnalogLSTM must hold at least one time step .*Got shape \(0, 2, 4\)"):
        AnalogLSTM(4, 3, seed=0)(torch.zeros(0, 2, 4))
    with pytest.raises(ValueError, match="'name' parameter of preset"):
        preset("unobtainium")


def test_presets_build_layers():
    # omega maps the largest weight onto 0.5 device units: the tile is programmed with W / alpha,
    # alpha = max|W| / 0.5, each entry clipped to its own cell's bounds (a preset's spread of
    # the bounds between devices can put a cell's bound inside 0.5: reram-sb's w_min -0.75 with
    # a relative sd of 0.4 does so for one cell in five). Weights given, not drawn, so the
    # check does not depend on torch's global generator.
    w0 = torch.tensor([[0.3, -0.8, 0.1], [-0.2, 0.6, -0.05]], dtype=torch.float64)
    b0 = torch.tensor([0.05, -0.1], dtype=torch.float64)
    for name in ("reram-sb", "ecram", "pcm"):
        layer = AnalogLinear(3, 2, config=preset(name, weight_scaling_omega=0.5), seed=0)
        layer.set_weights(w0, b0)
        m = torch.cat([w0, b0[:, None]], dim=1) if layer.analog_bias else w0
        assert layer.alpha == float(m.abs().max()) / 0.5
        scaled = m.numpy() / layer.alpha
        assert np.abs(scaled).max() == 0.5
        cells = layer.tile.cells
        np.testing.assert_array_equal(layer.tile.hidden_weights, np.clip(scaled, cells.w_min, cells.w_max))
        w, _ = layer.get_weights()
        assert torch.equal(layer.weight, w.float())


def test_serial_path_gives_the_parallel_bits_and_mirrors_follow_the_tile(monkeypatch):
    # The serial path (small tiles) must change speed only: the same model trained with every
    # call forced serial, and with the parallel kernel variants wherever numba has threads,
    # ends in the same bits; after every step the float32 mirrors hold alpha * W_tile rounded
    # to float32 (the documented contract), analog bias column included.
    from progsim import _config
    from progsim.nn import base

    cfg = TileConfig(weight_scaling_omega=0.5, digital_bias=False)
    depths = []

    def run(serial_cells, serial_below):
        monkeypatch.setattr(base, "SERIAL_CELLS", serial_cells)
        monkeypatch.setattr(_config, "SERIAL_BELOW", serial_below)
        torch.manual_seed(0)
        model = AnalogSequential(AnalogLinear(6, 5, config=cfg, seed=3, dtype=torch.float32), nn.Tanh(),
                                 AnalogLinear(5, 3, config=cfg, seed=4, dtype=torch.float32))
        for layer in model.analog_modules():
            update = layer.tile.update
            layer.tile.update = lambda x, d, lr, _u=update: (depths.append(_config._serial["depth"]), _u(x, d, lr))
        opt = AnalogSGD(model.parameters(), lr=0.5)
        g = torch.Generator().manual_seed(5)
        for _ in range(4):
            opt.zero_grad()
            x = torch.rand(8, 6, generator=g) * 2 - 1
            nn.functional.cross_entropy(model(x), torch.randint(0, 3, (8,), generator=g)).backward()
            opt.step()
            for layer in model.analog_modules():
                m = layer.alpha * layer.tile.weights
                np.testing.assert_array_equal(layer.weight.detach().numpy(), m[:, :-1].astype(np.float32))
                np.testing.assert_array_equal(layer.bias.detach().numpy(), m[:, -1].astype(np.float32))
        return [layer.tile.state_dict() for layer in model.analog_modules()]

    parallel = run(serial_cells=0, serial_below=1)
    assert depths and not any(depths)
    depths.clear()
    serial = run(serial_cells=1 << 30, serial_below=1)
    assert depths and all(d == 1 for d in depths)
    for a, b in zip(parallel, serial):
        np.testing.assert_array_equal(a["apparent_weights"], b["apparent_weights"])
        assert a["counters"] == b["counters"] and a["counter"] == b["counter"]


def test_serial_context_forces_serial_kernels_and_restores_blas_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from progsim import _config

    ctl = threadpoolctl.ThreadpoolController()
    with ctl.limit(limits=2, user_api="blas"):
        before = [lib.num_threads for lib in ctl.select(user_api="blas").lib_controllers]
        with _config.serial():
            assert not _config.use_parallel(1 << 40)
            with _config.serial():  # re-entrant: the inner exit restores nothing yet
                pass
            assert _config._serial["depth"] == 1
            assert all(lib.num_threads == 1 for lib in ctl.select(user_api="blas").lib_controllers)
        assert _config._serial["depth"] == 0
        assert [lib.num_threads for lib in ctl.select(user_api="blas").lib_controllers] == before


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_bias", [False, True])
def test_layer_outputs_are_torch_casts_and_bias_additions(dtype, with_bias):
    # The compiled output pass must give what torch gives for the same steps: the rows
    # (N * P, C) laid out as (N, C, P), cast to the dtype, plus the bias added in the dtype.
    from progsim.nn._patches import rows_to_channels

    g = torch.Generator().manual_seed(3)
    y = torch.randn(2 * 6, 5, generator=g, dtype=torch.float64) * 3
    bias = torch.randn(5, generator=g).to(dtype) if with_bias else None
    ref = y.reshape(2, 6, 5).transpose(1, 2).reshape(2, 5, 2, 3).to(dtype)
    if with_bias:
        ref = ref + bias.reshape(1, -1, 1, 1)
    got = rows_to_channels(y.numpy(), None if bias is None else bias.numpy(), (2, 5, 2, 3), ref.numpy().dtype)
    assert got.dtype == ref.numpy().dtype and got.shape == (2, 5, 2, 3)
    np.testing.assert_array_equal(got, ref.numpy())


@pytest.mark.parametrize("make, shape", [(lambda: AnalogConv2d(2, 3, 3, seed=0), (0, 2, 5, 5)),
                                         (lambda: AnalogConv1d(2, 3, 3, seed=0), (0, 2, 5)),
                                         (lambda: AnalogLinear(4, 3, seed=0), (0, 4))])
def test_an_empty_batch_goes_through_forward_backward_and_step(make, shape):
    # A batch of no samples (the tail of a split, a filtered batch) gives empty outputs and
    # gradients, and a step that applies no cycle and leaves the weights as they were.
    layer = make()
    w0 = layer.get_weights()[0].clone()
    x = torch.zeros(shape, requires_grad=True)
    opt = AnalogSGD(layer.parameters(), lr=0.1)
    y = layer(x)
    assert y.shape[0] == 0 and y.shape[1] == 3
    y.sum().backward()
    assert x.grad.shape == x.shape
    opt.step()
    assert layer.counters["update_cycles"] == 0 and torch.equal(layer.get_weights()[0], w0)


def test_serial_context_is_safe_across_threads():
    # Two threads running layers enter serial() at the same time: the BLAS limit holds while
    # either is inside and is lifted by the last one out.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import threading

    from progsim import _config

    ctl = threadpoolctl.ThreadpoolController()
    inside = []
    with ctl.limit(limits=2, user_api="blas"):
        before = [lib.num_threads for lib in ctl.select(user_api="blas").lib_controllers]
        barrier = threading.Barrier(2)

        def work():
            barrier.wait()
            for _ in range(2000):
                with _config.serial():
                    inside.append(all(lib.num_threads == 1 for lib in ctl.select(user_api="blas").lib_controllers)
                                  if len(inside) % 500 == 0 else True)
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _config._serial["depth"] == 0 and all(inside) and len(inside) == 4000
        assert [lib.num_threads for lib in ctl.select(user_api="blas").lib_controllers] == before


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_layers_read_and_mirror_in_their_dtype(dtype):
    # Dtypes NumPy lacks (bfloat16) or that the fast paths do not cast (float16) go through
    # torch's casts: the output is the exact product rounded to the dtype, up to the two roundings
    # of the digital bias added in that dtype (a few eps at |y| ~ 1), and the mirror equals the
    # tile's weights rounded to it.
    cfg = TileConfig(io=IO(is_perfect=True))
    layer = AnalogLinear(4, 3, config=cfg, seed=2, dtype=dtype)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0)).to(dtype).requires_grad_()
    y = layer(x)
    exact = x.detach().double() @ torch.from_numpy(layer.tile.weights).T + layer.bias.detach().double()
    assert y.dtype == dtype
    torch.testing.assert_close(y.double(), exact.to(dtype).double(), rtol=0, atol=float(torch.finfo(dtype).eps) * 4)
    y.sum().backward()
    assert x.grad.dtype == dtype
    AnalogSGD(layer.parameters(), lr=0.1).step()
    assert torch.equal(layer.weight, torch.from_numpy(layer.tile.weights).to(dtype))


def test_whole_module_pickles_and_resumes_bit_identically():
    # torch.save of the module itself (not its state_dict) pickles the tiles: after a copy
    # through torch.save/torch.load and through copy.deepcopy, one more training step must
    # give the original's weights exactly.
    import copy
    import io

    torch.manual_seed(0)
    model = AnalogSequential(AnalogLinear(5, 4, seed=1), nn.Tanh(), AnalogLinear(4, 3, seed=2))
    x, y = torch.randn(6, 5), torch.randint(0, 3, (6,))

    def step(m):
        opt = AnalogSGD(m.parameters(), lr=0.2)
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()

    step(model)
    step(model)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    twins = [torch.load(buf, weights_only=False), copy.deepcopy(model)]
    step(model)
    for twin in twins:
        step(twin)
        for a, b in zip(model.analog_modules(), twin.analog_modules()):
            np.testing.assert_array_equal(a.tile.weights, b.tile.weights)
            # the copy's mirrors follow its own tile, not the original's memory
            assert torch.equal(b.weight, torch.from_numpy(b.tile.weights).float())


def test_mirror_follows_a_parameter_whose_storage_was_replaced():
    # module.double() assigns new storage to the same Parameter objects; the mirror written
    # after the next step must land in that storage (a view of the old one would leave the
    # visible weight stale), in its dtype.
    torch.manual_seed(0)
    layer = AnalogLinear(4, 3, seed=1)
    x = torch.randn(5, 4)
    for dtype in (torch.float32, torch.float64):
        layer.to(dtype)
        layer(x.to(dtype)).sum().backward()
        AnalogSGD(layer.parameters(), lr=0.2).step()
        assert layer.weight.dtype == dtype
        assert torch.equal(layer.weight, torch.from_numpy(layer.tile.weights).to(dtype))


def test_a_layer_no_analog_optimizer_holds_warns_that_its_tile_does_not_learn():
    """torch's own optimizers cannot update a tile (its weight has no gradient): a training
    layer whose weight no AnalogSGD holds warns, once, when its unapplied records reach
    UNAPPLIED_WARN, and its tile is untouched. Under AnalogSGD, accumulating more forwards than
    that before one step is legitimate: no warning, and the step applies every record."""
    from progsim.nn.base import UNAPPLIED_WARN

    x = torch.randn(2, 3)
    lone = AnalogLinear(3, 2, seed=0)
    w0 = lone.tile.hidden_weights.copy()
    opt = torch.optim.SGD(lone.parameters(), lr=0.1)  # trains the digital bias only
    with pytest.warns(RuntimeWarning, match="no progsim.nn.AnalogSGD holds its weight") as record:
        for _ in range(UNAPPLIED_WARN + 5):
            opt.zero_grad()
            lone(x).sum().backward()
            opt.step()
    assert len([w for w in record if "AnalogSGD" in str(w.message)]) == 1
    assert np.array_equal(lone.tile.hidden_weights, w0) and len(lone._pending) == UNAPPLIED_WARN + 5

    held = AnalogLinear(3, 2, seed=0)
    opt = AnalogSGD(held.parameters(), lr=0.1)
    cycles = held.counters["update_cycles"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(UNAPPLIED_WARN + 5):
            held(x).sum().backward()
        opt.step()
    assert held.counters["update_cycles"] - cycles == (UNAPPLIED_WARN + 5) * x.shape[0]
    assert not held.has_pending_update


_COMPILE_SCRIPT = """
import numpy as np, torch
from torch import nn
from progsim.nn import AnalogSGD, convert_to_analog

def train(compiled):
    torch.manual_seed(0)
    digital = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, padding_mode="reflect"), nn.Tanh(), nn.Flatten(),
                            nn.Linear(3 * 5 * 5, 3))
    model = convert_to_analog(digital, seed=0)
    opt = AnalogSGD(model.parameters(), lr=0.1)
    run = torch.compile(model, backend="aot_eager") if compiled else model
    x, outs = torch.randn(4, 1, 5, 5), []
    for _ in range(3):
        opt.zero_grad()
        y = run(x)
        y.square().sum().backward()
        opt.step()
        outs.append(y.detach())
    return outs, [m.counters["update_cycles"] for m in (model[0], model[3])], model[3].tile.hidden_weights

compiled = train(True)  # first: the kernels' first dispatch in this process happens under tracing
eager = train(False)
assert eager[1] == compiled[1] == [3 * 4 * 25, 3 * 4], (eager[1], compiled[1])
assert all(torch.equal(a, b) for a, b in zip(eager[0], compiled[0]))
assert np.array_equal(eager[2], compiled[2])
print("same bits")
"""


def test_torch_compile_runs_the_analog_calls_eagerly_with_the_same_bits():
    # torch.compile traces the digital parts; a layer's analog call (NumPy and numba, which
    # dynamo cannot trace: before, compiling failed inside numba's dispatcher on a kernel's first
    # call in the process) breaks the graph and runs eagerly. Compiled and eager training from
    # the same seed then give the same outputs, update cycles and tile weights. In a fresh
    # process, so that the kernels are first dispatched under tracing ("aot_eager": dynamo's
    # tracing and AOTAutograd's graphs, without generating C++).
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "same bits" in done.stdout, done.stderr[-2000:]


@st.composite
def _conv_case(draw):
    n = draw(st.sampled_from([1, 2]))
    groups = draw(st.integers(1, 3))
    dims = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(n))  # noqa: E731
    kernel, stride, dilation, spatial = dims(1, 3), dims(1, 3), dims(1, 2), dims(1, 8)
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.builds(lambda p: p, st.integers(0, 2))))
    kw = dict(in_channels=groups * draw(st.integers(1, 2)), out_channels=groups * draw(st.integers(1, 2)),
              kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
              bias=draw(st.booleans()), padding_mode=draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])))
    return n, kw, spatial, draw(st.integers(0, 3))  # batch 0: an unbatched input


@given(_conv_case())
def test_any_convolution_torch_runs_is_torchs_or_refused_by_name(case):
    # Property: for random geometries (1-d and 2-d, groups, strides, dilations, explicit, "same"
    # and "valid" padding, all four padding modes, tiny inputs, unbatched inputs), a convolution
    # torch builds and runs converts and, on ideal tiles, gives torch's output and input
    # gradient; the only refusal is "same" padding that torch pads unevenly, by a named error.
    # What torch refuses, ours refuses too.
    n, kw, spatial, batch = case
    torch.manual_seed(0)
    x = torch.randn(*((batch,) if batch else ()), kw["in_channels"], *spatial, dtype=torch.float64)
    ref_cls = nn.Conv1d if n == 1 else nn.Conv2d
    analog_cls = {(1, False): AnalogConv1d, (2, False): AnalogConv2d, (1, True): AnalogGroupedConv1d,
                  (2, True): AnalogGroupedConv2d}[n, kw["groups"] > 1]
    try:
        ref = ref_cls(**kw).double()
    except ValueError:  # torch refuses to build it ("same" with a stride)
        with pytest.raises(ValueError):
            analog_cls(**{k: v for k, v in kw.items() if k != "groups" or kw["groups"] > 1}, config=IDEAL)
        return
    try:
        y_ref = ref(x.requires_grad_())
    except RuntimeError:  # torch refuses to run it (input too small, reflect padding too wide)
        with pytest.raises((RuntimeError, ValueError)):
            convert_to_analog(nn.Sequential(ref), IDEAL, seed=0)(x)
        return
    try:
        model = convert_to_analog(nn.Sequential(ref), IDEAL, seed=0)
    except ValueError as err:
        assert kw["padding"] == "same" and "can be 'same' only when" in str(err)
        return
    x2 = x.detach().clone().requires_grad_()
    y = model(x2)
    np.testing.assert_allclose(y.detach().numpy(), y_ref.detach().numpy(), atol=1e-12)
    dy = torch.randn_like(y_ref)
    y_ref.backward(dy)
    y.backward(dy)
    np.testing.assert_allclose(x2.grad.numpy(), x.grad.numpy(), atol=1e-12)
