"""Monostatic echoes of the APs' own beams, the ML angle estimate, its Cramér-Rao bound and the
square-law detector: the ``[sensing]`` section of a scenario (``docs/sensing.md``).

Model (per AP ``l``, one decision, ``T`` snapshots; linear units, W and W^(1/2)):

    X_l = W_l S_l                       (M x T) transmitted, S_l (Q x T) unit-power QPSK
    Y_l = alpha_l a(u_l) c_l^H X_l + Z_l  (M x T) received on the same ULA

``c_l`` is the AP's TRUE target column of the CSI (``a_l`` of eq. 6, two-way path loss
included), ``a(u)_k = exp(j 2 pi d k u)`` the unit-modulus receive steering at ``u = cos(phi)``
(``d`` = ``system.spacing``), ``alpha_l ~ CN(0, sigma_s^2)`` the target's reflection
(Swerling I: constant over the dwell, independent between dwells and APs) and ``Z_l`` white
``CN(0, sigma_r^2)`` radar noise. Per antenna and snapshot the echo's mean SNR is
``sigma_s^2 ||c_l^H W_l||^2 / sigma_r^2`` (``E[S S^H] = T I``), whose sum over the APs is the
SSNR of eq. 6 (:func:`cfisac_env.physics.metrics.ssnr`); after the matched filter over ``M``
antennas and ``T`` snapshots the detector's SNR is ``M T`` times the AP's share.

Estimation: the receiver knows its own waveform ``X_l`` and models the echo as
``alpha' a(u) a(u)^H X_l`` (LoS target, unknown complex ``alpha'``), so the concentrated
likelihood is ``J(u) = |a^H R a|^2 / (M a^H C a)`` with ``R = Y X^H``, ``C = X X^H``
(:func:`likelihood`); :func:`ml_u` maximises it on a grid of ``grid * M`` points of ``u`` in
[-1, 1] and refines by golden-section search around the best one. :func:`crb_u` is the
Cramér-Rao bound of ``u`` for the same model (unknown ``u`` and complex ``alpha'``), from the
Fisher information of ``vec(alpha' a a^H X)``; the bound on the angle ``phi`` is
``crb_u / sin(phi)^2``.

Detection: ``J(u) / sigma_r^2`` is ``Exp(1)`` without a target, and with a Swerling-I target
``Exp(1 + snr_out)``; the square-law detector ``J / sigma_r^2 > -ln(pfa)`` therefore has
``P_D = pfa ** (1 / (1 + snr_out))`` (:func:`pd_swerling1`), ``pfa`` per resolution cell.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from cfisac_env.physics import metrics
from cfisac_env.physics.channels import steering_cos as steering
from cfisac_env.physics.system import System

MODES = ("oracle", "echo")
TRACKERS = ("ekf", "hold")
GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class SensingConfig:
    """The ``[sensing]`` section (defaults: ``mode = "oracle"``, the seed's behaviour).

    Args:
        mode: ``"oracle"`` (the target column of the observation is the true one, or the
            ``[csi]`` angle-error model) or ``"echo"`` (built from the tracker of the echoes).
        snapshots: ``T``, echo snapshots per decision (>= 1).
        search_snapshots: snapshots of a search dwell (acquisition, re-acquisition).
        pfa: false-alarm probability of the square-law detector per resolution cell, (0, 1).
        tracker: ``"ekf"`` (constant-velocity EKF, every decision's echo) or ``"hold"`` (the
            communication-only baseline: the first estimate is held, never re-estimated).
        accel_std: white-acceleration process noise of the constant-velocity model, m/s^2.
        init_speed_std: velocity standard deviation of a new track, m/s.
        gate: innovation gate, normalised innovation squared of one AP's measurement (chi^2
            with 1 degree of freedom; 9 = 3 sigma).
        lost_std: a track is lost when its position standard deviation (largest axis) exceeds
            this, m.
        lost_after: ... or after this many decisions in a row without an accepted echo.
        grid: grid points per antenna of the ML search over ``u`` in [-1, 1].
        tracking_weight: weight of the tracking term of the reward, per metre of position
            error (0: the reward is the scenario's ISAC reward alone).
        error_cap: position error, m, charged by the tracking term (and counted) at most,
            also when the track is lost.
    """

    mode: str = "oracle"
    snapshots: int = 32
    search_snapshots: int = 64
    pfa: float = 1e-4
    tracker: str = "ekf"
    accel_std: float = 4.0
    init_speed_std: float = 20.0
    gate: float = 16.0
    lost_std: float = 5.0
    lost_after: int = 3
    grid: int = 8
    tracking_weight: float = 0.0
    error_cap: float = 10.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"sensing.mode must be one of {MODES}, got {self.mode!r}")
        if self.tracker not in TRACKERS:
            raise ValueError(f"sensing.tracker must be one of {TRACKERS}, got {self.tracker!r}")
        for name in ("snapshots", "search_snapshots", "lost_after", "grid"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"sensing.{name} must be an integer >= 1, got {v!r}")
        if not 0.0 < self.pfa < 1.0:
            raise ValueError(f"sensing.pfa must lie in (0, 1), got {self.pfa!r}")
        for name in ("accel_std", "init_speed_std", "gate", "lost_std", "error_cap"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"sensing.{name} must be finite and > 0, got {v!r}")
        if not (np.isfinite(self.tracking_weight) and self.tracking_weight >= 0):
            raise ValueError(f"sensing.tracking_weight must be finite and >= 0, got "
                             f"{self.tracking_weight!r}")

    @classmethod
    def of(cls, config: dict[str, Any]) -> SensingConfig:
        """From a resolved scenario config (its ``sensing`` section); unknown fields raise."""
        raw = dict(config.get("sensing", {}))
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise ValueError(f"unknown [sensing] fields {unknown}; fields: {', '.join(names)}")
        for k, v in raw.items():
            want = str if k in ("mode", "tracker") else (int, float, np.number)
            if not isinstance(v, want) or isinstance(v, bool):
                raise ValueError(f"sensing.{k} must be a {'string' if want is str else 'number'}"
                                 f", got {v!r}")
        return cls(**raw)


#: The ``[sensing]`` fields and their defaults (oracle sensing: today's behaviour).
SENSING_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(SensingConfig)}


# ---- the ULA --------------------------------------------------------------------------------
def qpsk(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Unit-power QPSK symbols ``(±1 ± j) / sqrt(2)`` of ``shape``."""
    bits = rng.integers(0, 2, (*shape, 2)) * 2 - 1
    return (bits[..., 0] + 1j * bits[..., 1]) / np.sqrt(2.0)


def cn(rng: np.random.Generator, shape: tuple[int, ...], var: float = 1.0) -> np.ndarray:
    """Circular complex Gaussian ``CN(0, var)`` samples of ``shape``."""
    return np.sqrt(var / 2.0) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


# ---- the echo -------------------------------------------------------------------------------
def echo(x: np.ndarray, column: np.ndarray, u: np.ndarray, alpha: np.ndarray,
         noise: np.ndarray, spacing: float = 0.5) -> np.ndarray:
    """Received echo ``Y = alpha a(u) c^H X + Z`` (module docstring).

    Args:
        x: transmitted block ``(..., M, T)`` complex, W^(1/2).
        column: the TRUE target column ``c (..., M)`` complex (eq. 6's ``a_l``).
        u: true ``cos(phi)`` of the target from the AP ``(...)``.
        alpha: reflection ``(...)`` complex (``CN(0, sigma_s^2)`` for Swerling I).
        noise: ``Z (..., M, T)`` complex, ``CN(0, sigma_r^2)`` entries.

    Returns:
        ``Y (..., M, T)`` complex.
    """
    g = np.einsum("...m,...mt->...t", column.conj(), x)                   # c^H X (..., T)
    a = steering(u, x.shape[-2], spacing)
    return alpha[..., None, None] * a[..., :, None] * g[..., None, :] + noise


def statistics(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sufficient statistics ``R = Y X^H`` and ``C = X X^H``, each ``(..., M, M)``."""
    xh = np.conj(np.swapaxes(x, -1, -2))
    return y @ xh, x @ xh


def lag_sums(r: np.ndarray) -> np.ndarray:
    """Diagonal sums ``s_t = sum_{l - k = t} R_kl`` of ``R (..., M, M)``, ``t = -(M-1) .. M-1``:
    ``(..., 2M - 1)``, so that ``a(u)^H R a(u) = sum_t s_t exp(j 2 pi d t u)`` (O(M) per ``u``
    instead of O(M^2))."""
    m = r.shape[-1]
    return np.stack([np.trace(r, offset=t, axis1=-2, axis2=-1) for t in range(1 - m, m)], -1)


def _quadratic(u: np.ndarray, lags: np.ndarray, spacing: float) -> np.ndarray:
    """``a(u)^H R a(u)`` from ``lag_sums(R) (..., 2M-1)`` at ``u`` (``(G,)`` shared, or
    ``(..., G)``): ``(..., G)``."""
    m = (lags.shape[-1] + 1) // 2
    t = np.arange(1 - m, m)
    e = np.exp(2j * np.pi * spacing * np.asarray(u, dtype=float)[..., None] * t)   # (..., G, T)
    if e.ndim == 2:
        return lags @ e.T
    return np.einsum("...t,...gt->...g", lags, e)


def likelihood(u: np.ndarray, r: np.ndarray, c: np.ndarray, spacing: float = 0.5
               ) -> tuple[np.ndarray, np.ndarray]:
    """Concentrated likelihood ``J(u) = |a^H R a|^2 / (M a^H C a)`` and ``alpha'_hat = a^H R a
    / (M a^H C a)`` at ``u`` (``(G,)`` shared, or ``(..., G)``) for statistics ``R, C (..., M,
    M)``: each ``(..., G)``."""
    return _likelihood(u, lag_sums(r), lag_sums(c), r.shape[-1], spacing)


def _likelihood(u: np.ndarray, lr: np.ndarray, lc: np.ndarray, m: int, spacing: float
                ) -> tuple[np.ndarray, np.ndarray]:
    ara = _quadratic(u, lr, spacing)
    aca = np.maximum(_quadratic(u, lc, spacing).real, 1e-300)
    return np.abs(ara) ** 2 / (m * aca), ara / (m * aca)


@dataclass
class Estimate:
    """ML estimate of one dwell per AP: ``u (...)`` = cos(phi), ``stat (...)`` = ``J(u) /
    sigma_r^2`` (the detector statistic), ``alpha2 (...)`` the estimated ``|alpha'|^2`` (noise
    bias removed, floored at 0)."""

    u: np.ndarray
    stat: np.ndarray
    alpha2: np.ndarray


def ml_u(y: np.ndarray, x: np.ndarray, noise_var: float, spacing: float = 0.5, grid: int = 8,
         iters: int = 16) -> Estimate:
    """ML estimate of ``u`` from echoes ``Y (..., M, T)`` of the known blocks ``X (..., M, T)``:
    a grid of ``grid * M`` points over [-1, 1], then ``iters`` golden-section steps on the
    bracket of the best point and its two neighbours (the main lobe of ``J``)."""
    r, c = statistics(y, x)
    m = r.shape[-1]
    lr, lc = lag_sums(r), lag_sums(c)

    def j_at(p: np.ndarray) -> np.ndarray:
        return _likelihood(p[..., None], lr, lc, m, spacing)[0][..., 0]

    g = np.linspace(-1.0, 1.0, grid * m)
    step = g[1] - g[0]
    j, _ = _likelihood(g, lr, lc, m, spacing)
    best = g[np.argmax(j, axis=-1)]
    lo, hi = np.clip(best - step, -1, 1), np.clip(best + step, -1, 1)
    p1, p2 = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    f1, f2 = j_at(p1), j_at(p2)
    for _ in range(iters):
        left = f1 > f2                                  # maximum in [lo, p2]
        lo, hi = np.where(left, lo, p1), np.where(left, p2, hi)
        p1n = np.where(left, hi - GOLDEN * (hi - lo), p2)
        p2n = np.where(left, p1, lo + GOLDEN * (hi - lo))
        fn = j_at(np.where(left, p1n, p2n))
        f1, f2 = np.where(left, fn, f2), np.where(left, f1, fn)
        p1, p2 = p1n, p2n
    u = 0.5 * (lo + hi)
    jv, alpha = _likelihood(u[..., None], lr, lc, m, spacing)
    aca = np.maximum(_quadratic(u[..., None], lc, spacing)[..., 0].real, 1e-300)
    alpha2 = np.maximum(np.abs(alpha[..., 0]) ** 2 - noise_var / (m * aca), 0.0)
    return Estimate(u, jv[..., 0] / noise_var, alpha2)


def crb_u(u: np.ndarray, c: np.ndarray, alpha2: np.ndarray, noise_var: float,
          spacing: float = 0.5) -> np.ndarray:
    """Cramér-Rao bound of ``u = cos(phi)`` for ``Y = alpha' a(u) a(u)^H X + Z`` (unknown ``u``
    and complex ``alpha'``, ``|alpha'|^2 = alpha2``, noise variance ``noise_var``).

    With ``m = vec(a a^H X)``, ``A = d a^H + a d^H`` (``d = da/du``):
    ``CRB = noise_var / (2 alpha2 (||dm||^2 - |m^H dm|^2 / ||m||^2))``, where ``||m||^2 = M a^H C
    a``, ``||dm||^2 = tr(A C A^H)``, ``m^H dm = a^H A C a`` and ``C = X X^H (..., M, M)``.
    Returns ``(...)`` (inf where the echo carries no information)."""
    m = c.shape[-1]
    a = steering(u, m, spacing)
    d = 2j * np.pi * spacing * np.arange(m) * a
    ca, cd = ((c @ v[..., None])[..., 0] for v in (a, d))
    aca, acd = (a.conj() * ca).sum(-1), (a.conj() * cd).sum(-1)
    dca, dcd = (d.conj() * ca).sum(-1), (d.conj() * cd).sum(-1)
    ad, dd2 = (a.conj() * d).sum(-1), (np.abs(d) ** 2).sum(-1)
    mm = m * aca.real
    dd = (aca * dd2 + acd * ad + dca * ad.conj() + dcd * m).real     # tr(A C A^H)
    md = ad * aca + m * dca                                          # a^H A C a
    info = 2.0 * alpha2 * (dd - np.abs(md) ** 2 / np.maximum(mm, 1e-300)) / noise_var
    return np.divide(1.0, info, out=np.full(np.shape(info), np.inf), where=info > 0)


# ---- detection ------------------------------------------------------------------------------
def threshold(pfa: float) -> float:
    """Square-law threshold on ``J / sigma_r^2`` (``Exp(1)`` under noise only): ``-ln(pfa)``."""
    return float(-np.log(pfa))


def pd_swerling1(snr_out: np.ndarray, pfa: float) -> np.ndarray:
    """Detection probability of a Swerling-I target by the square-law detector at false-alarm
    probability ``pfa``: ``pfa ** (1 / (1 + snr_out))``, ``snr_out`` linear (matched-filter
    output SNR)."""
    return np.power(pfa, 1.0 / (1.0 + np.asarray(snr_out, dtype=float)))


def ssnr_per_ap(csi: np.ndarray, beams: np.ndarray, system: System) -> np.ndarray:
    """Each AP's share of the SSNR (eq. 6, by :func:`cfisac_env.physics.metrics.ssnr` on that AP
    alone): ``(..., L, 2, M, Q)`` x2 -> ``(..., L)``; the shares sum to the SSNR. Shapes are
    checked as in :func:`~cfisac_env.physics.metrics.ssnr`."""
    xp, h, w = metrics._prep_pair(csi, beams, system)
    return metrics._ssnr(xp, h[..., None, :, :, :], w[..., None, :, :, :], system)


def network_pd(snr_ap: np.ndarray, snapshots: int, m: int, pfa: float) -> np.ndarray:
    """Probability that at least one AP detects the target (OR fusion), each AP's detector at
    ``1 - (1 - pfa) ** (1 / L)`` so that the network's false-alarm probability is ``pfa``.

    Args:
        snr_ap: per-antenna, per-snapshot mean echo SNR of each AP ``(..., L)``
            (:func:`ssnr_per_ap`); the detector's SNR is ``M * snapshots`` times it.
    """
    n = snr_ap.shape[-1]
    pfa_ap = -np.expm1(np.log1p(-pfa) / n)
    pd = pd_swerling1(m * snapshots * snr_ap, pfa_ap)
    return 1.0 - np.prod(1.0 - pd, axis=-1)
