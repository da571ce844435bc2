"""The Gymnasium environment ``cfisac/CellFreeISAC-v0``.

Observation: per-AP ESTIMATED CSI ``(L, 2, M, Q)`` float32 (the true channel under the seed's
defaults, ``[csi]`` in :mod:`cfisac_env.estimation`). Action: beams in the same layout. ``step``
scores the beams on the TRUE channel of the drop the previous observation described (on the
``road``, at every simulation step of the decision interval while the traffic and the channel
move, averaged; :meth:`cfisac_env.world.World.advance`) and returns the CSI of the next decision
instant. The channel model is the scenario's ``[channel]`` (:mod:`cfisac_env.propagation`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cfisac_env.scoring import check_reward, score
from cfisac_env.system import System
from cfisac_env.validation import check_beams
from cfisac_env.world import World
from scenarios.loader import Scenario, load


def make_scenario(scenario: str | Scenario, users: int | None, overrides: dict[str, Any]
                  ) -> Scenario:
    """Resolve the env's scenario argument plus overrides (dotted or bare field names)."""
    if isinstance(scenario, Scenario):
        if users is not None or overrides:
            raise ValueError("pass either a loaded Scenario or a name with overrides, not both")
        return scenario
    return load(scenario, users=users, overrides=overrides)


def spaces_for(system: System, bounded: bool = True) -> tuple[spaces.Box, spaces.Box]:
    """Observation space and action space (each entry within the largest AP budget's square
    root; the budget itself is enforced by projection).

    The observation entries lie in [-1, 1] when ``bounded`` (LoS CSI, with or without path
    loss, estimated perfectly: every entry has modulus <= 1); fading or estimation noise make
    them unbounded (``-inf, inf``)."""
    hi = 1.0 if bounded else np.inf
    obs = spaces.Box(-hi, hi, system.csi_shape, np.float32)
    amp = float(np.sqrt(system.P.max()))
    return obs, spaces.Box(-amp, amp, system.csi_shape, np.float32)


def observed_bounded(world: World) -> bool:
    """Whether every observed CSI entry has modulus <= 1 (see :func:`spaces_for`)."""
    return world.channel.bounded and world.csi_error.nmse == 0


def step_info(scored: Any, ue: np.ndarray, tg: np.ndarray, system: System) -> dict[str, Any]:
    """The ``info`` of one environment for one decision (``scored`` fields ``(K, ...)``)."""
    return {
        "ssnr": float(scored.ssnr.mean()),
        "min_sinr": float(scored.min_sinr.mean()),
        "sinr": scored.sinr.mean(axis=0),
        "ap_xy": system.ap_positions.copy(),
        "ue_xy": ue.copy(),
        "target_xy": tg.copy(),
        "ap_power": scored.ap_power[0],
        "power_scaled": scored.power_scaled[0],
        "power_scaled_any": bool(scored.power_scaled.any()),
    }


class CellFreeISACEnv(gym.Env):
    """Cell-free ISAC beamforming (seed paper, section 2) as a Gymnasium environment.

    Args:
        scenario: a scenario name (``pos1``, ``pos2``, ``road``, ...), a TOML path or a loaded
            :class:`scenarios.Scenario`.
        users: number of UEs ``N`` (>= 1); default from the scenario.
        render_mode: None or ``"rgb_array"``.
        **overrides: scenario fields by dotted path (``**{"traffic.speed": 20}``) or unique
            bare name (``reward="sensing"``, ``beta=0.3``, ``antennas=32``).

    ``info`` of ``step``: ``ssnr`` (float), ``min_sinr`` (float), ``sinr`` ``(N,)`` (linear,
    averaged over the interval on the road), ``ap_xy (L, 2)``, ``ue_xy (N, 2)``,
    ``target_xy (2,)`` (metres, at the decision instant), ``ap_power (L,)`` W requested,
    ``power_scaled (L,)`` bool (APs scaled down to their budget) and ``power_scaled_any``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, scenario: str | Scenario = "pos2", users: int | None = None,
                 render_mode: str | None = None, **overrides: Any) -> None:
        self.scenario = make_scenario(scenario, users, overrides)
        self.system: System = self.scenario.system
        cfg = self.scenario.config["env"]
        self.reward_kind, self.beta = cfg["reward"], float(cfg["beta"])
        check_reward(self.reward_kind, self.beta)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.episode_steps = int(cfg["episode_steps"])
        self.world = World(self.scenario, 1)
        self.observation_space, self.action_space = spaces_for(self.system, observed_bounded(
            self.world))
        self._steps = 0
        self._beams: np.ndarray | None = None

    def _obs(self) -> np.ndarray:
        return self.world.observed[0].copy()

    def _positions(self) -> dict[str, np.ndarray]:
        return {"ap_xy": self.system.ap_positions.copy(), "ue_xy": self.world.ue_xy[0].copy(),
                "target_xy": self.world.target_xy[0].copy()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode. ``options``: ``ue_xy (N, 2)`` and/or ``target_xy (2,)`` metres
        place the entities explicitly instead of sampling them."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"ue_xy", "target_xy"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; expected ue_xy, target_xy")
        self.world.reset([self.np_random], ue_xy=options.get("ue_xy"),
                         target_xy=options.get("target_xy"))
        self._steps, self._beams = 0, None
        return self._obs(), self._positions()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        beams = check_beams(action, self.system, what="action")
        seg = self.world.interval()                          # K steps: (1, K, ...), held beams
        scored = score(seg.true_csi[0], beams[None], self.system, self.reward_kind, self.beta)
        self._beams = scored.beams[0].astype(np.float32)
        self._steps += 1
        info = step_info(scored, seg.ue_xy[0, 0], seg.target_xy[0, 0], self.system)
        truncated = self._steps >= self.episode_steps or not self.world.target_on_road()[0]
        return self._obs(), float(scored.reward.mean()), False, bool(truncated), info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        from cfisac_env.render import draw

        road = self.world.roads[0]
        others = road.others_xy() if road is not None else np.zeros((0, 2))
        return draw(self.scenario, self.world.ue_xy[0], self.world.target_xy[0], others,
                    self._beams, time=None if road is None else road.time)
