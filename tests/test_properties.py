"""Property-based tests of the public API (issue 11), and regression tests of the defects they found.

The space: every device class and preset (bipolar and unipolar bounds, wide spreads, write
noise), every pulse scheme with random BL and management flags, none/V2/V3 half-selection,
perfect and default IO, float32 and float64, shapes 1x1 to 17x13, batches 1-5, lr from 1e-9
to 10 of either sign, inputs with zeros, +-1e6 and subnormals, and random sequences of
update / pulse / forward / read_weights calls mixed with malformed calls. Profiles live in
conftest.py: ``ci`` (default, derandomised, small) and ``local`` (HYPOTHESIS_PROFILE=local).
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import progsim_algorithms  # noqa: F401  (registers the built-in algorithms)
import progsim
from progsim import Crossbar, HalfSelect, IO, devices, pulses

# ----------------------------------------------------------------------------- strategies

_BOUNDS = [(0.6, -0.6), (1.0, 0.0), (0.3, -1.0), (0.0, -0.5), (2.0, -0.1)]


@st.composite
def device_st(draw):
    kind = draw(st.sampled_from(["ideal", "preset", "constant", "linear", "softbounds", "exp", "pow", "piecewise"]))
    if kind == "ideal":
        return devices.Ideal(dw_min=draw(st.floats(1e-4, 0.1)))
    if kind == "preset":
        return devices.preset(draw(st.sampled_from(sorted(devices.PRESETS))))
    w_max, w_min = draw(st.sampled_from(_BOUNDS))
    common = dict(dw_min=draw(st.floats(1e-4, 0.1)), dw_min_dtod=draw(st.floats(0.0, 1.0)),
                  dw_min_std=draw(st.floats(0.0, 1.0)), up_down=draw(st.floats(-0.5, 0.5)),
                  up_down_dtod=draw(st.floats(0.0, 0.2)), w_max=w_max, w_min=w_min,
                  w_max_dtod=draw(st.floats(0.0, 3.0)), w_min_dtod=draw(st.floats(0.0, 3.0)),
                  write_noise_std=draw(st.sampled_from([0.0, 0.0, 1.0, 5.0])))
    if kind == "constant":
        return devices.ConstantStep(**common)
    if kind == "linear":
        return devices.LinearStep(gamma_up=draw(st.floats(0.0, 2.0)), gamma_down=draw(st.floats(0.0, 2.0)), **common)
    if kind == "softbounds":
        return devices.SoftBounds(**common)
    if kind == "exp":
        return devices.ExpStep(**common)
    if kind == "pow":
        return devices.PowStep(gamma=draw(st.floats(0.0, 3.0)), **common)
    nodes = st.lists(st.floats(0.0, 2.0), min_size=2, max_size=5).map(tuple)
    return devices.Piecewise(nodes_up=draw(nodes), nodes_down=draw(nodes), **common)


@st.composite
def scheme_st(draw):
    kind = draw(st.sampled_from(["ideal", "ideal-device", "stochastic", "mean-count", "deterministic"]))
    if kind == "ideal":
        return pulses.Ideal()
    if kind == "ideal-device":
        return pulses.IdealWithDevice()
    flags = dict(bl=draw(st.integers(1, 64)), update_management=draw(st.booleans()),
                 bl_management=draw(st.booleans()))
    if kind == "stochastic":
        return pulses.Stochastic(**flags)
    if kind == "mean-count":
        return pulses.MeanCount(**flags)
    return pulses.DeterministicImplicit(x_res=draw(st.floats(0.01, 1.0)), d_res=draw(st.floats(0.01, 1.0)), **flags)


@st.composite
def config_st(draw):
    scheme = draw(scheme_st())
    hs = HalfSelect()
    if scheme.pulsed:
        mode = draw(st.sampled_from(["none", "v2", "v3"]))
        if mode != "none":
            hs = HalfSelect(mode, strength=draw(st.floats(0.0, 1.0)), prob=draw(st.sampled_from([1.0, 0.5])))
    return dict(device=draw(device_st()), pulses=scheme, half_select=hs,
                io=draw(st.sampled_from([IO(), IO(is_perfect=True)])),
                dtype=draw(st.sampled_from([np.float32, np.float64])), seed=draw(st.integers(0, 2**16)))


# inputs: ordinary values, zeros, +-1e6, subnormals, and 1e155 (whose products overflow the
# exact schemes: those updates must fail cleanly, the pulsed ones apply)
_VALUES = st.one_of(st.floats(-1.0, 1.0), st.sampled_from([0.0, 1e6, -1e6, 5e-324, -2.5e-310, 1.0, -1.0, 1e155]))


def _batch(b, n):
    return hnp.arrays(np.float64, (b, n), elements=_VALUES)


@st.composite
def op_st(draw, rows, cols):
    kind = draw(st.sampled_from(["update", "update", "pulse", "forward", "read", "bad"]))
    if kind == "update":
        b = draw(st.integers(1, 5))
        lr = draw(st.sampled_from([-1.0, 1.0])) * 10.0 ** draw(st.floats(-9.0, 1.0))
        return ("update", draw(_batch(b, cols)), draw(_batch(b, rows)), lr)
    if kind == "pulse":
        k = draw(st.integers(1, 4))
        return ("pulse", draw(st.lists(st.integers(0, rows - 1), min_size=k, max_size=k)),
                draw(st.lists(st.integers(0, cols - 1), min_size=k, max_size=k)),
                draw(st.lists(st.integers(-5, 5), min_size=k, max_size=k)))
    if kind == "forward":
        return ("forward", draw(_batch(draw(st.integers(1, 5)), cols)))
    if kind == "read":
        return ("read", draw(st.sampled_from(["eye", "lstsq"])), draw(st.integers(1, 3)))
    return ("bad", draw(st.sampled_from(sorted(_BAD))))


# Malformed calls: each must raise a ValueError/TypeError naming its parameter.
_BAD = {
    "x-shape": lambda t: t.update(np.ones(t.shape[1] + 1), np.ones(t.shape[0]), 0.1),
    "x-nan": lambda t: t.update(np.full(t.shape[1], np.nan), np.ones(t.shape[0]), 0.1),
    "d-inf": lambda t: t.update(np.ones(t.shape[1]), np.full(t.shape[0], np.inf), 0.1),
    "lr-inf": lambda t: t.update(np.ones(t.shape[1]), np.ones(t.shape[0]), float("inf")),
    "lr-bool": lambda t: t.update(np.ones(t.shape[1]), np.ones(t.shape[0]), True),
    "lr-array": lambda t: t.update(np.ones(t.shape[1]), np.ones(t.shape[0]), np.ones(2)),
    "batch-mismatch": lambda t: t.update(np.ones((2, t.shape[1])), np.ones((3, t.shape[0])), 0.1),
    "pulse-row": lambda t: t.pulse([t.shape[0]], [0], [1]),
    "pulse-float": lambda t: t.pulse([0.5], [0], [1]),
    "pulse-len": lambda t: t.pulse([0, 0], [0], [1, 1]),
    "forward-shape": lambda t: t.forward(np.ones((2, 2, t.shape[1]))),
    "forward-str": lambda t: t.forward("x"),
    "read-method": lambda t: t.read_weights("svd"),
    "read-k": lambda t: t.read_weights("eye", over_sampling=0),
    "set-shape": lambda t: t.set_weights(np.ones((t.shape[0] + 1, t.shape[1]))),
}


def _apply(tile, op):
    """Run one op; returns its output (or None). Bad ops must raise a named error."""
    kind = op[0]
    if kind == "update":
        return tile.update(op[1], op[2], op[3])
    if kind == "pulse":
        return tile.pulse(np.array(op[1]), np.array(op[2]), np.array(op[3]))
    if kind == "forward":
        return tile.forward(op[1])
    if kind == "read":
        return tile.read_weights(op[1], over_sampling=op[2])
    with pytest.raises((ValueError, TypeError), match=r"'\w+'( and '\w+')*( and '\w+')? parameters? of"):
        _BAD[op[1]](tile)
    return None


def _snapshot(tile):
    s = tile.state_dict()
    return s["weights"].copy(), s["apparent_weights"].copy(), dict(s["counters"]), s["counter"], str(s["io_rng"])


def _same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2:] == b[2:]


def _check_invariants(tile, cfg, before_counters):
    w, wa = tile.hidden_weights, tile.weights
    assert np.isfinite(w).all() and np.isfinite(wa).all()
    if not isinstance(cfg["pulses"], pulses.Ideal):  # pulses.Ideal is documented unbounded
        cells = tile.cells
        assert np.all(w <= cells.w_max) and np.all(w >= cells.w_min)
    counters = tile.counters
    for k, v in counters.items():
        assert isinstance(v, int) and v >= before_counters[k], k


def _run_any(tile, op):
    """Like :func:`_apply`, but a well-formed call may fail only with a named ValueError
    (e.g. an exact update that would overflow); returns (output, raised)."""
    if op[0] == "bad":
        return _apply(tile, op), True
    try:
        return _apply(tile, op), False
    except ValueError as exc:
        assert "parameter of" in str(exc)
        return None, True


# ----------------------------------------------------------------------------- properties


@given(cfg=config_st(), shape=st.tuples(st.integers(1, 17), st.integers(1, 13)), data=st.data())
def test_random_call_sequences_keep_every_invariant(cfg, shape, data):
    """On any configuration and any sequence of calls: only named ValueError/TypeError, and a
    failed call changes nothing (weights, counters, stream counter, periphery RNG); weights
    finite and inside each cell's bounds; integer counters that never decrease; finite outputs;
    a twin tile of the same seed gives the same bits call after call; a tile restored from a
    mid-sequence ``state_dict`` continues identically."""
    rows, cols = shape
    ops = data.draw(st.lists(op_st(rows, cols), min_size=1, max_size=6))
    cut = data.draw(st.integers(0, len(ops)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the below-resolution warning
        tile, twin = Crossbar(rows, cols, **cfg), Crossbar(rows, cols, **cfg)
        saved, resumed = None, None
        for n, op in enumerate(ops):
            if n == cut:
                saved = tile.state_dict()
            before = _snapshot(tile)
            out, failed = _run_any(tile, op)
            out_twin, _ = _run_any(twin, op)
            if failed:
                _same(_snapshot(tile), before)
            if out is not None:
                assert np.isfinite(out).all()
                np.testing.assert_array_equal(out, out_twin)
            _check_invariants(tile, cfg, before[2])
            _same(_snapshot(tile), _snapshot(twin))
        if saved is None:
            saved = tile.state_dict()
        resumed = Crossbar(rows, cols, **{**cfg, "seed": cfg["seed"] + 1})
        resumed.load_state_dict(saved)
        for op in ops[cut:]:
            _run_any(resumed, op)
    _same(_snapshot(resumed), _snapshot(tile))


@given(w=hnp.arrays(np.float64, st.tuples(st.integers(1, 17), st.integers(1, 13)),
                    elements=st.floats(-1e6, 1e6, allow_subnormal=True)),
       k=st.integers(1, 8), scheme=st.sampled_from([pulses.Ideal(), pulses.IdealWithDevice(), pulses.Stochastic()]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_perfect_reads_of_an_ideal_tile_are_exact(w, k, scheme, dtype):
    """``read_weights("eye", over_sampling=k)`` with a perfect periphery returns the stored
    weights bit for bit, for any k."""
    tile = Crossbar(*w.shape, device=devices.Ideal(), pulses=scheme, io=IO(is_perfect=True), dtype=dtype)
    tile.set_weights(w)
    np.testing.assert_array_equal(tile.read_weights("eye", over_sampling=k), tile.weights)
    assert tile.counters["reads"] == k * w.shape[1]


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1)], ids=["1x1", "1xN", "Nx1"])
@pytest.mark.parametrize("key", progsim.algorithms_available())
def test_every_algorithm_survives_tiny_and_one_row_tiles(key, shape):
    """Every registered algorithm runs a few iterations on 1x1, 1xN and Nx1 default tiles
    (ConstantStep, Stochastic, noisy IO) without an exception, with a finite table."""
    target = np.linspace(-0.3, 0.4, shape[0] * shape[1]).reshape(shape)
    result = progsim.program(Crossbar(*shape, seed=1), target, key, max_iter=4)
    numeric = result.table.select_dtypes("number").drop(columns=["pulses_half"], errors="ignore")
    assert len(result.table) >= 1 and np.isfinite(numeric[["err_fro", "err_spec"]].to_numpy()).all()


# ----------------------------------------------------------------------------- defect 1: zero width

_MODELS = {
    "constant": devices.ConstantStep(),
    "linear": devices.LinearStep(gamma_up=0.5, gamma_down=0.3),
    "softbounds": devices.SoftBounds(),
    "exp": devices.ExpStep(),
    "pow": devices.PowStep(gamma=1.5),
    "piecewise": devices.Piecewise(nodes_up=(1.0, 0.5), nodes_down=(0.5, 1.0)),
}


def _with_dead_cell(device, hs, seed=0):
    """A 3x3 tile whose centre cell has ``w_max == w_min == 0`` (loaded parameters)."""
    tile = Crossbar(3, 3, device=device, half_select=hs, io=IO(is_perfect=True), seed=seed)
    state = tile.state_dict()
    state["cells"]["w_max"][1, 1] = 0.0
    state["cells"]["w_min"][1, 1] = 0.0
    tile.load_state_dict(state)
    return tile


@pytest.mark.parametrize("name", sorted(_MODELS))
def test_zero_width_cell_is_dead_in_every_path(name):
    """A zero-width cell takes pulses, disturbs and updates without NaN or exception and stays
    at its bound, in the fast update kernel, the general (V/2) kernel, single-device pulses
    (its own and a neighbour's, whose disturb reaches it) and write-verify."""
    device = _MODELS[name]
    x, d = np.array([[1.0, -0.5, 0.7]] * 4), np.array([[-1.0, 0.8, 0.3]] * 4)
    for hs in (HalfSelect(), HalfSelect("v2", strength=0.3)):
        tile = _with_dead_cell(device, hs)
        tile.update(x, d, 0.2)
        tile.pulse([1, 1, 0], [1, 0, 1], [3, -2, 4])
        w = tile.weights
        assert np.isfinite(w).all() and w[1, 1] == 0.0
        assert tile.counters["pulses_full"] > 0 and tile.counters["pulses_single"] == 9
    tile = _with_dead_cell(device, HalfSelect())
    result = progsim.program(tile, np.full((3, 3), 0.2), "write-verify", max_iter=3)
    assert np.isfinite(tile.weights).all() and tile.weights[1, 1] == 0.0 and len(result.table) >= 1


def test_step_functions_return_zero_for_a_zero_width_cell():
    """The step functions themselves: no division by ``w_max - w_min`` when it is 0."""
    for dev in _MODELS.values():
        for up in (True, False):
            mag = dev.step(0.0, up, 1e-3, 0.0, 0.0, dev.shape_params)
            assert np.isfinite(mag) and mag >= 0.0
    for dev in (_MODELS["exp"], _MODELS["pow"], _MODELS["piecewise"]):
        assert dev.step(0.0, True, 1e-3, 0.0, 0.0, dev.shape_params) == 0.0


def test_unipolar_device_of_the_issue_updates_and_pulses():
    """Issue 11's example: a 1x1 unipolar PowStep with a wide bound spread gave NaN on update
    and ZeroDivisionError on pulse."""
    tile = Crossbar(1, 1, device=devices.PowStep(w_min=0.0, w_max_dtod=3.0), seed=1)
    tile.update([1.0], [-1.0], 0.1)
    tile.pulse([0], [0], [1])
    assert np.isfinite(tile.weights).all()
    tiles = [Crossbar(64, 64, device=devices.PowStep(w_min=0.0, w_max=1.0), seed=s) for s in range(4)]
    assert all(np.all(t.cells.w_max > t.cells.w_min) for t in tiles)


# ----------------------------------------------------------------------------- defect 2: huge inputs


@pytest.mark.parametrize("scheme", [pulses.Ideal(), pulses.IdealWithDevice()], ids=["ideal", "ideal-device"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_overflowing_update_raises_and_leaves_the_tile_unchanged(scheme, dtype):
    """``update([1e155], [1e155], 1)`` on an unbounded tile overflows: a named ValueError, and
    the weights, counters and streams are those from before the call."""
    tile = Crossbar(1, 2, device=devices.Ideal(), pulses=scheme, io=IO(is_perfect=True), dtype=dtype)
    tile.set_weights([[0.25, -0.5]])
    before = _snapshot(tile)
    with pytest.raises(ValueError, match="'x' parameter of Crossbar.update must keep the increment"):
        tile.update([1e155, 0.0], [1e155], 1.0)
    _same(_snapshot(tile), before)
    if dtype == np.float32:  # finite in float64, not in the tile's float32
        with pytest.raises(ValueError, match="finite in float32"):
            tile.update([1e20, 1.0], [1e20], 1.0)
        _same(_snapshot(tile), before)
    tile.update([1.0, 0.0], [0.5], 0.1)  # and the tile goes on working
    assert tile.weights[0, 0] == pytest.approx(0.2) and tile.counters["update_cycles"] == 1


def test_huge_update_on_a_bounded_device_applies_to_the_bound():
    """With bounds the same huge increment is legitimate: it drives the cell to its bound."""
    tile = Crossbar(1, 1, device=devices.ConstantStep(write_noise_std=1.0), pulses=pulses.IdealWithDevice(), seed=2)
    tile.update([1e155], [1e155], 1.0)
    assert tile.hidden_weights[0, 0] == tile.cells.w_min[0, 0] and np.isfinite(tile.weights).all()


# ----------------------------------------------------------------------------- defect 3 and near-miss


def test_over_sampled_perfect_read_is_exact():
    """Issue 11: 0.1 read 3 times and averaged came back 0.10000000000000002 in 741 of 4420
    entries. Every k from 1 to 9, on values that include 0.1 and random ones."""
    rng = np.random.default_rng(7)
    w = rng.uniform(-1, 1, (34, 65))
    w[::3] = 0.1
    tile = Crossbar(34, 65, device=devices.Ideal(), pulses=pulses.Ideal(), io=IO(is_perfect=True))
    tile.set_weights(w)
    for k in range(1, 10):
        np.testing.assert_array_equal(tile.read_weights("eye", over_sampling=k), w)


@pytest.mark.parametrize("kind", [pulses.Stochastic, pulses.MeanCount, pulses.DeterministicImplicit])
def test_subnormal_maximum_with_update_management_gives_finite_probabilities(kind):
    """A subnormal maximum on one side and 1e6 on the other: no division by zero, no NaN (and
    no NaN cast to int64 in the trains), probabilities in [0, 1]."""
    scheme = kind(update_management=True)
    tiny = 5e-324
    cases = [(np.array([[tiny, 0.0, -tiny]]), np.array([[1e6, -3.0, 0.0]])),
             (np.array([[1e6, 0.0, 2.0]]), np.array([[-tiny, 0.0]])),
             (np.array([[2.5e-310, 1e-320]]), np.array([[1e6, 1e-3]]))]
    with warnings.catch_warnings(), np.errstate(divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "Crossbar.update applied no pulse")  # true here: k ~ 5e-315
        for x, d in cases:
            for lr in (1e-9, 1.0, 10.0):
                px, pd, bl = pulses.probabilities(scheme, x, d, lr, 1e-3)
                for p in (px, pd):
                    assert np.isfinite(p).all() and np.all((p >= 0) & (p <= 1))
                pulses.make_cycles(scheme, x, d, lr, 1e-3, np.uint64(1), 0)
                tile = Crossbar(d.shape[1], x.shape[1], pulses=scheme, seed=0)
                tile.update(x, d, lr)
                assert np.isfinite(tile.weights).all()
