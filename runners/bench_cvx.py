"""Time the ``cvx`` policy per drop against a plain cvxpy implementation of the same maths.

    python runners/bench_cvx.py                          # N = 2, 5, 8; 5 drops each
    python runners/bench_cvx.py --users 5 --users 8 --drops 5
    python runners/bench_cvx.py --road track-highway     # warm vs cold starts on a moving road
    python runners/bench_cvx.py --scale --drops 3        # cell-free sizes (L, N, M) up to 16 APs

The plain version is what a first implementation looks like: the NS+OPT bisection builds a fresh
cvxpy feasibility SOCP per midpoint (no Parameters) and trusts SCS's status at its default
tolerances, then a fresh SDP over the full ``LM x LM`` matrices, also SCS defaults. It is kept as
it was, so the ratio stays honest. Beside it, on the same seeded drops and one drop at a time in
this process (interleaved, so both suffer the same machine load), the arms of
``policies.make("cvx", system, ...)`` that show what each step gives:

- ``dpp``: the earlier default (cvxpy DPP bisection over all 13 midpoints, subspace-reduced SDP
  through cvxpy and SCS): ``bisection="reference", solver="SCS"``;
- ``+root``: the same SDP, ``gamma_high`` by root finding on the power-scale SOCP sent to
  Clarabel directly, then the reference bisection replayed (``solver="SCS"``);
- ``+ipm``: the reference bisection, the SDP by the built-in interior-point method
  (``bisection="reference"``);
- ``fast``: both (the default ``cvx``).

Accuracy columns, for the default: ``|dgamma|`` = largest gap of ``gamma_high`` to the cvxpy
bisection with tight Clarabel tolerances (the reference's own answer, <= the bisection tolerance
0.01 expected), ``dSSNR`` / ``dSINR`` = largest relative gap of the beams' SSNR and min-SINR to a
tight-tolerance Clarabel solve of the same SDP (<= 0.1 % expected), and the largest AP power
over its budget. ``--road`` runs the default policy over the decision instants of a recorded
road (the tracking stress loop's drops) once with warm starts (each decision's balancing starts
from the previous one's prices and powers, its root finding from its ``gamma*``) and once
cold, and reports the median time per decision.
``--scale`` times the default ``cvx`` (and its two phases: ``gamma_high`` of NS+OPT, by SINR
balancing (:mod:`policies.convex.balance`) with power-scale solves only for the midpoints it
leaves undecided, and the joint SDP by the dual method of :mod:`policies.convex.dual`; with
``--previous`` also the previous phases, root finding on the power-scale problem alone (its
dual, Clarabel for what the dual cannot decide, Clarabel alone below ``R N = 1024``) and the
primal-dual IPM, on the same drops, with their answers compared) on ``pos2``-like systems
with APs every 50 m along the road and UEs and target spread over ``[0, 50 L]`` m, at each
``--size L,N,M`` (default: the cell-free sizes of :data:`SCALE_SIZES`).
Writes ``runs/<date>-bench-cvx/bench.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from typing import Any

import numpy as np

import policies
from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_complex, to_layout
from cfisac_env.runs import run_dir
from policies.convex.plain import plain_cvx
from runners import _cli

#: The arms timed beside the plain implementation: name -> cvx options.
ARMS: dict[str, dict[str, Any]] = {
    "dpp": {"bisection": "reference", "solver": "SCS"},
    "+root": {"solver": "SCS"},
    "+ipm": {"bisection": "reference"},
    "fast": {},
}
#: System sizes (L, N, M) of ``--scale``.
SCALE_SIZES = ((2, 8, 16), (4, 8, 16), (4, 16, 16), (8, 16, 16), (8, 32, 16), (16, 32, 8))
#: Tight Clarabel settings of the accuracy reference.
TIGHT = {"tol_feas": 1e-10, "tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10}


def parse_args(argv: list[str] | None = None):
    p = _cli.parser(__doc__, "bench_cvx")
    p.add_argument("--users", type=_cli.positive_int, action="append", default=None,
                   help="N to bench (repeatable; default 2, 5, 8)")
    p.add_argument("--drops", type=_cli.positive_int, default=5, help="drops per N (default 5)")
    p.add_argument("--rho", type=_cli.float_in(0.0, 1.0, lo_open=True), default=0.5)
    p.add_argument("--road", default=None, metavar="SCENARIO",
                   help="instead: warm vs cold starts over a road scenario's decision instants "
                        "(e.g. track-highway)")
    p.add_argument("--seconds", type=_cli.positive_float, default=4.0,
                   help="length of the --road run, s (default 4)")
    p.add_argument("--scale", action="store_true",
                   help="instead: time the default cvx at cell-free sizes (see --size)")
    p.add_argument("--previous", action="store_true",
                   help="with --scale: also time the previous phases (Clarabel root finding, "
                        "primal-dual IPM) on the same drops, and compare their answers")
    p.add_argument("--size", type=_size, action="append", default=None, metavar="L,N,M",
                   help="a size for --scale (repeatable; default "
                        + " ".join(",".join(map(str, z)) for z in SCALE_SIZES) + ")")
    _cli.add_common(p, scenario="pos1", threads=None, skip=("users", "threads"))
    return p.parse_args(argv)


def _size(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(x.strip().isdigit() and int(x) > 0 for x in parts):
        raise ValueError(f"--size takes L,N,M (three integers > 0), got {text!r}")
    return tuple(int(x) for x in parts)


def scale_scenario(L: int, N: int, M: int):
    """``pos2`` with ``L`` APs every 50 m (at x = 25, 75, ...), ``M`` antennas, ``N`` UEs; UEs
    and target spread over x in ``[0, 50 L]`` m (through the public scenario overrides)."""
    import scenarios

    return scenarios.load("pos2", users=N, overrides={
        "system.ap_xy": [[25.0 + 50.0 * l, 0.0] for l in range(L)], "system.antennas": M,
        "placement.ue_x": [0.0, 50.0 * L], "placement.target_x": [0.0, 50.0 * L]})


def bench_scale(args) -> list[dict[str, Any]]:
    """Median seconds per drop of the default ``cvx`` and of its phases at every size (with
    ``--previous``: the previous phases beside them, on the same drops)."""
    from policies.classic import ns_sensing_all
    from policies.convex.dual import DualJointSDP
    from policies.convex.ipm import IPMJointSDP
    from policies.convex.socp import FastMaxMinSINR

    rows = []
    for L, N, M in args.size or SCALE_SIZES:
        sc = scale_scenario(L, N, M)
        system = sc.system
        x, _, _ = sc.drops(np.random.default_rng(args.seed), args.drops)
        pol = policies.make("cvx", system, rho=args.rho, warm_start=False)
        phases = {"root": FastMaxMinSINR(system, args.rho), "sdp": DualJointSDP(system)}
        if args.previous:
            phases |= {"root_solves": FastMaxMinSINR(system, args.rho, bracket=False),
                       "sdp_ipm": IPMJointSDP(system)}
        t: dict[str, list[float]] = {"cvx": [], **{k: [] for k in phases}}
        info: list[dict[str, Any]] = []
        for i in range(args.drops):
            dec = pol.decide(x[i:i + 1])
            t["cvx"].append(dec.seconds)
            hc = to_complex(x[i].astype(float))
            sense = ns_sensing_all(hc[None], system, args.rho)[0]
            gammas, ssnr = {}, {}
            for name, solver in phases.items():
                t0 = time.perf_counter()
                if name.startswith("root"):
                    gammas[name] = solver.solve(hc, sense, need_beams=False).gamma_high
                else:
                    ssnr[name] = solver.solve(hc, gammas["root"]).ssnr_opt
                t[name].append(time.perf_counter() - t0)
            row = {"gamma_high": float(dec.info["gamma_high"][0]),
                   "solves": int(dec.info["solves"][0]),
                   "iterations": int(dec.info["iterations"][0]),
                   "fallback": bool(dec.info["fallback"][0])}
            if args.previous:
                g1, g2 = metrics.g1_g2(x[i], dec.beams[0], system)
                row |= {"gamma_equal": gammas["root"] == gammas["root_solves"],
                        "ssnr_rel": abs(ssnr["sdp"] / ssnr["sdp_ipm"] - 1.0),
                        "beam_ssnr": float(g1) / ssnr["sdp_ipm"],
                        "beam_sinr": float(g2) / gammas["root_solves"]}
            info.append(row)
            print(f"  (L, N, M) = ({L}, {N}, {M}) drop {i}: cvx {t['cvx'][-1]:.3f} s ("
                  + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in t.items() if k != "cvx")
                  + f"), gamma_high {row['gamma_high']:.4f}", flush=True)
        rows.append({"size": [L, N, M], "times_s": t, "drops": info, "load_1min": _load(),
                     "median_s": {k: float(np.median(v)) for k, v in t.items()}})
    cols = ["cvx", "root", "sdp"] + (["root_solves", "sdp_ipm"] if args.previous else [])
    print(f"\nmedian seconds per drop, default cvx (load {_load():.1f}):")
    print(f"{'L':>3} {'N':>3} {'M':>3} " + " ".join(f"{c:>13}" for c in cols)
          + f" {'fallbacks':>9} {'solves':>6} {'iters':>5}"
          + (f" {'=gamma':>6} {'dSSNR':>8} {'g1/opt':>7} {'g2/gam':>7}" if args.previous
             else ""))
    for r in rows:
        m, d = r["median_s"], r["drops"]
        line = (f"{r['size'][0]:>3} {r['size'][1]:>3} {r['size'][2]:>3} "
                + " ".join(f"{m[c]:>13.3f}" for c in cols)
                + f" {sum(e['fallback'] for e in d):>9} {sum(e['solves'] for e in d):>6}"
                + f" {int(np.median([e['iterations'] for e in d])):>5}")
        if args.previous:
            line += (f" {sum(e['gamma_equal'] for e in d):>3}/{len(d):<2}"
                     f" {max(e['ssnr_rel'] for e in d):>8.1e}"
                     f" {min(e['beam_ssnr'] for e in d):>7.4f}"
                     f" {min(e['beam_sinr'] for e in d):>7.4f}")
        print(line)
    print("(root = gamma_high of NS+OPT: SINR balancing, power-scale solves only for the "
          "midpoints it leaves undecided; SDP = the joint SDP by the dual method; timed apart on "
          "the same drops, cold starts; solves = power-scale solves of the cvx decisions in all, "
          "iters = median balancing iterations"
          + ("; root_solves / sdp_ipm = the previous phases (root finding on power-scale solves "
             "alone, primal-dual IPM), =gamma = drops with the same gamma_high, dSSNR = largest "
             "relative SDP optimum gap, g1/opt and g2/gam = the worst drop's cvx beams: SSNR / "
             "the IPM's SDP optimum and min-SINR / the previous gamma_high" if args.previous
             else "") + ")")
    return rows


def _load() -> float:
    return os.getloadavg()[0]


def bench_users(args, users: int) -> dict[str, Any]:
    """Median seconds per drop of every arm and of the plain version at ``users`` UEs, and the
    default's accuracy against tight-tolerance cvxpy solves."""
    sc = _cli.load_scenario(args, users=users)
    system, drops, rho = sc.system, args.drops, args.rho
    x, _, _ = sc.drops(np.random.default_rng(args.seed), drops + 1)
    arms = {name: policies.make("cvx", system, rho=rho, **opts) for name, opts in ARMS.items()}
    # The accuracy reference: cvxpy bisection and SDP, tight Clarabel tolerances.
    tight = policies.make("cvx", system, rho=rho, bisection="reference", solver="CLARABEL",
                          solver_options=TIGHT)
    t0 = time.perf_counter()
    for pol in arms.values():
        pol.decide(x[drops:])                 # one-off compilation, on an extra drop
    compile_s = time.perf_counter() - t0
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    say(f"  N={users}: first calls (compile the cvxpy problems) {compile_s:.2f} s")
    times: dict[str, list[float]] = {name: [] for name in [*ARMS, "plain"]}
    gaps = []
    for i in range(drops):
        one = x[i:i + 1]
        decs = {}
        for name, pol in arms.items():
            decs[name] = pol.decide(one)
            times[name].append(decs[name].seconds)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            beams, gamma = plain_cvx(to_complex(x[i].astype(float)), system, rho)
        times["plain"].append(time.perf_counter() - t0)
        ref = tight.decide(one)
        fast = decs["fast"]
        f_ssnr, f_sinr = metrics.g1_g2(x[i], fast.beams[0], system)
        r_ssnr, r_sinr = metrics.g1_g2(x[i], ref.beams[0], system)
        wp, _ = metrics.project_power(to_layout(beams), system)
        p_ssnr, p_sinr = metrics.g1_g2(x[i], wp, system)
        gaps.append({
            "gamma_fast": float(fast.info["gamma_high"][0]),
            "gamma_tight": float(ref.info["gamma_high"][0]), "gamma_plain": float(gamma),
            "ssnr_rel": float(f_ssnr / r_ssnr - 1), "sinr_rel": float(f_sinr / r_sinr - 1),
            "ssnr_rel_plain": float(f_ssnr / p_ssnr - 1),
            "sinr_rel_plain": float(f_sinr / p_sinr - 1),
            "power_over": float(np.max(metrics.ap_power(fast.beams[0]) / system.P - 1)),
            "fallback": bool(fast.info["fallback"][0]), "solves": int(fast.info["solves"][0]),
            "ref_fallback": bool(ref.info["fallback"][0])})
        g = gaps[-1]
        say(f"  N={users} drop {i}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items())
            + f"; gamma {g['gamma_fast']:.4f} (tight {g['gamma_tight']:.4f}, plain "
            f"{g['gamma_plain']:.4f}), {g['solves']} SOCP solves")
    plain = np.array(times["plain"])
    return {"users": users, "drops": drops, "first_call_s": compile_s, "times_s": times,
            "gaps": gaps, "load_1min": _load(),
            "median_s": {k: float(np.median(v)) for k, v in times.items()},
            "median_ratio": {k: float(np.median(plain / np.array(v))) for k, v in times.items()
                             if k != "plain"}}


def bench_road(args) -> dict[str, Any]:
    """Warm vs cold per-decision time of the default ``cvx`` over a road's decision instants."""
    from policies.evaluation.stress import trajectory

    sc = _cli.load_scenario(args, users=(args.users or [None])[0])
    traj = trajectory(sc, args.seconds, args.seed)
    every = max(1, int(round(float(sc.config["env"]["decision_interval"]) / traj.dt)))
    x = traj.csi(sc.system)[::every]
    pols = {"warm": policies.make("cvx", sc.system, rho=args.rho),
            "cold": policies.make("cvx", sc.system, rho=args.rho, warm_start=False)}
    out: dict[str, Any] = {k: {"seconds": [], "solves": [], "iterations": [], "gamma": []}
                           for k in pols}
    for i in range(len(x)):                   # interleaved, one decision at a time
        for name, pol in pols.items():
            dec = pol.decide(x[i:i + 1])
            out[name]["seconds"].append(dec.seconds)
            out[name]["solves"].append(int(dec.info["solves"][0]))
            out[name]["iterations"].append(int(dec.info["iterations"][0]))
            out[name]["gamma"].append(float(dec.info["gamma_high"][0]))
    gap = float(np.nanmax(np.abs(np.array(out["warm"]["gamma"]) - out["cold"]["gamma"])))
    summary = {k: {"median_s": float(np.median(v["seconds"][1:])),
                   "mean_solves": float(np.mean(v["solves"][1:])),
                   "mean_iterations": float(np.mean(v["iterations"][1:]))}
               for k, v in out.items()}
    print(f"\n{args.road} (N = {sc.system.N}, {len(x)} decisions every "
          f"{every * traj.dt:.2f} s; first decision left out of the medians; load "
          f"{_load():.1f}):")
    for k, v in summary.items():
        print(f"  {k}: median {v['median_s'] * 1e3:.1f} ms per decision, "
              f"{v['mean_solves']:.2f} power-scale solves and "
              f"{v['mean_iterations']:.1f} balancing iterations per decision")
    print(f"  cold / warm: {summary['cold']['median_s'] / summary['warm']['median_s']:.2f}x; "
          f"largest |gamma_high warm - cold| = {gap:.2e}")
    return {"scenario": args.road, "users": sc.system.N, "decisions": len(x), "runs": out,
            "summary": summary, "max_gamma_gap": gap, "load_1min": _load()}


def body(args) -> int:
    out = run_dir("bench-cvx", args.out)                # created and checked before any work
    print(f"load average (1 min) at start: {_load():.2f}")
    if args.scale:
        result: dict[str, Any] = {"scale": bench_scale(args)}
    elif args.road:
        args.scenario = args.road
        result = {"road": bench_road(args)}
    else:
        users = args.users or [2, 5, 8]
        rows = [bench_users(args, n) for n in users]
        print(f"\nmedian seconds per drop (load {_load():.1f}; plain/arm ratios are medians over "
              "drops of the per-drop ratio):")
        print(f"{'N':>3} {'plain':>8} " + " ".join(f"{k:>14}" for k in ARMS)
              + f" {'|dgamma|':>9} {'dSSNR':>8} {'dSINR':>8} {'over-P':>8}")
        for r in rows:
            g = r["gaps"]
            cells = " ".join(f"{r['median_s'][k]:>7.3f} {r['median_ratio'][k]:>5.0f}x"
                             for k in ARMS)
            print(f"{r['users']:>3} {r['median_s']['plain']:>8.2f} {cells} "
                  f"{max(abs(e['gamma_fast'] - e['gamma_tight']) for e in g):>9.4f} "
                  f"{max(abs(e['ssnr_rel']) for e in g):>8.3%} "
                  f"{max(abs(e['sinr_rel']) for e in g):>8.3%} "
                  f"{max(e['power_over'] for e in g):>8.1e}")
        print("(arms: dpp = cvxpy DPP bisection + SCS SDP (the earlier default); +root = root "
              "finding for gamma_high; +ipm = the SDP by the built-in IPM; fast = both, the "
              "default. d* = default vs a tight-tolerance Clarabel solve; over-P = largest AP "
              "power over budget, relative. One-off compilations are timed apart.)")
        result = {"rows": rows}
    config = {k: (str(v) if k == "out" else v) for k, v in vars(args).items()}
    (out / "bench.json").write_text(json.dumps({"config": config | {"out": str(out)}, **result},
                                               indent=2, default=str))
    print(f"wrote {out}/bench.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    return _cli.run(lambda: body(parse_args(argv)), "bench_cvx")


if __name__ == "__main__":
    sys.exit(main())
