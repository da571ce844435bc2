"""A batched extended Kalman filter that tracks the sensing target from the APs' angle estimates.

State of each of ``B`` tracks: ``x = (p_x, p_y, v_x, v_y)`` (m, m/s) with covariance ``P (4, 4)``
at time ``t`` (s). Motion: constant velocity with white acceleration noise of spectral density
``q = accel_std^2`` (m^2/s^3),

    F(dt) = [[I, dt I], [0, I]],   Q(dt) = q [[dt^3/3 I, dt^2/2 I], [dt^2/2 I, dt I]].

Measurements: AP ``l`` at ``(x_l, y_l)`` reports ``u_l = cos(phi_l) = (p_x - x_l) / r_l`` (the
ULA's own coordinate, no front/back ambiguity in the model) with variance ``R_l``; the Jacobian
is ``(dy^2, -dx dy, 0, 0) / r^3``. The APs' measurements are applied together
(independent noise) in one iterated-EKF update (re-linearised at each iterate), each first
passing an innovation gate on the predicted state (normalised innovation squared
``nu^2 / S <= gate``) or rejected.

Why a NumPy filter and not filterpy: filterpy's ``ExtendedKalmanFilter`` is one Python object
per track, so the vector env would loop over its ``B`` sub-envs every step; here every operation
is one array operation over the batch (and over the APs that measured), so ``B = 1024`` tracks
cost about what one does, and masked APs and gating need no Python branching.

Losing a track: :meth:`BatchEKF.lost` when its position standard deviation (largest principal
axis) exceeds ``lost_std`` or when ``lost_after`` updates in a row accepted no measurement.
"""

from __future__ import annotations

import numpy as np


def transition(dt: np.ndarray, accel_std: float) -> tuple[np.ndarray, np.ndarray]:
    """``F (..., 4, 4)`` and ``Q (..., 4, 4)`` of the constant-velocity model for ``dt (...)``
    seconds (module docstring)."""
    dt = np.asarray(dt, dtype=float)
    eye = np.eye(2)
    f = np.broadcast_to(np.eye(4), (*dt.shape, 4, 4)).copy()
    f[..., :2, 2:] = dt[..., None, None] * eye
    q = accel_std ** 2
    qm = np.empty((*dt.shape, 4, 4))
    qm[..., :2, :2] = (dt ** 3 / 3)[..., None, None] * eye
    qm[..., :2, 2:] = qm[..., 2:, :2] = (dt ** 2 / 2)[..., None, None] * eye
    qm[..., 2:, 2:] = dt[..., None, None] * eye
    return f, q * qm


def wrap(du: np.ndarray, period: float = 2.0) -> np.ndarray:
    """A difference of ``u = cos(phi)`` into ``[-period/2, period/2)``: a ULA with spacing ``d``
    wavelengths cannot tell ``u`` from ``u + 1/d`` (at ``d = 0.5``, endfire ``u = 1`` and
    ``u = -1`` are one steering vector), so residuals are taken modulo ``period = 1/d``."""
    return (np.asarray(du) + period / 2) % period - period / 2


def cosines(ap_xy: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``u = cos(phi)`` from each AP ``(L, 2)`` to positions ``p (..., 2)`` m: ``(..., L)``, and
    the Jacobian ``du/dp (..., L, 2)``."""
    d = p[..., None, :] - ap_xy
    r = np.maximum(np.hypot(d[..., 0], d[..., 1]), 1e-6)
    u = d[..., 0] / r
    jac = np.stack([d[..., 1] ** 2, -d[..., 0] * d[..., 1]], axis=-1) / r[..., None] ** 3
    return u, jac


class BatchEKF:
    """``B`` constant-velocity EKF tracks fusing per-AP angle cosines (module docstring).

    Args:
        batch: ``B``.
        ap_xy: AP positions ``(L, 2)`` m.
        accel_std: process noise, m/s^2.
        gate: innovation gate on one AP's normalised innovation squared.
        lost_std: position standard deviation beyond which a track is lost, m.
        lost_after: updates in a row without an accepted measurement before it is lost.
        period: ambiguity period of ``u`` (``1 / spacing``; residuals are wrapped by it).

    State: ``x (B, 4)``, ``P (B, 4, 4)``, ``t (B,)`` s, ``active (B,)`` bool (a track exists),
    ``misses (B,)`` updates in a row without an accepted measurement.
    """

    def __init__(self, batch: int, ap_xy: np.ndarray, accel_std: float, gate: float,
                 lost_std: float, lost_after: int, period: float = 2.0) -> None:
        self.ap_xy = np.asarray(ap_xy, dtype=float)
        self.accel_std, self.gate = float(accel_std), float(gate)
        self.lost_std, self.lost_after = float(lost_std), int(lost_after)
        self.period = float(period)
        self.x = np.zeros((batch, 4))
        self.P = np.broadcast_to(np.eye(4), (batch, 4, 4)).copy()
        self.t = np.zeros(batch)
        self.active = np.zeros(batch, dtype=bool)
        self.misses = np.zeros(batch, dtype=int)

    def start(self, idx: np.ndarray, p: np.ndarray, p_cov: np.ndarray, speed_std: float,
              t: np.ndarray | float) -> None:
        """New tracks ``idx`` at positions ``p (n, 2)`` m with covariance ``p_cov (n, 2, 2)``,
        velocity 0 +- ``speed_std`` m/s, at time ``t`` s."""
        idx = np.asarray(idx)
        self.x[idx] = 0.0
        self.x[idx, :2] = p
        self.P[idx] = 0.0
        self.P[idx, :2, :2] = p_cov
        self.P[idx, 2:, 2:] = speed_std ** 2 * np.eye(2)
        self.t[idx] = t
        self.active[idx] = True
        self.misses[idx] = 0

    def drop(self, idx: np.ndarray) -> None:
        """End tracks ``idx`` (lost)."""
        self.active[np.asarray(idx)] = False

    def predicted(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """State ``(B, 4)`` and covariance ``(B, 4, 4)`` predicted to time ``t`` (s; scalar or
        ``(B,)``), the filter unchanged."""
        dt = np.maximum(np.broadcast_to(np.asarray(t, dtype=float), self.t.shape) - self.t, 0.0)
        f, q = transition(dt, self.accel_std)
        x = np.einsum("bij,bj->bi", f, self.x)
        return x, f @ self.P @ np.swapaxes(f, -1, -2) + q

    def update(self, t: np.ndarray | float, z: np.ndarray, r: np.ndarray, mask: np.ndarray,
               among: np.ndarray | None = None) -> np.ndarray:
        """Predict the active tracks (``among (B,)`` bool of them, default all) to time ``t`` and
        apply the measurements ``z (B, L)``
        (``u = cos(phi)``) with variances ``r (B, L)`` where ``mask (B, L)`` (and the track is
        active), each through the gate.

        Returns:
            ``accepted (B, L)`` bool. ``misses`` counts up where nothing was accepted.
        """
        act = self.active if among is None else self.active & among
        x, p = self.predicted(t)
        self.x[act], self.P[act] = x[act], p[act]
        self.t[act] = np.broadcast_to(np.asarray(t, dtype=float), self.t.shape)[act]
        # gate each AP on the predicted state, then one joint iterated-EKF update of the accepted
        u, jac = cosines(self.ap_xy, self.x[:, :2])                      # (B, L), (B, L, 2)
        s = np.einsum("bli,bij,blj->bl", jac, self.P[:, :2, :2], jac) + r
        nu = wrap(np.where(np.isfinite(z), z, 0.0) - u, self.period)
        accepted = act[:, None] & mask & np.isfinite(z) & (nu ** 2 <= self.gate * s)
        rows = np.flatnonzero(accepted.any(axis=1))
        if len(rows):
            self._iterated_update(rows, np.where(accepted, z, 0.0)[rows],
                                  np.where(accepted, r, 1.0)[rows], accepted[rows])
        hit = accepted.any(axis=1)
        self.misses[act & hit] = 0
        self.misses[act & ~hit] += 1
        return accepted

    def _iterated_update(self, rows: np.ndarray, z: np.ndarray, r: np.ndarray, use: np.ndarray,
                         iters: int = 5) -> None:
        """Iterated EKF update of tracks ``rows`` with measurements ``z (n, L)``, variances
        ``r (n, L)`` where ``use (n, L)``: the measurement function is re-linearised at the
        current iterate (Gauss-Newton on the MAP cost), which keeps the covariance honest when
        the target passes close to an AP and its angle changes fast."""
        x0, p0 = self.x[rows], self.P[rows]
        xi = x0.copy()
        eye = np.eye(use.shape[1])
        for _ in range(iters):
            u, jac = cosines(self.ap_xy, xi[:, :2])
            h = np.zeros((len(rows), use.shape[1], 4))
            h[..., :2] = np.where(use[..., None], jac, 0.0)
            ph = p0 @ np.swapaxes(h, -1, -2)                               # (n, 4, L)
            s = h @ ph + r[:, :, None] * eye
            k = np.swapaxes(np.linalg.solve(s, np.swapaxes(ph, -1, -2)), -1, -2)
            res = np.where(use, wrap(z - u, self.period), 0.0) - \
                np.einsum("bli,bi->bl", h, x0 - xi)
            xi = x0 + np.einsum("bil,bl->bi", k, res)
        ikh = np.eye(4) - k @ h                                           # Joseph form
        self.x[rows] = xi
        self.P[rows] = ikh @ p0 @ np.swapaxes(ikh, -1, -2) + \
            k @ (r[:, :, None] * eye) @ np.swapaxes(k, -1, -2)

    def position_std(self, p: np.ndarray | None = None) -> np.ndarray:
        """Largest principal standard deviation of the position ``(B,)`` m (of ``p (B, 4, 4)``,
        the filter's own covariance by default)."""
        p = self.P if p is None else p
        return np.sqrt(np.linalg.eigvalsh(p[:, :2, :2])[:, -1])

    def lost(self) -> np.ndarray:
        """``(B,)`` bool: tracks that exist but are lost (covariance or misses), or none exists."""
        return ~self.active | (self.position_std() > self.lost_std) | \
            (self.misses >= self.lost_after)


def triangulate(ap_xy: np.ndarray, u: np.ndarray, var: np.ndarray, mask: np.ndarray,
                box: tuple[float, float, float, float], step: float = 2.0, iters: int = 8,
                period: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least-squares position from angle cosines: a grid over ``box = (x0, x1, y0, y1)``
    m (``step`` m; the box also settles the ULA's front/back ambiguity), then Gauss-Newton;
    residuals are wrapped by the ambiguity ``period`` of ``u`` (:func:`wrap`).

    Args:
        ap_xy: ``(L, 2)`` m; ``u``, ``var``, ``mask``: ``(B, L)`` measured ``cos(phi)``, their
            variances and which APs measured.

    Returns:
        ``p (B, 2)`` m, its covariance ``(B, 2, 2)`` (the inverse Fisher information; inf where
        undetermined) and ``ok (B,)`` (at least two measurements and a finite covariance).
    """
    b = len(u)
    w = np.where(mask, 1.0 / np.where(mask, var, 1.0), 0.0)                # (B, L)
    zu = np.where(mask, u, 0.0)
    gx = np.arange(box[0], box[1] + step / 2, step)
    gy = np.arange(box[2], box[3] + step / 2, step) if box[3] > box[2] else np.array([box[2]])
    grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)             # (G, 2)
    ug, _ = cosines(ap_xy, grid)                                             # (G, L)
    cost = np.einsum("bgl,bl->bg", wrap(zu[:, None, :] - ug[None], period) ** 2, w)
    p = grid[np.argmin(cost, axis=1)].copy()
    lo, hi = np.array([box[0], box[2]]), np.array([box[1], box[3]])
    ok = mask.sum(axis=1) >= 2
    info = np.zeros((b, 2, 2))
    for _ in range(iters):                      # Gauss-Newton (pinv: parallel bearings are rank 1)
        up, jac = cosines(ap_xy, p)                                          # (B, L), (B, L, 2)
        info = np.einsum("bli,bl,blj->bij", jac, w, jac)
        grad = np.einsum("bli,bl,bl->bi", jac, w, wrap(zu - up, period))
        p = p + np.where(ok[:, None], np.einsum("bij,bj->bi", np.linalg.pinv(info), grad), 0.0)
        p = np.clip(p, lo, hi)                  # stay in the searched box
    ok &= np.all(np.isfinite(p), axis=1) & (np.linalg.det(info) > 0)
    cov = np.full((b, 2, 2), np.inf)
    if ok.any():
        cov[ok] = np.linalg.inv(info[ok])
        ok[ok] &= np.linalg.eigvalsh(cov[ok])[:, 0] > 0
    p = np.where(ok[:, None], p, 0.0)
    return p, np.where(ok[:, None, None], cov, np.inf), ok
