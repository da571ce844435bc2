"""Dual barrier method for the SINR-structured SDPs of the convex baseline, in ``O(R^3)`` a step.

Both convex problems of the baseline are SDPs over Hermitian PSD ``F_1 .. F_K`` (``R x R``, per-AP
reduced coordinates, ``R = L r``) whose constraints touch ``F`` only through ``h_n^H F_k h_n``
(rank-one) and the per-AP block traces ``tr(F_k,ll)``. Their Lagrangian duals have ``N + L``
scalar variables ``v = (w, mu) > 0`` (one per SINR and per power constraint), and every dual slack
matrix is a rank-one downdate of ONE matrix:

    B(v)  = C0 + D(mu) + sum_n w_n h_n h_n^H          (D(mu) = blkdiag(mu_l I_r), R x R),
    Z_n   = B - c1 w_n h_n h_n^H,  c1 = 1 + 1/gamma   (n = 1..N, the communication blocks),
    Z_N+1 = B                                          (the sensing block of the joint SDP),

so ``log det Z_n = log det B + log delta_n`` with ``delta_n = 1 - c1 w_n h_n^H B^-1 h_n``: the
barrier ``phi(v) = -sum_k log det Z_k - sum_i log v_i``, its gradient and its Hessian (an
``(N+L) x (N+L)`` matrix) follow from one Cholesky factor of ``B``, ``B^-1`` and ``G = B^-1 H``
in ``O(R^3 + R^2 N + N^3)`` flops; no ``R x R`` block per constraint is ever formed. A general
interior-point method (:mod:`policies.convex.ipm`) works on all ``K`` primal blocks and pays
``O(K R^3)`` per step.

The method follows the central path of ``-d^T v / tau + phi(v)``: at every step ``tau`` is the
smallest value whose Newton decrement is :data:`THETA` (never aiming at more than a
:data:`PHI`-fold cut of the known duality gap), then a Newton step with backtracking; and it
recovers the primal as in the dual-scaling algorithm of Benson, Ye & Zhang (DSDP): with the
Newton direction ``dv`` at ``v``,

    F_k(tau) = tau Z_k^-1 Z_k(v - dv) Z_k^-1,

which meets the primal equality constraints exactly, is PSD iff ``v - dv`` is dual feasible, and
has the duality gap ``tau (nu + grad^T dv)`` (``nu`` the barrier parameter). The method stops at
a relative gap :data:`DUAL_TOL` and hands back ``F_n h_n`` and ``sum_k F_k`` for the beams.

:class:`DualSDP` holds the joint SDP (:mod:`policies.convex.sdp`) in this form: ``C0 =
-sigma_s^2/sigma_r^2 blkdiag(a_l a_l^H)``, dual objective ``sum_n w_n sigma_n^2 - sum_l mu_l P_l``
(maximised; its optimum is minus the SSNR), with the sensing block. :class:`DualJointSDP` is the
solver the ``cvx`` policy uses by default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from policies.convex.basis import expand, reduce, span_basis
from policies.convex.blas import single_blas_thread
from policies.convex.sdp import SDPResult, beams_from_parts, sensing_cost

#: Stopping rule: relative duality gap ``gap / (1 + |dual objective|)``.
DUAL_TOL = 1e-9
DUAL_MAX_ITERS = 300
#: Newton decrement that sets ``tau`` at each step, and the largest cut of the duality gap that
#: one step may aim at (``tau >= gap / (PHI nu)``).
THETA, PHI = 6.0, 10.0
#: Newton decrement at the current ``tau`` below which a re-centring solve cuts ``tau``
#: (:class:`DualJointSDP` solves with it first): the path that cuts ``tau`` at every step lets
#: one SINR slack run to ~1e-8 and stalls (300 steps, 0.5-1 s) on 14 % of street drops at
#: N = 8 and on every drop measured with N >= M from L = 8 up; with this rule none of 30 such
#: drops did (80-110 steps). Its primal objective is within 1e-6 of the dual's, not 1e-8: the
#: policies polish the beams' powers (:mod:`policies.convex.polish`). It needs more steps where
#: the UEs are spread over many APs: 300-500 on street drops at N = 16 and 32 (0.3-1 s),
#: 50-140 on the drops of ``bench_cvx.py --scale``; :data:`CENTRED_MAX_ITERS` bounds them.
CENTRE = 1.0
CENTRED_MAX_ITERS = 800
#: Armijo fraction and backtracking factor of the line search.
ARMIJO, BACKTRACK = 0.2, 0.5
#: Least fraction of a slack a step may keep.
KEEP = 0.05



@dataclass
class Factor:
    """The dual slacks at one point ``v``: lower Cholesky factor of ``B (R, R)``, ``log det B``,
    ``G = B^-1 H (R, N)``, ``q_n = h_n^H B^-1 h_n (N,)`` and ``delta_n = 1 - c1 w_n q_n (N,)``
    (every ``Z_n`` is PD iff ``B`` is and every ``delta_n > 0``)."""

    chol: np.ndarray
    logdet: float
    G: np.ndarray | None
    q: np.ndarray
    delta: np.ndarray
    y: np.ndarray                      # L^-1 H (R, N)


@dataclass
class DualResult:
    """Outcome of :meth:`DualSDP.solve`: the dual point ``v = (w, mu)``, the Newton direction
    ``dv`` and ``tau`` that define the primal ``F(tau)``, the dual objective, the duality gap of
    that primal (inf when none was found), iterations and a status (``"optimal"``,
    ``"max iterations"`` or ``"numerical error"``)."""

    v: np.ndarray
    dv: np.ndarray
    tau: float
    dobj: float
    gap: float
    iters: int
    status: str


def _inverse(chol: np.ndarray) -> np.ndarray:
    """``B^-1`` from the lower Cholesky factor of ``B`` (LAPACK ``potri``), full Hermitian."""
    low, info = sla.lapack.zpotri(chol, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"potri failed ({info})")
    low = np.tril(low)
    return low + np.tril(low, -1).conj().T


class DualSDP:
    """One SINR-structured SDP (module docstring) in dual form.

    Args:
        h: user channels in reduced coordinates ``(R, N)`` complex.
        r: coordinates per AP (``R = L r``).
        gamma: SINR target (> 0).
        noise: ``(N,)`` right-hand sides ``sigma_n^2`` of the SINR constraints (W).
        power: ``(L,)`` budgets ``P_l`` (W).
        C0: ``(R, R)`` Hermitian cost of every block, or None (zero).
        sensing_block: whether there is the block ``Z = B`` (the joint SDP's ``F_N+1``).
        scale: the power-scale form of :mod:`policies.convex.power_scale`: objective
            ``sum_n w_n noise_n`` subject to ``sum_l mu_l power_l = 1`` (pass ``rho P_l``).
    """

    def __init__(self, h: np.ndarray, r: int, gamma: float, noise: np.ndarray,
                 power: np.ndarray, C0: np.ndarray | None, sensing_block: bool = True,
                 scale: bool = False) -> None:
        self.h, self.r, self.gamma = np.asarray(h, complex), int(r), float(gamma)
        self.hc = self.h.conj()
        self.R, self.N = self.h.shape
        self.L = self.R // self.r
        self.c1 = 1.0 + 1.0 / self.gamma
        self.C0, self.sensing_block = C0, bool(sensing_block)
        self.K = self.N + int(sensing_block)                    # PSD blocks
        self.m = self.N + self.L
        self.nu = self.K * self.R + self.m                       # barrier parameter
        noise, power = np.asarray(noise, float), np.asarray(power, float)
        self.d = np.r_[noise, np.zeros(self.L) if scale else -power]
        self.e = np.r_[np.zeros(self.N), power] if scale else None
        self.hn2 = np.sum(np.abs(self.h) ** 2, axis=0)           # (N,)
        self._diag = np.diag_indices(self.R)

    # -- the dual slacks ----------------------------------------------------------------------
    def B(self, v: np.ndarray, constant: bool = True) -> np.ndarray:
        """``B(v) (R, R)`` (``constant=False``: without ``C0``, i.e. the linear part)."""
        w, mu = v[: self.N], v[self.N:]
        B = (self.h * w) @ self.hc.T
        B[self._diag] += np.repeat(mu, self.r)
        if constant and self.C0 is not None:
            B += self.C0
        return B

    def factor(self, v: np.ndarray, full: bool = True) -> Factor | None:
        """The slacks at ``v``, or None when ``v`` is not strictly dual feasible (``full=False``:
        without ``G``, enough for :meth:`barrier`)."""
        if not np.all(v > 0):
            return None
        try:
            chol = np.linalg.cholesky(self.B(v))
        except np.linalg.LinAlgError:
            return None
        y = sla.solve_triangular(chol, self.h, lower=True, check_finite=False)   # L^-1 H
        q = np.sum(np.abs(y) ** 2, axis=0)
        delta = 1.0 - self.c1 * v[: self.N] * q
        if not np.all(delta > 0):
            return None
        logdet = 2.0 * float(np.sum(np.log(np.real(np.diagonal(chol)))))
        f = Factor(chol, logdet, None, q, delta, y)
        return self.complete(f) if full else f

    @staticmethod
    def complete(f: Factor) -> Factor:
        """``f`` with ``G = B^-1 H`` (one more triangular solve)."""
        if f.G is None:
            f.G = sla.solve_triangular(f.chol, f.y, lower=True, trans="C", check_finite=False)
        return f

    def barrier(self, v: np.ndarray, f: Factor) -> float:
        """``phi(v)`` at a strictly feasible ``v`` with its factor ``f``."""
        return float(-self.K * f.logdet - np.sum(np.log(f.delta)) - np.sum(np.log(v)))

    def start(self) -> np.ndarray:
        """A strictly feasible ``v``: ``mu`` so that ``C0 + D(mu) >= I`` and ``w`` small enough
        that every ``delta_n >= 1/2``."""
        mu = np.ones(self.L)
        if self.e is not None:
            mu = mu / float(self.e[self.N:] @ mu)
        if self.C0 is not None:
            blocks = self.C0.reshape(self.L, self.r, self.L, self.r)
            diag = np.stack([blocks[l, :, l, :] for l in range(self.L)])
            mu = mu + np.maximum(0.0, -np.linalg.eigvalsh(diag)[:, 0])
        w = 0.5 * mu.min() / (self.c1 * self.hn2)
        if self.C0 is not None:
            w = w / (1.0 + mu.max())
        return np.r_[w, mu]

    # -- derivatives --------------------------------------------------------------------------
    def derivatives(self, v: np.ndarray, f: Factor) -> tuple[np.ndarray, np.ndarray]:
        """Gradient ``(m,)`` and Hessian ``(m, m)`` of ``phi`` at ``v``.

        With ``beta_k = c1 w_k / delta_k``, ``Z_k^-1 = B^-1 + beta_k g_k g_k^H`` (``g = B^-1 h``),
        so every entry is a sum over blocks of ``h_i^H Z_k^-1 h_j`` and of per-AP pieces of
        ``Z_k^-1 h_i``; the ``mu``-``mu`` block needs ``B^-1`` itself (one ``R x R`` inverse).
        """
        N, L, r = self.N, self.L, self.r
        w = v[:N]
        G, q, delta = f.G, f.q, f.delta
        beta = self.c1 * w / delta
        Phi = self.hc.T @ G                                       # (N, N) h_i^H B^-1 h_j
        extra = int(self.sensing_block)
        c1, ar = self.c1, np.arange(N)
        # dZ_k/dw_i = c[i, k] h_i h_i^H with c = 1 - c1 I, so sum_k c[i, k] c[j, k] X[k, ...] =
        # sum_k X[k] - c1 (X[i] + X[j]) + c1^2 [i = j] X[i]
        # T[k, i, j] = h_i^H Z_k^-1 h_j
        T = Phi[None] + beta[:, None, None] * (Phi.T[:, :, None] * Phi[:, None, :])
        T2 = T.real ** 2 + T.imag ** 2
        Hww = (T2.sum(0) - c1 * (T2[ar, ar, :] + T2[ar[None, :], ar[:, None], ar[None, :]])
               + c1 ** 2 * np.diag(T2[ar, ar, ar]) + extra * (Phi.real ** 2 + Phi.imag ** 2))
        Tii = T.real[:, ar, ar]                                   # (K, N) h_i^H Z_k^-1 h_i
        gw = -(Tii.sum(0) - c1 * Tii[ar, ar]) - extra * q
        Gr = G.reshape(L, r, N)
        Gam = np.swapaxes(Gr.conj(), 1, 2) @ Gr                   # (L, N, N) g_il^H g_kl
        gdiag = np.real(Gam[:, ar, ar])                           # (L, N) ||g_kl||^2
        cb = beta[:, None] * Phi                                  # cb[k, i] = beta_k Phi_ki
        # V[l, k, i] = ||(Z_k^-1 h_i)_l||^2 with Z_k^-1 h_i = g_i + beta_k Phi_ki g_k
        V = (gdiag[:, None, :] + 2.0 * np.real(cb[None] * np.swapaxes(Gam, 1, 2))
             + (cb.real ** 2 + cb.imag ** 2)[None] * gdiag[:, :, None])
        Hwm = (V.sum(1) - c1 * V[:, ar, ar]).T + extra * gdiag.T
        Binv = _inverse(f.chol)
        B4 = Binv.reshape(L, r, L, r)
        # Pm[a, b] = sum_k beta_k g_ka^H Binv_ab g_kb = blocksum(Binv o conj(G) diag(beta) G^T)
        Mk = (G.conj() * beta) @ G.T                              # (R, R)
        Pm = np.real(np.sum((Binv * Mk).reshape(L, r, L, r), axis=(1, 3)))
        Hmm = (self.K * np.sum(B4.real ** 2 + B4.imag ** 2, axis=(1, 3))
               + 2.0 * Pm + (gdiag * beta) @ (gdiag * beta).T)
        tr_ll = np.real(np.diagonal(Binv)).reshape(L, r).sum(1)
        gm = -(self.K * tr_ll + gdiag @ beta)
        grad = np.r_[gw, gm] - 1.0 / v
        H = np.block([[Hww, Hwm], [Hwm.T, Hmm]])
        H[np.diag_indices(self.m)] += 1.0 / v ** 2
        return grad, 0.5 * (H + H.T)

    def _newton(self, H: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """``H^-1 rhs`` (columns), Jacobi-scaled; restricted to ``e^T dv = 0`` when there is
        an equality."""
        scale = 1.0 / np.sqrt(np.diag(H))                        # Jacobi scaling
        Hs = H * scale[:, None] * scale[None, :]
        rs = rhs * scale[:, None]
        if self.e is not None:
            es = self.e * scale
            kkt = np.block([[Hs, es[:, None]], [es[None], np.zeros((1, 1))]])
            pad = np.vstack([rs, np.zeros((1, rs.shape[1]))])
            return np.linalg.solve(kkt, pad)[: self.m] * scale[:, None]
        try:
            sol = sla.cho_solve(sla.cho_factor(Hs, check_finite=False), rs, check_finite=False)
        except np.linalg.LinAlgError:                         # PD, but ill-conditioned
            sol = np.linalg.lstsq(Hs, rs, rcond=None)[0]
        return sol * scale[:, None]

    # -- the method ---------------------------------------------------------------------------
    def solve(self, tol: float = DUAL_TOL, max_iters: int = DUAL_MAX_ITERS,
              deadline: float | None = None, centre: float | None = None) -> DualResult:
        """Path following (module docstring).

        Args:
            tol: relative gap ``gap / (1 + |dobj|)`` at which to stop.
            max_iters: Newton-step limit.
            deadline: ``time.perf_counter()`` value; past it TimeoutError is raised.
            centre: None (default): ``tau`` is cut at every step; a number: only once the
                Newton decrement at the current ``tau`` is at most this (the steps in between
                re-centre; it does not stall where the default does).

        Returns:
            :class:`DualResult` of the best primal-feasible ``F(tau)`` found.
        """
        v = self.start()
        f = self.factor(v)
        if f is None:
            return DualResult(v, np.zeros_like(v), 0.0, np.nan, np.inf, 0, "numerical error")
        dobj = float(self.d @ v)
        best = DualResult(v, np.zeros_like(v), 0.0, dobj, np.inf, 0, "max iterations")
        tau, known_gap = None, np.inf
        for it in range(1, max_iters + 1):
            if deadline is not None and time.perf_counter() > deadline:
                raise TimeoutError("dual barrier method past the time limit")
            grad, H = self.derivatives(v, f)
            sol = self._newton(H, np.c_[self.d, grad])
            d1, d2 = sol[:, 0], sol[:, 1]
            if tau is None:       # the tau whose centre is closest to the start (local norm)
                num, den = float(self.d @ d1), float(self.d @ d2)
                tau = num / den if den > 0 and num > 0 else (1.0 + abs(dobj)) / self.nu
            # the smallest tau (at most the current one) whose Newton decrement is THETA
            Hd1, Hd2 = H @ d1, H @ d2
            a, b, c = float(d1 @ Hd1), float(d1 @ Hd2), float(d2 @ Hd2)
            disc = b * b - a * (c - THETA ** 2)
            s_max = (b + np.sqrt(disc)) / a if a > 0 and disc > 0 else 0.0     # 1 / tau
            centred = centre is None or a / tau ** 2 - 2.0 * b / tau + c <= centre ** 2
            if s_max > 0 and centred:
                # never below the tau whose centre has a gap PHI times smaller than the known one
                tau = min(tau, max(1.0 / s_max, known_gap / (PHI * self.nu)))
            dv = d1 / tau - d2
            if self.factor(v - dv) is not None:          # the primal F(tau) bounds the optimum
                gap = tau * (self.nu + float(grad @ dv))
                known_gap = min(known_gap, gap)
                if gap < best.gap:
                    best = DualResult(v.copy(), dv.copy(), tau, dobj, gap, it, "max iterations")
                if gap <= tol * (1.0 + abs(dobj)):
                    best.status = "optimal"
                    return best
            step = self._line_search(v, f, dv, tau, grad)
            if step is None:
                best.status = "numerical error"
                return best
            v, f = step
            dobj = float(self.d @ v)
        return best

    def _line_search(self, v: np.ndarray, f: Factor, dv: np.ndarray, tau: float,
                     grad: np.ndarray) -> tuple[np.ndarray, Factor] | None:
        """Backtracking (Armijo) from the full Newton step on ``-d^T v / tau + phi(v)``, never
        letting a slack ``delta_n`` or ``v_i`` fall below :data:`KEEP` times its value (a step
        that lands next to one boundary strands the path there); the new point and its
        factor, or None."""
        f0 = -float(self.d @ v) / tau + self.barrier(v, f)
        slope = -float(self.d @ dv) / tau + float(grad @ dv)     # = -lam^2
        alpha = 1.0
        for _ in range(60):
            vn = v + alpha * dv
            fn = self.factor(vn, full=False)
            if fn is not None and np.all(fn.delta >= KEEP * f.delta) and np.all(vn >= KEEP * v) \
                    and (-float(self.d @ vn) / tau + self.barrier(vn, fn)
                         <= f0 + ARMIJO * alpha * slope):
                return vn, self.complete(fn)
            alpha *= BACKTRACK
        return None


def primal_parts(dual: DualSDP, res: DualResult) -> tuple[np.ndarray, np.ndarray]:
    """``F_n h_n (R, N)`` and ``S = sum_k F_k (R, R)`` of the primal ``F(tau)`` of ``res``, from
    rank-one updates of ``B^-1`` (``F_k = tau Z_k^-1 Z_k(v - dv) Z_k^-1``)."""
    v, dv, tau = res.v, res.dv, res.tau
    N, h = dual.N, dual.h
    f = dual.factor(v)
    w2 = v[:N] - dv[:N]
    B2 = dual.B(v - dv)
    Bi = sla.cho_solve((f.chol, True), np.eye(dual.R, dtype=complex), check_finite=False)
    G, q, delta = f.G, f.q, f.delta
    beta = dual.c1 * v[:N] / delta
    U = G / delta
    Y = B2 @ U - h * (dual.c1 * w2 * q / delta)
    XH = tau * (Bi @ Y + G * (beta * np.sum(G.conj() * Y, axis=0)))
    Mm = Bi @ (B2 @ G)
    gBg = np.real(np.sum(G.conj() * (B2 @ G), axis=0))
    coef = beta ** 2 * gBg - dual.c1 * w2 / delta ** 2
    S = tau * (dual.K * (Bi @ B2 @ Bi) + (Mm * beta) @ G.conj().T + (G * beta) @ Mm.conj().T
               + (G * coef) @ G.conj().T)
    return XH, 0.5 * (S + S.conj().T)


class DualJointSDP:
    """The joint SDP of :mod:`policies.convex.sdp` solved by :class:`DualSDP` (same interface as
    :class:`policies.convex.ipm.IPMJointSDP`).

    Args:
        system: the system.
        tol: relative duality gap at which to stop (default :data:`DUAL_TOL`).
        max_iters: Newton-step limit (default :data:`CENTRED_MAX_ITERS`).

    The solve re-centres (:data:`CENTRE`); a drop it does not solve within ``max_iters`` is
    reported as failed (the ``cvx`` policy then solves it by the IPM).
    """

    def __init__(self, system, tol: float = DUAL_TOL, max_iters: int = CENTRED_MAX_ITERS
                 ) -> None:
        self.system, self.tol, self.max_iters = system, float(tol), int(max_iters)
        self.r = min(system.M, system.Q)

    def solve(self, hc: np.ndarray, gamma: float, deadline: float | None = None) -> SDPResult:
        """One drop: complex CSI ``(L, M, Q)``, SINR target ``gamma`` -> beams ``(L, M, Q)``
        (not yet power-projected) and the SSNR optimum. Raises TimeoutError past ``deadline``
        (a ``time.perf_counter()`` value)."""
        s, r = self.system, self.r
        basis = span_basis(hc)                                         # (L, M, r)
        h = reduce(basis, hc[..., : s.N])                              # (R, N)
        a = (basis.conj().transpose(0, 2, 1) @ hc[..., s.N:])[..., 0]  # (L, r)
        C0 = -s.sensing_gain / s.radar_noise * sensing_cost(a, r)
        dual = DualSDP(h, r, gamma, np.full(s.N, s.ue_noise), np.asarray(s.P, float), C0)
        with single_blas_thread():
            res = dual.solve(self.tol, self.max_iters, deadline, centre=CENTRE)
            if res.status != "optimal":
                return SDPResult(None, np.nan, f"dual: {res.status} after {res.iters} steps")
            fh, total = primal_parts(dual, res)
            coords = beams_from_parts(fh, total, h)                    # (R, Q)
        return SDPResult(expand(basis, coords), -res.dobj, "optimal")
