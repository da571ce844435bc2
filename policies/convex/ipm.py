"""A small primal-dual interior-point method for the joint SDP, in complex Hermitian arithmetic.

The joint SDP (:mod:`policies.convex.sdp`) in the per-AP subspace has ``Q = N + 1`` Hermitian
``R x R`` matrix variables (``R = L min(M, Q)``) but only ``m = N + L`` scalar constraints. A
general conic solver reached through cvxpy works on the real embedding (``2R x 2R`` blocks) of
all ``Q`` matrices and factors a KKT system with a dense block per cone; here the constraints are
eliminated instead, so every Newton step solves an ``m x m`` system (the Schur complement) and
works on ``Q`` complex ``R x R`` blocks with batched NumPy calls. This is the classic
infeasible primal-dual path-following method with the HKM search direction and Mehrotra's
predictor-corrector (as in SDPT3), applied to the standard pair

    (P)  minimise <C, X>  s.t.  <A_i, X> = b_i (i = 1..m),  X = (X_1..X_K, x) >= 0,
    (D)  maximise b^T y   s.t.  Z = C - sum_i y_i A_i >= 0,

where ``X_k`` are Hermitian PSD blocks and ``x`` a non-negative vector (the slacks of the
inequality constraints). Interior-point methods converge to the analytic centre of the optimal
face, as Clarabel does, so the extracted beams match a tight Clarabel solve.

The constraint matrices are never formed: every ``A_i^k`` is a rank-one outer product of a
channel (SINR rows) or a per-AP selector (power rows), so ``op``, ``adj`` and the Schur
complement go through ``X_k H`` (:class:`_Data`). :func:`jsc_data` builds the joint SDP's data in
this form.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from policies.convex.basis import expand, reduce, span_basis
from policies.convex.blas import single_blas_thread
from policies.convex.sdp import SDPResult, extract_beams, sensing_cost

#: Stopping rule: relative duality gap and relative primal / dual infeasibility.
IPM_TOL = 1e-8
IPM_MAX_ITERS = 80
#: Accuracy accepted as optimal when the iterates stop being numerically definite before IPM_TOL.
NEAR_TOL = 1e-7


@dataclass
class IPMResult:
    """Solution of one SDP: ``X (K, R, R)`` complex and ``x (n,)`` (primal), ``y (m,)``,
    ``Z (K, R, R)`` and ``z (n,)`` (dual), primal objective ``<C, X>``, iterations and a status
    (``"optimal"`` or ``"max iterations"`` / ``"numerical error"``)."""

    X: np.ndarray
    x: np.ndarray
    y: np.ndarray
    Z: np.ndarray
    z: np.ndarray
    primal: float
    iters: int
    status: str


def _herm(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.conj(np.swapaxes(a, -1, -2)))


def _ip(a: np.ndarray, b: np.ndarray) -> float:
    """``sum_k Re tr(a_k b_k)`` for Hermitian block stacks (K, R, R)."""
    return float(np.real(np.einsum("kab,kba->", a, b)))


def _max_steps(linv: np.ndarray, d: np.ndarray, K: int) -> tuple[float, float]:
    """Largest steps ``alpha`` keeping ``X + alpha dX`` and ``Z + alpha dZ`` PSD.

    ``linv``: inverse Cholesky factors of ``X`` and ``Z`` stacked ``(2K, R, R)``; ``d``: the
    directions ``(dX, dZ)`` stacked the same way. One batched eigenvalue call for both.
    """
    lam = np.linalg.eigvalsh(_herm(linv @ d @ np.conj(np.swapaxes(linv, -1, -2))))
    worst = lam[:K].min(), lam[K:].min()
    return tuple(np.inf if w >= 0 else -1.0 / float(w) for w in worst)


def _max_step_lp(x: np.ndarray, dx: np.ndarray) -> float:
    neg = dx < 0
    return float(np.min(-x[neg] / dx[neg])) if np.any(neg) else np.inf


class _Data:
    """The constraints of :func:`sdp_ipm` by their structure, never as dense blocks.

    SINR row ``n`` has the rank-one blocks ``A_n^k = alpha[n, k] h_n h_n^H`` and power row ``l``
    the selector blocks ``A_{N+l}^k = E_l / P_l`` (``E_l``: identity on AP ``l``'s ``r``
    coordinates), the same in every block ``k``. So ``<A_i, X>``, ``sum_i v_i A_i`` and the Schur
    complement cost ``O(K R^2 N)`` through ``X_k H`` instead of ``O(m K R^3)`` on dense
    ``(m, K, R, R)`` arrays.

    Args:
        C: ``(K, R, R)`` complex Hermitian cost blocks.
        h: ``(R, N)`` complex, the channels ``h_n`` of the SINR rows.
        alpha: ``(N, K)`` real coefficients of the SINR rows.
        power: ``(L,)`` the ``P_l`` of the power rows (``R = L r``).
        A_lp: ``(m, n)`` real, coefficients of the non-negative part ``x`` (``m = N + L``).
        b: ``(m,)`` real right-hand sides.
    """

    def __init__(self, C: np.ndarray, h: np.ndarray, alpha: np.ndarray, power: np.ndarray,
                 A_lp: np.ndarray, b: np.ndarray) -> None:
        self.C, self.h, self.alpha, self.A_lp, self.b = C, h, alpha, A_lp, b
        self.inv_p = 1.0 / np.asarray(power, float)
        self.K, self.R = C.shape[0], C.shape[-1]
        self.N, self.L = h.shape[1], len(power)
        self.m, self.r = self.N + self.L, self.R // self.L

    def _blocks(self, a: np.ndarray) -> np.ndarray:
        """``(K, R, R)`` -> ``(K, L, r, L, r)`` view by AP."""
        L, r = self.L, self.r
        return a.reshape(self.K, L, r, L, r)

    def op(self, blocks: np.ndarray, vec: np.ndarray) -> np.ndarray:
        """``<A_i, (blocks, vec)>`` for every i: ``sum_k Re tr(A_i^k blocks_k)`` + LP part."""
        XH = blocks @ self.h                                               # (K, R, N)
        quad = np.real(np.einsum("rn,krn->kn", self.h.conj(), XH))         # h_n^H X_k h_n
        sinr = np.einsum("nk,kn->n", self.alpha, quad)
        traces = np.real(np.einsum("klala->l", self._blocks(blocks))) * self.inv_p
        return np.r_[sinr, traces] + self.A_lp @ vec

    def adj(self, v: np.ndarray) -> np.ndarray:
        """``sum_i v_i A_i`` as blocks ``(K, R, R)``."""
        coef = v[: self.N, None] * self.alpha                              # (N, K)
        out = (self.h[None] * coef.T[:, None, :]) @ self.h.conj().T       # (K, R, R)
        diag = np.repeat(v[self.N:] * self.inv_p, self.r)
        out[:, np.arange(self.R), np.arange(self.R)] += diag
        return out

    def schur(self, X: np.ndarray, Zinv: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """HKM Schur complement ``M_ij = sum_k Re tr(A_i X_k A_j Z_k^-1)`` + LP part."""
        N, L, r, K = self.N, self.L, self.r, self.K
        h, hc = self.h, self.h.conj()
        XH, ZH = X @ h, Zinv @ h                                           # (K, R, N)
        GX = hc.T[None] @ XH                                               # h_i^H X_k h_j
        GZ = hc.T[None] @ ZH                                               # h_i^H Z_k^-1 h_j
        ss = np.einsum("ik,jk,kij->ij", self.alpha, self.alpha,
                       np.real(GX * np.swapaxes(GZ, 1, 2)))
        prod = np.real(XH.conj() * ZH).reshape(K, L, r, N).sum(axis=2)     # (K, L, N)
        sp = np.einsum("ik,kli->il", self.alpha, prod) * self.inv_p
        pp = self._blocks(np.real(X * Zinv.conj())).sum(axis=(0, 2, 4)) * np.outer(self.inv_p,
                                                                                  self.inv_p)
        M = np.block([[ss, sp], [sp.T, pp]]) + (self.A_lp * (x / z)) @ self.A_lp.T
        return 0.5 * (M + M.T)


def _direction(d: _Data, it: dict, target: float, corr: tuple | None):
    """HKM search direction towards ``X Z = target I`` (``corr``: Mehrotra's second-order
    term ``(dX dZ Z^-1, dx dz / z)`` of the predictor, or None)."""
    X, x, z, Zinv = it["X"], it["x"], it["z"], it["Zinv"]
    # Delta X = target Z^-1 - X - X dZ Z^-1 [- dXp dZp Z^-1]
    t_blk = target * Zinv - X
    t_lp = target / z - x
    if corr is not None:
        t_blk = t_blk - corr[0]
        t_lp = t_lp - corr[1]
    rhs = it["rp"] - d.op(t_blk, t_lp) + d.op(it["XRZ"], it["xrz"])
    chol = it["chol"]
    dy = np.linalg.solve(chol.T, np.linalg.solve(chol, rhs))
    dZ = it["Rd"] - d.adj(dy)
    dz = it["rd_lp"] - d.A_lp.T @ dy
    dX = _herm(t_blk - X @ dZ @ Zinv)
    dx = t_lp - x * dz / z
    return dX, dx, dy, dZ, dz


def sdp_ipm(d: _Data, tol: float = IPM_TOL, max_iters: int = IPM_MAX_ITERS,
            deadline: float | None = None) -> IPMResult:
    """Solve the standard pair (P)/(D) of the module docstring.

    Args:
        d: the problem data (:func:`jsc_data`); the LP part of ``C`` is zero.
        tol: relative gap and infeasibility at which to stop.
        max_iters: iteration limit.
        deadline: ``time.perf_counter()`` value after which to stop (status ``"timeout"``).

    Returns:
        :class:`IPMResult`.
    """
    C, A_lp, b = d.C, d.A_lp, d.b
    K, R = C.shape[0], C.shape[-1]
    n = A_lp.shape[1]
    nn = K * R + n
    norm_c = max(float(np.sqrt(np.sum(np.abs(C) ** 2))), 1.0)
    norm_b = float(np.linalg.norm(b))
    # Starting point X = xi I, Z = eta I, y = 0. The rows are scaled to order one (jsc_data), so
    # a small X (power ~ xi per coordinate) and Z ~ ||C|| take fewer iterations than SDPT3's
    # generic max(10, sqrt(R), ...) (13.5 vs 15.8 on pos2 N = 8 drops).
    xi = 0.1
    eta = max(1.0, norm_c)
    X = xi * np.eye(R, dtype=complex)[None].repeat(K, axis=0)
    Z = eta * np.eye(R, dtype=complex)[None].repeat(K, axis=0)
    x, z, y = np.full(n, xi), np.full(n, eta), np.zeros(A_lp.shape[0])
    status, iters, best = "max iterations", 0, np.inf
    while iters < max_iters:
        iters += 1
        rp = b - d.op(X, x)
        Rd = C - Z - d.adj(y)
        rd_lp = -z - A_lp.T @ y
        gap = _ip(X, Z) + float(x @ z)
        pobj, dobj = _ip(C, X), float(b @ y)
        rel_gap = abs(pobj - dobj) / (1.0 + abs(pobj) + abs(dobj))
        pinf = float(np.linalg.norm(rp)) / (1.0 + norm_b)
        dinf = np.sqrt(float(np.sum(np.abs(Rd) ** 2)) + float(rd_lp @ rd_lp)) / (1.0 + norm_c)
        best = max(rel_gap, pinf, dinf)
        if best < tol:
            status = "optimal"
            break
        if deadline is not None and time.perf_counter() > deadline:
            status = "timeout"
            break
        mu = gap / nn
        try:
            linv = np.linalg.inv(np.linalg.cholesky(np.concatenate([X, Z])))   # (2K, R, R)
            Zinv = np.conj(np.swapaxes(linv[K:], -1, -2)) @ linv[K:]           # Z^-1
            it = {"X": X, "x": x, "z": z, "Zinv": Zinv, "rp": rp, "Rd": Rd,
                  "rd_lp": rd_lp, "XRZ": X @ Rd @ Zinv, "xrz": x * rd_lp / z,
                  "chol": np.linalg.cholesky(d.schur(X, Zinv, x, z))}
            # Predictor (affine scaling) step.
            dX, dx, dy, dZ, dz = _direction(d, it, 0.0, None)
            sx, sz = _max_steps(linv, np.concatenate([dX, dZ]), K)
            ap = min(1.0, sx, _max_step_lp(x, dx))
            ad = min(1.0, sz, _max_step_lp(z, dz))
            new_gap = _ip(X + ap * dX, Z + ad * dZ) + float((x + ap * dx) @ (z + ad * dz))
            sigma = min(1.0, (max(new_gap, 0.0) / gap) ** 3)
            # Corrector with the second-order term.
            dX, dx, dy, dZ, dz = _direction(d, it, sigma * mu, (dX @ dZ @ Zinv, dx * dz / z))
            frac = 0.9 + 0.09 * min(ap, ad)
            sx, sz = _max_steps(linv, np.concatenate([dX, dZ]), K)
            ap = min(1.0, frac * sx, frac * _max_step_lp(x, dx))
            ad = min(1.0, frac * sz, frac * _max_step_lp(z, dz))
        except np.linalg.LinAlgError:
            # Near the optimum of a rank-deficient face the iterates lose definiteness in double
            # precision; the current iterate is kept when it is already accurate.
            status = "optimal" if best < NEAR_TOL else "numerical error"
            break
        X, x = _herm(X + ap * dX), x + ap * dx
        Z, z, y = _herm(Z + ad * dZ), z + ad * dz, y + ad * dy
    return IPMResult(X, x, y, Z, z, _ip(C, X), iters, status)


def jsc_data(h: np.ndarray, a: np.ndarray, gamma: float, ue_noise: np.ndarray, power: np.ndarray,
             r: int, sensing_scale: float) -> _Data:
    """The joint SDP in the standard form of :func:`sdp_ipm`.

    Args:
        h: user channels in reduced coordinates ``(R, N)`` complex.
        a: target steering per AP in reduced coordinates ``(L, r)`` complex.
        gamma: SINR target.
        ue_noise: ``(N,)`` noise powers sigma_n^2 (W).
        power: ``(L,)`` budgets P_l (W).
        r: coordinates per AP (``R = L r``).
        sensing_scale: sigma_s^2 / sigma_r^2.

    Returns:
        :class:`_Data` with ``Q`` blocks ``F_1..F_N, F_{N+1}`` (the last one the sensing
        covariance) and ``N + L`` rows. Row ``n`` is SINR
        ``h_n^H F_n h_n / gamma - sum_{q != n} h_n^H F_q h_n - x_n = sigma_n^2``, divided by
        ``||h_n||^2 / gamma`` so that every row is of order one at any SNR; row ``N + l`` is
        ``sum_q tr(F_q,ll) + x_{N+l} = P_l``, divided by ``P_l``.
    """
    R, N = h.shape
    L = len(power)
    Q = N + 1
    scale = gamma / np.sum(np.abs(h) ** 2, axis=0)                     # (N,)
    coef = np.full((N, Q), -1.0)
    coef[np.arange(N), np.arange(N)] = 1.0 / gamma
    A_lp = np.diag(np.r_[-np.ones(N), np.ones(L)])
    b = np.r_[ue_noise * scale, np.ones(L)]
    sens = sensing_cost(a, r)
    C = np.broadcast_to(-sensing_scale * sens, (Q, R, R)).copy()
    return _Data(C, h, coef * scale[:, None], power, A_lp, b)


class IPMJointSDP:
    """The joint SDP of :mod:`policies.convex.sdp` solved by :func:`sdp_ipm` (same interface as
    :class:`policies.convex.sdp.JointSDPSolver`).

    Args:
        system: the system.
        tol: relative gap / infeasibility at which the IPM stops (default :data:`IPM_TOL`).
        max_iters: iteration limit (default :data:`IPM_MAX_ITERS`).
    """

    def __init__(self, system, tol: float = IPM_TOL, max_iters: int = IPM_MAX_ITERS) -> None:
        self.system, self.tol, self.max_iters = system, float(tol), int(max_iters)
        self.r = min(system.M, system.Q)

    def solve(self, hc: np.ndarray, gamma: float, deadline: float | None = None):
        """One drop: complex CSI ``(L, M, Q)``, SINR target ``gamma`` ->
        :class:`policies.convex.sdp.SDPResult` (beams ``(L, M, Q)``, not yet power-projected).
        Raises TimeoutError past ``deadline`` (a ``time.perf_counter()`` value)."""
        s = self.system
        basis = span_basis(hc)                                         # (L, M, r)
        h = reduce(basis, hc[..., : s.N])                              # (R, N)
        a = (basis.conj().transpose(0, 2, 1) @ hc[..., s.N:])[..., 0]  # (L, r)
        data = jsc_data(h, a, gamma, np.full(s.N, s.ue_noise), s.P, self.r,
                        s.sensing_gain / s.radar_noise)
        with single_blas_thread():
            sol = sdp_ipm(data, self.tol, self.max_iters, deadline)
        if sol.status == "timeout":
            raise TimeoutError("joint SDP past the time limit")
        if sol.status != "optimal":
            return SDPResult(None, np.nan, f"ipm: {sol.status} after {sol.iters} iterations")
        coords = extract_beams(list(sol.X), h)                         # (R, Q)
        return SDPResult(expand(basis, coords), -sol.primal, "optimal")
