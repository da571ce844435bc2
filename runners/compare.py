"""Score every beamforming policy on one scenario: the main job of cfisac.

    python runners/compare.py --scenario pos2 --users 8
    python runners/compare.py --scenario pos1 --users 5 --policy cvx --policy student \\
        --policy examples/power_split_mrt.py:PowerSplitMRT --drops 500 --seed 1

Every policy acts on the same seeded drops (identical CSI). Per policy: mean (with its 95 %
Student-t interval) / median / 5th percentile of SSNR and min-SINR, the share of drops whose
min-SINR reaches the ``cvx`` gamma_high, compute time per decision (distributed policies: the
slowest AP's own time; central ones: the whole solve), speed-up vs ``cvx``, fronthaul per
decision and failure counts. Heavy solvers
(``cvx``, ``ns-opt``, ``cb-opt``) run on the first ``--heavy-drops`` drops in a process pool; the
head-to-head columns (``x cvx``) compare every policy with ``cvx`` on exactly those drops, paired
per drop, with 95 % intervals (:mod:`policies.evaluation.stats`). Heavy solvers' decisions are kept
in a
content-addressed cache (:mod:`policies.evaluation.cache`; ``--cache PATH``, ``$CFISAC_CACHE``,
default
``runs/cache/decisions.sqlite``; ``--no-cache``): a second run on the same drops solves nothing
and reports the original solve times.

Writes ``runs/<date>-compare-<scenario>-N<users>/``: ``config.json``, ``drops.csv`` (per drop),
``summary.json``, ``tradeoff.png`` and ``bars.png``; the folder is created (and checked) before any
work and every file is written atomically. A policy that cannot be built, or fails, is a failed
row; the others are still scored and written. Ctrl-C keeps the policies (and drops) that finished,
records ``interrupted: true`` and exits 130; exit status 2 on a user error (one line), 1 when
every policy failed.
"""

from __future__ import annotations

import argparse
import csv
import io
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
from cfisac_env.runs import (  # noqa: E402
    atomic_path,
    json_safe,
    provenance,
    run_dir,
    write_json,
    write_text,
)
from policies.evaluation.evaluate import Drops, PolicyRun, evaluate, summary  # noqa: E402
from policies.evaluation.stats import pm  # noqa: E402
from policies.learned.roles import ROLES  # noqa: E402
from policies.registry import BUILTINS  # noqa: E402
from runners import _cli  # noqa: E402

DEFAULT_POLICIES = BUILTINS
REFERENCE = "cvx"
LEARNED = tuple(ROLES)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "compare")
    _cli.add_common(p, scenario="pos2", threads=1)
    p.add_argument("--policy", action="append", default=None, metavar="SPEC",
                   help="registered name, module:Class or file.py:Class (repeatable; "
                        "default: every built-in)")
    p.add_argument("--drops", type=_cli.positive_int, default=200,
                   help="drops for the fast policies")
    p.add_argument("--heavy-drops", type=_cli.positive_int, default=24,
                   help="drops (the first ones) for heavy solvers such as cvx")
    p.add_argument("--device", type=_cli.device_type, default="cpu",
                   help="torch device for learned policies")
    p.add_argument("--jobs", type=_cli.positive_int, default=None,
                   help="worker processes for heavy solvers (default: all cores)")
    p.add_argument("--frontier", action="store_true",
                   help="add each policy's frontier efficiency: mean SSNR / the best SSNR a "
                        "central design reaches at its own min-SINR (one joint SDP per drop, "
                        "on the heavy drops)")
    p.add_argument("--train", action="store_true",
                   help="train a missing seed-scheme checkpoint with the cpu preset (minutes) "
                        "instead of skipping that policy with one line")
    p.add_argument("--no-train", dest="train", action="store_false",
                   help="skip learned policies without a checkpoint (the default)")
    add_cache_flags(p)
    return p.parse_args(argv)


def add_cache_flags(p: argparse.ArgumentParser) -> None:
    """``--cache PATH`` / ``--no-cache``: the decision cache of heavy solvers."""
    from policies.evaluation.cache import DEFAULT_PATH, ENV

    g = p.add_mutually_exclusive_group()
    g.add_argument("--cache", type=Path, default=None, metavar="PATH",
                   help=f"decision cache of heavy solvers (cvx, ns-opt, cb-opt): a drop solved "
                        f"once is never solved again (default ${ENV} or {DEFAULT_PATH})")
    g.add_argument("--no-cache", action="store_true", help="solve every drop, cache nothing")


def open_cache(args: argparse.Namespace) -> Any:
    """The :class:`policies.evaluation.cache.DecisionCache` the flags name (None: no cache)."""
    from policies.evaluation.cache import DecisionCache

    if args.no_cache:
        return None
    return DecisionCache.open(args.cache if args.cache is not None else "default")


def learned_options(spec: str, scenario: scenarios.Scenario, device: str, train: bool,
                    log: list[str]) -> dict[str, Any] | None:
    """Options for a learned policy: its checkpoint (shipped or cached, see
    :mod:`policies.learned.checkpoints`), else (unless ``train`` is False) one trained now with the
    ``cpu`` preset into the cache. None = skip the policy."""
    from policies.learned import checkpoints as store
    from policies.learned.training import resolve

    options: dict[str, Any] = {"device": device}
    try:
        policies.make(spec, scenario.system, scenario=scenario.name, **options)
        return options
    except store.CheckpointError as e:
        if not train:
            log.append(f"skipped {spec}: {e}")
            return None
    print(f"no checkpoint for {spec} on {scenario.name} N={scenario.system.N}: training one "
          "with the cpu preset (cached under runs/cache/checkpoints)", file=sys.stderr)
    system = {f"system.{k}": v for k, v in scenario.config["system"].items() if k != "users"}
    path = resolve(spec, scenario.system, scenario.name, train_missing=True, log=log,
                   overrides=system, device=device)
    return {**options, "checkpoint": str(path)}


def run_all(specs: list[str], scenario: scenarios.Scenario, drops: Drops, args: argparse.Namespace,
            log: list[str], cache: Any = None) -> tuple[dict[str, PolicyRun | str], bool]:
    """Evaluate each policy; a policy that cannot be built (any exception, e.g. a broken
    checkpoint) or fails as a whole is recorded as its one-line error message.

    Returns:
        ``({spec: run or error}, interrupted)``; on Ctrl-C the policies (and the drops of the
        current policy) that finished are kept and ``interrupted`` is True.
    """
    runs: dict[str, PolicyRun | str] = {}
    heavy_index = np.arange(min(args.heavy_drops, len(drops)))
    for spec in sorted(specs, key=lambda s: s != REFERENCE):   # the reference first
        try:
            options: dict[str, Any] | None = {}
            if spec in LEARNED:
                options = learned_options(spec, scenario, args.device, args.train, log)
                if options is None:
                    continue
            heavy = bool(getattr(policies.resolve(spec), "heavy", False))
            run = evaluate(spec, scenario, drops, heavy_index if heavy else None, jobs=args.jobs,
                           progress=not args.quiet, cache=cache, **options)
        except KeyboardInterrupt:
            log.append(f"interrupted during {spec}; keeping the finished policies")
            return runs, True
        except Exception as e:  # a broken policy is a row in the table, not a crash
            runs[spec] = _cli.one_line(f"{type(e).__name__}: {e}")
            continue
        runs[spec] = run
        if run.interrupted:
            log.append(f"interrupted during {spec}; kept its {len(run.index)} finished drops")
            return runs, True
    return runs, False


def add_frontier(rows: list[dict[str, Any]], runs: dict[str, PolicyRun], drops: Drops,
                 scenario: scenarios.Scenario, heavy_drops: int, progress: bool) -> None:
    """Add ``frontier_efficiency`` (and ``frontier_drops``) to each row, on the policy's drops
    among the first ``heavy_drops`` (see :mod:`policies.convex.frontier`)."""
    from policies.convex.frontier import frontier_ssnr

    for row in rows:
        run = runs[row["policy"]]
        keep = (run.index < heavy_drops) & np.isfinite(run.min_sinr)
        fs = frontier_ssnr(drops.truth[run.index[keep]], run.min_sinr[keep], scenario.system,
                           progress=progress)
        ok = np.isfinite(fs)
        row["frontier_drops"] = int(ok.sum())
        row["frontier_efficiency"] = float(run.ssnr[keep][ok].mean() / fs[ok].mean()) \
            if ok.any() else float("nan")


def fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:.3g}"


def fmt_ci(x: float | None, ci: list[float] | None) -> str:
    """``mean ±half-width`` of a 95 % interval (``-`` when missing)."""
    if x is None:
        return "-"
    lo, hi = ci if ci else (float("nan"), float("nan"))
    return pm(x, lo, hi)


def table(rows: list[dict[str, Any]], failed: dict[str, str]) -> str:
    """The aligned terminal table."""
    head = ["policy", "drops", "SSNR mean ±95%", "med", "p5", "minSINR mean ±95%", "med", "p5",
            "SSNR x cvx", "SINR x cvx", ">=gamma", "time ms (med)", "p95", "timed as",
            "speed-up", "fronthaul", "fallback", "over-P", "errors"]
    frontier = any("frontier_efficiency" in r for r in rows)
    if frontier:
        head.insert(10, "frontier")
    body = []
    for r in rows:
        body.append([r["policy"], str(r["drops"]), fmt_ci(r["ssnr"]["mean"], r["ssnr"]["ci"]),
                     fmt(r["ssnr"]["median"]), fmt(r["ssnr"]["p5"]),
                     fmt_ci(r["min_sinr"]["mean"], r["min_sinr"]["ci"]),
                     fmt(r["min_sinr"]["median"]), fmt(r["min_sinr"]["p5"]),
                     fmt_ci(r.get("ssnr_vs_ref"), r.get("ssnr_vs_ref_ci")),
                     fmt_ci(r.get("min_sinr_vs_ref"), r.get("min_sinr_vs_ref_ci")),
                     fmt(r.get("reach_gamma"), 2), fmt(r["time_ms"]["median"]),
                     fmt(r["time_ms"]["p95"]), r["timing"], fmt(r.get("speedup")),
                     str(r["fronthaul"]), str(r["fallbacks"]), str(r["over_budget"]),
                     str(r["errors"])])
        if frontier:
            body[-1].insert(10, fmt(r.get("frontier_efficiency")))
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
                  failed: dict[str, str], log: list[str], interrupted: bool = False) -> list[str]:
    """Write the run folder (each file atomically; the plots only when a policy scored);
    returns the names of the files written."""
    config = {"args": json_safe(vars(args)), "scenario": scenario.name,
              "config": scenario.config, "system": scenario.system.to_dict(),
              "provenance": provenance()}
    write_json(out / "config.json", config)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["policy", "drop", "ssnr", "min_sinr", "seconds", "fallback", "over_budget",
                "gamma_high", "cached"])
    for name, r in runs.items():
        cached = r.cached if r.cached is not None else np.zeros(len(r.index), bool)
        for j in range(len(r.index)):
            w.writerow([name, int(r.index[j]), r.ssnr[j], r.min_sinr[j], r.seconds[j],
                        int(r.fallback[j]), int(r.over_budget[j]), r.gamma_high[j],
                        int(cached[j])])
    write_text(out / "drops.csv", buf.getvalue())
    errors = {name: r.errors for name, r in runs.items() if r.errors}
    write_json(out / "summary.json", {"interrupted": interrupted, "policies": rows,
                                      "failed": failed, "errors": errors, "notes": log})
    written = ["config.json", "drops.csv", "summary.json"]
    if runs:
        title = f"{scenario.name}, N = {scenario.system.N}"
        with atomic_path(out / "tradeoff.png") as tmp:
            plot_tradeoff(runs, tmp, title)
        with atomic_path(out / "bars.png") as tmp:
            plot_bars(rows, tmp, title)
        written += ["tradeoff.png", "bars.png"]
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return _cli.run(lambda: compare(parse_args(argv)), "compare")


def compare(args: argparse.Namespace) -> int:
    """The whole run for parsed ``args``: check, create the run folder, score, write."""
    scenario = _cli.load_scenario(args)
    specs = list(dict.fromkeys(args.policy or DEFAULT_POLICIES))
    for spec in specs:
        policies.resolve(spec)
    cache = open_cache(args)
    out = run_dir(f"compare-{scenario.name}-N{scenario.system.N}", args.out)
    _cli.set_threads(args.threads)
    t0 = time.perf_counter()
    log: list[str] = []
    results: dict[str, PolicyRun | str] = {}
    try:
        drops = Drops.sample(scenario, args.drops, args.seed)
        results, interrupted = run_all(specs, scenario, drops, args, log, cache)
    except KeyboardInterrupt:
        interrupted = True
        log.append("interrupted before any policy finished")
    runs = {k: v for k, v in results.items() if isinstance(v, PolicyRun) and len(v.index)}
    failed = {k: v for k, v in results.items() if isinstance(v, str)}
    ref = runs.get(REFERENCE)
    rows = [summary(r, ref) for r in runs.values()]
    if args.frontier and not interrupted:
        add_frontier(rows, runs, drops, scenario, args.heavy_drops, not args.quiet)
    print(f"\n{scenario.name}: N = {scenario.system.N} UEs, L = {scenario.system.L} APs x "
          f"M = {scenario.system.M} antennas; {args.drops} drops (seed {args.seed}), heavy "
          f"solvers on the first {min(args.heavy_drops, args.drops)}")
    print(table(rows, failed))
    print("±95%: half-width of the 95% t-interval of the mean; x cvx: ratio of means on the drops "
          "cvx solved, paired per drop (±95% delta-method interval); >=gamma: share of those "
          "drops with min-SINR >= cvx gamma_high (1% tolerance); timed as: what a deployment "
          "waits for")
    if cache is not None and cache.hits + cache.stored:
        log.append(f"decision cache {cache.path}: {cache.hits} drops reused, {cache.stored} "
                   "solved and stored (times are those of the original solves)")
    for line in log:
        print(f"note: {line}")
    for name, r in runs.items():
        for e in r.errors[:3]:
            print(f"error: {name}: {e}")
    files = write_outputs(out, args, scenario, runs, rows, failed, log, interrupted)
    print(f"wrote {out}/ ({', '.join(files)}) in {time.perf_counter() - t0:.0f} s")
    if interrupted:
        print("interrupted: kept the policies and drops that finished", file=sys.stderr)
    elif failed and not runs:
        print("error: compare: every policy failed (see the FAILED rows)", file=sys.stderr)
    return _cli.outcome(len(runs), len(failed), interrupted)


if __name__ == "__main__":
    sys.exit(main())
