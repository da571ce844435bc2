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
(:mod:`policies.convex.basis`), and the returned beams are re-checked with
:mod:`cfisac_env.physics.metrics`.
The problem is built once with cvxpy Parameters (DPP), so a bisection step only refills data
(:class:`MaxMinSINR`, the reference). The policies' default, :class:`FastMaxMinSINR`, sends the same
SOCP to Clarabel directly (:class:`PowerScaleSOCP`) and finds the same ``gamma_high`` in about 5
solves instead of 13. Both solve for ``X / nu`` with ``nu`` the largest noise-plus-leak amplitude,
so the solver's tolerances mean the same at any SNR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import clarabel
import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_layout
from cfisac_env.physics.system import System
from policies.classic import rzf_beams
from policies.convex.balance import Bracket, balance, downlink_shares
from policies.convex.basis import expand, reduce, span_basis
from policies.convex.blas import single_blas_thread
from policies.convex.power_scale import DualPowerScale
from policies.convex.sdp import solve_problem

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
    complex (None when none), a status string, the number of SOCP solves and of SINR-balancing
    iterations (:mod:`policies.convex.balance`; 0 without a bracket)."""

    gamma_high: float
    comm: np.ndarray | None
    status: str
    solves: int
    iterations: int = 0


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

    def _power_scale(self, gamma: float, deadline: float | None = None) -> tuple[float, str]:
        """Solve the power-scale SOCP at ``gamma``; ``(t*, status)`` (``t* = inf`` on failure)."""
        self._gc.value = np.sqrt(1.0 + 1.0 / gamma) * self._gh.value
        try:
            solve_problem(self._problem, self.solver, None, deadline)
        except cp.error.SolverError as e:
            return np.inf, f"solver error: {e}"
        status = self._problem.status
        if status != cp.OPTIMAL or self._t.value is None:
            return np.inf, status
        return float(self._t.value), status

    def solve(self, hc: np.ndarray, sense: np.ndarray, deadline: float | None = None
              ) -> MaxMinResult:
        """Bisect one drop.

        Args:
            hc: complex CSI ``(L, M, Q)``.
            sense: the fixed sensing beams ``(L, M)`` complex.
            deadline: ``time.perf_counter()`` value past which TimeoutError is raised.

        Returns:
            :class:`MaxMinResult`; the beams are those of the last feasible midpoint, each
            verified with :func:`cfisac_env.physics.metrics.min_sinr` (SINR >= gamma) and within
            ``rho P_l``.
        """
        s = self.system
        basis = span_basis(hc[..., : s.N])                     # (L, M, r)
        self._gh.value = reduce(basis, hc[..., : s.N]).conj().T
        leak = np.einsum("lmn,lm->n", hc[..., : s.N].conj(), sense)
        noise = np.sqrt(np.abs(leak) ** 2 + s.ue_noise)
        # Solve for X / nu (t / nu): the same problem at unit noise scale, so the solver's
        # tolerances mean the same at any SNR.
        nu = float(np.max(noise))
        self._noise.value = noise / nu
        csi = to_layout(hc, dtype=None)            # float64 layout
        state = {"comm": None, "solves": 0, "status": "no feasible gamma"}

        def feasible(gamma: float) -> bool:
            t, status = self._power_scale(gamma, deadline)
            state["solves"] += 1
            if not t * nu <= 1.0:
                return False
            comm = expand(basis, self._x.value * nu)           # (L, M, N)
            beams = np.concatenate([comm, sense[..., None]], axis=-1)
            w = to_layout(beams, dtype=None)
            ok_sinr = metrics.min_sinr(csi, w, s) >= gamma * (1.0 - CHECK_RTOL)
            ok_power = np.all(np.sum(np.abs(comm) ** 2, axis=(-2, -1))
                              <= self.rho * s.P * (1.0 + CHECK_RTOL))
            if not (ok_sinr and ok_power):
                return False
            state["comm"], state["status"] = comm, "optimal"
            return True

        gamma_high = bisection_midpoints(feasible=feasible)
        return MaxMinResult(gamma_high, state["comm"], state["status"], state["solves"])


class PowerScaleSOCP:
    """The power-scale SOCP of this module, built once per system as real-valued Clarabel data.

    Variables ``v = [Re X, Im X, t]`` (``X``: ``R x N`` reduced coordinates, row-major). Per drop
    only the channel entries of the constraint matrix and the noise entries of ``b`` change, per
    ``gamma`` only the ``sqrt(1 + 1/gamma)`` entries, so the sparsity pattern is fixed and each
    solve refills a value array instead of re-canonicalising through cvxpy. The problem is scaled
    by ``nu = max_n sqrt(|h_n^H s|^2 + sigma_n^2)`` (``X = nu X'``) so that Clarabel's tolerances
    mean the same at any SNR.

    Args:
        system: the system (L, M, N, budgets).
        rho: communication share of each AP's budget.
        tol: Clarabel's feasibility / gap tolerances.
    """

    def __init__(self, system: System, rho: float, tol: float = 1e-9) -> None:
        s = system
        self.system, self.rho = s, rho
        self.r = min(s.M, s.N)
        R, N, L = s.L * self.r, s.N, s.L
        self.R = R
        nx = 2 * R * N + 1
        re = lambda i, k: i * N + k                       # noqa: E731  column of Re X[i, k]
        im = lambda i, k: R * N + i * N + k               # noqa: E731  column of Im X[i, k]
        rows, cols, kinds = [], [], []                    # kind: how each value is filled
        row = 0
        for n in range(N):
            # row + 0: c * Re g_nn; then (Re g_nk, Im g_nk) for k; then the noise row.
            for i in range(R):
                rows += [row, row]
                cols += [re(i, n), im(i, n)]
                kinds += [("c_re", n, i), ("c_im", n, i)]
            for k in range(N):
                for i in range(R):
                    rows += [row + 1 + 2 * k, row + 1 + 2 * k, row + 2 + 2 * k, row + 2 + 2 * k]
                    cols += [re(i, k), im(i, k), im(i, k), re(i, k)]
                    kinds += [("re", n, i), ("im", n, i), ("re", n, i), ("-im", n, i)]
            row += 2 + 2 * N
        budget = np.sqrt(rho * s.P)
        for l in range(L):
            rows.append(row)
            cols.append(nx - 1)
            kinds.append(("t", l, 0))
            k = 1
            for i in range(l * self.r, (l + 1) * self.r):
                for c in range(N):
                    for col in (re(i, c), im(i, c)):
                        rows.append(row + k)
                        cols.append(col)
                        kinds.append(("one", 0, 0))
                        k += 1
            row += 1 + 2 * self.r * N
        self.m, self.nx = row, nx
        rows_a, cols_a = np.array(rows), np.array(cols)
        # CSC order of the entries, so a value array can be handed to Clarabel directly.
        order = np.lexsort((rows_a, cols_a))
        self._rows, self._cols = rows_a[order], cols_a[order]
        kinds = [kinds[j] for j in order]
        kind_code = {"c_re": 0, "c_im": 1, "re": 2, "im": 3, "-im": 4, "t": 5, "one": 6}
        self._kind = np.array([kind_code[k[0]] for k in kinds])
        self._kn = np.array([k[1] for k in kinds])
        self._ki = np.array([k[2] for k in kinds])
        self._budget = budget
        self._noise_rows = np.array([n * (2 + 2 * N) + 1 + 2 * N for n in range(N)])
        self._gamma_entries = self._kind <= 1
        self._A_pattern = sp.csc_matrix((np.ones(len(self._rows)), (self._rows, self._cols)),
                                        shape=(row, nx))
        if not np.array_equal(self._A_pattern.indices, self._rows):
            raise RuntimeError("power-scale SOCP: constraint entries are not in CSC order")
        self._P = sp.csc_matrix((nx, nx))
        self._q = np.zeros(nx)
        self._q[-1] = 1.0
        self._cones = ([clarabel.SecondOrderConeT(2 + 2 * N)] * N
                       + [clarabel.SecondOrderConeT(1 + 2 * self.r * N)] * L)
        st = clarabel.DefaultSettings()
        st.verbose = False
        st.presolve_enable = False
        st.input_sparse_dropzeros = False
        # QDLDL, single-threaded: 3-7x faster than the default multithreaded faer on these KKT
        # systems from L = 4 APs up (0.34 s vs 2.5 s per solve at (L, N, M) = (4, 16, 16)).
        st.direct_solve_method = "qdldl"
        st.tol_feas = st.tol_gap_abs = st.tol_gap_rel = tol
        self._settings = st
        self._solver = None
        self._values = np.zeros(len(self._rows))
        self._b = np.zeros(row)

    def load(self, hc: np.ndarray, sense: np.ndarray) -> None:
        """Set one drop: complex CSI ``(L, M, Q)`` and fixed sensing beams ``(L, M)``."""
        s = self.system
        self.basis = span_basis(hc[..., : s.N])                   # (L, M, r)
        self.h = h = reduce(self.basis, hc[..., : s.N])           # (R, N): columns h~_n
        leak = np.einsum("lmn,lm->n", hc[..., : s.N].conj(), sense)
        self.nu2 = np.abs(leak) ** 2 + s.ue_noise                 # (N,) noise + leak, W
        noise = np.sqrt(self.nu2)
        self.nu = float(np.max(noise))
        self._b[:] = 0.0
        self._b[self._noise_rows] = noise / self.nu
        chan = self._kind <= 4                                    # entries that hold channels
        ki, kn = np.where(chan, self._ki, 0), np.where(chan, self._kn, 0)
        hr, hi = h.real[ki, kn], h.imag[ki, kn]
        v = np.select([self._kind == 2, self._kind == 3, self._kind == 4, self._kind == 6],
                      [-hr, -hi, hi, -np.ones_like(hr)], 0.0)
        t_rows = self._kind == 5
        v[t_rows] = -self._budget[self._kn[t_rows]]
        self._values = v
        self._h_re_c, self._h_im_c = -hr[self._gamma_entries], -hi[self._gamma_entries]
        self._csi = to_layout(hc, dtype=None)
        self._sense = sense

    #: every solve is a tight one (the final beams need no second solve)
    tight = True

    def solve(self, gamma: float, tight: bool = True, deadline: float | None = None
              ) -> tuple[float, np.ndarray | None, str]:
        """``(t*, X, status)`` at ``gamma`` for the loaded drop: ``X`` in reduced coordinates
        ``(R, N)`` complex (None on failure, when ``t* = inf``). Every solve is tight; the
        caller checks ``deadline`` between solves."""
        c = np.sqrt(1.0 + 1.0 / gamma)
        g = self._gamma_entries
        kind = self._kind[g]
        self._values[g] = c * np.where(kind == 0, self._h_re_c, self._h_im_c)
        if self._solver is None:
            A = sp.csc_matrix((self._values.copy(), self._A_pattern.indices,
                               self._A_pattern.indptr), shape=self._A_pattern.shape)
            self._solver = clarabel.DefaultSolver(self._P, self._q, A, self._b,
                                                        self._cones, self._settings)
        else:
            self._solver.update(A=self._values, b=self._b)
        sol = self._solver.solve()
        status = str(sol.status)
        if status not in ("Solved", "SolverStatus.Solved"):
            return np.inf, None, status
        v = np.asarray(sol.x)
        R, N = self.R, self.system.N
        X = (v[: R * N] + 1j * v[R * N: 2 * R * N]).reshape(R, N) * self.nu
        return float(v[-1]) * self.nu, X, "optimal"

    def verified(self, gamma: float, X: np.ndarray) -> np.ndarray | None:
        """Communication beams ``(L, M, N)`` of ``X`` when they meet ``gamma`` (metric check)
        within ``rho P_l``, else None."""
        s = self.system
        comm = expand(self.basis, X)
        beams = np.concatenate([comm, self._sense[..., None]], axis=-1)
        w = to_layout(beams, dtype=None)
        ok_sinr = metrics.min_sinr(self._csi, w, s) >= gamma * (1.0 - CHECK_RTOL)
        ok_power = np.all(np.sum(np.abs(comm) ** 2, axis=(-2, -1))
                          <= self.rho * s.P * (1.0 + CHECK_RTOL))
        return comm if ok_sinr and ok_power else None


def reference_gamma(decide, low: float = GAMMA_LOW, high: float = GAMMA_HIGH,
                    tol: float = GAMMA_TOL, known_lo: float = -np.inf,
                    known_hi: float = np.inf) -> tuple[float, float, float]:
    """Replay the reference bisection with what is known about ``gamma*``.

    A midpoint ``<= known_lo`` (known feasible) or ``>= known_hi`` (known infeasible) is decided
    without a solve; any other one is passed to ``decide(mid) -> bool``, and the answer narrows
    the known interval. Returns ``(gamma_high, known_lo, known_hi)``; ``gamma_high`` is NaN when
    no midpoint was feasible, as in :func:`bisection_midpoints`.
    """
    best = np.nan
    while high - low > tol:
        mid = 0.5 * (low + high)
        if mid <= known_lo:
            ok = True
        elif mid >= known_hi:
            ok = False
        else:
            ok = decide(mid)
            if ok:
                known_lo = mid
            else:
                known_hi = mid
        if ok:
            low, best = mid, mid
        else:
            high = mid
    return best, known_lo, known_hi


def undecided_midpoint(known_lo: float, known_hi: float) -> float | None:
    """The first reference midpoint that ``(known_lo, known_hi)`` does not decide (None: all are
    decided, so the reference's ``gamma_high`` follows without another solve)."""
    out: list[float] = []

    def ask(mid: float) -> bool:
        out.append(mid)
        raise StopIteration

    try:
        reference_gamma(ask, known_lo=known_lo, known_hi=known_hi)
    except StopIteration:
        return out[0]
    return None


def _decides_every_midpoint(lower: float, upper: float) -> bool:
    """Whether ``lower <= gamma* <= upper`` decides every reference midpoint (one equal to
    ``upper`` stays undecided)."""
    return undecided_midpoint(lower, float(np.nextafter(upper, np.inf))) is None


def _root_estimate(feas, infeas, fallback: float) -> float:
    """``gamma*`` interpolated between the bracket ends (``fallback`` without a bracket)."""
    if not (feas and infeas):
        return fallback
    (a, fa), (b, fb) = min(feas), max(infeas)
    x = b - (fb - 1.0) * (b - a) / (fb - fa) if fb != fa else a
    return float(1.0 / x) if x > 0 else fallback


#: Root-finding solves before the reference replay takes over (it decides what is left).
ROOT_SOLVES = 10
#: Values of :class:`FastMaxMinSINR`'s ``oracle`` option.
ORACLES = ("auto", "dual", "clarabel")
#: Beam coordinates ``R N`` (``R = L min(M, N)``) from which ``"auto"`` picks the dual oracle:
#: ``runners/bench_cvx.py --scale --previous`` measured Clarabel faster at (2, 8, 16) and (4, 8,
#: 16) (R N = 128, 256) and the dual faster from (4, 16, 16) (R N = 1024) up.
DUAL_FROM = 1024


class FastMaxMinSINR:
    """The reference bisection's ``gamma_high`` with few solves (:class:`PowerScaleSOCP`).

    ``t*(gamma)`` (the least power scale that meets ``gamma``) is increasing, so ``gamma`` is
    feasible iff ``gamma <= gamma*`` where ``t*(gamma*) = 1``. Each solve returns ``t*`` itself,
    not only a yes/no, and ``1/t*^2`` is nearly linear in ``1/gamma``, so ``gamma*`` is found by
    secant steps in those coordinates (from the RZF beams' min-SINR, or from the previous drop's
    root and slope: a warm start), each aimed to also decide the next undecided midpoint, until
    no midpoint of the reference bisection lies between the largest verified-feasible and the
    smallest infeasible ``gamma``; the bisection is then replayed (:func:`reference_gamma`) and
    gives the same ``gamma_high``. A midpoint left undecided is solved explicitly, as the
    reference does. About 5 solves per drop instead of 13.

    Args:
        system, rho: as :class:`MaxMinSINR`.
        tol: Clarabel tolerances.
        oracle: what solves the power-scale problem: ``"dual"``
            (:class:`policies.convex.power_scale.DualPowerScale`: its SDP dual in ``O(R^3)`` a
            step, certified bounds, Clarabel for a ``gamma`` it cannot decide), ``"clarabel"``
            (:class:`PowerScaleSOCP` only) or ``"auto"`` (default: the dual from
            :data:`DUAL_FROM` beam coordinates ``R N`` up, where it measured faster).
        bracket: first bracket ``gamma*`` by SINR balancing
            (:func:`policies.convex.balance.balance`: certified bounds in milliseconds); the
            oracle then solves only the midpoints the bracket leaves undecided (usually none),
            and the beams at ``gamma_high`` are the balancing's directions with the least powers
            that put every SINR at ``gamma_high`` (checked by the metric code; a tight solve if
            they fail). False: root finding alone, the beams of a tight solve at
            ``gamma_high`` (least power scale).
    """

    def __init__(self, system: System, rho: float, tol: float = 1e-9,
                 oracle: str = "auto", bracket: bool = True) -> None:
        self.system, self.rho = system, rho
        if oracle not in ORACLES:
            raise ValueError(f"oracle must be one of {ORACLES}, got {oracle!r}")
        if oracle == "auto":
            size = system.L * min(system.M, system.N) * system.N
            oracle = "dual" if size >= DUAL_FROM else "clarabel"
        socp = PowerScaleSOCP(system, rho, tol)
        self.socp = DualPowerScale(system, rho, socp) if oracle == "dual" else socp
        self.bracket = bool(bracket)
        self.budget = rho * np.asarray(system.P, dtype=float)
        self.iterations = 0                        # balancing iterations of the last drop

    def cold_guess(self, hc: np.ndarray, sense: np.ndarray) -> float:
        """A first ``gamma``: the min-SINR of the RZF communication beams at the same ``rho``
        with the same sensing beams (a feasible ``gamma``, usually within tens of percent of
        ``gamma*``), or a tenth of the single-user bound when that is tiny."""
        s = self.system
        h = hc[..., : s.N]
        comm = rzf_beams(hc[None], s, self.rho)[0]
        beams = np.concatenate([comm, sense[..., None]], axis=-1)
        rzf = float(metrics.min_sinr(to_layout(hc, dtype=None),
                                     to_layout(beams, dtype=None), s))
        amp = np.sum(np.linalg.norm(h, axis=1) * np.sqrt(self.rho * s.P)[:, None], axis=0)
        leak = np.einsum("lmn,lm->n", h.conj(), sense)
        bound = float(np.min(amp ** 2 / (np.abs(leak) ** 2 + s.ue_noise)))
        return rzf if rzf > GAMMA_LOW else 0.1 * bound

    @staticmethod
    def _next_gamma(feas: list, infeas: list, state: dict, g: float,
                    slope: float | None = None) -> float:
        """Next trial ``gamma``: root finding on ``y = 1/t*^2`` against ``x = 1/gamma``, about
        linear (``y = k (x - 1/gamma_inf)`` when the power grows like ``gamma / (1 - gamma /
        gamma_inf)``), aimed so that the trial also decides the first undecided midpoint."""
        pts = feas + infeas
        if not pts:
            return max(GAMMA_LOW, 0.3 * g)                 # the solve failed: try lower
        near = sorted(pts, key=lambda p: abs(p[1] - 1.0))
        x1, y1 = near[0]
        if len(pts) == 1 and slope and abs(1.0 - y1) < 0.1:
            # A warm start that landed close: the previous drop's slope is a good guess.
            est = x1 + (1.0 - y1) / slope
        elif len(pts) == 1:
            # Half the step of the line through the origin (no coupling): coupled drops have
            # a much lower gamma* than that line says.
            est = x1 + 0.5 * (x1 / y1 - x1)
        else:
            x2, y2 = near[1]
            est = x1 + (1.0 - y1) * (x2 - x1) / (y2 - y1) if y2 != y1 else x1 / y1
        bracket = (max(infeas)[0], min(feas)[0]) if feas and infeas else None
        if not est > 0:
            est = x1 / max(y1, 1e-300)
        err = abs(est - x1)
        mid = undecided_midpoint(state["lo"], state["hi"])
        xm = 1.0 / mid if mid is not None else np.inf
        close = err <= 0.02 * est                           # the estimate has converged a bit
        if close and abs(xm - est) <= 2.0 * err:
            est = xm                                        # a coin flip: decide it outright
        elif close and abs(xm - est) <= 6.0 * err:
            # Aim between the estimate and that midpoint, twice the estimate's error away: if
            # the estimate is that good, the answer lands on the midpoint's side and decides it.
            est = est + np.sign(xm - est) * 2.0 * err
        else:
            est = x1 + 1.05 * (est - x1)                    # 5 % past: land on the other side
        if bracket and not bracket[0] < est < bracket[1]:
            est = 0.5 * (bracket[0] + bracket[1])
        return float(np.clip(1.0 / est, GAMMA_LOW, GAMMA_HIGH)) if est > 0 else GAMMA_HIGH

    def solve(self, hc: np.ndarray, sense: np.ndarray, need_beams: bool = True,
              warm: tuple | None = None,
              deadline: float | None = None) -> MaxMinResult:
        """``gamma_high`` (and, with ``need_beams``, the beams there) for one drop.

        Args:
            hc: complex CSI ``(L, M, Q)``; sense: fixed sensing beams ``(L, M)``.
            need_beams: also return the verified communication beams at ``gamma_high``.
            warm: ``self.warm_state`` after the previous drop (a warm start; on a moving road
                consecutive drops are close): ``(ratio, slope, prices)``, the previous drop's
                ``gamma* /`` :meth:`cold_guess`, ``d(1/t*^2) / d(1/gamma)`` at its root (None
                when not measured) and its balancing's final ``(mu, q)`` (None without a
                bracket). The balancing starts from those prices and powers; a first trial
                solve is this drop's cold guess times that ratio, the second uses the slope
                when the first landed close. Default: cold start.
            deadline: ``time.perf_counter()`` value; past it a :class:`TimeoutError` is raised.

        Returns:
            :class:`MaxMinResult`; ``self.gamma_star`` holds the root estimate and
            ``self.warm_state`` what the next drop's warm start needs (None when unknown).
        """
        with single_blas_thread():
            return self._solve(hc, sense, need_beams, warm, deadline)

    def _solve(self, hc: np.ndarray, sense: np.ndarray, need_beams: bool,
               warm: tuple | None, deadline: float | None
               ) -> MaxMinResult:
        socp = self.socp
        socp.load(hc, sense)
        state = {"lo": -np.inf, "hi": np.inf, "solves": 0}
        feas: list[tuple[float, float]] = []                # (1/gamma, 1/t*^2), verified
        infeas: list[tuple[float, float]] = []              # the others
        comm_at: dict[float, np.ndarray] = {}

        def evaluate(g: float, tight: bool = False) -> bool:
            if deadline is not None and time.perf_counter() > deadline:
                raise TimeoutError("bisection past the time limit")
            t, X, _ = socp.solve(g, tight=tight, deadline=deadline)
            state["solves"] += 1
            comm = socp.verified(g, X) if t <= 1.0 and X is not None else None
            if comm is not None:
                state["lo"] = max(state["lo"], g)
                comm_at[g] = comm
            else:
                state["hi"] = min(state["hi"], g)
            if np.isfinite(t) and t > 0:
                (feas if comm is not None else infeas).append((1.0 / g, 1.0 / t ** 2))
            return comm is not None

        cold = self.cold_guess(hc, sense)
        ratio, slope, prices = warm if warm else (1.0, None, None)
        g = float(np.clip(cold * ratio, GAMMA_LOW, GAMMA_HIGH))
        bracket = self._balance(socp, prices, deadline, state, comm_at) if self.bracket else None
        if bracket is not None:
            mid = undecided_midpoint(state["lo"], state["hi"])
            g = mid if mid is not None else g
        while state["solves"] < ROOT_SOLVES and \
                undecided_midpoint(state["lo"], state["hi"]) is not None:
            ok = evaluate(g)
            if (ok and g >= GAMMA_HIGH) or (not ok and g <= GAMMA_LOW):
                continue                                    # the replay decides every midpoint
            g = self._next_gamma(feas, infeas, state, g, slope)
        gamma_high, _, _ = reference_gamma(evaluate, known_lo=state["lo"], known_hi=state["hi"])
        self.gamma_star = _root_estimate(feas, infeas, gamma_high)
        if bracket is not None and not (feas and infeas):
            self.gamma_star = 0.5 * (bracket.lower + bracket.upper)
        self.warm_state = None
        prices = (bracket.mu, bracket.q) if bracket is not None else None
        if np.isfinite(self.gamma_star) and cold > 0:
            slope = None
            if feas and infeas:
                (a, fa), (b, fb) = min(feas), max(infeas)
                slope = (fa - fb) / (a - b) if a != b and fa > fb else None
            if (feas and infeas) or bracket is not None:
                self.warm_state = (self.gamma_star / cold, slope, prices)
        comm, status = None, "no feasible gamma"
        if np.isfinite(gamma_high):
            status = "optimal"
            if need_beams:
                if bracket is not None and bracket.G is not None:
                    self._bracket_beams(socp, bracket, gamma_high, comm_at)
                elif not socp.tight:
                    comm_at.pop(gamma_high, None)          # a loose solve's: solve it tightly
                if gamma_high not in comm_at:
                    evaluate(gamma_high, tight=True)
                comm = comm_at.get(gamma_high)
                if comm is None:
                    status = "beams at gamma_high failed the check"
        return MaxMinResult(gamma_high, comm, status, state["solves"], self.iterations)

    def _bracket_beams(self, socp, bracket: Bracket, gamma: float, comm_at: dict) -> None:
        """The beams at ``gamma`` (at most the bracket's lower bound) along the balancing's
        directions, with the least powers that put every SINR at ``gamma``, into ``comm_at`` when
        they pass the metric check."""
        out = downlink_shares(socp.h, socp.nu2, bracket.G, gamma, self.budget)
        comm = socp.verified(gamma, bracket.G * np.sqrt(out[0])) if out is not None else None
        if comm is not None:
            comm_at[gamma] = comm

    def _balance(self, socp, prices, deadline: float | None, state: dict,
                 comm_at: dict) -> Bracket | None:
        """Bracket ``gamma*`` by SINR balancing and record it in ``state``: every ``gamma``
        above the upper bound is infeasible; the lower bound counts once its beams pass the
        metric check (they are kept like a solve's)."""
        self.iterations = 0
        bracket = balance(socp.h, socp.nu2, self.budget, _decides_every_midpoint, prices,
                          deadline)
        if bracket is None:
            return None
        self.iterations = bracket.iterations
        state["hi"] = min(state["hi"], float(np.nextafter(bracket.upper, np.inf)))
        if bracket.G is not None:
            self._bracket_beams(socp, bracket, bracket.lower, comm_at)
            if bracket.lower in comm_at:
                state["lo"] = max(state["lo"], bracket.lower)
        return bracket
