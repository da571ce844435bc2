"""The sensing-communication frontier at a policy's own operating point.

For a drop and a policy's beams with min-SINR ``g2``, the frontier SSNR is the best SSNR any
central design reaches while giving every UE at least that SINR: the optimum of the joint SDP
of ``cvx`` (:class:`policies.convex.sdp.JointSDPSolver`) with ``gamma = g2`` on that drop. The SDP
is
feasible there (the policy's own beams are a rank-one point of it) and, as a relaxation, its
optimum bounds every beamformer's SSNR at that SINR from above.

Frontier efficiency = mean SSNR of the policy / mean frontier SSNR over the same drops, in
``(0, 1]`` up to solver tolerance. It tells a policy that chose another trade-off point (high
efficiency, whatever its ratio to ``cvx`` at ``rho = 0.5``) from a bad policy (low efficiency).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfisac_env.physics import metrics
from cfisac_env.physics.system import System


@dataclass
class Frontier:
    """Per-drop frontier of a policy's beams.

    Attributes:
        ssnr: ``(B,)`` the policy's SSNR.
        min_sinr: ``(B,)`` the policy's min-SINR (the SDP's gamma).
        frontier_ssnr: ``(B,)`` the SDP optimum at that gamma; NaN where the solver failed.
    """

    ssnr: np.ndarray
    min_sinr: np.ndarray
    frontier_ssnr: np.ndarray

    @property
    def solved(self) -> np.ndarray:
        """``(B,)`` bool: drops with a frontier value."""
        return np.isfinite(self.frontier_ssnr)

    @property
    def efficiency(self) -> float:
        """Mean SSNR / mean frontier SSNR over the solved drops (NaN if none)."""
        ok = self.solved
        if not ok.any():
            return float("nan")
        return float(self.ssnr[ok].mean() / self.frontier_ssnr[ok].mean())


def frontier_ssnr(csi: np.ndarray, gamma: np.ndarray, system: System, solver: str = "DUAL",
                  progress: bool = False) -> np.ndarray:
    """The joint SDP's optimum SSNR at SINR target ``gamma[i]`` on drop ``i``.

    Args:
        csi: ``(B, L, 2, M, Q)`` float32, the true channel of each drop.
        gamma: ``(B,)`` linear SINR targets (a policy's min-SINR on each drop).
        system: the system.
        solver: ``"DUAL"`` (default: :class:`policies.convex.dual.DualJointSDP`, the fast
            solver of ``cvx``), ``"IPM"`` (:class:`policies.convex.ipm.IPMJointSDP`) or a cvxpy
            SDP solver for :class:`policies.convex.sdp.JointSDPSolver`.
        progress: tqdm bar over the drops.

    Returns:
        ``(B,)`` SSNR; the SSNR bound where ``gamma <= 0`` (no SINR constraint binds), NaN where
        the solver failed. On Ctrl-C the drops not yet solved stay NaN.
    """
    from tqdm.auto import tqdm

    from policies.convex.policies import FAST_SDP
    from policies.convex.sdp import JointSDPSolver

    csi = np.asarray(csi)
    hc = csi[:, :, 0].astype(np.float64) + 1j * csi[:, :, 1]            # (B, L, M, Q)
    fast = FAST_SDP.get(solver.upper())
    sdp = fast(system) if fast else JointSDPSolver(system, solver)
    out = np.full(len(csi), np.nan)
    try:
        for i in tqdm(range(len(csi)), desc="frontier", disable=not progress, leave=False):
            out[i] = system.ssnr_bound if gamma[i] <= 0 else \
                sdp.solve(hc[i], float(gamma[i])).ssnr_opt
    except KeyboardInterrupt:
        pass
    return out


def frontier(csi: np.ndarray, beams: np.ndarray, system: System, solver: str = "DUAL",
             progress: bool = False) -> Frontier:
    """The frontier of ``beams`` on every drop (:func:`frontier_ssnr` at their min-SINR).

    Args:
        csi, beams: ``(B, L, 2, M, Q)`` float32 (beams within budget, e.g. a policy's output).
        system, solver, progress: as :func:`frontier_ssnr`.
    """
    g1, g2 = metrics.g1_g2(np.asarray(csi), beams, system)
    return Frontier(np.asarray(g1, float), np.asarray(g2, float),
                    frontier_ssnr(csi, g2, system, solver, progress))
