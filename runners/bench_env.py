"""Benchmark the simulator core: single-env steps/s, vector-env steps/s, sampler drops/s.

    python runners/bench_env.py [--scenario pos2] [--users 2 5 8] [--envs 1024] [--seconds 2]

Each figure is measured in this one run, side by side, for every N. ``--out DIR`` also writes
``bench_env.json`` there. Exit status 2 (one line) on a bad value, 130 on Ctrl-C (the rows that
finished are printed and written).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import cfisac_env  # noqa: F401  (registers the env)
import scenarios
from cfisac_env.runs import run_dir, write_json
from runners import _cli


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Items per second of ``fn`` (which returns how many items it did), over ``seconds``."""
    fn()  # warm-up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        done += fn()
    return done / (time.perf_counter() - t0)


def bench(scenario: str, users: int, envs: int, seconds: float,
          overrides: dict | None = None, seed: int = 0) -> dict[str, float]:
    """Steps/s of one env, of the batched vector env with ``envs`` copies, and drops/s of the
    batched sampler (positions -> CSI, 10,000 per call)."""
    overrides = overrides or {}
    env = gym.make(cfisac_env.ENV_ID, scenario=scenario, users=users, **overrides)
    env.reset(seed=seed)
    action = env.action_space.sample()

    def single() -> int:
        for _ in range(100):
            env.step(action)
        return 100

    venv = gym.make_vec(cfisac_env.ENV_ID, num_envs=envs, vectorization_mode="vector_entry_point",
                        scenario=scenario, users=users, **overrides)
    venv.reset(seed=seed)
    actions = venv.action_space.sample()

    def vector() -> int:
        venv.step(actions)
        return envs

    sc = scenarios.load(scenario, users=users, overrides=overrides)
    rng = np.random.default_rng(seed)

    def sampler() -> int:
        sc.drops(rng, 10_000)
        return 10_000

    return {"single_steps_per_s": rate(single, seconds),
            "vector_steps_per_s": rate(vector, seconds),
            "sampler_drops_per_s": rate(sampler, seconds)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "bench_env")
    _cli.add_common(p, scenario="pos2", users=[2, 5, 8], many_users=True, threads=None)
    p.add_argument("--envs", type=_cli.int_in(1, 1 << 20), default=1024,
                   help="vector-env copies")
    p.add_argument("--seconds", type=_cli.float_in(0.0, 3600.0, lo_open=True), default=2.0,
                   help="time per measurement, s")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return _cli.run(lambda: run(parse_args(argv)), "bench_env")


def run(a: argparse.Namespace) -> int:
    """Check the scenario for every N, then measure and print (and write with ``--out``)."""
    for n in a.users:
        _cli.load_scenario(a, users=n)
    out = run_dir("bench-env", a.out) if a.out is not None else None
    _cli.set_threads(a.threads)
    print(f"scenario {a.scenario}; vector env with {a.envs} copies; {a.seconds:g} s per figure")
    print(f"{'N':>3} {'single steps/s':>15} {'vector steps/s':>15} {'sampler drops/s':>16}"
          f" {'vector/single':>14}")
    rows, interrupted = [], False
    try:
        for n in a.users:
            r = bench(a.scenario, n, a.envs, a.seconds, dict(a.set), a.seed)
            rows.append({"users": n, **r})
            print(f"{n:>3} {r['single_steps_per_s']:>15,.0f} {r['vector_steps_per_s']:>15,.0f} "
                  f"{r['sampler_drops_per_s']:>16,.0f} "
                  f"{r['vector_steps_per_s'] / r['single_steps_per_s']:>13.1f}x")
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: keeping the rows that finished", file=sys.stderr)
    if out is not None:
        write_json(out / "bench_env.json", {"args": vars(a), "interrupted": interrupted,
                                            "rows": rows})
        print(f"wrote {out / 'bench_env.json'}")
    return _cli.outcome(len(rows), 0, interrupted)


if __name__ == "__main__":
    sys.exit(main())
