"""Closed-loop, latency-aware beam tracking on the moving road.

The road is simulated once (:func:`record`: :meth:`cfisac_env.sim.world.World.advance`, the same
stepping the Gymnasium environment uses) and its positions, TRUE channel and ESTIMATED channel at
every simulation step ``dt`` are replayed for each policy, so every policy and its zero-latency
reference see exactly the same trajectory and the same channel realisation. On the replay, a
controller SimPy process per policy (:func:`closed_loop`) does, at each decision instant
``t_k = k * decision_interval``:

1. take the estimated CSI of ``csi_delay`` seconds earlier (CSI ageing: the positions have moved
   and, under a fading ``[channel]``, the scattered part has decorrelated since);
2. ask the policy for beams (:meth:`policies.Policy.decide`, which also times the call);
3. wait the compute time (:class:`Latency`: measured wall time x hardware scale, a fixed time, or
   zero), keeping the previous beams applied while the road moves on; then apply the new beams;
4. start the next decision at the first decision instant at or after the landing (a controller
   still busy at ``t_{k+1}`` skips that instant: slow policies decide less often).

Metrics are sampled at every step against the TRUE channel of that step with
:func:`cfisac_env.physics.scoring.score` (budget projection included), as the environment scores
its held
beams.

Conventions:

- Time is quantised to the step by :func:`cfisac_env.sim.world.steps_of`: a compute time or CSI
  delay becomes ``round(seconds / dt)`` steps (half up), so a compute time under ``dt / 2``
  lands in the step it was asked in.
- The world before ``t = 0`` is taken as frozen at its ``t = 0`` state: CSI older than ``t = 0``
  is the ``t = 0`` CSI, and the beams applied from ``t = 0`` until the first beams land are those
  of the first decision, which always uses the ``t = 0`` CSI (a warm start, as if they had been
  computed before ``t = 0``). A stopped target therefore keeps retention 1 whatever the latency
  (when its SSNR does not depend on where the walking UEs are).
- Retention (:func:`retention`) is the share of samples whose SSNR is at least ``threshold`` (0.9)
  times the SSNR the same policy reaches at that instant with zero latency and zero CSI delay
  (the same loop, the same decision instants, on the same trajectory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from cfisac_env.physics.scoring import score
from cfisac_env.physics.system import System
from cfisac_env.sim.sensing import EchoLoop
from cfisac_env.sim.world import World, interval_steps, steps_of

if TYPE_CHECKING:
    from scenarios.loader import Scenario

LATENCY_MODES = ("measured", "fixed", "zero")
__all__ = ["LATENCY_MODES", "Latency", "LoopResult", "Trajectory", "closed_loop", "record",
           "retention", "steps_of"]


@dataclass(frozen=True)
class Latency:
    """How long a policy's beams take to land after its decision instant.

    Args:
        mode: ``"measured"`` (wall time of each :meth:`~policies.Policy.decide` call, as that
            method counts it, times ``scale``), ``"fixed"`` (``seconds`` per decision) or
            ``"zero"``.
        seconds: the compute time per decision in ``fixed`` mode, s (>= 0).
        scale: hardware factor on measured times (> 0; 2 = hardware twice as slow as this one).
    """

    mode: str = "zero"
    seconds: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in LATENCY_MODES:
            raise ValueError(f"latency mode must be one of {LATENCY_MODES}, got {self.mode!r}")
        if not float(self.seconds) >= 0.0:
            raise ValueError(f"latency must be >= 0 s, got {self.seconds!r}")
        if not float(self.scale) > 0.0:
            raise ValueError(f"hardware scale factor must be > 0, got {self.scale!r}")

    def of(self, measured: float) -> float:
        """Compute time (s) charged for a call that took ``measured`` wall seconds."""
        return {"measured": measured * self.scale, "fixed": float(self.seconds),
                "zero": 0.0}[self.mode]


@dataclass
class Trajectory:
    """One simulated road at every step: ``ue_xy (S, N, 2)``, ``target_xy (S, 2)``,
    ``target_speed (S,)`` (m, m/s), ``others_xy`` (list of ``(V_s, 2)`` m, other vehicles), the
    step ``dt`` (s), and the channel: ``true_csi`` and ``observed`` (estimated) ``(S, L, 2, M,
    Q)`` float32. Step ``s`` is time ``s * dt``."""

    dt: float
    ue_xy: np.ndarray
    target_xy: np.ndarray
    target_speed: np.ndarray
    others_xy: list[np.ndarray]
    true_csi: np.ndarray
    observed: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.target_xy)

    @property
    def time(self) -> np.ndarray:
        """``(S,)`` s."""
        return np.arange(self.steps) * self.dt

    def csi(self, system: System | None = None) -> np.ndarray:
        """True CSI at every step, ``(S, L, 2, M, Q)`` float32 (``system``: unused, kept for
        callers of the LoS-only version)."""
        return self.true_csi


def record(scenario: Scenario, seconds: float, rng: np.random.Generator) -> Trajectory:
    """Simulate a ``road`` scenario for ``seconds`` and record every step.

    The world is reset from ``rng`` exactly as the environment's ``reset(seed)`` does (UEs from
    the placement sampler, then the SimPy traffic; the channel from streams spawned from it), so
    ``record(sc, T, np.random.default_rng(s))`` is the road ``env.reset(seed=s)`` drives.

    Args:
        scenario: a resolved ``road`` scenario.
        seconds: length of the run, s (> 0); ``steps_of(seconds, dt)`` steps are recorded.
        rng: the run's generator.
    """
    if scenario.kind != "road":
        raise ValueError(f"a tracking run needs a road scenario, {scenario.name!r} is "
                         f"{scenario.kind!r}")
    world = World(scenario, 1)
    n = steps_of(seconds, world.dt)
    if n < 1:
        raise ValueError(f"a tracking run needs at least one step of {world.dt} s, got {seconds} s")
    world.reset([rng])
    seg = world.advance(n, detail=True)
    return Trajectory(world.dt, seg.ue_xy[0], seg.target_xy[0], seg.target_speed[0],
                      seg.others_xy[0], seg.true_csi[0], seg.observed[0])


@dataclass
class LoopResult:
    """One policy's closed loop on one trajectory.

    ``ssnr (S,)``, ``min_sinr (S,)``, ``sinr (S, N)``: linear metrics at every step against the
    true positions. Per decision ``d``: ``decided (D,)`` step of the decision instant,
    ``landed (D,)`` step its beams took effect (``>= S``: never within the run),
    ``compute_s (D,)`` wall seconds of the call and ``latency_s (D,)`` the compute time charged.
    ``applied (S,)``: index of the decision in effect at each step (-1: the warm-start beams).
    ``sensing``: in echo mode, per decision (:meth:`cfisac_env.sim.sensing.EchoLoop.record`):
    ``position_error (D,)`` m, ``angle_error (D, L)`` rad, ``track_lost (D,)`` of the
    prediction each decision was shown, ``position_std (D,)`` m its largest axis; else None.
    """

    ssnr: np.ndarray
    min_sinr: np.ndarray
    sinr: np.ndarray
    decided: np.ndarray
    landed: np.ndarray
    compute_s: np.ndarray
    latency_s: np.ndarray
    applied: np.ndarray
    sensing: dict[str, np.ndarray] | None = None

    @property
    def beam_age_steps(self) -> np.ndarray:
        """``(S,)`` steps since the decision instant of the beams in effect (warm start: ``s``)."""
        s = np.arange(len(self.ssnr))
        start = np.where(self.applied >= 0, self.decided[np.maximum(self.applied, 0)], 0)
        return s - start


def _controller(sim: simpy.Environment, policy: Any, traj: Trajectory, every: int,
                delay: int, latency: Latency, dt: float, log: list[tuple[Any, ...]],
                sensing: EchoLoop | None = None):
    """The SimPy process of one policy's controller (time unit: one step)."""
    observed = traj.observed
    steps, k = len(observed), 0
    while k * every < steps:
        decided = int(sim.now)
        obs = observed[max(0, decided - delay)]
        if sensing is not None:                             # target column from the track
            obs = sensing.observe(obs, decided, traj)
        dec = policy.decide(obs[None])
        charged = latency.of(dec.seconds)
        wait = steps_of(charged, dt)
        log.append((decided, decided + wait, dec.seconds, charged, dec.beams[0]))
        yield sim.timeout(wait)                             # previous beams stay applied
        if sensing is not None and decided + wait < steps:  # the echo of the landed beams
            sensing.echo(decided + wait, dec.beams[0], traj)
        k = max(k + 1, -(-int(sim.now) // every))          # next instant at/after the landing
        yield sim.timeout(k * every - sim.now)


def closed_loop(policy: Any, trajectory: Trajectory, system: System, decision_interval: float,
                latency: Latency = Latency(), csi_delay: float = 0.0,
                sensing: EchoLoop | None = None) -> LoopResult:
    """Run one policy's controller on a recorded trajectory (see the module docstring).

    Args:
        policy: a :class:`policies.Policy` for ``system`` (``decide`` on ``(1, L, 2, M, Q)``).
        trajectory: the recorded road.
        system: the system (AP positions, budgets, noise).
        decision_interval: time between decision instants, s (a positive multiple of ``dt``).
        latency: how long the beams take to land.
        csi_delay: age of the CSI a decision uses, s (>= 0).
        sensing: echo sensing (:class:`cfisac_env.sim.sensing.EchoLoop`, fresh for this run):
            every decision sees the track's prediction as its target column, and the echo of
            the beams is received when they land; the result's ``sensing`` holds its record.
    """
    if not float(csi_delay) >= 0.0:
        raise ValueError(f"CSI delay must be >= 0 s, got {csi_delay!r}")
    dt = trajectory.dt
    every = interval_steps(decision_interval, dt)
    log: list[tuple[Any, ...]] = []
    sim = simpy.Environment()
    sim.process(_controller(sim, policy, trajectory, every, steps_of(csi_delay, dt),
                            latency, dt, log, sensing))
    sim.run(until=trajectory.steps)
    decided, landed, compute, charged, beams = (list(c) for c in zip(*log, strict=True))
    landed_a = np.asarray(landed, dtype=int)
    applied = np.searchsorted(landed_a, np.arange(trajectory.steps), side="right") - 1
    stack = np.stack([beams[0], *beams])                 # warm start, decisions: (D + 1, ...)
    scored = score(trajectory.true_csi, stack[applied + 1], system)
    return LoopResult(scored.ssnr, scored.min_sinr, scored.sinr, np.asarray(decided, dtype=int),
                      landed_a, np.asarray(compute, dtype=float),
                      np.asarray(charged, dtype=float), applied,
                      None if sensing is None else sensing.record())


def retention(value: np.ndarray, reference: np.ndarray, threshold: float = 0.9,
              mask: np.ndarray | None = None) -> float:
    """Share of samples where ``value >= threshold * reference`` (both ``(S,)``), over the
    samples where ``mask (S,)`` is True (all by default); NaN when no sample counts."""
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"retention threshold must lie in (0, 1], got {threshold!r}")
    ok = np.asarray(value) >= threshold * np.asarray(reference)
    if mask is not None:
        ok = ok[np.asarray(mask, dtype=bool)]
    return float(ok.mean()) if ok.size else float("nan")
