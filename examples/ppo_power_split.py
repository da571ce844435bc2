"""An RL agent that learns: PPO (CleanRL style, one file) on each AP's power split.

    python examples/ppo_power_split.py                 # 3 seeds x 6144 steps, ~5 CPU minutes
    python examples/ppo_power_split.py --seeds 0 --steps 2048 --out runs/ppo-split

The env is a contextual bandit (``gamma = 0``: the beams never change the next CSI) on ``pos2``
with N = 8. Three wrappers make it learnable in minutes:

1. :class:`~policies.learned.power_actions.PowerAllocation` (``sensing="cb"``): the action is
   each AP's power split ``(L, Q)`` over RZF directions towards the UEs and the conjugate beam
   at the target, computed from the current CSI; ``x = 0`` is the uniform split;
2. :class:`~policies.learned.power_actions.SplitFeatures`: the agent observes ``(2, L, Q)``
   numbers (each direction's gain, what the uniform split gives each UE and the target)
   instead of the 576-number CSI;
3. :class:`SensingFloor`: the reward is min-SINR minus the SSNR shortfall below ``--floor``
   (1.6, half the bound 3.2), ``g2 - max(0, floor - g1)``: a sensing requirement. (With the
   env's weighted reward the best split is all power at the target, ``mrt-target``.)

The Gaussian policy samples ``u ~ N(mu(obs), sigma)`` and acts ``tanh(u)`` (no clipping: the
deterministic action ``tanh(mu)`` is the one that was learned). Each drop is played ``--group``
times (``env.reset(options=...)`` replays its positions) and a try's advantage is its reward
minus the mean of the drop's other tries: the spread of rewards between drops would otherwise
drown the effect of the split. Every ``--rollout`` steps the mean action is scored on the same
held-out drops as the references (random normalized beams, ``mrt-users``, ``mrt-target``,
``ns-rzf``, the uniform split and an equalizing heuristic, 30 SINR-feedback iterations per
drop); ``curves.png`` draws the held-out reward over the steps for every seed,
``curves.csv`` / ``summary.json`` keep the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cfisac_env  # noqa: E402, F401  (registers the env)
import policies  # noqa: E402
from cfisac_env.physics import metrics  # noqa: E402
from cfisac_env.physics.layout import to_layout  # noqa: E402
from cfisac_env.physics.scoring import reward_of  # noqa: E402
from policies.learned.power_actions import (  # noqa: E402
    PowerAllocation,
    SplitFeatures,
    beams_from_shares,
    unit_basis,
)

ENV = "cfisac/CellFreeISAC-v0"
EVAL_SEED = 10_000


class Agent(nn.Module):
    """The Gaussian policy: mean ``mu(obs)`` on the flattened ``(2, L, Q)`` features, one learned
    standard deviation per action entry (``hidden = 0``: a linear policy)."""

    def __init__(self, n_obs: int, n: int, hidden: int = 64, log_std: float = -1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_obs, n)) if hidden == 0 else nn.Sequential(
            nn.Linear(n_obs, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, n))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)         # starts at the uniform split
        self.log_std = nn.Parameter(torch.full((n,), log_std))

    def forward(self, obs: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.body(obs), self.log_std.exp())


def heldout(drops: int, users: int) -> tuple[list[np.ndarray], gym.Env]:
    """The CSI of ``drops`` held-out drops (seed :data:`EVAL_SEED`) and a scoring env."""
    env = gym.make(ENV, scenario="pos2", users=users)
    obs, _ = env.reset(seed=EVAL_SEED)
    out = []
    for _ in range(drops):
        out.append(obs)
        obs, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
    return out, env


REWARD: dict[str, Any] = {"kind": "floor", "beta": 0.5, "floor": 1.6, "sensing": "cb"}


def task_reward(g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
    """The reward of :data:`REWARD`: ``floor``: min-SINR minus the SSNR shortfall below the
    floor, ``g2 - max(0, floor - g1)`` (a sensing requirement); else the env's own reward."""
    if REWARD["kind"] == "floor":
        return g2 - np.maximum(0.0, REWARD["floor"] - g1)
    return reward_of(g1, g2, REWARD["kind"], REWARD["beta"])


class SensingFloor(gym.Wrapper):
    """The env's reward replaced by :func:`task_reward` of its ``info`` (SSNR, min-SINR)."""

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        r = task_reward(np.asarray(info["ssnr"]), np.asarray(info["min_sinr"]))
        return obs, float(r), terminated, truncated, info


def make_env(users: int) -> gym.Env:
    """The task's env: power split (:data:`REWARD` sensing direction), its features, its
    reward."""
    env = gym.make(ENV, scenario="pos2", users=users)
    return SplitFeatures(SensingFloor(PowerAllocation(env, sensing=REWARD["sensing"])))


def score(csi: list[np.ndarray], beams: np.ndarray, system) -> dict[str, float]:
    """Held-out mean reward (:func:`task_reward`), median SSNR and min-SINR."""
    g1, g2 = metrics.g1_g2(np.stack(csi), beams, system)
    r = task_reward(g1, g2)
    return {"reward": float(np.mean(r)), "ssnr": float(np.median(g1)),
            "min_sinr": float(np.median(g2))}


def shares_beams(csi: np.ndarray, shares: np.ndarray, system) -> np.ndarray:
    """Beams ``(B, L, 2, M, Q)`` of power shares ``(B, L, Q)`` over the NS+RZF basis."""
    amp = np.sqrt(shares * system.P[None, :, None])[:, :, None, :]
    return to_layout(unit_basis(csi, system, REWARD["sensing"]) * amp).astype(np.float32)


def references(csi: list[np.ndarray], system, seed: int) -> dict[str, dict[str, float]]:
    """The references on the held-out drops."""
    x = np.stack(csi)
    out = {}
    rng = np.random.default_rng(seed)
    raw = rng.uniform(-1, 1, x.shape)                  # random beams, each AP on its budget
    out["random beams"] = score(csi, metrics.normalize_power(raw, system), system)
    for name in ("mrt-users", "mrt-target", "ns-rzf"):
        out[name] = score(csi, policies.make(name, system).act(x), system)
    s = np.full((len(x), system.L, system.Q), 1 / system.Q)
    out["uniform split"] = score(csi, shares_beams(x, s, system), system)
    n = system.N                                       # equalize the UEs' SINR, 30 steps
    for _ in range(30):
        si = metrics.sinr(x, shares_beams(x, s, system), system)          # (B, N)
        s[:, :, :n] *= np.sqrt(si.mean(-1, keepdims=True) / si)[:, None, :]
        s[:, :, :n] *= (1 - 1 / system.Q) / s[:, :, :n].sum(-1, keepdims=True)
    out["equalizing split"] = score(csi, shares_beams(x, s, system), system)
    return out


def train(seed: int, steps: int, rollout: int, users: int, csi: list[np.ndarray],
          group: int = 8, epochs: int = 8, minibatch: int = 256, lr: float = 3e-3,
          clip: float = 0.2, log_std: float = -1.5, hidden: int = 64) -> list[dict[str, float]]:
    """PPO with ``gamma = 0`` and a per-drop baseline: each drop is played ``group`` times
    (``env.reset(options=...)`` replays its positions), the advantage of a try is its reward
    minus the mean of the drop's other tries. Returns the held-out curve."""
    torch.manual_seed(seed)
    env = make_env(users)
    system, shape = env.system, env.action_space.shape
    agent = Agent(int(np.prod(env.observation_space.shape)), int(np.prod(shape)), hidden=hidden,
                  log_std=log_std)
    opt = torch.optim.Adam(agent.parameters(), lr=lr)
    feats = torch.as_tensor(np.stack([env.observation(c) for c in csi])).flatten(1)
    x_eval = np.stack(csi)

    def evaluate(step: int) -> dict[str, float]:
        with torch.no_grad():
            act = torch.tanh(agent(feats).mean).numpy().reshape(len(csi), *shape)
        return {"seed": seed, "step": step,
                **score(csi, beams_from_shares(x_eval, act, system, REWARD["sensing"]), system)}

    curve = [evaluate(0)]
    env.reset(seed=seed)
    done = 0
    while done < steps:
        o, u, logp, adv = [], [], [], []
        for _ in range(max(1, rollout // group)):
            obs, info = env.reset()                          # a fresh drop
            place = {"ue_xy": info["ue_xy"], "target_xy": info["target_xy"]}
            ot = torch.as_tensor(obs).flatten()[None].repeat(group, 1)
            with torch.no_grad():
                dist = agent(ot)
                ut = dist.sample()
            r = []
            for k in range(group):
                if k:
                    env.reset(options=place)                 # the same drop again
                r.append(env.step(torch.tanh(ut[k]).numpy().reshape(shape))[1])
            r = torch.tensor(r)
            o.append(ot), u.append(ut), logp.append(dist.log_prob(ut).sum(-1))
            adv.append(r - (r.sum() - r) / (group - 1))   # leave-one-out baseline
            done += group
        o, u, logp, adv = torch.cat(o), torch.cat(u), torch.cat(logp), torch.cat(adv)
        adv = adv / (adv.std() + 1e-8)
        for _ in range(epochs):
            for idx in torch.randperm(len(o)).split(minibatch):
                ratio = (agent(o[idx]).log_prob(u[idx]).sum(-1) - logp[idx]).exp()
                loss = -torch.min(ratio * adv[idx],
                                  ratio.clamp(1 - clip, 1 + clip) * adv[idx]).mean()
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                opt.step()
        curve.append(evaluate(done))
    return curve


def plot(curves: list[dict[str, float]], refs: dict[str, dict[str, float]], path: Path,
         drops: int, steps: int, group: int) -> None:
    """Held-out reward vs environment steps, one line per seed, references as dashed lines."""
    from runners._plot import palette, plt, save

    fig, ax = plt.subplots(figsize=(9.5, 4.4))
    seeds = sorted({c["seed"] for c in curves})
    for k, s in enumerate(seeds):
        pts = [c for c in curves if c["seed"] == s]
        ax.plot([c["step"] for c in pts], [c["reward"] for c in pts], color=palette(0),
                ls=("-", "--", ":")[k % 3], lw=1.8, label=f"PPO seed {s}")
    styles = [":", "--", "-.", (0, (5, 1)), (0, (1, 1)), (0, (3, 1, 1, 1))]
    bottom = min(min(c["reward"] for c in curves), 0.0) - 0.15
    for k, (name, m) in enumerate(refs.items()):
        below = ", below the axes" if m["reward"] < bottom else ""
        ax.axhline(m["reward"], color=palette(k + 1), ls=styles[k % len(styles)], lw=1.3,
                   label=f"{name} ({m['reward']:.2f}{below})")
    kind = REWARD["kind"]
    what = {"floor": f"min-SINR - max(0, {REWARD['floor']:g} - SSNR)",
            "weighted": f"{1 - REWARD['beta']:g} SSNR + {REWARD['beta']:g} min-SINR",
            "communication": "min-SINR", "sensing": "SSNR"}[kind]
    ax.set(xlabel=f"environment steps ({group} tries per drop)",
           ylabel=f"held-out mean reward (linear)\n{what}",
           title=f"PPO on the power split ({REWARD['sensing'].upper()} sensing direction), pos2 "
                 f"N = 8: {len(seeds)} seed{'s' * (len(seeds) > 1)} x {steps} steps, {drops} "
                 "held-out drops")
    ax.set_ylim(bottom=bottom)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    save(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--steps", type=int, default=6144, help="environment steps per seed")
    p.add_argument("--rollout", type=int, default=512, help="steps per PPO update")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--drops", type=int, default=300, help="held-out drops")
    p.add_argument("--group", type=int, default=8, help="tries per drop (per-drop baseline)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--log-std", type=float, default=-1.5,
                   help="initial log standard deviation of the Gaussian policy")
    p.add_argument("--hidden", type=int, default=64,
                   help="width of the policy's two hidden layers (0: a linear policy)")
    p.add_argument("--reward", choices=["floor", "weighted", "communication", "sensing"],
                   default="floor", help="floor: min-SINR minus the SSNR shortfall below "
                   "--floor; else the env's reward")
    p.add_argument("--floor", type=float, default=1.6, help="SSNR floor (linear; bound 3.2)")
    p.add_argument("--sensing", choices=["cb", "ns"], default="cb",
                   help="sensing direction of the basis: conjugate beam or null-space")
    p.add_argument("--beta", type=float, default=0.5, help="weight of min-SINR (weighted)")
    p.add_argument("--out", type=Path, default=Path("runs/ppo-power-split"))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    REWARD.update(kind=a.reward, beta=a.beta, floor=a.floor, sensing=a.sensing)
    a.out.mkdir(parents=True, exist_ok=True)
    csi, env = heldout(a.drops, a.users)
    refs = references(csi, env.unwrapped.system, EVAL_SEED)
    curves = []
    for s in a.seeds:
        t0 = time.perf_counter()
        curves += train(s, a.steps, a.rollout, a.users, csi, group=a.group, lr=a.lr,
                        log_std=a.log_std, hidden=a.hidden)
        last = curves[-1]
        first = next(c for c in curves if c["seed"] == s)
        print(f"seed {s}: held-out reward {first['reward']:.3f} -> {last['reward']:.3f} "
              f"(median SSNR {last['ssnr']:.2f}, min-SINR {last['min_sinr']:.2f}) in "
              f"{time.perf_counter() - t0:.0f} s")
    for name, m in refs.items():
        print(f"{name:>17}: reward {m['reward']:.3f} (SSNR {m['ssnr']:.2f}, "
              f"min-SINR {m['min_sinr']:.2f})")
    with open(a.out / "curves.csv", "w") as f:
        f.write("seed,step,reward,ssnr,min_sinr\n")
        f.writelines(f"{c['seed']},{c['step']},{c['reward']},{c['ssnr']},{c['min_sinr']}\n"
                     for c in curves)
    args = {k: str(v) for k, v in vars(a).items()}
    (a.out / "summary.json").write_text(json.dumps({"references": refs, "curves": curves,
                                                    "args": args}, indent=1))
    plot(curves, refs, a.out / "curves.png", a.drops, a.steps, a.group)
    print(f"wrote {a.out}/ (curves.png, curves.csv, summary.json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
