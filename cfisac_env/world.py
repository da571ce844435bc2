"""Where the UEs and the target are: ``B`` independent static drop streams or moving roads.

The environments ask a :class:`World` for the positions over one decision interval; it returns
them at every simulation step of that interval and moves on to the next decision instant:

- ``static`` scenarios: one step per interval (the drop itself), then a fresh drop;
- ``road`` scenarios: ``decision_interval / dt`` steps of the SimPy traffic model.
"""

from __future__ import annotations

import numpy as np

from cfisac_env.traffic import RoadTraffic
from cfisac_env.validation import check_positions
from scenarios.loader import Scenario


class World:
    """``B`` independent worlds of one scenario.

    Args:
        scenario: the resolved scenario.
        batch: number of independent worlds ``B``.
    """

    def __init__(self, scenario: Scenario, batch: int = 1) -> None:
        self.scenario, self.batch = scenario, batch
        self.system = scenario.system
        env = scenario.config["env"]
        self.road = scenario.kind == "road"
        self.steps_per_decision = 1
        if self.road:
            dt, interval = float(env["dt"]), float(env["decision_interval"])
            k = int(round(interval / dt))
            if k < 1 or abs(k * dt - interval) > 1e-9:
                raise ValueError(f"env.decision_interval ({interval} s) must be a positive "
                                 f"multiple of env.dt ({dt} s)")
            self.steps_per_decision = k
        self.ue_xy = np.zeros((batch, self.system.N, 2))
        self.target_xy = np.zeros((batch, 2))
        self.roads: list[RoadTraffic | None] = [None] * batch
        self._rngs: list[np.random.Generator] = []

    def reset(self, rngs: list[np.random.Generator], idx: np.ndarray | None = None,
              ue_xy: np.ndarray | None = None, target_xy: np.ndarray | None = None) -> None:
        """Start worlds ``idx`` (all by default) afresh, each from its own generator.

        Explicit ``ue_xy (N, 2)`` / ``target_xy (2,)`` place every reset world there.
        """
        idx = np.arange(self.batch) if idx is None else np.asarray(idx)
        if len(self._rngs) != self.batch:
            self._rngs = list(rngs)
        for i in idx:
            self._rngs[i] = rngs[i]
            ue, tg = self.scenario.sample(rngs[i])
            if ue_xy is not None or target_xy is not None:
                ue = ue if ue_xy is None else ue_xy
                tg = tg if target_xy is None else target_xy
                ue, tg = check_positions(ue, tg, self.system)
            self.ue_xy[i], self.target_xy[i] = ue, tg
            if self.road:
                explicit = None if target_xy is None else tg
                self.roads[i] = RoadTraffic(self.scenario.config, ue, rngs[i], explicit)
                self._sync(i)

    def _sync(self, i: int) -> None:
        road = self.roads[i]
        self.ue_xy[i], self.target_xy[i] = road.ue_xy, road.target_xy

    def interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions at every simulation step of the coming decision interval, then advance.

        Returns:
            ``ue_xy (B, K, N, 2)`` and ``target_xy (B, K, 2)``, metres, ``K`` =
            :attr:`steps_per_decision`; index 0 is the current decision instant.
        """
        if not self.road:
            ue, tg = self.ue_xy[:, None].copy(), self.target_xy[:, None].copy()
            if self.batch == 1:
                self.ue_xy[0], self.target_xy[0] = self.scenario.sample(self._rngs[0])
            else:
                self.ue_xy, self.target_xy = self.scenario.sample(self._rngs[0], self.batch)
            return ue, tg
        k = self.steps_per_decision
        ue = np.empty((self.batch, k, self.system.N, 2))
        tg = np.empty((self.batch, k, 2))
        dt = float(self.scenario.config["env"]["dt"])
        for i, road in enumerate(self.roads):
            for j in range(k):
                ue[i, j], tg[i, j] = road.ue_xy, road.target_xy
                road.advance(dt)
            self._sync(i)
        return ue, tg

    def target_on_road(self) -> np.ndarray:
        """``(B,)`` bool: False where a road's target has left the simulated stretch."""
        return np.array([r is None or r.target_on_road for r in self.roads])
