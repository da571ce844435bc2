"""Reproduce Demirhan & Alkhateeb's published results (power sweep, Fig. 4 distance trend).

    python runners/reproduce_demirhan.py --drops 20            # minutes: all 7 rho, 4 schemes
    python runners/reproduce_demirhan.py --drops 200 --jobs 2  # the 2 % acceptance run
    python runners/reproduce_demirhan.py --distance --drops 10 # Fig. 4: metric vs distance bin

Runs NS+RZF (``ns-rzf``), NS+OPT (``ns-opt``), CB+OPT (``cb-opt``) and JSC+Q1 (``cvx``) on the
first ``--drops`` drops of the reference archives (same positions) and prints the mean min-SINR
and SSNR of each beside the reference mean over the same drops, with the relative error. JSC
cells use only the drops whose reference SDP was feasible (the reference stores NaN otherwise).
NS+OPT / CB+OPT drops without a feasible gamma (flagged fallbacks, column ``fb``) are scored as
the reference scored them: zero communication beams beside the scheme's sensing beam.

Writes ``runs/<date>-reproduce-demirhan/``: ``power_table.csv`` / ``.json`` and, with
``--distance``, ``distance_table.csv`` / ``.json`` and ``distance.png``, each atomically, in a
folder created (and checked) before any solve. Exit status 2 (one line) on a user error (e.g.
reference archives not found); on Ctrl-C the rows of every rho (or distance bin) that finished
are written with ``interrupted: true`` and the exit status is 130.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cfisac_env.runs import run_dir, write_json, write_text  # noqa: E402
from policies.evaluation.demirhan import (  # noqa: E402
    METRICS,
    REF_ENV,
    REFERENCE,
    SCHEMES,
    distance_sweep,
    load_reference,
    power_sweep,
)
from runners import _cli, _plot  # noqa: E402
from runners._plot import plt, save  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "reproduce_demirhan")
    p.add_argument("--drops", type=_cli.positive_int, default=20,
                   help="first drops used (per distance bin with --distance)")
    p.add_argument("--distance", action="store_true", help="Fig. 4 trend from distance_sweep")
    p.add_argument("--rho", type=_cli.float_in(0.0, 1.0), action="append", default=None,
                   help="power-sweep rho values to run (repeatable; default: all seven)")
    p.add_argument("--ref", type=Path, default=REFERENCE,
                   help=f"folder of the reference .npz (default ${REF_ENV}, else {REFERENCE})")
    p.add_argument("--solver", default="SCS", choices=("SCS", "CLARABEL"),
                   help="SDP solver of cvx")
    p.add_argument("--jobs", type=_cli.positive_int, default=None,
                   help="worker processes (default: all cores)")
    _cli.add_common(p, threads=None, skip=("scenario", "users", "set", "seed"))
    _cli.add_figure_flags(p)
    return p.parse_args(argv)


def format_table(rows: list[dict[str, Any]], key: str) -> str:
    """Fixed-width table: key, scheme, ours / reference / relative error for both metrics."""
    head = (f"{key:>6} {'scheme':<7} {'drops':>5} {'fb':>3} | {'min-SINR':>9} {'ref':>9} "
            f"{'err':>7} | {'SSNR':>7} {'ref':>7} {'err':>7} | {'med s':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = " | ".join(f"{r[m]:>{w}.4f} {r[m + '_ref']:>{w}.4f} {r[m + '_err']:>+7.2%}"
                           for m, w in zip(METRICS, (9, 7), strict=True))
        lines.append(f"{r[key]:>6g} {r['scheme']:<7} {r['drops']:>5} {r['fallbacks']:>3} | "
                     f"{cells} | {r['median_s']:>6.3f}")
    worst = max(abs(r[f"{m}_err"]) for r in rows for m in METRICS)
    lines.append(f"worst relative error of a cell: {worst:.2%}")
    return "\n".join(lines)


def write_rows(rows: list[dict[str, Any]], path: Path, config: dict[str, Any],
               interrupted: bool = False) -> None:
    """``path.csv`` (one row per cell) and ``path.json`` (config + rows), atomically."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_text(path.with_suffix(".csv"), buf.getvalue())
    write_json(path.with_suffix(".json"), {"config": config, "interrupted": interrupted,
                                           "rows": rows})


def plot_distance(rows: list[dict[str, Any]], path: Path) -> None:
    """Fig. 4 layout: min-SINR and SSNR vs target-to-nearest-UE distance, ours vs reference."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, m, label in zip(axes, METRICS, ("min-SINR", "SSNR"), strict=True):
        for i, scheme in enumerate(SCHEMES):
            sub = [r for r in rows if r["scheme"] == scheme]
            x = [r["bin_m"] + 2.5 for r in sub]
            color = _plot.palette(i)
            ax.plot(x, _plot.to_axis([r[m] for r in sub]), "-o", color=color,
                    label=f"{scheme} (cfisac)")
            ax.plot(x, _plot.to_axis([r[f"{m}_ref"] for r in sub]), "--x", color=color,
                    alpha=0.6, label=f"{scheme} (reference)")
        ax.set_xlabel("target-to-nearest-UE distance (bin centre, m)")
        ax.set_ylabel(_plot.axis_label(label))
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"Demirhan & Alkhateeb Fig. 4 trend, rho = 0.5, {rows[0]['drops']} drops per bin")
    fig.tight_layout()
    save(fig, path)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return _cli.run(lambda: reproduce(parse_args(argv)), "reproduce_demirhan")


def reproduce(args: argparse.Namespace) -> int:
    """Check the reference, create the run folder, solve, write what finished."""
    ref = load_reference(args.ref, "distance_sweep.npz" if args.distance else "power_sweep.npz")
    if not args.distance and args.rho and not any(np.isclose(ref["rho"], r).any()
                                                  for r in args.rho):
        raise ValueError(f"--rho {args.rho} matches none of {ref['rho'].tolist()}")
    out = run_dir("reproduce-demirhan", args.out)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    key, stem = ("bin_m", "distance_table") if args.distance else ("rho", "power_table")
    rows: list[dict[str, Any]] = []
    interrupted = False
    try:
        if args.distance:
            distance_sweep(ref, args.drops, args.solver, args.jobs, not args.quiet, rows)
        else:
            power_sweep(ref, args.drops, args.solver, args.jobs, not args.quiet, args.rho, rows)
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted: writing the {len(rows)} rows that finished", file=sys.stderr)
    if not rows:
        return _cli.outcome(0, 0, interrupted)
    print(format_table(rows, key))
    write_rows(rows, out / stem, config, interrupted)
    if args.distance:
        plot_distance(rows, out / "distance.png")
    print(f"wrote {out}/{stem}.csv, .json" + (" and distance.png" if args.distance else ""))
    return _cli.outcome(1, 0, interrupted)


if __name__ == "__main__":
    sys.exit(main())
