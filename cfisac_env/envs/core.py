"""The one batched core behind every view of ``cfisac/CellFreeISAC-v0``.

:class:`Core` runs ``B`` independent episodes of one scenario: reset, action -> beams, scoring,
``info`` and truncation, all over a leading batch axis. The Gymnasium env
(:class:`cfisac_env.envs.env.CellFreeISACEnv`) is the batch of one, the vector env
(:class:`cfisac_env.envs.vector_env.CellFreeISACVectorEnv`) the batch of ``num_envs`` and the
PettingZoo view (:mod:`cfisac_env.envs.multiagent`) splits the batch of one by AP; they share this
code, so they score identically.

Actions (``action_mode``):

- ``"beams"`` (default): the beams themselves, ``(L, 2, M, Q)`` float32 in W^(1/2); an AP over its
  budget ``sum_q ||w_lq||^2 <= P_l`` is scaled down to it (and ``info["power_scaled"]`` says so).
- ``"normalized"``: every entry in ``[-1, 1]``; AP ``l``'s block is scaled onto its FULL budget
  by the seed's eqs. 17-18 (:func:`cfisac_env.physics.metrics.normalize_power`,
  ``W_l = sqrt(P_l) A_l / ||A_l||_F``), so any Box-action agent explores valid beams that spend
  the whole budget (an all-zero block stays zero). The direction of ``A_l`` is what matters, not
  its scale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from cfisac_env.physics import metrics
from cfisac_env.physics.scoring import check_reward, score
from cfisac_env.physics.system import System
from cfisac_env.physics.validation import check_beams
from cfisac_env.sim.sensing import SENSING_KEYS, EchoSensing
from cfisac_env.sim.world import World

if TYPE_CHECKING:
    from scenarios.loader import Scenario

ACTION_MODES = ("beams", "normalized")
RESET_OPTIONS = ("ue_xy", "target_xy")
#: ``info`` keys that :meth:`Core.step` fills for every scored sub-episode
STEP_KEYS = ("ssnr", "min_sinr", "sinr", "ap_power", "power_scaled", "power_scaled_any")
#: ``info`` keys that :meth:`Core.reset` fills (positions, metres)
POSITION_KEYS = ("ap_xy", "ue_xy", "target_xy")


#: float64 entries of the scorer's largest temporary per chunk of drops (the UE channels with
#: their rotation, ``2 L M x 2 N`` a drop; :func:`cfisac_env.physics.metrics.gains`): ~2 MB, so
#: a chunk's products run in cache instead of streaming the whole batch through memory.
SCORE_CHUNK_ENTRIES = 1 << 18


def score_batch(csi: np.ndarray, beams: np.ndarray, system: System, reward: str, beta: float
                ) -> dict[str, np.ndarray]:
    """The metrics of :func:`cfisac_env.physics.scoring.score` for ``csi (B, K, L, 2, M, Q)``
    and held ``beams (B, 1, L, 2, M, Q)``, a chunk of drops at a time (the same numbers: every
    drop is scored on its own): ``ssnr``, ``sinr``, ``min_sinr``, ``reward``, ``ap_power`` and
    ``power_scaled``, each with leading axes ``(B, K)`` or ``(B, 1)`` as ``score`` returns them
    (the projected beams are not kept)."""
    b, k = csi.shape[:2]
    rows = max(1, SCORE_CHUNK_ENTRIES // (4 * system.L * system.M * system.N * k))
    keys = ("ssnr", "sinr", "min_sinr", "reward", "ap_power", "power_scaled")
    out: dict[str, np.ndarray] = {}
    for start in range(0, b, rows):
        part = score(csi[start:start + rows], beams[start:start + rows], system, reward, beta)
        for key in keys:
            value = getattr(part, key)
            if key not in out:
                out[key] = np.empty((b, *value.shape[1:]), value.dtype)
            out[key][start:start + rows] = value
    return out


def interval_mean(x: np.ndarray) -> np.ndarray:
    """The mean of ``x (B, K, ...)`` over the ``K`` steps of a decision interval; the step itself
    when ``K = 1`` (the same numbers as ``mean``, without its cost)."""
    return x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)


def make_scenario(scenario: str | Scenario, users: int | None, overrides: dict[str, Any]
                  ) -> Scenario:
    """Resolve the env's scenario argument plus overrides (dotted or bare field names).

    ``scenario`` is a name, a TOML path or an already loaded :class:`scenarios.Scenario`
    (then ``users`` and ``overrides`` must be empty)."""
    from scenarios.loader import Scenario, load

    if isinstance(scenario, Scenario):
        if users is not None or overrides:
            raise ValueError("pass either a loaded Scenario or a name with overrides, not both")
        return scenario
    return load(scenario, users=users, overrides=overrides)


def observed_bounded(world: World) -> bool:
    """Whether every observed CSI entry has modulus <= 1 (see :func:`spaces_for`)."""
    return world.channel.bounded and world.csi_error.nmse == 0


def spaces_for(system: System, bounded: bool = True, action_mode: str = "beams"
               ) -> tuple[spaces.Box, spaces.Box]:
    """Observation and action space of ONE episode, each ``(L, 2, M, Q)`` float32.

    Observation entries lie in [-1, 1] when ``bounded`` (LoS CSI, with or without path loss,
    estimated perfectly: every entry has modulus <= 1); fading or estimation noise make them
    unbounded. Actions: ``"beams"``, each entry within the largest AP budget's square root (the
    budget itself is enforced by projection); ``"normalized"``, each entry in [-1, 1]."""
    hi = 1.0 if bounded else np.inf
    obs = spaces.Box(-hi, hi, system.csi_shape, np.float32)
    amp = 1.0 if action_mode == "normalized" else float(np.sqrt(system.P.max()))
    return obs, spaces.Box(-amp, amp, system.csi_shape, np.float32)


def check_options(options: dict[str, Any] | None, extra: tuple[str, ...] = ()
                  ) -> dict[str, Any]:
    """``options`` of ``reset`` as a dict; a key that is neither a reset option nor one of
    ``extra`` (a wrapper's own, e.g. the vector env's ``reset_mask``) is a ``ValueError``."""
    options = dict(options or {})
    accepted = (*RESET_OPTIONS, *extra)
    unknown = set(options) - set(accepted)
    if unknown:
        raise ValueError(f"unknown reset options {sorted(unknown)}; expected "
                         f"{', '.join(accepted)}")
    return options


class Core:
    """``B`` independent episodes of one scenario.

    Args:
        scenario: the resolved scenario.
        batch: ``B`` >= 1.
        action_mode: ``"beams"`` or ``"normalized"`` (module docstring).
        episode_steps: decisions per episode; default ``env.episode_steps`` of the scenario.
        draw_ahead: the generators given to :meth:`reset` are this core's alone (the vector
            env's), so static drops may be drawn ahead (:class:`cfisac_env.sim.ahead.DrawAhead`).

    State: ``steps (B,)`` decisions taken in each episode, ``beams (B, L, 2, M, Q)`` the beams
    last scored (after projection/normalisation; zeros before the first step).
    """

    def __init__(self, scenario: Scenario, batch: int = 1, action_mode: str = "beams",
                 episode_steps: int | None = None, draw_ahead: bool = False) -> None:
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        if int(batch) < 1:
            raise ValueError(f"the batch (num_envs) must be >= 1, got {batch}")
        self.scenario, self.batch, self.action_mode = scenario, int(batch), action_mode
        self.system: System = scenario.system
        cfg = scenario.config["env"]
        self.reward_kind, self.beta = cfg["reward"], float(cfg["beta"])
        check_reward(self.reward_kind, self.beta)
        self.episode_steps = int(episode_steps or cfg["episode_steps"])
        if self.episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {episode_steps}")
        self.world = World(scenario, self.batch, draw_ahead)
        self.observation_space, self.action_space = spaces_for(
            self.system, observed_bounded(self.world), action_mode)
        self.steps = np.zeros(self.batch, dtype=int)
        #: the beams last given, before the budget projection (float64, reused every step: a
        #: fresh array of the batch's beams each step would cost its page faults every step)
        self._held = np.zeros((self.batch, *self.system.csi_shape))
        self._beams: np.ndarray | None = None    # their projection, float32, when asked for
        self.rngs: list[np.random.Generator] = []
        #: echo sensing (``sensing.mode = "echo"``: the target column from a tracker), else None
        self.sensing = EchoSensing.of(scenario, self.batch)
        self.step_keys = STEP_KEYS + (SENSING_KEYS if self.sensing else ())

    # ---- views of the state ------------------------------------------------------------------
    @property
    def beams(self) -> np.ndarray:
        """The beams last scored ``(B, L, 2, M, Q)`` float32, after the budget projection
        (projected when first asked for: a step keeps only the beams it was given)."""
        if self._beams is None:
            self._beams = metrics.project_power(self._held, self.system)[0].astype(np.float32)
        return self._beams

    def obs(self) -> np.ndarray:
        """Estimated CSI of the coming decision ``(B, L, 2, M, Q)`` float32 (a copy; in echo
        mode its target column is the tracker's)."""
        obs = self.world.observed.copy()
        return obs if self.sensing is None else self.sensing.fill(obs)

    def positions(self, idx: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``ap_xy (B, L, 2)``, ``ue_xy (B, N, 2)``, ``target_xy (B, 2)`` metres (copies) of the
        coming decision, for episodes ``idx`` (all by default)."""
        idx = np.arange(self.batch) if idx is None else np.asarray(idx)
        s = self.system
        return {"ap_xy": np.broadcast_to(s.ap_positions, (len(idx), s.L, 2)).copy(),
                "ue_xy": self.world.ue_xy[idx].copy(),
                "target_xy": self.world.target_xy[idx].copy()}

    # ---- reset / step ------------------------------------------------------------------------
    def reset(self, rngs: list[np.random.Generator], idx: np.ndarray | None = None,
              options: dict[str, Any] | None = None) -> None:
        """Start episodes ``idx`` (all by default) afresh; episode ``i`` draws everything from
        ``rngs[i]`` from now on. ``options``: ``ue_xy (N, 2)`` / ``target_xy (2,)`` metres place
        the entities of every reset episode explicitly."""
        if len(rngs) != self.batch:
            raise ValueError(f"expected {self.batch} generators, got {len(rngs)}")
        options = check_options(options)
        self.rngs = list(rngs)
        idx = np.arange(self.batch) if idx is None else np.asarray(idx)
        self.world.reset(self.rngs, idx, ue_xy=options.get("ue_xy"),
                         target_xy=options.get("target_xy"))
        self.steps[idx] = 0
        self._held[idx] = 0.0
        if self._beams is not None:
            self._beams[idx] = 0.0
        if self.sensing is not None:
            self.sensing.reset(self.rngs, idx, self.world)

    def to_beams(self, actions: np.ndarray, checked: bool = False) -> np.ndarray:
        """Actions ``(B, L, 2, M, Q)`` -> beams before the budget projection (``"normalized"``:
        each AP onto its full budget, eqs. 17-18), float64 in the held-beams buffer (which the
        next call overwrites); validated unless ``checked``."""
        a = actions if checked else check_beams(actions, self.system, batch=self.batch,
                                                 what="actions")
        if self.action_mode == "normalized":
            a = metrics.normalize_power(np.clip(a, -1.0, 1.0), self.system)
        np.copyto(self._held, a)                  # float64 once here, not in every metric
        self._beams = None
        return self._held

    def step(self, actions: np.ndarray, active: np.ndarray | None = None, checked: bool = False
             ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Score ``actions (B, L, 2, M, Q)`` on the drops the current observation describes.

        ``active (B,)`` bool (default all): episodes that move on; the others (about to be
        reset) are scored in place but draw nothing and do not advance. ``checked``: the
        actions were validated already (finite real floats of the right shape).

        Returns:
            ``reward (B,)`` float, ``truncated (B,)`` bool (episode length reached or, on a
            road, the target left the simulated stretch) and ``info``: ``ssnr (B,)``,
            ``min_sinr (B,)``, ``sinr (B, N)`` (linear; on a road averaged over the decision
            interval), ``ap_power (B, L)`` W requested, ``power_scaled (B, L)`` bool,
            ``power_scaled_any (B,)`` and the positions at the decision instant ``ap_xy
            (B, L, 2)``, ``ue_xy (B, N, 2)``, ``target_xy (B, 2)`` metres.
        """
        beams = self.to_beams(actions, checked)
        seg = self.world.interval(active)             # K steps: (B, K, ...), beams held
        scored = score_batch(seg.true_csi, beams[:, None], self.system, self.reward_kind,
                             self.beta)
        s = self.system
        info = {
            "ssnr": interval_mean(scored["ssnr"]),
            "min_sinr": interval_mean(scored["min_sinr"]),
            "sinr": interval_mean(scored["sinr"]),
            "ap_xy": np.broadcast_to(s.ap_positions, (self.batch, s.L, 2)).copy(),
            "ue_xy": seg.ue_xy[:, 0].copy(),
            "target_xy": seg.target_xy[:, 0].copy(),
            "ap_power": scored["ap_power"][:, 0],
            "power_scaled": scored["power_scaled"][:, 0],
            "power_scaled_any": scored["power_scaled"][:, 0].any(axis=-1),
        }
        reward = interval_mean(scored["reward"])
        if self.sensing is not None:       # echo, tracker update, next prediction
            extra, tracking = self.sensing.step(self.world, seg, self.beams, active)
            info.update(extra)
            reward = reward + tracking
        self.steps += 1
        truncated = (self.steps >= self.episode_steps) | ~self.world.target_on_road()
        return reward, truncated, info
