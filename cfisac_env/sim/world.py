"""Where the UEs and the target are and what their channels are: ``B`` independent static drop
streams or moving roads, stepped by ONE mechanism.

"Beams held over an interval, scored every ``dt``": :meth:`World.advance` returns the
:class:`Segment` of the next ``K`` simulation steps (positions, TRUE channel and ESTIMATED
channel at every step) and moves the world on; the caller scores its held beams on
``segment.true_csi`` with :func:`cfisac_env.physics.scoring.score`. The Gymnasium environments call
it
once per decision (``K = decision_interval / dt`` steps; one step, the drop itself, for static
scenarios, followed by a fresh drop); the closed-loop tracking (:mod:`cfisac_env.sim.tracking`)
records a whole run with one call and replays it for every policy.

Time: seconds become steps with ONE rule, :func:`steps_of` (half up); intervals that must be a
whole number of steps are checked by :func:`interval_steps`.

Random numbers: world ``i`` draws its positions and traffic from its generator exactly as the
seed model did; its channel (scattering, Gauss-Markov innovations) and its CSI errors come from
children spawned from that generator (``Generator.spawn``, which does not advance it), so
positions are the same under every channel model and the defaults reproduce the seed's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cfisac_env.physics.estimation import CsiError
from cfisac_env.physics.propagation import ChannelModel
from cfisac_env.physics.validation import check_positions
from cfisac_env.sim.ahead import DrawAhead
from cfisac_env.sim.traffic import RoadTraffic

if TYPE_CHECKING:
    from scenarios.loader import Scenario


def steps_of(seconds: float, dt: float) -> int:
    """A duration in whole simulation steps, rounded half up: ``floor(seconds / dt + 0.5)``."""
    return int(np.floor(seconds / dt + 0.5 + 1e-9))


def interval_steps(seconds: float, dt: float, what: str = "decision interval") -> int:
    """``seconds / dt`` for an interval that must be a positive whole number of steps, else a
    ``ValueError`` naming ``what``."""
    k = steps_of(seconds, dt)
    if k < 1 or abs(k * dt - seconds) > 1e-9:
        raise ValueError(f"{what} ({seconds} s) must be a positive multiple of dt ({dt} s)")
    return k


def drop_channels(scenario: Scenario, ue_xy: np.ndarray, target_xy: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """True and estimated CSI ``(B, L, 2, M, Q)`` float32 of ``B`` independent static drops
    (``ue_xy (B, N, 2)``, ``target_xy (B, 2)`` metres) under the scenario's ``[channel]`` and
    ``[csi]``, from streams spawned from ``rng`` (which is not advanced). Under the defaults both
    are the seed's LoS CSI (the same array)."""
    channel, error = ChannelModel.of(scenario.config), CsiError.of(scenario.config)
    chan, e1, e2 = rng.spawn(3)
    sc = channel.draw(scenario.system, chan, len(ue_xy))
    true = channel.csi(scenario.system, ue_xy, target_xy, None if sc is None else sc.field())
    return true, error.estimate(true, scenario.system, channel, ue_xy, target_xy, (e1, e2))


@dataclass
class Segment:
    """``K`` consecutive simulation steps of ``B`` worlds (index 0: the decision instant).

    ``ue_xy (B, K, N, 2)``, ``target_xy (B, K, 2)`` metres; ``true_csi`` and ``observed``
    ``(B, K, L, 2, M, Q)`` float32 (the true channel, what a policy would observe);
    ``target_speed (B, K)`` m/s and ``others_xy`` (per world, per step ``(V, 2)`` m) when asked
    for (``detail=True``, roads only).
    """

    ue_xy: np.ndarray
    target_xy: np.ndarray
    true_csi: np.ndarray
    observed: np.ndarray
    target_speed: np.ndarray | None = None
    others_xy: list[list[np.ndarray]] | None = None


class World:
    """``B`` independent worlds of one scenario.

    Args:
        scenario: the resolved scenario (its ``[channel]`` and ``[csi]`` sections included).
        batch: number of independent worlds ``B``.
        draw_ahead: the generators given to :meth:`reset` are this world's alone, so a static
            scenario may draw positions a block of drops ahead (:class:`DrawAhead`: the same
            numbers, one generator call per block instead of per drop).

    State at the current decision instant: ``ue_xy (B, N, 2)``, ``target_xy (B, 2)``,
    ``true_csi`` and ``observed`` ``(B, L, 2, M, Q)`` float32.
    """

    def __init__(self, scenario: Scenario, batch: int = 1, draw_ahead: bool = False) -> None:
        self.scenario, self.batch = scenario, batch
        self.system = scenario.system
        self.channel = ChannelModel.of(scenario.config)
        self.csi_error = CsiError.of(scenario.config)
        #: whether the channel or the CSI draws random numbers (else no streams are spawned)
        self.random_channel = self.channel.model != "los" or not self.csi_error.perfect
        env = scenario.config["env"]
        self.road = scenario.kind == "road"
        self.dt = float(env["dt"]) if self.road else 0.0
        self.steps_per_decision = 1
        if self.road:
            self.steps_per_decision = interval_steps(float(env["decision_interval"]), self.dt,
                                                     "env.decision_interval")
        s = self.system
        self.ue_xy = np.zeros((batch, s.N, 2))
        self.target_xy = np.zeros((batch, 2))
        self.true_csi = np.zeros((batch, *s.csi_shape), np.float32)
        self.observed = self.true_csi
        self.roads: list[RoadTraffic | None] = [None] * batch
        self.ahead = DrawAhead(scenario, batch) if draw_ahead and not self.road else None
        self.steer: np.ndarray | None = None        # (B, L, N, P, M) scattered paths
        self.gains: np.ndarray | None = None        # (B, L, N, P) their gains
        self._rngs: list[np.random.Generator] = []
        self._chan: list[np.random.Generator] = []
        self._est: list[tuple[np.random.Generator, np.random.Generator]] = []

    # ---- channel state --------------------------------------------------------------------
    def _draw_scattering(self, rng: np.random.Generator, idx: np.ndarray) -> None:
        sc = self.channel.draw(self.system, rng, len(idx))
        if sc is None:
            return
        if self.steer is None:
            self.steer = np.zeros((self.batch, *sc.steer.shape[1:]), complex)
            self.gains = np.zeros((self.batch, *sc.gains.shape[1:]), complex)
        self.steer[idx], self.gains[idx] = sc.steer, sc.gains

    def _field(self, i: np.ndarray | int, gains: np.ndarray | None = None) -> np.ndarray | None:
        """Scattered field ``s (..., L, M, N)`` of world(s) ``i`` (current gains by default)."""
        if self.steer is None:
            return None
        g = self.gains[i] if gains is None else gains
        return np.einsum("...lnpm,...lnp->...lmn", self.steer[i], g) / np.sqrt(g.shape[-1])

    def _channels(self, i: np.ndarray | int, ue: np.ndarray, tg: np.ndarray,
                  gains: np.ndarray | None, est: tuple[np.random.Generator, ...]
                  ) -> tuple[np.ndarray, np.ndarray]:
        """True and estimated CSI of world(s) ``i`` at positions ``ue``/``tg``."""
        true = self.channel.csi(self.system, ue, tg, self._field(i, gains))
        obs = self.csi_error.estimate(true, self.system, self.channel, ue, tg, est)
        return true, obs

    def _refresh(self, idx: np.ndarray) -> None:
        """Channels of worlds ``idx`` at their current positions (the true ones in one batch,
        the estimates each from its world's own streams)."""
        true = self.channel.csi(self.system, self.ue_xy[idx], self.target_xy[idx],
                                self._field(idx))
        self.true_csi[idx] = true
        if self.csi_error.perfect:
            return
        if self.observed is self.true_csi:
            self.observed = self.true_csi.copy()
        for k, i in enumerate(idx):
            self.observed[i] = self.csi_error.estimate(true[k], self.system, self.channel,
                                                       self.ue_xy[i], self.target_xy[i],
                                                       self._est[i])

    # ---- stepping -------------------------------------------------------------------------
    def reset(self, rngs: list[np.random.Generator], idx: np.ndarray | None = None,
              ue_xy: np.ndarray | None = None, target_xy: np.ndarray | None = None) -> None:
        """Start worlds ``idx`` (all by default) afresh, each from its own generator.

        Explicit ``ue_xy (N, 2)`` / ``target_xy (2,)`` place every reset world there.
        """
        idx = np.arange(self.batch) if idx is None else np.asarray(idx)
        if len(self._rngs) != self.batch:
            self._rngs = list(rngs)
            self._chan = [None] * self.batch
            self._est = [None] * self.batch
        for i in idx:
            self._rngs[i] = rngs[i]
            if self.random_channel:
                chan, e1, e2 = rngs[i].spawn(3)
                self._chan[i], self._est[i] = chan, (e1, e2)
            if self.ahead is None:
                ue, tg = self.scenario.sample(rngs[i])
            else:
                self.ahead.use(i, rngs[i])
                ue, tg = (v[0] for v in self.ahead.take(np.array([i])))
            if ue_xy is not None or target_xy is not None:
                ue = ue if ue_xy is None else ue_xy
                tg = tg if target_xy is None else target_xy
                ue, tg = check_positions(ue, tg, self.system)
            self.ue_xy[i], self.target_xy[i] = ue, tg
            if self.road:
                explicit = None if target_xy is None else tg
                self.roads[i] = RoadTraffic(self.scenario.config, ue, rngs[i], explicit)
                self._sync(i)
            if self.random_channel:
                self._draw_scattering(self._chan[i], np.array([i]))
        self._refresh(idx)

    def _fresh_drops(self, idx: np.ndarray) -> None:
        """Worlds ``idx`` of a static scenario move on to a fresh drop, each from its own
        streams; the state arrays are replaced (copied first when only some worlds move)."""
        if self.ahead is None:
            ue, tg = self.scenario.sample_each([self._rngs[i] for i in idx])
        else:
            ue, tg = self.ahead.take(idx)
        if len(idx) == self.batch:
            self.ue_xy, self.target_xy = ue, tg
        else:
            self.ue_xy, self.target_xy = self.ue_xy.copy(), self.target_xy.copy()
            self.ue_xy[idx], self.target_xy[idx] = ue, tg
        if self.random_channel:
            for i in idx:
                self._draw_scattering(self._chan[i], np.array([i]))
        if len(idx) < self.batch:
            same = self.observed is self.true_csi
            self.true_csi = self.true_csi.copy()
            self.observed = self.true_csi if same else self.observed.copy()
            self._refresh(idx)
            return
        self.true_csi = self.channel.csi(self.system, ue, tg, self._field(idx))
        if self.csi_error.perfect:
            self.observed = self.true_csi
            return
        self.observed = np.empty_like(self.true_csi)
        for k, i in enumerate(idx):
            self.observed[i] = self.csi_error.estimate(self.true_csi[k], self.system,
                                                       self.channel, ue[k], tg[k], self._est[i])

    def _sync(self, i: int) -> None:
        road = self.roads[i]
        self.ue_xy[i], self.target_xy[i] = road.ue_xy, road.target_xy

    def interval(self, active: np.ndarray | None = None) -> Segment:
        """The coming decision interval (:attr:`steps_per_decision` steps), then advance."""
        return self.advance(self.steps_per_decision, active=active)

    def advance(self, steps: int, detail: bool = False, active: np.ndarray | None = None
                ) -> Segment:
        """The next ``steps`` simulation steps of every world, then move on to the step after.

        ``active (B,)`` bool (default all): the worlds that move on; the others stay where they
        are (their segment repeats their current state) and draw no random numbers.

        Static scenarios have one step per decision: ``steps`` must be 1 and every world draws a
        fresh drop (positions, scattering and CSI errors) from its own streams.
        Roads advance the SimPy traffic ``dt`` per step and the scattered gains by one
        Gauss-Markov step at each UE's walking speed.
        """
        if not self.road:
            if steps != 1:
                raise ValueError("a static scenario advances one drop (one step) at a time")
            # The segment keeps the current arrays; the fresh drops go into new ones.
            seg = Segment(self.ue_xy[:, None], self.target_xy[:, None], self.true_csi[:, None],
                          self.observed[:, None])
            idx = np.arange(self.batch) if active is None else np.flatnonzero(active)
            if len(idx):
                self._fresh_drops(idx)
            return seg
        return self._advance_roads(steps, detail, active)

    def _advance_roads(self, steps: int, detail: bool, active: np.ndarray | None = None
                       ) -> Segment:
        b, n = self.batch, self.system.N
        ue = np.empty((b, steps + 1, n, 2))
        tg = np.empty((b, steps + 1, 2))
        true = np.empty((b, steps, *self.system.csi_shape), np.float32)
        obs = np.empty_like(true) if not self.csi_error.perfect else true
        speed = np.empty((b, steps))
        others: list[list[np.ndarray]] = [[] for _ in range(b)]
        for i, road in enumerate(self.roads):
            if active is not None and not active[i]:
                ue[i], tg[i], true[i] = self.ue_xy[i], self.target_xy[i], self.true_csi[i]
                obs[i], speed[i] = self.observed[i], road.target.speed
                others[i] = [road.others_xy()] * steps if detail else []
                continue
            gains = None if self.gains is None else np.empty((steps + 1, *self.gains.shape[1:]),
                                                              complex)
            for j in range(steps + 1):
                ue[i, j], tg[i, j] = road.ue_xy, road.target_xy
                if gains is not None:
                    gains[j] = self.gains[i]
                if j == steps:
                    break
                speed[i, j] = road.target.speed
                if detail:
                    others[i].append(road.others_xy())
                rho = None if gains is None else self.channel.rho(road.ue_vel, self.dt)
                road.advance(self.dt)
                if gains is not None:
                    self.gains[i] = self.channel.evolve(self.gains[i], rho, self._chan[i])
            self._sync(i)
            new_t, new_o = self._channels(i, ue[i, 1:], tg[i, 1:],
                                          None if gains is None else gains[1:], self._est[i])
            true[i, 0], true[i, 1:] = self.true_csi[i], new_t[:-1]
            if obs is not true:
                obs[i, 0], obs[i, 1:] = self.observed[i], new_o[:-1]
            self.true_csi[i], self.observed[i] = new_t[-1], new_o[-1]
        return Segment(ue[:, :-1], tg[:, :-1], true, obs, speed if detail else None,
                       others if detail else None)

    def target_on_road(self) -> np.ndarray:
        """``(B,)`` bool: False where a road's target has left the simulated stretch."""
        if not self.road:
            return np.ones(self.batch, dtype=bool)
        return np.array([r is None or r.target_on_road for r in self.roads])
