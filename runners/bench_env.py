"""Benchmark the simulator core: single-env steps/s, vector-env steps/s, sampler drops/s.

    python runners/bench_env.py [--scenario pos2] [--users 2 5 8] [--envs 1024] [--seconds 2]
    python runners/bench_env.py --scale [--envs 1024] [--seconds 2]

Each figure is measured in this one run, side by side, for every N: steps per second of wall
time and of this process's CPU time (on a shared machine the CPU figure is what the code
costs; the wall figure what the load left of it). Beside each, the floating-point work of one
step (:func:`step_flops`) and the rate it reached, against the peak of one core
(:func:`core_peak_gflops`), shows how far the step is from the machine's limit. Batched steps,
no policy in the loop (a fixed random action). BLAS runs on one thread unless
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` say otherwise (threads fighting over two loaded
cores cost more than they give).

``--scale`` measures the cell-free sizes instead of ``--scenario``/``--users``: ``pos2`` N = 8
(L, N, M) = (2, 8, 16), ``street`` N = 32 (8, 32, 16) and ``block`` N = 32 (16, 32, 8), plus the
peak memory of the vector env with ``--envs`` copies at each size, and the moving ``street-road``
(8, 16, 16) with ``--road-envs`` copies. ``--out DIR`` also writes ``bench_env.json`` there.
Exit status 2 (one line) on a bad value, 130 on Ctrl-C (the rows that finished are printed and
written).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads its BLAS

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import cfisac_env  # noqa: E402,F401  (registers the env)
import scenarios  # noqa: E402
from cfisac_env.physics.system import System  # noqa: E402
from cfisac_env.runs import run_dir, write_json  # noqa: E402
from runners import _cli  # noqa: E402

#: The cell-free sizes of ``--scale``: (label, scenario, N).
SCALE = (("(2, 8, 16)", "pos2", 8), ("(8, 32, 16)", "street", 32),
         ("(16, 32, 8)", "block", 32))
#: The moving street of ``--scale``: (label, scenario, N).
SCALE_ROAD = ("(8, 16, 16) road", "street-road", 16)


def step_flops(system: System, steps: int = 1) -> int:
    """Floating-point operations of one static step (``steps`` simulation steps on a road):
    the gains ``X^T W`` (``2 N x 2 L M`` times ``2 L M x Q``, 2 flops a multiply-add:
    ``8 N L M Q``), the SSNR (``8 L M Q``), power and projection (``6 L M Q``) and the CSI (phase,
    reduction, cos and sin counted as 10 operations an entry: ``10 L M Q``)."""
    s = system
    lmq = s.L * s.M * s.Q
    return steps * (8 * s.N * lmq + 24 * lmq)


def core_peak_gflops() -> float | None:
    """Peak float64 GFLOP/s of one core: 16 flops a cycle (two 4-wide FMA units, AVX2) times
    the clock in ``/proc/cpuinfo`` (None where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
    except (OSError, ValueError, IndexError):
        return None
    return 16 * max(mhz) / 1000 if mhz else None


def rate(fn: Callable[[], int], seconds: float) -> tuple[float, float]:
    """Items per second of ``fn`` (which returns how many items it did) over ``seconds`` of wall
    time: ``(per wall second, per CPU second of this process)``."""
    fn()  # warm-up
    done, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        done += fn()
    return done / (time.perf_counter() - t0), done / max(time.process_time() - c0, 1e-9)


def bench(scenario: str, users: int, envs: int, seconds: float,
          overrides: dict | None = None, seed: int = 0, sampler: bool = True
          ) -> dict[str, float]:
    """Steps/s (wall and CPU) of one env and of the batched vector env with ``envs`` copies,
    and drops/s of the batched sampler (positions -> CSI, 10,000 per call)."""
    overrides = overrides or {}
    env = gym.make(cfisac_env.ENV_ID, scenario=scenario, users=users, **overrides)
    env.reset(seed=seed)
    action = env.action_space.sample()

    def single() -> int:
        for _ in range(20):
            env.step(action)
        return 20

    venv = gym.make_vec(cfisac_env.ENV_ID, num_envs=envs, vectorization_mode="vector_entry_point",
                        scenario=scenario, users=users, **overrides)
    venv.reset(seed=seed)
    actions = venv.action_space.sample()

    def vector() -> int:
        venv.step(actions)
        return envs

    sc = scenarios.load(scenario, users=users, overrides=overrides)
    rng = np.random.default_rng(seed)

    def drops() -> int:
        sc.drops(rng, 10_000)
        return 10_000

    out = {}
    for key, fn in (("single", single), ("vector", vector)) + ((("sampler", drops),)
                                                               if sampler else ()):
        wall, cpu = rate(fn, seconds)
        out[f"{key}_per_s"], out[f"{key}_per_cpu_s"] = wall, cpu
    steps = env.unwrapped.world.steps_per_decision
    out["flops_per_step"] = step_flops(sc.system, steps)
    venv.close()
    env.close()
    return out


def peak_memory(scenario: str, users: int, envs: int, seed: int = 0) -> float:
    """Peak bytes allocated (``tracemalloc``, NumPy arrays included) while building the vector
    env with ``envs`` copies, resetting it and taking three steps."""
    tracemalloc.start()
    try:
        venv = gym.make_vec(cfisac_env.ENV_ID, num_envs=envs,
                            vectorization_mode="vector_entry_point", scenario=scenario,
                            users=users)
        venv.reset(seed=seed)
        actions = venv.action_space.sample()
        for _ in range(3):
            venv.step(actions)
        return float(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "bench_env")
    _cli.add_common(p, scenario="pos2", users=[2, 5, 8], many_users=True, threads=None)
    p.add_argument("--envs", type=_cli.int_in(1, 1 << 20), default=1024,
                   help="vector-env copies")
    p.add_argument("--seconds", type=_cli.float_in(0.0, 3600.0, lo_open=True), default=2.0,
                   help="time per measurement, s")
    p.add_argument("--scale", action="store_true",
                   help="the cell-free sizes (2, 8, 16), (8, 32, 16), (16, 32, 8) and the "
                        "moving street instead of --scenario / --users")
    p.add_argument("--road-envs", type=_cli.int_in(1, 1 << 16), default=32,
                   help="vector-env copies of the moving street in --scale (default 32)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return _cli.run(lambda: run(parse_args(argv)), "bench_env")


def _print_row(label: str, r: dict[str, float], peak: float | None) -> None:
    gf = r["flops_per_step"] / 1e9
    best = max(r["single_per_cpu_s"], r["vector_per_cpu_s"])
    share = f"{gf * best / peak:>6.1%}" if peak else "     -"
    mem = f"{r['memory_bytes'] / 2**20:>8,.0f}" if "memory_bytes" in r else "       -"
    print(f"{label:>18} {r['single_per_s']:>10,.0f} {r['single_per_cpu_s']:>10,.0f} "
          f"{r['vector_per_s']:>11,.0f} {r['vector_per_cpu_s']:>11,.0f} "
          f"{r['flops_per_step'] / 1e6:>9.3f} {gf * r['vector_per_cpu_s']:>8.2f} {share} {mem}")


def run(a: argparse.Namespace) -> int:
    """Check the scenarios, then measure and print (and write with ``--out``)."""
    if a.scale:
        cases = [(label, sc, n) for label, sc, n in SCALE]
        overrides: dict = {}
    else:
        cases = [(f"N = {n}", a.scenario, n) for n in a.users]
        overrides = dict(a.set)
    for _, sc, n in cases:
        scenarios.load(sc, users=n, overrides=overrides)
    out = run_dir("bench-env", a.out) if a.out is not None else None
    _cli.set_threads(a.threads)
    peak = core_peak_gflops()
    peak_text = f"{peak:.0f} GFLOP/s" if peak else "unknown"
    print(f"{'scale' if a.scale else a.scenario}: vector env with {a.envs} copies; "
          f"{a.seconds:g} s per figure; steps/s per wall second and per CPU second of this "
          f"process; BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}; one core's float64 "
          f"peak {peak_text}")
    print(f"{'(L, N, M)' if a.scale else 'size':>18} {'single':>10} {'single':>10} "
          f"{'vector':>11} {'vector':>11} {'MFLOP':>9} {'GFLOP/s':>8} {'peak':>6} "
          f"{'peak MB':>8}")
    print(f"{'':>18} {'wall':>10} {'CPU':>10} {'wall':>11} {'CPU':>11} {'/step':>9} "
          f"{'vec CPU':>8} {'share':>6} {'vec env':>8}")
    rows, interrupted = [], False
    try:
        for label, sc, n in cases:
            r = bench(sc, n, a.envs, a.seconds, overrides, a.seed, sampler=not a.scale)
            if a.scale:
                r["memory_bytes"] = peak_memory(sc, n, a.envs, a.seed)
            rows.append({"size": label, "scenario": sc, "users": n, **r})
            _print_row(label, r, peak)
        if a.scale:
            label, sc, n = SCALE_ROAD
            r = bench(sc, n, a.road_envs, a.seconds, {}, a.seed, sampler=False)
            rows.append({"size": label, "scenario": sc, "users": n, "envs": a.road_envs, **r})
            _print_row(label, r, peak)
            print(f"(road: {a.road_envs} vector copies; a step is one decision, "
                  f"{r['flops_per_step'] // step_flops(scenarios.load(sc, users=n).system)} "
                  "simulation steps of SimPy traffic)")
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: keeping the rows that finished", file=sys.stderr)
    if out is not None:
        write_json(out / "bench_env.json", {"args": vars(a), "interrupted": interrupted,
                                            "core_peak_gflops": peak, "rows": rows})
        print(f"wrote {out / 'bench_env.json'}")
    return _cli.outcome(len(rows), 0, interrupted)


if __name__ == "__main__":
    sys.exit(main())
