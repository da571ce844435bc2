"""Train the seed's teacher-student distributed networks for one scenario.

    python runners/train.py --scenario pos2 --users 8                      # gram-mlp, cpu preset
    python runners/train.py --scenario pos1 --users 5 --arch unet --preset paper   # the seed's

Trains the SSNR teacher, the SINR teacher and the student (or the ``--role``s given), showing a
progress bar per epoch, and writes to ``runs/<date>-train-<scenario>-N<users>/``:

- ``<scenario>-N<users>-<arch>-<role>.pt``: checkpoint (every AP's weights, arch, system,
  scenario, g1max/g2max, final lambda, selected epoch and its validation metrics);
- ``<role>.csv``: per epoch, train/val g1 (SSNR) and g2 (min-SINR), loss, lambda, learning rate;
- ``curves.png``: validation SSNR and min-SINR per role (seed Figs. 7-10) with the CVX mean as a
  dashed line, and the student's lambda;
- ``summary.json``: the selected epoch and metrics of each role, the CVX reference used.

``--install`` copies the checkpoints to ``policies/learned/shipped/`` (atomically, once every role
has finished) so that ``policies.make("student", system, scenario=...)`` finds them.

Architectures: ``gram-mlp`` (default: each AP's MLP on its own Gram matrix in a canonical UE
order, span output), the seed's ``unet`` / ``unet-f5`` / ``unet-f7`` / ``cae`` / ``cnn``.
Presets: ``paper`` / ``paper-80k`` (the seed's schedule: 20k / 80k drops, batch 500, up to 1000
epochs; for a GPU, see ``runners/train_paper.py``), ``cpu`` (teachers + student in <= 20 min on
2 cores: fresh drops each epoch, Adam 1e-3), ``tiny`` (a smoke test).

Every flag is checked before any training (``--init`` must hold checkpoints for the roles, the
run folder must be writable); a user error exits 2 with one line. Ctrl-C stops the whole
training, keeps what finished in the run folder and exits 130.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cfisac_env.physics import metrics  # noqa: E402
from cfisac_env.runs import write_json  # noqa: E402
from policies.learned.losses import LAMBDA_0  # noqa: E402
from policies.learned.nets import ARCHS  # noqa: E402
from policies.learned.training import PRESETS, ROLES, train  # noqa: E402
from runners import _cli  # noqa: E402

# Published JSC (CVX) means at rho = 0.5 on Demirhan & Alkhateeb's 1000 Pos-1 drops with 5 UEs
# (shared/reference/demirhan2023/README.md): the dashed line where cvx cannot be run here.


def cvx_reference(scenario: str, users: int, val_csi: np.ndarray | None, system, drops: int
                  ) -> dict | None:
    """Mean SSNR/min-SINR of the ``cvx`` policy: solved on ``drops`` validation drops when the
    policy is available, else the published means (pos1, N=5), else None."""
    if drops > 0 and val_csi is not None:
        try:
            from policies.evaluation.pool import decide_many

            dec = decide_many("cvx", system, val_csi[:drops], {"rho": 0.5}, None)
            beams = np.concatenate([d.beams for d in dec])
            g1, g2 = metrics.g1_g2(val_csi[:len(beams)], beams, system)
            return {"g1": float(np.mean(g1)), "g2": float(np.mean(g2)),
                    "source": f"cvx policy on {len(beams)} drops"}
        except (ImportError, AttributeError, ValueError, TypeError) as e:
            print(f"cvx reference unavailable ({e}); ", end="", file=sys.stderr)
    from policies.evaluation.published import published_cvx

    pub = published_cvx(scenario, users)
    return None if pub is None else {"g1": pub["ssnr"], "g2": pub["min_sinr"],
                                     "source": pub["source"]}


def plot_curves(path: Path, histories: dict, cvx: dict | None, title: str) -> None:
    """Validation SSNR and min-SINR per epoch for each role, CVX dashed; lambda if any."""
    from runners._plot import palette, plt, save

    has_lam = any(np.isfinite([r["lambda"] for r in h]).any() for h in histories.values())
    fig, axes = plt.subplots(1, 3 if has_lam else 2, figsize=(15 if has_lam else 10, 4))
    for ax, key, label in ((axes[0], "val_g1", "validation SSNR g1"),
                           (axes[1], "val_g2", "validation min-SINR g2")):
        for role, hist in histories.items():
            ax.plot([r["epoch"] for r in hist], [r[key] for r in hist], ".-", ms=3, label=role,
                    color=palette(ROLES.index(role)))
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
                axes[2].plot([r["epoch"] for r in hist], lam, color=palette(ROLES.index(role)))
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel("lambda at epoch end")
        axes[2].set_ylim(-0.05, 1.05)
        axes[2].grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    save(fig, path)


def read_histories(run: Path) -> dict[str, list[dict[str, float]]]:
    """Per-role histories from the ``<role>.csv`` files of a run folder."""
    import csv

    return {p.stem: [{k: float(v) for k, v in r.items()} for r in csv.DictReader(p.open())]
            for p in sorted(run.glob("*.csv"), key=lambda p: ROLES.index(p.stem)
                            if p.stem in ROLES else -1) if p.stem in ROLES}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__.split("\n\n")[0], "train")
    _cli.add_common(p, scenario="pos2", users=8, threads=None)
    p.add_argument("--arch", default="gram-mlp", choices=ARCHS)
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    p.add_argument("--device", type=_cli.device_type, default="auto",
                   help="auto (GPU if present), cpu, cuda, ...")
    p.add_argument("--role", action="append", choices=ROLES, dest="roles",
                   help="role to train (repeatable); default: both teachers and the student")
    p.add_argument("--beta", type=_cli.float_in(0.0, 1.0), default=0.5,
                   help="weight of the fixed-beta baseline, in [0, 1]")
    p.add_argument("--lam", type=_cli.float_in(0.0, 1.0), default=LAMBDA_0,
                   help="weight of fixed-lambda, in [0, 1]")
    p.add_argument("--epochs", type=_cli.positive_int, default=None,
                   help="override the preset's epoch caps (SSNR teacher and the others)")
    p.add_argument("--time-limit", type=_cli.positive_float, default=None,
                   help="wall-clock seconds per role (the selection so far is kept)")
    p.add_argument("--cvx-drops", type=_cli.nonnegative_int, default=0,
                   help="validation drops solved by the cvx policy for the dashed line "
                        "(seconds each; 0 = published means where they exist)")
    p.add_argument("--init", type=Path, default=None,
                   help="folder of checkpoints to warm-start from (e.g. policies/learned/shipped)")
    p.add_argument("--lr", type=_cli.positive_float, default=None,
                   help="override the preset's learning rate")
    p.add_argument("--install", action="store_true",
                   help="copy the checkpoints to policies/learned/shipped/")
    p.add_argument("--replot", type=Path, default=None, metavar="RUN",
                   help="only redraw RUN/curves.png from its CSVs (with --cvx-drops)")
    p.add_argument("--no-progress", action="store_true", dest="quiet",
                   help="same as --quiet")
    _cli.add_figure_flags(p, db=False)
    return p.parse_args(argv)


def check_init(init: Path, scenario: str, users: int, arch: str, roles: tuple[str, ...]
               ) -> list[str]:
    """The roles ``init`` holds a checkpoint for (``<scenario>-N<users>-<arch>-<role>.pt``).

    Raises:
        ValueError: ``init`` is not a folder or holds none of them (training would silently
            start from scratch).
    """
    if not init.is_dir():
        raise ValueError(f"--init {init} is not a folder of checkpoints")
    names = {role: f"{scenario}-N{users}-{arch}-{role}.pt" for role in roles}
    found = [role for role, name in names.items() if (init / name).is_file()]
    if not found:
        raise ValueError(f"--init {init} holds none of {', '.join(names.values())}; "
                         "nothing to warm-start from")
    return found


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return _cli.run(lambda: run(parse_args(argv)), "train")


def run(args: argparse.Namespace) -> int:
    """Check everything, train, then write curves and summary (atomically)."""
    if args.replot:
        if not args.replot.is_dir():
            raise ValueError(f"--replot {args.replot} is not a run folder")
        sc = _cli.load_scenario(args)
        val = sc.drops(np.random.default_rng(args.seed + 1), args.cvx_drops)[0] \
            if args.cvx_drops else None
        cvx = cvx_reference(sc.name, sc.system.N, val, sc.system, args.cvx_drops)
        plot_curves(args.replot / "curves.png", read_histories(args.replot), cvx,
                    f"{sc.name}, N={sc.system.N}, {args.arch} ({args.replot.name})")
        print(f"wrote {args.replot / 'curves.png'}")
        return 0
    sc = _cli.load_scenario(args)
    overrides = dict(args.set)
    roles = tuple(args.roles or ("ssnr-teacher", "sinr-teacher", "student"))
    if args.init is not None:
        found = check_init(args.init, sc.name, sc.system.N, args.arch, roles)
        for role in sorted(set(roles) - set(found)):
            print(f"note: no {role} checkpoint in --init {args.init}: that role starts from "
                  "scratch", file=sys.stderr)
    pre_over = {"ssnr_epochs": args.epochs, "max_epochs": args.epochs} if args.epochs else {}
    if args.lr:
        pre_over["lr"] = args.lr
    limits = {r: args.time_limit for r in roles} if args.time_limit else None
    t0 = time.perf_counter()
    res = train(args.scenario, args.users, args.arch, args.preset, args.device, args.out,
                roles, args.seed, args.beta, args.lam, args.threads,
                not args.quiet, overrides, pre_over, limits, args.install, args.init)
    interrupted = bool(getattr(res, "interrupted", False))
    val = sc.drops(np.random.default_rng(args.seed + 1), args.cvx_drops)[0] \
        if args.cvx_drops else None
    cvx = cvx_reference(sc.name, sc.system.N, val, sc.system, args.cvx_drops)
    plot_curves(res.out / "curves.png", res.histories, cvx,
                f"{sc.name}, N={sc.system.N}, {args.arch}, preset {args.preset}")
    summary = {"scenario": sc.name, "users": sc.system.N, "arch": args.arch,
               "preset": args.preset, "seconds": time.perf_counter() - t0, "cvx": cvx,
               "interrupted": interrupted, "roles": res.summary}
    write_json(res.out / "summary.json", summary)
    for role, s in res.summary.items():
        print(f"{role:13s} epoch {s['epoch']:4d}/{s['epochs_run']:4d} ({s['stopped']}): "
              f"val SSNR {s['val_g1']:.3f}  val min-SINR {s['val_g2']:.3f}  "
              f"lambda {s['lambda']:.2f}  {s['seconds']:.0f} s")
    if cvx:
        print(f"CVX reference: SSNR {cvx['g1']:.3f}  min-SINR {cvx['g2']:.3f} ({cvx['source']})")
    print(f"wrote {res.out} in {summary['seconds']:.0f} s")
    if interrupted:
        print("interrupted: the run folder keeps the epochs that finished", file=sys.stderr)
    return _cli.outcome(1, 0, interrupted)


if __name__ == "__main__":
    sys.exit(main())
