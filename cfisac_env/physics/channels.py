"""Steering vectors and line-of-sight CSI from positions (seed eq. 4).

The ULA of AP ``l`` lies along x; the angle ``phi`` of a point is ``atan2(dy, dx)`` from the AP, and

    a(phi)_k = exp(j * 2 * pi * d * k * cos(phi)),   k = 0 .. M-1,   d = spacing / wavelength.

This module is the seed's LoS channel: ``h_ln = a(angle AP l -> UE n)`` and the target steering
vector ``a_l = a(angle AP l -> target)`` (the other channel models, path loss and ageing live in
:mod:`cfisac_env.physics.propagation`). An entity exactly at an AP position has no angle; it is
taken at
broadside (``cos(phi) = 0``, ``a = 1``) so the CSI stays finite. The per-AP CSI is
``H_l = [h_l1 ... h_lN, a_l]`` (M x Q) and is stored as float32 ``(L, 2, M, Q)``, axis 1 = (real,
imag).
"""

from __future__ import annotations

import numpy as np

from cfisac_env.physics.system import System


def steering(phi: np.ndarray, antennas: int, spacing: float = 0.5) -> np.ndarray:
    """ULA steering vectors.

    Args:
        phi: angles, any shape ``S``, radians.
        antennas: ``M``.
        spacing: antenna spacing over wavelength.

    Returns:
        ``S + (M,)`` complex128, ``exp(j 2 pi spacing k cos(phi))``.
    """
    k = np.arange(antennas)
    return np.exp(2j * np.pi * spacing * np.cos(np.asarray(phi, dtype=float))[..., None] * k)


def entity_xy(ue_xy: np.ndarray, target_xy: np.ndarray) -> np.ndarray:
    """Stack UEs and target in beam order: ``(..., N, 2)`` and ``(..., 2)`` -> ``(..., Q, 2)``."""
    ue_xy = np.asarray(ue_xy, dtype=float)
    target_xy = np.asarray(target_xy, dtype=float)
    return np.concatenate([ue_xy, target_xy[..., None, :]], axis=-2)


def csi(system: System, ue_xy: np.ndarray, target_xy: np.ndarray) -> np.ndarray:
    """Per-AP LoS CSI from positions, batched over any leading axes.

    Args:
        system: the system (AP positions, M, spacing).
        ue_xy: UE positions ``(..., N, 2)``, metres.
        target_xy: target position ``(..., 2)``, metres.

    Returns:
        ``(..., L, 2, M, Q)`` float32: ``[..., l, 0]`` real and ``[..., l, 1]`` imaginary part of
        ``H_l = [h_l1 ... h_lN, a_l]``.
    """
    pts = entity_xy(ue_xy, target_xy)                                   # (..., Q, 2)
    if pts.shape[-2] != system.Q:
        raise ValueError(
            f"expected {system.N} UE positions (N, 2) and a target (2,), got ue_xy "
            f"{np.shape(ue_xy)} and target_xy {np.shape(target_xy)}"
        )
    d = pts[..., None, :, :] - system.ap_positions[:, None]            # (..., L, Q, 2)
    r = np.hypot(d[..., 0], d[..., 1])                                  # (..., L, Q)
    cos_phi = np.divide(d[..., 0], r, out=np.zeros_like(r), where=r > 0)  # broadside at an AP
    # Phase in float64, reduced to [-pi, pi) before the float32 trig: exact to ~1e-7.
    step = 2.0 * np.pi * system.spacing * cos_phi                       # (..., L, Q)
    phase = step[..., None, :] * np.arange(system.M)[:, None]           # (..., L, M, Q)
    phase = (phase + np.pi) % (2.0 * np.pi) - np.pi
    phase = phase.astype(np.float32)
    return np.stack([np.cos(phase), np.sin(phase)], axis=-3)
