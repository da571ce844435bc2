"""Time the ``cvx`` policy per drop against a plain cvxpy implementation of the same maths.

    python runners/bench_cvx.py                  # N = 2, 5, 8; 3 drops each
    python runners/bench_cvx.py --users 5 --drops 5

The plain version is what a first implementation looks like: the NS+OPT bisection builds a fresh
cvxpy feasibility SOCP per midpoint (no Parameters) and trusts SCS's status at its default
tolerances, then a fresh SDP over the full ``LM x LM`` matrices, also SCS defaults. The fast one
is ``policies.make("cvx", system)`` (DPP Parameters, per-AP subspace reduction, power-scale
feasibility, Clarabel). Both run one drop at a time in this process on the same seeded ``pos1``
drops; the table shows median seconds per drop, their ratio and how far apart the results are.
Writes ``runs/<date>-bench-cvx/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import cvxpy as cp
import numpy as np

import policies
import scenarios
from cfisac_env import metrics
from cfisac_env.layout import to_complex, to_layout
from cfisac_env.runs import run_dir
from cfisac_env.system import System
from policies.classic import ns_sensing_all
from policies.cvx_sdp import extract_beams
from policies.cvx_socp import bisection_midpoints


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--users", type=int, action="append", default=None,
                   help="N to bench (repeatable; default 2, 5, 8)")
    p.add_argument("--drops", type=int, default=3, help="drops per N")
    p.add_argument("--rho", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="run folder")
    return p.parse_args(argv)


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


def bench_users(users: int, drops: int, rho: float, seed: int) -> dict[str, object]:
    """Median seconds per drop of fast vs plain at ``users`` UEs, and their result gaps."""
    sc = scenarios.load("pos1", users=users)
    system = sc.system
    x, _, _ = sc.drops(np.random.default_rng(seed), drops + 1)
    fast = policies.make("cvx", system, rho=rho)
    t0 = time.perf_counter()
    fast.decide(x[drops:])                    # one-off DPP compilation, on an extra drop
    compile_s = time.perf_counter() - t0
    print(f"  N={users}: first call (compiles the cvxpy problems) {compile_s:.2f} s", flush=True)
    fast_s, plain_s, gaps = [], [], []
    for i in range(drops):
        dec = fast.decide(x[i:i + 1])
        fast_s.append(dec.seconds)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            beams, gamma = plain_cvx(to_complex(x[i].astype(float)), system, rho)
        plain_s.append(time.perf_counter() - t0)
        wp, _ = metrics.project_power(to_layout(beams), system)
        f_ssnr, f_sinr = metrics.g1_g2(x[i], dec.beams[0], system)
        p_ssnr, p_sinr = metrics.g1_g2(x[i], wp, system)
        gaps.append({"gamma_fast": float(dec.info["gamma_high"][0]), "gamma_plain": gamma,
                     "ssnr_rel": float(f_ssnr / p_ssnr - 1), "sinr_rel": float(f_sinr / p_sinr - 1),
                     "fallback": bool(dec.info["fallback"][0])})
        print(f"  N={users} drop {i}: fast {fast_s[-1]:.3f} s, plain {plain_s[-1]:.2f} s, "
              f"gamma {gaps[-1]['gamma_fast']:.4f} vs {gamma:.4f}", flush=True)
    return {"users": users, "drops": drops, "first_call_s": compile_s, "fast_s": fast_s,
            "plain_s": plain_s, "gaps": gaps,
            "median_fast_s": float(np.median(fast_s)),
            "median_plain_s": float(np.median(plain_s)),
            "median_ratio": float(np.median(np.array(plain_s) / np.array(fast_s)))}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    users = args.users or [2, 5, 8]
    if args.drops < 1 or min(users) < 1 or not 0 < args.rho <= 1:
        print("error: --drops and --users must be >= 1 and --rho in (0, 1]", file=sys.stderr)
        return 2
    rows = [bench_users(n, args.drops, args.rho, args.seed) for n in users]
    print(f"\n{'N':>3} {'fast s':>8} {'plain s':>8} {'ratio':>7} {'max|dgamma|':>11} "
          f"{'max|dSSNR|':>10} {'max|dSINR|':>10}")
    for r in rows:
        g = r["gaps"]
        print(f"{r['users']:>3} {r['median_fast_s']:>8.3f} {r['median_plain_s']:>8.2f} "
              f"{r['median_ratio']:>6.1f}x "
              f"{max(abs(e['gamma_fast'] - e['gamma_plain']) for e in g):>11.4f} "
              f"{max(abs(e['ssnr_rel']) for e in g):>10.2%} "
              f"{max(abs(e['sinr_rel']) for e in g):>10.2%}")
    print("(median over drops of plain/fast time per drop; d* = fast vs plain results; the fast "
          "policy's one-off compilation is timed apart, on an extra drop)")
    out = run_dir("bench-cvx", args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps({"config": vars(args) | {"out": str(out)},
                                                "rows": rows}, indent=2))
    print(f"wrote {out}/bench.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
