"""Max-min SINR communication beams around a fixed sensing beam (the "OPT" of NS+OPT / CB+OPT).

Demirhan & Alkhateeb bisect ``gamma`` over ``[0.01, 60]`` (absolute tolerance 0.01) on the SOCP
feasibility problem

    SINR_n(W) >= gamma  for all n   (the fixed sensing beam s counts as interference),
    sum_n ||w_ln||^2 <= rho P_l      for all l,

and keep the last feasible midpoint ``gamma_high``. Feasibility is decided here robustly, by the
optimum of a power-scale SOCP (feasible iff ``t* <= 1``):

    minimise t  s.t.  || [h_n^H w_1, ..., h_n^H w_N, sqrt(|h_n^H s|^2 + sigma_n^2)] ||
                          <= sqrt(1 + 1/gamma) Re(h_n^H w_n),
                      || W_l ||_F <= t sqrt(rho P_l),

solved by an accurate interior-point solver (Clarabel) in the per-AP user subspace
(:mod:`policies.cvx_basis`), and the returned beams are re-checked with :mod:`cfisac_env.metrics`.
The problem is built once with cvxpy Parameters (DPP), so a bisection step only refills data.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from cfisac_env import metrics
from cfisac_env.system import System
from policies.cvx_basis import expand, reduce, span_basis

#: Bisection of the reference: interval and absolute tolerance.
GAMMA_LOW, GAMMA_HIGH, GAMMA_TOL = 0.01, 60.0, 0.01
#: Relative slack when re-checking a solution with the metric code.
CHECK_RTOL = 1e-6


def bisection_midpoints(low: float = GAMMA_LOW, high: float = GAMMA_HIGH, tol: float = GAMMA_TOL,
                        feasible=None) -> float:
    """Run the reference bisection with a feasibility oracle ``feasible(gamma) -> bool``.

    Returns the last feasible midpoint, or NaN when no midpoint was feasible.
    """
    best = np.nan
    while high - low > tol:
        mid = 0.5 * (low + high)
        if feasible(mid):
            low, best = mid, mid
        else:
            high = mid
    return best


@dataclass
class MaxMinResult:
    """Outcome of one drop: ``gamma_high`` (NaN when none), communication beams ``(L, M, N)``
    complex (None when none), a status string and the number of SOCP solves."""

    gamma_high: float
    comm: np.ndarray | None
    status: str
    solves: int


class MaxMinSINR:
    """Bisection solver for one system and power share ``rho``.

    Args:
        system: the system (L, M, N, budgets, UE noise).
        rho: communication share of each AP's budget, in (0, 1].
        solver: cvxpy solver name for the SOCP (default ``"CLARABEL"``).
    """

    def __init__(self, system: System, rho: float, solver: str = "CLARABEL") -> None:
        self.system, self.rho, self.solver = system, rho, solver
        s = system
        self.r = min(s.M, s.N)
        R = s.L * self.r
        self._gh = cp.Parameter((s.N, R), complex=True)       # rows h~_n^H
        self._gc = cp.Parameter((s.N, R), complex=True)       # sqrt(1 + 1/gamma) h~_n^H
        self._noise = cp.Parameter(s.N, nonneg=True)          # sqrt(|h_n^H s|^2 + sigma^2)
        self._x = cp.Variable((R, s.N), complex=True)
        t = cp.Variable(nonneg=True)
        gains = self._gh @ self._x                             # (N, N)
        lhs = cp.hstack([gains, cp.reshape(self._noise, (s.N, 1), order="C")])
        cons = [cp.norm(lhs, 2, axis=1) <= cp.real(cp.diag(self._gc @ self._x))]
        budget = np.sqrt(rho * s.P)
        cons += [cp.norm(self._x[l * self.r:(l + 1) * self.r, :], "fro") <= t * budget[l]
                 for l in range(s.L)]
        self._t = t
        self._problem = cp.Problem(cp.Minimize(t), cons)

    def _power_scale(self, gamma: float) -> tuple[float, str]:
        """Solve the power-scale SOCP at ``gamma``; ``(t*, status)`` (``t* = inf`` on failure)."""
        self._gc.value = np.sqrt(1.0 + 1.0 / gamma) * self._gh.value
        try:
            self._problem.solve(solver=self.solver, ignore_dpp=False)
        except cp.error.SolverError as e:
            return np.inf, f"solver error: {e}"
        status = self._problem.status
        if status != cp.OPTIMAL or self._t.value is None:
            return np.inf, status
        return float(self._t.value), status

    def solve(self, hc: np.ndarray, sense: np.ndarray) -> MaxMinResult:
        """Bisect one drop.

        Args:
            hc: complex CSI ``(L, M, Q)``.
            sense: the fixed sensing beams ``(L, M)`` complex.

        Returns:
            :class:`MaxMinResult`; the beams are those of the last feasible midpoint, each
            verified with :func:`cfisac_env.metrics.min_sinr` (SINR >= gamma) and within
            ``rho P_l``.
        """
        s = self.system
        basis = span_basis(hc[..., : s.N])                     # (L, M, r)
        self._gh.value = reduce(basis, hc[..., : s.N]).conj().T
        leak = np.einsum("lmn,lm->n", hc[..., : s.N].conj(), sense)
        self._noise.value = np.sqrt(np.abs(leak) ** 2 + s.ue_noise)
        csi = np.stack([hc.real, hc.imag], axis=-3)            # float64 layout
        state = {"comm": None, "solves": 0, "status": "no feasible gamma"}

        def feasible(gamma: float) -> bool:
            t, status = self._power_scale(gamma)
            state["solves"] += 1
            if not t <= 1.0:
                return False
            comm = expand(basis, self._x.value)                # (L, M, N)
            beams = np.concatenate([comm, sense[..., None]], axis=-1)
            w = np.stack([beams.real, beams.imag], axis=-3)
            ok_sinr = metrics.min_sinr(csi, w, s) >= gamma * (1.0 - CHECK_RTOL)
            ok_power = np.all(np.sum(np.abs(comm) ** 2, axis=(-2, -1))
                              <= self.rho * s.P * (1.0 + CHECK_RTOL))
            if not (ok_sinr and ok_power):
                return False
            state["comm"], state["status"] = comm, "optimal"
            return True

        gamma_high = bisection_midpoints(feasible=feasible)
        return MaxMinResult(gamma_high, state["comm"], state["status"], state["solves"])
