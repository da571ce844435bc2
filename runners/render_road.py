"""Roll a policy out on a scenario and save what the environment renders: a film strip (PNG)
of the road, the APs' beam patterns, the UEs, the vehicles and the target, plus an animated GIF.

    python runners/render_road.py --scenario road --policy student --steps 100 --frames 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402
from tqdm import tqdm  # noqa: E402

import cfisac_env  # noqa: E402
import scenarios  # noqa: E402
from cfisac_env.runs import run_dir  # noqa: E402
from policies.evaluation import build  # noqa: E402


def rollout(scenario: str, users: int | None, policy: str, steps: int, seed: int,
            overrides: dict) -> list[tuple[np.ndarray, dict]]:
    """``steps`` decisions of ``policy``; returns ``(frame (H, W, 3) uint8, info)`` per step."""
    env = gym.make(cfisac_env.ENV_ID, scenario=scenario, users=users, render_mode="rgb_array",
                   **overrides)
    pol = build(policy, env.unwrapped.scenario)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in tqdm(range(steps), desc=f"{policy} on {scenario}"):
        obs, _, terminated, truncated, info = env.step(pol.act(obs))
        out.append((env.render(), info))
        if terminated or truncated:
            break
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="road")
    p.add_argument("--users", type=int, default=None)
    p.add_argument("--policy", default="student")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--frames", type=int, default=4, help="frames in the film strip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    try:
        overrides = dict(scenarios.parse_assignment(s) for s in a.set)
        steps = rollout(a.scenario, a.users, a.policy, a.steps, a.seed, overrides)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = run_dir(f"render-{a.scenario}", a.out)
    out.mkdir(parents=True, exist_ok=True)
    pick = np.linspace(0, len(steps) - 1, min(a.frames, len(steps))).round().astype(int)
    fig, axes = plt.subplots(len(pick), 1, figsize=(8, 3.4 * len(pick)))
    for ax, k in zip(np.atleast_1d(axes), pick, strict=True):
        frame, info = steps[k]
        ax.imshow(frame)
        ax.set_axis_off()
        ax.set_title(f"{a.policy}, decision {k + 1}: SSNR {info['ssnr']:.2f}, "
                     f"min-SINR {info['min_sinr']:.2f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "filmstrip.png", dpi=100)
    plt.close(fig)
    fig = plt.figure(figsize=(8, 3.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    image = ax.imshow(steps[0][0])
    FuncAnimation(fig, lambda k: [image.set_data(steps[k][0])], frames=len(steps)).save(
        out / "rollout.gif", writer=PillowWriter(fps=10))
    plt.close(fig)
    print(f"wrote {out}/filmstrip.png and rollout.gif ({len(steps)} decisions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
