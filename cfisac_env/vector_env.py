"""Batched NumPy implementation of ``cfisac/CellFreeISAC-v0`` for ``gymnasium.make_vec``.

``gymnasium.make_vec("cfisac/CellFreeISAC-v0", num_envs=1024,
vectorization_mode="vector_entry_point", scenario="pos2", users=8)`` steps all ``B`` drops with
one batched CSI and metric computation. Observations are the estimated CSI, rewards and
``info`` the true channel's, exactly as in the single env. Autoreset: next step
(Gymnasium's default).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from cfisac_env.env import make_scenario, observed_bounded, spaces_for
from cfisac_env.scoring import check_reward, score
from cfisac_env.validation import check_beams
from cfisac_env.world import World
from scenarios.loader import Scenario


class CellFreeISACVectorEnv(VectorEnv):
    """``num_envs`` copies of :class:`cfisac_env.env.CellFreeISACEnv`, batched.

    Observations ``(B, L, 2, M, Q)`` float32, actions the same; ``info`` keys as in the single
    env, each stacked along a leading ``B`` axis.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, scenario: str | Scenario = "pos2",
                 users: int | None = None, max_episode_steps: int | None = None,
                 **overrides: Any) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.scenario = make_scenario(scenario, users, overrides)
        self.system = self.scenario.system
        cfg = self.scenario.config["env"]
        self.reward_kind, self.beta = cfg["reward"], float(cfg["beta"])
        check_reward(self.reward_kind, self.beta)
        self.episode_steps = int(max_episode_steps or cfg["episode_steps"])
        self.num_envs = int(num_envs)
        self.world = World(self.scenario, self.num_envs)
        self.single_observation_space, self.single_action_space = spaces_for(
            self.system, observed_bounded(self.world))
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._steps = np.zeros(self.num_envs, dtype=int)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._rngs: list[np.random.Generator] = []

    def _obs(self) -> np.ndarray:
        return self.world.observed.copy()

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-environment; sub-env ``i`` draws from its own generator spawned
        from ``seed``. ``options`` as in the single env (applied to every sub-env)."""
        if isinstance(seed, (list, tuple)):
            seqs = [np.random.SeedSequence(s) for s in seed]
        else:
            seqs = np.random.SeedSequence(seed).spawn(self.num_envs)
        self._rngs = [np.random.default_rng(s) for s in seqs]
        options = dict(options or {})
        self.world.reset(self._rngs, ue_xy=options.get("ue_xy"),
                         target_xy=options.get("target_xy"))
        self._steps[:] = 0
        self._autoreset[:] = False
        return self._obs(), {"ap_xy": np.broadcast_to(self.system.ap_positions,
                                                      (self.num_envs, self.system.L, 2)),
                             "ue_xy": self.world.ue_xy.copy(),
                             "target_xy": self.world.target_xy.copy()}

    def step(self, actions: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        beams = check_beams(actions, self.system, batch=self.num_envs, what="actions")
        seg = self.world.interval()                  # K steps: (B, K, ...), beams held
        ue, tg = seg.ue_xy, seg.target_xy
        scored = score(seg.true_csi, beams[:, None], self.system, self.reward_kind, self.beta)
        reward = scored.reward.mean(axis=1)
        info = {
            "ssnr": scored.ssnr.mean(axis=1),
            "min_sinr": scored.min_sinr.mean(axis=1),
            "sinr": scored.sinr.mean(axis=1),
            "ap_xy": np.broadcast_to(self.system.ap_positions, (self.num_envs, self.system.L, 2)),
            "ue_xy": ue[:, 0],
            "target_xy": tg[:, 0],
            "ap_power": scored.ap_power[:, 0],
            "power_scaled": scored.power_scaled[:, 0],
            "power_scaled_any": scored.power_scaled[:, 0].any(axis=-1),
        }
        self._steps += 1
        truncated = (self._steps >= self.episode_steps) | ~self.world.target_on_road()
        done = self._autoreset
        if done.any():  # next-step autoreset: these sub-envs start afresh, their action ignored
            idx = np.flatnonzero(done)
            self.world.reset(self._rngs, idx=idx)
            self._steps[idx] = 0
            reward[idx] = 0.0
            truncated[idx] = False
        self._autoreset = truncated.copy()
        terminated = np.zeros(self.num_envs, dtype=bool)
        return self._obs(), reward, terminated, truncated, info

