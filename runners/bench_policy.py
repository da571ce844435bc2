"""Speed and per-drop quality of the learned distributed policies.

    python runners/bench_policy.py latency --users 8               # per-AP latency, batch 1
    python runners/bench_policy.py quality --scenario pos2 --users 8 --drops 200

``latency``: one AP's decision alone (as deployed: each AP runs its own network), batch 1, one
thread (``--threads``): the median and 95th percentile over ``--repeats`` calls after a warm-up
(the compiled paths compile, or load their cache, when built: never inside the timing), for
every inference path of every learned scheme: ``span-attn`` (the shipped student) compiled (the
default: the LoS fit of its CSI, :mod:`cfisac_env.physics.los_fit`, then the network; also
without the fit), in NumPy and in torch; the seed scheme's ``gram-mlp`` (its shipped checkpoints)
compiled (its default) and in torch; the seed's Table-1 U-net F3 in torch (no compiled twin).
Where no checkpoint exists for the N, random weights (latency does not depend on them). Per
path: the floating-point operations of one AP's forward, the rate they ran at (GFLOP/s) and the
largest difference to the torch beams on 64 drops (bar <= 1e-5). Target: <= 0.05 ms per AP for
the default path at N = 8.

``quality``: on ``--drops`` held-out drops (seed ``--seed``, never used in training; drawn by the
one drop sampler, so ``[channel]`` / ``[csi]`` apply: policies see the estimated CSI, everything
is scored on the true channel) every ``--policy`` (default: every learned policy with a
checkpoint) and ``cvx`` (rho 0.5; decisions from the shared decision cache, ``--cache`` /
``--no-cache``) are scored drop by drop, and the per-drop parity of each with cvx is printed
(:mod:`policies.learned.quality`: medians of the paired ratios, the share of drops with both
ratios >= 0.9, the 5th-percentile min-SINR ratio, the means' ratios, and whether the bar holds).

The run folder is created (and checked) before any work and the JSON is written atomically; a
user error exits 2 with one line, Ctrl-C exits 130 (an interrupted cvx solve is never cached).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from cfisac_env.runs import provenance, run_dir, write_json
from policies.learned import checkpoints as store
from policies.learned.quality import HEADER, parity, parity_line
from policies.learned.roles import ROLES
from runners import _cli
from runners._cli import add_cache_flags, open_cache


def _time(fn, repeats: int) -> np.ndarray:
    for _ in range(max(20, repeats // 10)):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return 1e3 * out


def _latency_paths(n: int) -> tuple[dict, dict]:
    """The inference paths at N = ``n`` (pos2): ``{name: (call on one drop, flops dict or None,
    beams minus torch's on 64 drops or None)}`` and which weights each uses."""
    import torch

    import scenarios
    from policies.learned.fastpath import FastGram, FastSpan, gram_flops, span_flops
    from policies.learned.nets import DistributedNets
    from policies.learned.span import NumpySpan, SpanAttn

    sc = scenarios.load("pos2", users=n)
    x = sc.drops(np.random.default_rng(0), 64)[0]
    x1, xt, xall = x[:1, 0], torch.from_numpy(x[:1, 0]), torch.from_numpy(x[:, 0])
    found = store.find_span("pos2")
    net = store.load_span(found, sc.system)[0] if found else SpanAttn(sc.system, 23.0)
    paper = store.find("pos2", n, "student", "gram-mlp")
    gnets = store.load(paper, sc.system)[0] if paper else \
        DistributedNets(sc.system, "gram-mlp").eval()
    gap = gnets.aps[0]
    unet = DistributedNets(sc.system, "unet-f3").aps[0].eval()
    # the student's default path under a LoS channel: the LoS fit of its CSI, then the network
    fast, bare = FastSpan(net, los_fit=True), FastSpan(net)
    twin, gfast = NumpySpan(net), FastGram(gap)
    fl_span = span_flops(n, sc.system.M, sc.system.L, net.width, net.heads, net.layers)
    fl_gram = gram_flops(sc.system.Q, sc.system.M, gap.body.mlp[0].out_features)
    w_span = net.ap_forward(xall, 0, 0.5)[0].numpy()
    w_gram = gap(xall).numpy()
    paths = {
        "span-attn compiled (default)": (lambda: fast(0, x1), fl_span,
                                         fast(0, x[:, 0]) - w_span),
        "span-attn compiled, no LoS fit": (lambda: bare(0, x1), fl_span,
                                           bare(0, x[:, 0]) - w_span),
        "span-attn numpy": (lambda: twin(0, x1), fl_span, twin(0, x[:, 0]) - w_span),
        "span-attn torch": (lambda: net.ap_forward(xt, 0, 0.5), fl_span, None),
        "gram-mlp compiled (paper default)": (lambda: gfast(x1), fl_gram,
                                              gfast(x[:, 0]) - w_gram),
        "gram-mlp torch": (lambda: gap(xt), fl_gram, None),
        "unet-f3 torch (seed)": (lambda: unet(xt), None, None),
    }
    weights = {name: "untrained" if "unet" in name else
               ("shipped" if (paper if "gram" in name else found) else "random")
               for name in paths}
    return paths, weights


def cmd_latency(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    print(f"per-AP CPU latency at batch 1, {args.threads} thread(s), median of {args.repeats} "
          "(distributed: each AP runs its own network; compile time excluded); machine load "
          "distorts absolute times")
    print(f"{'path':34s} {'N':>3s} {'MFLOP':>6s} {'median ms':>10s} {'p95 ms':>8s} "
          f"{'GFLOP/s':>8s} {'max |x - torch|':>16s}")
    for n in args.users or [2, 5, 8]:
        with torch.inference_mode():
            paths, weights = _latency_paths(n)
            for name, (fn, fl, err) in paths.items():
                t = _time(fn, args.repeats)
                med = float(np.median(t))
                r = {"path": name, "users": n, "median_ms": med,
                     "p95_ms": float(np.percentile(t, 95)),
                     "mflop": fl["total"] / 1e6 if fl else None,
                     "gflops": fl["total"] / (med * 1e6) if fl else None,
                     "max_diff": float(np.abs(err).max()) if err is not None else None,
                     "weights": weights[name]}
                rows.append(r)
                f = f"{r['mflop']:6.2f}" if fl else f"{'':6s}"
                g = f"{r['gflops']:8.1f}" if fl else f"{'':8s}"
                d = f"{r['max_diff']:16.1e}" if r["max_diff"] is not None else ""
                print(f"{name:34s} {n:3d} {f} {med:10.4f} {r['p95_ms']:8.4f} {g} {d}")
    target = [r for r in rows if r["users"] == 8 and r["path"].endswith("(default)")]
    if target:
        t = target[0]
        ok = t["median_ms"] <= 0.05
        print(f"target default path at N=8 <= 0.05 ms per AP: median {t['median_ms']:.4f} ms -> "
              f"{'met' if ok else 'NOT met'}; = torch to {t['max_diff']:.1e} (bar 1e-5); "
              f"{t['mflop']:.2f} MFLOP per AP need {t['mflop'] / 0.05:.0f} GFLOP/s at the "
              f"target, ran at {t['gflops']:.0f}")
    return {"threads": args.threads, "rows": rows}


def cmd_quality(args: argparse.Namespace) -> dict:
    from policies.evaluation.evaluate import Drops, score_policy
    from policies.learned.training import resolve
    from policies.registry import parse_spec

    sc = _cli.load_scenario(args)
    drops = Drops.sample(sc, args.drops, args.seed)
    cvx = score_policy("cvx", sc, drops, cache=open_cache(args), progress=not args.quiet, rho=0.5)
    if cvx.interrupted:
        raise KeyboardInterrupt
    specs = args.policy or [r for r in ROLES if r != "fixed-beta" and r != "fixed-lambda"]
    res: dict[str, dict] = {}
    print(f"{sc.name} N={sc.system.N}, {args.drops} held-out drops (seed {args.seed}); per drop "
          f"r1 = SSNR / cvx's, r2 = min-SINR / cvx's; cvx mean SSNR {np.mean(cvx.ssnr):.3f}, "
          f"min-SINR {np.mean(cvx.min_sinr):.3f}")
    print(HEADER)
    for spec in specs:
        row = parse_spec(spec).row            # the row name of every table (@label=...)
        try:
            opts = {}
            if spec in ROLES:
                opts["checkpoint"] = str(resolve(spec, sc.system, sc.name))
            run = score_policy(spec, sc, drops, progress=False, **opts)
        except ValueError as e:
            print(f"{row:16s} skipped: {_cli.one_line(e)}")
            continue
        p = parity(run.ssnr, run.min_sinr, cvx.ssnr, cvx.min_sinr)
        res[row] = {**p, "ssnr": float(np.nanmean(run.ssnr)),
                    "min_sinr": float(np.nanmean(run.min_sinr)),
                    "checkpoint": store.describe(opts["checkpoint"]) if opts else None}
        print(parity_line(row, p))
    return {"scenario": sc.name, "users": sc.system.N, "drops": args.drops, "seed": args.seed,
            "overrides": dict(args.set), "cvx": {"ssnr": float(np.mean(cvx.ssnr)),
                                                 "min_sinr": float(np.mean(cvx.min_sinr))},
            "policies": res}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__.split("\n\n")[0], "bench_policy")
    sub = p.add_subparsers(dest="cmd", required=True)
    lat = sub.add_parser("latency", help="per-AP CPU latency at batch 1")
    lat.add_argument("--users", action="append", type=_cli.int_in(1, 16),
                     help="N (repeatable; default 2, 5, 8)")
    lat.add_argument("--repeats", type=_cli.int_in(1, 10_000_000), default=2000)
    _cli.add_common(lat, threads=1, skip=("scenario", "users", "set", "seed"))
    q = sub.add_parser("quality", help="per-drop parity with cvx on held-out drops")
    _cli.add_common(q, scenario="pos2", users=8, seed=20_241_224, threads=1)
    q.add_argument("--policy", action="append", default=None, metavar="SPEC",
                   help="policy to score (repeatable; default: every learned policy)")
    add_cache_flags(q)
    q.add_argument("--drops", type=_cli.positive_int, default=200)
    for sp in (lat, q):
        sp.add_argument("--checkpoint-root", type=Path, default=None, metavar="DIR",
                        help=f"checkpoint root searched before the shipped folder (default "
                             f"${store.ENV} or {store.DEFAULT_ROOT})")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return _cli.run(lambda: run(parse_args(argv)), "bench_policy")


def run(args: argparse.Namespace) -> int:
    """Check, create the run folder, measure, write the JSON (atomically)."""
    import torch

    if args.checkpoint_root is not None:
        if not args.checkpoint_root.is_dir():
            raise ValueError(f"--checkpoint-root {args.checkpoint_root} is not a folder")
        store.set_root(args.checkpoint_root)
    if args.cmd == "quality":
        _cli.load_scenario(args)
    torch.set_num_threads(args.threads)
    out = run_dir("bench-policy", args.out)
    result = cmd_latency(args) if args.cmd == "latency" else cmd_quality(args)
    name = "latency.json" if args.cmd == "latency" else \
        f"quality-{args.scenario}-N{args.users}.json"
    write_json(out / name, {**result, "provenance": provenance()})
    print(f"wrote {out / name}")
    return _cli.OK


if __name__ == "__main__":
    sys.exit(main())
