"""Batched vector environment of ``cfisac/CellFreeISAC-v0`` for ``gymnasium.make_vec``.

``gymnasium.make_vec("cfisac/CellFreeISAC-v0", num_envs=1024,
vectorization_mode="vector_entry_point", scenario="pos2", users=8)`` steps all ``B`` episodes
with one batched CSI and metric computation (the same :class:`cfisac_env.envs.core.Core` as the
single
env) and keeps the conventions of Gymnasium's ``SyncVectorEnv``, number for number:

- seeds: an int ``s`` seeds sub-env ``i`` with ``s + i``, a list gives one seed per sub-env (a
  wrong length is a ``ValueError``), ``None`` keeps every sub-env's generator running (so
  ``reset()`` after ``reset(seed=s)`` is reproducible); every sub-env draws all its drops,
  traffic and errors from its own generator, so sub-env ``i`` equals
  ``gym.make(...).reset(seed=s + i)`` step for step;
- autoreset: next step (a finished sub-env is reset on the following ``step``, its action
  ignored, reward 0, and its ``info`` holds only the reset's keys);
- ``info``: every key ``k`` comes with a boolean mask ``info["_k"]`` of the sub-envs that have it;
- ``reset`` options as in the single env (unknown keys are a ``ValueError``), plus Gymnasium's
  ``reset_mask`` ``(B,)`` bool to reset only some sub-envs;
- ``render_mode="rgb_array"``: ``render()`` returns one frame per sub-env.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from cfisac_env.envs.core import POSITION_KEYS, Core, check_options, make_scenario

if TYPE_CHECKING:
    from scenarios.loader import Scenario


def with_masks(info: dict[str, np.ndarray], present: dict[str, np.ndarray]
               ) -> dict[str, np.ndarray]:
    """``info`` plus Gymnasium's ``_key`` masks: ``present[k] (B,)`` bool, sub-envs that have
    key ``k`` (entries of the others are zero); a key no sub-env has is left out."""
    out: dict[str, np.ndarray] = {}
    for k, v in info.items():
        if not present[k].any():
            continue
        out[k] = v
        out[f"_{k}"] = present[k]
    return out


class CellFreeISACVectorEnv(VectorEnv):
    """``num_envs`` copies of :class:`cfisac_env.envs.env.CellFreeISACEnv`, batched.

    Args:
        num_envs: ``B`` >= 1.
        scenario, users, action_mode, **overrides: as in the single env.
        max_episode_steps: decisions per episode; default ``env.episode_steps``.
        render_mode: None or ``"rgb_array"``.

    Observations ``(B, L, 2, M, Q)`` float32, actions the same; ``info`` keys as in the single
    env, each stacked along a leading ``B`` axis, with ``_key`` masks.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, scenario: str | Scenario = "pos2",
                 users: int | None = None, max_episode_steps: int | None = None,
                 render_mode: str | None = None, action_mode: str = "beams",
                 **overrides: Any) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.scenario = make_scenario(scenario, users, overrides)
        self.system = self.scenario.system
        self.num_envs = int(num_envs)
        self.core = Core(self.scenario, self.num_envs, action_mode, max_episode_steps,
                         draw_ahead=True)             # the sub-envs' generators are its own
        self.world = self.core.world
        self.dt: float | None = self.world.dt if self.world.road else None      # s, as the env's
        self.decision_interval: float | None = (
            self.world.steps_per_decision * self.world.dt if self.world.road else None)
        self.action_mode = action_mode
        self.episode_steps = self.core.episode_steps
        self.reward_kind, self.beta = self.core.reward_kind, self.core.beta
        self.single_observation_space = self.core.observation_space
        self.single_action_space = self.core.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._rngs: list[np.random.Generator] = []

    @property
    def config(self) -> dict[str, Any]:
        """The resolved scenario config (a deep copy)."""
        import copy

        return copy.deepcopy(self.scenario.config)

    def _seed_rngs(self, seed: int | list[int | None] | None, idx: np.ndarray) -> None:
        """(Re)create the generators of sub-envs ``idx`` from ``seed`` (SyncVectorEnv rules)."""
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        elif isinstance(seed, (list, tuple)):
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"a seed list must hold one seed per sub-env (num_envs = "
                                 f"{self.num_envs}), got {len(seeds)}")
        else:
            raise ValueError(f"seed must be an int, a list of num_envs ints or None, got {seed!r}")
        if not self._rngs:
            self._rngs = [np.random.default_rng() for _ in range(self.num_envs)]
        for i in idx:
            if seeds[i] is not None:
                self._rngs[i] = np.random.default_rng(seeds[i])

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the sub-environments (module docstring for ``seed``); ``options`` as in the
        single env (applied to every reset sub-env) plus ``reset_mask (B,)`` bool."""
        options = check_options(options, ("reset_mask",))
        idx = np.arange(self.num_envs)
        if "reset_mask" in options:
            mask = np.asarray(options.pop("reset_mask"))
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
                raise ValueError(f"options['reset_mask'] must be a ({self.num_envs},) bool array "
                                 f"with at least one True, got {mask!r}")
            idx = np.flatnonzero(mask)
        self._seed_rngs(seed, idx)
        self.core.reset(self._rngs, idx, options)
        self._autoreset[idx] = False
        info = self.core.positions()
        present = np.zeros(self.num_envs, dtype=bool)
        present[idx] = True
        info = {k: np.where(_expand(present, v), v, 0) for k, v in info.items()}
        return self.core.obs(), with_masks(info, dict.fromkeys(POSITION_KEYS, present))

    def step(self, actions: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One decision of every sub-env: ``actions (B, L, 2, M, Q)`` -> ``obs, reward (B,),
        terminated (B,), truncated (B,), info``."""
        done = self._autoreset.copy()
        reward, truncated, info = self.core.step(actions, ~done)
        present = {k: np.ones(self.num_envs, dtype=bool) for k in info}
        if done.any():   # next-step autoreset: these sub-envs start afresh, their action ignored
            idx = np.flatnonzero(done)
            self.core.reset(self._rngs, idx)
            reward[idx] = 0.0
            truncated[idx] = False
            for k in self.core.step_keys:
                info[k][idx] = 0
                present[k][idx] = False
            for k, v in self.core.positions(idx).items():
                info[k][idx] = v
        self._autoreset = truncated.copy()
        terminated = np.zeros(self.num_envs, dtype=bool)
        return self.core.obs(), reward, terminated, truncated, with_masks(info, present)

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One ``(H, W, 3)`` uint8 frame per sub-env (``rgb_array`` mode), else None."""
        if self.render_mode != "rgb_array":
            return None
        from cfisac_env.envs.render import draw

        frames = []
        for i in range(self.num_envs):
            road = self.world.roads[i]
            others = road.others_xy() if road is not None else np.zeros((0, 2))
            beams = self.core.beams[i] if self.core.steps[i] > 0 else None
            frames.append(draw(self.scenario, self.world.ue_xy[i], self.world.target_xy[i],
                               others, beams, time=None if road is None else road.time))
        return tuple(frames)


def _expand(mask: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``mask (B,)`` broadcastable against ``like (B, ...)``."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))
