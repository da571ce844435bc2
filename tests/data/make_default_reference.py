"""Regenerate ``default_reference.npz``: metrics of the seed's model (LoS, perfect CSI).

The file was written with the code before channel models and estimated CSI existed; the test
``tests/test_channel_defaults.py`` checks that the defaults still reproduce every number. Only
rerun this script on purpose (it overwrites the stored reference).

    python tests/data/make_default_reference.py
"""

from pathlib import Path

import gymnasium as gym
import numpy as np

import cfisac_env  # noqa: F401
import policies
import scenarios
from cfisac_env.sim.tracking import Latency, closed_loop
from policies.evaluation.evaluate import Drops, score_policy
from policies.evaluation.stress import trajectory

OUT = Path(__file__).with_name("default_reference.npz")


def env_run(scenario: str, users: int, seed: int, steps: int) -> dict[str, np.ndarray]:
    env = gym.make("cfisac/CellFreeISAC-v0", scenario=scenario, users=users)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(100 + seed)
    out = {"obs": [obs], "reward": [], "ssnr": [], "min_sinr": [], "actions": []}
    for _ in range(steps):
        a = rng.normal(0, 0.15, env.action_space.shape)
        a = a.astype(np.float32)
        obs, r, _, _, info = env.step(a)
        for k, v in (("obs", obs), ("reward", r), ("ssnr", info["ssnr"]),
                     ("min_sinr", info["min_sinr"]), ("actions", a)):
            out[k].append(v)
    return {k: np.asarray(v) for k, v in out.items()}


def vec_run(seed: int, steps: int, mode: str = "vector_entry_point") -> dict[str, np.ndarray]:
    """The road vector env (``mode``: ``vector_entry_point`` or Gymnasium's ``sync``, which must
    give the same numbers: sub-env ``i`` is seeded ``seed + i`` either way)."""
    env = gym.make_vec("cfisac/CellFreeISAC-v0", num_envs=3,
                       vectorization_mode=mode, scenario="road", users=3)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(7)
    out = {"obs": [obs], "reward": [], "ssnr": [], "actions": []}
    for _ in range(steps):
        a = rng.normal(0, 0.15, env.action_space.shape).astype(np.float32)
        obs, r, _, _, info = env.step(a)
        for k, v in (("obs", obs), ("reward", r), ("ssnr", info["ssnr"]), ("actions", a)):
            out[k].append(v)
    return {k: np.asarray(v) for k, v in out.items()}


def main() -> None:
    data: dict[str, np.ndarray] = {}
    for tag, (sc, n, seed) in {"pos2": ("pos2", 8, 3), "road": ("road", 4, 1),
                               "pos1": ("pos1", 5, 0)}.items():
        for k, v in env_run(sc, n, seed, 4).items():
            data[f"env_{tag}_{k}"] = v
    for k, v in vec_run(2, 3).items():
        data[f"vec_{k}"] = v
    sc = scenarios.load("pos2", users=8)
    drops = Drops.sample(sc, 12, seed=0)
    data["drops_csi"] = drops.csi
    for name in ("ns-rzf", "mrt-users", "mrt-target"):
        run = score_policy(name, sc, drops, progress=False)
        data[f"compare_{name}_ssnr"], data[f"compare_{name}_min_sinr"] = run.ssnr, run.min_sinr
    hw = scenarios.load("track-highway")
    traj = trajectory(hw, 1.0, seed=0)
    data["track_target_xy"] = traj.target_xy
    pol = policies.make("ns-rzf", hw.system)
    for tag, lat, delay in (("zero", Latency(), 0.0), ("fixed", Latency("fixed", 0.033), 0.02)):
        loop = closed_loop(pol, traj, hw.system, 0.1, lat, delay)
        data[f"track_{tag}_ssnr"], data[f"track_{tag}_min_sinr"] = loop.ssnr, loop.min_sinr
    np.savez_compressed(OUT, **data)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(data)} arrays)")


if __name__ == "__main__":
    main()
