"""Classic beamformers: MRT, the null-space (NS) and conventional (CB) sensing beams, NS+RZF.

Notation (docs/system.md): per AP ``l`` the CSI ``H_l = [h_l1 ... h_lN, a_l]`` (M x Q) and beams
``W_l = [w_l1 ... w_lN, s_l]``; ``rho`` is the share of each AP's budget ``P_l`` given to the
communication beams, ``1 - rho`` the sensing beam's share (Demirhan & Alkhateeb, section IV).

- NS sensing beam: ``s_l = sqrt((1-rho) P_l) * u_l / ||u_l||`` with
  ``u_l = (I - H_l' (H_l'^H H_l')^+ H_l'^H) a_l`` and ``H_l' = [h_l1 ... h_lN]``: the target
  steering vector projected onto the null space of AP ``l``'s user channels (per AP: distributed).
- CB sensing beam: ``s_l = sqrt((1-rho) P_l / M) * a_l`` (per AP: distributed).
- RZF: ``W = H (H^H H + lambda I)^-1`` over the stacked ``LM x N`` channel, ``lambda = N sigma_n^2 /
  (rho P)``; every (UE, AP) piece ``w_ln`` is then scaled to power ``rho P_l / N`` (central: needs
  every AP's CSI). With user-centric clusters (``cluster=K``) each UE keeps only the pieces of its
  ``K`` strongest APs (:func:`serving_sets`).

Every function is batched: complex CSI ``(B, L, M, Q)`` in, complex beams out.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from cfisac_env.physics.layout import to_complex, to_layout
from cfisac_env.physics.system import System
from policies.base import DistributedPolicy, Policy

_EPS = 1e-12


def check_rho(rho: float) -> float:
    """``rho`` (communication share of each AP's budget) as a float in [0, 1], else ValueError."""
    try:
        value = float(rho)
    except (TypeError, ValueError):
        raise ValueError(f"rho must be a number in [0, 1], got {rho!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"rho must lie in [0, 1] (share of power for communication), got {rho!r}")
    return value


def _unit(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x / ||x||`` along ``axis`` (zero vectors stay zero)."""
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, _EPS)


def ns_sensing_beam(h: np.ndarray, power: np.ndarray) -> np.ndarray:
    """NS sensing beam of one AP.

    Args:
        h: complex ``(B, M, Q)``, one AP's ``[h_1 ... h_N, a]``.
        power: sensing power ``(1 - rho) P_l``, scalar or ``(B,)``, W.

    Returns:
        ``(B, M)`` complex: ``a`` projected onto the null space of ``h_1 .. h_N``, norm
        ``sqrt(power)``. With ``N >= M`` users (``a`` in their span) the beam is zero.
    """
    users, a = h[..., :-1], h[..., -1]
    if users.shape[-1] >= users.shape[-2]:
        # N >= M users span the AP's space: the projection leaves only rounding (3e-9 to 8e-8
        # of ||a|| on the street at N = M = 16), which normalised would be a full-power beam
        # in a random direction
        return np.zeros_like(a)
    coef = np.linalg.pinv(users) @ a[..., None]                        # (B, N, 1)
    u = a - (users @ coef)[..., 0]
    return _unit(u) * np.sqrt(np.asarray(power, dtype=float))[..., None]


def cb_sensing_beam(h: np.ndarray, power: np.ndarray) -> np.ndarray:
    """CB sensing beam of one AP: ``(B, M, Q)`` complex -> ``(B, M)``, ``sqrt(power) a/||a||``."""
    return _unit(h[..., -1]) * np.sqrt(np.asarray(power, dtype=float))[..., None]


def serving_sets(hc: np.ndarray, system: System, cluster: int | None) -> np.ndarray | None:
    """User-centric clusters: each UE is served by its ``cluster`` strongest APs.

    Strength is the large-scale channel gain ``||h_ln||^2`` (what a central unit learns from
    every AP's slow-fading report: ``L N`` real numbers, no CSI exchanged). Under the seed's
    unit-gain LoS channel every AP is equally strong; ties go to the AP that sees the UE
    nearest its broadside (smallest ``|cos phi_ln|``, read from the phase step of ``h_ln``),
    which along a street of APs is the nearest one.

    Args:
        hc: complex CSI ``(B, L, M, Q)``.
        cluster: APs per UE (1..L); None = every AP serves every UE.

    Returns:
        ``(B, L, N)`` bool, True where AP ``l`` serves UE ``n`` (None when ``cluster`` is None).
    """
    if cluster is None:
        return None
    users = hc[..., : system.N]                                          # (B, L, M, N)
    power = np.sum(np.abs(users) ** 2, axis=-2)                          # (B, L, N)
    gain = np.round(10 * np.log10(np.maximum(power, 1e-300)), 3)         # dB, ties at 1e-3
    steps = np.sum(users[..., 1:, :] * users[..., :-1, :].conj(), axis=-2)
    broadside = np.abs(np.angle(steps)) / (2 * np.pi * system.spacing)   # |cos phi| (B, L, N)
    order = np.lexsort((broadside, -gain), axis=1)                       # strongest first
    serve = np.zeros(gain.shape, dtype=bool)
    np.put_along_axis(serve, order[:, :cluster], True, axis=1)
    return serve


def check_cluster(cluster: Any, system: System) -> int | None:
    """The ``cluster`` option (APs per UE, 1..L, or None for all): checked before any work."""
    if cluster is None:
        return None
    if isinstance(cluster, bool) or not isinstance(cluster, (int, np.integer)) \
            or not 1 <= cluster <= system.L:
        raise ValueError(f"cluster must be the number of APs serving each UE, an integer in "
                         f"1..L = 1..{system.L}, got {cluster!r}")
    return int(cluster)


def rzf_beams(hc: np.ndarray, system: System, rho: float, serving: np.ndarray | None = None
              ) -> np.ndarray:
    """Regularised zero-forcing communication beams over all APs.

    Args:
        hc: complex CSI ``(B, L, M, Q)``.
        system: budgets ``P_l`` and UE noise ``sigma_n^2``.
        rho: communication share of each budget (> 0).
        serving: ``(B, L, N)`` bool user-centric clusters (:func:`serving_sets`) or None: AP
            ``l`` transmits only the pieces ``w_ln`` of the UEs it serves.

    Returns:
        ``(B, L, M, N)`` complex, ``||w_ln||^2 = rho P_l / N`` for every (AP, UE) pair (with
        ``serving``: ``rho P_l / N_l`` for the ``N_l`` UEs AP ``l`` serves, 0 for the others).
    """
    b, L, M, _ = hc.shape
    n = system.N
    stacked = hc[..., :n].reshape(b, L * M, n)                            # (B, LM, N)
    lam = n * system.ue_noise / (rho * float(np.mean(system.P)))
    gram = stacked.conj().transpose(0, 2, 1) @ stacked + lam * np.eye(n)  # (B, N, N)
    w = (stacked @ np.linalg.inv(gram)).reshape(b, L, M, n)
    if serving is None:
        per_pair = np.sqrt(rho * system.P / n)[None, :, None, None]
        return _unit(w, axis=-2) * per_pair
    served = np.maximum(serving.sum(axis=-1), 1)                          # (B, L)
    per_pair = np.sqrt(rho * system.P[None, :] / served)[..., None, None]
    return _unit(w * serving[:, :, None, :], axis=-2) * per_pair


def _assemble(comm: np.ndarray | None, sense: np.ndarray | None, shape: tuple[int, ...]
              ) -> np.ndarray:
    """Complex beams ``shape = (..., M, Q)`` from comm ``(..., M, N)`` and sensing ``(..., M)``."""
    w = np.zeros(shape, dtype=complex)
    if comm is not None:
        w[..., :-1] = comm
    if sense is not None:
        w[..., -1] = sense
    return w


class _RhoMixin:
    """Parses the ``rho`` option (communication share, default 0.5)."""

    def _pop_rho(self, options: dict[str, Any], default: float = 0.5) -> None:
        self.rho = check_rho(options.pop("rho", default))


class MRTTarget(DistributedPolicy):
    """All power to the target: ``s_l = sqrt(P_l / M) a_l``, communication beams zero.

    Distributed (AP ``l`` uses only ``a_l``); reaches ``system.ssnr_bound``.
    """

    def act_ap(self, l: int, csi_l: np.ndarray) -> np.ndarray:
        h = to_complex(csi_l.astype(float))                              # (B, M, Q)
        return to_layout(_assemble(None, cb_sensing_beam(h, self.system.P[l]), h.shape))


class MRTUsers(DistributedPolicy):
    """All power to the users, no sensing beam: ``w_ln = sqrt(P_l / (N M)) h_ln`` (conjugate
    beamforming, equal power per UE). Distributed."""

    def act_ap(self, l: int, csi_l: np.ndarray) -> np.ndarray:
        h = to_complex(csi_l.astype(float))
        comm = _unit(h[..., :-1], axis=-2) * np.sqrt(self.system.P[l] / self.system.N)
        return to_layout(_assemble(comm, None, h.shape))


class MRT(DistributedPolicy, _RhoMixin):
    """Conjugate beams for both functions: ``w_ln = sqrt(rho P_l / N) h_ln / ||h_ln||`` and the
    sensing beam ``s_l = sqrt((1 - rho) P_l) a_l / ||a_l||``.

    The textbook ISAC maximum-ratio reference: each AP splits its budget, a share ``rho`` equally
    over the UEs' matched filters and the rest on the target's. Options: ``rho`` (default 0.5).
    Distributed (AP ``l`` uses only its own CSI); ``rho = 1`` is ``mrt-users``, ``rho = 0``
    ``mrt-target``.
    """

    def __init__(self, system: System, **options: Any) -> None:
        self._pop_rho(options)
        super().__init__(system, **options)

    def act_ap(self, l: int, csi_l: np.ndarray) -> np.ndarray:
        h = to_complex(csi_l.astype(float))                              # (B, M, Q)
        p = self.system.P[l]
        comm = _unit(h[..., :-1], axis=-2) * np.sqrt(self.rho * p / self.system.N)
        return to_layout(_assemble(comm, cb_sensing_beam(h, (1.0 - self.rho) * p), h.shape))


class _SensingOnly(DistributedPolicy, _RhoMixin):
    """A sensing beam alone (power ``(1 - rho) P_l``), communication beams zero.

    Options: ``rho`` (default 0.5). Distributed.
    """

    beam = staticmethod(ns_sensing_beam)

    def __init__(self, system: System, **options: Any) -> None:
        self._pop_rho(options)
        super().__init__(system, **options)
        if self.beam is ns_sensing_beam:
            warn_empty_null_space(system, "ns-sensing")

    def act_ap(self, l: int, csi_l: np.ndarray) -> np.ndarray:
        h = to_complex(csi_l.astype(float))
        s = self.beam(h, (1.0 - self.rho) * self.system.P[l])
        return to_layout(_assemble(None, s, h.shape))


class NSSensing(_SensingOnly):
    """The NS sensing beam alone (power ``(1 - rho) P_l``). Options: ``rho``. Distributed."""


class CBSensing(_SensingOnly):
    """The CB sensing beam alone (power ``(1 - rho) P_l``). Options: ``rho``. Distributed."""

    beam = staticmethod(cb_sensing_beam)


def ns_sensing_all(hc: np.ndarray, system: System, rho: float) -> np.ndarray:
    """NS sensing beams of every AP: complex ``(B, L, M, Q)`` -> ``(B, L, M)``."""
    return np.stack([ns_sensing_beam(hc[:, l], (1.0 - rho) * system.P[l])
                     for l in range(system.L)], axis=1)


def cb_sensing_all(hc: np.ndarray, system: System, rho: float) -> np.ndarray:
    """CB sensing beams of every AP: complex ``(B, L, M, Q)`` -> ``(B, L, M)``."""
    return np.stack([cb_sensing_beam(hc[:, l], (1.0 - rho) * system.P[l])
                     for l in range(system.L)], axis=1)


def ns_rzf_complex(hc: np.ndarray, system: System, rho: float, cluster: int | None = None
                   ) -> np.ndarray:
    """NS+RZF beams: complex ``(B, L, M, Q)`` CSI -> complex ``(B, L, M, Q)`` beams
    (``cluster``: user-centric, :func:`serving_sets`)."""
    serving = serving_sets(hc, system, cluster)
    comm = rzf_beams(hc, system, rho, serving) if rho > 0 else None
    return _assemble(comm, ns_sensing_all(hc, system, rho), hc.shape)


def warn_empty_null_space(system: System, name: str) -> None:
    """One line, before any work, when the NS sensing beam cannot exist: with ``M <= N`` the
    target's steering vector lies in the span of an AP's user channels and the beam is zero."""
    if system.M <= system.N:
        warnings.warn(f"{name}: M = {system.M} <= N = {system.N}: an AP's user channels span "
                      "its whole space, so the null-space sensing beam is zero (only the "
                      "communication beams light the target)", stacklevel=3)


class NSRZF(Policy, _RhoMixin):
    """NS sensing beam + RZF communication beams (central: RZF stacks every AP's CSI).

    Options: ``rho`` (default 0.5), the communication share of each AP's budget; ``cluster``
    (default None: every AP serves every UE), user-centric clusters: each UE served by its
    ``cluster`` strongest APs (:func:`serving_sets`), each AP sending only its UEs' pieces.
    """

    def __init__(self, system: System, **options: Any) -> None:
        self._pop_rho(options)
        self.cluster = check_cluster(options.pop("cluster", None), system)
        super().__init__(system, **options)
        warn_empty_null_space(system, "ns-rzf")

    def act_batch(self, csi: np.ndarray) -> np.ndarray:
        return to_layout(ns_rzf_complex(to_complex(csi.astype(float)), self.system, self.rho,
                                        self.cluster))
