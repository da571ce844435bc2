"""Speed and quality of the learned distributed policies.

    python runners/bench_policy.py latency                 # per-AP CPU latency, every arch, N=2,5,8
    python runners/bench_policy.py quality --scenario pos1 --users 5 --drops 200

``latency``: one AP's network alone (as deployed: each AP runs its own), batch 1, on the CPU with
``--threads`` torch threads (1 by default): median and 95th percentile over ``--repeats`` calls
after a warm-up, per architecture at N = 2, 5, 8 UEs, plus the throughput of batched calls
(drops per second per AP at ``--batch``). Untrained weights: the latency does not depend on them.
The target is <= 1 ms per AP for the U-net F3 at N = 8.

``quality``: mean SSNR and min-SINR of every shipped (or ``--checkpoints DIR``) learned role and
of the ``cvx`` policy on the same held-out drops (seed ``--seed``, never used in training), with
the ratios the issue's quality bar asks for. cvx is solved with ``policies.pool.decide_many``
(seconds per drop) and cached in the run folder; ``--no-cvx`` uses the published JSC means where
they exist (pos1, N=5).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cfisac_env import metrics  # noqa: E402
from cfisac_env.runs import run_dir  # noqa: E402
from policies.nets import ARCHS, DistributedNets  # noqa: E402
from policies.training import ROLES, checkpoint_name  # noqa: E402

LEARNED = ROLES
PUBLISHED_CVX = {("pos1", 5): (2.103, 3.747)}


def ap_latency(arch: str, users: int, repeats: int, batch: int, width: int = 16
               ) -> dict[str, float]:
    """Latency (ms, batch 1: median, p95) and batched throughput (drops/s) of AP 0's network."""
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
    return {"arch": arch, "users": users, "median_ms": 1e3 * float(np.median(times)),
            "p95_ms": 1e3 * float(np.percentile(times, 95)), "throughput": thr,
            "params": sum(p.numel() for p in net.parameters())}


def cmd_latency(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    rows = []
    print(f"per-AP CPU latency, batch 1, torch threads={args.threads} "
          f"(distributed: each AP runs its own net)")
    print(f"{'arch':8s} {'N':>2s} {'params':>8s} {'median ms':>10s} {'p95 ms':>8s} "
          f"{'drops/s @' + str(args.batch):>14s}")
    for arch in args.arch or ["cnn", "cae", "unet-f3", "unet-f5", "unet-f7"]:
        for n in args.users or [2, 5, 8]:
            r = ap_latency(arch, n, args.repeats, args.batch)
            rows.append(r)
            print(f"{arch:8s} {n:2d} {r['params']:8d} {r['median_ms']:10.3f} {r['p95_ms']:8.3f} "
                  f"{r['throughput']:14.0f}")
    target = [r for r in rows if r["arch"] == "unet-f3" and r["users"] == 8]
    if target:
        ok = target[0]["median_ms"] <= 1.0
        print(f"target U-net F3 at N=8 <= 1 ms per AP: median {target[0]['median_ms']:.3f} ms "
              f"-> {'met' if ok else 'NOT met'}")
    return {"threads": args.threads, "rows": rows}


def cmd_quality(args: argparse.Namespace, out: Path) -> dict:
    import policies
    import scenarios
    from policies.learned import CheckpointMissing

    torch.set_num_threads(args.threads)
    sc = scenarios.load(args.scenario, users=args.users)
    system = sc.system
    csi = sc.drops(np.random.default_rng(args.seed), args.drops)[0]
    res: dict[str, dict[str, float]] = {}
    for role in LEARNED:
        path = args.checkpoints / checkpoint_name(sc.name, system.N, args.arch, role) \
            if args.checkpoints else None
        if path is not None and not path.is_file():
            continue
        try:
            pol = policies.make(role, system, scenario=sc.name, arch=args.arch, checkpoint=path)
        except CheckpointMissing as e:
            print(f"{role}: skipped ({e})")
            continue
        g1, g2 = metrics.g1_g2(csi, pol.act(csi), system)
        res[role] = {"ssnr": float(g1.mean()), "min_sinr": float(g2.mean())}
    cache = out / f"cvx-{sc.name}-N{system.N}-seed{args.seed}-{args.drops}.npz"
    cvx = None
    if not args.no_cvx:
        if cache.exists():
            z = np.load(cache)
            cvx = {"ssnr": float(z["ssnr"].mean()), "min_sinr": float(z["min_sinr"].mean()),
                   "source": f"cvx policy on these {args.drops} drops (cached)"}
        else:
            from policies.pool import decide_many

            dec = decide_many("cvx", system, csi, {"rho": 0.5}, args.jobs)
            beams = np.concatenate([d.beams for d in dec])
            g1, g2 = metrics.g1_g2(csi[:len(beams)], beams, system)
            np.savez(cache, ssnr=g1, min_sinr=g2)
            cvx = {"ssnr": float(g1.mean()), "min_sinr": float(g2.mean()),
                   "source": f"cvx policy on {len(beams)} of these drops"}
    elif (sc.name, system.N) in PUBLISHED_CVX:
        s, g = PUBLISHED_CVX[(sc.name, system.N)]
        cvx = {"ssnr": s, "min_sinr": g, "source": "published JSC means (other drops)"}
    bound = system.ssnr_bound
    print(f"{sc.name} N={system.N}, {args.drops} held-out drops (seed {args.seed}); "
          f"SSNR bound {bound:.3f}")
    print(f"{'policy':13s} {'SSNR':>7s} {'min-SINR':>9s} {'SSNR/cvx':>9s} {'SINR/cvx':>9s}")
    for name, r in res.items():
        rs = f"{r['ssnr'] / cvx['ssnr']:9.1%}" if cvx else f"{'':9s}"
        rg = f"{r['min_sinr'] / cvx['min_sinr']:9.1%}" if cvx else ""
        print(f"{name:13s} {r['ssnr']:7.3f} {r['min_sinr']:9.3f} {rs} {rg}")
    if cvx:
        print(f"{'cvx':13s} {cvx['ssnr']:7.3f} {cvx['min_sinr']:9.3f}   ({cvx['source']})")
    if "ssnr-teacher" in res:
        print(f"SSNR teacher / bound: {res['ssnr-teacher']['ssnr'] / bound:.1%} (bar 99%)")
    return {"scenario": sc.name, "users": system.N, "drops": args.drops, "seed": args.seed,
            "bound": bound, "learned": res, "cvx": cvx}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    lat = sub.add_parser("latency", help="per-AP CPU latency and throughput")
    lat.add_argument("--arch", action="append", choices=ARCHS)
    lat.add_argument("--users", action="append", type=int)
    lat.add_argument("--repeats", type=int, default=2000)
    lat.add_argument("--batch", type=int, default=1000)
    lat.add_argument("--threads", type=int, default=1)
    q = sub.add_parser("quality", help="learned roles vs cvx on held-out drops")
    q.add_argument("--scenario", default="pos2")
    q.add_argument("--users", type=int, default=8)
    q.add_argument("--arch", default="unet", choices=ARCHS)
    q.add_argument("--drops", type=int, default=200)
    q.add_argument("--seed", type=int, default=20_241_224)
    q.add_argument("--jobs", type=int, default=None, help="cvx worker processes")
    q.add_argument("--threads", type=int, default=1)
    q.add_argument("--no-cvx", action="store_true")
    q.add_argument("--checkpoints", type=Path, default=None,
                   help="folder of checkpoints to score instead of the shipped ones")
    for sp in (lat, q):
        sp.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    out = run_dir("bench-policy", args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = cmd_latency(args) if args.cmd == "latency" else cmd_quality(args, out)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    name = "latency.json" if args.cmd == "latency" else \
        f"quality-{args.scenario}-N{args.users}.json"
    (out / name).write_text(json.dumps(result, indent=2))
    print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
