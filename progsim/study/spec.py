"""Programming studies described as data: a TOML file or the equal Python mapping.

A study file has four tables; every key is checked before anything runs, and a wrong key
or value raises ValueError naming it ("The 'tile.strength' parameter of study 'sweep'
must be in the range [0, 1]. Got 2.0 instead."). Keys marked *axis* take one value or a
list of values; the study runs every combination::

    [study]
    name = "sweep"         # default: the file's stem
    seed = 0               # entropy of every trial's SeedSequence
    seeds = 3              # axis of trial seeds: a count (0, 1, 2) or a list of ints
    tol = 0.05             # err_fro tolerance of the trial table (converged, iterations_to_tol)
    max_iter = 100         # defaults of every algorithm's budget and recording
    record_every = 1

    [tile]
    shape = [32, 32]       # axis: [rows, cols] or a list of such pairs
    device = "ConstantStep"   # axis: preset ("reram-es"), model ("LinearStep") or a table
                              # {model = "LinearStep", gamma_up = 0.5, label = "ls"},
                              # {preset = "pcm", dw_min_std = 0.0}
    pulses = "Stochastic"  # axis: scheme name or a table {scheme = "Stochastic", bl = 15}
    io = "default"         # axis: "default" (aihwkit's periphery), "perfect", or a table of IO fields
    half_select = "none"   # axis: "none", "v2", "v3"
    strength = 0.0         # axis (trials with "none" take 0)
    prob = 1.0             # axis (trials with "none" take 1)

    [target]
    kind = "normal"        # axis: entries of the base matrix, "normal" or "uniform"
    rank = "full"          # axis: keep the top `rank` SVD components, or "full"
    max_abs = 0.3          # axis: the target is scaled to max|T| = max_abs
    clip = 0.0             # axis: > 0 clips T to clip x each cell's bounds (a target the tile can hold)

    [algorithms.svd]       # a registry key; one table, or [[algorithms.gdp]] for several grids
    max_iter = 200         # budgets: max_iter, max_pulses, max_reads, stop_tol (program's tol); record_every
    read = ["eye", "hadamard"]   # any other key is an option of the algorithm (axis)

The algorithm's ``seed`` option is not a key: it is drawn from the trial's SeedSequence.
Table columns are named as the keys: ``algorithm``, ``device``, ``pulses``, ``io``,
``half_select``, ``strength``, ``prob``, ``rows``, ``cols``, ``target``, ``rank``,
``max_abs``, ``clip``, ``seed``, ``study_seed``, the budgets and every option.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from progsim import algorithms_available, devices
from progsim import pulses as pulse_schemes
from progsim._validate import Interval, Options, param_error
from progsim.halfselect import MODES, HalfSelect
from progsim.periphery import IO
from progsim.study.grid import SPECS, canonical, trial_id

from progsim.programming import COUNTERS, METRICS, get_algorithm
from progsim.programming import registry as _registry

DEVICE_MODELS = ("Ideal", "ConstantStep", "LinearStep", "SoftBounds", "ExpStep", "PowStep", "Piecewise")
PULSE_SCHEMES = ("Ideal", "IdealWithDevice", "MeanCount", "Stochastic", "DeterministicImplicit")
TARGET_KINDS = ("normal", "uniform")
BUDGETS = ("max_iter", "max_pulses", "max_reads", "stop_tol", "record_every")
SECTIONS = {
    "study": ("name", "seed", "seeds", "tol", "max_iter", "record_every"),
    "tile": ("shape", "device", "pulses", "io", "half_select", "strength", "prob"),
    "target": ("kind", "rank", "max_abs", "clip"),
    "algorithms": None,  # registry keys, checked separately
}
PARAM_COLUMNS = ("algorithm", "device", "pulses", "io", "half_select", "strength", "prob", "rows", "cols",
                 "target", "rank", "max_abs", "clip", "seed", "study_seed") + BUDGETS
# names an option may not take: they are already columns of the tables
RESERVED = set(PARAM_COLUMNS) | set(METRICS) | set(COUNTERS) | {
    "iteration", "wall_s", "compile_s", "pulse_floor", "cycle_floor", "pulses_over_floor", "cycles_over_floor", "stop",
    "trial_id", "status", "error_type", "error_message", "converged", "iterations", "iterations_to_tol",
    "pulses_to_tol", "reads_to_tol", "tol", "pulses_total", SPECS}

_INT1 = Interval(1, None, integral=True)
_INT0 = Interval(0, None, integral=True)
_POS = Interval(0, None, closed="neither")
_UNIT = Interval(0.0, 1.0)


def load_builtin_algorithms() -> None:
    """Register the built-in algorithms (the one place that names their package)."""
    import progsim_algorithms  # noqa: F401


class _Checker:
    """Raises the project's error shape for study keys: owner is "study '<name>'"."""

    def __init__(self, name: str):
        self.owner = f"study {name!r}"

    def fail(self, key: str, requirement: str, value) -> ValueError:
        return param_error(self.owner, key, requirement, value)

    def unknown(self, key: str, known) -> ValueError:
        return ValueError(f"The '{key}' key of {self.owner} is unknown. Known keys here: {sorted(known)}.")

    def check(self, key: str, value, constraint):
        if not constraint.is_satisfied_by(value):
            raise self.fail(key, str(constraint), value)
        return value

    def table(self, key: str, value, known=None) -> dict:
        if not isinstance(value, Mapping):
            raise self.fail(key, "a table", value)
        if known is not None:
            for k in value:
                if k not in known:
                    raise self.unknown(f"{key}.{k}" if key else k, known)
        return dict(value)

    def axis(self, key: str, value, check) -> list:
        values = list(value) if isinstance(value, list) else [value]
        if not values:
            raise self.fail(key, "a value or a non-empty list of values", value)
        return [check(f"{key}[{i}]" if len(values) > 1 else key, v) for i, v in enumerate(values)]

    def fields(self, cls, fields: dict, key: str, skip=()) -> None:
        """Check each of ``fields`` is an init field of the dataclass ``cls`` (not in ``skip``)
        and satisfies the constraint declared next to it."""
        known = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in skip}
        for k, v in fields.items():
            if k not in known:
                raise self.unknown(f"{key}.{k}", known)
            constraint = known[k].metadata.get("constraint")
            if constraint is not None:
                self.check(f"{key}.{k}", v, constraint)

    def config(self, cls, fields: dict, key: str, base=None):
        """``cls(**fields)`` (or ``replace(base, **fields)``), each field checked against its constraint."""
        self.fields(cls, fields, key)
        try:
            return dataclasses.replace(base, **fields) if base is not None else cls(**fields)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"The '{key}' entry of {self.owner} is invalid: {exc}") from exc


def _label(name: str, fields: dict) -> str:
    return name if not fields else f"{name}(" + ", ".join(f"{k}={fields[k]!r}" for k in sorted(fields)) + ")"


# --------------------------------------------------------------------------- configs from specs


def build_device(spec: Mapping[str, Any], chk: _Checker | None = None, key: str = "tile.device"):
    """The device of a spec ``{"model": name, **fields}`` or ``{"preset": name, **fields}``."""
    chk = chk or _Checker("?")
    fields = {k: v for k, v in spec.items() if k not in ("model", "preset")}
    if "preset" in spec:
        name = chk.check(f"{key}.preset", spec["preset"], Options(*sorted(devices.PRESETS)))
        base = devices.preset(name)
        return chk.config(type(base), fields, key, base=base)
    name = chk.check(f"{key}.model", spec.get("model"), Options(*DEVICE_MODELS))
    return chk.config(getattr(devices, name), fields, key)


def build_pulses(spec: Mapping[str, Any], chk: _Checker | None = None, key: str = "tile.pulses"):
    """The pulse scheme of a spec ``{"scheme": name, **fields}``."""
    chk = chk or _Checker("?")
    name = chk.check(f"{key}.scheme", spec.get("scheme"), Options(*PULSE_SCHEMES))
    return chk.config(getattr(pulse_schemes, name), {k: v for k, v in spec.items() if k != "scheme"}, key)


def build_io(spec: Mapping[str, Any], chk: _Checker | None = None, key: str = "tile.io"):
    """The periphery of a spec: a dict of IO fields."""
    return (chk or _Checker("?")).config(IO, dict(spec), key)


def _device_entry(chk: _Checker, key: str, entry) -> tuple[str, dict]:
    if isinstance(entry, str):
        if entry in devices.PRESETS:
            spec, label = {"preset": entry}, entry
        elif entry in DEVICE_MODELS:
            spec, label = {"model": entry}, entry
        else:
            raise chk.fail(key, f"a preset ({', '.join(sorted(devices.PRESETS))}), a model "
                                f"({', '.join(DEVICE_MODELS)}) or a table", entry)
    else:
        spec = chk.table(key, entry)
        label = spec.pop("label", None)
        if ("model" in spec) == ("preset" in spec):
            raise chk.fail(key, "a table with exactly one of 'model' and 'preset'", entry)
        name = spec.get("model", spec.get("preset"))
        label = label or _label(str(name), {k: v for k, v in spec.items() if k not in ("model", "preset")})
    build_device(spec, chk, key)
    return label, spec


def _pulses_entry(chk: _Checker, key: str, entry) -> tuple[str, dict]:
    if isinstance(entry, str):
        spec, label = {"scheme": entry}, entry
    else:
        spec = chk.table(key, entry)
        label = spec.pop("label", None) or _label(str(spec.get("scheme")),
                                                   {k: v for k, v in spec.items() if k != "scheme"})
    build_pulses(spec, chk, key)
    return label, spec


def _io_entry(chk: _Checker, key: str, entry) -> tuple[str, dict]:
    if entry == "default":
        spec, label = {}, "default"
    elif entry == "perfect":
        spec, label = {"is_perfect": True}, "perfect"
    elif isinstance(entry, str):
        raise chk.fail(key, "'default', 'perfect' or a table of IO fields", entry)
    else:
        spec = chk.table(key, entry)
        label = spec.pop("label", None) or _label("IO", spec)
    build_io(spec, chk, key)
    return label, spec


def _labelled_axis(chk: _Checker, key: str, value, entry) -> list[tuple[str, dict]]:
    out = chk.axis(key, value, lambda k, v: entry(chk, k, v))
    labels = {}
    for label, spec in out:
        if labels.setdefault(label, canonical(spec)) != canonical(spec):
            raise chk.fail(key, "entries with distinct labels (the label is the table column)", label)
    return out


# --------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class Study:
    """A validated programming study; :meth:`trials` lists its trials' parameters in order."""

    name: str
    source: dict
    tol: float
    trial_params: tuple

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str | None = None) -> Study:
        """Validate a study mapping (the TOML file's content) and expand its grid."""
        if not isinstance(data, Mapping):
            raise TypeError(f"A study must be a mapping (a TOML document). Got {type(data).__name__} instead.")
        head = data.get("study", {})
        name = head.get("name", name or "study") if isinstance(head, Mapping) else (name or "study")
        chk = _Checker(name)
        for k in data:
            if k not in SECTIONS:
                raise chk.unknown(k, SECTIONS)
        head = chk.table("study", head, SECTIONS["study"])
        tile = chk.table("tile", data.get("tile", {}), SECTIONS["tile"])
        target = chk.table("target", data.get("target", {}), SECTIONS["target"])
        if "algorithms" not in data:
            raise chk.fail("algorithms", "a table of registry keys (e.g. [algorithms.svd])", None)
        algos = chk.table("algorithms", data["algorithms"])
        chk.check("study.name", name, _NonEmptyStr())
        tol = float(chk.check("study.tol", head.get("tol", 0.05), _POS))
        params = _expand(chk, head, tile, target, algos)
        return cls(name=name, source=dict(data), tol=tol, trial_params=tuple(params))

    def trials(self) -> list[dict]:
        """The trials' parameters: table columns plus ``specs`` (device, pulses, io, option names)."""
        return [dict(p) for p in self.trial_params]


class _NonEmptyStr:
    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, str) and bool(value.strip()) and "/" not in value

    def __str__(self) -> str:
        return "a non-empty str without '/'"


def _toml():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError as exc:
            raise ImportError("Reading study files on Python 3.10 needs the 'tomli' package "
                              "(pip install tomli); Python >= 3.11 has tomllib built in.") from exc
    return tomllib


def loads_study(text: str, name: str = "study") -> Study:
    """A :class:`Study` from TOML text."""
    tomllib = _toml()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"Study {name!r} is not valid TOML: {exc}") from exc
    return Study.from_dict(data, name=name)


def load_study(path) -> Study:
    """A :class:`Study` from a TOML file (its name defaults to the file's stem)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"The 'path' parameter of load_study must be an existing file. Got {str(path)!r} instead.")
    return loads_study(path.read_text(), name=path.stem)


def _seeds(chk: _Checker, value) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return list(range(chk.check("study.seeds", value, _INT1)))
    return chk.axis("study.seeds", value, lambda k, v: chk.check(k, v, _INT0))


def _shape(chk: _Checker, value) -> list[tuple[int, int]]:
    pairs = [value] if isinstance(value, list) and value and not isinstance(value[0], list) else value

    def pair(k, v):
        if not (isinstance(v, list) and len(v) == 2 and all(_INT1.is_satisfied_by(n) for n in v)):
            raise chk.fail(k, "a pair [rows, cols] of ints >= 1", v)
        return int(v[0]), int(v[1])
    return chk.axis("tile.shape", pairs, pair)


def _floats(chk: _Checker, key: str, value, constraint) -> list[float]:
    return [float(v) for v in chk.axis(key, value, lambda k, v: chk.check(k, v, constraint))]


def _rank(chk: _Checker, key: str, v):
    if v != "full" and not _INT1.is_satisfied_by(v):
        raise chk.fail(key, "an int >= 1 or 'full'", v)
    return v


def _algorithm_grids(chk: _Checker, head: dict, algos: dict) -> list[tuple[str, dict, list[str]]]:
    """(key, budgets and options, option names) for every option combination, checked."""
    load_builtin_algorithms()
    available = algorithms_available()
    out = []
    if not algos:
        raise chk.fail("algorithms", "a non-empty table of registry keys", algos)
    defaults = dict(max_iter=head.get("max_iter", 100), record_every=head.get("record_every", 1))
    for key, grids in algos.items():
        if key not in available:
            raise chk.fail(f"algorithms.{key}", f"a registered algorithm, one of {available}", key)
        grids = grids if isinstance(grids, list) else [grids]
        for g, grid in enumerate(grids):
            path = f"algorithms.{key}" if len(grids) == 1 else f"algorithms.{key}[{g}]"
            grid = chk.table(path, grid)
            axes = []
            for name, value in {**defaults, **grid}.items():
                if name == "seed":
                    raise chk.fail(f"{path}.seed", "absent: each trial's algorithm seed comes from its "
                                                   "SeedSequence (study.seed, study.seeds)", value)
                if name in RESERVED and name not in BUDGETS:
                    raise chk.fail(f"{path}.{name}", "an option name that is not a table column", name)
                axes.append([(name, v) for v in (value if isinstance(value, list) else [value])])
            for combo in itertools.product(*axes):
                entry = dict(combo)
                options = {k: v for k, v in entry.items() if k not in BUDGETS}
                _check_budgets(chk, path, entry)
                _check_options(chk, path, key, options)
                out.append((key, entry, list(options)))
    return out


def _check_budgets(chk: _Checker, path: str, entry: dict) -> None:
    for name, constraint in (("max_iter", _INT1), ("record_every", _INT1), ("max_pulses", _POS),
                             ("max_reads", _POS), ("stop_tol", _POS)):
        if name in entry:
            chk.check(f"{path}.{name}", entry[name], constraint)
            if name in ("max_pulses", "max_reads", "stop_tol"):
                entry[name] = float(entry[name])


def _factory(key: str):
    """The factory registered as ``key`` (to read the options it declares), or None."""
    if key not in _registry._REGISTRY:
        ep = _registry._entry_points().get(key)
        return ep.load() if ep is not None else None
    return _registry._REGISTRY[key]


def accepts_option(key: str, name: str) -> bool:
    """Whether the factory registered as ``key`` takes the option ``name``."""
    factory = _factory(key)
    if factory is None:
        return False
    if dataclasses.is_dataclass(factory):
        return any(f.name == name and f.init for f in dataclasses.fields(factory))
    sig = inspect.signature(factory)
    return name in sig.parameters or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def _check_options(chk: _Checker, path: str, key: str, options: dict) -> None:
    factory = _factory(key)
    if factory is not None and dataclasses.is_dataclass(factory):
        chk.fields(factory, options, path, skip=("seed",))
    try:
        get_algorithm(key, **options)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"The '{path}' entry of {chk.owner} is invalid: {exc}") from exc


def _expand(chk: _Checker, head: dict, tile: dict, target: dict, algos: dict) -> list[dict]:
    study_seed = chk.check("study.seed", head.get("seed", 0), _INT0)
    seeds = _seeds(chk, head.get("seeds", 1))
    for k in ("max_iter", "record_every"):
        if k in head:
            chk.check(f"study.{k}", head[k], _INT1)
    shapes = _shape(chk, tile.get("shape", [32, 32]))
    device_axis = _labelled_axis(chk, "tile.device", tile.get("device", "ConstantStep"), _device_entry)
    pulse_axis = _labelled_axis(chk, "tile.pulses", tile.get("pulses", "Stochastic"), _pulses_entry)
    io_axis = _labelled_axis(chk, "tile.io", tile.get("io", "default"), _io_entry)
    modes = chk.axis("tile.half_select", tile.get("half_select", "none"),
                     lambda k, v: chk.check(k, v, Options(*MODES)))
    strengths = _floats(chk, "tile.strength", tile.get("strength", 0.0), _UNIT)
    probs = _floats(chk, "tile.prob", tile.get("prob", 1.0), _UNIT)
    kinds = chk.axis("target.kind", target.get("kind", "normal"), lambda k, v: chk.check(k, v, Options(*TARGET_KINDS)))
    ranks = chk.axis("target.rank", target.get("rank", "full"), lambda k, v: _rank(chk, k, v))
    max_abs = _floats(chk, "target.max_abs", target.get("max_abs", 0.3), _POS)
    clips = _floats(chk, "target.clip", target.get("clip", 0.0), _UNIT)
    for (_, pspec), mode in itertools.product(pulse_axis, modes):
        if mode != "none" and not build_pulses(pspec, chk).pulsed:
            raise chk.fail("tile.half_select", f"'none' with the unpulsed scheme {pspec['scheme']} "
                                               "(half-selection needs pulse trains)", mode)
    for (rows, cols), rank in itertools.product(shapes, ranks):
        if rank != "full" and rank > min(rows, cols):
            raise chk.fail("target.rank", f"<= min(rows, cols) = {min(rows, cols)} for tile.shape "
                                          f"[{rows}, {cols}]", rank)

    out, seen = [], set()
    grids = _algorithm_grids(chk, head, algos)
    for (key, entry, option_names), (dev, dspec), (pul, pspec), (io, iospec), mode, strength, prob, \
            (rows, cols), kind, rank, amax, clip, seed in itertools.product(
                grids, device_axis, pulse_axis, io_axis, modes, strengths, probs, shapes, kinds, ranks,
                max_abs, clips, seeds):
        if mode == "none":
            strength, prob = 0.0, 1.0
        params = dict(algorithm=key, device=dev, pulses=pul, io=io, half_select=mode, strength=strength,
                      prob=prob, rows=rows, cols=cols, target=kind,
                      rank=min(rows, cols) if rank == "full" else int(rank), max_abs=amax, clip=clip,
                      seed=seed, study_seed=study_seed)
        params.update(entry)
        params[SPECS] = dict(device=dspec, pulses=pspec, io=iospec, options=option_names)
        tid = trial_id("programming", params)
        if tid not in seen:
            seen.add(tid)
            out.append(params)
    return out
