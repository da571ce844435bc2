"""What a scenario file may contain: every section, every field, its type and range.

:data:`SECTIONS` maps a section name to ``{field: check}`` (or to None for a section validated
by the module that reads it, e.g. ``channel`` and ``csi``); :data:`REQUIRED` lists the fields a
scenario of each kind must have. :func:`validate` applies both and raises one ``ValueError``
naming the field, what it expects and what exists. Extend the schema by adding entries here.

Bounds that keep a run finite (:data:`LIMITS`): a road lane holds at most
``max_vehicles_per_lane`` vehicles (road length / (vehicle length + standstill gap)), a decision
interval at most ``max_steps_per_decision`` simulation steps, a stress run at most
``max_sim_steps`` steps.

Bounds that keep every number finite (:data:`RANGES`): each physical quantity lies in a range
wide enough for any physical use and narrow enough that no product the env, the policies or
the metrics form (in float32 included) overflows or underflows to NaN or inf: coordinates
within ``max_coordinate`` m, AP budgets and noise powers within ``[min, max]`` W, and so on.
The worst case behind the power and noise bounds: a received power of
``L^2 M P_max`` over ``noise_min`` (``256^2 * 4096 * 1e6 / 1e-15 = 2.7e32``) stays below
float32's largest number, ``3.4e38``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from cfisac_env.physics.scoring import REWARDS
from cfisac_env.physics.validation import MAX_COORDINATE
from cfisac_env.sim.tracking import LATENCY_MODES
from cfisac_env.sim.traffic import ACTIONS
from cfisac_env.sim.traffic import LIMITS as TRAFFIC_LIMITS

Check = Callable[[str, Any], None]  # (field path, value) -> None, or ValueError

MANOEUVRES = ACTIONS
KINDS = ("static", "road")
LIMITS = {"max_aps": 256, "max_lanes": 16, "max_antennas": 4096, "max_users": 1024,
          **TRAFFIC_LIMITS}
RANGES = {"max_coordinate": MAX_COORDINATE,   # m: 1000 km from the origin
          "power": (1e-6, 1e6),           # W per AP
          "noise": (1e-15, 1e15),         # W, UE and radar receivers
          "max_sensing_gain": 1e6,
          "max_spacing": 100.0,           # antenna spacing, wavelengths
          "max_speed": 1e3,               # m/s, every speed and road.max_speed
          "max_accel": 1e3,               # m/s^2
          "min_accel": 1e-3,              # m/s^2: IDM divides by sqrt(a b)
          "max_length": 1e6,              # m: gaps, vehicle lengths, spacings
          "max_seconds": 1e6,             # s: every duration and time
          "max_rate": 1e3,                # per s: lane changes, vehicle arrivals
          "min_arrival_rate": 1e-6,       # vehicles/s: a slower stream is 0 (no arrivals)
          "max_dt": 10.0,                 # s, one simulation step
          "max_scale": 1e6}               # hardware scale


def _fail(path: str, expected: str, value: Any) -> None:
    raise ValueError(f"scenario field {path} must be {expected}, got {value!r}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           integer: bool = False, unit: str = "") -> Check:
    """A finite number (an integer when ``integer``) in ``[lo, hi]`` (``(lo, hi]`` when
    ``lo_open``); None = unbounded."""
    left = "(" if lo_open else "["
    what = ("an integer" if integer else "a finite number") + (
        f" in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        if lo is not None or hi is not None else "") + (f" {unit}" if unit else "")

    def check(path: str, v: Any) -> None:
        if not _is_number(v) or not math.isfinite(v) or (integer and int(v) != v):
            _fail(path, what, v)
        if lo is not None and (v < lo or (lo_open and v == lo)):
            _fail(path, what, v)
        if hi is not None and v > hi:
            _fail(path, what, v)

    return check


def text(*choices: str) -> Check:
    """A string (one of ``choices`` when given)."""
    def check(path: str, v: Any) -> None:
        if not isinstance(v, str) or (choices and v not in choices):
            _fail(path, f"one of {choices}" if choices else "a string", v)
    return check


def pair(each: Check, strict: bool = False, unit: str = "m") -> Check:
    """``[lo, hi]`` of two values passing ``each`` with ``lo <= hi`` (``lo < hi`` if strict)."""
    def check(path: str, v: Any) -> None:
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            _fail(path, f"[min, max] ({unit})", v)
        each(path, v[0])
        each(path, v[1])
        if v[0] > v[1] or (strict and v[0] == v[1]):
            _fail(path, f"[min, max] with min {'<' if strict else '<='} max ({unit})", v)
    return check


def array(each: Check, min_len: int = 0, max_len: int | None = None) -> Check:
    """A list of ``min_len`` .. ``max_len`` values passing ``each``."""
    def check(path: str, v: Any) -> None:
        if not isinstance(v, (list, tuple)) or len(v) < min_len or (
                max_len is not None and len(v) > max_len):
            _fail(path, f"a list of {min_len} to {max_len or 'any number of'} entries", v)
        for k, item in enumerate(v):
            each(f"{path}[{k}]", item)
    return check


def either(*checks: Check, expected: str) -> Check:
    """Passes when any of ``checks`` does."""
    def check(path: str, v: Any) -> None:
        for c in checks:
            try:
                c(path, v)
                return
            except ValueError:
                pass
        _fail(path, expected, v)
    return check


def table(fields: dict[str, Check], required: tuple[str, ...] = ()) -> Check:
    """An inline table with only ``fields`` (``required`` ones present)."""
    def check(path: str, v: Any) -> None:
        if not isinstance(v, dict):
            _fail(path, f"a table with fields {', '.join(fields)}", v)
        _fields(path, v, fields)
        for key in required:
            if key not in v:
                raise ValueError(f"scenario field {path} needs {key!r}")
    return check


def mapping(each: Check) -> Check:
    """A table of arbitrary names, each value passing ``each``."""
    def check(path: str, v: Any) -> None:
        if not isinstance(v, dict):
            _fail(path, "a table {name = value}", v)
        for k, item in v.items():
            each(f"{path}.{k}", item)
    return check


R = RANGES
POSITIVE = number(0, lo_open=True)
NONNEG = number(0)
COORD = number(-R["max_coordinate"], R["max_coordinate"], unit="m")
SPEED = number(0, R["max_speed"], unit="m/s")
SECONDS = number(0, R["max_seconds"], unit="s")
LENGTH = number(0, R["max_length"], unit="m")
NOISE = number(*R["noise"], unit="W")
POWER = number(*R["power"], unit="W")


def positive(hi: float, unit: str = "") -> Check:
    """A finite number in ``(0, hi]``."""
    return number(0, hi, lo_open=True, unit=unit)


SECTIONS: dict[str, dict[str, Check] | None] = {
    "system": {
        "ap_xy": array(array(COORD, 2, 2), 1, LIMITS["max_aps"]),
        "antennas": number(1, LIMITS["max_antennas"], integer=True),
        "users": number(1, LIMITS["max_users"], integer=True),
        "power": either(POWER, array(POWER, 1), expected=f"a power in {list(R['power'])} W or "
                        "one per AP"),
        "ue_noise": NOISE,
        "radar_noise": NOISE,
        "sensing_gain": number(0, R["max_sensing_gain"]),
        "spacing": positive(R["max_spacing"], "wavelengths"),
    },
    "placement": {**{k: pair(COORD) for k in ("ue_x", "ue_y", "target_x", "target_y")},
                  "ue_y_lines": array(COORD, 1, LIMITS["max_lanes"])},
    "env": {
        "reward": text(*REWARDS),
        "beta": number(0, 1),
        "episode_steps": number(1, integer=True),
        "dt": positive(R["max_dt"], "s"),
        "decision_interval": positive(R["max_seconds"], "s"),
    },
    "road": {
        "x": pair(COORD, strict=True),
        "lanes": array(COORD, 1, LIMITS["max_lanes"]),
        "directions": array(either(number(1, 1), number(-1, -1), expected="+1 or -1"), 1,
                            LIMITS["max_lanes"]),
        "max_speed": positive(R["max_speed"], "m/s"),
    },
    "traffic": {
        "speed": SPEED,
        "speed_spread": SPEED,
        "initial_spacing": LENGTH,
        "arrival_rate": either(number(0, 0), number(R["min_arrival_rate"], R["max_rate"]),
                               expected=f"0 or a rate in [{R['min_arrival_rate']}, "
                               f"{R['max_rate']}] vehicles/s"),
        "max_accel": number(R["min_accel"], R["max_accel"], unit="m/s^2"),
        "comfort_decel": number(R["min_accel"], R["max_accel"], unit="m/s^2"),
        "min_gap": LENGTH,
        "headway": SECONDS,
        "lane_change_rate": number(0, R["max_rate"], unit="per s"),
        "lane_change_time": positive(R["max_seconds"], "s"),
        "length": positive(R["max_length"], "m"),
    },
    "target": {
        "lane": number(0, integer=True),
        "x": COORD,
        "speed": SPEED,
        "profile": array(table({
            "at": SECONDS, "action": text(*MANOEUVRES), "speed": SPEED,
            "rate": positive(R["max_accel"], "m/s^2"), "lane": number(0, integer=True),
            "duration": positive(R["max_seconds"], "s")}, required=("at", "action"))),
    },
    "walkers": {"speed": pair(SPEED, unit="m/s")},
    "stress": {
        "duration": positive(R["max_seconds"], "s"),
        "sweep_duration": positive(R["max_seconds"], "s"),
        "threshold": number(0, 1, lo_open=True),
        "covered": pair(COORD, strict=True),
        "latency": text(*LATENCY_MODES),
        "hardware_scale": positive(R["max_scale"]),
        "csi_delay": SECONDS,
        "fixed_latency": mapping(SECONDS),
        "speeds": array(SPEED),
    },
    # Which learned checkpoints belong to this scenario's system: a checkpoint family name
    # (``"street"``: the files made for it) or ``"none"``; never another system's by default.
    "learned": {"checkpoints": text()},
    # Read and checked by the channel / CSI models themselves.
    "channel": None,
    "csi": None,
    "sensing": None,   # cfisac_env.physics.echo.SensingConfig
}
TOP_LEVEL: dict[str, Check] = {"description": text(), "kind": text(*KINDS), "base": text()}

REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "static": {
        "system": (),
        "placement": ("ue_x", "ue_y", "target_x", "target_y"),
        "env": ("reward", "beta", "episode_steps"),
    },
}
REQUIRED["road"] = {
    **REQUIRED["static"],
    "env": ("reward", "beta", "episode_steps", "dt", "decision_interval"),
    "road": ("x", "lanes", "directions", "max_speed"),
    "traffic": tuple(SECTIONS["traffic"]),
    "target": ("lane", "x", "speed"),
    "walkers": ("speed",),
}


def _fields(path: str, values: dict[str, Any], fields: dict[str, Check]) -> None:
    for key, value in values.items():
        if key not in fields:
            raise ValueError(f"unknown scenario field {path}.{key}; fields of {path}: "
                             f"{', '.join(fields)}")
        fields[key](f"{path}.{key}", value)


def validate(cfg: dict[str, Any], name: str = "scenario") -> None:
    """Check a merged scenario config against :data:`SECTIONS` and :data:`REQUIRED`.

    Raises:
        ValueError: an unknown section or field (listing those that exist), a missing one, a
            wrong type, a non-finite number, a value out of range or a range out of order.
    """
    for key, value in cfg.items():
        if key in TOP_LEVEL:
            TOP_LEVEL[key](key, value)
        elif key in SECTIONS:
            if not isinstance(value, dict):
                raise ValueError(f"scenario {name}: [{key}] must be a table, got {value!r}")
            fields = SECTIONS[key]
            if fields is not None:
                _fields(key, value, fields)
        else:
            raise ValueError(f"unknown section or field {key!r} in scenario {name}; sections: "
                             f"{', '.join(SECTIONS)}; top-level fields: {', '.join(TOP_LEVEL)}")
    kind = cfg.get("kind")
    if kind not in KINDS:
        raise ValueError(f"scenario {name}: kind must be one of {KINDS}, got {kind!r}")
    for section, keys in REQUIRED[kind].items():
        if section not in cfg:
            raise ValueError(f"scenario {name} has no [{section}] section; a {kind} scenario "
                             f"needs [{'], ['.join(REQUIRED[kind])}]")
        missing = [k for k in keys if k not in cfg[section]]
        if missing:
            raise ValueError(f"scenario {name}: [{section}] lacks {', '.join(missing)}")
    system = cfg["system"]
    power, aps = system.get("power"), system.get("ap_xy")
    if isinstance(power, list) and aps is not None and len(power) not in (1, len(aps)):
        raise ValueError(f"scenario field system.power must be one budget or one per AP "
                         f"(L = {len(aps)}), got {len(power)}")
    lines, ue_y = cfg.get("placement", {}).get("ue_y_lines"), cfg.get("placement", {}).get("ue_y")
    if lines is not None and ue_y is not None and (min(lines) < ue_y[0] or max(lines) > ue_y[1]):
        raise ValueError(f"scenario field placement.ue_y_lines {lines} must lie within "
                         f"placement.ue_y {ue_y}")
    if "stress" in cfg:
        stress, dt = cfg["stress"], cfg["env"].get("dt")
        for key in ("duration", "sweep_duration"):
            seconds = stress.get(key)
            if seconds is not None and dt and seconds / dt > LIMITS["max_sim_steps"]:
                raise ValueError(f"stress.{key} = {seconds} s is {seconds / dt:.3g} steps of "
                                 f"env.dt = {dt} s; at most {LIMITS['max_sim_steps']}")
        check_csi_delay(stress.get("csi_delay", 0.0), stress.get("duration"))


def check_csi_delay(delay: float, duration: float | None, what: str = "stress.duration") -> None:
    """A CSI delay must be shorter than the run it delays (else every decision would use the
    CSI of t = 0): ``ValueError`` otherwise."""
    if duration is not None and not delay < duration:
        raise ValueError(f"the CSI delay ({delay:g} s) must be shorter than the run it delays "
                         f"({what} = {duration:g} s)")


def expected(check: Check) -> str:
    """What ``check`` accepts, in the words of its own error message (for the docs)."""
    try:
        check("field", object())
    except ValueError as e:
        text = str(e)
        return text.split(" must be ", 1)[1].rsplit(", got", 1)[0] if " must be " in text else text
    return "anything"


#: One line of meaning per field (``section.field``) or per self-validated section, shown in the
#: generated scenario-field reference; a test checks every field of :data:`SECTIONS` has one.
DESCRIPTIONS: dict[str, str] = {
    "system.ap_xy": "AP positions `[[x, y], ...]`, m; L = their number",
    "system.antennas": "antennas per AP, M (ULA along x)",
    "system.users": "number of UEs, N (the `users=` shortcut)",
    "system.power": "per-AP power budget P_l, W (one value or one per AP)",
    "system.ue_noise": "UE receiver noise power sigma_n^2, W",
    "system.radar_noise": "radar receiver noise power sigma_r^2, W",
    "system.sensing_gain": "target reflection (sensing) gain sigma_s^2",
    "system.spacing": "antenna spacing over wavelength (0.5: half-wavelength ULA)",
    "placement.ue_x": "UE x range of a static drop, uniform, m",
    "placement.ue_y": "UE y range of a static drop, uniform, m",
    "placement.target_x": "target x range of a static drop, uniform, m",
    "placement.target_y": "target y range of a static drop, uniform, m",
    "placement.ue_y_lines": "lines y a UE stands on, one picked uniformly per UE (UEs on both "
                            "sidewalks), m; within `ue_y`",
    "env.reward": "reward of `step`: sensing (g1), communication (g2) or weighted",
    "env.beta": "weight of min-SINR in the weighted reward `(1 - beta) g1 + beta g2`",
    "env.episode_steps": "decisions per episode before truncation",
    "env.dt": "simulation step of the road traffic, s",
    "env.decision_interval": "time a decision's beams are held on the road, s",
    "road.x": "road extent along x, m",
    "road.lanes": "lane centre lines (y), m",
    "road.directions": "driving direction of each lane (+1: +x, -1: -x)",
    "road.max_speed": "speed limit of the road, m/s",
    "traffic.speed": "mean vehicle speed, m/s",
    "traffic.speed_spread": "spread of the vehicles' desired speeds, m/s",
    "traffic.initial_spacing": "gap between vehicles at t = 0, m",
    "traffic.arrival_rate": "vehicles entering each lane, per s",
    "traffic.max_accel": "vehicle acceleration limit, m/s^2",
    "traffic.comfort_decel": "comfortable braking deceleration, m/s^2",
    "traffic.min_gap": "standstill gap to the vehicle ahead, m",
    "traffic.headway": "desired time headway to the vehicle ahead, s",
    "traffic.lane_change_rate": "lane changes per vehicle per s",
    "traffic.lane_change_time": "duration of one lane change, s",
    "traffic.length": "vehicle length, m",
    "target.lane": "lane index of the target vehicle at t = 0",
    "target.x": "target x at t = 0, m",
    "target.speed": "target's desired speed, m/s",
    "target.profile": "scripted manoeuvres `{at, action, speed, rate, lane, duration}`",
    "walkers.speed": "UE walking speed range on the sidewalk, m/s",
    "learned.checkpoints": "the checkpoint family learned policies load for this system (files "
                           "made for it), or `none`; never another system's",
    "stress.duration": "length of a stress run, s",
    "stress.sweep_duration": "length of each run of a speed sweep, s",
    "stress.threshold": "share of the beams' SSNR/SINR that counts as retained",
    "stress.covered": "x range where the target counts as covered, m",
    "stress.latency": "how a policy's compute time delays its beams: measured, fixed or zero",
    "stress.hardware_scale": "factor on measured compute time (slower/faster hardware)",
    "stress.csi_delay": "age of the CSI a decision sees, s",
    "stress.fixed_latency": "per-policy latency for `latency = \"fixed\"`, s",
    "stress.speeds": "target speeds of the speed sweep, m/s",
    "channel": "channel model (`model = \"los\" | \"rician\" | \"cluster\"`, K factor, path "
               "loss, ageing); checked by `cfisac_env.physics.propagation`",
    "csi": "CSI the policies see: estimation error `nmse`, target angle error; checked by "
           "`cfisac_env.physics.estimation`",
    "sensing": "where the target column comes from: `mode = \"oracle\"` (the truth) or "
               "`\"echo\"` (tracked from the APs' echoes: snapshots, detector, EKF settings); "
               "checked by `cfisac_env.physics.echo` (docs/sensing.md)",
}
