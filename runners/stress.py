"""Tracking-target stress test: closed-loop, latency-aware beams on the moving road.

    python runners/stress.py --scenario track-highway --policy student --policy cvx \\
        [--latency measured|fixed|zero] [--speeds 0 15 30 60] [--seed 0] [--out DIR] \\
        [--set key=value] [--csi-delay S] [--hardware-scale X] [--fixed-latency NAME=S]

For the scenario as written (one run) and for each target speed of the sweep (the target
crossing the covered stretch at that speed), the road is simulated once from the seed and every
policy runs in closed loop on it (cfisac_env.sim.tracking): beams from aged CSI, applied only once
the compute time has passed, scored every ``dt`` against the true positions, beside the same
policy with zero latency and zero CSI delay. Retention = share of the time (target inside the
covered stretch) with SSNR >= threshold x that reference.

Writes ``runs/<date>-stress-<scenario>/``: ``config.json``, ``timeseries.csv`` (per policy and
step), ``summary.json`` and ``retention_vs_speed.csv``, ``ssnr_t.png`` (SSNR and min-SINR over
time under the target's trajectory) and ``retention_vs_speed.png``. The folder is created (and
checked) before any simulation; files are written atomically, ``summary.json`` as strict JSON. A
policy that fails is recorded under ``failed`` and the others go on. Ctrl-C keeps what finished,
records ``interrupted: true`` and exits 130; a user error exits 2 with one line; 1 when every
policy failed.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

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
from cfisac_env.sim.tracking import LATENCY_MODES, Trajectory  # noqa: E402
from cfisac_env.sim.traffic import validate  # noqa: E402
from policies.evaluation.stress import StressSettings, TrackResult, at_speed  # noqa: E402
from policies.evaluation.stress import run as stress_run  # noqa: E402
from runners import _cli, _echo  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "stress")
    _cli.add_common(p, scenario="track-highway", threads=1)
    p.add_argument("--policy", action="append", default=[],
                   help="policy name or module:Class (repeat); default ns-rzf and mrt-target")
    p.add_argument("--latency", choices=LATENCY_MODES, default=None,
                   help="compute time charged per decision (default: the scenario's)")
    p.add_argument("--fixed-latency", action="append", default=[], metavar="NAME=SECONDS",
                   help="compute time of a policy for --latency fixed (repeat)")
    p.add_argument("--hardware-scale", type=_cli.float_in(), default=None,
                   help="factor on measured compute times (2 = hardware twice as slow)")
    p.add_argument("--csi-delay", type=_cli.float_in(), default=None,
                   help="age of the CSI used, s")
    p.add_argument("--threshold", type=_cli.float_in(), default=None,
                   help="retention threshold as a share of the zero-latency SSNR (0.9)")
    p.add_argument("--speeds", type=_cli.float_in(), nargs="*", default=None,
                   help="target speeds of the sweep, m/s (default: the scenario's; "
                        "--speeds alone: no sweep)")
    p.add_argument("--trained-on", default="pos2",
                   help="scenario whose checkpoints learned policies load (same system)")
    _echo.add_flag(p)
    args = p.parse_args(argv)
    _echo.apply_flag(args)
    return args


def settings_from(args: argparse.Namespace, scenario: scenarios.Scenario) -> StressSettings:
    """The scenario's ``[stress]`` settings with the command line's overrides, checked."""
    s = StressSettings.of(scenario)
    for name, value in (("latency", args.latency), ("hardware_scale", args.hardware_scale),
                        ("csi_delay", args.csi_delay), ("threshold", args.threshold),
                        ("speeds", args.speeds)):
        if value is not None:
            setattr(s, name, value)
    for item in args.fixed_latency:
        name, _, seconds = item.rpartition("=")
        try:
            s.fixed_latency[name] = float(seconds)
        except ValueError:
            raise ValueError(f"--fixed-latency wants NAME=SECONDS, got {item!r}") from None
    s.check()
    return s


def make_policy(spec: str, scenario: scenarios.Scenario, trained_on: str) -> Any:
    """Build ``spec`` for the scenario's system; learned policies load the checkpoint trained on
    ``trained_on`` (shipped, else the one ``runners/compare.py`` cached: see
    :mod:`policies.learned.checkpoints`)."""
    from policies.learned.policies import LearnedPolicy

    cls = policies.resolve(spec)
    if not (isinstance(cls, type) and issubclass(cls, LearnedPolicy)):
        return policies.make(spec, scenario.system)
    return policies.make(spec, scenario.system, scenario=trained_on)


def fmt_latency(r: TrackResult) -> str:
    if r.latency.mode == "zero":
        return "zero"
    lat = r.loop.latency_s
    med = float(np.median(lat)) if lat.size else float("nan")
    return f"{r.latency.mode} {med * 1e3:.3g} ms"


def summary_row(r: TrackResult) -> dict[str, Any]:
    cov = r.covered
    pick = (lambda a: a[cov]) if cov.any() else (lambda a: a)
    return {
        "policy": r.policy, "timing": r.timing, "latency_mode": r.latency.mode,
        "retention": r.retention, "retention_min_sinr": r.retention_sinr,
        "ssnr_mean": float(pick(r.loop.ssnr).mean()),
        "ssnr_ref_mean": float(pick(r.reference.ssnr).mean()),
        "min_sinr_mean": float(pick(r.loop.min_sinr).mean()),
        "min_sinr_ref_mean": float(pick(r.reference.min_sinr).mean()),
        "decisions": int(len(r.loop.decided)),
        "landed": int((r.loop.landed < len(r.loop.ssnr)).sum()),
        "compute_s_median": float(np.median(r.loop.compute_s)) if r.loop.compute_s.size
        else float("nan"),
        "latency_s_median": float(np.median(r.loop.latency_s)) if r.loop.latency_s.size
        else float("nan"),
        "covered_steps": int(cov.sum()),
        **_echo.stress_row(r),
    }


def plot_timeseries(traj: Trajectory, results: dict[str, TrackResult], path: Path,
                    title: str, covered: tuple[float, float]) -> None:
    """SSNR(t) and min-SINR(t) per policy (solid) with their zero-latency references
    (dashed), above the target's position and speed."""
    t = traj.time
    fig, ax = plt.subplots(4, 1, figsize=(9, 9), sharex=True,
                           gridspec_kw={"height_ratios": [3, 2, 1.6, 1]})
    inside = (traj.target_xy[:, 0] >= covered[0]) & (traj.target_xy[:, 0] <= covered[1])
    for a in ax[:2]:
        a.fill_between(t, 0, 1, where=~inside, transform=a.get_xaxis_transform(),
                       color="0.92", lw=0)
    silent = []
    for k, (name, r) in enumerate(results.items()):
        c = f"C{k}"
        ax[0].plot(t, r.loop.ssnr, color=c, lw=1.4,
                   label=f"{name} ({fmt_latency(r)}): retention {r.retention:.2f}")
        ax[0].plot(t, r.reference.ssnr, color=c, lw=0.9, ls="--", alpha=0.7)
        if r.reference.min_sinr.max() < 1e-6:               # no communication beams at all
            silent.append(name)
            continue
        ax[1].plot(t, 10 * np.log10(np.maximum(r.loop.min_sinr, 1e-6)), color=c, lw=1.2)
        ax[1].plot(t, 10 * np.log10(np.maximum(r.reference.min_sinr, 1e-6)), color=c, lw=0.8,
                   ls="--", alpha=0.7)
    if silent:
        ax[1].text(0.01, 0.04, f"min-SINR = 0 (no communication power): {', '.join(silent)}",
                   transform=ax[1].transAxes, fontsize=8)
    ax[0].set_ylabel("SSNR (linear)")
    ax[0].legend(fontsize=8, loc="upper right", title="solid: closed loop, dashed: zero latency",
                 title_fontsize=8)
    ax[1].set_ylabel("min-SINR (dB)")
    ax[2].plot(t, traj.target_xy[:, 0], color="k", lw=1.2)
    ax[2].set_ylabel("target x (m)")
    ax[2].axhspan(*covered, color="0.92", lw=0, label="covered stretch")
    v = ax[2].twinx()
    v.plot(t, traj.target_speed, color="C3", lw=1.0)
    v.set_ylabel("speed (m/s)", color="C3")
    v.set_ylim(bottom=0)
    ax[3].plot(t, traj.target_xy[:, 1], color="k", lw=1.2)
    ax[3].set_ylabel("target y (m)")
    ax[3].set_xlabel("time (s)")
    ax[0].set_title(title + " (grey: target outside the covered stretch)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_retention(sweep: dict[float, dict[str, TrackResult]], path: Path, title: str) -> None:
    """Retention vs target speed, one line per policy."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    names = list(dict.fromkeys(n for res in sweep.values() for n in res))
    for k, name in enumerate(names):
        pts = [(v, res[name]) for v, res in sorted(sweep.items()) if name in res]
        lat = [float(np.median(r.loop.latency_s)) for _, r in pts if r.loop.latency_s.size]
        mode = pts[0][1].latency.mode
        label = name if mode == "zero" else \
            f"{name} ({mode}, median {np.median(lat) * 1e3:.3g} ms)"
        ax.plot([v for v, _ in pts], [r.retention for _, r in pts], "o-", color=f"C{k}",
                label=label)
    ax.set_xlabel("target speed (m/s)")
    ax.set_ylabel("tracking retention")
    ax.set_ylim(-0.03, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(out: Path, args: argparse.Namespace, scenario: scenarios.Scenario,
                  settings: StressSettings, main_traj: Trajectory | None,
                  main: dict[str, TrackResult], sweep: dict[float, dict[str, TrackResult]],
                  interrupted: bool, failed: dict[str, str] | None = None) -> list[str]:
    """Write the run folder, each file atomically; returns the names of the files written."""
    written = ["config.json", "summary.json"]
    config = {"args": json_safe(vars(args)), "scenario": scenario.name,
              "config": scenario.config, "stress": vars(settings),
              "system": scenario.system.to_dict(), "provenance": provenance()}
    write_json(out / "config.json", config)
    if main and main_traj is not None:
        with io.StringIO(newline="") as f:
            w = csv.writer(f)
            w.writerow(["policy", "step", "t_s", "target_x_m", "target_y_m", "target_speed_mps",
                        "covered", "ssnr", "ssnr_zero_latency", "min_sinr",
                        "min_sinr_zero_latency", "beam_age_s"])
            for name, r in main.items():
                age = r.loop.beam_age_steps * main_traj.dt
                for s in range(main_traj.steps):
                    w.writerow([name, s, f"{s * main_traj.dt:.4f}", *main_traj.target_xy[s],
                                main_traj.target_speed[s], int(r.covered[s]), r.loop.ssnr[s],
                                r.reference.ssnr[s], r.loop.min_sinr[s],
                                r.reference.min_sinr[s], f"{age[s]:.4f}"])
            write_text(out / "timeseries.csv", f.getvalue())
        title = (f"{textwrap.fill(f'{scenario.name}: {scenario.description}', 95)}\n"
                 f"N = {scenario.system.N}, "
                 f"L = {scenario.system.L}, CSI delay {settings.csi_delay * 1e3:g} ms, seed "
                 f"{args.seed}")
        with atomic_path(out / "ssnr_t.png") as tmp:
            plot_timeseries(main_traj, main, tmp, title, settings.covered)
        written += ["timeseries.csv", "ssnr_t.png"]
    if sweep:
        with io.StringIO(newline="") as f:
            w = csv.writer(f)
            echo = [*_echo.stress_row(next(iter(next(iter(sweep.values())).values())))]
            w.writerow(["speed_mps", "policy", "retention", "retention_min_sinr",
                        "latency_s_median", "decisions", "landed", *echo])
            for v, res in sorted(sweep.items()):
                for name, r in res.items():
                    row = summary_row(r)
                    w.writerow([v, name, r.retention, r.retention_sinr,
                                row["latency_s_median"], row["decisions"], row["landed"],
                                *(row[k] for k in echo)])
            write_text(out / "retention_vs_speed.csv", f.getvalue())
        with atomic_path(out / "retention_vs_speed.png") as tmp:
            plot_retention(sweep, tmp, f"{scenario.name}: retention (SSNR >= "
                           f"{settings.threshold:g} x zero latency), seed {args.seed}")
        written += ["retention_vs_speed.csv", "retention_vs_speed.png"]
        if any(r.sensing for res in sweep.values() for r in res.values()):
            with atomic_path(out / "tracking_vs_speed.png") as tmp:
                _echo.plot_stress_speeds(sweep, tmp, f"{scenario.name}, echo sensing: track loss,"
                                         f" position RMSE and retention vs speed, seed "
                                         f"{args.seed}")
            written.append("tracking_vs_speed.png")
    if main and main_traj is not None and any(r.sensing for r in main.values()):
        with atomic_path(out / "position_error_t.png") as tmp:
            _echo.plot_stress_errors(main, main_traj, settings.covered, tmp,
                                     f"{scenario.name}, echo sensing: "
                                     f"{scenario.description}, seed {args.seed}")
        written.append("position_error_t.png")
    summary = {"scenario": scenario.name, "interrupted": interrupted, "failed": failed,
               "threshold": settings.threshold, "covered_m": settings.covered,
               "main": [summary_row(r) for r in main.values()],
               "sweep": {str(v): [summary_row(r) for r in res.values()]
                         for v, res in sorted(sweep.items())}}
    write_json(out / "summary.json", summary)
    return written


def prepare(args: argparse.Namespace) -> tuple[scenarios.Scenario, StressSettings, dict[str, Any],
                                               list[tuple[float, Any, float]], dict[str, str]]:
    """Everything that can fail on bad input, before any simulation: the scenario, the settings,
    the policies, the sweep's scenarios ``(speed, scenario, seconds)`` and the policies that
    could not be built (``{spec: error}``: any exception but a user error's ``ValueError``)."""
    torch.set_num_threads(args.threads)
    scenario = _cli.load_scenario(args)
    settings = settings_from(args, scenario)
    validate(scenario.config)
    specs = list(dict.fromkeys(args.policy or ["ns-rzf", "mrt-target"]))
    pols, failed = {}, {}
    for spec in specs:
        settings.latency_for(spec)
        policies.resolve(spec)
        try:
            pols[spec] = make_policy(spec, scenario, args.trained_on)
        except ValueError:
            raise
        except Exception as e:  # cannot be built: a failed policy, the others still run
            failed[spec] = _cli.one_line(f"{type(e).__name__}: {e}")
            pols[spec] = None
    sweep = [(v, *at_speed(scenario, v, settings)) for v in settings.speeds]
    return scenario, settings, pols, sweep, failed


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return _cli.run(lambda: stress(parse_args(argv)), "stress")


def stress(args: argparse.Namespace) -> int:
    """The whole run for parsed ``args``: check, create the run folder, simulate, write."""
    scenario, settings, pols, _, failed = prepare(args)
    out = run_dir(f"stress-{scenario.name}", args.out)
    t0 = time.perf_counter()
    report = stress_run(scenario, pols, settings, args.seed, not args.quiet, failed)
    main_traj, main_res, sweep = report.trajectory, report.main, report.sweep
    interrupted, failed = report.interrupted, report.failed
    if interrupted:
        print("\ninterrupted: writing the runs that finished", file=sys.stderr)
    print(f"\n{scenario.name}: {scenario.description}")
    print(f"latency {settings.latency}, CSI delay {settings.csi_delay:g} s, hardware scale "
          f"{settings.hardware_scale:g}, retention = share of time in x in {settings.covered} m "
          f"with SSNR >= {settings.threshold:g} x the zero-latency SSNR; seed {args.seed}")
    if main_res:
        print(f"{'policy':<14}{'timed as':<12}{'latency':>18}{'decisions':>10}{'retention':>10}"
              f"{'ret. SINR':>10}{'SSNR':>8}{'SSNR@0':>8}")
        for name, r in main_res.items():
            row = summary_row(r)
            print(f"{name:<14}{r.timing:<12}{fmt_latency(r):>18}{row['decisions']:>10}"
                  f"{r.retention:>10.3f}{r.retention_sinr:>10.3f}{row['ssnr_mean']:>8.3f}"
                  f"{row['ssnr_ref_mean']:>8.3f}")
    if main_res and any(r.sensing for r in main_res.values()):
        print(f"{'echo sensing':<22}{'pos. RMSE m':>12}{'settled m':>10}{'angle deg':>10}"
              f"{'loss rate':>10}{'kept':>6}")
        for name, r in main_res.items():
            e = r.sensing
            print(f"{name:<22}{e['position_rmse_m']:>12.3f}{e['position_rmse_settled_m']:>10.3f}"
                  f"{e['angle_rmse_deg']:>10.3f}{e['track_loss_rate']:>10.3f}"
                  f"{'yes' if e['track_kept'] else 'no':>6}")
    if sweep:
        names = list(dict.fromkeys(n for res in sweep.values() for n in res))
        print("retention vs target speed:")
        print(f"{'speed m/s':>10}" + "".join(f"{n:>14}" for n in names))
        for v, res in sorted(sweep.items()):
            print(f"{v:>10g}" + "".join(f"{res[n].retention:>14.3f}" if n in res else
                                        f"{'-':>14}" for n in names))
        if any(r.sensing for res in sweep.values() for r in res.values()):
            print("echo sensing vs target speed: track-loss rate / settled position RMSE (m)")
            print(f"{'speed m/s':>10}" + "".join(f"{n:>24}" for n in names))
            for v, res in sorted(sweep.items()):
                print(f"{v:>10g}" + "".join(
                    f"{res[n].sensing['track_loss_rate']:>15.2f} / "
                    f"{res[n].sensing['position_rmse_settled_m']:>5.2f}" if n in res else
                    f"{'-':>24}" for n in names))
    for name, err in failed.items():
        print(f"FAILED {name}: {err}")
    files = write_outputs(out, args, scenario, settings, main_traj, main_res, sweep, interrupted,
                          failed)
    print(f"wrote {out}/ ({', '.join(files)}) in {time.perf_counter() - t0:.0f} s")
    return _cli.outcome(len(report.done), len(failed), interrupted)


if __name__ == "__main__":
    sys.exit(main())
