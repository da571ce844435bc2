"""Sweep engines side by side: drops per second and overhead per task, measured in one run.

    python runners/bench_sweep.py          # pos2 N=5, cvx + ns-rzf on 300 drops, 2 workers
    python runners/bench_sweep.py --drops 200 --jobs 4 --users 8

Runs the same sweep (``cvx`` and ``ns-rzf`` on ``--drops`` drops, no decision cache) serially
in this process, on the local process pool and on a local Ray instance (started before timing;
its start-up is reported apart), each into a fresh result store, checks that the three give the
same numbers, and reports drops per second. The overhead per task is measured on a policy that
takes microseconds (``mrt-target``) in one-drop tasks: the worker time per task beyond the
serial work, (workers x engine wall time - serial wall time) / tasks. Writes
``runs/<date>-bench-sweep/``: ``scaling.json`` and ``scaling.png``.
"""

from __future__ import annotations

import argparse
import os
import sys

from cfisac_env.runs import run_dir, write_json
from policies.evaluation.sweep import bench_engines
from runners import _cli
from runners._plot import palette, plt, save


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "bench_sweep")
    _cli.add_common(p, users=5, threads=1, skip=("set",))
    p.add_argument("--drops", type=_cli.positive_int, default=300, help="drops (default 300)")
    p.add_argument("--jobs", type=_cli.positive_int, default=2,
                   help="workers of the pool and CPUs of the Ray instance (default 2)")
    p.add_argument("--task-seconds", type=_cli.positive_float, default=0.5,
                   help="target seconds per task (default 0.5)")
    p.add_argument("--overhead-tasks", type=_cli.positive_int, default=200,
                   help="one-drop tasks of the overhead measurement (default 200)")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray engine")
    _cli.add_figure_flags(p, db=False)
    return p.parse_args(argv)


@_cli.entry("bench_sweep")
def main(argv: list[str] | None = None) -> int:
    """Time the engines side by side, print the ratios, write ``scaling.json`` and
    ``scaling.png``."""
    args = parse_args(argv)
    out_dir = run_dir("bench-sweep", args.out)
    _cli.set_threads(args.threads)
    rows, ray_start = bench_engines(args.scenario, args.users, args.seed, args.drops, args.jobs,
                                    args.task_seconds, args.overhead_tasks, not args.no_ray,
                                    report=print)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nsweep: {args.scenario} N={args.users}, cvx + ns-rzf on {args.drops} drops; "
          f"{os.cpu_count()} cores, 1-min load average {load:.1f} at the end")
    for r in rows:
        print(f"{r['engine']:>22}: x{r['speedup_vs_serial']:.2f} vs serial; overhead "
              f"{r['overhead_ms_per_task']:.1f} ms per task ({r['overhead_tasks']} one-drop "
              "tasks of mrt-target)")
    if ray_start is not None:
        print(f"{'':>22}  Ray start-up and worker warm-up (not in the times above): "
              f"{ray_start:.1f} s")
    write_json(out_dir / "scaling.json", {"args": vars(args) | {"out": str(args.out)},
                                         "rows": rows, "ray_startup_s": ray_start,
                                         "load_average": load, "cores": os.cpu_count()})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = [r["engine"] for r in rows]
    a1.bar(names, [r["drops_per_s"] for r in rows], color=[palette(k) for k in range(len(rows))])
    a1.set(ylabel="drops per second", title=f"cvx + ns-rzf, {args.scenario} N={args.users}, "
           f"{args.drops} drops")
    a2.bar(names[1:], [r["overhead_ms_per_task"] for r in rows[1:]],
           color=[palette(k) for k in range(1, len(rows))])
    a2.set(ylabel="ms per task", title="overhead per task (one-drop tasks)")
    for ax in (a1, a2):
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", visible=False)
    fig.suptitle(f"{os.cpu_count()} cores, 1-min load average {load:.1f} (a loaded machine "
                 "measures overhead, not speed-up)", fontsize=9)
    save(fig, out_dir / "scaling.png")
    print(f"wrote {out_dir}/ (scaling.json, scaling.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
