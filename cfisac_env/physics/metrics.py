"""The ISAC metrics: per-UE SINR (seed eq. 2), SSNR (eq. 6), g1/g2 and the power budget.

ONE implementation for NumPy (evaluation) and torch (training): every function takes arrays in the
float layout ``(..., L, 2, M, Q)`` (docs/system.md) and works on ``numpy.ndarray`` (computed in
float64) or ``torch.Tensor`` (differentiable, in the tensor's dtype/device), batched over any
leading axes.

Notation (per AP ``l``): CSI ``H_l = [h_l1 ... h_lN, a_l]`` and beams ``W_l = [w_l1 ... w_lQ]``,
both ``(..., L, 2, M, Q)``; the last beam (index ``N``) is the sensing beam.

    G[n, q]  = sum_l h_ln^H w_lq                       (effective gain of beam q at UE n)
    SINR_n   = |G[n, n]|^2 / (sum_{q != n} |G[n, q]|^2 + sigma_n^2)
    SSNR     = sigma_s^2 * sum_l ||a_l^H W_l||^2 / sigma_r^2
    g1 = SSNR,   g2 = min_n SINR_n
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cfisac_env.physics.system import System

Array = Any  # numpy.ndarray or torch.Tensor


#: Relative tolerance of the power budget: an AP is over budget when its power exceeds
#: ``P_l (1 + POWER_RTOL)`` (float32 rounding of a beam normalised to exactly ``P_l`` stays inside).
POWER_RTOL = 1e-6

def _is_torch(x: Array) -> bool:
    return type(x).__module__.startswith("torch")


def _prep(*xs: Array) -> tuple[Any, list[Array]]:
    """Namespace (numpy/torch) and the inputs, NumPy ones promoted to float64."""
    if _is_torch(xs[0]):
        import torch

        return torch, list(xs)
    return np, [np.asarray(x, dtype=np.float64) for x in xs]


def _budget(system: System, like: Array) -> Array:
    """Per-AP budgets ``(L,)`` in the namespace, dtype and device of ``like``."""
    if _is_torch(like):
        import torch

        return torch.as_tensor(system.P, dtype=like.dtype, device=like.device)
    return system.P


def gains(csi: Array, beams: Array, system: System) -> tuple[Array, Array]:
    """Effective gains ``G[n, q] = sum_l h_ln^H w_lq``.

    Args:
        csi, beams: ``(..., L, 2, M, Q)``.

    Returns:
        ``(re, im)``, each ``(..., N, Q)``.
    """
    xp, (h, w) = _prep(csi, beams)
    hr, hi = h[..., 0, :, : system.N], h[..., 1, :, : system.N]       # (..., L, M, N)
    wr, wi = w[..., 0, :, :], w[..., 1, :, :]                           # (..., L, M, Q)
    re = xp.einsum("...lmn,...lmq->...nq", hr, wr) + xp.einsum("...lmn,...lmq->...nq", hi, wi)
    im = xp.einsum("...lmn,...lmq->...nq", hr, wi) - xp.einsum("...lmn,...lmq->...nq", hi, wr)
    return re, im


def sinr(csi: Array, beams: Array, system: System) -> Array:
    """Per-UE SINR (seed eq. 2), linear: ``(..., L, 2, M, Q)`` x2 -> ``(..., N)``.

    Every other communication beam and the sensing beam count as interference.
    """
    re, im = gains(csi, beams, system)
    p = re**2 + im**2                                                    # (..., N, Q)
    n = system.N
    if _is_torch(p):
        desired = p.diagonal(dim1=-2, dim2=-1)[..., :n]                # (..., N)
    else:
        desired = np.diagonal(p, axis1=-2, axis2=-1)[..., :n]
    interference = p.sum(axis=-1) - desired
    return desired / (interference + system.ue_noise)


def min_sinr(csi: Array, beams: Array, system: System) -> Array:
    """g2 = min_n SINR_n: ``(..., L, 2, M, Q)`` x2 -> ``(...)``."""
    s = sinr(csi, beams, system)
    return s.amin(axis=-1) if _is_torch(s) else s.min(axis=-1)


def ssnr(csi: Array, beams: Array, system: System) -> Array:
    """g1 = sensing SNR (seed eq. 6): ``(..., L, 2, M, Q)`` x2 -> ``(...)``.

    ``sigma_s^2 * sum_l ||a_l^H W_l||^2 / sigma_r^2``; its bound is ``system.ssnr_bound``.
    """
    xp, (h, w) = _prep(csi, beams)
    ar, ai = h[..., 0, :, -1], h[..., 1, :, -1]                         # (..., L, M)
    wr, wi = w[..., 0, :, :], w[..., 1, :, :]
    re = xp.einsum("...lm,...lmq->...lq", ar, wr) + xp.einsum("...lm,...lmq->...lq", ai, wi)
    im = xp.einsum("...lm,...lmq->...lq", ar, wi) - xp.einsum("...lm,...lmq->...lq", ai, wr)
    return system.sensing_gain / system.radar_noise * (re**2 + im**2).sum(axis=(-2, -1))


def g1_g2(csi: Array, beams: Array, system: System) -> tuple[Array, Array]:
    """``(g1, g2) = (SSNR, min-SINR)``, each ``(...)``."""
    return ssnr(csi, beams, system), min_sinr(csi, beams, system)


def isac_objective(g1: Array, g2: Array, beta: float) -> Array:
    """The seed's weighted ISAC objective ``(1 - beta) * g1 + beta * g2`` (teacher loss, eq. 10,
    is its negative): beta = 0 is pure sensing, beta = 1 pure communication."""
    return (1.0 - beta) * g1 + beta * g2


def ap_power(beams: Array) -> Array:
    """Per-AP transmit power ``sum_q ||w_lq||^2``: ``(..., L, 2, M, Q)`` -> ``(..., L)``, W."""
    _, (w,) = _prep(beams)
    return (w**2).sum(axis=(-3, -2, -1))


def normalize_power(beams: Array, system: System, eps: float = 1e-12) -> Array:
    """Scale each AP's beams to spend exactly its budget (seed eqs. 17-18).

    ``W_l <- sqrt(P_l) * W_l / ||W_l||_F``; shape ``(..., L, 2, M, Q)`` kept.
    """
    xp, (w,) = _prep(beams)
    scale = xp.sqrt(_budget(system, w) / (ap_power(w) + eps))
    return w * scale[..., None, None, None]


def project_power(beams: Array, system: System) -> tuple[Array, Array]:
    """Project onto the budget: scale down any AP with ``sum_q ||w_lq||^2 > P_l``.

    Returns:
        ``(beams, scaled)``: beams ``(..., L, 2, M, Q)`` and a bool ``(..., L)`` marking the APs
        that were scaled down. APs within budget are returned unchanged.
    """
    xp, (w,) = _prep(beams)
    p = ap_power(w)
    budget = _budget(system, w)
    over = p > budget * (1.0 + POWER_RTOL)
    if xp is np and not np.all(np.isfinite(p)):
        # |w| ~ 1e155 and beyond: the power overflows to inf. Scale by the largest entry first
        # so that such beams are scaled to the budget, not zeroed.
        peak = np.abs(w).max(axis=(-3, -2, -1))
        peak = np.where(peak > 0, peak, 1.0)
        unit = w / peak[..., None, None, None]
        scaled = unit * np.sqrt(budget / ap_power(unit))[..., None, None, None]
        return np.where(over[..., None, None, None], scaled, w), over
    scale = xp.sqrt(xp.minimum(budget / xp.where(over, p, budget), xp.ones_like(p)))
    return w * scale[..., None, None, None], over
