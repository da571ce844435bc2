"""Train the seed's teacher-student distributed networks for one scenario.

    python runners/train.py --scenario pos2 --users 8 --arch unet --preset cpu

Trains the SSNR teacher, the SINR teacher and the student (or the ``--role``s given), showing a
progress bar per epoch, and writes to ``runs/<date>-train-<scenario>-N<users>/``:

- ``<scenario>-N<users>-<arch>-<role>.pt``: checkpoint (every AP's weights, arch, system,
  scenario, g1max/g2max, final lambda, selected epoch and its validation metrics);
- ``<role>.csv``: per epoch, train/val g1 (SSNR) and g2 (min-SINR), loss, lambda, learning rate;
- ``curves.png``: validation SSNR and min-SINR per role (seed Figs. 7-10) with the CVX mean as a
  dashed line, and the student's lambda;
- ``summary.json``: the selected epoch and metrics of each role, the CVX reference used.

``--install`` also copies the checkpoints to ``policies/checkpoints/`` so that
``policies.make("student", system, scenario=...)`` finds them.

Presets: ``paper`` (the seed's schedule: 20k drops, batch 500, up to 1000 epochs; for a GPU),
``cpu`` (teachers + student in <= 20 min on 2 cores: width-8 U-net, fresh drops each epoch,
faster learning-rate decay), ``tiny`` (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cfisac_env import metrics  # noqa: E402
from policies.losses import LAMBDA_0  # noqa: E402
from policies.nets import ARCHS  # noqa: E402
from policies.training import PRESETS, ROLES, train  # noqa: E402

# Published JSC (CVX) means at rho = 0.5 on Demirhan & Alkhateeb's 1000 Pos-1 drops with 5 UEs
# (shared/reference/demirhan2023/README.md): the dashed line where cvx cannot be run here.
PUBLISHED_CVX = {("pos1", 5): {"g1": 2.103, "g2": 3.747, "source": "published JSC, 1000 drops"}}


def cvx_reference(scenario: str, users: int, val_csi: np.ndarray | None, system, drops: int
                  ) -> dict | None:
    """Mean SSNR/min-SINR of the ``cvx`` policy: solved on ``drops`` validation drops when the
    policy is available, else the published means (pos1, N=5), else None."""
    if drops > 0 and val_csi is not None:
        try:
            from policies.pool import decide_many

            dec = decide_many("cvx", system, val_csi[:drops], {"rho": 0.5}, None)
            beams = np.concatenate([d.beams for d in dec])
            g1, g2 = metrics.g1_g2(val_csi[:len(beams)], beams, system)
            return {"g1": float(np.mean(g1)), "g2": float(np.mean(g2)),
                    "source": f"cvx policy on {len(beams)} drops"}
        except (ImportError, AttributeError, ValueError, TypeError) as e:
            print(f"cvx reference unavailable ({e}); ", end="", file=sys.stderr)
    return PUBLISHED_CVX.get((scenario, users))


def plot_curves(path: Path, histories: dict, cvx: dict | None, title: str) -> None:
    """Validation SSNR and min-SINR per epoch for each role, CVX dashed; lambda if any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_lam = any(np.isfinite([r["lambda"] for r in h]).any() for h in histories.values())
    fig, axes = plt.subplots(1, 3 if has_lam else 2, figsize=(15 if has_lam else 10, 4))
    for ax, key, label in ((axes[0], "val_g1", "validation SSNR g1"),
                           (axes[1], "val_g2", "validation min-SINR g2")):
        for role, hist in histories.items():
            ax.plot([r["epoch"] for r in hist], [r[key] for r in hist], ".-", ms=3, label=role,
                    color=f"C{ROLES.index(role)}")
        if cvx is not None:
            ax.axhline(cvx[key[-2:]], ls="--", color="k", label=f"CVX mean ({cvx['source']})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label + " (linear)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    if has_lam:
        for role, hist in histories.items():
            lam = [r["lambda"] for r in hist]
            if np.isfinite(lam).any():
                axes[2].plot([r["epoch"] for r in hist], lam, color=f"C{ROLES.index(role)}")
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel("lambda at epoch end")
        axes[2].set_ylim(-0.05, 1.05)
        axes[2].grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_histories(run: Path) -> dict[str, list[dict[str, float]]]:
    """Per-role histories from the ``<role>.csv`` files of a run folder."""
    import csv

    return {p.stem: [{k: float(v) for k, v in r.items()} for r in csv.DictReader(p.open())]
            for p in sorted(run.glob("*.csv"), key=lambda p: ROLES.index(p.stem)
                            if p.stem in ROLES else -1) if p.stem in ROLES}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="pos2")
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--arch", default="unet", choices=ARCHS)
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, ...")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--role", action="append", choices=ROLES, dest="roles",
                   help="role to train (repeatable); default: both teachers and the student")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beta", type=float, default=0.5, help="weight of the fixed-beta baseline")
    p.add_argument("--lam", type=float, default=LAMBDA_0, help="weight of fixed-lambda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="scenario override, e.g. --set antennas=32")
    p.add_argument("--epochs", type=int, default=None,
                   help="override the preset's epoch caps (SSNR teacher and the others)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="wall-clock seconds per role (the selection so far is kept)")
    p.add_argument("--cvx-drops", type=int, default=0,
                   help="validation drops solved by the cvx policy for the dashed line "
                        "(seconds each; 0 = published means where they exist)")
    p.add_argument("--init", type=Path, default=None,
                   help="folder of checkpoints to warm-start from (e.g. policies/checkpoints)")
    p.add_argument("--lr", type=float, default=None, help="override the preset's learning rate")
    p.add_argument("--install", action="store_true",
                   help="copy the checkpoints to policies/checkpoints/")
    p.add_argument("--replot", type=Path, default=None, metavar="RUN",
                   help="only redraw RUN/curves.png from its CSVs (with --cvx-drops)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import scenarios

    args = parse_args(argv)
    if args.replot:
        sc = scenarios.load(args.scenario, users=args.users)
        val = sc.drops(np.random.default_rng(args.seed + 1), args.cvx_drops)[0] \
            if args.cvx_drops else None
        cvx = cvx_reference(sc.name, sc.system.N, val, sc.system, args.cvx_drops)
        plot_curves(args.replot / "curves.png", read_histories(args.replot), cvx,
                    f"{sc.name}, N={sc.system.N}, {args.arch} ({args.replot.name})")
        print(f"wrote {args.replot / 'curves.png'}")
        return 0
    try:
        overrides = dict(scenarios.parse_assignment(s) for s in args.set)
        roles = tuple(args.roles or ("ssnr-teacher", "sinr-teacher", "student"))
        pre_over = {"ssnr_epochs": args.epochs, "max_epochs": args.epochs} if args.epochs else {}
        if args.lr:
            pre_over["lr"] = args.lr
        limits = {r: args.time_limit for r in roles} if args.time_limit else None
        t0 = time.perf_counter()
        res = train(args.scenario, args.users, args.arch, args.preset, args.device, args.out,
                    roles, args.seed, args.beta, args.lam, args.threads,
                    not args.no_progress, overrides, pre_over, limits, args.install, args.init)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sc = scenarios.load(args.scenario, users=args.users, overrides=overrides)
    val = sc.drops(np.random.default_rng(args.seed + 1), args.cvx_drops)[0] \
        if args.cvx_drops else None
    cvx = cvx_reference(sc.name, sc.system.N, val, sc.system, args.cvx_drops)
    plot_curves(res.out / "curves.png", res.histories, cvx,
                f"{sc.name}, N={sc.system.N}, {args.arch}, preset {args.preset}")
    summary = {"scenario": sc.name, "users": sc.system.N, "arch": args.arch,
               "preset": args.preset, "seconds": time.perf_counter() - t0, "cvx": cvx,
               "roles": res.summary}
    (res.out / "summary.json").write_text(json.dumps(summary, indent=2))
    for role, s in res.summary.items():
        print(f"{role:13s} epoch {s['epoch']:4d}/{s['epochs_run']:4d} ({s['stopped']}): "
              f"val SSNR {s['val_g1']:.3f}  val min-SINR {s['val_g2']:.3f}  "
              f"lambda {s['lambda']:.2f}  {s['seconds']:.0f} s")
    if cvx:
        print(f"CVX reference: SSNR {cvx['g1']:.3f}  min-SINR {cvx['g2']:.3f} ({cvx['source']})")
    print(f"wrote {res.out} in {summary['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
