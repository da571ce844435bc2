"""Reproduce the seed paper's training: its networks, its schedule, every shipped scenario.

    python runners/train_paper.py                      # all four scenarios, GPU if present
    python runners/train_paper.py --only pos2:8 --time-limit 600 --device cpu   # a CPU budget

For each scenario (pos1 N=5 and pos2 N=2, 5 with the U-net F3 on 20,000 drops; pos2 N=8 with the
U-net F5 on 80,000 drops, as in the seed's Fig. 15) it trains all five roles with the ``paper``
preset (Adam 0.01, batch 500, ReduceLROnPlateau x0.1 after 10 epochs, SSNR teacher 100 epochs,
the others up to 1000 epochs with patience 100, lambda_0 0.5, epsilon 0.01, the 94 % selection
rule) and writes ``runs/<date>-train-paper/<scenario>-N<users>/`` (checkpoints, CSVs, curves as
``runners/train.py`` does) and ``summary.json`` with the selected validation means and the
compute used. On a CPU the full schedule takes days: ``--time-limit`` caps each role's
wall-clock seconds, checked after each epoch (so at least one epoch runs: one U-net F3 epoch
of 20,000 drops took 55 s on a 2-core CPU; the selection so far is kept), and the summary says
so.

Score the result against ``cvx`` on held-out drops with
``python runners/bench_policy.py quality --scenario S --users N --checkpoint-root RUN/S-NN
--policy paper-student`` (the seed scheme's roles are scored as ``paper-student``,
``paper-sinr-teacher``, ``ssnr-teacher``, ``fixed-beta``, ``fixed-lambda``).
"""

from __future__ import annotations

import sys
import time

from policies.learned.roles import PAPER_ROLES as ROLES
from runners import _cli

# (scenario, users, arch, preset) of the seed's experiments (sections 8.1-8.3, Figs. 13-16).
RECIPES = (("pos1", 5, "unet", "paper"), ("pos2", 2, "unet", "paper"),
           ("pos2", 5, "unet", "paper"), ("pos2", 8, "unet-f5", "paper-80k"))


def parse_args(argv: list[str] | None):
    p = _cli.parser(__doc__)
    _cli.add_common(p, skip=("scenario", "users", "set"), threads=None)
    p.add_argument("--only", action="append", default=None, metavar="SCENARIO:N",
                   help="train only these recipes, e.g. --only pos2:8 (repeatable)")
    p.add_argument("--device", type=_cli.device_type, default="auto",
                   help="auto (GPU where there is one), cpu, cuda")
    p.add_argument("--time-limit", type=_cli.float_in(0.0), default=None,
                   help="wall-clock seconds per role, checked after each epoch (default: the full "
                        "schedule)")
    return p.parse_args(argv)


def body(args) -> int:
    from cfisac_env.runs import run_dir, write_json
    from policies.learned.training import train

    wanted = {tuple(s.split(":")) for s in args.only} if args.only else None
    recipes = [r for r in RECIPES if wanted is None or (r[0], str(r[1])) in wanted]
    if not recipes:
        raise ValueError(f"--only matches no recipe; recipes: "
                         f"{', '.join(f'{s}:{n}' for s, n, _, _ in RECIPES)}")
    out = run_dir("train-paper", args.out)
    summary: dict = {"device": args.device, "time_limit": args.time_limit, "runs": {}}
    for scenario, users, arch, preset in recipes:
        key = f"{scenario}-N{users}"
        t0 = time.perf_counter()
        limits = dict.fromkeys(ROLES, args.time_limit) if args.time_limit else None
        res = train(scenario, users, arch, preset, args.device, out / key, ROLES, args.seed,
                    threads=args.threads, progress=not args.quiet, time_limits=limits)
        summary["runs"][key] = {"arch": arch, "preset": preset, "roles": res.summary,
                                "seconds": time.perf_counter() - t0,
                                "interrupted": res.interrupted}
        write_json(out / "summary.json", summary)
        for role, s in res.summary.items():
            print(f"{key} {role:13s} epoch {s['epoch']:4d}/{s['epochs_run']:4d} "
                  f"({s['stopped']}): val SSNR {s['val_g1']:.3f}  min-SINR {s['val_g2']:.3f}")
        if res.interrupted:
            print(f"interrupted; finished roles kept in {out}", file=sys.stderr)
            return _cli.INTERRUPTED
    print(f"wrote {out}")
    return _cli.OK


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return _cli.run(lambda: body(parse_args(argv)), "train_paper")


if __name__ == "__main__":
    sys.exit(main())
