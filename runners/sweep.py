"""Sweep a grid of scenarios x N x policies (x options x seeds) on shared seeded drops.

    python runners/sweep.py --scenario pos2 --users 2 5 8 --policy cvx --policy student \\
        --policy ns-rzf --drops 100 --engine ray --out runs/fig16
    python runners/sweep.py sweeps/paper-fig16.toml            # the seed paper's Fig. 16
    python runners/sweep.py sweeps/tradeoff.toml               # trade-off plane + CVX frontier

Every cell (scenario, N, policy, options) is scored on the same drops per (scenario, N, seed),
drawn and scored exactly as ``runners/compare.py`` does (same seed, same numbers). Heavy solvers
are scored on the first ``--heavy-drops`` drops (default: all). Policies are policy specs, as in
every runner: ``NAME | module:Class | file.py:Class`` with ``@KEY=VALUE,...`` options
(``--policy cvx@rho=0.25``) and ``@label=ROW``; a sweep file may give lists
(``rho = [0.25, 0.5, 0.75]``). The engine is :func:`policies.evaluation.sweep.run`.

Engines: ``--engine local`` (default; ``--jobs`` worker processes, 1 = this process) or
``--engine ray`` (``--address auto|HOST:PORT`` joins a running cluster, none starts a local
instance with ``--jobs`` CPUs). Tasks are chunks of drops of one cell sized to take about
``--task-seconds``; each worker runs ``--threads`` torch/BLAS threads.

The run folder (``--out DIR``; default ``runs/<date>-sweep-<name>/``) holds ``results.sqlite``
(the result store, written a chunk at a time), ``results.csv`` (one row per policy x drop:
``scenario, users, policy, options, seed, drop, ssnr, min_sinr, seconds, timing, fallback,
over_budget, error`` and ``gamma_high, cached, sample, cell``), ``summary.csv`` /
``summary.json`` (per cell: means with 95 % t-intervals, medians, time per decision, paired
ratios to ``cvx`` with intervals), ``config.json`` and the figures: ``fig16a-<scenario>.png``
(SSNR and min-SINR vs N), ``fig16b-<scenario>.png`` (compute time vs N) and
``tradeoff-<scenario>-N<n>.png`` (mean points and, with ``--frontier-drops``, the CVX frontier).
Rerunning with the same ``--out`` skips the drops already stored (not those that errored, nor
those of a policy whose code changed); heavy solvers' decisions come
from the decision cache (``--cache``, ``--no-cache``). Ctrl-C keeps every finished chunk, writes
the tables and exits 130. A user error exits 2 with one line before the run folder exists: a bad
flag or sweep-file value, an unknown scenario or policy, a bad policy option, a ``@checkpoint=``
file that does not exist, is not a checkpoint or fits no scenario of the grid. A cell whose policy
cannot be built otherwise (a checkpoint that fits only some scenarios) is a failed cell, its whole
message in the notes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from cfisac_env.runs import json_safe, run_dir, write_json, write_text
from policies.evaluation import sweep as lib
from policies.evaluation.stats import pm
from policies.evaluation.store import ALL
from runners import _cli, _echo, _plot
from runners._plot import plt, save
from runners._report import csv_text, table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "sweep")
    p.add_argument("file", nargs="?", type=Path, default=None,
                   help="sweep file (TOML); flags given on the command line override it")
    p.add_argument("--scenario", action="append", default=None,
                   help="scenario name or .toml path (repeatable; default pos2)")
    p.add_argument("--users", type=_cli.positive_int, nargs="+", default=None,
                   help="numbers of UEs N (default 8)")
    p.add_argument("--policy", action="append", default=None, metavar="SPEC[@K=V,...]",
                   help="policy (repeatable): registered name, module:Class or file.py:Class, "
                        "options after @ (cvx@rho=0.25), @label=NAME for the row")
    p.add_argument("--seed", type=_cli.seed_type, nargs="+", default=None,
                   help="seeds of the drops (one or more; default 0)")
    p.add_argument("--drops", type=_cli.positive_int, default=None,
                   help="drops per (scenario, N, seed) (default 100)")
    p.add_argument("--heavy-drops", type=_cli.positive_int, default=None,
                   help="heavy solvers (cvx, ...) on the first ones only (default: all)")
    p.add_argument("--engine", choices=lib.ENGINES, default=None,
                   help="local process pool (default) or ray")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join: auto or HOST:PORT (default: start a local one)")
    p.add_argument("--jobs", type=_cli.positive_int, default=None,
                   help="local worker processes / CPUs of a local Ray instance (default: all "
                        "cores; 1: serial in this process)")
    p.add_argument("--task-seconds", type=_cli.positive_float, default=None,
                   help="target duration of one task (chunk of drops), s (default 2)")
    p.add_argument("--chunk", type=_cli.positive_int, default=None,
                   help="drops per task (overrides --task-seconds)")
    p.add_argument("--frontier-drops", type=_cli.nonnegative_int, default=None,
                   help="drops (the first ones) on which the CVX frontier of the trade-off "
                        "figures is solved (default 0: no frontier)")
    p.add_argument("--frontier-points", type=_cli.int_in(2, 200), default=None,
                   help="SINR targets of the frontier (default 9)")
    p.add_argument("--name", default=None, help="name of the run folder (default from the grid)")
    _cli.add_cache_flags(p)
    _cli.add_common(p, skip=("scenario", "users", "seed"), threads=1)
    _cli.add_figure_flags(p)
    _echo.add_flag(p)
    args = p.parse_args(argv)
    _echo.apply_flag(args)
    return args


# ---- figures ----------------------------------------------------------------------------------

def _series(summary: list[dict[str, Any]], scenario: str) -> dict[str, list[dict[str, Any]]]:
    by: dict[str, list[dict[str, Any]]] = {}
    for r in summary:
        if r["scenario"] == scenario and r["drops"] and r["seed"] == summary[0]["seed"]:
            by.setdefault(r["policy"], []).append(r)
    return {k: sorted(v, key=lambda r: r["users"]) for k, v in by.items()}


def _colors(names: list[str]) -> dict[str, Any]:
    """One colour per policy drawn (at most eight: no two alike): ``cvx`` and ``student`` the
    two strongest, the others by sorted name."""
    order = [n for n in ("cvx", "student") if n in names] + sorted(
        n for n in names if n not in ("cvx", "student"))
    return {n: _plot.palette(i) for i, n in enumerate(order)}


def _limit(series: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """At most ``--series`` policies (``cvx`` and ``student`` kept first)."""
    shown, left_out = _plot.limit(list(series), keep=["cvx", "student"])
    return {n: series[n] for n in shown}, left_out


def plot_fig16a(summary: list[dict[str, Any]], scenario: str, path: Path) -> None:
    """Seed Fig. 16a: mean SSNR and min-SINR vs N per policy, 95 % intervals as error bars."""
    series = _series(summary, scenario)
    series, left_out = _limit(series)
    colors = _colors(list(series))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, m, label in zip(axes, ("ssnr", "min_sinr"), ("SSNR", "min-SINR"), strict=True):
        for name, rs in series.items():
            x = [r["users"] for r in rs]
            y = _plot.to_axis([r[f"{m}_mean"] for r in rs])
            lo = _plot.to_axis([r[f"{m}_lo"] for r in rs])
            hi = _plot.to_axis([r[f"{m}_hi"] for r in rs])
            drops = sorted({r["drops"] for r in rs})
            ax.errorbar(x, y, yerr=np.nan_to_num(np.abs([y - lo, hi - y])), fmt="o",
                        capsize=4, color=colors[name],
                        label=f"{name} ({'/'.join(map(str, drops))} drops)",
                        ls="--" if rs[0]["timing"] == "central" else "-")
        ax.set(xlabel="number of UEs N", ylabel=f"mean {_plot.axis_label(label)}")
        ax.set_xticks(sorted({r["users"] for r in summary}))
    axes[0].legend()
    fig.suptitle(f"{scenario}: mean with 95 % confidence interval, seed "
                 f"{summary[0]['seed']} (dashed: central policies)", fontsize=9.5)
    _plot.note_left_out(axes[0], left_out)
    _note_failed(axes[1], summary, scenario)
    save(fig, path)


def _note_failed(ax: Any, summary: list[dict[str, Any]], scenario: str) -> None:
    """A footnote naming the cells that failed (a policy without a checkpoint at that N)."""
    failed = [f"{r['policy']} at N = {r['users']}" for r in summary
              if r["scenario"] == scenario and r["failed"]]
    if failed:
        ax.text(1.0, -0.02, f"not scored (see the run's notes): {', '.join(failed)}",
                transform=ax.figure.transFigure, fontsize=7, va="top", ha="right", color="0.3")


def plot_fig16b(summary: list[dict[str, Any]], scenario: str, path: Path) -> None:
    """Seed Fig. 16b: compute time per decision vs N (median, p95 as the bar's top)."""
    series = _series(summary, scenario)
    series, left_out = _limit(series)
    colors = _colors(list(series))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, rs in series.items():
        x = [r["users"] for r in rs]
        med = np.array([r["time_ms_median"] for r in rs])
        p95 = np.array([r["time_ms_p95"] for r in rs])
        central = rs[0]["timing"] == "central"
        ax.errorbar(x, med, yerr=[np.zeros_like(med), np.nan_to_num(p95 - med)], capsize=4,
                    fmt="--s" if central else "-o", color=colors[name],
                    label=f"{name} ({rs[0]['timing']}, {rs[0]['drops']} drops)")
    ax.set_yscale("log")
    ax.set(xlabel="number of UEs N", ylabel="compute time per decision (ms; median, bar to p95)",
           title=f"{scenario}: slowest AP (distributed) vs whole solve (central)")
    ax.set_xticks(sorted({r["users"] for r in summary}))
    ax.grid(which="both")
    ax.legend()
    _plot.note_left_out(ax, left_out)
    save(fig, path)


def plot_tradeoff(summary: list[dict[str, Any]], scenario: str, users: int,
                  frontier: dict[str, Any] | None, bound: float, path: Path) -> None:
    """Each policy's mean point (95 % intervals on both axes) on the SSNR vs min-SINR plane,
    with the CVX frontier (joint SDP over a gamma sweep, averaged over drops)."""
    rows = [r for r in summary if r["scenario"] == scenario and r["users"] == users
            and r["drops"] and r["seed"] == summary[0]["seed"]]
    shown, left_out = _plot.limit([r["policy"] for r in rows], keep=["cvx", "student"])
    colors = _colors(shown)
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    if frontier is not None:
        g, s = np.asarray(frontier["gamma"], float), np.asarray(frontier["ssnr"], float)
        ax.plot(_plot.to_axis(g), _plot.to_axis(s), "-", color="k", lw=1.5, marker=".",
                label=f"CVX frontier (joint SDP, mean of {frontier['drops']} drops)")
    ax.axhline(_plot.to_axis(bound), color="k", ls=":", lw=0.8, label=f"SSNR bound {bound:g}")
    # a point on top of an earlier one is drawn larger and hollow, so both stay visible
    drawn = [r for r in rows if r["policy"] in shown]
    xs = _plot.to_axis([r["min_sinr_mean"] for r in drawn] + [0.0])
    ys = _plot.to_axis([r["ssnr_mean"] for r in drawn] + [bound])
    sx, sy = (np.nanmax(xs) - np.nanmin(xs)) or 1.0, (np.nanmax(ys) - np.nanmin(ys)) or 1.0
    seen: list[tuple[float, float]] = []
    for k, r in enumerate(drawn):
        x, y = _plot.to_axis(r["min_sinr_mean"]), _plot.to_axis(r["ssnr_mean"])
        xe = np.abs([[x - _plot.to_axis(r["min_sinr_lo"])], [_plot.to_axis(r["min_sinr_hi"]) - x]])
        ye = np.abs([[y - _plot.to_axis(r["ssnr_lo"])], [_plot.to_axis(r["ssnr_hi"]) - y]])
        ref = r["policy"].startswith("cvx")
        hidden = sum(abs(float(x) - a) < 0.03 * sx and abs(float(y) - b) < 0.03 * sy
                     for a, b in seen)
        seen.append((float(x), float(y)))
        ax.errorbar(x, y, xerr=np.nan_to_num(xe), yerr=np.nan_to_num(ye),
                    fmt="*" if ref else _plot.MARKERS[k % len(_plot.MARKERS)],
                    ms=(14 if ref else 8) + 5 * hidden, color=colors[r["policy"]], mec="k",
                    mfc="none" if hidden else colors[r["policy"]], capsize=3,
                    label=f"{r['policy']} ({r['drops']} drops)", zorder=5 - hidden)
    ax.set(xlabel=f"mean {_plot.axis_label('min-SINR')}", ylabel=f"mean {_plot.axis_label('SSNR')}",
           title=f"{scenario}, N = {users}: mean points with 95 % intervals, seed "
                 f"{summary[0]['seed']}")
    ax.legend(loc="best")
    _plot.note_left_out(ax, left_out)
    save(fig, path)


def summary_table(summary: list[dict[str, Any]]) -> str:
    """The terminal table: one row per cell."""
    head = ["scenario", "N", "policy", "drops", "SSNR mean ±95%", "minSINR mean ±95%",
            "SSNR x cvx", "SINR x cvx", "time ms", "timed as", "cached", "fb", "err"]
    body = []
    for r in summary:
        if r["failed"]:
            body.append([r["scenario"], r["users"], r["policy"], "0", "FAILED (see note)"]
                        + ["-"] * (len(head) - 5))
            continue
        body.append([r["scenario"], r["users"], r["policy"], r["drops"],
                     pm(r["ssnr_mean"], r["ssnr_lo"], r["ssnr_hi"]),
                     pm(r["min_sinr_mean"], r["min_sinr_lo"], r["min_sinr_hi"]),
                     pm(r["ssnr_vs_cvx"], r["ssnr_vs_cvx_lo"], r["ssnr_vs_cvx_hi"]),
                     pm(r["min_sinr_vs_cvx"], r["min_sinr_vs_cvx_lo"], r["min_sinr_vs_cvx_hi"]),
                     f"{r['time_ms_median']:.3g}", r["timing"], r["cached"], r["fallbacks"],
                     r["errors"]])
    return table(head, body, left=3)


def plot_all(rep: lib.SweepReport, users: list[int], out: Path) -> list[str]:
    """The figures of every scenario label with a scored cell (the notes name the others);
    returns their file names."""
    files = []
    for sc in dict.fromkeys(c.scenario_label for c in rep.cells):
        if not _series(rep.summary, sc):
            continue
        plot_fig16a(rep.summary, sc, out / f"fig16a-{sc}.png")
        plot_fig16b(rep.summary, sc, out / f"fig16b-{sc}.png")
        files += [f"fig16a-{sc}.png", f"fig16b-{sc}.png"]
        for n in users:
            plot_tradeoff(rep.summary, sc, n, rep.frontier.get((sc, n)), rep.bound,
                          out / f"tradeoff-{sc}-N{n}.png")
            files.append(f"tradeoff-{sc}-N{n}.png")
    return files


@_cli.entry("sweep")
def main(argv: list[str] | None = None) -> int:
    """Check everything, create the run folder, run the grid, write tables and figures;
    returns the exit status (see :mod:`runners._cli`)."""
    args = parse_args(argv)
    cli = {k: getattr(args, k, None) for k in lib.DEFAULTS}
    cli["set"] = args.set
    s = lib.settings(cli, args.file)
    cells = lib.prepare(s)
    cache = _cli.open_cache(args)
    name = s["name"] or "-".join([*s["scenario"], "N" + "-".join(map(str, s["users"]))])
    out = run_dir(f"sweep-{Path(name).stem}", args.out)
    _cli.set_threads(args.threads)
    write_json(out / "config.json", {"args": json_safe(vars(args)), "settings": json_safe(s),
                                     "cells": [c.key for c in cells]})
    t0 = time.perf_counter()
    rep = lib.run(s, cells, out, cache=cache, threads=args.threads, progress=not args.quiet)
    res = rep.outcome
    if rep.resumed:
        print(f"resumed: {rep.resumed} rows were already in {out / 'results.sqlite'}",
              file=sys.stderr)
    write_text(out / "results.csv", csv_text(rep.rows, ALL))
    write_text(out / "summary.csv", csv_text(rep.summary, lib.SUMMARY_COLUMNS))
    timing = {"wall_s": res.seconds, "tasks": res.tasks, "inline_tasks": res.inline,
              "drops_scored": res.rows, "drops_skipped": res.skipped,
              "task_s_median": float(np.median(res.task_seconds)) if res.task_seconds else None,
              "workers": sorted(res.workers), "engine": s["engine"]}
    write_json(out / "summary.json", {"interrupted": res.interrupted, "cells": rep.summary,
                                      "run": timing, "notes": res.log})
    files = ["results.sqlite", "results.csv", "summary.csv", "summary.json", "config.json"]
    if not res.interrupted and any(r["drops"] for r in rep.summary):
        files += plot_all(rep, s["users"], out)
    print()
    print(summary_table(rep.summary))
    print("±95%: half-width of the 95% t-interval; x cvx: paired ratio of means to the cvx cell "
          "on common drops (±95% delta-method interval); time: median per decision")
    for line in res.log:
        print(f"note: {line}")
    if cache is not None and (cache.hits or cache.stored):
        print(f"note: decision cache {cache.path}: {cache.hits} drops reused, {cache.stored} "
              "solved and stored")
    print(f"{res.rows} drops scored in {len(res.task_seconds)} tasks ({res.tasks} dispatched, "
          f"engine {s['engine']}), {res.skipped} already stored; "
          f"{time.perf_counter() - t0:.1f} s")
    print(f"wrote {out}/ ({', '.join(files)})")
    if res.interrupted:
        print("interrupted: kept every finished chunk; rerun with the same --out to resume",
              file=sys.stderr)
    elif not rep.scored:
        print("error: sweep: no cell has a finite result", file=sys.stderr)
    return _cli.outcome(rep.scored, len(res.failed) + len(cells) - rep.scored, res.interrupted)


if __name__ == "__main__":
    sys.exit(main())
