"""Train the learned distributed policies of one scenario family.

    python runners/train.py --scenario pos2 --arch span-attn --install      # the shipped student
    python runners/train.py --scenario pos2 --users 8                       # seed scheme, gram-mlp
    python runners/train.py --scenario pos1 --users 5 --arch unet --preset paper   # the seed's

``--arch span-attn`` (the shipped default of ``student`` / ``sinr-teacher``) trains ONE any-N
network for the family (N = 1..16 cycled, label-free per-drop loss, fresh drops of the scenario's
own distribution every iteration: :mod:`policies.learned.span_training`) for ``--time-limit``
seconds (default 3000) and writes ``<scenario>-span-attn.pt`` each time the validation loss
improves, ``span.csv`` (the validation history) and ``curves.png``.

Any other ``--arch`` trains the seed's scheme (eqs. 10-12) for one N: the SSNR teacher, the SINR
teacher and the student (or the ``--role`` s given), writing ``<scenario>-N<users>-<arch>-<role>
.pt`` and ``<role>.csv`` per role and ``curves.png`` (validation SSNR / min-SINR per epoch).
Presets: ``paper`` / ``paper-80k`` (the seed's schedule; for a GPU, see
``runners/train_paper.py``), ``cpu`` (<= 20 min on 2 cores), ``tiny`` (a smoke test).

Both write ``summary.json`` (``"interrupted": true`` after Ctrl-C, even before the first epoch);
``--install`` copies the checkpoints to ``policies/learned/shipped/`` once training finished. A
learning rate that makes the loss non-finite stops training with one line (exit 1) and writes no
non-finite checkpoint. A user error exits 2 with one line; Ctrl-C keeps what finished (exit 130).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from cfisac_env.runs import run_dir, write_json
from policies.learned import checkpoints as store
from policies.learned.losses import LAMBDA_0
from policies.learned.nets import ARCHS
from policies.learned.roles import PAPER_ROLES
from policies.learned.span import ARCH as SPAN
from policies.learned.training import PRESETS, train
from runners import _cli


def plot_curves(path: Path, histories: dict[str, list[dict[str, float]]], x: str, title: str,
                keys: list[tuple[str, str]]) -> None:
    """One panel per ``(column, label)`` of ``keys``, one line per history, against ``x``."""
    from runners._plot import plt, save

    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], keys, strict=True):
        for name, hist in histories.items():
            cols = [k for k in hist[0] if k == key or k.startswith(key + "_N")] if hist else []
            for c in cols:
                ax.plot([r[x] for r in hist], [r[c] for r in hist], ".-", ms=3,
                        label=f"{name} {c[len(key) + 1:]}".strip())
        ax.set_xlabel(x)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    save(fig, path)


def read_csv(path: Path) -> list[dict[str, float]]:
    """A history CSV as rows of floats."""
    return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(path.open())]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__.split("\n\n")[0], "train")
    _cli.add_common(p, scenario="pos2", users=8, threads=1)
    p.add_argument("--arch", default=SPAN, choices=(SPAN, *ARCHS))
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS),
                   help="seed-scheme schedule (ignored by span-attn)")
    p.add_argument("--device", type=_cli.device_type, default="auto",
                   help="auto (GPU if present), cpu, cuda, ...")
    p.add_argument("--role", action="append", choices=PAPER_ROLES, dest="roles",
                   help="seed-scheme role to train (repeatable); default: both teachers and "
                        "the student")
    p.add_argument("--beta", type=_cli.float_in(0.0, 1.0), default=0.5,
                   help="weight of the fixed-beta baseline, in [0, 1]")
    p.add_argument("--lam", type=_cli.float_in(0.0, 1.0), default=LAMBDA_0,
                   help="weight of fixed-lambda, in [0, 1]")
    p.add_argument("--epochs", type=_cli.positive_int, default=None,
                   help="override the preset's epoch caps (seed scheme)")
    p.add_argument("--time-limit", type=_cli.positive_float, default=None,
                   help="wall-clock seconds (span-attn: the run, default 3000; seed scheme: "
                        "per role, checked after each epoch)")
    p.add_argument("--init", type=Path, default=None,
                   help="warm start: a span-attn checkpoint, or a folder of seed-scheme ones")
    p.add_argument("--lr", type=_cli.positive_float, default=None,
                   help="override the learning rate")
    p.add_argument("--install", action="store_true",
                   help="copy the checkpoints to policies/learned/shipped/")
    p.add_argument("--no-progress", action="store_true", dest="quiet", help="same as --quiet")
    _cli.add_figure_flags(p, db=False)
    return p.parse_args(argv)


def check_init(init: Path, scenario: str, users: int, arch: str, roles: tuple[str, ...]
               ) -> list[str]:
    """The roles ``init`` holds a seed-scheme checkpoint for; a ``ValueError`` when it is not a
    folder or holds none (training would silently start from scratch)."""
    if not init.is_dir():
        raise ValueError(f"--init {init} is not a folder of checkpoints")
    names = {role: store.checkpoint_name(scenario, users, arch, role) for role in roles}
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
    import torch

    sc = _cli.load_scenario(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.arch == SPAN:
        return run_span(args, sc, t0)
    roles = tuple(args.roles or ("ssnr-teacher", "sinr-teacher", "student"))
    if args.init is not None:
        found = check_init(args.init, sc.name, sc.system.N, args.arch, roles)
        for role in sorted(set(roles) - set(found)):
            print(f"note: no {role} checkpoint in --init {args.init}: that role starts from "
                  "scratch", file=sys.stderr)
    pre_over: dict = {"ssnr_epochs": args.epochs, "max_epochs": args.epochs} if args.epochs \
        else {}
    if args.lr:
        pre_over["lr"] = args.lr
    limits = {r: args.time_limit for r in roles} if args.time_limit else None
    out = run_dir(f"train-{sc.name}-N{sc.system.N}", args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"scenario": sc.name, "users": sc.system.N, "arch": args.arch,
               "preset": args.preset, "interrupted": True, "roles": {}}
    try:
        res = train(args.scenario, args.users, args.arch, args.preset, args.device, out, roles,
                    args.seed, args.beta, args.lam, None, not args.quiet, dict(args.set),
                    pre_over, limits, args.install, args.init)
    except KeyboardInterrupt:           # before any role's first epoch: record it
        write_json(out / "summary.json", {**summary, "seconds": time.perf_counter() - t0})
        print(f"interrupted before the first epoch; wrote {out / 'summary.json'}",
              file=sys.stderr)
        return _cli.INTERRUPTED
    if res.histories and any(res.histories.values()):
        plot_curves(out / "curves.png", {r: h for r, h in res.histories.items() if h}, "epoch",
                    f"{sc.name}, N={sc.system.N}, {args.arch}, preset {args.preset}",
                    [("val_g1", "validation SSNR g1"), ("val_g2", "validation min-SINR g2")])
    summary.update(interrupted=res.interrupted, diverged=res.diverged or None,
                   seconds=time.perf_counter() - t0, roles=res.summary)
    write_json(out / "summary.json", summary)
    for role, s in res.summary.items():
        print(f"{role:13s} epoch {s['epoch']:4d}/{s['epochs_run']:4d} ({s['stopped']}): "
              f"val SSNR {s['val_g1']:.3f}  val min-SINR {s['val_g2']:.3f}  "
              f"lambda {s['lambda']:.2f}  {s['seconds']:.0f} s")
    print(f"wrote {out} in {summary['seconds']:.0f} s")
    if res.diverged:
        print(f"training stopped: {res.diverged}; lower --lr (no non-finite checkpoint written)",
              file=sys.stderr)
        return _cli.FAILED
    if res.interrupted:
        print("interrupted: the run folder keeps the epochs that finished", file=sys.stderr)
    return _cli.outcome(1, 0, res.interrupted)


def run_span(args: argparse.Namespace, sc, t0: float) -> int:
    """``--arch span-attn``: one any-N network for the family (module docstring)."""
    from policies.learned.span_training import SpanConfig, train_span

    out = run_dir(f"train-{sc.name}-span", args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = SpanConfig(seconds=args.time_limit or 3000.0, **({"lr": args.lr} if args.lr else {}))
    name = store.span_name(sc.name)

    def save(net, meta: dict) -> Path:
        return store.save_span(out / name, net, {"scenario": sc.name, "seed": args.seed,
                                                 "overrides": dict(args.set), **meta})

    res = train_span(sc.name, out, cfg, args.seed, dict(args.set), not args.quiet, save,
                     args.init)
    saved = (out / name).is_file()
    if res.history:
        plot_curves(out / "curves.png", {"val": res.history}, "iteration",
                    f"{sc.name}, span-attn (any N)",
                    [("val_g1", "validation SSNR"), ("val_g2", "validation min-SINR"),
                     ("val_loss", "validation loss")])
    interrupted = res.stopped == "interrupted"
    summary = {"scenario": sc.name, "arch": SPAN, "interrupted": interrupted,
               "stopped": res.stopped, "best_val_loss": res.best if saved else None,
               "checkpoint": str(out / name) if saved else None,
               "iterations": int(res.history[-1]["iteration"]) if res.history else 0,
               "seconds": time.perf_counter() - t0}
    write_json(out / "summary.json", summary)
    print(f"span-attn on {sc.name}: {res.stopped}; best validation loss "
          f"{res.best:.4f}" if saved else f"span-attn on {sc.name}: {res.stopped}; no checkpoint")
    if res.stopped.startswith("diverged"):
        print(f"training stopped: {res.stopped}; lower --lr (no non-finite checkpoint written)",
              file=sys.stderr)
        return _cli.FAILED
    if args.install and saved and not interrupted:
        print(f"installed {store.install(out / name)}")
    print(f"wrote {out}")
    return _cli.outcome(1, 0, interrupted) if saved else _cli.FAILED


if __name__ == "__main__":
    sys.exit(main())
