"""One agent per AP: drive the PettingZoo view of cfisac with a distributed policy.

Each AP is an agent (``ap_0 .. ap_{L-1}``) that sees only its own CSI ``(2, M, Q)`` and sends
its own beams; all agents share the team reward. A :class:`policies.DistributedPolicy` acts AP
by AP (``act_ap``), exactly as it would on separate machines:

    python examples/multiagent.py --scenario road --users 4 --steps 20
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import cfisac_env
import policies
from cfisac_env.envs.multiagent import act_agents

#: the one-file policy of examples/power_split_mrt.py (distributed: each AP's own CSI only)
POWER_SPLIT = f"{Path(__file__).with_name('power_split_mrt.py')}:PowerSplitMRT"


def run(scenario: str = "pos2", users: int = 8, steps: int = 10, policy: str = POWER_SPLIT,
        seed: int = 0) -> dict[str, float]:
    """``steps`` decisions of ``policy`` (a distributed one) driving every AP agent; returns
    the mean team reward, SSNR and min-SINR (linear)."""
    penv = cfisac_env.parallel_env(scenario=scenario, users=users)
    pol = policies.make(policy, penv.system)
    if not pol.distributed:
        raise ValueError(f"{policy!r} is a central policy; pick a distributed one")
    obs, infos = penv.reset(seed=seed)
    rewards, ssnr, min_sinr = [], [], []
    for _ in range(steps):
        actions = act_agents(pol, obs)                    # AP l: its own CSI -> its own beams
        obs, reward, terms, truncs, infos = penv.step(actions)
        rewards.append(reward["ap_0"])                    # the team reward, shared
        ssnr.append(infos["ap_0"]["ssnr"])
        min_sinr.append(infos["ap_0"]["min_sinr"])
        if not penv.agents:                               # truncated: start a new episode
            obs, infos = penv.reset()
    return {"reward": float(np.mean(rewards)), "ssnr": float(np.mean(ssnr)),
            "min_sinr": float(np.mean(min_sinr)), "agents": len(penv.possible_agents)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="pos2")
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--policy", default=POWER_SPLIT,
                   help="a distributed policy (default: examples/power_split_mrt.py)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    out = run(a.scenario, a.users, a.steps, a.policy, a.seed)
    print(f"{a.scenario} N={a.users}, {out['agents']} AP agents, {a.policy.split(':')[-1]}: "
          f"mean reward "
          f"{out['reward']:.3f}, SSNR {out['ssnr']:.3f}, min-SINR {out['min_sinr']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
