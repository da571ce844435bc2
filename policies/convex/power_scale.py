"""The power-scale problem of NS+OPT solved in its dual, with certified bounds and verified beams.

``t*(gamma)`` is the least scale ``t`` of the budgets ``rho P_l`` for which beams with every
``SINR_n >= gamma`` exist (the fixed sensing beam ``s`` counts as interference); ``gamma`` is
feasible iff ``t* <= 1`` (:mod:`policies.convex.socp`). Its SDP relaxation is tight, and its
Lagrangian dual (:class:`policies.convex.dual.DualSDP` with ``C0 = 0``, no sensing block and the
equality ``sum_l mu_l rho P_l = 1``) maximises ``sum_n w_n nu_n^2`` with ``nu_n^2 = sigma_n^2 +
|h_n^H s|^2``: its optimum is ``t*^2``, every dual iterate a certified lower bound, and the
method's primal a certified upper bound.

The beams come from the dual point by uplink-downlink duality: the directions ``u_n = B^-1 h_n``
of the dual's ``B = D(mu) + sum_n w_n h_n h_n^H``, with the powers ``p`` of the ``N x N`` linear
system ``|h_n^H u_n|^2 p_n / gamma - sum_{k != n} |h_n^H u_k|^2 p_k = nu_n^2`` (every SINR exactly
``gamma``); at the dual optimum they are optimal beams, and they are checked by the metric code
like every other solve's. A ``gamma`` the bounds cannot decide (``t*`` within the solve's
tolerance of 1), or a solve that fails, is handed to the Clarabel SOCP
(:class:`policies.convex.socp.PowerScaleSOCP`), so the decision is never a guess.

:class:`DualPowerScale` has the interface of ``PowerScaleSOCP`` (``load``, ``solve``,
``verified``). A step costs ``O(R^3 + R^2 N + N^3)`` (one ``R x R`` Cholesky factor) instead of
a sparse factorisation over all ``R N`` beam coordinates.
"""

from __future__ import annotations

import numpy as np

from cfisac_env.physics.system import System
from policies.convex.balance import downlink_shares
from policies.convex.dual import DualSDP

#: Relative duality gap of a solve for the root finding (its secant needs no more), and of a
#: tight one (the beams a policy returns).
ESTIMATE_RTOL, TIGHT_RTOL = 1e-6, 1e-9
#: Newton steps after which a solve is handed to Clarabel (the path following converges in
#: 30-60 where it converges at all).
MAX_STEPS = 50


class DualPowerScale:
    """``t*(gamma)`` of one system and power share ``rho`` by the dual barrier method.

    Args:
        system: the system (L, M, N, budgets).
        rho: communication share of each AP's budget.
        fallback: the Clarabel form (:class:`policies.convex.socp.PowerScaleSOCP`) for the
            drops' undecided ``gamma``; it is loaded with the same drop.
    """

    #: solves stop early (a policy's beams need a ``tight`` one)
    tight = False

    def __init__(self, system: System, rho: float, fallback) -> None:
        self.system, self.rho = system, float(rho)
        self.r = min(system.M, system.N)
        self.budget = self.rho * np.asarray(system.P, dtype=float)
        self.fallback = fallback
        self.fallbacks = 0                     # gammas handed to Clarabel so far

    def load(self, hc: np.ndarray, sense: np.ndarray) -> None:
        """Set one drop: complex CSI ``(L, M, Q)`` and fixed sensing beams ``(L, M)`` (the
        fallback's ``load`` reduces it: the same basis, channels ``h (R, N)`` and noise plus
        leak ``nu2 (N,)`` for both)."""
        self.fallback.load(hc, sense)
        self.h, self.nu2 = self.fallback.h, self.fallback.nu2

    def beams(self, gamma: float, G: np.ndarray) -> tuple[float, np.ndarray] | None:
        """Beams ``X (R, N)`` (reduced coordinates) from the directions ``G = B^-1 H``, every
        SINR exactly ``gamma``, and their largest per-AP share ``max_l P_l(X) / (rho P_l)``;
        None when the powers come out negative (far from the optimum)."""
        out = downlink_shares(self.h, self.nu2, G, gamma, self.budget)
        if out is None:
            return None
        p, share = out
        return float(np.max(share)), G * np.sqrt(p)

    def solve(self, gamma: float, tight: bool = False, deadline: float | None = None
              ) -> tuple[float, np.ndarray | None, str]:
        """``(t, X, status)`` at ``gamma`` for the loaded drop: ``t`` to :data:`ESTIMATE_RTOL`
        (``tight``: :data:`TIGHT_RTOL`), ``X`` the beams in reduced coordinates ``(R, N)`` when
        they meet the budgets (``t <= 1``, certified), else None (``t > 1``, certified by the
        dual bound). Undecided or failed solves go to Clarabel."""
        dual = DualSDP(self.h, self.r, gamma, self.nu2, self.budget, None,
                       sensing_block=False, scale=True)
        res = dual.solve(TIGHT_RTOL if tight else ESTIMATE_RTOL, MAX_STEPS, deadline)
        if res.status == "optimal":
            lower, upper = res.dobj, res.dobj + res.gap          # bounds on t*^2
            f = dual.factor(res.v)
            out = self.beams(gamma, f.G) if f is not None else None
            if out is not None and out[0] <= 1.0:
                return float(np.sqrt(out[0])), out[1], "optimal"
            if lower > 1.0:
                return float(np.sqrt(0.5 * (lower + upper))), None, "optimal"
        self.fallbacks += 1
        return self.fallback.solve(gamma)

    def verified(self, gamma: float, X: np.ndarray) -> np.ndarray | None:
        """As :meth:`policies.convex.socp.PowerScaleSOCP.verified` (the same check)."""
        return self.fallback.verified(gamma, X)
