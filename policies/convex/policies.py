"""Convex-optimisation policies of Demirhan & Alkhateeb: NS+OPT, CB+OPT and the joint SDP (``cvx``).

All three are central (they need every AP's CSI) and solve one drop at a time:

- ``ns-opt`` (:class:`NSOpt`): NS sensing beam (power ``(1-rho) P_l``) + max-min SINR
  communication beams (power ``rho P_l``) by the reference bisection (:mod:`policies.convex.socp`).
- ``cb-opt`` (:class:`CBOpt`): the same with the conventional sensing beam.
- ``cvx`` (:class:`JointSDP`): ``gamma_high`` of NS+OPT at ``rho``, then the joint SDP at full
  budget (:mod:`policies.convex.sdp`); the seed paper's "CVX" benchmark at rho = 0.5.

Speed (``runners/bench_cvx.py``): ``gamma_high`` needs only on which side of ``gamma*`` each
midpoint of the reference bisection lies. SINR balancing (:mod:`policies.convex.balance`: a
virtual uplink, its MMSE receivers as downlink beams, AP prices moved by each AP's budget share)
brackets ``gamma*`` between two certified bounds in a few milliseconds, usually tightly enough to
decide every midpoint; a midpoint it leaves undecided is solved by the power-scale problem
(:class:`policies.convex.socp.FastMaxMinSINR`: its dual, :mod:`policies.convex.power_scale`, or
Clarabel), and the reference bisection is replayed on what is known, giving the same
``gamma_high``. The joint SDP is solved in its ``N + L``-variable dual
(:mod:`policies.convex.dual`; the primal-dual :mod:`policies.convex.ipm` stays an option). The
cvxpy formulations stay available (``bisection="reference"``, ``solver="SCS"`` /
``"CLARABEL"``). A policy object remembers its previous decision: the next drop's balancing
starts from its prices and powers and its root finding from its ``gamma*`` (a warm start; on a
moving road consecutive drops are close), which changes the work per drop, never
``gamma_high``.

Failures are outcomes: a drop without a feasible ``gamma`` or whose solve fails or whose beams fail
the metric check gets the NS+RZF beams at the same ``rho`` and is flagged; so does a drop that
takes longer than the ``timeout_s`` option (status ``"timeout"``). ``last_info`` of every call
holds, per drop: ``gamma_high (B,)`` float (NaN where none), ``fallback (B,)`` bool,
``timeout (B,)`` bool, ``status`` (list of B strings), ``solves (B,)`` int (SOCP solves of the
bisection), ``iterations (B,)`` int (SINR-balancing iterations) and, for ``cvx``, ``ssnr_opt
(B,)`` (the SDP optimum). Ctrl-C during a solve raises ``KeyboardInterrupt`` (a solver that
catches SIGINT itself, as SCS does, is checked), never a silent fallback.
"""

from __future__ import annotations

import time
from typing import Any

import cvxpy as cp
import numpy as np

from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_complex, to_layout
from cfisac_env.physics.system import System
from policies.base import Policy
from policies.classic import cb_sensing_all, check_rho, ns_rzf_complex, ns_sensing_all
from policies.convex.blas import single_blas_thread
from policies.convex.dual import DualJointSDP
from policies.convex.ipm import IPMJointSDP
from policies.convex.polish import polish_powers
from policies.convex.sdp import JointSDPSolver
from policies.convex.socp import FastMaxMinSINR, MaxMinSINR

#: Relative SINR shortfall of the joint design's extracted beams that is still accepted.
JSC_CHECK_RTOL = 1e-3
#: The joint-SDP solvers of this package (the others go through cvxpy).
FAST_SDP = {"DUAL": DualJointSDP, "IPM": IPMJointSDP}
#: Errors a solve may raise on a valid input; they turn into a flagged fallback.
SOLVE_ERRORS = (cp.error.SolverError, np.linalg.LinAlgError, ArithmeticError, ValueError)


def _float_layout(hc: np.ndarray) -> np.ndarray:
    """Complex ``(..., L, M, Q)`` -> float64 ``(..., L, 2, M, Q)``."""
    return to_layout(hc, dtype=None)


#: Values of the ``bisection`` option.
BISECTIONS = ("fast", "reference")


def _timeout_option(value: Any) -> float | None:
    if value is None:
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"timeout_s must be a number of seconds > 0, got {value!r}") from None
    if not t > 0 or not np.isfinite(t):
        raise ValueError(f"timeout_s must be a number of seconds > 0, got {value!r}")
    return t


class _ConvexPolicy(Policy):
    """Shared options (``rho``, ``solver``, ``bisection``, ``timeout_s``, ``warm_start``), input
    checks and the per-drop fallback loop."""

    default_solver = "CLARABEL"
    extra_solvers: tuple[str, ...] = ()
    heavy = True  # seconds per drop: runners score it on a common subset, in a process pool

    def __init__(self, system: System, **options: Any) -> None:
        self.rho = check_rho(options.pop("rho", 0.5))
        if self.rho <= 0.0:
            raise ValueError("rho must be > 0: the optimised policies need communication power")
        self.solver = str(options.pop("solver", self.default_solver)).upper()
        known = (*self.extra_solvers, *cp.installed_solvers())
        if self.solver not in known:
            raise ValueError(f"solver {self.solver!r} is not installed; installed: "
                             f"{', '.join(known)}")
        self.bisection = str(options.pop("bisection", "fast")).lower()
        if self.bisection not in BISECTIONS:
            raise ValueError(f"bisection must be one of {BISECTIONS}, got {self.bisection!r}")
        self.timeout_s = _timeout_option(options.pop("timeout_s", None))
        self.warm_start = bool(options.pop("warm_start", True))
        self._warm: tuple[float, float | None] | None = None   # from the previous decision
        super().__init__(system, **options)


    def _bisect_drop(self, hc: np.ndarray, sense: np.ndarray, need_beams: bool,
                     deadline: float | None):
        """``gamma_high`` (and beams) of one drop with the configured bisection."""
        if self.bisection == "fast":
            res = self._fast.solve(hc, sense, need_beams=need_beams,
                                   warm=self._warm if self.warm_start else None,
                                   deadline=deadline)
            self._warm = self._fast.warm_state
            return res
        return self._bisect.solve(hc, sense, deadline=deadline)

    def _check(self, csi: np.ndarray) -> np.ndarray:
        """``csi`` as a float64 ``(B, L, 2, M, Q)`` batch, else a ``ValueError`` naming the
        expected and the received shapes."""
        x = np.asarray(csi, dtype=float)
        L, _, M, Q = self.system.csi_shape
        if x.ndim != 5 or x.shape[1:] != self.system.csi_shape:
            hint = ("; for one drop use act(csi) or pass csi[None]"
                    if x.shape == self.system.csi_shape else "")
            who = self.name if self.name != "policy" else type(self).__name__
            raise ValueError(f"policy {who!r}: csi must be a batch of shape (B, L, 2, M, Q) = "
                             f"(B, {L}, 2, {M}, {Q}) (L = {L} APs, M = {M} antennas, "
                             f"Q = N + 1 = {Q} beams), got {x.shape}{hint}")
        if not np.all(np.isfinite(x)):
            raise ValueError("csi contains NaN or inf; expected finite floats (B, L, 2, M, Q)")
        return x

    def _solve_drop(self, hc: np.ndarray, deadline: float | None
                    ) -> tuple[np.ndarray | None, dict[str, Any]]:
        """Beams ``(L, M, Q)`` complex for one drop (None: fall back) and its info entries;
        raises TimeoutError past ``deadline`` (a ``time.perf_counter()`` value)."""
        raise NotImplementedError

    def act_batch(self, csi: np.ndarray) -> np.ndarray:
        hc = to_complex(self._check(csi))                              # (B, L, M, Q)
        out, rows = np.zeros_like(hc), []
        for i in range(hc.shape[0]):
            start = time.perf_counter()
            deadline = None if self.timeout_s is None else start + self.timeout_s
            timed_out = False
            try:
                with single_blas_thread():
                    beams, row = self._solve_drop(hc[i], deadline)
                timed_out = deadline is not None and time.perf_counter() > deadline
            except TimeoutError:
                beams, row, timed_out = None, {}, True
            except SOLVE_ERRORS as e:
                beams, row = None, {"status": f"error: {type(e).__name__}: {e}"}
            if timed_out:
                beams = None
                row["status"] = "timeout"
                self._warm = None                        # no trustworthy warm start from it
            row["timeout"] = timed_out
            row["fallback"] = beams is None
            if beams is None:
                beams = ns_rzf_complex(hc[i:i + 1], self.system, self.rho)[0]
            out[i] = beams
            rows.append(row)
        self.last_info = {
            "gamma_high": np.array([r.get("gamma_high", np.nan) for r in rows]),
            "fallback": np.array([r["fallback"] for r in rows], dtype=bool),
            "timeout": np.array([r["timeout"] for r in rows], dtype=bool),
            "status": [r.get("status", "") for r in rows],
            "solves": np.array([r.get("solves", 0) for r in rows], dtype=int),
            "iterations": np.array([r.get("iterations", 0) for r in rows], dtype=int),
            **self._extra_info(rows),
        }
        w = _float_layout(out)
        return metrics.project_power(w, self.system)[0].astype(np.float32)

    def _extra_info(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {}


class _OptPolicy(_ConvexPolicy):
    """Fixed sensing beam + max-min SINR communication beams (bisection)."""

    def __init__(self, system: System, **options: Any) -> None:
        super().__init__(system, **options)
        self._bisect = MaxMinSINR(system, self.rho, self.solver)
        self._fast = FastMaxMinSINR(system, self.rho)

    def _sensing(self, hc: np.ndarray) -> np.ndarray:
        """Sensing beams ``(L, M)`` complex for one drop ``(L, M, Q)``."""
        raise NotImplementedError

    def _solve_drop(self, hc: np.ndarray, deadline: float | None
                    ) -> tuple[np.ndarray | None, dict[str, Any]]:
        sense = self._sensing(hc)
        res = self._bisect_drop(hc, sense, True, deadline)
        row = {"gamma_high": res.gamma_high, "status": res.status, "solves": res.solves,
               "iterations": res.iterations}
        if res.comm is None:
            return None, row
        return np.concatenate([res.comm, sense[..., None]], axis=-1), row


class NSOpt(_OptPolicy):
    """NS+OPT: NS sensing beam + max-min SINR communication beams (central).

    Options: ``rho`` (default 0.5), ``bisection`` (``"fast"``, default, or ``"reference"``: the
    cvxpy bisection over every midpoint), ``solver`` of the reference bisection's SOCPs (default
    ``"CLARABEL"``), ``timeout_s`` (per drop, default none), ``warm_start`` (default True).
    """

    def _sensing(self, hc: np.ndarray) -> np.ndarray:
        return ns_sensing_all(hc[None], self.system, self.rho)[0]


class CBOpt(_OptPolicy):
    """CB+OPT: conventional sensing beam + max-min SINR communication beams (central).

    Options: as :class:`NSOpt`.
    """

    def _sensing(self, hc: np.ndarray) -> np.ndarray:
        return cb_sensing_all(hc[None], self.system, self.rho)[0]


class JointSDP(_ConvexPolicy):
    """The joint design ``cvx`` (JSC+Q1): ``gamma_high`` of NS+OPT at ``rho``, then the SDP.

    Options:
        rho: communication share used by the NS+OPT bisection that sets ``gamma_high``
            (default 0.5); the SDP itself spends each AP's whole budget.
        solver: solver of the SDP: ``"DUAL"`` (default: :mod:`policies.convex.dual`, the
            ``N + L``-variable dual in ``O(R^3)`` a step), ``"IPM"``
            (:mod:`policies.convex.ipm`, primal-dual on all ``N + 1`` blocks: ``O(N R^3)`` a
            step), or through cvxpy ``"SCS"`` (tolerances 1e-6) or ``"CLARABEL"`` (interior
            point; its dense PSD scaling blocks grow as (L Q)^4).
        bisection: ``"fast"`` (default, :class:`policies.convex.socp.FastMaxMinSINR`) or
            ``"reference"`` (the cvxpy bisection over every midpoint); the same ``gamma_high``.
        bisection_solver: solver of the reference bisection's SOCPs (default ``"CLARABEL"``).
        solver_options: dict overriding :data:`policies.convex.sdp.SOLVER_OPTIONS` (cvxpy
            solvers) or the DUAL / IPM solvers' ``tol`` / ``max_iters``.
        timeout_s: per-drop time limit in seconds (default none); a drop past it gets the
            NS+RZF beams, flagged ``timeout``.
        warm_start: start each drop's root finding from the previous decision's ``gamma*``
            (default True; only the number of solves changes).

    The extracted beams keep the SDP's directions at the powers of one LP
    (:mod:`policies.convex.polish`: the largest SSNR that meets ``gamma_high`` and every budget
    along them). A drop falls back to NS+RZF when no ``gamma`` is feasible, the SDP fails, or
    the beams (after power projection) miss ``gamma_high`` by more than :data:`JSC_CHECK_RTOL`; with
    the ``"DUAL"`` solver such a drop is first solved again by the IPM (its status then says
    both).
    """

    default_solver = "DUAL"
    extra_solvers = tuple(FAST_SDP)

    def __init__(self, system: System, **options: Any) -> None:
        bisection_solver = str(options.pop("bisection_solver", "CLARABEL")).upper()
        solver_options = options.pop("solver_options", None)
        super().__init__(system, **options)
        self._bisect = MaxMinSINR(system, self.rho, bisection_solver)
        self._fast = FastMaxMinSINR(system, self.rho)
        if self.solver in FAST_SDP:
            self._sdp = FAST_SDP[self.solver](system, **(solver_options or {}))
        else:
            self._sdp = JointSDPSolver(system, self.solver, solver_options)
        # a drop the dual method does not solve within its step limit is solved again by the
        # primal-dual IPM before it counts as failed
        self._retry = IPMJointSDP(system) if self.solver == "DUAL" else None

    def _solve_drop(self, hc: np.ndarray, deadline: float | None
                    ) -> tuple[np.ndarray | None, dict[str, Any]]:
        sense = ns_sensing_all(hc[None], self.system, self.rho)[0]
        res = self._bisect_drop(hc, sense, False, deadline)
        row: dict[str, Any] = {"gamma_high": res.gamma_high, "status": res.status,
                               "ssnr_opt": np.nan, "solves": res.solves,
                               "iterations": res.iterations}
        if not np.isfinite(res.gamma_high):
            return None, row
        beams, status, ssnr_opt = self._sdp_beams(self._sdp, hc, res.gamma_high, deadline)
        if beams is None and self._retry is not None:
            beams, again, ssnr_opt = self._sdp_beams(self._retry, hc, res.gamma_high, deadline)
            status = f"{status}; IPM: {again}"
        row.update(status=status, ssnr_opt=ssnr_opt)
        return beams, row

    def _sdp_beams(self, sdp_solver, hc: np.ndarray, gamma: float, deadline: float | None
                   ) -> tuple[np.ndarray | None, str, float]:
        """``(beams, status, SSNR optimum)`` of one SDP solve, the beams' powers polished
        (:func:`policies.convex.polish.polish_powers`: the best powers along the SDP's
        directions that meet ``gamma``); beams None when the solve fails or they
        (power-projected) miss ``gamma`` by more than :data:`JSC_CHECK_RTOL`."""
        sdp = sdp_solver.solve(hc, gamma, deadline=deadline)
        if sdp.beams is None:
            return None, sdp.status, sdp.ssnr_opt
        beams, status = polish_powers(hc, sdp.beams, gamma, self.system), sdp.status
        if beams is None:
            beams, status = sdp.beams, f"{status}; power polish infeasible"
        w, _ = metrics.project_power(_float_layout(beams), self.system)
        achieved = float(metrics.min_sinr(_float_layout(hc), w, self.system))
        if achieved < gamma * (1.0 - JSC_CHECK_RTOL):
            return None, f"{status}; beams reach SINR {achieved:.4g} < {gamma:.4g}", \
                sdp.ssnr_opt
        return beams, status, sdp.ssnr_opt

    def _extra_info(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"ssnr_opt": np.array([r.get("ssnr_opt", np.nan) for r in rows])}
