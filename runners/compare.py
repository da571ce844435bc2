"""Score every beamforming policy on one scenario: the main job of cfisac.

    python runners/compare.py --scenario pos2 --users 8
    python runners/compare.py --scenario pos1 --users 5 --policy cvx --policy student \\
        --policy examples/power_split_mrt.py:PowerSplitMRT --drops 500 --seed 1
    python runners/compare.py --policy student \\
        --policy student@checkpoint=runs/x/student.pt@label=retrained

Policies are policy specs, the same in every runner: ``NAME | module:Class | file.py:Class``
with optional ``@key=value,...`` options and ``@label=ROW`` (the row name). The engine is
:func:`policies.evaluation.evaluate.compare_policies`.

Every policy acts on the same seeded drops (identical CSI). Per policy: mean (with its 95 %
Student-t interval) / median / 5th percentile of SSNR and min-SINR, the share of drops whose
min-SINR reaches the ``cvx`` gamma_high, compute time per decision (distributed policies: the
slowest AP's own time; central ones: the whole solve), speed-up vs ``cvx``, fronthaul per
decision and failure counts. Heavy solvers
(``cvx``, ``ns-opt``, ``cb-opt``) run on the first ``--heavy-drops`` drops in a process pool; the
head-to-head columns (``x cvx``) compare every policy with ``cvx`` on exactly those drops, paired
per drop, with 95 % intervals (:mod:`policies.evaluation.stats`). Heavy solvers' decisions are kept
in a content-addressed cache (:mod:`policies.evaluation.cache`; ``--cache PATH``,
``$CFISAC_CACHE``, default ``runs/cache/decisions.sqlite``; ``--no-cache``): a second run on
the same drops solves nothing and reports the original solve times.

Writes ``runs/<date>-compare-<scenario>-N<users>/``: ``config.json`` (with the checkpoint file,
path and SHA-256, every learned policy loaded), ``drops.csv`` (per drop),
``summary.json``, ``tradeoff.png`` and ``bars.png``; the folder is created (and checked) before any
work and every file is written atomically. A user error in a policy spec (an unknown policy, a
bad option, a ``@checkpoint=`` file that does not exist, is not a checkpoint or was made for another
system, an unknown ``@scenario=``) is found before any work. Otherwise a policy that cannot be
built, or fails, is a failed row (its whole message below the table); the others are still scored
and written. Ctrl-C keeps the policies (and drops) that finished, records ``interrupted: true``
and exits 130; exit status 2 on a user error (one line), 1 when no policy has a finite result.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.patches import Patch

import scenarios
from cfisac_env.physics.validation import check_memory
from cfisac_env.runs import json_safe, provenance, run_dir, write_json, write_text
from policies.evaluation.evaluate import (
    Comparison,
    PolicyRun,
    check_specs,
    compare_policies,
    parse_specs,
)
from policies.evaluation.stats import pm
from policies.registry import BUILTINS
from runners import _cli, _echo, _plot
from runners._plot import plt, save
from runners._report import csv_text, fmt, table

#: The series drawn first when ``--series`` leaves some out (the headline comparison).
HEADLINE = ("cvx", "student", "ns-rzf", "mrt-target", "mrt-users", "cb-opt", "sinr-teacher",
            "ssnr-teacher")
DROP_COLUMNS = ["policy", "drop", "ssnr", "min_sinr", "seconds", "fallback", "over_budget",
                "gamma_high", "cached"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "compare")
    _cli.add_common(p, scenario="pos2", threads=1)
    p.add_argument("--policy", action="append", default=None, metavar="SPEC",
                   help="NAME, module:Class or file.py:Class, options after @ "
                        "(cvx@rho=0.25, student@checkpoint=PATH@label=NAME; repeatable; "
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
    p.add_argument("--wide", action="store_true",
                   help="print every column (means with 95 %% intervals, >=gamma, p95 time, "
                        "fronthaul, fallbacks...); the default table keeps the essential ones "
                        "within 100 columns (summary.json has them all)")
    _cli.add_cache_flags(p)
    _cli.add_figure_flags(p)
    _echo.add_flag(p)
    args = p.parse_args(argv)
    _echo.apply_flag(args)
    return args


def fmt_ci(x: float | None, ci: list[float] | None) -> str:
    """``mean ±half-width`` of a 95 % interval (``-`` when missing)."""
    if x is None:
        return "-"
    lo, hi = ci if ci else (float("nan"), float("nan"))
    return pm(x, lo, hi)


def compact_table(rows: list[dict[str, Any]], failed: dict[str, str]) -> str:
    """The default terminal table (within 100 columns for the built-ins): per policy the
    drops, median and 5th percentile of SSNR and min-SINR, the paired ratios to ``cvx``, the
    median compute time and the speed-up; then the failed ones. A last line names the policies
    with fallbacks, over-budget beams or errors (``--wide`` shows their counts)."""
    head = ["policy", "drops", "SSNR", "p5", "minSINR", "p5", "SSNR x cvx", "SINR x cvx",
            "ms/dec", "speed-up"]

    def fixed(x: float | None) -> str:
        return "-" if x is None or not np.isfinite(x) else (
            f"{x:.3f}" if abs(x) < 10 else f"{x:.4g}")

    def ratio(m: float | None, ci: list[float] | None) -> str:
        if m is None or not np.isfinite(m):
            return "-"
        return f"{m:.2f}" + (f"±{(ci[1] - ci[0]) / 2:.2f}" if ci and np.isfinite(ci).all()
                             else "")

    def speed(x: float | None) -> str:
        return "-" if x is None or not np.isfinite(x) else (
            f"{x:.2g}" if x < 10 else f"{x:,.0f}")

    body = [[r["policy"], r["drops"], fixed(r["ssnr"]["median"]), fixed(r["ssnr"]["p5"]),
             fixed(r["min_sinr"]["median"]), fixed(r["min_sinr"]["p5"]),
             ratio(r.get("ssnr_vs_ref"), r.get("ssnr_vs_ref_ci")),
             ratio(r.get("min_sinr_vs_ref"), r.get("min_sinr_vs_ref_ci")),
             fmt(r["time_ms"]["median"]) + ("" if r["distributed"] else "*"),
             speed(r.get("speedup"))] for r in rows]
    body += [[name, "0", "FAILED"] + ["-"] * (len(head) - 3) for name in failed]
    text = table(head, body) + failure_lines(failed)
    kinds = (("fallbacks", "fallback"), ("over_budget", "over-P"), ("errors", "errors"))
    flagged = [f"{r['policy']} ({', '.join(f'{r[k]} {w}' for k, w in kinds if r[k])})"
               for r in rows if any(r[k] for k, _ in kinds)]
    return text + ("\nflagged: " + "; ".join(flagged) if flagged else "")


def summary_table(rows: list[dict[str, Any]], failed: dict[str, str]) -> str:
    """The ``--wide`` terminal table: every column, one row per policy, then the failed
    ones."""
    head = ["policy", "drops", "SSNR mean ±95%", "med", "p5", "minSINR mean ±95%", "med", "p5",
            "SSNR x cvx", "SINR x cvx", ">=gamma", "time ms (med)", "p95", "timed as",
            "speed-up", "fronthaul", "fallback", "over-P", "errors"]
    frontier = any("frontier_efficiency" in r for r in rows)
    if frontier:
        head.insert(10, "frontier")
    echo = any("sensing" in r for r in rows)
    if echo:
        head[-4:-4] = _echo.COMPARE_HEAD
    body = []
    for r in rows:
        body.append([r["policy"], r["drops"], fmt_ci(r["ssnr"]["mean"], r["ssnr"]["ci"]),
                     fmt(r["ssnr"]["median"]), fmt(r["ssnr"]["p5"]),
                     fmt_ci(r["min_sinr"]["mean"], r["min_sinr"]["ci"]),
                     fmt(r["min_sinr"]["median"]), fmt(r["min_sinr"]["p5"]),
                     fmt_ci(r.get("ssnr_vs_ref"), r.get("ssnr_vs_ref_ci")),
                     fmt_ci(r.get("min_sinr_vs_ref"), r.get("min_sinr_vs_ref_ci")),
                     fmt(r.get("reach_gamma"), 2), fmt(r["time_ms"]["median"]),
                     fmt(r["time_ms"]["p95"]), r["timing"], fmt(r.get("speedup")),
                     r["fronthaul"], r["fallbacks"], r["over_budget"], r["errors"]])
        if frontier:
            body[-1].insert(10, fmt(r.get("frontier_efficiency")))
        if echo:
            body[-1][-4:-4] = _echo.compare_cells(r.get("sensing"), fmt)
    for name in failed:
        body.append([name, "0"] + ["-"] * (len(head) - 3) + ["FAILED (below)"])
    return table(head, body) + failure_lines(failed)


def failure_lines(failed: dict[str, str], width: int = 100) -> str:
    """``FAILED <row>: <message>`` per failed policy, the whole message wrapped at ``width``
    columns (a word is only split when it alone is wider), each line after a newline."""
    return "".join("\n" + textwrap.fill(f"FAILED {name}: {err}", width, subsequent_indent="    ",
                                         break_on_hyphens=False)
                   for name, err in failed.items())


def plot_tradeoff(runs: dict[str, PolicyRun], path: Path, title: str, reference: str | None
                  ) -> None:
    """SSNR vs min-SINR per drop, each policy's mean as a large marker (the reference: a star);
    the legend names the subsets (``cvx (24 drops)``); at most ``--series`` policies."""
    scored = {n: r for n, r in runs.items() if np.isfinite(r.ssnr).any()}
    most = max((len(r.index) for r in scored.values()), default=0)
    shown, left_out = _plot.limit(list(scored), keep=[reference or "", *HEADLINE])
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    means = {n: (_plot.to_axis(np.nanmean(scored[n].min_sinr)),
                 _plot.to_axis(np.nanmean(scored[n].ssnr))) for n in shown}
    xs, ys = np.array(list(means.values()), float).T if means else (np.zeros(1), np.zeros(1))
    sx, sy = (np.ptp(xs) or 1.0), (np.ptp(ys) or 1.0)
    for k, name in enumerate(shown):
        r = scored[name]
        c, ref = _plot.palette(k), name == reference
        ax.scatter(_plot.to_axis(r.min_sinr), _plot.to_axis(r.ssnr), s=7, alpha=0.25, color=c,
                   marker=_plot.marker(k), lw=0)
        x, y = means[name]
        # a mean on top of an earlier one: larger and hollow, so both stay visible
        under = sum(abs(x - means[m][0]) < 0.03 * sx and abs(y - means[m][1]) < 0.03 * sy
                    for m in shown[:k])
        ax.scatter(x, y, s=(260 if ref else 80) * (1 + 1.5 * under),
                   marker="*" if ref else _plot.marker(k), color="none" if under else c,
                   edgecolor=c if under else "k", lw=1.6 if under else 1.0,
                   label=_plot.drops_label(name, len(r.index), most), zorder=5 - under)
    ax.set(xlabel=_plot.axis_label("min-SINR"), ylabel=_plot.axis_label("SSNR"),
           title=f"{title}: every drop (dots) and the mean (large marker)")
    if shown:
        ax.legend(loc="best", ncol=2 if len(shown) > 5 else 1)
    _plot.note_left_out(ax, left_out)
    save(fig, path)


def plot_bars(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Mean SSNR and min-SINR per policy with 95 % intervals, and the median compute time on a
    log axis (seed Fig. 16); tick labels name the subsets (``cvx`` on its 24 drops)."""
    rows = [r for r in rows if r["drops"]]
    shown, left_out = _plot.limit([r["policy"] for r in rows], keep=HEADLINE)
    rows = [r for r in rows if r["policy"] in shown]
    most = max(r["drops"] for r in rows)
    names = [_plot.drops_label(r["policy"], r["drops"], most).replace(" (", "\n(")
             for r in rows]
    x = np.arange(len(names))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(7, 0.75 * len(names)), 6.5), sharex=True)
    for off, key, label, c in ((-0.2, "ssnr", "SSNR", _plot.palette(0)),
                               (0.2, "min_sinr", "min-SINR", _plot.palette(1))):
        mean = np.array([r[key]["mean"] for r in rows], float)
        ci = np.array([r[key]["ci"] or [np.nan, np.nan] for r in rows], float)
        y, lo, hi = _plot.to_axis(mean), _plot.to_axis(ci[:, 0]), _plot.to_axis(ci[:, 1])
        err = np.nan_to_num(np.abs(np.stack([y - lo, hi - y])))
        ax1.bar(x + off, y, 0.4, color=c, label=label, yerr=err, capsize=3,
                error_kw={"lw": 0.9})
    ax1.set(ylabel=f"mean, 95 % interval ({'dB' if _plot.OPTIONS.db else 'linear'})",
            title=f"{title}: mean over each policy's drops")
    ax1.legend()
    times = [r["time_ms"]["median"] for r in rows]
    colors = [_plot.palette(2) if r["distributed"] else _plot.palette(3) for r in rows]
    ax2.bar(x, times, color=colors)
    ax2.set_yscale("log")
    ax2.set(ylabel="compute time per decision\n(ms, median)")
    ax2.grid(axis="y", which="both")
    ax2.legend(handles=[Patch(color=_plot.palette(2), label="distributed (slowest AP)"),
                        Patch(color=_plot.palette(3), label="central (whole solve)")])
    ax2.set_xticks(x, names, rotation=30, ha="right")
    _plot.note_left_out(ax2, left_out)
    save(fig, path)


def drop_rows(runs: dict[str, PolicyRun]) -> list[list[Any]]:
    """``drops.csv``: one row per policy and drop (:data:`DROP_COLUMNS`, then in echo mode
    :data:`runners._echo.DROP_COLUMNS`)."""
    echo = any(r.sensing is not None for r in runs.values())
    out = []
    for name, r in runs.items():
        cached = r.cached if r.cached is not None else np.zeros(len(r.index), bool)
        for j in range(len(r.index)):
            out.append([name, int(r.index[j]), r.ssnr[j], r.min_sinr[j], r.seconds[j],
                        int(r.fallback[j]), int(r.over_budget[j]), r.gamma_high[j],
                        int(cached[j]), *(_echo.drop_cells(r.sensing, j) if echo else ())])
    return out


def write_outputs(out: Path, args: argparse.Namespace, scenario: scenarios.Scenario,
                  res: Comparison, reference: str | None) -> list[str]:
    """Write the run folder (each file atomically; the plots only when a policy scored);
    returns the names of the files written."""
    config = {"args": json_safe(vars(args)), "scenario": scenario.name,
              "config": scenario.config, "system": scenario.system.to_dict(),
              "checkpoints": res.checkpoints, "provenance": provenance()}
    write_json(out / "config.json", config)
    echo = any(r.sensing is not None for r in res.runs.values())
    write_text(out / "drops.csv", csv_text(drop_rows(res.runs), DROP_COLUMNS + (
        list(_echo.DROP_COLUMNS) if echo else [])))
    errors = {name: r.errors for name, r in res.runs.items() if r.errors}
    write_json(out / "summary.json", {"interrupted": res.interrupted, "policies": res.rows,
                                      "failed": res.failed, "errors": errors, "notes": res.log})
    written = ["config.json", "drops.csv", "summary.json"]
    if res.runs:
        title = f"{scenario.name}, N = {scenario.system.N}"
        plot_tradeoff(res.runs, out / "tradeoff.png", title, reference)
        plot_bars(res.rows, out / "bars.png", title)
        written += ["tradeoff.png", "bars.png"]
    return written


@_cli.entry("compare")
def main(argv: list[str] | None = None) -> int:
    """Check, create the run folder, score every policy, print and write; returns the exit
    status (see :mod:`runners._cli`)."""
    args = parse_args(argv)
    scenario = _cli.load_scenario(args)
    specs = parse_specs(args.policy or BUILTINS)
    check_specs(specs, scenario)
    check_memory([(scenario.system, scenario.config, args.drops)])
    cache = _cli.open_cache(args)
    out = run_dir(f"compare-{scenario.name}-N{scenario.system.N}", args.out)
    _cli.set_threads(args.threads)
    t0 = time.perf_counter()
    res = compare_policies(specs, scenario, args.drops, args.seed, args.heavy_drops,
                           jobs=args.jobs, device=args.device, train=args.train,
                           frontier=args.frontier, cache=cache, progress=not args.quiet)
    reference = next(iter(res.runs), None) if any(s.target == "cvx" for s in specs) else None
    print(f"\n{scenario.name}: N = {scenario.system.N} UEs, L = {scenario.system.L} APs x "
          f"M = {scenario.system.M} antennas; {args.drops} drops (seed {args.seed}), heavy "
          f"solvers on the first {min(args.heavy_drops, args.drops)}")
    if args.wide:
        print(summary_table(res.rows, res.failed))
        print("±95%: half-width of the 95% t-interval of the mean; x cvx: ratio of means on the "
              "drops cvx solved, paired per drop (±95% delta-method interval); >=gamma: share "
              "of those drops with min-SINR >= cvx gamma_high (1% tolerance); timed as: what a "
              "deployment waits for")
    else:
        print(compact_table(res.rows, res.failed))
        print(textwrap.fill(
            "SSNR, minSINR: median over drops (linear), p5: 5th percentile; x cvx: ratio of means "
            "on "
            "the drops cvx solved, paired per drop, ±95% interval; ms/dec: median compute time "
            "per decision, the slowest AP's (* central: the whole solve). --wide: every "
            "column; summary.json and drops.csv keep them all.", 100))
    if any("sensing" in r for r in res.rows):
        print(_echo.COMPARE_NOTE)
    for line in res.log:
        print(textwrap.fill(f"note: {line}", 100, subsequent_indent="      ",
                            break_on_hyphens=False))
    for name, r in res.runs.items():
        for e in r.errors[:3]:
            print(f"error: {name}: {e}")
    files = write_outputs(out, args, scenario, res, reference)
    files += [p.name for p in _plot.OPTIONS.written if p.suffix != ".png"]
    print(f"wrote {out}/ ({', '.join(files)}) in {time.perf_counter() - t0:.0f} s")
    if res.interrupted:
        print("interrupted: kept the policies and drops that finished", file=sys.stderr)
    elif not res.scored:
        print("error: compare: no policy has a finite result (see the FAILED rows and errors)",
              file=sys.stderr)
    return _cli.outcome(res.scored, len(res.failed) + len(res.runs) - res.scored,
                        res.interrupted)


if __name__ == "__main__":
    sys.exit(main())
