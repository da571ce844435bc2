"""Train Stable-Baselines3 PPO on cfisac, then score it with compare.py beside the built-ins.

    python examples/sb3_ppo.py                      # 4096 PPO steps on pos2, N = 8, CPU
    python examples/sb3_ppo.py --steps 20000 --drops 200 --out runs/sb3-ppo

1. ``gym.make("cfisac/CellFreeISAC-v0", scenario="pos2", users=8, action_mode="normalized")``:
   each action entry lies in [-1, 1] and every AP's block is scaled onto its full budget, so
   every action PPO explores is a valid beamformer (with ``"beams"`` a random Box action
   overspends and is scaled down every time).
2. The task is a contextual bandit (the beams never change the next CSI): ``gamma = 0`` and
   ``gae_lambda = 0``, the advantage is the reward minus the value of this drop alone.
3. :class:`policies.learned.rl.SB3Policy` turns the trained model into a cfisac policy; registered
under
   ``sb3-ppo`` it is scored by ``runners/compare.py`` on the same seeded drops as ``mrt-target``,
   ``mrt-users`` and ``ns-rzf`` (a table, CSV/JSON and plots in the run folder).

A model saved with ``--save m.zip`` is scored later by any runner as
``--policy "policies.learned.rl:SB3Policy@model=m.zip"``; the zip is read as data (cfisac supplies
the spaces and schedules SB3 would unpickle), so a model file from elsewhere runs no code. Add
``,trust_model=true`` only for a file you made whose pickled parts cfisac cannot rebuild.

A few thousand steps only get PPO off the ground (576-dimensional actions); this is a
template, not a competitive policy. Needs ``pip install "cfisac[ecosystem]"``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import gymnasium as gym

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cfisac_env  # noqa: E402, F401  (registers the env)
import policies  # noqa: E402
from policies.learned.rl import SB3Policy  # noqa: E402
from runners import compare  # noqa: E402

ENV = "cfisac/CellFreeISAC-v0"


def train(steps: int = 4096, scenario: str = "pos2", users: int = 8, seed: int = 0,
          verbose: int = 0):
    """PPO on the normalized-action env for ``steps`` environment steps (CPU)."""
    from stable_baselines3 import PPO

    env = gym.make(ENV, scenario=scenario, users=users, action_mode="normalized")
    n_steps = max(16, min(512, steps))
    model = PPO("MlpPolicy", env, n_steps=n_steps, batch_size=min(64, n_steps), n_epochs=5,
                gamma=0.0, gae_lambda=0.0, learning_rate=3e-4, ent_coef=0.0, seed=seed,
                device="cpu", verbose=verbose)
    model.learn(total_timesteps=steps, progress_bar=False)
    return model


def score(model, scenario: str = "pos2", users: int = 8, drops: int = 200,
          out: str | None = None, seed: int = 0, quiet: bool = False) -> int:
    """``runners/compare.py`` on ``sb3-ppo`` (the model through :class:`SB3Policy`) and three
    classic references; returns compare's exit status."""
    policies.register("sb3-ppo", functools.partial(SB3Policy, model=model), overwrite=True)
    argv = ["--scenario", scenario, "--users", str(users), "--drops", str(drops),
            "--seed", str(seed), "--policy", "sb3-ppo", "--policy", "mrt-target",
            "--policy", "mrt-users", "--policy", "ns-rzf"]
    argv += ["--out", str(out)] if out is not None else []
    argv += ["--quiet"] if quiet else []
    return compare.main(argv)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="pos2")
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--steps", type=int, default=4096, help="PPO environment steps")
    p.add_argument("--drops", type=int, default=200, help="drops compare.py scores on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, default=None, help="also save the model (.zip) here")
    p.add_argument("--out", default=None, help="compare.py's run folder")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    model = train(a.steps, a.scenario, a.users, a.seed, verbose=0 if a.quiet else 1)
    if a.save is not None:
        model.save(a.save)
    return score(model, a.scenario, a.users, a.drops, a.out, a.seed, a.quiet)


if __name__ == "__main__":
    raise SystemExit(main())
