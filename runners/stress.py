"""Tracking-target stress test: closed-loop, latency-aware beams on the moving road.

    python runners/stress.py --scenario track-highway --policy student --policy cvx \\
        [--latency measured|fixed|zero] [--speeds 0 15 30 60] [--seed 0] [--out DIR] \\
        [--set key=value] [--csi-delay S] [--hardware-scale X] [--fixed-latency NAME=S]

For the scenario as written (one run) and for each target speed of the sweep (the target
crossing the covered stretch at that speed), the road is simulated once from the seed and every
policy runs in closed loop on it (cfisac_env.sim.tracking): beams from aged CSI, applied only once
the compute time has passed, scored every ``dt`` against the true positions, beside the same
policy with zero latency and zero CSI delay. Retention = share of the time (target inside the
covered stretch) with SSNR >= threshold x that reference. Policies are policy specs, as in every
runner (``cvx@rho=0.25@label=cvx-tight``); ``--fixed-latency`` names them by their row name. The
engine is :func:`policies.evaluation.stress.run`.

Writes ``runs/<date>-stress-<scenario>/``: ``config.json``, ``timeseries.csv`` (per policy and
step), ``summary.json`` and ``retention_vs_speed.csv``, ``ssnr_t.png`` (SSNR and min-SINR over
time under the target's trajectory) and ``retention_vs_speed.png``; with ``--sensing echo``
(the target column from the tracker of the APs' echoes, docs/sensing.md) also each policy's
communication-only baseline ``NAME (held)``, the sensing columns (position and angle RMSE,
track-loss rate), ``position_error_t.png`` and ``tracking_vs_speed.png``. The folder is created (and
checked) before any simulation; files are written atomically, ``summary.json`` as strict JSON. A
policy that fails is recorded under ``failed`` and the others go on. Ctrl-C keeps what finished,
records ``interrupted: true`` and exits 130; a user error exits 2 with one line; 1 when every
policy failed.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from cfisac_env.runs import json_safe, provenance, run_dir, write_json, write_text
from cfisac_env.sim.tracking import LATENCY_MODES, Trajectory
from policies.evaluation.sensing import STRESS_COLUMNS
from policies.evaluation.stress import (
    StressPlan,
    StressReport,
    TrackResult,
    prepare,
    summary_row,
)
from policies.evaluation.stress import run as run_stress
from runners import _cli, _echo, _plot
from runners._plot import plt, save
from runners._report import csv_text, table

TIMESERIES_COLUMNS = ["policy", "step", "t_s", "target_x_m", "target_y_m", "target_speed_mps",
                      "covered", "ssnr", "ssnr_zero_latency", "min_sinr",
                      "min_sinr_zero_latency", "beam_age_s"]
RETENTION_COLUMNS = ["speed_mps", "policy", "retention", "retention_min_sinr",
                     "latency_s_median", "decisions", "landed"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "stress")
    _cli.add_common(p, scenario="track-highway", threads=1)
    p.add_argument("--policy", action="append", default=[], metavar="SPEC",
                   help="policy spec: NAME, module:Class or file.py:Class, options after @ "
                        "(repeat); default ns-rzf and mrt-target")
    p.add_argument("--latency", choices=LATENCY_MODES, default=None,
                   help="compute time charged per decision (default: the scenario's)")
    p.add_argument("--fixed-latency", action="append", default=[], metavar="NAME=SECONDS",
                   help="compute time of a policy (its row name) for --latency fixed (repeat)")
    p.add_argument("--hardware-scale", type=_cli.float_in(), default=None,
                   help="factor on measured compute times (2 = hardware twice as slow)")
    p.add_argument("--csi-delay", type=_cli.float_in(), default=None,
                   help="age of the CSI used, s")
    p.add_argument("--threshold", type=_cli.float_in(), default=None,
                   help="retention threshold as a share of the zero-latency SSNR (0.9)")
    p.add_argument("--speeds", type=_cli.float_in(), nargs="*", default=None,
                   help="target speeds of the sweep, m/s (default: the scenario's; "
                        "--speeds alone: no sweep)")
    p.add_argument("--trained-on", default=None,
                   help="scenario whose checkpoints learned policies load (same system; "
                        "default: the scenario's own family)")
    _cli.add_figure_flags(p)
    _echo.add_flag(p)
    args = p.parse_args(argv)
    _echo.apply_flag(args)
    return args


def fmt_latency(r: TrackResult) -> str:
    if r.latency.mode == "zero":
        return "zero"
    lat = r.loop.latency_s
    med = float(np.median(lat)) if lat.size else float("nan")
    return f"{r.latency.mode} {med * 1e3:.3g} ms"


def plot_timeseries(traj: Trajectory, results: dict[str, TrackResult], path: Path,
                    title: str, covered: tuple[float, float]) -> None:
    """SSNR(t) and min-SINR(t) per policy (solid) with their zero-latency references
    (dashed), above the target's position and speed. Grey, on every panel, marks the time the
    target is outside the covered stretch (not scored)."""
    t = traj.time
    shown, left_out = _plot.limit(list(results))
    fig, ax = plt.subplots(4, 1, figsize=(8.5, 8.5), sharex=True,
                           gridspec_kw={"height_ratios": [3, 2, 1.6, 1]})
    inside = (traj.target_xy[:, 0] >= covered[0]) & (traj.target_xy[:, 0] <= covered[1])
    for a in ax:
        a.fill_between(t, 0, 1, where=~inside, transform=a.get_xaxis_transform(), color=_plot.GREY,
                       lw=0, zorder=0)
    silent = []
    for k, name in enumerate(shown):
        r, c = results[name], _plot.palette(k)
        ax[0].plot(t, _plot.to_axis(r.loop.ssnr), color=c, lw=1.4,
                   label=f"{name} ({fmt_latency(r)}): retention {r.retention:.2f}")
        ax[0].plot(t, _plot.to_axis(r.reference.ssnr), color=c, lw=0.9, ls="--", alpha=0.8)
        if r.reference.min_sinr.max() < 1e-6:               # no communication beams at all
            silent.append(name)
            continue
        ax[1].plot(t, _plot.to_axis(r.loop.min_sinr), color=c, lw=1.2)
        ax[1].plot(t, _plot.to_axis(r.reference.min_sinr), color=c, lw=0.8, ls="--", alpha=0.8)
    if silent:
        ax[1].text(0.01, 0.04, f"min-SINR = 0 (no communication power): {', '.join(silent)}",
                   transform=ax[1].transAxes, fontsize=7.5)
    ax[0].set_ylabel(_plot.axis_label("SSNR"))
    ax[0].legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
                 title="solid: closed loop, dashed: zero latency", title_fontsize=7.5)
    ax[1].set_ylabel(_plot.axis_label("min-SINR"))
    ax[2].plot(t, traj.target_xy[:, 0], color="k", lw=1.2)
    for x in covered:
        ax[2].axhline(x, color="k", lw=0.7, ls=":")
    ax[2].set_ylabel("target x (m)\n(dotted: covered)")
    v = ax[2].twinx()
    v.plot(t, traj.target_speed, color="k", ls="--", lw=0.9)
    v.set_ylabel("speed (m/s, dashed)")
    v.set_ylim(bottom=0)
    v.grid(False)
    ax[3].plot(t, traj.target_xy[:, 1], color="k", lw=1.2)
    ax[3].set_ylabel("target y (m)")
    ax[3].set_xlabel("time (s)")
    fig.suptitle(title + "\ngrey: target outside the covered stretch (not scored)",
                 fontsize=9.5)
    _plot.note_left_out(ax[3], left_out)
    save(fig, path)


def plot_retention(sweep: dict[float, dict[str, TrackResult]], path: Path, title: str) -> None:
    """Retention vs target speed, one line per policy, at the speeds that were swept."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    names = list(dict.fromkeys(n for res in sweep.values() for n in res))
    shown, left_out = _plot.limit(names)
    for k, name in enumerate(shown):
        pts = [(v, res[name]) for v, res in sorted(sweep.items()) if name in res]
        lat = [float(np.median(r.loop.latency_s)) for _, r in pts if r.loop.latency_s.size]
        mode = pts[0][1].latency.mode
        label = name if mode == "zero" else \
            f"{name} ({mode}, median {np.median(lat) * 1e3:.3g} ms)"
        ax.plot([v for v, _ in pts], [r.retention for _, r in pts], color=_plot.palette(k),
                marker=_plot.marker(k), ls=_plot.linestyle(k), label=label)
    ax.set_xlabel("target speed (m/s)")
    ax.set_xticks(sorted(sweep))
    ax.set_ylabel("tracking retention (share of covered time)")
    ax.set_ylim(-0.03, 1.05)
    ax.legend()
    ax.set_title(title)
    _plot.note_left_out(ax, left_out)
    save(fig, path)


def timeseries_rows(traj: Trajectory, main: dict[str, TrackResult]) -> list[list[Any]]:
    """``timeseries.csv``: one row per policy and step (:data:`TIMESERIES_COLUMNS`)."""
    out = []
    for name, r in main.items():
        age = r.loop.beam_age_steps * traj.dt
        for s in range(traj.steps):
            out.append([name, s, f"{s * traj.dt:.4f}", *traj.target_xy[s], traj.target_speed[s],
                        int(r.covered[s]), r.loop.ssnr[s], r.reference.ssnr[s],
                        r.loop.min_sinr[s], r.reference.min_sinr[s], f"{age[s]:.4f}"])
    return out


def retention_rows(sweep: dict[float, dict[str, TrackResult]]) -> list[dict[str, Any]]:
    """``retention_vs_speed.csv``: one row per speed and policy (:data:`RETENTION_COLUMNS`,
    plus the sensing columns in echo mode)."""
    return [{"speed_mps": v, **summary_row(r)}
            for v, res in sorted(sweep.items()) for r in res.values()]


def write_outputs(out: Path, args: argparse.Namespace, plan: StressPlan, rep: StressReport
                  ) -> list[str]:
    """Write the run folder, each file atomically; returns the names of the files written."""
    scenario, settings = plan.scenario, plan.settings
    written = ["config.json", "summary.json"]
    config = {"args": json_safe(vars(args)), "scenario": scenario.name,
              "config": scenario.config, "stress": vars(settings),
              "system": scenario.system.to_dict(), "provenance": provenance()}
    write_json(out / "config.json", config)
    if rep.main and rep.trajectory is not None:
        write_text(out / "timeseries.csv", csv_text(timeseries_rows(rep.trajectory, rep.main),
                                                    TIMESERIES_COLUMNS))
        v = rep.trajectory.target_speed
        speed = f"{v.min():.3g}" if np.isclose(v.min(), v.max()) else \
            f"{v.min():.3g}-{v.max():.3g}"
        title = (f"{scenario.name}: target at {speed} m/s in this run, "
                 f"N = {scenario.system.N}, L = {scenario.system.L}, CSI delay "
                 f"{settings.csi_delay * 1e3:g} ms, seed {args.seed}")
        plot_timeseries(rep.trajectory, rep.main, out / "ssnr_t.png", title, settings.covered)
        written += ["timeseries.csv", "ssnr_t.png"]
    echo = any(r.sensing for r in rep.main.values()) or \
        any(r.sensing for res in rep.sweep.values() for r in res.values())
    if rep.sweep:
        write_text(out / "retention_vs_speed.csv", csv_text(
            retention_rows(rep.sweep), RETENTION_COLUMNS + (list(STRESS_COLUMNS) if echo else [])))
        plot_retention(rep.sweep, out / "retention_vs_speed.png",
                       f"{scenario.name}: retention (SSNR >= {settings.threshold:g} x zero "
                       f"latency), seed {args.seed}\nspeeds swept: "
                       f"{', '.join(f'{v:g}' for v in sorted(rep.sweep))} m/s")
        written += ["retention_vs_speed.csv", "retention_vs_speed.png"]
        if echo:
            _echo.plot_stress_speeds(rep.sweep, out / "tracking_vs_speed.png",
                                     f"{scenario.name}, echo sensing: track loss, position "
                                     f"error and retention vs speed, seed {args.seed}")
            written.append("tracking_vs_speed.png")
    if echo and rep.main and rep.trajectory is not None:
        _echo.plot_stress_errors(rep.main, rep.trajectory, settings.covered,
                                 out / "position_error_t.png", f"{scenario.name}, echo sensing: "
                                 f"{scenario.description}, seed {args.seed}")
        written.append("position_error_t.png")
    summary = {"scenario": scenario.name, "interrupted": rep.interrupted, "failed": rep.failed,
               "threshold": settings.threshold, "covered_m": settings.covered,
               "main": [summary_row(r) for r in rep.main.values()],
               "sweep": {str(v): [summary_row(r) for r in res.values()]
                         for v, res in sorted(rep.sweep.items())}}
    write_json(out / "summary.json", summary)
    return written


def print_report(plan: StressPlan, rep: StressReport, seed: int) -> None:
    """The run's tables on the terminal."""
    scenario, settings = plan.scenario, plan.settings
    print(f"\n{scenario.name}: {scenario.description}")
    print(f"latency {settings.latency}, CSI delay {settings.csi_delay:g} s, hardware scale "
          f"{settings.hardware_scale:g}, retention = share of time in x in {settings.covered} m "
          f"with SSNR >= {settings.threshold:g} x the zero-latency SSNR; seed {seed}")
    if rep.main:
        body = []
        for name, r in rep.main.items():
            row = summary_row(r)
            body.append([name, r.timing, fmt_latency(r), row["decisions"], f"{r.retention:.3f}",
                         f"{r.retention_sinr:.3f}", f"{row['ssnr_mean']:.3f}",
                         f"{row['ssnr_ref_mean']:.3f}"])
        print(table(["policy", "timed as", "latency", "decisions", "retention", "ret. SINR",
                     "SSNR", "SSNR@0"], body, left=2))
        print(textwrap.fill(
            "retention: share of the covered time with SSNR >= threshold x the same policy's "
            "zero-latency SSNR; ret. SINR: the same rule on min-SINR; SSNR, SSNR@0: mean SSNR "
            "in closed loop and at zero latency (linear)", 100))
    if any(r.sensing for r in rep.main.values()):
        print(table(_echo.STRESS_HEAD, _echo.stress_table(rep.main)))
    if rep.sweep:
        names = list(dict.fromkeys(n for res in rep.sweep.values() for n in res))
        print("retention vs target speed:")
        print(table(["speed m/s", *names],
                    [[f"{v:g}", *(f"{res[n].retention:.3f}" if n in res else "-" for n in names)]
                     for v, res in sorted(rep.sweep.items())], left=0))
        if any(r.sensing for res in rep.sweep.values() for r in res.values()):
            print("echo sensing vs target speed: track-loss rate / position RMSE of the track (m)")
            print(table(["speed m/s", *names], [[f"{v:g}", *(
                f"{res[n].sensing['track_loss_rate']:.2f} / "
                f"{res[n].sensing['position_rmse_m']:.2f}" if n in res and res[n].sensing
                else "-" for n in names)] for v, res in sorted(rep.sweep.items())], left=0))
    for name, err in rep.failed.items():
        print(f"FAILED {name}: {err}")


@_cli.entry("stress")
def main(argv: list[str] | None = None) -> int:
    """Check, create the run folder, simulate, print and write; returns the exit status (see
    :mod:`runners._cli`)."""
    args = parse_args(argv)
    _cli.set_threads(args.threads)
    scenario = _cli.load_scenario(args)
    overrides = {"latency": args.latency, "hardware_scale": args.hardware_scale,
                 "csi_delay": args.csi_delay, "threshold": args.threshold,
                 "speeds": args.speeds}
    plan = prepare(scenario, args.policy or ["ns-rzf", "mrt-target"], overrides,
                   args.fixed_latency, args.trained_on)
    out = run_dir(f"stress-{scenario.name}", args.out)
    t0 = time.perf_counter()
    rep = run_stress(scenario, plan.policies, plan.settings, args.seed, not args.quiet,
                     plan.failed)
    if rep.interrupted:
        print("\ninterrupted: writing the runs that finished", file=sys.stderr)
    print_report(plan, rep, args.seed)
    files = write_outputs(out, args, plan, rep)
    print(f"wrote {out}/ ({', '.join(files)}) in {time.perf_counter() - t0:.0f} s")
    return _cli.outcome(len(rep.done), len(rep.failed), rep.interrupted)


if __name__ == "__main__":
    sys.exit(main())
