"""Robustness: every policy under estimated CSI, Rician scattering and channel ageing.

    python runners/robustness.py                       # pos2 N=8, track-highway ageing
    python runners/robustness.py --policy cvx --policy student --drops 100 --heavy-drops 8 \\
        --axis nmse --axis k_factor_db --no-ageing

Static part (:func:`policies.evaluation.robustness.sweep`): on the same seeded drops of
``--scenario``, mean SSNR and min-SINR with 95 % t-intervals as one field varies: CSI NMSE 0 ..
0.3, Rician K from LoS only down to 0 dB, target-angle error 0 .. 10 deg (policies decide on the
estimated CSI, the metrics use the true channel). Heavy solvers (cvx) use the first
``--heavy-drops`` drops.
Ageing part (:func:`policies.evaluation.robustness.ageing`): the closed-loop tracking stress of
``--tracking`` at zero compute latency, CSI delay 0 .. 100 ms, LoS vs Rician fading (K = 6 dB)
ageing with the walkers' Doppler; ``--tracking-policy`` picks its policies (default: all but cvx).
Policies are policy specs, as in every runner.

Writes ``runs/<date>-robustness-<scenario>-N<users>/``: ``config.json``, ``robustness.csv``,
``robustness.png``, ``ageing.csv``, ``ageing.png`` and ``summary.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from cfisac_env.runs import json_safe, provenance, run_dir, write_json, write_text
from policies.evaluation.evaluate import parse_specs
from policies.evaluation.robustness import AXES, AgeingRow, Point, ageing, build_tracking, sweep
from runners import _cli, _plot
from runners._plot import plt, save
from runners._report import csv_text, table

POLICIES = ["cvx", "student", "ns-rzf", "mrt-users", "mrt-target"]
DELAYS = [0.0, 0.01, 0.02, 0.05, 0.1]
FADING = {"LoS": {}, "Rician K=6 dB": {"channel.model": "rician", "channel.k_factor_db": 6.0}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "robustness")
    _cli.add_common(p, scenario="pos2", users=8, threads=1)
    p.add_argument("--policy", action="append", default=None, metavar="SPEC",
                   help=f"policy spec (repeatable; default {' '.join(POLICIES)})")
    p.add_argument("--drops", type=_cli.positive_int, default=200, help="drops per point")
    p.add_argument("--heavy-drops", type=_cli.positive_int, default=12,
                   help="drops per point for cvx (the first ones)")
    p.add_argument("--jobs", type=_cli.positive_int, default=None,
                   help="worker processes for cvx")
    p.add_argument("--axis", action="append", choices=list(AXES), default=None,
                   help="static axes (repeatable; default all)")
    p.add_argument("--tracking", default="track-highway", help="road scenario of the ageing part")
    p.add_argument("--tracking-policy", action="append", default=None, metavar="SPEC",
                   help="policies of the ageing part (default: the static ones but cvx)")
    p.add_argument("--delays", type=_cli.nonnegative_float, nargs="+", default=DELAYS,
                   help="CSI delays of the ageing part, s")
    p.add_argument("--no-ageing", action="store_true", help="skip the ageing part")
    _cli.add_figure_flags(p)
    return p.parse_args(argv)


def plot_sweep(points: list[Point], path: Any, title: str, colors: dict[str, str]) -> None:
    """2 x A panels: SSNR (top) and min-SINR (bottom) vs each axis, one line per policy with
    its 95 % interval as a band."""
    axes = list(dict.fromkeys(p.axis for p in points))
    names, left_out = _plot.limit(list(dict.fromkeys(p.policy for p in points)), keep=["cvx"])
    drops = {p.policy: p.rows()[0]["n"] for p in points}
    most = max(drops.values())
    fig, ax = plt.subplots(2, len(axes), figsize=(4.2 * len(axes), 6.5), squeeze=False)
    for j, axis in enumerate(axes):
        label, settings = AXES[axis]
        values = [v for v, _ in settings]
        for name in names:
            rows = {p.value: p for p in points if p.axis == axis and p.policy == name}
            xs = [v for v in values if v in rows]
            pos = [_position(axis, v, values) for v in xs]
            for i, metric in enumerate(("ssnr", "min_sinr")):
                r = [next(x for x in rows[v].rows() if x["metric"] == metric) for v in xs]
                ax[i, j].plot(pos, _plot.to_axis([x["mean"] for x in r]), "o-",
                              color=colors[name], ms=3.5,
                              label=_plot.drops_label(name, drops[name], most))
                ax[i, j].fill_between(pos, _plot.to_axis([x["lo"] for x in r]),
                                      _plot.to_axis([x["hi"] for x in r]),
                                      color=colors[name], alpha=0.15, lw=0)
        for i, ylab in enumerate(("SSNR", "min-SINR")):
            ax[i, j].set_ylabel(f"mean {_plot.axis_label(ylab)}")
            ax[i, j].set_xlabel(label)
        if axis == "k_factor_db":
            ticks = [_position(axis, v, values) for v in values]
            for a in ax[:, j]:
                a.set_xticks(ticks, ["LoS" if np.isinf(v) else f"{v:g}" for v in values])
    ax[0, 0].legend()
    fig.suptitle(title, fontsize=9.5)
    _plot.note_left_out(ax[1, 0], left_out)
    save(fig, path)


def _position(axis: str, value: float, values: list[float]) -> float:
    """x position on the plot: K from LoS (left) down to 0 dB (right), evenly spaced."""
    return float(values.index(value)) if axis == "k_factor_db" else float(value)


def plot_ageing(rows: list[AgeingRow], path: Any, title: str, colors: dict[str, str]) -> None:
    """Mean SSNR and min-SINR of the closed loop vs CSI delay, solid: Rician, dashed: LoS."""
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    names, left_out = _plot.limit(list(dict.fromkeys(r.policy for r in rows)))
    channels = list(dict.fromkeys(r.channel for r in rows))
    for name in names:
        for c, ch in enumerate(channels):
            sel = sorted((r for r in rows if r.policy == name and r.channel == ch),
                         key=lambda r: r.delay_s)
            ls = "--" if c == 0 else "-"
            d = [r.delay_s * 1e3 for r in sel]
            ax[0].plot(d, _plot.to_axis([r.ssnr for r in sel]), ls, marker="o", ms=3,
                       color=colors[name], label=name if c == len(channels) - 1 else None)
            ax[1].plot(d, _plot.to_axis([r.min_sinr for r in sel]), ls, marker="o", ms=3,
                       color=colors[name])
    ax[0].set_ylabel(f"mean {_plot.axis_label('SSNR')}")
    ax[1].set_ylabel(f"mean {_plot.axis_label('min-SINR')}")
    for a in ax:
        a.set_xlabel("CSI delay (ms)")
    ax[0].legend()
    fig.suptitle(title, fontsize=9.5)
    _plot.note_left_out(ax[0], left_out)
    save(fig, path)


AGEING_COLUMNS = ["channel", "delay_s", "policy", "ssnr", "min_sinr", "retention",
                  "retention_sinr"]


def write_static(out: Path, points: list[Point], title: str, colors: dict[str, str]
                 ) -> list[dict[str, Any]]:
    """``robustness.csv`` and ``robustness.png``; prints the table and returns its rows."""
    rows = [r for p in points for r in p.rows()]
    columns = list(rows[0])
    write_text(out / "robustness.csv", csv_text(rows, columns))
    print(table(["axis", "value", "policy", "metric", "mean", "95 % interval", "n"],
                [[r["axis"], f"{r['value']:g}", r["policy"], r["metric"], f"{r['mean']:.3f}",
                  f"[{r['lo']:.3f}, {r['hi']:.3f}]", r["n"]] for r in rows], left=1))
    plot_sweep(points, out / "robustness.png", title, colors)
    return rows


def write_ageing(out: Path, rows: list[AgeingRow], tracking: str, title: str,
                 colors: dict[str, str]) -> None:
    """``ageing.csv`` and ``ageing.png``; prints the table."""
    write_text(out / "ageing.csv", csv_text([vars(r) for r in rows], AGEING_COLUMNS))
    print(f"\n{tracking}: closed loop at zero compute latency vs CSI delay")
    print(table(["channel", "delay ms", "policy", "SSNR", "min-SINR", "retention",
                 "(min-SINR)"],
                [[r.channel, f"{r.delay_s * 1e3:g}", r.policy, f"{r.ssnr:.3f}",
                  f"{r.min_sinr:.3f}", f"{r.retention:.2f}", f"{r.retention_sinr:.2f}"]
                 for r in rows], left=1))
    plot_ageing(rows, out / "ageing.png", title, colors)


@_cli.entry("robustness")
def main(argv: list[str] | None = None) -> int:
    """The whole run: check, create the run folder, both parts, print and write; returns the
    exit status (see :mod:`runners._cli`)."""
    args = parse_args(argv)
    _cli.set_threads(args.threads)
    sc = _cli.load_scenario(args)
    specs = parse_specs(args.policy or POLICIES)
    track_specs = parse_specs(args.tracking_policy or [s for s in specs if s.target != "cvx"])
    colors = {name: _plot.palette(k) for k, name in
              enumerate(dict.fromkeys([s.row for s in specs] + [s.row for s in track_specs]))}
    road, track_pols, failed = (None, {}, {}) if args.no_ageing else \
        build_tracking(args.tracking, track_specs, dict(args.set))
    out = run_dir(f"robustness-{sc.name}-N{sc.system.N}", args.out)
    t0 = time.perf_counter()
    points, failed_static, interrupted = sweep(
        args.scenario, sc.system.N, specs, args.drops, args.heavy_drops, args.seed, args.axis,
        jobs=args.jobs, progress=not args.quiet, overrides=dict(args.set))
    failed.update({f"{k} (static)": v for k, v in failed_static.items()})
    rows: list[AgeingRow] = []
    if road is not None and track_pols and not interrupted:
        rows, interrupted = ageing(road, track_pols, args.delays, FADING, args.seed,
                                   progress=not args.quiet)
    if interrupted:
        print("\ninterrupted: writing what finished", file=sys.stderr)
    summary: dict[str, Any] = {"scenario": sc.name, "users": sc.system.N, "seed": args.seed,
                               "interrupted": interrupted, "failed": failed, "static": [],
                               "ageing": [vars(r) for r in rows]}
    files = ["config.json", "summary.json"]
    write_json(out / "config.json", json_safe({"args": vars(args), "axes": {
        k: [v for v, _ in s] for k, (_, s) in AXES.items()}, "fading": FADING,
        "provenance": provenance()}))
    print(f"\n{sc.name} N={sc.system.N}: mean [95 % interval] over drops, seed {args.seed}")
    if points:
        summary["static"] = write_static(
            out, points, f"{sc.name}, N = {sc.system.N}: policies decide on estimated CSI, "
            f"scored on the true channel ({args.drops} drops, cvx {args.heavy_drops}); bands: "
            "95 % intervals", colors)
        files += ["robustness.csv", "robustness.png"]
    if rows:
        write_ageing(out, rows, args.tracking,
                     f"{args.tracking}: closed loop, zero compute latency, beams from CSI aged "
                     f"by the delay; seed {args.seed}\ndashed: LoS, solid: Rician K = 6 dB "
                     "ageing with the walkers' Doppler at 3.5 GHz (Gauss-Markov)", colors)
        files += ["ageing.csv", "ageing.png"]
    write_json(out / "summary.json", json_safe(summary))
    for name, err in failed.items():
        print(f"FAILED {name}: {err}")
    print(f"wrote {out}/ ({', '.join(files)}) in {time.perf_counter() - t0:.0f} s")
    done = len({p.policy for p in points} | {r.policy for r in rows})
    return _cli.outcome(done, len(failed), interrupted)


if __name__ == "__main__":
    sys.exit(main())
