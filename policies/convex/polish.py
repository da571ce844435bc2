"""Power polish of SDP beams: the best powers along the beams' own directions, by one LP.

An SDP solution is extracted into rank-one beams ``w_q = sqrt(p_q) u_q`` (``N`` communication
beams, one sensing beam; :func:`policies.convex.sdp.beams_from_parts`). The directions ``u_q``
come out accurate, but near the SDP's boundary (a high SINR target, many APs) the recovered
powers carry the rounding of an ill-conditioned primal recovery: the beams then miss the SINR
target by 0.1-0.8 %. With the directions fixed, every quantity of the joint design is linear in
the powers ``p (Q,) >= 0``:

    maximise    sum_q c_q p_q                        c_q = SSNR of u_q alone
    subject to  g_nn p_n >= gamma (sum_{q != n} g_nq p_q + sigma_n^2)   (every UE n)
                sum_q e_lq p_q <= P_l                e_lq = ||u_lq||^2 (every AP l)

(``g_nq = |h_n^H u_q|^2``), an LP with ``Q`` variables and ``N + L`` rows, solved by HiGHS in a
few ms. Its optimum meets ``gamma`` and every budget to the LP's tolerance and is never worse
than the extracted powers when those are feasible. All coefficients come from
:mod:`cfisac_env.physics.metrics`, the code that scores the beams.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_layout
from cfisac_env.physics.system import System


def polish_powers(hc: np.ndarray, beams: np.ndarray, gamma: float, system: System
                  ) -> np.ndarray | None:
    """The LP of the module docstring for one drop.

    Args:
        hc: complex CSI ``(L, M, Q)`` (UE columns, then the target column).
        beams: complex beams ``(L, M, Q)`` whose directions are kept.
        gamma: SINR target (linear, > 0).
        system: the system (noise, budgets, sensing gain).

    Returns:
        complex beams ``(L, M, Q)`` at the LP's powers, or None when the LP has no solution
        (``gamma`` out of reach along these directions).
    """
    N, Q = system.N, beams.shape[-1]
    norms = np.sqrt(np.sum(np.abs(beams) ** 2, axis=(0, 1)))                  # (Q,)
    norms = np.where(norms > 1e-12 * max(norms.max(), 1e-300), norms, 0.0)
    unit = beams / np.where(norms > 0, norms, 1.0)                            # (L, M, Q)
    csi = to_layout(hc, dtype=None)                                   # (L, 2, M, Q)
    re, im = metrics.gains(csi, to_layout(unit, dtype=None), system)
    g = re ** 2 + im ** 2                                             # (N, Q)
    single = np.zeros((Q, *unit.shape), dtype=complex)                # beam q alone
    single[np.arange(Q), ..., np.arange(Q)] = unit.transpose(2, 0, 1)
    single = to_layout(single, dtype=None)                            # (Q, L, 2, M, Q)
    c = metrics.ssnr(csi[None], single, system)                       # (Q,)
    budget = np.asarray(system.P, float) * np.ones(unit.shape[0])     # (L,)
    # every row scaled to a right-hand side of -1 / 1 (the LP's tolerances are absolute)
    sinr_rows = g / system.ue_noise
    sinr_rows[np.arange(N), np.arange(N)] *= -1.0 / gamma
    power_rows = metrics.ap_power(single).T / budget[:, None]         # (L, Q)
    res = linprog(-c / max(c.max(), 1e-300), A_ub=np.vstack([sinr_rows, power_rows]),
                  b_ub=np.r_[-np.ones(N), np.ones(budget.size)],
                  bounds=[(0.0, None if n > 0 else 0.0) for n in norms], method="highs")
    if res.status != 0:
        return None
    return unit * np.sqrt(np.maximum(res.x, 0.0))
