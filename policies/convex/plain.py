"""The straightforward cvxpy formulation of the ``cvx`` baseline, the yardstick of the benchmarks.

This is what a first implementation looks like: the NS+OPT bisection builds a fresh cvxpy
feasibility SOCP per midpoint (no Parameters) and trusts SCS's status at its default tolerances,
then a fresh SDP over the full ``LM x LM`` matrices, also SCS defaults. It is kept as it was, so
the speed ratios against :mod:`policies.convex.policies` stay honest.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from cfisac_env.physics.system import System
from policies.classic import ns_sensing_all
from policies.convex.sdp import extract_beams
from policies.convex.socp import bisection_midpoints


def plain_feasible(hc: np.ndarray, sense: np.ndarray, system: System, rho: float,
                   gamma: float) -> bool:
    """Reference-style SOCP feasibility at ``gamma``, fresh problem, SCS defaults, status only."""
    L, M, n = system.L, system.M, system.N
    h = hc[..., :n].reshape(L * M, n)                                   # stacked channels
    s = sense.reshape(L * M)
    w = cp.Variable((L * M, n), complex=True)
    cons = []
    for k in range(n):
        row = cp.hstack([h[:, k].conj() @ w, np.array([h[:, k].conj() @ s,
                                                       np.sqrt(system.ue_noise)])])
        cons.append(cp.norm(row) <= np.sqrt(1 + 1 / gamma) * cp.real(h[:, k].conj() @ w[:, k]))
    cons += [cp.sum_squares(w[l * M:(l + 1) * M, :]) <= rho * system.P[l] for l in range(L)]
    prob = cp.Problem(cp.Minimize(0), cons)
    try:
        prob.solve(solver="SCS")
    except cp.error.SolverError:
        return False
    return prob.status == cp.OPTIMAL


def plain_sdp(hc: np.ndarray, gamma: float, system: System) -> np.ndarray:
    """The joint SDP over full ``LM x LM`` matrices, fresh problem, SCS defaults -> complex
    beams ``(L, M, Q)`` (zeros if SCS fails)."""
    L, M, n = system.L, system.M, system.N
    h = hc[..., :n].reshape(L * M, n)
    a = np.zeros(L * M, dtype=complex)
    a[:] = hc[..., n].reshape(L * M)
    A = np.zeros((L * M, L * M), dtype=complex)
    for l in range(L):
        blk = slice(l * M, (l + 1) * M)
        A[blk, blk] = np.outer(a[blk], a[blk].conj())
    F = [cp.Variable((L * M, L * M), hermitian=True) for _ in range(system.Q)]
    S = cp.sum(F)
    cons = [f >> 0 for f in F]
    for k in range(n):
        Qk = np.outer(h[:, k], h[:, k].conj())
        own = cp.real(cp.trace(Qk @ F[k])) / gamma
        others = cp.sum([cp.real(cp.trace(Qk @ F[q])) for q in range(system.Q) if q != k])
        cons.append(own - others >= system.ue_noise)
    cons += [cp.real(cp.trace(S[l * M:(l + 1) * M, l * M:(l + 1) * M])) <= system.P[l]
             for l in range(L)]
    prob = cp.Problem(cp.Maximize(system.sensing_gain * cp.real(cp.trace(A @ S))), cons)
    try:
        prob.solve(solver="SCS")
    except cp.error.SolverError:
        return np.zeros(hc.shape, dtype=complex)
    if prob.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return np.zeros(hc.shape, dtype=complex)
    return extract_beams([f.value for f in F], h).reshape(L, M, system.Q)


def plain_cvx(hc: np.ndarray, system: System, rho: float) -> tuple[np.ndarray, float]:
    """Plain NS+OPT bisection then plain SDP for one drop: (complex beams, gamma_high)."""
    sense = ns_sensing_all(hc[None], system, rho)[0]
    gamma = bisection_midpoints(feasible=lambda g: plain_feasible(hc, sense, system, rho, g))
    if not np.isfinite(gamma):
        return np.zeros(hc.shape, dtype=complex), gamma
    return plain_sdp(hc, gamma, system), gamma
