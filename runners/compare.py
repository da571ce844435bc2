"""Score every beamforming policy on one scenario: the main job of cfisac.

    python runners/compare.py --scenario pos2 --users 8
    python runners/compare.py --scenario pos1 --users 5 --policy cvx --policy student \\
        --policy examples/power_split_mrt.py:PowerSplitMRT --drops 500 --seed 1

Every policy acts on the same seeded drops (identical CSI). Per policy: mean / median / 5th
percentile of SSNR and min-SINR, the share of drops whose min-SINR reaches the ``cvx`` gamma_high,
compute time per decision (distributed policies: the slowest AP's own time; central ones: the
whole solve), speed-up vs ``cvx``, fronthaul per decision and failure counts. Heavy solvers
(``cvx``, ``ns-opt``, ``cb-opt``) run on the first ``--heavy-drops`` drops in a process pool; the
head-to-head columns (``x cvx``) compare every policy with ``cvx`` on exactly those drops.

Writes ``runs/<date>-compare-<scenario>-N<users>/``: ``config.json``, ``drops.csv`` (per drop),
``summary.json``, ``tradeoff.png`` and ``bars.png``. Exit status 2 on a user error.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

import policies  # noqa: E402
import scenarios  # noqa: E402
from cfisac_env.runs import CHECKPOINT_CACHE, run_dir  # noqa: E402
from policies.evaluation import Drops, PolicyRun, evaluate, summary  # noqa: E402
from policies.registry import BUILTINS  # noqa: E402

DEFAULT_POLICIES = BUILTINS
REFERENCE = "cvx"
LEARNED = ("ssnr-teacher", "sinr-teacher", "student", "fixed-beta", "fixed-lambda")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--scenario", default="pos2", help="scenario name or .toml path")
    p.add_argument("--users", type=int, default=None, help="number of UEs N")
    p.add_argument("--policy", action="append", default=None, metavar="SPEC",
                   help="registered name, module:Class or file.py:Class (repeatable; "
                        "default: every built-in)")
    p.add_argument("--drops", type=int, default=200, help="drops for the fast policies")
    p.add_argument("--heavy-drops", type=int, default=24,
                   help="drops (the first ones) for heavy solvers such as cvx")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="run folder")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="scenario override, e.g. --set system.antennas=32")
    p.add_argument("--device", default="cpu", help="torch device for learned policies")
    p.add_argument("--jobs", type=int, default=None, help="worker processes for heavy solvers")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per AP network (1 = one core per AP, as deployed)")
    p.add_argument("--no-train", action="store_true",
                   help="skip learned policies without a checkpoint instead of training one")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def learned_options(spec: str, scenario: scenarios.Scenario, device: str, train: bool,
                    log: list[str]) -> dict[str, Any] | None:
    """Options for a learned policy: the shipped checkpoint, else a cached one, else (unless
    ``train`` is False) one trained now with the ``cpu`` preset. None = skip the policy."""
    from policies.learned import CheckpointMissing
    from policies.training import checkpoint_name
    from policies.training import train as train_nets

    options: dict[str, Any] = {"device": device}
    try:
        policies.make(spec, scenario.system, scenario=scenario.name, **options)
        return options
    except CheckpointMissing as e:
        missing = str(e)
    cached = CHECKPOINT_CACHE / checkpoint_name(scenario.name, scenario.system.N, "unet", spec)
    if not cached.is_file():
        if not train:
            log.append(f"skipped {spec}: {missing}")
            return None
        roles = ("ssnr-teacher", "sinr-teacher", spec) if spec in ("student", "fixed-lambda") \
            else (spec,)
        print(f"no checkpoint for {spec} on {scenario.name} N={scenario.system.N}: training one "
              f"with the cpu preset (cached in {CHECKPOINT_CACHE})", file=sys.stderr)
        system = {f"system.{k}": v for k, v in scenario.config["system"].items() if k != "users"}
        train_nets(scenario.name, scenario.system.N, "unet", "cpu", device=device,
                   out=CHECKPOINT_CACHE, roles=tuple(dict.fromkeys(roles)), overrides=system)
        log.append(f"trained {spec} with the cpu preset -> {cached}")
    return {**options, "checkpoint": str(cached)}


def run_all(specs: list[str], scenario: scenarios.Scenario, drops: Drops, args: argparse.Namespace,
            log: list[str]) -> dict[str, PolicyRun | str]:
    """Evaluate each policy; a policy that cannot be built is recorded as its error message."""
    runs: dict[str, PolicyRun | str] = {}
    heavy_index = np.arange(min(args.heavy_drops, len(drops)))
    for spec in sorted(specs, key=lambda s: s != REFERENCE):   # the reference first
        options: dict[str, Any] | None = {}
        if spec in LEARNED:
            options = learned_options(spec, scenario, args.device, not args.no_train, log)
            if options is None:
                continue
        try:
            heavy = bool(getattr(policies.resolve(spec), "heavy", False))
            run = evaluate(spec, scenario, drops, heavy_index if heavy else None, jobs=args.jobs,
                           progress=not args.quiet, **options)
        except KeyboardInterrupt:
            log.append(f"interrupted during {spec}; keeping the finished policies")
            break
        except Exception as e:  # a broken policy is a row in the table, not a crash
            runs[spec] = f"{type(e).__name__}: {e}"
            continue
        runs[spec] = run
        if run.interrupted:
            log.append(f"interrupted during {spec}; kept its {len(run.index)} finished drops")
            break
    return runs


def fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:.3g}"


def table(rows: list[dict[str, Any]], failed: dict[str, str]) -> str:
    """The aligned terminal table."""
    head = ["policy", "drops", "SSNR mean", "med", "p5", "minSINR mean", "med", "p5",
            "SSNR x cvx", "SINR x cvx", ">=gamma", "time ms (med)", "p95", "timed as",
            "speed-up", "fronthaul", "fallback", "over-P", "errors"]
    body = []
    for r in rows:
        body.append([r["policy"], str(r["drops"]), fmt(r["ssnr"]["mean"]),
                     fmt(r["ssnr"]["median"]), fmt(r["ssnr"]["p5"]), fmt(r["min_sinr"]["mean"]),
                     fmt(r["min_sinr"]["median"]), fmt(r["min_sinr"]["p5"]),
                     fmt(r.get("ssnr_vs_ref")), fmt(r.get("min_sinr_vs_ref")),
                     fmt(r.get("reach_gamma"), 2), fmt(r["time_ms"]["median"]),
                     fmt(r["time_ms"]["p95"]), r["timing"], fmt(r.get("speedup")),
                     str(r["fronthaul"]), str(r["fallbacks"]), str(r["over_budget"]),
                     str(r["errors"])])
    for name, err in failed.items():
        body.append([name, "0"] + ["-"] * (len(head) - 3) + [f"FAILED: {err[:60]}"])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                       enumerate(zip(row, widths, strict=True))) for row in [head, *body]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def plot_tradeoff(runs: dict[str, PolicyRun], path: Path, title: str) -> None:
    """SSNR vs min-SINR per drop, each policy's mean as a large marker (cvx: a star)."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = plt.cm.tab20(np.linspace(0, 1, 20))
    for k, (spec, r) in enumerate(runs.items()):
        c = colors[(2 * k) % 20 + (k // 10) % 2]
        ref = spec == REFERENCE
        if not np.isfinite(r.ssnr).any():
            continue
        ax.scatter(r.min_sinr, r.ssnr, s=8, alpha=0.3, color=c)
        ax.scatter(np.nanmean(r.min_sinr), np.nanmean(r.ssnr), s=260 if ref else 90,
                   marker="*" if ref else "o", color=c, edgecolor="k", label=r.name, zorder=5)
    ax.set(xlabel="min-SINR (linear)", ylabel="SSNR (linear)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", title="mean (large marker)", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bars(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Means of SSNR and min-SINR per policy, and compute time on a log axis (seed Fig. 16)."""
    names = [r["policy"] for r in rows]
    x = np.arange(len(names))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8, 0.8 * len(names)), 7), sharex=True)
    ax1.bar(x - 0.2, [r["ssnr"]["mean"] for r in rows], 0.4, label="SSNR")
    ax1.bar(x + 0.2, [r["min_sinr"]["mean"] for r in rows], 0.4, label="min-SINR")
    ax1.set(ylabel="mean (linear)", title=title)
    ax1.legend()
    ax1.grid(axis="y", alpha=0.3)
    times = [r["time_ms"]["median"] for r in rows]
    colors = ["C2" if r["distributed"] else "C3" for r in rows]
    ax2.bar(x, times, color=colors)
    ax2.set_yscale("log")
    ax2.set(ylabel="compute time per decision (ms, median)")
    ax2.grid(axis="y", alpha=0.3, which="both")
    ax2.legend(handles=[Patch(color="C2", label="distributed (slowest AP)"),
                        Patch(color="C3", label="central (whole solve)")], fontsize=8)
    ax2.set_xticks(x, names, rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(out: Path, args: argparse.Namespace, scenario: scenarios.Scenario,
                  runs: dict[str, PolicyRun], rows: list[dict[str, Any]],
                  failed: dict[str, str], log: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    config = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "scenario": scenario.name, "config": scenario.config,
              "system": scenario.system.to_dict()}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    with (out / "drops.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["policy", "drop", "ssnr", "min_sinr", "seconds", "fallback", "over_budget",
                    "gamma_high"])
        for name, r in runs.items():
            for j in range(len(r.index)):
                w.writerow([name, int(r.index[j]), r.ssnr[j], r.min_sinr[j], r.seconds[j],
                            int(r.fallback[j]), int(r.over_budget[j]), r.gamma_high[j]])
    errors = {name: r.errors for name, r in runs.items() if r.errors}
    (out / "summary.json").write_text(json.dumps(
        {"policies": rows, "failed": failed, "errors": errors, "notes": log}, indent=2,
        default=float))
    title = f"{scenario.name}, N = {scenario.system.N}"
    plot_tradeoff(runs, out / "tradeoff.png", title)
    plot_bars(rows, out / "bars.png", title)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        overrides = dict(scenarios.parse_assignment(s) for s in args.set)
        scenario = scenarios.load(args.scenario, users=args.users, overrides=overrides)
        specs = list(dict.fromkeys(args.policy or DEFAULT_POLICIES))
        for spec in specs:
            policies.resolve(spec)
        if args.drops < 1 or args.heavy_drops < 1:
            raise ValueError("--drops and --heavy-drops must be >= 1")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    drops = Drops.sample(scenario, args.drops, args.seed)
    log: list[str] = []
    results = run_all(specs, scenario, drops, args, log)
    runs = {k: v for k, v in results.items() if isinstance(v, PolicyRun) and len(v.index)}
    failed = {k: v for k, v in results.items() if isinstance(v, str)}
    ref = runs.get(REFERENCE)
    rows = [summary(r, ref) for r in runs.values()]
    out = run_dir(f"compare-{scenario.name}-N{scenario.system.N}", args.out)
    print(f"\n{scenario.name}: N = {scenario.system.N} UEs, L = {scenario.system.L} APs x "
          f"M = {scenario.system.M} antennas; {args.drops} drops (seed {args.seed}), heavy "
          f"solvers on the first {min(args.heavy_drops, args.drops)}")
    print(table(rows, failed))
    print("x cvx: ratio of means on the drops cvx solved; >=gamma: share of those drops with "
          "min-SINR >= cvx gamma_high (1% tolerance); timed as: what a deployment waits for")
    for line in log:
        print(f"note: {line}")
    for name, r in runs.items():
        for e in r.errors[:3]:
            print(f"error: {name}: {e}")
    if runs:
        write_outputs(out, args, scenario, runs, rows, failed, log)
        print(f"wrote {out}/ (config.json, drops.csv, summary.json, tradeoff.png, bars.png) "
              f"in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
