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

Input checks are O(1) (shapes and dtypes, never the values, so that training loops pay nothing):
``csi`` and ``beams`` must end in the system's ``(L, 2, M, Q)`` and their leading axes must
broadcast, else a ``ValueError`` names the expected and the received shapes; complex arrays are
refused (:func:`~cfisac_env.physics.layout.to_layout` converts them). torch tensors of different
float dtypes are promoted to the wider one (float32 CSI, float64 beams -> float64). NaN or inf
entries are not scanned for: they give NaN scores, as in any NumPy/torch arithmetic; the public
boundary (the env's ``step``, a policy's ``act``) rejects them with
:func:`~cfisac_env.physics.validation.check_beams`.
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


def _expected(system: System) -> str:
    L, _, M, Q = system.csi_shape
    return (f"(L, 2, M, Q) = {system.csi_shape} or, batched, (B, L, 2, M, Q) = "
            f"(B, {L}, 2, {M}, {Q}) for this system (L = {L} APs, M = {M} antennas, "
            f"Q = N + 1 = {Q} beams; axis -3 = real, imag)")


def _check_shape(x: Array, system: System, what: str) -> None:
    """O(1): ``x`` ends in ``system.csi_shape`` and is real, else a ``ValueError``."""
    shape = tuple(x.shape)
    if len(shape) < 4 or shape[-4:] != system.csi_shape:
        raise ValueError(f"{what} must have shape {_expected(system)}, got {shape}")
    if (x.is_complex() if _is_torch(x) else np.iscomplexobj(x)):
        raise ValueError(f"{what} must be real floats in the (L, 2, M, Q) real/imag layout, got "
                         f"complex dtype {x.dtype}; convert with cfisac_env.to_layout")


def _check_pair(csi: Array, beams: Array, system: System) -> None:
    """O(1): both end in ``system.csi_shape`` and their leading (batch) axes broadcast."""
    _check_shape(csi, system, "csi")
    _check_shape(beams, system, "beams")
    try:
        np.broadcast_shapes(tuple(csi.shape[:-4]), tuple(beams.shape[:-4]))
    except ValueError:
        raise ValueError(f"csi {tuple(csi.shape)} and beams {tuple(beams.shape)} do not match: "
                         "their batch axes before (L, 2, M, Q) must be equal or broadcast "
                         "(one beam set per drop, or one CSI for many beam sets)") from None


def _prep_pair(csi: Array, beams: Array, system: System) -> tuple[Any, Array, Array]:
    """Namespace (from ``csi``), CSI and beams, checked against ``system`` (shapes only, O(1));
    NumPy beams promoted to float64, the CSI left as it is (:func:`_with_rotated` reads it into
    float64: no separate copy). torch: beams that are not a tensor become one on the CSI's
    device, and two float dtypes are promoted to the wider one."""
    if _is_torch(csi):
        import torch

        if not _is_torch(beams):
            beams = torch.as_tensor(np.asarray(beams), device=csi.device)
        _check_pair(csi, beams, system)
        if csi.dtype != beams.dtype:
            dtype = torch.promote_types(csi.dtype, beams.dtype)
            if not dtype.is_floating_point:
                raise ValueError(f"csi and beams must be float tensors, got {csi.dtype} and "
                                 f"{beams.dtype}")
            csi, beams = csi.to(dtype), beams.to(dtype)
        return torch, csi, beams
    h, w = np.asarray(csi), np.asarray(beams)
    _check_pair(h, w, system)
    return np, h, w.astype(np.float64, copy=False)


def _budget(system: System, like: Array) -> Array:
    """Per-AP budgets ``(L,)`` in the namespace, dtype and device of ``like``."""
    if _is_torch(like):
        import torch

        return torch.as_tensor(system.P, dtype=like.dtype, device=like.device)
    return system.P


def _with_rotated(x: Array, xp: Any) -> Array:
    """``x (..., 2, M, K)`` (axis -3 = real, imag) -> ``(..., 2, M, 2K)``: the columns of ``x``,
    then the columns of ``j x``, laid out as ``(-Im x, Re x)``. For any ``w`` in the same layout,
    ``sum_(c, m) [x, j x][c, m, k] w[c, m, q]`` is ``Re(x_k^H w_q)`` for the first ``K`` columns
    and ``Re((j x_k)^H w_q) = Im(x_k^H w_q)`` for the last ``K``. NumPy: float64 (from any float
    input)."""
    xr, xi = x[..., 0, :, :], x[..., 1, :, :]
    if xp is not np:
        return xp.stack([xp.cat([xr, -xi], dim=-1), xp.cat([xi, xr], dim=-1)], -3)
    k = x.shape[-1]
    out = np.empty((*x.shape[:-1], 2 * k))
    out[..., 0, :, :k] = xr
    out[..., 1, :, :k] = xi
    np.negative(xi, out=out[..., 0, :, k:])
    out[..., 1, :, k:] = xr
    return out


def _and_rotated(h: np.ndarray) -> np.ndarray:
    """NumPy ``h (..., L, 2, M, Q)`` -> float64 ``(..., 2, L, 2, M, Q)``: ``h`` itself, then
    ``j h`` in the same layout (``(-Im h, Re h)`` per AP), the pair :func:`_with_rotated` makes
    column by column; here every copy is a whole ``(M, Q)`` block, so it runs at memory speed."""
    out = np.empty((*h.shape[:-4], 2, *h.shape[-4:]))
    out[..., 0, :, :, :, :] = h
    np.negative(h[..., 1, :, :], out=out[..., 1, :, 0, :, :])
    out[..., 1, :, 1, :, :] = h[..., 0, :, :]
    return out


def gains(csi: Array, beams: Array, system: System) -> tuple[Array, Array]:
    """Effective gains ``G[n, q] = sum_l h_ln^H w_lq``.

    One real matrix product per drop: the UE columns and the same columns times ``j``
    (:func:`_with_rotated`), flattened over ``(l, real/imag, m)`` to ``X (..., 2 L M, 2 N)``,
    times the beams flattened the same way ``(..., 2 L M, Q)``: ``X^T W = [Re G; Im G]``.
    (NumPy: the two halves of ``X`` as two products over the same ``(l, real/imag, m)`` order,
    from :func:`_and_rotated`: the same sums in the same order, bit for bit at the scenarios'
    sizes; for a few small ``N`` BLAS picks another kernel for the narrower product and the
    last bit may differ, <= 5e-16 relative.)

    Args:
        csi, beams: ``(..., L, 2, M, Q)`` (leading axes broadcast).

    Returns:
        ``(re, im)``, each ``(..., N, Q)``.

    Raises:
        ValueError: ``csi`` or ``beams`` not ``(..., L, 2, M, Q)`` of ``system``, or batch axes
            that do not broadcast (the message names both shapes).
    """
    return _gains(*_prep_pair(csi, beams, system), system)


def _gains(xp: Any, h: Array, w: Array, system: System) -> tuple[Array, Array]:
    """:func:`gains` on checked inputs."""
    n = system.N
    L, _, m, q = w.shape[-4:]
    if xp is np:
        x = _and_rotated(h)                                                # (..., 2, L, 2, M, Q)
        x = x.reshape(*x.shape[:-4], 2 * L * m, q)[..., :n]                # (..., 2, 2LM, N)
        g = x.swapaxes(-1, -2) @ w.reshape(*w.shape[:-4], 1, 2 * L * m, q)  # (..., 2, N, Q)
        return g[..., 0, :, :], g[..., 1, :, :]
    x = _with_rotated(h[..., :n], xp)                                      # (..., L, 2, M, 2N)
    x = x.reshape(*x.shape[:-4], 2 * L * m, 2 * n)
    g = x.swapaxes(-1, -2) @ w.reshape(*w.shape[:-4], 2 * L * m, q)        # (..., 2N, Q)
    return g[..., :n, :], g[..., n:, :]


def sinr(csi: Array, beams: Array, system: System) -> Array:
    """Per-UE SINR (seed eq. 2), linear: ``(..., L, 2, M, Q)`` x2 -> ``(..., N)``.

    Every other communication beam and the sensing beam count as interference. Shapes are
    checked as in :func:`gains`.
    """
    return _sinr(*_prep_pair(csi, beams, system), system)


def _sinr(xp: Any, h: Array, w: Array, system: System) -> Array:
    """:func:`sinr` on checked inputs."""
    re, im = _gains(xp, h, w, system)
    p = re**2 + im**2                                                    # (..., N, Q)
    n = system.N
    if _is_torch(p):
        desired = p.diagonal(dim1=-2, dim2=-1)[..., :n]                # (..., N)
    else:
        desired = np.diagonal(p, axis1=-2, axis2=-1)[..., :n]
    interference = p.sum(axis=-1) - desired
    return desired / (interference + system.ue_noise)


def min_sinr(csi: Array, beams: Array, system: System) -> Array:
    """g2 = min_n SINR_n: ``(..., L, 2, M, Q)`` x2 -> ``(...)`` (shapes checked as in
    :func:`gains`)."""
    s = _sinr(*_prep_pair(csi, beams, system), system)
    return s.amin(axis=-1) if _is_torch(s) else s.min(axis=-1)


def ssnr(csi: Array, beams: Array, system: System) -> Array:
    """g1 = sensing SNR (seed eq. 6): ``(..., L, 2, M, Q)`` x2 -> ``(...)``.

    ``sigma_s^2 * sum_l ||a_l^H W_l||^2 / sigma_r^2``; its bound is ``system.ssnr_bound``.
    Shapes are checked as in :func:`gains`.
    """
    return _ssnr(*_prep_pair(csi, beams, system), system)


def _ssnr(xp: Any, h: Array, w: Array, system: System) -> Array:
    """:func:`ssnr` on checked inputs; the sums run over the trailing ``(L', 2, M, Q)`` of
    whatever ``L'`` the arrays hold (:func:`cfisac_env.physics.echo.ssnr_per_ap`: one AP at a
    time)."""
    m, q = w.shape[-2:]
    a = _with_rotated(h[..., -1:], xp)                                     # (..., L, 2, M, 2)
    a = a.reshape(*a.shape[:-3], 2 * m, 2)
    g = a.swapaxes(-1, -2) @ w.reshape(*w.shape[:-3], 2 * m, q)            # (..., L, 2, Q)
    return system.sensing_gain / system.radar_noise * (g**2).sum(axis=(-3, -2, -1))


def g1_g2(csi: Array, beams: Array, system: System) -> tuple[Array, Array]:
    """``(g1, g2) = (SSNR, min-SINR)``, each ``(...)`` (shapes checked as in :func:`gains`)."""
    xp, h, w = _prep_pair(csi, beams, system)
    s = _sinr(xp, h, w, system)
    return _ssnr(xp, h, w, system), (s.amin(axis=-1) if _is_torch(s) else s.min(axis=-1))


def isac_objective(g1: Array, g2: Array, beta: float) -> Array:
    """The seed's weighted ISAC objective ``(1 - beta) * g1 + beta * g2`` (teacher loss, eq. 10,
    is its negative): beta = 0 is pure sensing, beta = 1 pure communication."""
    return (1.0 - beta) * g1 + beta * g2


def ap_power(beams: Array) -> Array:
    """Per-AP transmit power ``sum_q ||w_lq||^2``: ``(..., L, 2, M, Q)`` -> ``(..., L)``, W."""
    xp, (w,) = _prep(beams)
    if xp is not np:
        return (w**2).sum(axis=(-3, -2, -1))
    flat = w.reshape(*w.shape[:-3], -1)
    return np.einsum("...i,...i->...", flat, flat)


def normalize_power(beams: Array, system: System, eps: float = 1e-12) -> Array:
    """Scale each AP's beams to spend exactly its budget (seed eqs. 17-18).

    ``W_l <- sqrt(P_l) * W_l / ||W_l||_F``; shape ``(..., L, 2, M, Q)`` kept (checked against
    ``system``: a ``ValueError`` names the expected shape).
    """
    xp, (w,) = _prep(beams)
    _check_shape(w, system, "beams")
    scale = xp.sqrt(_budget(system, w) / (ap_power(w) + eps))
    return w * scale[..., None, None, None]


def project_power(beams: Array, system: System, power: Array | None = None
                  ) -> tuple[Array, Array]:
    """Project onto the budget: scale down any AP with ``sum_q ||w_lq||^2 > P_l``.

    ``power``: ``ap_power(beams)`` ``(..., L)`` W, when the caller has it already.

    Returns:
        ``(beams, scaled)``: beams ``(..., L, 2, M, Q)`` and a bool ``(..., L)`` marking the APs
        that were scaled down. APs within budget are returned unchanged.

    Raises:
        ValueError: ``beams`` not ``(..., L, 2, M, Q)`` of ``system`` (O(1) shape check).
    """
    xp, (w,) = _prep(beams)
    _check_shape(w, system, "beams")
    p = ap_power(w) if power is None else power
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
