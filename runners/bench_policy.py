"""Speed and quality of the learned distributed policies.

    python runners/bench_policy.py latency                 # per-AP CPU latency, every arch, N=2,5,8
    python runners/bench_policy.py quality --scenario pos1 --users 5 --drops 200

``latency``: one AP's network alone (as deployed: each AP runs its own), batch 1, on the CPU with
``--threads`` torch threads (1 by default): median and 95th percentile over ``--repeats`` calls
after a warm-up, per architecture at N = 2, 5, 8 UEs, plus the throughput of batched calls
(drops per second per AP at ``--batch``). Untrained weights: the latency does not depend on them.
The target is <= 1 ms per AP for the U-net F3 at N = 8. The ``ort ms`` column is the same network
exported to ONNX (:mod:`policies.learned.export`) and run by onnxruntime on as many threads, batch
1,
median (``--no-onnx`` skips it; it needs the ``onnxruntime`` and ``onnxscript`` packages).

``quality``: mean SSNR and min-SINR of every shipped (or ``--checkpoints DIR``) learned role and
of the ``cvx`` policy on the same held-out drops (seed ``--seed``, never used in training), with
the ratios of the quality bar (student vs cvx) and the student's frontier efficiency. cvx is
scored as ``runners/compare.py`` scores it, its decisions kept in the decision cache
(``--cache PATH`` / ``--no-cache``); ``--no-cvx`` uses the published JSC means where they exist
(pos1, N=5).

The run folder is created (and checked) before any work and the JSON is written atomically; a
user error exits 2 with one line, Ctrl-C exits 130 (an interrupted cvx solve is never cached).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cfisac_env.physics import metrics  # noqa: E402
from cfisac_env.runs import provenance, run_dir, write_json  # noqa: E402
from policies.evaluation.published import published_cvx  # noqa: E402
from policies.learned.checkpoints import ROLES, checkpoint_name  # noqa: E402
from policies.learned.nets import ARCHS, DistributedNets  # noqa: E402
from runners import _cli  # noqa: E402
from runners._cli import add_cache_flags, open_cache  # noqa: E402

LEARNED = ROLES


def onnx_latency(net: torch.nn.Module, x1: np.ndarray, repeats: int, threads: int) -> float:
    """Median latency (ms, batch 1) of ``net`` exported to ONNX and run by onnxruntime."""
    import tempfile

    from policies.learned import export

    with tempfile.TemporaryDirectory() as tmp:
        path = export.export_onnx(net, Path(tmp) / "ap.onnx")
        sess = export.onnx_session(path, threads)
        for _ in range(max(20, repeats // 10)):
            export.run_onnx(sess, x1)
        times = np.empty(repeats)
        for i in range(repeats):
            t0 = time.perf_counter()
            export.run_onnx(sess, x1)
            times[i] = time.perf_counter() - t0
    return 1e3 * float(np.median(times))


def ap_latency(arch: str, users: int, repeats: int, batch: int, width: int | None = None,
               onnx: bool = False, threads: int = 1) -> dict[str, float]:
    """Latency (ms, batch 1: median, p95) and batched throughput (drops/s) of AP 0's network;
    with ``onnx`` also onnxruntime's median latency (``ort_median_ms``, else None)."""
    import scenarios

    sc = scenarios.load("pos2", users=users)
    net = DistributedNets(sc.system, arch, width).aps[0].eval()
    x1 = torch.from_numpy(sc.drops(np.random.default_rng(0), 1)[0][:, 0])
    xb = torch.from_numpy(sc.drops(np.random.default_rng(1), batch)[0][:, 0])
    with torch.inference_mode():
        for _ in range(max(20, repeats // 10)):
            net(x1)
        times = np.empty(repeats)
        for i in range(repeats):
            t0 = time.perf_counter()
            net(x1)
            times[i] = time.perf_counter() - t0
        net(xb)
        reps = max(3, 20_000 // batch)
        t0 = time.perf_counter()
        for _ in range(reps):
            net(xb)
        thr = reps * batch / (time.perf_counter() - t0)
    ort_ms = onnx_latency(net, x1.numpy(), repeats, threads) if onnx else None
    return {"arch": arch, "users": users, "median_ms": 1e3 * float(np.median(times)),
            "p95_ms": 1e3 * float(np.percentile(times, 95)), "throughput": thr,
            "ort_median_ms": ort_ms, "params": sum(p.numel() for p in net.parameters())}


def cmd_latency(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    rows = []
    print(f"per-AP CPU latency, batch 1, torch threads={args.threads} "
          f"(distributed: each AP runs its own net)")
    onnx = not args.no_onnx
    print(f"{'arch':8s} {'N':>2s} {'params':>8s} {'median ms':>10s} {'p95 ms':>8s} "
          f"{'drops/s @' + str(args.batch):>14s}" + (f" {'ort ms':>8s}" if onnx else ""))
    for arch in args.arch or ["cnn", "cae", "unet-f3", "unet-f5", "unet-f7"]:
        for n in args.users or [2, 5, 8]:
            r = ap_latency(arch, n, args.repeats, args.batch, onnx=onnx, threads=args.threads)
            rows.append(r)
            print(f"{arch:8s} {n:2d} {r['params']:8d} {r['median_ms']:10.3f} {r['p95_ms']:8.3f} "
                  f"{r['throughput']:14.0f}" + (f" {r['ort_median_ms']:8.3f}" if onnx else ""))
    target = [r for r in rows if r["arch"] == "unet-f3" and r["users"] == 8]
    if target:
        ok = target[0]["median_ms"] <= 1.0
        print(f"target U-net F3 at N=8 <= 1 ms per AP: median {target[0]['median_ms']:.3f} ms "
              f"-> {'met' if ok else 'NOT met'}")
    return {"threads": args.threads, "rows": rows}


def cvx_scores(sc, n: int, seed: int, jobs: int | None, cache) -> dict[str, np.ndarray]:
    """Per-drop SSNR and min-SINR of ``cvx`` (rho 0.5) on the ``n`` held-out drops of ``seed``,
    scored as ``runners/compare.py`` scores it (decisions kept in the decision cache)."""
    from policies.evaluation.evaluate import Drops, score_policy

    run = score_policy("cvx", sc, Drops.sample(sc, n, seed), jobs=jobs, cache=cache, rho=0.5)
    if run.interrupted:
        raise KeyboardInterrupt
    return {"ssnr": run.ssnr, "min_sinr": run.min_sinr}


def cmd_quality(args: argparse.Namespace, out: Path) -> dict:
    import policies
    from policies.convex.frontier import frontier
    from policies.learned import checkpoints as store

    torch.set_num_threads(args.threads)
    sc = _cli.load_scenario(args)
    system = sc.system
    csi = sc.drops(np.random.default_rng(args.seed), args.drops)[0]
    res: dict[str, dict[str, float]] = {}
    for role in LEARNED:
        path = None
        if args.checkpoints:
            found = sorted(args.checkpoints.glob(checkpoint_name(sc.name, system.N, args.arch or
                                                                 "*", role)))
            if not found:
                continue
            path = found[0]
        try:
            pol = policies.make(role, system, scenario=sc.name, arch=args.arch, checkpoint=path)
        except store.CheckpointError as e:
            print(f"{role}: skipped ({e})")
            continue
        beams = pol.act(csi)
        g1, g2 = metrics.g1_g2(csi, beams, system)
        res[role] = {"arch": pol.meta["arch"], "ssnr": float(g1.mean()),
                     "min_sinr": float(g2.mean())}
        if role in args.frontier:
            fr = frontier(csi, beams, system, progress=True)
            res[role]["frontier_efficiency"] = fr.efficiency
            res[role]["frontier_solved"] = int(fr.solved.sum())
    cvx = None
    if not args.no_cvx:
        z = cvx_scores(sc, len(csi), args.seed, args.jobs, open_cache(args))
        cvx = {"ssnr": float(z["ssnr"].mean()), "min_sinr": float(z["min_sinr"].mean()),
               "source": f"cvx policy (rho 0.5) on these {args.drops} drops"}
    elif (pub := published_cvx(sc.name, system.N)) is not None:
        cvx = {"ssnr": pub["ssnr"], "min_sinr": pub["min_sinr"],
               "source": "published JSC means (other drops)"}
    bound = system.ssnr_bound
    print(f"{sc.name} N={system.N}, {args.drops} held-out drops (seed {args.seed}); "
          f"SSNR bound {bound:.3f}")
    print(f"{'policy':13s} {'arch':9s} {'SSNR':>7s} {'min-SINR':>9s} {'SSNR/cvx':>9s} "
          f"{'SINR/cvx':>9s} {'frontier':>9s}")
    for name, r in res.items():
        if cvx:
            r["ssnr_ratio"] = r["ssnr"] / cvx["ssnr"]
            r["min_sinr_ratio"] = r["min_sinr"] / cvx["min_sinr"]
        rs = f"{r['ssnr_ratio']:9.1%}" if cvx else f"{'':9s}"
        rg = f"{r['min_sinr_ratio']:9.1%}" if cvx else f"{'':9s}"
        fe = f"{r['frontier_efficiency']:9.1%}" if "frontier_efficiency" in r else ""
        print(f"{name:13s} {r['arch']:9s} {r['ssnr']:7.3f} {r['min_sinr']:9.3f} {rs} {rg} {fe}")
    if cvx:
        print(f"{'cvx':13s} {'':9s} {cvx['ssnr']:7.3f} {cvx['min_sinr']:9.3f}   "
              f"({cvx['source']})")
    checks = quality_bar(res, cvx, bound)
    for line in checks:
        print(line)
    return {"scenario": sc.name, "users": system.N, "drops": args.drops, "seed": args.seed,
            "bound": bound, "learned": res, "cvx": cvx, "bar": checks}


def quality_bar(res: dict[str, dict[str, float]], cvx: dict | None, bound: float) -> list[str]:
    """The quality bar, one line per check: student >= 95 % of cvx on both means (or, at
    another trade-off point, frontier efficiency >= 98 % with both ratios >= 80 %); SINR teacher
    above cvx's min-SINR; SSNR teacher >= 99 % of the bound."""
    lines = []
    if "ssnr-teacher" in res:
        r = res["ssnr-teacher"]["ssnr"] / bound
        lines.append(f"SSNR teacher / bound: {r:.1%} (bar 99 %) -> "
                     f"{'met' if r >= 0.99 else 'NOT met'}")
    if cvx and "sinr-teacher" in res:
        r = res["sinr-teacher"]["min_sinr_ratio"]
        lines.append(f"SINR teacher / cvx min-SINR: {r:.1%} (bar > 100 %) -> "
                     f"{'met' if r > 1 else 'NOT met'}")
    if cvx and "student" in res:
        st = res["student"]
        both = min(st["ssnr_ratio"], st["min_sinr_ratio"])
        fe = st.get("frontier_efficiency", float("nan"))
        ok = both >= 0.95 or (fe >= 0.98 and both >= 0.80)
        lines.append(f"student / cvx: SSNR {st['ssnr_ratio']:.1%}, min-SINR "
                     f"{st['min_sinr_ratio']:.1%}, frontier efficiency {fe:.1%} (bar: both "
                     f">= 95 %, or frontier >= 98 % with both >= 80 %) -> "
                     f"{'met' if ok else 'NOT met'}")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__.split("\n\n")[0], "bench_policy")
    sub = p.add_subparsers(dest="cmd", required=True)
    lat = sub.add_parser("latency", help="per-AP CPU latency and throughput")
    lat.add_argument("--arch", action="append", choices=ARCHS)
    lat.add_argument("--users", action="append", type=_cli.int_in(1, 1024),
                     help="N (repeatable; default 2, 5, 8)")
    lat.add_argument("--repeats", type=_cli.int_in(1, 10_000_000), default=2000)
    lat.add_argument("--batch", type=_cli.int_in(1, 1_000_000), default=1000)
    lat.add_argument("--no-onnx", action="store_true",
                     help="skip the onnxruntime column (export + timing of each network)")
    _cli.add_common(lat, threads=1, skip=("scenario", "users", "set", "seed"))
    q = sub.add_parser("quality", help="learned roles vs cvx on held-out drops")
    _cli.add_common(q, scenario="pos2", users=8, seed=20_241_224, threads=1)
    q.add_argument("--arch", default=None, choices=ARCHS,
                   help="architecture of the checkpoints (default: the shipped default)")
    q.add_argument("--frontier", action="append", default=None, choices=LEARNED,
                   help="roles whose frontier efficiency is computed (one joint SDP per drop; "
                        "default: student)")
    add_cache_flags(q)
    q.add_argument("--drops", type=_cli.positive_int, default=200)
    q.add_argument("--jobs", type=_cli.positive_int, default=None, help="cvx worker processes")
    q.add_argument("--no-cvx", action="store_true")
    q.add_argument("--checkpoints", type=Path, default=None,
                   help="folder of checkpoints to score instead of the shipped ones")
    args = p.parse_args(argv)
    if args.cmd == "quality" and args.frontier is None:
        args.frontier = ["student"]
    return args


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return _cli.run(lambda: run(parse_args(argv)), "bench_policy")


def run(args: argparse.Namespace) -> int:
    """Check, create the run folder, measure, write the JSON (atomically)."""
    if args.cmd == "quality":
        _cli.load_scenario(args)
        if args.checkpoints is not None and not args.checkpoints.is_dir():
            raise ValueError(f"--checkpoints {args.checkpoints} is not a folder")
    out = run_dir("bench-policy", args.out)
    result = cmd_latency(args) if args.cmd == "latency" else cmd_quality(args, out)
    name = "latency.json" if args.cmd == "latency" else \
        f"quality-{args.scenario}-N{args.users}.json"
    write_json(out / name, {**result, "provenance": provenance()})
    print(f"wrote {out / name}")
    return _cli.OK


if __name__ == "__main__":
    sys.exit(main())
