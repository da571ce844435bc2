"""The Gymnasium environment ``cfisac/CellFreeISAC-v0``: the batch of one of
:class:`cfisac_env.envs.core.Core`.

Observation: per-AP ESTIMATED CSI ``(L, 2, M, Q)`` float32 (the true channel under the seed's
defaults, ``[csi]`` in :mod:`cfisac_env.physics.estimation`). Action: beams in the same layout (or,
with
``action_mode="normalized"``, entries in [-1, 1] mapped onto the full budget). ``step`` scores
the beams on the TRUE channel of the drop the previous observation described (on the ``road``,
at every simulation step of the decision interval while the traffic and the channel move,
averaged; :meth:`cfisac_env.sim.world.World.advance`) and returns the CSI of the next decision
instant. The channel model is the scenario's ``[channel]`` (:mod:`cfisac_env.physics.propagation`).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from cfisac_env.envs.core import Core, make_scenario, observed_bounded, spaces_for
from cfisac_env.physics.system import System
from cfisac_env.physics.validation import check_beams

if TYPE_CHECKING:
    from gymnasium.envs.registration import EnvSpec

    from scenarios.loader import Scenario

__all__ = ["CellFreeISACEnv", "make_scenario", "observed_bounded", "spaces_for"]


def unbatch_info(info: dict[str, np.ndarray], i: int = 0) -> dict[str, Any]:
    """Episode ``i``'s ``info`` out of a batched one (whose arrays are fresh, not the env's
    state): per-episode scalars as Python floats/bools, arrays as views."""
    return {k: v[i].item() if v.ndim == 1 else v[i] for k, v in info.items()}


class CellFreeISACEnv(gym.Env):
    """Cell-free ISAC beamforming (seed paper, section 2) as a Gymnasium environment.

    Args:
        scenario: a scenario name (``pos1``, ``pos2``, ``road``, ...), a TOML path or a loaded
            :class:`scenarios.Scenario`.
        users: number of UEs ``N`` (>= 1); default from the scenario.
        render_mode: None or ``"rgb_array"``.
        action_mode: ``"beams"`` (default): the action is the beams ``(L, 2, M, Q)`` float32, an
            AP over its budget is scaled down to it. ``"normalized"``: ``Box(-1, 1)`` of the same
            shape; AP ``l``'s block ``A_l`` becomes ``W_l = sqrt(P_l) A_l / ||A_l||_F`` (the
            seed's eqs. 17-18, full budget), so any Box-action RL agent explores valid beams.
        **overrides: scenario fields by dotted path (``**{"traffic.speed": 20}``) or unique
            bare name (``reward="sensing"``, ``beta=0.3``, ``antennas=32``).

    ``info`` of ``step``: ``ssnr`` (float), ``min_sinr`` (float), ``sinr`` ``(N,)`` (linear,
    averaged over the interval on the road), ``ap_xy (L, 2)``, ``ue_xy (N, 2)``,
    ``target_xy (2,)`` (metres, at the decision instant), ``ap_power (L,)`` W requested,
    ``power_scaled (L,)`` bool (APs scaled down to their budget) and ``power_scaled_any``.

    **A contextual bandit.** The beams never change what comes next: a static scenario draws
    every drop independently, and on the road the beams do not move the vehicles or the
    walkers. So the next observation does not depend on the action, every step's reward is
    decided by that step's action alone, and the optimal policy is the greedy one (the best
    beams for the CSI in front of it). For RL this means ``gamma`` buys nothing: the return
    beyond the current step is the same for every action, it only adds variance to the
    advantage estimates. Use ``gamma = 0`` (or close to it) and a short GAE horizon;
    ``episode_steps`` then only sets how often episodes are counted, not what is learned.

    **A POMDP in echo mode** (``**{"sensing.mode": "echo"}``, ``docs/sensing.md``): the target
    column of every observation comes from an EKF fed by the APs' echoes of the beams just
    chosen, so the beams decide what the next observation knows; ``gamma > 0`` now has
    something to buy. ``info`` adds ``angle_error (L,)`` rad, ``position_error`` m,
    ``track_lost``, ``track_cov (4, 4)`` (of the prediction the scored decision was shown),
    ``echo_detected (L,)``, ``pd`` and ``reward_tracking`` (``sensing.tracking_weight``).

    Attributes: ``system`` (:class:`cfisac_env.System`), ``scenario``, ``config`` (the resolved
    scenario config, a copy), ``core`` (the batched :class:`cfisac_env.envs.core.Core`),
    ``dt`` (s, the road's simulation step ``env.dt``) and ``decision_interval`` (s, how long one
    step's beams are held: ``env.decision_interval``, a whole number of ``dt``); both None for a
    static scenario, whose steps are independent drops.
    ``spec.max_episode_steps`` is the scenario's ``env.episode_steps``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, scenario: str | Scenario = "pos2", users: int | None = None,
                 render_mode: str | None = None, action_mode: str = "beams",
                 **overrides: Any) -> None:
        self.scenario = make_scenario(scenario, users, overrides)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}: "
                             "for a window use gym.make(..., render_mode='human') with pygame "
                             "installed (Gymnasium's HumanRendering), else render_mode="
                             "'rgb_array' and show env.render() with plt.imshow")
        self.render_mode = render_mode
        self.core = Core(self.scenario, 1, action_mode)
        self.system: System = self.scenario.system
        self.action_mode = action_mode
        self.episode_steps = self.core.episode_steps
        self.reward_kind, self.beta = self.core.reward_kind, self.core.beta
        self.world = self.core.world
        self.dt: float | None = self.world.dt if self.world.road else None
        self.decision_interval: float | None = (
            self.world.steps_per_decision * self.world.dt if self.world.road else None)
        self.observation_space = self.core.observation_space
        self.action_space = self.core.action_space
        self._spec: EnvSpec | None = None

    # Gymnasium's make() stores a spec without max_episode_steps; the episode length is the
    # scenario's, so it is filled in here (a TimeLimit built from it truncates at the same step).
    @property
    def spec(self) -> EnvSpec | None:  # type: ignore[override]
        """The registration spec, with ``max_episode_steps`` = the scenario's episode length."""
        if self._spec is None:
            return None
        return dataclasses.replace(self._spec, max_episode_steps=self.episode_steps)

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        self._spec = value

    @property
    def config(self) -> dict[str, Any]:
        """The resolved scenario config (every section, overrides applied; a deep copy)."""
        return copy.deepcopy(self.scenario.config)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode. ``options``: ``ue_xy (N, 2)`` and/or ``target_xy (2,)`` metres
        place the entities explicitly instead of sampling them; other keys are a
        ``ValueError``."""
        super().reset(seed=seed)
        self.core.reset([self.np_random], options=options)
        return self.core.obs()[0], unbatch_info(self.core.positions())

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = check_beams(action, self.system, what="action")
        reward, truncated, info = self.core.step(a[None], checked=True)
        return self.core.obs()[0], float(reward[0]), False, bool(truncated[0]), \
            unbatch_info(info)

    def render(self) -> np.ndarray | None:
        """``(H, W, 3)`` uint8 frame of the scene and the last beams (``rgb_array`` mode)."""
        if self.render_mode != "rgb_array":
            return None
        from cfisac_env.envs.render import draw

        road = self.world.roads[0]
        others = road.others_xy() if road is not None else np.zeros((0, 2))
        beams = self.core.beams[0] if self.core.steps[0] > 0 else None
        return draw(self.scenario, self.world.ue_xy[0], self.world.target_xy[0], others,
                    beams, time=None if road is None else road.time)

