"""The joint sensing-communication SDP of Demirhan & Alkhateeb ("JSC+Q1", the seed's CVX).

Over Hermitian PSD ``F_1 .. F_N`` (communication) and ``F_{N+1}`` (sensing covariance), each
``LM x LM``, with ``S = sum_q F_q``:

    maximise    sigma_s^2 * sum_l a_l^H S_ll a_l
    subject to  h_n^H F_n h_n / gamma - sum_{q != n} h_n^H F_q h_n >= sigma_n^2   for all n,
                tr(S_ll) <= P_l                                                   for all l,

with ``gamma = gamma_high`` of NS+OPT. Beams are extracted as
``f_n = F_n h_n / sqrt(h_n^H F_n h_n)`` and the sensing beam as the principal eigenvector of
``S - sum_n f_n f_n^H`` times the square root of its eigenvalue.

Speed: the problem is solved in the per-AP subspace ``span{h_l1 .. h_lN, a_l}``
(:mod:`policies.convex.basis`; exact, ``LM = 32 -> L Q = 12`` rows at N = 5) and built once with
cvxpy Parameters (DPP), so each drop only refills data. The solver is selectable: SCS with
tolerances 1e-6 or Clarabel (interior point; same results, slower from N = 5 up). The ``cvx``
policy's default is faster still: :mod:`policies.convex.dual` solves the same problem without
cvxpy, in its ``N + L``-variable dual (:mod:`policies.convex.ipm`, a primal-dual method on all
blocks, is the other option).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np

from cfisac_env.physics.system import System
from policies.convex.basis import expand, reduce, span_basis

#: Solver settings: accurate enough for the 1 % accuracy bar against the reference.
SOLVER_OPTIONS: dict[str, dict[str, Any]] = {
    "CLARABEL": {"tol_feas": 1e-6, "tol_gap_abs": 1e-6, "tol_gap_rel": 1e-6},
    "SCS": {"eps_abs": 1e-6, "eps_rel": 1e-6, "max_iters": 100_000},
}


#: SCS's status value for "interrupted by SIGINT".
_SCS_SIGINT = -5


def solve_problem(problem: cp.Problem, solver: str, options: dict[str, Any] | None = None,
                  deadline: float | None = None) -> None:
    """``problem.solve(solver=solver, **options)`` that neither swallows Ctrl-C nor runs
    past ``deadline`` (a ``time.perf_counter()`` value; TimeoutError).

    SCS installs its own SIGINT handler during a solve and returns "interrupted", which cvxpy
    reports as a solver error; here that status raises KeyboardInterrupt instead. The remaining
    time is passed to SCS (``time_limit_secs``) and Clarabel (``time_limit``); a solve that ends
    past the deadline raises TimeoutError.
    """
    opts = dict(options or {})
    if deadline is not None:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise TimeoutError("past the time limit before the solve")
        if solver == "SCS":
            opts["time_limit_secs"] = left
        elif solver == "CLARABEL":
            opts["time_limit"] = left
    if solver == "SCS":
        data, chain, inverse = problem.get_problem_data(solver)
        raw = chain.solver.solve_via_data(data, False, False, opts)
        info = raw.get("info", {}) if isinstance(raw, dict) else {}
        if info.get("status_val", info.get("statusVal")) == _SCS_SIGINT:
            raise KeyboardInterrupt("SCS was interrupted (SIGINT)")
        problem.unpack_results(raw, chain, inverse)
    else:
        problem.solve(solver=solver, **opts)
    if deadline is not None and time.perf_counter() > deadline:
        raise TimeoutError("solve ended past the time limit")


@dataclass
class SDPResult:
    """One drop: complex beams ``(L, M, Q)`` (None on failure), the SDP optimum (SSNR, NaN on
    failure) and the solver status."""

    beams: np.ndarray | None
    ssnr_opt: float
    status: str


class JointSDPSolver:
    """The joint SDP for one system, built once (DPP) and re-solved per drop.

    Args:
        system: the system.
        solver: ``"SCS"`` (default) or ``"CLARABEL"`` (or another SDP-capable cvxpy solver).
        solver_options: overrides of :data:`SOLVER_OPTIONS` for that solver.
    """

    def __init__(self, system: System, solver: str = "SCS",
                 solver_options: dict[str, Any] | None = None) -> None:
        s = system
        self.system, self.solver = s, solver.upper()
        self.options = {**SOLVER_OPTIONS.get(self.solver, {}), **(solver_options or {})}
        self.r = min(s.M, s.Q)
        R = s.L * self.r
        # Parameters, all in reduced coordinates; conj() so sum(multiply(Pc, X)) = tr(P X).
        self._qc = [cp.Parameter((R, R), complex=True) for _ in range(s.N)]   # conj(h h^H)
        self._qg = [cp.Parameter((R, R), complex=True) for _ in range(s.N)]   # conj(h h^H)/gamma
        self._ac = cp.Parameter((R, R), complex=True)                         # conj(blkdiag a a^H)
        self._rhs = cp.Parameter(s.N, nonneg=True)                            # sigma_n^2, scaled
        self._f = [cp.Variable((R, R), hermitian=True) for _ in range(s.Q)]
        total = cp.sum(self._f) if s.Q > 1 else self._f[0]
        cons = [f >> 0 for f in self._f]
        for n in range(s.N):
            others = cp.sum([cp.real(cp.sum(cp.multiply(self._qc[n], self._f[q])))
                             for q in range(s.Q) if q != n])
            own = cp.real(cp.sum(cp.multiply(self._qg[n], self._f[n])))
            cons.append(own - others >= self._rhs[n])
        for l in range(s.L):
            block = slice(l * self.r, (l + 1) * self.r)
            cons.append(cp.real(cp.trace(total[block, block])) <= s.P[l])
        objective = s.sensing_gain / s.radar_noise * cp.real(cp.sum(cp.multiply(self._ac, total)))
        self._problem = cp.Problem(cp.Maximize(objective), cons)

    def solve(self, hc: np.ndarray, gamma: float, deadline: float | None = None) -> SDPResult:
        """Solve one drop.

        Args:
            hc: complex CSI ``(L, M, Q)``.
            gamma: the SINR target ``gamma_high`` (> 0).
            deadline: ``time.perf_counter()`` value past which TimeoutError is raised.

        Returns:
            :class:`SDPResult` with extracted beams ``(L, M, Q)`` (not yet power-projected).
        """
        s = self.system
        basis = span_basis(hc)                                 # (L, M, r)
        h = reduce(basis, hc[..., : s.N])                      # (R, N)
        # SINR row n is divided by ||h_n||^2 / gamma, so that every row is of order one and the
        # solver's tolerances mean the same at any SNR.
        scale = gamma / np.sum(np.abs(h) ** 2, axis=0)
        for n in range(s.N):
            q = np.conj(np.outer(h[:, n], h[:, n].conj())) * scale[n]
            self._qc[n].value = q
            self._qg[n].value = q / gamma
        self._rhs.value = s.ue_noise * scale
        a = basis.conj().transpose(0, 2, 1) @ hc[..., s.N:]   # (L, r, 1)
        self._ac.value = np.conj(sensing_cost(a[..., 0], self.r))
        try:
            with warnings.catch_warnings():   # "may be inaccurate": the caller verifies the beams
                warnings.simplefilter("ignore", UserWarning)
                solve_problem(self._problem, self.solver, self.options, deadline)
        except cp.error.SolverError as e:
            return SDPResult(None, np.nan, f"solver error: {e}")
        status = self._problem.status
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return SDPResult(None, np.nan, str(status))
        coords = extract_beams([f.value for f in self._f], h)  # (R, Q)
        return SDPResult(expand(basis, coords), float(self._problem.value), status)


def sensing_cost(a: np.ndarray, r: int) -> np.ndarray:
    """``blkdiag(a_l a_l^H) (L r, L r)`` complex from the reduced target steering ``a (L, r)``:
    ``tr(F blkdiag(...))`` is the per-AP beampattern toward the target summed over APs."""
    L = a.shape[0]
    out = np.zeros((L * r, L * r), dtype=complex)
    for l in range(L):
        out[l * r:(l + 1) * r, l * r:(l + 1) * r] = np.outer(a[l], a[l].conj())
    return out


def extract_beams(f: list[np.ndarray], h: np.ndarray) -> np.ndarray:
    """Rank-one beams from the SDP solution.

    Args:
        f: ``Q`` Hermitian ``(R, R)`` matrices ``F_1 .. F_N, F_{N+1}``.
        h: user channels ``(R, N)``.

    Returns:
        ``(R, Q)`` complex, as :func:`beams_from_parts`.
    """
    n = h.shape[1]
    fh = np.stack([f[k] @ h[:, k] for k in range(n)], axis=1)
    return beams_from_parts(fh, sum(f), h)


def beams_from_parts(fh: np.ndarray, total: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Rank-one beams from what they need of the SDP solution.

    Args:
        fh: ``(R, N)`` complex, the columns ``F_n h_n``.
        total: ``(R, R)`` Hermitian, ``S = sum_q F_q``.
        h: user channels ``(R, N)``.

    Returns:
        ``(R, Q)`` complex: ``f_n = F_n h_n / sqrt(h_n^H F_n h_n)`` and, last, the principal
        eigenvector of ``S - sum_n f_n f_n^H`` scaled by the root of its eigenvalue.
    """
    n = h.shape[1]
    beams = np.zeros((h.shape[0], n + 1), dtype=complex)
    gain = np.maximum(np.real(np.sum(h.conj() * fh, axis=0)), 1e-300)
    beams[:, :n] = fh / np.sqrt(gain)
    rest = total - beams[:, :n] @ beams[:, :n].conj().T
    vals, vecs = np.linalg.eigh(0.5 * (rest + rest.conj().T))
    beams[:, n] = vecs[:, -1] * np.sqrt(max(vals[-1], 0.0))
    return beams
