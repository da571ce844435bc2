"""Road traffic as a time-stepped SimPy model: vehicles, the sensing target and walking UEs.

Every entity is a SimPy process that updates its state once per simulation step (``dt`` seconds,
SimPy time unit = 1 step), so the order of updates is fixed and runs are reproducible from the
``np.random.Generator`` passed in.

- Vehicles follow the Intelligent Driver Model (IDM) behind the nearest vehicle ahead in their
  lane, change lanes now and then (to a free neighbouring lane of the same direction, moving
  sideways over ``lane_change_time``), enter at their lane's road end as a Poisson stream and
  leave at the other end.
- The target is one vehicle that follows its own speed profile exactly (cruise / accelerate /
  brake / lane change at given times), so a scenario controls its trajectory to the digit.
- UEs walk along the sidewalk at constant speed, turning back at the road's ends.

Config sections (see ``scenarios/road.toml``): ``road``, ``traffic``, ``target``, ``walkers``,
``env.dt``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

ACTIONS = ("cruise", "accelerate", "brake", "lane_change")
#: Bounds that keep a road finite (the scenario schema checks them too): vehicles per lane
#: (road length / (vehicle length + standstill gap)), simulation steps per decision interval and
#: per stress run.
LIMITS = {"max_vehicles_per_lane": 250, "max_steps_per_decision": 1000,
          "max_sim_steps": 2_000_000}


@dataclass
class Vehicle:
    """One vehicle: position (m), lane index, speed and desired speed (m/s) along its heading."""

    x: float
    y: float
    lane: int
    heading: int
    speed: float
    desired: float
    is_target: bool = False
    on_road: bool = True


def validate(cfg: dict[str, Any]) -> None:
    """Check a road scenario's traffic config across fields; raise ``ValueError`` naming the bad
    field. (Types, signs and ranges of single fields are :mod:`scenarios.schema`'s job; the
    checks here also guard configs built in code.)

    Besides consistency (one direction per lane, lane indices, speeds within ``road.max_speed``)
    it bounds the work: a lane holds at most ``LIMITS["max_vehicles_per_lane"]`` vehicles and a
    decision interval at most ``LIMITS["max_steps_per_decision"]`` steps of ``env.dt``.
    """
    road, target, traffic, env = cfg["road"], cfg["target"], cfg["traffic"], cfg["env"]
    vmax = float(road["max_speed"])
    lanes = road["lanes"]
    if not np.isfinite(vmax) or vmax <= 0:
        raise ValueError(f"road.max_speed must be a finite speed > 0 m/s, got {vmax}")
    if len(road["directions"]) != len(lanes):
        raise ValueError("road.directions needs one entry (+1 or -1) per lane in road.lanes")
    if not 0 <= target["lane"] < len(lanes):
        raise ValueError(f"target.lane must index road.lanes (0..{len(lanes) - 1})")
    speeds = [target["speed"]] + [m.get("speed", 0.0) for m in target.get("profile", [])]
    for v in speeds:
        if not 0 <= v <= vmax:
            raise ValueError(f"target speed {v} m/s is outside [0, road.max_speed = {vmax}] m/s")
    for m in target.get("profile", []):
        if m.get("action") not in ACTIONS:
            raise ValueError(f"target.profile action {m.get('action')!r}; "
                             f"expected one of {ACTIONS}")
        if not m.get("at", -1) >= 0:
            raise ValueError("target.profile entries need a time 'at' >= 0 s")
        if m["action"] == "lane_change" and not 0 <= m.get("lane", -1) < len(lanes):
            raise ValueError("a lane_change manoeuvre needs 'lane', an index into road.lanes")
    dt = float(env["dt"])
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"env.dt must be a finite time > 0 s, got {env['dt']!r}")
    steps = float(env["decision_interval"]) / dt
    if not steps <= LIMITS["max_steps_per_decision"]:
        raise ValueError(f"env.decision_interval / env.dt = {steps:.3g} simulation steps per "
                         f"decision; at most {LIMITS['max_steps_per_decision']}: raise env.dt")
    lo, hi = cfg["walkers"]["speed"]
    if not 0 <= lo <= hi:
        raise ValueError("walkers.speed must be [min, max] with 0 <= min <= max (m/s)")
    x_lo, x_hi = map(float, road["x"])
    spacing = float(traffic["length"]) + float(traffic["min_gap"])
    if not (np.isfinite(x_hi - x_lo) and x_hi > x_lo):
        raise ValueError(f"road.x must be [x0, x1] with x0 < x1 m, got {road['x']}")
    if not (float(traffic["length"]) > 0 and float(traffic["min_gap"]) >= 0
            and (x_hi - x_lo) / spacing <= LIMITS["max_vehicles_per_lane"]):
        raise ValueError(
            f"traffic too dense: road.x spans {x_hi - x_lo:g} m, traffic.length + "
            f"traffic.min_gap = {spacing:g} m fits {(x_hi - x_lo) / max(spacing, 1e-300):.3g} "
            f"vehicles per lane, at most {LIMITS['max_vehicles_per_lane']} (length > 0 m, "
            "min_gap >= 0 m)")


class RoadTraffic:
    """The moving road of one episode.

    Args:
        cfg: resolved scenario config (``road``, ``traffic``, ``target``, ``walkers``, ``env``).
        ue_xy: initial UE positions ``(N, 2)`` m (they walk along x from there).
        rng: the episode's generator; everything random is drawn from it.
        target_xy: initial target position ``(2,)`` m, or None for ``target.x``/``target.lane``.
    """

    def __init__(self, cfg: dict[str, Any], ue_xy: np.ndarray, rng: np.random.Generator,
                 target_xy: np.ndarray | None = None) -> None:
        validate(cfg)
        self.cfg, self.rng = cfg, rng
        self._setup(simpy.Environment())
        self.vehicles: list[Vehicle] = []

        tcfg = cfg["target"]
        if target_xy is None:
            lane = int(tcfg["lane"])
            x0, y0 = float(tcfg["x"]), float(self.lanes[lane])
        else:
            x0, y0 = map(float, target_xy)
            lane = int(np.argmin(np.abs(self.lanes - y0)))
        heading = int(self.road["directions"][lane])
        self.target = Vehicle(x0, y0, lane, heading, float(tcfg["speed"]), float(tcfg["speed"]),
                              is_target=True)
        self.vehicles.append(self.target)
        #: the target's manoeuvre state: manoeuvres still to start, current acceleration
        #: (m/s^2), goal speed (m/s) and the duration of its current lane change (s)
        self.maneuver: dict[str, Any] = {
            "pending": sorted(tcfg.get("profile", []), key=lambda m: m["at"]),
            "accel": 0.0, "goal": self.target.speed,
            "side_time": self.traffic["lane_change_time"]}
        self._start("target")

        self._populate()
        for lane_idx in range(len(self.lanes)):
            self._start("arrivals", lane_idx)

        self.ue_xy = np.array(ue_xy, dtype=float)
        lo, hi = cfg["walkers"]["speed"]
        n = len(self.ue_xy)
        self.ue_vel = rng.uniform(lo, hi, n) * rng.choice([-1.0, 1.0], n)
        self._start("walk")

    def _setup(self, sim: simpy.Environment) -> None:
        """What follows from ``cfg`` alone, and an empty process table on ``sim``."""
        cfg = self.cfg
        self.dt = float(cfg["env"]["dt"])
        self.road = cfg["road"]
        self.traffic = cfg["traffic"]
        self.lanes = np.asarray(self.road["lanes"], dtype=float)
        self.x_lo, self.x_hi = map(float, self.road["x"])
        self.max_per_lane = int(LIMITS["max_vehicles_per_lane"])
        self.sim = sim
        # every live SimPy process -> (kind, argument): what a copy needs to restart it
        self._procs: dict[simpy.Process, tuple[str, Any]] = {}

    def _start(self, kind: str, arg: Any = None, resume: int | None = None) -> None:
        """Start process ``kind`` (``target``, ``arrivals`` of lane ``arg``, ``drive`` of
        vehicle ``arg``, ``walk``); ``resume``: it is a copy's, waking ``resume`` steps from now
        where the original was due to wake."""
        body = {"target": self._drive_target, "arrivals": self._arrivals,
                "drive": self._drive, "walk": self._walk}[kind]
        gen = body(resume) if arg is None else body(arg, resume)
        self._procs[self.sim.process(gen)] = (kind, arg)

    def _end(self) -> None:
        """Called by a process as it finishes."""
        self._procs.pop(self.sim.active_process, None)

    # ---- copies -------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Pickle/deepcopy support. SimPy processes are generators, which cannot be pickled,
        but each one's state lives in this object (vehicles, walkers, :attr:`maneuver`), so a
        process is stored as its kind, its argument and when it is next due to wake; the
        processes are listed in SimPy's event order, so a copy wakes them in the same order and
        runs on exactly like the original (no replay: restoring costs nothing per elapsed step).
        The generator is stored as is, so objects sharing it still share it."""
        queue = {id(ev): (eid, t) for t, _prio, eid, ev in self.sim._queue}
        plan = []
        for proc, (kind, arg) in self._procs.items():
            eid, t = queue[id(proc.target)]
            fresh = isinstance(proc.target, simpy.events.Initialize)
            plan.append((eid, kind, arg, None if fresh else int(round(t - self.sim.now))))
        plan.sort(key=lambda p: p[0])
        keep = ("cfg", "rng", "vehicles", "target", "maneuver", "ue_xy", "ue_vel")
        return {**{k: self.__dict__[k] for k in keep}, "now": self.sim.now,
                "processes": [p[1:] for p in plan]}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        now, plan = state.pop("now"), state.pop("processes")
        self.__dict__.update(state)
        self._setup(simpy.Environment(initial_time=now))
        for kind, arg, resume in plan:
            self._start(kind, arg, resume)

    # ---- public state -------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated time since reset, s."""
        return self.sim.now * self.dt

    @property
    def target_xy(self) -> np.ndarray:
        """Target position ``(2,)`` m."""
        return np.array([self.target.x, self.target.y])

    @property
    def target_on_road(self) -> bool:
        return self.x_lo <= self.target.x <= self.x_hi

    def others_xy(self) -> np.ndarray:
        """Positions of the other vehicles on the road ``(V, 2)`` m."""
        pts = [(v.x, v.y) for v in self.vehicles if not v.is_target and v.on_road]
        return np.array(pts, dtype=float).reshape(-1, 2)

    def advance(self, seconds: float) -> None:
        """Run the simulation ``seconds`` forward (a whole number of ``dt`` steps)."""
        steps = int(round(seconds / self.dt))
        if steps < 0 or abs(steps * self.dt - seconds) > 1e-9 * max(1.0, seconds):
            raise ValueError(f"can only advance by a non-negative multiple of dt = {self.dt} s, "
                             f"got {seconds} s")
        if steps:
            self.sim.run(until=self.sim.now + steps)

    # ---- processes ----------------------------------------------------------------------
    def _populate(self) -> None:
        """Initial vehicles, lane by lane; at most ``max_vehicles_per_lane`` per lane (each
        placement advances ``x`` by at least ``length + min_gap > 0``: the loop is bounded)."""
        t = self.traffic
        for lane_idx in range(len(self.lanes)):
            x = self.x_lo + self.rng.exponential(t["initial_spacing"])
            for _ in range(self.max_per_lane):
                if not x < self.x_hi:
                    break
                if abs(x - self.target.x) > 2 * t["length"] or lane_idx != self.target.lane:
                    self._spawn(lane_idx, x)
                x += t["length"] + t["min_gap"] + self.rng.exponential(t["initial_spacing"])

    def _spawn(self, lane: int, x: float) -> None:
        t = self.traffic
        desired = max(1.0, self.rng.normal(t["speed"], t["speed_spread"]))
        desired = min(desired, float(self.road["max_speed"]))
        v = Vehicle(x, float(self.lanes[lane]), lane, int(self.road["directions"][lane]),
                    desired, desired)
        self.vehicles.append(v)
        self._start("drive", v)

    def _arrivals(self, lane: int, resume: int | None = None):
        heading = int(self.road["directions"][lane])
        entry = self.x_lo if heading > 0 else self.x_hi
        rate = float(self.traffic["arrival_rate"])
        if rate <= 0:
            self._end()
            return

        def gap() -> int:
            return max(1, int(round(self.rng.exponential(1 / rate) / self.dt)))

        yield self.sim.timeout(gap() if resume is None else resume)
        while True:
            in_lane = [v for v in self.vehicles if v.on_road and v.lane == lane]
            clear = all(abs(v.x - entry) > 2 * self.traffic["length"] + self.traffic["min_gap"]
                        for v in in_lane)
            if clear and len(in_lane) < self.max_per_lane:
                self._spawn(lane, entry)
            yield self.sim.timeout(gap())

    def _leader_gap(self, v: Vehicle) -> tuple[float, float]:
        """Bumper gap (m) to and speed (m/s) of the nearest vehicle ahead in ``v``'s lane."""
        gap, speed = np.inf, v.speed
        length, x, lane, heading = self.traffic["length"], v.x, v.lane, v.heading
        for o in self.vehicles:
            if o.lane != lane or o is v or not o.on_road:
                continue
            d = (o.x - x) * heading - length
            if -length < d < gap:
                gap, speed = d, o.speed
        return gap, speed

    def _idm_accel(self, v: Vehicle) -> float:
        t = self.traffic
        a, b = t["max_accel"], t["comfort_decel"]
        gap, lead_speed = self._leader_gap(v)
        free = 1.0 - (v.speed / v.desired) ** 4
        if not gap < np.inf:
            return a * free
        s_star = t["min_gap"] + v.speed * t["headway"] + v.speed * (v.speed - lead_speed) / (
            2.0 * math.sqrt(a * b))
        return a * (free - (max(s_star, 0.0) / max(gap, 0.1)) ** 2)

    def _move_sideways(self, v: Vehicle, seconds: float) -> None:
        step = abs((self.lanes[1] - self.lanes[0] if len(self.lanes) > 1 else 1.0)
                   * self.dt / seconds)
        dy = float(self.lanes[v.lane] - v.y)
        v.y += min(max(dy, -step), step)     # np.clip(dy, -step, step), on Python floats

    def _drive(self, v: Vehicle, resume: int | None = None):
        t = self.traffic
        p_change = t["lane_change_rate"] * self.dt
        if resume is not None:
            yield self.sim.timeout(resume)
        while v.on_road:
            v.speed = max(0.0, v.speed + self._idm_accel(v) * self.dt)
            v.x += v.heading * v.speed * self.dt
            if self.rng.random() < p_change:
                self._try_lane_change(v)
            self._move_sideways(v, t["lane_change_time"])
            v.on_road = self.x_lo - 1.0 <= v.x <= self.x_hi + 1.0
            yield self.sim.timeout(1)
        self.vehicles.remove(v)
        self._end()

    def _try_lane_change(self, v: Vehicle) -> None:
        dirs = self.road["directions"]
        options = [k for k in (v.lane - 1, v.lane + 1)
                   if 0 <= k < len(self.lanes) and dirs[k] == v.heading]
        if not options:
            return
        k = options[int(self.rng.integers(len(options)))]
        room = 2 * self.traffic["length"] + self.traffic["min_gap"]
        if all(abs(o.x - v.x) > room for o in self.vehicles if o.on_road and o.lane == k):
            v.lane = k

    def _drive_target(self, resume: int | None = None):
        """Follow the profile exactly: each manoeuvre starts at its ``at`` time."""
        v, m = self.target, self.maneuver
        if resume is not None:
            yield self.sim.timeout(resume)
        while True:
            pending = m["pending"]
            while pending and pending[0]["at"] <= self.time + 1e-9:
                man = pending.pop(0)
                if man["action"] == "lane_change":
                    v.lane = int(man["lane"])
                    m["side_time"] = float(man.get("duration", self.traffic["lane_change_time"]))
                    continue
                m["goal"] = float(man.get("speed", v.speed if man["action"] != "brake" else 0.0))
                if man["action"] == "cruise":
                    v.speed, m["accel"] = m["goal"], 0.0
                else:
                    m["accel"] = abs(float(man.get("rate", self.traffic["max_accel"])))
            accel = m["accel"]
            if accel and v.speed != m["goal"]:
                dv = np.clip(m["goal"] - v.speed, -accel * self.dt, accel * self.dt)
                v.speed = float(v.speed + dv)
            v.x += v.heading * v.speed * self.dt
            self._move_sideways(v, m["side_time"])
            yield self.sim.timeout(1)

    def _walk(self, resume: int | None = None):
        if resume is not None:
            yield self.sim.timeout(resume)
        while True:
            self.ue_xy[:, 0] += self.ue_vel * self.dt
            lo, hi = self.cfg["placement"]["ue_x"]
            out = (self.ue_xy[:, 0] < lo) | (self.ue_xy[:, 0] > hi)
            self.ue_vel[out] *= -1.0
            self.ue_xy[:, 0] = np.clip(self.ue_xy[:, 0], lo, hi)
            yield self.sim.timeout(1)
