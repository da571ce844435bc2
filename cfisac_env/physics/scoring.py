"""Scoring a batch of beams on a batch of drops: budget projection, metrics and reward.

Shared by the single and the vector environment so both score identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfisac_env.physics import metrics
from cfisac_env.physics.system import System

REWARDS = ("sensing", "communication", "weighted")


@dataclass
class Score:
    """Metrics of ``B`` drops: ``ssnr (B,)``, ``sinr (B, N)``, ``min_sinr (B,)`` (linear),
    ``reward (B,)``, ``ap_power (B, L)`` W as requested, ``power_scaled (B, L)`` bool and the
    projected ``beams (B, L, 2, M, Q)`` that were scored."""

    ssnr: np.ndarray
    sinr: np.ndarray
    min_sinr: np.ndarray
    reward: np.ndarray
    ap_power: np.ndarray
    power_scaled: np.ndarray
    beams: np.ndarray


def check_reward(kind: str, beta: float) -> None:
    """Raise ``ValueError`` for an unknown reward kind or beta outside [0, 1]."""
    if kind not in REWARDS:
        raise ValueError(f"unknown reward {kind!r}; expected one of {REWARDS}")
    if not 0.0 <= float(beta) <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")


def reward_of(g1: np.ndarray, g2: np.ndarray, kind: str, beta: float) -> np.ndarray:
    """Reward from g1 = SSNR and g2 = min-SINR: ``sensing`` -> g1, ``communication`` -> g2,
    ``weighted`` -> the teacher-loss objective with ``beta`` (``metrics.isac_objective``)."""
    beta = {"sensing": 0.0, "communication": 1.0}.get(kind, beta)
    return metrics.isac_objective(g1, g2, beta)


def score(csi: np.ndarray, beams: np.ndarray, system: System, reward: str = "weighted",
          beta: float = 0.5) -> Score:
    """Project ``beams (B, L, 2, M, Q)`` onto the budget and score them on ``csi`` (same shape,
    or any shape the leading axes broadcast to)."""
    ap_power = metrics.ap_power(beams)
    beams, scaled = metrics.project_power(beams, system, ap_power)
    sinr = metrics.sinr(csi, beams, system)
    g1 = metrics.ssnr(csi, beams, system)
    g2 = sinr.min(axis=-1)
    return Score(g1, sinr, g2, reward_of(g1, g2, reward, beta), ap_power, scaled, beams)
