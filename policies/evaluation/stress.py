"""The tracking stress experiment: settings, the target-speed sweep and one policy's evaluation.

A ``track-*`` scenario carries a ``[stress]`` section (defaults in :data:`DEFAULTS`):

- ``duration`` (s): length of the run of the scenario as written; ``sweep_duration`` (s):
  observation time per speed of the sweep (default: ``duration``);
  ``threshold``: retention share (0.9 = 90 % of the zero-latency SSNR); ``covered``
  ([x0, x1] m): the stretch of road over which retention counts;
- ``latency`` (``measured`` | ``fixed`` | ``zero``), ``hardware_scale`` (factor on measured
  compute times), ``csi_delay`` (s), ``fixed_latency`` ({policy name: s} for ``fixed``);
- ``speeds`` (m/s): the default target-speed sweep (may be empty).

:func:`run_closed_loop` runs one policy in closed loop (:mod:`cfisac_env.sim.tracking`) beside
its own zero-latency, zero-delay reference on one recorded trajectory; :func:`run` is the whole
experiment (the scenario as written, then the speed sweep, every policy on each trajectory) and
returns a :class:`StressReport`; ``runners/stress.py`` is its command line. The scenario's
``[channel]`` and ``[csi]`` apply: policies decide on estimated CSI, ``csi_delay`` also ages the
fading, and the metrics use the true channel.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from cfisac_env.physics.validation import check_memory
from cfisac_env.sim.sensing import EchoLoop
from cfisac_env.sim.tracking import Latency, LoopResult, Trajectory, closed_loop, record, retention
from cfisac_env.sim.traffic import validate
from cfisac_env.sim.world import steps_of
from policies.evaluation.sensing import HELD, echo_mode, held, loop_summary

if TYPE_CHECKING:
    from scenarios.loader import Scenario

DEFAULTS: dict[str, Any] = {
    "duration": 6.0, "sweep_duration": None, "threshold": 0.9, "covered": [0.0, 100.0],
    "latency": "measured", "hardware_scale": 1.0, "csi_delay": 0.0, "fixed_latency": {},
    "speeds": [],
}


@dataclass
class StressSettings:
    """The ``[stress]`` section of a scenario, completed with :data:`DEFAULTS` and checked."""

    duration: float
    sweep_duration: float
    threshold: float
    covered: tuple[float, float]
    latency: str
    hardware_scale: float
    csi_delay: float
    fixed_latency: dict[str, float] = field(default_factory=dict)
    speeds: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, scenario: Scenario) -> StressSettings:
        """Read ``scenario.config["stress"]``; unknown keys or bad values raise ``ValueError``."""
        if scenario.kind != "road":
            raise ValueError(f"scenario {scenario.name!r} is {scenario.kind!r}; tracking stress "
                             "tests need a road scenario (e.g. track-highway)")
        raw = dict(scenario.config.get("stress", {}))
        unknown = set(raw) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown [stress] fields {sorted(unknown)}; fields: "
                             f"{', '.join(DEFAULTS)}")
        s = {**copy.deepcopy(DEFAULTS), **raw}
        sweep = s["duration"] if s["sweep_duration"] is None else s["sweep_duration"]
        out = cls(float(s["duration"]), float(sweep), float(s["threshold"]),
                  tuple(map(float, s["covered"])), str(s["latency"]),
                  float(s["hardware_scale"]), float(s["csi_delay"]),
                  {k: float(v) for k, v in s["fixed_latency"].items()},
                  [float(v) for v in s["speeds"]])
        out.check()
        return out

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        if not (self.duration > 0 and self.sweep_duration > 0):
            raise ValueError("stress.duration and stress.sweep_duration must be > 0 s, got "
                             f"{self.duration} and {self.sweep_duration}")
        if not self.covered[0] < self.covered[1]:
            raise ValueError(f"stress.covered must be [x0, x1] with x0 < x1 m, got {self.covered}")
        if not self.csi_delay >= 0:
            raise ValueError(f"CSI delay must be >= 0 s, got {self.csi_delay}")
        for what, seconds in [("stress.duration", self.duration),
                              *((f"the {v:g} m/s sweep", self.seconds_at(v)) for v in self.speeds)]:
            if not self.csi_delay < seconds:     # else every decision would use the t = 0 CSI
                raise ValueError(f"the CSI delay ({self.csi_delay:g} s) must be shorter than the "
                                 f"run it delays ({what}: {seconds:g} s)")
        for seconds in self.fixed_latency.values():
            Latency("fixed", seconds)
        Latency(self.latency, 0.0, self.hardware_scale)
        retention(np.zeros(0), np.zeros(0), self.threshold)

    def seconds_at(self, speed: float) -> float:
        """How long the sweep watches a target at ``speed`` m/s (:func:`at_speed`), s."""
        x0, x1 = self.covered
        return min(self.sweep_duration, (x1 - x0) / speed) if speed > 0 else self.sweep_duration

    def latency_for(self, policy: str) -> Latency:
        """The :class:`Latency` of ``policy`` under these settings (``fixed`` needs its entry)."""
        if self.latency == "fixed" and policy not in self.fixed_latency:
            raise ValueError(f"no fixed latency for policy {policy!r}; give one with "
                             f"--fixed-latency {policy}=SECONDS (known: "
                             f"{', '.join(sorted(self.fixed_latency)) or 'none'})")
        return Latency(self.latency, self.fixed_latency.get(policy, 0.0), self.hardware_scale)


def at_speed(scenario: Scenario, speed: float, settings: StressSettings
             ) -> tuple[Scenario, float]:
    """The scenario with its target cruising at ``speed`` m/s across the covered stretch.

    Every speed is watched for the same time, ``T = min(sweep_duration, covered length /
    speed)`` s (the whole stretch when the target crosses it sooner), centred on the middle of
    the covered stretch: the target passes the middle at ``T / 2`` (a stopped target sits there).
    The profile is kept; the sweep is meant for cruising scenarios.

    Returns:
        the modified scenario and ``T`` in s. A speed outside ``[0, road.max_speed]`` raises.
    """
    cfg = copy.deepcopy(scenario.config)
    x0, x1 = settings.covered
    seconds = settings.seconds_at(speed)
    heading = int(cfg["road"]["directions"][int(cfg["target"]["lane"])])
    cfg["target"]["speed"] = float(speed)
    cfg["target"]["x"] = 0.5 * (x0 + x1) - heading * speed * seconds / 2
    validate(cfg)
    return type(scenario)(scenario.name, cfg, scenario.system), seconds


def trajectory(scenario: Scenario, seconds: float, seed: int) -> Trajectory:
    """The road of ``scenario`` for ``seconds``, from one seed: UEs placed by the scenario's
    sampler, then the SimPy traffic and the channel, all from ``np.random.default_rng(seed)``
    (the road ``env.reset(seed=seed)`` drives)."""
    return record(scenario, seconds, np.random.default_rng(seed))


@dataclass
class TrackResult:
    """One policy on one trajectory: its closed ``loop``, its zero-latency ``reference``,
    ``covered (S,)`` bool (target inside the covered stretch), ``retention`` (SSNR) and
    ``retention_sinr`` (the same rule applied to min-SINR), the :class:`Latency` used and how
    its compute time is counted (``timing``: slowest AP or central); in echo mode ``sensing``
    (:func:`policies.evaluation.sensing.loop_summary`: position/angle RMSE, track loss)."""

    policy: str
    timing: str
    latency: Latency
    loop: LoopResult
    reference: LoopResult
    covered: np.ndarray
    retention: float
    retention_sinr: float
    sensing: dict[str, Any] | None = None


def run_closed_loop(name: str, policy: Any, scenario: Scenario, traj: Trajectory,
                    settings: StressSettings, seed: int = 0) -> TrackResult:
    """Closed loop of ``policy`` (registered as ``name``) and its reference on ``traj``. In
    echo mode (``sensing.mode = "echo"``) both loops track the target from their echoes, with
    echo streams from ``seed``; a name ending in :data:`policies.evaluation.sensing.HELD` is the
    communication-only baseline (the first estimate held)."""
    base = name.removesuffix(HELD)
    latency = settings.latency_for(base)
    interval = float(scenario.config["env"]["decision_interval"])
    system = scenario.system
    echo = echo_mode(scenario)
    sc = held(scenario) if name != base else scenario

    def sensing() -> EchoLoop | None:
        return EchoLoop(sc, traj, np.random.default_rng(seed)) if echo else None

    loop = closed_loop(policy, traj, system, interval, latency, settings.csi_delay, sensing())
    same = latency.mode == "zero" and settings.csi_delay == 0
    ref = loop if same else closed_loop(policy, traj, system, interval, sensing=sensing())
    x0, x1 = settings.covered
    covered = (traj.target_xy[:, 0] >= x0) & (traj.target_xy[:, 0] <= x1)
    return TrackResult(name, getattr(policy, "timing", "central"), latency, loop, ref, covered,
                       retention(loop.ssnr, ref.ssnr, settings.threshold, covered),
                       retention(loop.min_sinr, ref.min_sinr, settings.threshold, covered),
                       loop_summary(loop, covered, float(sc.config["sensing"]["lost_std"]))
                       if echo else None)


@dataclass
class StressReport:
    """The outcome of :func:`run`: the ``trajectory`` of the scenario as written (None if
    interrupted before it), ``main`` ``{policy: TrackResult}`` on it, ``sweep``
    ``{speed m/s: {policy: TrackResult}}``, ``failed`` ``{policy: one-line error}`` and whether
    Ctrl-C cut the run short (what finished is kept)."""

    scenario: Scenario
    settings: StressSettings
    seed: int
    trajectory: Trajectory | None = None
    main: dict[str, TrackResult] = field(default_factory=dict)
    sweep: dict[float, dict[str, TrackResult]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def done(self) -> set[str]:
        """Policies with at least one finished result."""
        return set(self.main) | {n for res in self.sweep.values() for n in res}


def run(scenario: Scenario, policies: dict[str, Any], settings: StressSettings, seed: int = 0,
        progress: bool = False, failed: dict[str, str] | None = None) -> StressReport:
    """The tracking stress experiment.

    For the scenario as written (``settings.duration`` s) and for each speed of
    ``settings.speeds`` (:func:`at_speed`), the road is recorded once from ``seed``
    (:func:`trajectory`) and every policy runs in closed loop on it (:func:`run_closed_loop`).

    Args:
        scenario: a road scenario (``track-*``).
        policies: ``{name: policy}`` (:class:`policies.Policy` for ``scenario.system``); a None
            entry is a policy that could not be built and is skipped.
        settings: the stress settings (:meth:`StressSettings.of`, possibly overridden).
        seed: the one seed of every trajectory.
        progress: show a tqdm bar.
        failed: ``{name: error}`` already known (copied into the report).

    A policy raising during its run is recorded in ``failed`` and the others go on; Ctrl-C stops
    the run and the report keeps what finished (``interrupted = True``). In echo mode every
    policy also runs as its communication-only baseline ``"<name> (held)"``.
    """
    report = StressReport(scenario, settings, seed, failed=dict(failed or {}))
    if echo_mode(scenario):
        policies = {**policies, **{n + HELD: p for n, p in policies.items()}}
    cases = [(None, scenario, settings.duration),
             *((v, *at_speed(scenario, v, settings)) for v in settings.speeds)]
    bar = tqdm(total=len(cases) * len(policies), desc="stress", unit="run", disable=not progress)
    try:
        for speed, sc, seconds in cases:
            traj = trajectory(sc, seconds, seed)
            if speed is None:
                report.trajectory = traj
            for name, pol in policies.items():
                bar.set_postfix_str(f"{name} @ {'scenario' if speed is None else f'{speed:g} m/s'}")
                if pol is not None and name.removesuffix(HELD) not in report.failed:
                    try:
                        r = run_closed_loop(name, pol, sc, traj, settings, seed)
                    except Exception as e:  # a failing policy is a result, not a crash
                        report.failed[name] = " ".join(f"{type(e).__name__}: {e}".split())
                    else:
                        (report.main if speed is None else report.sweep.setdefault(speed, {})
                         )[name] = r
                bar.update()
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        bar.close()
    return report


# ---- the command line's side: settings, policies, summaries --------------------------------------

def settings_from(scenario: Scenario, overrides: dict[str, Any],
                  fixed_latency: list[str] | None = None) -> StressSettings:
    """The scenario's ``[stress]`` settings with ``overrides`` (``latency``, ``hardware_scale``,
    ``csi_delay``, ``threshold``, ``speeds``; None entries ignored) and ``NAME=SECONDS`` fixed
    latencies, checked."""
    s = StressSettings.of(scenario)
    for name, value in overrides.items():
        if value is not None:
            setattr(s, name, value)
    for item in fixed_latency or []:
        name, _, seconds = item.rpartition("=")
        try:
            s.fixed_latency[name] = float(seconds)
        except ValueError:
            raise ValueError(f"--fixed-latency wants NAME=SECONDS, got {item!r}") from None
    s.check()
    return s


def make_policy(spec: Any, scenario: Scenario, trained_on: str | None = None) -> Any:
    """Build ``spec`` (a policy spec, options included) for the scenario's system
    (:func:`policies.evaluation.evaluate.build`: learned policies get the scenario's name, so
    its own family's checkpoint, and its channel model); ``trained_on`` names another scenario
    whose checkpoints the learned policies load instead (same system) unless the spec names
    one."""
    from policies.evaluation.evaluate import accepts, constructor_options
    from policies.registry import make, parse_spec, resolve

    ps = parse_spec(spec)
    extra = {}
    if trained_on is not None and "scenario" not in ps.options and accepts(resolve(ps.target),
                                                                           "scenario"):
        extra["scenario"] = trained_on
    opts, _ = constructor_options(ps, scenario, extra)
    return make(ps.target, scenario.system, **opts)


@dataclass
class StressPlan:
    """Everything :func:`prepare` checked: the scenario, settings, ``{row: policy or None}``
    and ``{row: error}`` of the policies that could not be built."""

    scenario: Scenario
    settings: StressSettings
    policies: dict[str, Any]
    failed: dict[str, str]


def prepare(scenario: Scenario, specs: list[str], overrides: dict[str, Any],
            fixed_latency: list[str], trained_on: str | None = None) -> StressPlan:
    """Everything that can fail on bad input, before any simulation: the settings, the policies
    (by row name; fixed latencies are looked up by it) and the sweep's scenarios. A policy that
    cannot be built for another reason than a user error (``ValueError``) is a failed row."""
    from policies.evaluation.evaluate import parse_specs

    settings = settings_from(scenario, overrides, fixed_latency)
    validate(scenario.config)
    longest = max([settings.duration, *map(settings.seconds_at, settings.speeds)])
    steps = steps_of(longest, float(scenario.config["env"]["dt"]))
    check_memory([(scenario.system, scenario.config, steps)],    # a step holds what a drop does
                 unit="recorded steps")
    pols: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for ps in parse_specs(specs):
        settings.latency_for(ps.row)
        try:
            pols[ps.row] = make_policy(ps, scenario, trained_on)
        except ValueError:
            raise
        except Exception as e:  # cannot be built: a failed policy, the others still run
            failed[ps.row] = " ".join(f"{type(e).__name__}: {e}".split())
            pols[ps.row] = None
    for v in settings.speeds:
        at_speed(scenario, v, settings)
    return StressPlan(scenario, settings, pols, failed)


def summary_row(r: TrackResult) -> dict[str, Any]:
    """The figures of one closed loop: retention (SSNR, min-SINR), means over the covered
    steps of the loop and of its zero-latency reference, decisions, landed beams, median
    compute time and latency (s) and covered steps; in echo mode the sensing columns
    (:data:`policies.evaluation.sensing.STRESS_COLUMNS`)."""
    cov = r.covered
    pick = (lambda a: a[cov]) if cov.any() else (lambda a: a)
    return {
        "policy": r.policy, "timing": r.timing, "latency_mode": r.latency.mode,
        "retention": r.retention, "retention_min_sinr": r.retention_sinr,
        "ssnr_mean": float(pick(r.loop.ssnr).mean()),
        "ssnr_ref_mean": float(pick(r.reference.ssnr).mean()),
        "min_sinr_mean": float(pick(r.loop.min_sinr).mean()),
        "min_sinr_ref_mean": float(pick(r.reference.min_sinr).mean()),
        "decisions": int(len(r.loop.decided)),
        "landed": int((r.loop.landed < len(r.loop.ssnr)).sum()),
        "compute_s_median": float(np.median(r.loop.compute_s)) if r.loop.compute_s.size
        else float("nan"),
        "latency_s_median": float(np.median(r.loop.latency_s)) if r.loop.latency_s.size
        else float("nan"),
        "covered_steps": int(cov.sum()),
        **({} if r.sensing is None else r.sensing),
    }
