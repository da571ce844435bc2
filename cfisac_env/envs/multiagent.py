"""The multi-agent view: one agent per AP, as a PettingZoo ``ParallelEnv``.

``cfisac_env.parallel_env(scenario="pos2", users=8)`` returns :class:`CellFreeISACParallelEnv`:
agents ``ap_0 .. ap_{L-1}``; agent ``ap_l`` observes only its own CSI
``H_l = [h_l1 .. h_lN, a_l]`` as ``(2, M, Q)`` float32 and acts with its own beams ``W_l``
``(2, M, Q)`` (or, with ``action_mode="normalized"``, entries in [-1, 1] that are scaled onto
its full budget). All agents share the team reward and the same ``info`` metrics as the single
environment, which it wraps (the batch of one of :class:`cfisac_env.envs.core.Core`), so the numbers
are identical to ``gym.make("cfisac/CellFreeISAC-v0", ...)`` with the same seed.

A :class:`policies.DistributedPolicy` drives it agent by agent with :func:`act_agents`::

    penv = cfisac_env.parallel_env(scenario="pos2", users=8)
    pol = policies.make("mrt-target", penv.system)
    obs, infos = penv.reset(seed=0)
    while penv.agents:
        obs, rewards, terms, truncs, infos = penv.step(act_agents(pol, obs))

``state()`` is the whole system's CSI ``(L, 2, M, Q)`` (for centralised critics).
Requires the ``pettingzoo`` package (``pip install "cfisac[ecosystem]"``).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from cfisac_env.envs.core import RESET_OPTIONS
from cfisac_env.envs.env import CellFreeISACEnv

if TYPE_CHECKING:
    from scenarios.loader import Scenario


def agent_name(l: int) -> str:
    """The agent of AP ``l``: ``"ap_<l>"``."""
    return f"ap_{l}"


def act_agents(policy: Any, observations: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every agent's action from a distributed policy, AP by AP.

    Args:
        policy: a :class:`policies.DistributedPolicy` (``act_ap(l, csi_l (B, 2, M, Q))``).
        observations: ``{"ap_l": (2, M, Q) float32}`` as returned by ``reset``/``step``.

    Returns:
        ``{"ap_l": beams (2, M, Q) float32}``: AP ``l``'s beams computed from its own CSI only.
    """
    out = {}
    for agent, obs in observations.items():
        l = int(agent.rsplit("_", 1)[1])
        out[agent] = np.asarray(policy.act_ap(l, np.asarray(obs, np.float32)[None])[0],
                                dtype=np.float32)
    return out


class CellFreeISACParallelEnv(ParallelEnv):
    """Cell-free ISAC with one agent per AP (module docstring).

    Args:
        scenario, users, render_mode, action_mode, **overrides: as
            :class:`cfisac_env.envs.env.CellFreeISACEnv`.

    Spaces (the same object on every call): observation ``Box((2, M, Q))`` (bounded as the
    single env's); action ``Box(-sqrt(P_l), sqrt(P_l), (2, M, Q))`` for ``"beams"``,
    ``Box(-1, 1, (2, M, Q))`` for ``"normalized"``.

    ``reset(seed, options)``: ``options`` ``ue_xy (N, 2)`` / ``target_xy (2,)`` metres as in
    the single env; other keys are ignored with a warning (PettingZoo's API test passes
    arbitrary options). ``step(actions)`` needs an action for every live agent; the episode
    ends for all agents at once (truncation: the scenario's episode length, or the target
    leaving the road), after which ``agents`` is empty until the next ``reset``.
    """

    metadata = {"name": "cfisac_cellfree_isac_v0", "render_modes": ["rgb_array"],
                "render_fps": 10, "is_parallelizable": True}

    def __init__(self, scenario: str | Scenario = "pos2", users: int | None = None,
                 render_mode: str | None = None, action_mode: str = "beams",
                 **overrides: Any) -> None:
        self.env = CellFreeISACEnv(scenario, users, render_mode=render_mode,
                                   action_mode=action_mode, **overrides)
        self.system = self.env.system
        self.scenario = self.env.scenario
        self.render_mode = render_mode
        s = self.system
        self.possible_agents = [agent_name(l) for l in range(s.L)]
        self.agents: list[str] = []
        self._index = {a: l for l, a in enumerate(self.possible_agents)}
        full = self.env.observation_space
        one = (2, s.M, s.Q)
        self.observation_spaces = {a: spaces.Box(float(full.low.min()), float(full.high.max()),
                                                 one, np.float32) for a in self.possible_agents}
        amp = [1.0 if action_mode == "normalized" else float(np.sqrt(p)) for p in s.P]
        self.action_spaces = {a: spaces.Box(-amp[l], amp[l], one, np.float32)
                              for l, a in enumerate(self.possible_agents)}
        self.state_space = full
        self._obs: np.ndarray | None = None

    # ---- spaces ------------------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Box:
        """Agent ``agent``'s own CSI, ``(2, M, Q)`` float32."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        """Agent ``agent``'s own beams, ``(2, M, Q)`` float32."""
        return self.action_spaces[agent]

    # ---- episode -----------------------------------------------------------------------------
    def _split(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {a: obs[l].copy() for a, l in self._index.items()}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode: ``{agent: (2, M, Q)}`` observations and ``{agent: info}``."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            warnings.warn(f"ignoring unknown reset options {unknown}; expected "
                          f"{', '.join(RESET_OPTIONS)}", stacklevel=2)
            options = {k: v for k, v in options.items() if k in RESET_OPTIONS}
        self._obs, info = self.env.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        return self._split(self._obs), {a: dict(info) for a in self.agents}

    def step(self, actions: dict[str, np.ndarray]) -> tuple[
            dict[str, np.ndarray], dict[str, float], dict[str, bool], dict[str, bool],
            dict[str, dict[str, Any]]]:
        """One decision: every live agent's beams ``(2, M, Q)`` -> per-agent observations,
        team reward, terminations (always False), truncations and the team ``info``."""
        if not self.agents:
            raise ValueError("the episode is over (no live agents); call reset() first")
        missing = [a for a in self.agents if a not in actions]
        extra = [a for a in actions if a not in self._index]
        if missing or extra:
            raise ValueError(f"step needs one action per live agent {self.agents}; missing "
                             f"{missing}, unknown {extra}")
        s = self.system
        beams = np.empty(s.csi_shape, np.float32)
        for a, l in self._index.items():
            act = np.asarray(actions[a])
            shape = f"(2, M, Q) = (2, {s.M}, {s.Q}) (axis 0 = real, imag)"
            if act.shape != (2, s.M, s.Q):
                raise ValueError(f"the action of {a} must have shape {shape}, got {act.shape}")
            if np.iscomplexobj(act) or not np.issubdtype(act.dtype, np.number):
                raise ValueError(f"the action of {a} must be real floats of shape {shape}, got "
                                 f"dtype {act.dtype}")
            if not np.all(np.isfinite(act)):
                raise ValueError(f"the action of {a} contains NaN or inf; expected finite floats "
                                 f"of shape {shape}")
            beams[l] = act
        self._obs, reward, terminated, truncated, info = self.env.step(beams)
        agents = list(self.agents)
        out = (self._split(self._obs), dict.fromkeys(agents, float(reward)),
               dict.fromkeys(agents, bool(terminated)), dict.fromkeys(agents, bool(truncated)),
               {a: dict(info) for a in agents})
        if terminated or truncated:
            self.agents = []
        return out

    def state(self) -> np.ndarray:
        """The whole system's CSI of the coming decision, ``(L, 2, M, Q)`` float32."""
        if self._obs is None:
            raise ValueError("call reset() before state()")
        return self._obs.copy()

    def render(self) -> np.ndarray | None:
        """``(H, W, 3)`` uint8 frame (``render_mode="rgb_array"``), else None."""
        return self.env.render()

    def close(self) -> None:
        self.env.close()


def parallel_env(scenario: str | Scenario = "pos2", users: int | None = None,
                 **kwargs: Any) -> CellFreeISACParallelEnv:
    """``CellFreeISACParallelEnv(scenario, users, **kwargs)`` (see the class)."""
    return CellFreeISACParallelEnv(scenario, users, **kwargs)
