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

import functools

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
    return steering_cos(np.cos(np.asarray(phi, dtype=float)), antennas, spacing)


def steering_cos(u: np.ndarray, antennas: int, spacing: float = 0.5) -> np.ndarray:
    """ULA steering vectors of direction cosines ``u = cos(phi)``, any shape ``S`` ->
    ``S + (M,)`` complex128, ``exp(j 2 pi spacing k u)`` (the form angle estimators search)."""
    k = np.arange(antennas)
    return np.exp(2j * np.pi * spacing * np.asarray(u, dtype=float)[..., None] * k)


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
    m, q = system.M, system.Q
    lead = pts.shape[:-2]
    # 2 pi d cos(phi) per AP and entity; x and y apart (a broadcast over the last axis of
    # (x, y) pairs would run an inner loop of two entries)
    ap = system.ap_positions
    dx = pts[..., None, :, 0] - ap[:, 0, None]                          # (..., L, Q)
    dy = pts[..., None, :, 1] - ap[:, 1, None]
    r = np.hypot(dx, dy)
    cos_phi = np.divide(dx, r, out=np.zeros_like(r), where=r > 0)      # broadside at an AP
    step = 2.0 * np.pi * system.spacing * cos_phi                       # (..., L, Q)
    # Phase k * step in float64, reduced to [-pi, pi) before the float32 trig: exact to ~1e-7.
    # Antenna 0 has phase 0 exactly (reduced: 0, so cos 1 and sin 0); the others are computed.
    out = np.empty((*lead, system.L, 2, m, q), np.float32)
    rows = step.reshape(-1, q)                                          # (R, Q), R = prod(...) L
    flat = out.reshape(-1, 2, m * q)                                    # (R, 2, M Q)
    flat[:, 0, :q], flat[:, 1, :q] = 1.0, 0.0
    ramp = _ramp(m, q)
    per = max(1, TRIG_CHUNK // (m * q))
    bound = (m - 1) * float(np.abs(rows).max(initial=0.0))              # largest |phase|
    for i in range(0, len(rows), per):                                  # cache-sized pieces
        phase = wrapped_phase(rows[i:i + per] @ ramp, bound=bound)      # (R', (M-1) Q): k * step
        np.cos(phase, out=flat[i:i + per, 0, q:])
        np.sin(phase, out=flat[i:i + per, 1, q:])
    return out


@functools.lru_cache(maxsize=64)
def _ramp(m: int, q: int) -> np.ndarray:
    """``(Q, (M - 1) Q)`` float64 with ``[j, (k - 1) Q + j] = k`` for ``k = 1 .. M-1``, else 0:
    ``step (R, Q) @ ramp`` is ``step[:, j] * k`` at ``[:, (k - 1) Q + j]``, the same float64
    product as ``step * k`` (one non-zero term per sum, so the product is exact in any summation
    order), every entry written once by one matrix product instead of a broadcast with an inner
    loop of ``Q``."""
    ramp = np.zeros((q, m - 1, q))
    j = np.arange(q)
    ramp[j, :, j] = np.arange(1, m, dtype=float)
    ramp = ramp.reshape(q, (m - 1) * q)
    ramp.setflags(write=False)
    return ramp


#: Entries of the phase array per piece in :func:`csi` (fits in cache).
TRIG_CHUNK = 1 << 14
#: Largest phase magnitude :func:`wrapped_phase` assumes unless told (radians; every M the
#: scenarios allow).
PHASE_BOUND = 2.0**14


def wrap_slack(bound: float) -> float:
    """How far the fast reduction in :func:`wrapped_phase` may land from ``%`` for phases up
    to ``bound`` in magnitude, with a margin of 4x (radians): 4 float64 ulps of ``bound + 2 pi``
    (``y = phase + pi`` is the same in both; the reduction's product ``n * 2 pi`` and the
    subtractions after it each round by at most half an ulp of what they hold). ``2**-36`` at
    :data:`PHASE_BOUND`."""
    return 4.0 * float(np.spacing(abs(bound) * (1.0 + 1e-12) + 2.0 * np.pi))


def wrapped_phase(phase: np.ndarray, chunk: int = 1 << 14, bound: float = PHASE_BOUND
                  ) -> np.ndarray:
    """``float32((phase + pi) % (2 pi) - pi)`` of float64 ``phase`` (any shape, every entry at
    most ``bound`` in magnitude), bit for bit.

    ``%`` on floats (an exact ``fmod``) costs ~50 ns an entry; the reduction here uses ``floor``
    (a few ns) and is within :func:`wrap_slack` of it. Wherever that slack could change the
    float32 result (the reduced value is that close to a float32 rounding boundary, or to a
    period boundary), the entry is recomputed with ``%`` itself, so the output is identical (the
    tighter ``bound``, the smaller the slack and the fewer such entries).
    Works in cache-sized chunks of ``chunk`` entries, in place.
    """
    flat = np.ascontiguousarray(phase, dtype=np.float64).reshape(-1)
    out = np.empty(flat.shape, np.float32)
    two_pi = 2.0 * np.pi
    slack = wrap_slack(bound)
    y, r, lo = np.empty(chunk), np.empty(chunk), np.empty(chunk, np.float32)
    for start in range(0, flat.size, chunk):
        n = min(chunk, flat.size - start)
        yc, rc, loc, oc = y[:n], r[:n], lo[:n], out[start:start + n]
        np.add(flat[start:start + n], np.pi, out=yc)                  # y = phase + pi
        np.multiply(yc, 1.0 / two_pi, out=rc)
        np.floor(rc, out=rc)
        rc *= two_pi
        np.subtract(yc, rc, out=rc)                                    # r = y mod 2 pi (~)
        unsure = (rc < 1e-9) | (rc > two_pi - 1e-9)
        rc -= np.pi + slack
        np.copyto(loc, rc, casting="same_kind")                        # float32(v - slack)
        rc += 2.0 * slack
        np.copyto(oc, rc, casting="same_kind")                         # float32(v + slack)
        unsure |= loc != oc
        if unsure.any():
            bad = np.flatnonzero(unsure) + start
            out[bad] = ((flat[bad] + np.pi) % two_pi - np.pi).astype(np.float32)
    return out.reshape(np.shape(phase))
