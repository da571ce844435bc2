"""Certified bounds on the max-min SINR of NS+OPT by uplink-downlink SINR balancing.

The reference bisection needs only on which side of ``gamma*`` (the largest ``gamma`` whose
power scale ``t*(gamma)`` is at most 1, :mod:`policies.convex.socp`) each of its midpoints
lies. ``gamma*`` is the max-min SINR under the per-AP budgets ``rho P_l`` with the sensing leak
as noise, and by Lagrange duality (the power-scale dual of
:mod:`policies.convex.power_scale`) it is the least, over AP prices ``mu >= 0`` with
``sum_l mu_l rho P_l = 1``, of the max-min SINR under the one priced budget
``sum_l mu_l ||W_l||^2 <= 1``, which is that of a virtual uplink with UE powers ``q``
(``sum_n q_n nu_n^2 = 1``) and receiver noise ``D(mu)`` (``mu_l`` on AP ``l``'s coordinates):

    SINR_n(q, mu) = q_n h_n^H (D(mu) + sum_{k != n} q_k h_k h_k^H)^-1 h_n .

One iteration balances the uplink (``q_n <- C I_n(q)``, ``I_n = q_n / SINR_n``, a standard
interference function: Yates' fixed point), turns its MMSE receivers ``u_n = B^-1 h_n`` into
downlink beams with every SINR at the balanced level ``C`` (the ``N x N`` power system of
:func:`downlink_shares`), and moves each price by the AP's share of its budget, ``mu_l <-
mu_l (P_l / (rho P_l))^(1/2)`` (an over-budget AP gets dearer;
a damped multiplicative step), which converges to the prices at which every priced AP spends
exactly its budget. It costs one ``R x R`` Cholesky factor (``R = L min(M, N)``).

Both bounds are certificates at every iteration:

- upper: ``max_n SINR_n(q, mu)``. ``(mu, s q)`` with ``s`` slightly above 1 is a feasible point
  of the power-scale dual at any larger ``gamma`` (each dual slack ``B - (1 + 1/gamma) w_n h_n
  h_n^H`` is positive semidefinite iff the uplink SINR is at most ``gamma``) with objective
  ``s^2 > 1``, so ``t* > 1`` there;
- lower: the downlink beams scaled into every budget reach at least ``C / max(1, max_l
  share_l)`` (scaling every power by ``1 / s``, ``s >= 1``, divides no SINR by more than ``s``),
  and the least powers at exactly that level (no more along the same directions) are re-checked
  by the metric code by the caller.

When no midpoint of the reference bisection lies between the two, ``gamma_high`` follows without
a single power-scale solve; measured on 6 drops each at 9 sizes from (2, 8, 16) to (16, 32, 8)
(stretched pos2 and street layouts) this takes 1-115 iterations (1-40 ms) and no solve, where
the root finding took 1-80 s from L = 8 up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sl

#: Iterations after which the bracket is returned as it stands.
MAX_ITERATIONS = 400
#: Exponent of the price update ``mu_l <- mu_l share_l^PRICE_STEP``: 1 drifted away from the
#: optimum on every street drop with 16 APs and 8 UEs (an AP's share grew while its price rose),
#: 0.5 and 0.7 converged on every drop tried (0.7 in 1-85 iterations, 0.5 in 1-115).
PRICE_STEP = 0.5
#: Relative width below which the iteration stops even if a midpoint is still inside (it is
#: then as close to ``gamma*`` as the arithmetic allows: a solve at that midpoint decides it).
MIN_RELATIVE_WIDTH = 1e-9


@dataclass
class Bracket:
    """``lower <= gamma* <= upper`` (``lower`` 0 when no beams were found), the beam directions
    ``G (R, N)`` (MMSE receivers of the last uplink) that reach ``lower``, the prices ``mu (L,)``
    and uplink powers ``q (N,)`` of the last iteration (a warm start for the next drop) and the
    iterations it took."""

    lower: float
    upper: float
    G: np.ndarray | None
    mu: np.ndarray
    q: np.ndarray
    iterations: int


def downlink_shares(h: np.ndarray, nu2: np.ndarray, G: np.ndarray, gamma: float,
                    budget: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Downlink powers ``p (N,)`` (W) that put every SINR exactly at ``gamma`` along the
    directions ``G (R, N)`` (reduced coordinates, AP-major rows), and each AP's share of its
    budget ``(L,)``; None when no positive powers do (``gamma`` beyond what the directions reach).

    ``|h_n^H u_n|^2 p_n / gamma - sum_{k != n} |h_n^H u_k|^2 p_k = nu_n^2``; its solution is the
    least power vector reaching ``gamma`` along these directions.
    """
    gam = h.conj().T @ G                                           # (N, N) h_n^H u_k
    A = -(gam.real ** 2 + gam.imag ** 2)
    A[np.diag_indices_from(A)] *= -1.0 / gamma
    try:
        p = np.linalg.solve(A, nu2)
    except np.linalg.LinAlgError:
        return None
    if not np.all(p > 0):
        return None
    L = budget.size
    per_ap = (G.real ** 2 + G.imag ** 2).reshape(L, -1, G.shape[1]).sum(axis=1) @ p
    return p, per_ap / budget


def balance(h: np.ndarray, nu2: np.ndarray, budget: np.ndarray,
            done: Callable[[float, float], bool],
            warm: tuple[np.ndarray, np.ndarray] | None = None,
            deadline: float | None = None) -> Bracket | None:
    """Bracket ``gamma*`` of one drop until ``done(lower, upper)`` (every reference midpoint
    decided).

    Args:
        h: reduced UE channels ``(R, N)``, ``R = L r`` rows, AP ``l``'s ``r`` rows together.
        nu2: noise plus sensing leak of each UE ``(N,)``, W.
        budget: communication budgets ``rho P_l`` ``(L,)``, W.
        done: whether a bracket is narrow enough.
        warm: ``(mu, q)`` of a previous bracket (the previous drop on a road).
        deadline: ``time.perf_counter()`` value; past it a :class:`TimeoutError` is raised.

    Returns:
        :class:`Bracket`, or None when the uplink breaks down (a UE without a channel).
    """
    R, N = h.shape
    r = R // budget.size
    if warm is not None and warm[0].shape == budget.shape and warm[1].shape == (N,):
        mu, q = warm[0] / (warm[0] @ budget), warm[1] / (warm[1] @ nu2)
    else:
        mu, q = np.full(budget.size, 1.0 / budget.sum()), np.full(N, 1.0 / nu2.sum())
    lower, upper, G_low = 0.0, np.inf, None
    diag = np.diag_indices(R)
    k = 0
    while k < MAX_ITERATIONS:
        k += 1
        if deadline is not None and time.perf_counter() > deadline:
            raise TimeoutError("max-min SINR balancing past the time limit")
        B = (h * q) @ h.conj().T
        B[diag] += np.repeat(mu, r)
        try:
            G = sl.cho_solve(sl.cho_factor(B, lower=True, check_finite=False), h,
                             check_finite=False)
        except np.linalg.LinAlgError:
            return None
        a = np.einsum("rn,rn->n", h.conj(), G).real                  # h_n^H B^-1 h_n
        if not np.all(np.isfinite(a) & (a > 0)):
            return None
        interference = (1.0 - q * a) / a                              # q_n / SINR_n
        upper = min(upper, float(np.max(q / interference)))
        level = 1.0 / float(nu2 @ interference)                       # balanced SINR C
        q = level * interference                                      # sum_n q_n nu_n^2 = 1
        out = downlink_shares(h, nu2, G, level, budget)
        if out is not None:                  # (None while the uplink has not settled yet)
            share = out[1]
            reach = level / max(float(share.max()), 1.0)         # scaled into every budget
            if reach > lower:
                lower, G_low = reach, G
            mu = mu * share ** PRICE_STEP
            mu /= mu @ budget
        if done(lower, upper) or upper - lower <= MIN_RELATIVE_WIDTH * upper:
            break
    return Bracket(lower, upper, G_low, mu, q, k)
