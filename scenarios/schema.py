"""What a scenario file may contain: every section, every field, its type and range.

:data:`SECTIONS` maps a section name to ``{field: check}`` (or to None for a section validated
by the module that reads it, e.g. ``channel`` and ``csi``); :data:`REQUIRED` lists the fields a
scenario of each kind must have. :func:`validate` applies both and raises one ``ValueError``
naming the field, what it expects and what exists. Extend the schema by adding entries here.

Bounds that keep a run finite (:data:`LIMITS`): a road lane holds at most
``max_vehicles_per_lane`` vehicles (road length / (vehicle length + standstill gap)), a decision
interval at most ``max_steps_per_decision`` simulation steps, a stress run at most
``max_sim_steps`` steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Check = Callable[[str, Any], None]  # (field path, value) -> None, or ValueError

REWARDS = ("sensing", "communication", "weighted")
LATENCY_MODES = ("measured", "fixed", "zero")
MANOEUVRES = ("cruise", "accelerate", "brake", "lane_change")
KINDS = ("static", "road")
LIMITS = {"max_aps": 256, "max_lanes": 16, "max_antennas": 4096, "max_users": 1024,
          "max_vehicles_per_lane": 250, "max_steps_per_decision": 1000,
          "max_sim_steps": 2_000_000}


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


POSITIVE = number(0, lo_open=True)
NONNEG = number(0)
COORD = number()
SPEED = number(0, unit="m/s")

SECTIONS: dict[str, dict[str, Check] | None] = {
    "system": {
        "ap_xy": array(array(COORD, 2, 2), 1, LIMITS["max_aps"]),
        "antennas": number(1, LIMITS["max_antennas"], integer=True),
        "users": number(1, LIMITS["max_users"], integer=True),
        "power": either(POSITIVE, array(POSITIVE, 1), expected="a finite power > 0 W or one "
                        "per AP"),
        "ue_noise": number(0, lo_open=True, unit="W"),
        "radar_noise": number(0, lo_open=True, unit="W"),
        "sensing_gain": NONNEG,
        "spacing": POSITIVE,
    },
    "placement": {k: pair(COORD) for k in ("ue_x", "ue_y", "target_x", "target_y")},
    "env": {
        "reward": text(*REWARDS),
        "beta": number(0, 1),
        "episode_steps": number(1, integer=True),
        "dt": number(0, lo_open=True, unit="s"),
        "decision_interval": number(0, lo_open=True, unit="s"),
    },
    "road": {
        "x": pair(COORD, strict=True),
        "lanes": array(COORD, 1, LIMITS["max_lanes"]),
        "directions": array(either(number(1, 1), number(-1, -1), expected="+1 or -1"), 1,
                            LIMITS["max_lanes"]),
        "max_speed": number(0, lo_open=True, unit="m/s"),
    },
    "traffic": {
        "speed": SPEED,
        "speed_spread": NONNEG,
        "initial_spacing": NONNEG,
        "arrival_rate": number(0, unit="vehicles/s"),
        "max_accel": number(0, lo_open=True, unit="m/s^2"),
        "comfort_decel": number(0, lo_open=True, unit="m/s^2"),
        "min_gap": number(0, unit="m"),
        "headway": number(0, unit="s"),
        "lane_change_rate": number(0, unit="per s"),
        "lane_change_time": number(0, lo_open=True, unit="s"),
        "length": number(0, lo_open=True, unit="m"),
    },
    "target": {
        "lane": number(0, integer=True),
        "x": COORD,
        "speed": SPEED,
        "profile": array(table({
            "at": number(0, unit="s"), "action": text(*MANOEUVRES), "speed": SPEED,
            "rate": number(0, lo_open=True, unit="m/s^2"), "lane": number(0, integer=True),
            "duration": number(0, lo_open=True, unit="s")}, required=("at", "action"))),
    },
    "walkers": {"speed": pair(number(0), unit="m/s")},
    "stress": {
        "duration": number(0, lo_open=True, unit="s"),
        "sweep_duration": number(0, lo_open=True, unit="s"),
        "threshold": number(0, 1, lo_open=True),
        "covered": pair(COORD, strict=True),
        "latency": text(*LATENCY_MODES),
        "hardware_scale": number(0, lo_open=True),
        "csi_delay": number(0, unit="s"),
        "fixed_latency": mapping(number(0, unit="s")),
        "speeds": array(SPEED),
    },
    # Read and checked by the channel / CSI models themselves.
    "channel": None,
    "csi": None,
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
    if "stress" in cfg:
        for key in ("duration", "sweep_duration"):
            seconds = cfg["stress"].get(key)
            dt = cfg["env"].get("dt")
            if seconds is not None and dt and seconds / dt > LIMITS["max_sim_steps"]:
                raise ValueError(f"stress.{key} = {seconds} s is {seconds / dt:.3g} steps of "
                                 f"env.dt = {dt} s; at most {LIMITS['max_sim_steps']}")


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
}
