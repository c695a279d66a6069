"""Inference noise models, drift compensation, HWA modifiers and clipping (progsim.inference).

Statistical tests compare sample moments with the formulas of the design (written out here
again, independently of the module) and take their tolerance from the sampling error of
the statistic: ``Z = 5`` standard errors, a false alarm about once in 2 million runs, so
they pass for any seed.
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from progsim.inference import GaussianNoise, GlobalDriftCompensation, PCMLikeNoise
from progsim.inference import modifiers as M

Z = 5.0
G_MAX, T0, T_READ = 25.0, 20.0, 250e-9
DAY = 86400.0


def sigma_prog(g):  # design: max(0.26348 + 1.9650 x - 1.1731 x^2, 0) * g_max / 25 uS
    x = g / G_MAX
    return max(0.26348 + 1.9650 * x - 1.1731 * x * x, 0.0) * G_MAX / 25.0


def nu_params(g):  # design: mu, sigma of the drift exponent
    x = g / G_MAX
    return (min(max(-0.0155 * math.log(x) + 0.0244, 0.049), 0.1),
            min(max(-0.0125 * math.log(x) - 0.0059, 0.008), 0.045))


def read_rel_std(g_prog, t):  # q_s sqrt(ln((t + t0 + t_r) / (2 t_r))), t counted from t0 as aihwkit
    q_s = min(0.0088 / (g_prog / G_MAX) ** 0.65, 0.2)
    return q_s * math.sqrt(math.log((t + T0 + T_READ) / (2 * T_READ)))


def std_se(n):  # standard error of a normal sample's std, relative to sigma
    return 1.0 / math.sqrt(2.0 * (n - 1))


# --------------------------------------------------------------------------- programming noise


@pytest.mark.parametrize("g_target", [25.0, 5.0, 0.5])
def test_programming_noise_std_follows_polynomial(g_target):
    n = 200_000
    g = PCMLikeNoise().apply_programming_noise(np.full(n, g_target), np.random.default_rng())
    sigma = sigma_prog(g_target)
    if g_target == 25.0:
        assert abs(g.std(ddof=1) - 1.06) <= 0.03 * 1.06  # the design's figure, 1.06 uS within 3 %
    if g_target > 6 * sigma:  # the clip at 0 conductance is out of reach: a plain normal
        assert abs(g.std(ddof=1) - sigma) <= Z * sigma * std_se(n)
        assert abs(g.mean() - g_target) <= Z * sigma / math.sqrt(n)
    else:  # clipped at 0: the mean and std of max(N(g, sigma^2), 0), by quadrature
        pdf = lambda z: math.exp(-0.5 * ((z - g_target) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))  # noqa: E731
        lo, hi = 0.0, g_target + 12 * sigma
        mean = integrate.quad(lambda z: z * pdf(z), lo, hi)[0]
        var = integrate.quad(lambda z: z * z * pdf(z), lo, hi)[0] - mean**2
        assert abs(g.mean() - mean) <= Z * math.sqrt(var / n)
        assert (g >= 0).all()


def test_programming_noise_scales_with_g_max_and_scale():
    n = 100_000
    m = PCMLikeNoise(g_max=50.0, prog_noise_scale=2.0)
    g = m.apply_programming_noise(np.full(n, 50.0), np.random.default_rng())
    sigma = 2.0 * 1.05538 * 50.0 / 25.0  # at x = 1, coefficients fitted at 25 uS
    assert abs(g.std(ddof=1) - sigma) <= Z * sigma * std_se(n)


# --------------------------------------------------------------------------- drift


def expected_drift_factor(g_target, t):
    """E[((t + t0)/t0)^-|nu|], nu ~ N(mu, sigma), by numerical integration (and its variance)."""
    mu, sigma = nu_params(g_target)
    base = (t + T0) / T0
    pdf = lambda z: math.exp(-0.5 * ((z - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))  # noqa: E731
    lo, hi = mu - 12 * sigma, mu + 12 * sigma
    m1 = integrate.quad(lambda z: base ** -abs(z) * pdf(z), lo, hi, points=[0.0] if lo < 0 else None)[0]
    m2 = integrate.quad(lambda z: base ** (-2 * abs(z)) * pdf(z), lo, hi, points=[0.0] if lo < 0 else None)[0]
    return m1, m2 - m1 * m1


@pytest.mark.parametrize("g_target, read_noise_scale", [(12.5, 1.0), (0.25, 0.0), (25.0, 1.0)])
def test_mean_drift_factor_at_one_day(g_target, read_noise_scale):
    n = 200_000
    rng = np.random.default_rng()
    m = PCMLikeNoise(read_noise_scale=read_noise_scale)
    g = np.full(n, g_target)
    nu = m.generate_drift_coefficients(g, rng)
    factor = m.apply_drift_noise(g, nu, DAY, rng) / g
    mean, var = expected_drift_factor(g_target, DAY)
    # read noise is zero-mean and adds (q_s sqrt(ln ...))^2 E[f^2] to the variance
    var += (read_noise_scale * read_rel_std(g_target, DAY)) ** 2 * (var + mean**2)
    assert abs(factor.mean() - mean) <= Z * math.sqrt(var / n)
    assert mean < 0.75  # a day of drift is far from the programmed state: the test has teeth


def test_drift_coefficients_follow_their_distribution():
    n = 200_000
    for g_target in (25.0, 2.0, 0.05):
        nu = PCMLikeNoise().generate_drift_coefficients(np.full(n, g_target), np.random.default_rng())
        mu, sigma = nu_params(g_target)
        # folded normal |N(mu, sigma)|: mean and variance in closed form
        mean = sigma * math.sqrt(2 / math.pi) * math.exp(-mu * mu / (2 * sigma * sigma)) + mu * math.erf(
            mu / (sigma * math.sqrt(2)))
        var = mu * mu + sigma * sigma - mean * mean
        assert abs(nu.mean() - mean) <= Z * math.sqrt(var / n)
        assert (nu >= 0).all()


def test_drift_coefficients_at_zero_conductance_take_the_clipped_extremes():
    nu = PCMLikeNoise().generate_drift_coefficients(np.zeros(100_000), np.random.default_rng())
    # x -> 0 is floored at 1e-7: mu = 0.1, sigma = 0.045 (both at their upper clips)
    mu, sigma = 0.1, 0.045
    mean = sigma * math.sqrt(2 / math.pi) * math.exp(-mu * mu / (2 * sigma * sigma)) + mu * math.erf(
        mu / (sigma * math.sqrt(2)))
    assert abs(nu.mean() - mean) <= Z * sigma / math.sqrt(nu.size)


# --------------------------------------------------------------------------- read noise


@pytest.mark.parametrize("g_prog, t, nu", [(10.0, 3600.0, 0.0), (10.0, 0.0, 0.0), (2.0, 365 * DAY, 0.05),
                                           (0.01, DAY, 0.0)])
def test_read_noise_follows_its_formula(g_prog, t, nu):
    n = 200_000
    m = PCMLikeNoise()
    g = m.apply_drift_noise(np.full(n, g_prog), np.full(n, nu), t, np.random.default_rng())
    g_drift = g_prog * ((t + T0) / T0) ** -nu
    sigma = g_drift * read_rel_std(g_prog, t)
    if g_drift > 6 * sigma:
        assert abs(g.std(ddof=1) - sigma) <= Z * sigma * std_se(n)
        assert abs(g.mean() - g_drift) <= Z * sigma / math.sqrt(n)
    else:  # wide enough for the clip at 0 to bite: moments of max(N(g_drift, sigma^2), 0)
        pdf = lambda z: math.exp(-0.5 * ((z - g_drift) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))  # noqa: E731
        m1 = integrate.quad(lambda z: z * pdf(z), 0.0, g_drift + 12 * sigma)[0]
        m2 = integrate.quad(lambda z: z * z * pdf(z), 0.0, g_drift + 12 * sigma)[0]
        m4 = integrate.quad(lambda z: z**4 * pdf(z), 0.0, g_drift + 12 * sigma)[0]
        assert abs(g.mean() - m1) <= Z * math.sqrt((m2 - m1 * m1) / n)
        assert abs((g * g).mean() - m2) <= Z * math.sqrt((m4 - m2 * m2) / n)
    if g_prog / G_MAX < (0.0088 / 0.2) ** (1 / 0.65):  # q_s saturates at 0.2 below x = 0.0083
        assert sigma == pytest.approx(0.2 * g_drift * math.sqrt(math.log((t + T0 + T_READ) / (2 * T_READ))))


def test_zero_conductance_stays_zero_and_drift_is_deterministic_without_noise():
    m = PCMLikeNoise(read_noise_scale=0.0)
    g = np.array([0.0, 5.0, 20.0])
    nu = np.array([0.07, 0.06, 0.05])
    out = m.apply_drift_noise(g, nu, DAY, np.random.default_rng(0))
    np.testing.assert_allclose(out, g * ((DAY + T0) / T0) ** -nu, rtol=1e-12)
    assert PCMLikeNoise().apply_drift_noise(np.zeros(4), np.full(4, 0.1), DAY, 0).tolist() == [0.0] * 4


# --------------------------------------------------------------------------- mapping and composition


def test_weights_map_to_pairs_and_back():
    rng = np.random.default_rng(3)
    w = rng.uniform(-2.0, 2.0, (7, 9))
    m = PCMLikeNoise()
    g = m.to_conductances(w)
    assert g.scale == pytest.approx(G_MAX / np.abs(w).max())
    assert np.isclose(np.maximum(g.g_plus, g.g_minus).max(), G_MAX)
    assert (np.minimum(g.g_plus, g.g_minus) == 0).all()  # one device of each pair rests at g_min = 0
    np.testing.assert_allclose(m.to_weights(*g), w, rtol=1e-13, atol=1e-15)
    # a fixed w_max clips larger weights to g_max, as aihwkit's converter clamps
    fixed = PCMLikeNoise(w_max=1.0, g_min=1.0)
    gf = fixed.to_conductances(w)
    np.testing.assert_allclose(fixed.to_weights(*gf), np.clip(w, -1.0, 1.0), rtol=1e-13, atol=1e-15)
    assert gf.g_plus.min() == 1.0 and gf.g_plus.max() == 25.0


def test_program_then_read_at_t_without_noise_is_pure_drift():
    w = np.random.default_rng(4).uniform(-1, 1, (5, 6))
    m = GaussianNoise(nu_mean=0.05)
    state = m.program(w, 0)
    np.testing.assert_allclose(state.weights, w, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(m.weights_at(state, DAY, 1), w * ((DAY + T0) / T0) ** -0.05, rtol=1e-12)
    ident = GaussianNoise()
    np.testing.assert_allclose(ident.weights_at(ident.program(w, 0), 3600.0, 1), w, rtol=1e-13, atol=1e-15)


def test_gaussian_noise_model_statistics():
    n = 200_000
    m = GaussianNoise(prog_std=0.5, prog_std_rel=0.02, read_std=0.1, read_std_rel=0.01)
    rng = np.random.default_rng()
    g = m.apply_programming_noise(np.full(n, 20.0), rng)
    sigma = math.hypot(0.5, 0.02 * 20.0)
    assert abs(g.std(ddof=1) - sigma) <= Z * sigma * std_se(n)
    r = m.apply_drift_noise(np.full(n, 20.0), np.zeros(n), 10.0, rng)
    sigma = math.hypot(0.1, 0.01 * 20.0)
    assert abs(r.std(ddof=1) - sigma) <= Z * sigma * std_se(n)


def test_from_programmed_keeps_weights_and_draws_exponents_from_target():
    rng = np.random.default_rng(5)
    target = rng.uniform(-1, 1, (40, 50))
    written = target + 0.01 * rng.standard_normal(target.shape)
    m = PCMLikeNoise()
    state = m.from_programmed(written, 0, target=target)
    np.testing.assert_allclose(state.weights, np.clip(written, -1 * np.abs(target).max(), np.abs(target).max()),
                               rtol=1e-12, atol=1e-15)
    # exponents of devices at rest (g = 0) have mu = 0.1: the larger mean of the pair's second device
    idle = np.where(target > 0, state.nu_minus, state.nu_plus)
    assert idle.mean() > 0.09


# --------------------------------------------------------------------------- compensation


def test_compensation_restores_mean_output_within_read_noise():
    rng = np.random.default_rng(6)
    n = 128
    w = rng.uniform(-1, 1, (n, n))
    m = PCMLikeNoise()
    state = m.program(w, rng)
    w0 = m.weights_at(state, 0.0, rng)
    comp = GlobalDriftCompensation(n)
    comp.calibrate(lambda x: x @ w0.T)
    wt = m.weights_at(state, DAY, rng)
    alpha = comp.factor(lambda x: x @ wt.T)
    x = rng.standard_normal((256, n))
    y0, yt = x @ w0.T, x @ wt.T
    base = np.abs(y0).mean()
    # the read noise of the outputs at t: per output sqrt(sum_j x_j^2 (w_ij s_ij)^2), s_ij the
    # relative read noise of the device carrying w_ij, relative to the output's magnitude
    g = m.to_conductances(w)
    s = np.vectorize(lambda gp: read_rel_std(gp, DAY) if gp > 0 else 0.0)(np.maximum(g.g_plus, g.g_minus))
    read_std = np.sqrt((x**2) @ ((w * s) ** 2).T)
    rel_read = float((read_std / np.abs(y0).mean()).mean())
    assert abs(alpha * np.abs(yt).mean() / base - 1.0) < rel_read
    assert abs(np.abs(yt).mean() / base - 1.0) > 3 * rel_read  # without it the layer is far off


def test_per_column_compensation_and_torch_forward():
    w = torch.tensor([[1.0, 2.0], [0.5, -0.5], [0.0, 0.0]])
    drift = torch.tensor([[0.5], [0.8], [1.0]])
    comp = GlobalDriftCompensation(reference=torch.eye(2), per_column=True)
    comp.calibrate(lambda x: x @ w.T)
    factor = comp.factor(lambda x: x @ (w * drift).T)
    np.testing.assert_allclose(factor, [2.0, 1.25, 1.0])  # the zero row keeps factor 1
    with pytest.raises(RuntimeError, match="calibrate"):
        GlobalDriftCompensation(2).factor(lambda x: x)


# --------------------------------------------------------------------------- modifiers


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_additive_and_multiplicative_modifiers_statistics(dtype):
    gen = torch.Generator().manual_seed(7)
    w = (torch.rand(400, 500, generator=gen, dtype=dtype) * 2 - 1).requires_grad_()
    n = w.numel()
    out = M.add_gaussian(w, 0.05, generator=gen)
    noise = (out - w).detach().double()
    sigma = 0.05 * w.detach().abs().max().item()
    assert out.dtype == dtype and abs(noise.std().item() - sigma) <= Z * sigma * std_se(n)
    assert abs(noise.mean().item()) <= Z * sigma / math.sqrt(n)
    fixed = (M.add_gaussian(w, 0.05, rel_to_actual_wmax=False, assumed_wmax=2.0, generator=gen) - w).detach()
    assert abs(fixed.double().std().item() - 0.1) <= Z * 0.1 * std_se(n)
    rel = (M.mult_gaussian(w, 0.1, generator=gen) / w - 1).detach().double()
    assert abs(rel.std().item() - 0.1) <= Z * 0.1 * std_se(n)
    out.sum().backward()  # straight through: d out / d w = 1
    assert torch.equal(w.grad, torch.ones_like(w))


def test_drop_connect_fraction_and_survivors():
    gen = torch.Generator().manual_seed(8)
    w = torch.rand(300, 300, generator=gen) + 0.1
    out = M.drop_connect(w, 0.25, generator=gen)
    dropped = (out == 0).double().mean().item()
    assert abs(dropped - 0.25) <= Z * math.sqrt(0.25 * 0.75 / w.numel())
    kept = out != 0
    assert torch.equal(out[kept], w[kept])
    assert torch.equal(M.drop_connect(w, 0.0), w)


def test_pcm_noise_modifier_statistics():
    n = 200_000
    gen = torch.Generator().manual_seed(9)
    w = torch.cat([torch.full((n,), 1.0), torch.full((n,), -1.0), torch.zeros(10)]).double()
    out = M.pcm_noise(w, generator=gen)
    # at |w| = max|W|, g = 25 uS: programming noise sigma_p then read noise at t0 relative to g_prog,
    # Var = sigma_p^2 + s^2 (g^2 + sigma_p^2), in weight units / 25
    sp, s = sigma_prog(25.0), read_rel_std(25.0, 0.0)
    sigma = math.sqrt(sp**2 + s**2 * (25.0**2 + sp**2)) / 25.0
    pos, neg = out[:n], out[n:2 * n]
    assert abs(pos.std().item() - sigma) <= Z * sigma * std_se(n)
    assert abs(pos.mean().item() - 1.0) <= Z * sigma / math.sqrt(n)
    assert (pos > 0).all() and (neg < 0).all() and (out[2 * n:] == 0).all()
    assert abs(neg.std().item() - sigma) <= Z * sigma * std_se(n)


def test_pcm_noise_modifier_drift_spread_grows_with_time():
    gen = torch.Generator().manual_seed(10)
    w = torch.full((100_000,), 0.5, dtype=torch.float64)
    early = M.pcm_noise(w, t_inference=1.0, generator=gen).std().item()
    late = M.pcm_noise(w, t_inference=365 * DAY, generator=gen).std().item()
    assert late > early * 1.2


# --------------------------------------------------------------------------- clipping


def test_clip_fixed_and_by_sigma():
    gen = torch.Generator().manual_seed(11)
    w = torch.randn(200, 100, generator=gen, dtype=torch.float64)
    c = M.clip_fixed(w, 0.5)
    inside = w.abs() <= 0.5
    assert torch.equal(c[inside], w[inside]) and torch.equal(c[~inside], 0.5 * torch.sign(w[~inside]))
    a = 2.0 * np.std(w.numpy(), ddof=1)  # the bound, computed independently
    cs = M.clip_sigma(w, 2.0)
    np.testing.assert_allclose(cs.numpy(), np.clip(w.numpy(), -a, a), rtol=1e-12)
    np.testing.assert_allclose(M.clip_sigma(w, 2.0, fixed_value=0.3).numpy(), np.clip(w.numpy(), -0.3, 0.3))


# --------------------------------------------------------------------------- validation


def test_bad_parameters_raise_in_the_project_shape():
    with pytest.raises(ValueError, match=r"The 'g_max' parameter of PCMLikeNoise must be > 0. Got -1"):
        PCMLikeNoise(g_max=-1.0)
    with pytest.raises(ValueError, match=r"The 'g_min' parameter of GaussianNoise must be < g_max"):
        GaussianNoise(g_max=1.0, g_min=2.0)
    with pytest.raises(ValueError, match=r"The 't' parameter of PCMLikeNoise.weights_at must be a finite float >= 0"):
        m = PCMLikeNoise()
        m.weights_at(m.program(np.eye(2), 0), -1.0, 0)
    with pytest.raises(ValueError, match=r"The 'g_target' parameter .* conductances >= 0"):
        PCMLikeNoise().apply_programming_noise(np.array([-1.0]), 0)
    with pytest.raises(TypeError, match=r"The 'rng' parameter"):
        PCMLikeNoise().program(np.eye(2), None)
    with pytest.raises(ValueError, match=r"The 'pdrop' parameter of drop_connect must be in the range \[0, 1\)"):
        M.drop_connect(torch.ones(2), 1.0)
    with pytest.raises(TypeError, match=r"The 'weight' parameter of add_gaussian must be a floating-point"):
        M.add_gaussian(np.ones(2), 0.1)
    with pytest.raises(ValueError, match=r"The 'std' parameter of mult_gaussian must be >= 0"):
        M.mult_gaussian(torch.ones(2), -0.1)


# --------------------------------------------------------------------------- against aihwkit


@pytest.mark.parametrize("g_target", [25.0, 6.0, 0.3])
def test_pcm_statistics_match_aihwkits_model(g_target):
    """Two samples, ours and aihwkit 1.2's PCMLikeNoiseModel: same means and stds at each stage
    (differences within Z standard errors of the difference of two independent estimates)."""
    pytest.importorskip("aihwkit")
    from aihwkit.inference.noise.pcm import PCMLikeNoiseModel

    n = 100_000
    theirs = PCMLikeNoiseModel()
    ours = PCMLikeNoise()
    rng = np.random.default_rng()
    g = np.full(n, g_target)
    gt = torch.full((n,), g_target, dtype=torch.float64)
    stages_ours, stages_theirs = [], []
    g_prog = ours.apply_programming_noise(g, rng)
    nu = ours.generate_drift_coefficients(g, rng)
    stages_ours += [g_prog, nu, ours.apply_drift_noise(g_prog, nu, DAY, rng)]
    tg_prog = theirs.apply_programming_noise_to_conductance(gt)
    tnu = theirs.generate_drift_coefficients(gt)
    stages_theirs += [t.numpy() for t in (tg_prog, tnu, theirs.apply_drift_noise_to_conductance(tg_prog, tnu, DAY))]
    for a, b in zip(stages_ours, stages_theirs):
        se_mean = math.sqrt(a.var() / n + b.var() / n)
        assert abs(a.mean() - b.mean()) <= Z * se_mean
        # std of a sample std ~ sigma sqrt((kurtosis - 1) / 4n): use the sample's fourth moment
        se_std = math.sqrt(sum((((x - x.mean()) ** 4).mean() - x.var() ** 2) / (4 * n * x.var()) for x in (a, b)))
        assert abs(a.std() - b.std()) <= Z * se_std
