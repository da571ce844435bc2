"""Structured actions for RL agents: power shares over a fixed beam basis.

An agent acting on raw beams explores a ``2 L M Q``-dimensional space (576 numbers at the
defaults) where almost every point is a poor beamformer. :class:`PowerAllocation` gives it the
question a system designer actually asks: how to split each AP's budget between the users and the
target. The *directions* come from the CSI of the current observation, the NS+RZF basis of
:func:`policies.classic.ns_rzf_complex` (regularised zero-forcing towards the UEs, the target
steering vector projected onto the users' null space), normalised to unit norm per AP and beam;
the *action* ``x`` in ``[-1, 1]^(L x Q)`` sets the shares::

    s_lq = softmax_q(temperature * x_lq),   w_lq = sqrt(s_lq P_l) u_lq

so every action spends each AP's full budget, ``x = 0`` is the uniform split (``1/Q`` per beam),
and the beam structure of the seed's eq. 17-18 normalisation is kept. The agent sees the CSI and
must learn a split that depends on the drop; :func:`beams_from_shares` is the same map for a
saved agent scored as a cfisac policy (:class:`PowerAllocationPolicy`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_complex, to_layout
from cfisac_env.physics.system import System
from policies.base import Policy
from policies.classic import ns_rzf_complex

#: Logit scale: x = +-1 moves a beam's share by a factor of about e^3 against the others.
TEMPERATURE = 3.0


SENSING = ("ns", "cb")


def unit_basis(csi: np.ndarray, system: System, sensing: str = "ns") -> np.ndarray:
    """Unit-norm directions ``(B, L, M, Q)`` complex of ``csi (B, L, 2, M, Q)`` float: RZF
    towards the UEs and, for the sensing column, the target steering vector projected onto the
    users' null space (``sensing="ns"``: no interference at the UEs, part of the target gain
    lost) or the steering vector itself (``"cb"``, conjugate beam: the full target gain
    ``sigma_s^2 M`` per AP, interference at the UEs).

    A zero column (the target inside the users' span when ``M <= N``) stays zero.
    """
    if sensing not in SENSING:
        raise ValueError(f"sensing must be one of {SENSING}, got {sensing!r}")
    h = to_complex(np.asarray(csi, dtype=float))
    w = ns_rzf_complex(h, system, rho=0.5)
    if sensing == "cb":
        w[..., -1] = h[..., -1]
    return w / np.maximum(np.linalg.norm(w, axis=-2, keepdims=True), 1e-12)


def beams_from_shares(csi: np.ndarray, action: np.ndarray, system: System,
                      sensing: str = "ns") -> np.ndarray:
    """Beams ``(B, L, 2, M, Q)`` float32 of actions ``(B, L, Q)`` in [-1, 1] on ``csi``."""
    x = np.clip(np.asarray(action, dtype=float), -1.0, 1.0) * TEMPERATURE
    shares = np.exp(x - x.max(axis=-1, keepdims=True))
    shares /= shares.sum(axis=-1, keepdims=True)                        # (B, L, Q)
    amp = np.sqrt(shares * system.P[None, :, None])[:, :, None, :]      # (B, L, 1, Q)
    return to_layout(unit_basis(csi, system, sensing) * amp).astype(np.float32)


class PowerAllocation(gym.ActionWrapper):
    """Wrap ``cfisac/CellFreeISAC-v0`` (``action_mode="beams"``): actions become power shares
    ``(L, Q)`` in [-1, 1] over the directions of :func:`unit_basis` (``sensing``: ``"ns"`` or
    ``"cb"``) of the current observation."""

    def __init__(self, env: gym.Env, sensing: str = "ns") -> None:
        super().__init__(env)
        if sensing not in SENSING:
            raise ValueError(f"sensing must be one of {SENSING}, got {sensing!r}")
        self.system: System = env.unwrapped.system
        self.sensing = sensing
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.system.L, self.system.Q), np.float32)
        self._obs: np.ndarray | None = None

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        return obs, info

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        self._obs = obs
        return obs, reward, terminated, truncated, info

    def action(self, action: np.ndarray) -> np.ndarray:
        """Shares ``(L, Q)`` -> beams ``(L, 2, M, Q)`` on the observation being acted on."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        return beams_from_shares(self._obs[None], np.asarray(action)[None], self.system,
                                 self.sensing)[0]


def split_features(csi: np.ndarray, system: System, sensing: str = "ns") -> np.ndarray:
    """Features ``(B, 2, L, Q)`` float32 of ``csi (B, L, 2, M, Q)``, the numbers a power split
    has to weigh, both as ``log10`` (floored at -3):

    - ``[:, 0, l, q]``: the gain of basis direction ``u_lq`` on the column it serves,
      ``|h_lq^H u_lq|^2 / M`` (``q < N``: UE ``q``'s channel; ``q = N``: the target's steering
      vector);
    - ``[:, 1, l, q]``: what the uniform split (``x = 0``) gives: UE ``q``'s SINR (``q < N``,
      the same for every AP) and the SSNR (``q = N``).

    The second row carries the interference the RZF directions leave: with it, one step of
    "more power to the UE that gets least" is a linear function of the features.
    """
    csi = np.asarray(csi, dtype=float)
    h = to_complex(csi)                                                  # (B, L, M, Q)
    g = np.abs(np.einsum("blmq,blmq->blq", h.conj(), unit_basis(csi, system, sensing))) ** 2 \
        / system.M
    uniform = beams_from_shares(csi, np.zeros(g.shape), system, sensing)
    sinr = metrics.sinr(csi, uniform, system)                            # (B, N)
    ssnr = metrics.ssnr(csi, uniform, system)                            # (B,)
    served = np.concatenate([sinr, ssnr[:, None]], axis=-1)[:, None, :]  # (B, 1, Q)
    feats = np.stack([g, np.broadcast_to(served, g.shape)], axis=1)
    return np.log10(np.maximum(feats, 1e-3)).astype(np.float32)


class SplitFeatures(gym.ObservationWrapper):
    """Observe :func:`split_features` ``(2, L, Q)`` instead of the CSI. Put it outside
    :class:`PowerAllocation` (``SplitFeatures(PowerAllocation(env))``), which needs the CSI;
    it uses the same sensing direction."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.system: System = env.unwrapped.system
        self.sensing: str = getattr(env, "sensing", "ns")
        self.observation_space = gym.spaces.Box(-3.0, np.inf, (2, self.system.L, self.system.Q),
                                                np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """CSI ``(L, 2, M, Q)`` -> features ``(2, L, Q)``."""
        return split_features(np.asarray(observation)[None], self.system, self.sensing)[0]


class PowerAllocationPolicy(Policy):
    """A model trained on :class:`PowerAllocation` (anything with SB3's ``predict``) as a central
    cfisac policy: ``csi (B, L, 2, M, Q)`` -> beams of the same shape, every AP on its budget."""

    def __init__(self, system: System, model: Any, deterministic: bool = True,
                 sensing: str = "ns") -> None:
        super().__init__(system)
        self.model, self.deterministic, self.sensing = model, deterministic, sensing

    def act_batch(self, csi: np.ndarray) -> np.ndarray:
        actions, _ = self.model.predict(csi, deterministic=self.deterministic)
        shares = np.asarray(actions).reshape(len(csi), self.system.L, self.system.Q)
        return beams_from_shares(csi, shares, self.system, self.sensing)
