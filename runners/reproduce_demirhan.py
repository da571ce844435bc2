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
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

import policies  # noqa: E402
from cfisac_env.physics import metrics  # noqa: E402
from cfisac_env.physics.channels import csi  # noqa: E402
from cfisac_env.physics.system import System  # noqa: E402
from cfisac_env.runs import run_dir, write_json, write_text  # noqa: E402
from policies.evaluation.pool import decide_many  # noqa: E402
from runners import _cli, _plot  # noqa: E402
from runners._plot import plt, save  # noqa: E402

SCHEMES = {"NS+RZF": "ns-rzf", "NS+OPT": "ns-opt", "CB+OPT": "cb-opt", "JSC+Q1": "cvx"}
#: Where no gamma is feasible the reference keeps zero communication beams and the scheme's
#: sensing beam; our policies fall back to NS+RZF (flagged), so those drops are re-scored so.
REFERENCE_ON_FAILURE = {"ns-opt": "ns-sensing", "cb-opt": "cb-sensing"}
#: Where the authors' outputs are looked for: ``$CFISAC_DEMIRHAN_REF``, else
#: ``reference/demirhan2023`` at the repository root (``--ref`` overrides both).
REF_ENV = "CFISAC_DEMIRHAN_REF"
REFERENCE = Path(os.environ.get(REF_ENV) or
                 Path(__file__).resolve().parents[1] / "reference" / "demirhan2023")
METRICS = ("min_sinr", "ssnr")


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
    _cli.add_figure_flags(p, db=False)
    return p.parse_args(argv)


def load_reference(folder: Path, name: str) -> dict[str, np.ndarray]:
    """One reference archive as a dict; ValueError naming the path when missing."""
    path = folder / name
    if not path.is_file():
        raise ValueError(f"reference archive {path} not found; pass --ref <folder with {name}> "
                         f"or set {REF_ENV}. The data: output/power_data.mat and "
                         "output/dist_data*.mat of github.com/umut-demirhan/Cell-free-ISAC-"
                         "beamforming (CC BY-NC-SA 4.0), re-saved with numpy.savez under the keys "
                         "of the docs page 'Demirhan reference data'")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def run_schemes(system: System, x: np.ndarray, rho: float, solver: str, jobs: int | None,
                progress: bool, label: str) -> dict[str, dict[str, np.ndarray]]:
    """Every scheme on drops ``x (B, L, 2, M, Q)`` at ``rho``: per scheme ``min_sinr``, ``ssnr``,
    ``fallback`` and ``seconds``, each ``(B,)``, scored with :mod:`cfisac_env.physics.metrics`."""
    out = {}
    for scheme, spec in SCHEMES.items():
        options: dict[str, Any] = {"rho": rho}
        if spec == "cvx":
            options["solver"] = solver
        decisions = decide_many(spec, system, x, options, jobs=jobs, progress=progress,
                                desc=f"{label} {scheme}")
        if len(decisions) < len(x):
            raise KeyboardInterrupt
        beams = np.concatenate([d.beams for d in decisions])
        fallback = np.array([bool(d.info.get("fallback", [False])[0]) for d in decisions])
        if spec in REFERENCE_ON_FAILURE and fallback.any():
            sensing_only = policies.make(REFERENCE_ON_FAILURE[spec], system, rho=rho)
            beams[fallback] = sensing_only.act(x[fallback])
        out[scheme] = {
            "min_sinr": metrics.min_sinr(x, beams, system),
            "ssnr": metrics.ssnr(x, beams, system),
            "fallback": fallback,
            "seconds": np.array([d.seconds for d in decisions]),
        }
    return out


def compare_rows(ref: dict[str, np.ndarray], ours: dict[str, dict[str, np.ndarray]],
                 sel: np.ndarray, rho_index: int, key: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows (one per scheme) of our means beside the reference's on drops ``sel``."""
    rows = []
    for k, scheme in enumerate(SCHEMES):
        mask = np.ones(len(sel), bool)
        if scheme == "JSC+Q1":
            mask = ref["jsc_feasible"][sel, rho_index].astype(bool)
        row = {**key, "scheme": scheme, "drops": int(mask.sum()),
               "fallbacks": int(ours[scheme]["fallback"][mask].sum()),
               "median_s": float(np.median(ours[scheme]["seconds"]))}
        for m in METRICS:
            mine = float(np.mean(ours[scheme][m][mask]))
            theirs = float(np.mean(ref[m][sel, rho_index, k][mask]))
            row.update({m: mine, f"{m}_ref": theirs, f"{m}_err": mine / theirs - 1.0})
        rows.append(row)
    return rows


def power_sweep(ref: dict[str, np.ndarray], drops: int, solver: str, jobs: int | None,
                progress: bool, only: list[float] | None = None,
                rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Rows for every rho (or those in ``only``) and scheme on the first ``drops`` drops of
    ``power_sweep.npz``, appended to ``rows`` as each rho finishes (kept on Ctrl-C)."""
    system = System(ap_xy=ref["ap_xy"])
    sel = np.arange(min(drops, len(ref["ue_xy"])))
    x = csi(system, ref["ue_xy"][sel], ref["target_xy"][sel])
    rows = [] if rows is None else rows
    for r, rho in enumerate(ref["rho"]):
        if only is not None and not np.any(np.isclose(rho, only)):
            continue
        ours = run_schemes(system, x, float(rho), solver, jobs, progress, f"rho={rho:g}")
        rows += compare_rows(ref, ours, sel, r, {"rho": float(rho)})
    return rows


def distance_sweep(ref: dict[str, np.ndarray], drops: int, solver: str, jobs: int | None,
                   progress: bool, rows: list[dict[str, Any]] | None = None
                   ) -> list[dict[str, Any]]:
    """Rows per distance bin and scheme (rho = 0.5) on the first ``drops`` drops of each bin,
    appended to ``rows`` as each bin finishes (kept on Ctrl-C)."""
    system = System(ap_xy=ref["ap_xy"])
    rows = [] if rows is None else rows
    for b in np.unique(ref["bin"]):
        sel = np.flatnonzero(ref["bin"] == b)[:drops]
        x = csi(system, ref["ue_xy"][sel], ref["target_xy"][sel])
        ours = run_schemes(system, x, float(ref["rho"][0]), solver, jobs, progress, f"bin={b}")
        rows += compare_rows(ref, ours, sel, 0, {"bin_m": int(b)})
    return rows


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
    for ax, m, label in zip(axes, METRICS, ("min-SINR (linear)", "SSNR (linear)"), strict=True):
        for i, scheme in enumerate(SCHEMES):
            sub = [r for r in rows if r["scheme"] == scheme]
            x = [r["bin_m"] + 2.5 for r in sub]
            color = _plot.palette(i)
            ax.plot(x, [r[m] for r in sub], "-o", color=color, label=f"{scheme} (cfisac)")
            ax.plot(x, [r[f"{m}_ref"] for r in sub], "--x", color=color, alpha=0.6,
                    label=f"{scheme} (reference)")
        ax.set_xlabel("target-to-nearest-UE distance (bin centre, m)")
        ax.set_ylabel(label)
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
