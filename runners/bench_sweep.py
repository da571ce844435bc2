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
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cfisac_env.runs import atomic_path, run_dir, write_json  # noqa: E402
from policies.evaluation.store import ResultStore  # noqa: E402
from policies.evaluation.sweep import expand, run_sweep  # noqa: E402
from runners import _cli  # noqa: E402


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
    return p.parse_args(argv)


def timed(cells, engine: str, jobs: int, **kw) -> tuple[float, dict, object]:
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp) / "r.sqlite")
        t0 = time.perf_counter()
        out = run_sweep(cells, store, engine=engine, jobs=jobs, progress=False, **kw)
        wall = time.perf_counter() - t0
        numbers = {(r["cell"], r["drop"]): (r["ssnr"], r["min_sinr"]) for r in store.rows()}
        store.close()
    return wall, numbers, out


def main(argv: list[str] | None = None) -> int:
    return _cli.run(lambda: bench(parse_args(argv)), "bench_sweep")


def bench(args: argparse.Namespace) -> int:
    out_dir = run_dir("bench-sweep", args.out)
    _cli.set_threads(args.threads)
    engines = [("serial", "local", 1), (f"local pool ({args.jobs})", "local", args.jobs)]
    ray_start = None
    if not args.no_ray:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=args.jobs, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR",
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                           "OPENBLAS_NUM_THREADS": "1"}})
        ray_start = time.perf_counter() - t0
        warm = expand([args.scenario], [args.users], [("cvx", {}), ("ns-rzf", {})],
                      [args.seed + 1], 2 * args.jobs)
        timed(warm, "ray", args.jobs, chunk=1)     # workers import torch and the solvers once
        ray_start = time.perf_counter() - t0
        engines.append((f"local Ray ({args.jobs} CPUs)", "ray", args.jobs))
    heavy = expand([args.scenario], [args.users], [("cvx", {}), ("ns-rzf", {})], [args.seed],
                   args.drops)
    light = expand([args.scenario], [args.users], [("mrt-target", {})], [args.seed],
                   args.overhead_tasks)
    rows, ref = [], None
    try:
        for label, engine, jobs in engines:
            wall, numbers, res = timed(heavy, engine, jobs, task_seconds=args.task_seconds)
            same = ref is None or numbers == ref
            ref = ref or numbers
            light_wall, _, light_res = timed(light, engine, jobs, chunk=1)
            rows.append({"engine": label, "wall_s": wall, "drops": res.rows,
                         "drops_per_s": res.rows / wall, "tasks": res.tasks + res.inline,
                         "task_s_median": float(np.median(res.task_seconds)),
                         "same_numbers": same, "overhead_wall_s": light_wall,
                         "overhead_tasks": light_res.tasks + light_res.inline})
            print(f"{label:>22}: {res.rows} drops in {wall:6.2f} s = {res.rows / wall:6.2f} "
                  f"drops/s ({rows[-1]['tasks']} tasks, median {rows[-1]['task_s_median']:.2f}"
                  f" s); same numbers as serial: {same}", flush=True)
    finally:
        if ray_start is not None:
            import ray

            ray.shutdown()
    base = rows[0]["overhead_wall_s"]
    for r, (_, _, jobs) in zip(rows, engines, strict=True):
        # worker time per task beyond the serial work: jobs x wall - serial wall, per task
        r["overhead_ms_per_task"] = 1e3 * (jobs * r["overhead_wall_s"] - base) \
            / r["overhead_tasks"] if r is not rows[0] else 0.0
        r["speedup_vs_serial"] = r["drops_per_s"] / rows[0]["drops_per_s"]
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
    a1.bar(names, [r["drops_per_s"] for r in rows], color=["C0", "C1", "C2"][: len(rows)])
    a1.set(ylabel="drops per second", title=f"cvx + ns-rzf, {args.scenario} N={args.users}, "
           f"{args.drops} drops")
    a2.bar(names[1:], [r["overhead_ms_per_task"] for r in rows[1:]], color=["C1", "C2"])
    a2.set(ylabel="ms per task", title="overhead per task (one-drop tasks)")
    for ax in (a1, a2):
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{os.cpu_count()} cores, load average {load:.1f}", fontsize=9)
    fig.tight_layout()
    with atomic_path(out_dir / "scaling.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    print(f"wrote {out_dir}/ (scaling.json, scaling.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
