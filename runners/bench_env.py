"""Benchmark the simulator core: single-env steps/s, vector-env steps/s, sampler drops/s.

    python runners/bench_env.py [--scenario pos2] [--users 2 5 8] [--envs 1024] [--seconds 2]

Each figure is measured in this one run, side by side, for every N.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import cfisac_env  # noqa: F401  (registers the env)
import scenarios


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Items per second of ``fn`` (which returns how many items it did), over ``seconds``."""
    fn()  # warm-up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        done += fn()
    return done / (time.perf_counter() - t0)


def bench(scenario: str, users: int, envs: int, seconds: float) -> dict[str, float]:
    """Steps/s of one env, of the batched vector env with ``envs`` copies, and drops/s of the
    batched sampler (positions -> CSI, 10,000 per call)."""
    env = gym.make(cfisac_env.ENV_ID, scenario=scenario, users=users)
    env.reset(seed=0)
    action = env.action_space.sample()

    def single() -> int:
        for _ in range(100):
            env.step(action)
        return 100

    venv = gym.make_vec(cfisac_env.ENV_ID, num_envs=envs, vectorization_mode="vector_entry_point",
                        scenario=scenario, users=users)
    venv.reset(seed=0)
    actions = venv.action_space.sample()

    def vector() -> int:
        venv.step(actions)
        return envs

    sc = scenarios.load(scenario, users=users)
    rng = np.random.default_rng(0)

    def sampler() -> int:
        sc.drops(rng, 10_000)
        return 10_000

    return {"single_steps_per_s": rate(single, seconds),
            "vector_steps_per_s": rate(vector, seconds),
            "sampler_drops_per_s": rate(sampler, seconds)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="pos2")
    p.add_argument("--users", type=int, nargs="+", default=[2, 5, 8])
    p.add_argument("--envs", type=int, default=1024, help="vector-env copies")
    p.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    a = p.parse_args(argv)
    print(f"scenario {a.scenario}; vector env with {a.envs} copies; {a.seconds:g} s per figure")
    print(f"{'N':>3} {'single steps/s':>15} {'vector steps/s':>15} {'sampler drops/s':>16}"
          f" {'vector/single':>14}")
    for n in a.users:
        r = bench(a.scenario, n, a.envs, a.seconds)
        print(f"{n:>3} {r['single_steps_per_s']:>15,.0f} {r['vector_steps_per_s']:>15,.0f} "
              f"{r['sampler_drops_per_s']:>16,.0f} "
              f"{r['vector_steps_per_s'] / r['single_steps_per_s']:>13.1f}x")


if __name__ == "__main__":
    main()
