"""Does spending sensing power when the track is uncertain pay? PPO with gamma > 0 in echo mode.

    python examples/echo_sensing_ppo.py                       # 3 seeds x 4096 steps, ~5 min CPU
    python examples/echo_sensing_ppo.py --steps 20000 --seeds 0 1 2 3 --out runs/echo-ppo

The environment is ``track-highway`` (a target crossing the two APs at 30 m/s, N = 8 UEs) with
``sensing.mode = "echo"``: the target column every decision sees comes from the EKF of the
APs' echoes, so the sensing power of one decision decides how well the next one knows where the
target is (a POMDP). The reward is the communication reward (min-SINR) plus the tracking term
``-tracking_weight * min(position error of the next prediction, error_cap)`` (``error_cap`` while
the track is lost): sensing power only pays through the track.

The agent picks ONE number per decision, the sensing share ``rho`` of every AP's budget: the
communication beams are the shipped student's (its columns rescaled to ``(1 - rho) P_l``), the
sensing beam is matched to the tracker's predicted target column with ``rho P_l``. It observes
the tracker's own belief (log position standard deviation, lost flag, decisions since the last
accepted echo, predicted position and velocity), never the truth. Compared on the same held-out
episodes with:

- ``student``: the shipped student's beams as they are (its own split, from the CSI);
- ``split rho``: a fixed share (0.05, 0.15, 0.3, 0.5) whatever the track's state.

``--comm ns-rzf --snapshots 4`` is the other regime: communication beams that do not light the
target and a short dwell, so that the echo is near the estimator's threshold without sensing
power.

Output (``--out``, default ``runs/echo-ppo``): ``curves.csv`` (per seed and evaluation point:
mean reward per decision, position RMSE, track-loss share, mean min-SINR), ``baselines.csv`` and
``curves.png``. The traffic is thinned (``initial_spacing`` 400 m, no arrivals) to keep the SimPy
road cheap; the target and its motion are the scenario's. Needs ``stable-baselines3``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cfisac_env  # noqa: E402, F401  (registers the env)
import policies  # noqa: E402

ENV = "cfisac/CellFreeISAC-v0"
SETTINGS: dict[str, Any] = {"reward": "communication", "sensing.mode": "echo",
                            "sensing.tracking_weight": 0.5, "traffic.initial_spacing": 400.0,
                            "traffic.arrival_rate": 0.0}
EVAL_SEEDS = range(1000, 1006)
SPLITS = (0.05, 0.15, 0.3, 0.5)


class SensingShare(gym.Wrapper):
    """The echo-mode env with one action, the sensing share ``rho`` in [0, 1] (module
    docstring), and the tracker's belief as the observation ``(6,)`` float32."""

    def __init__(self, env: gym.Env, comm: str = "student") -> None:
        super().__init__(env)
        self.core = env.unwrapped.core
        self.system = env.unwrapped.system
        self.student = policies.make("student", self.system, scenario="pos2")
        self.comm = self.student if comm == "student" else policies.make(comm, self.system)
        self.action_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
        self.csi: np.ndarray | None = None

    def belief(self) -> np.ndarray:
        """log10 position std (m), lost, misses, predicted x/100, y/20, v_x/30."""
        sen = self.core.sensing
        std = float(sen.ekf.position_std(sen.shown_cov[:1])[0])
        x, y = sen.shown_xy[0]
        return np.array([np.log10(std + 1e-2), float(sen.shown_lost[0]),
                         float(min(sen.ekf.misses[0], 5)), x / 100, y / 20,
                         sen.ekf.x[0, 2] / 30], np.float32)

    def beams(self, rho: float) -> np.ndarray:
        """The communication beams (the student's, or ``--comm``'s) on ``(1 - rho) P_l`` plus a
        matched sensing beam on ``rho P_l``: ``(L, 2, M, Q)``."""
        s = self.system
        w = self.comm.act(self.csi)
        comm = w[..., :-1]
        p_comm = np.maximum((comm ** 2).sum(axis=(1, 2, 3)), 1e-12)
        comm = comm * np.sqrt((1.0 - rho) * s.P / p_comm)[:, None, None, None]
        a = self.csi[..., -1]
        sense = a * np.sqrt(rho * s.P / np.maximum((a ** 2).sum(axis=(1, 2)), 1e-12))[:, None, None]
        return np.concatenate([comm, sense[..., None]], axis=-1).astype(np.float32)

    def reset(self, **kw: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self.csi, info = self.env.reset(**kw)
        return self.belief(), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        rho = float(np.clip(np.asarray(action).reshape(-1)[0], 0.0, 1.0))
        self.csi, r, term, trunc, info = self.env.step(self.beams(rho))
        info["rho"] = rho
        return self.belief(), r, term, trunc, info


def make_env(comm: str = "student", snapshots: int = 32) -> SensingShare:
    return SensingShare(gym.make(ENV, scenario="track-highway", users=8, **SETTINGS,
                                 **{"sensing.snapshots": snapshots}), comm)


def evaluate(act: Any, env: SensingShare) -> dict[str, float]:
    """``act(belief, wrapper) -> beams`` on the held-out episodes: mean reward per decision,
    position RMSE (m, decisions with the target inside x in [0, 100] m), track-loss share
    there, mean min-SINR and mean sensing share."""
    rew, err, lost, sinr, rho = [], [], [], [], []
    for seed in EVAL_SEEDS:
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            beams, r_share = act(obs, env)
            env.csi, r, term, trunc, info = env.env.step(beams)
            obs, done = env.belief(), term or trunc
            rew.append(r)
            sinr.append(info["min_sinr"])
            rho.append(r_share)
            if 0 <= info["target_xy"][0] <= 100:
                err.append(min(info["position_error"], 10.0))
                lost.append(info["track_lost"])
    return {"reward": float(np.mean(rew)), "position_rmse": float(np.sqrt(np.mean(np.square(err)))),
            "loss_share": float(np.mean(lost)), "min_sinr": float(np.mean(sinr)),
            "rho": float(np.mean(rho))}


def student_beams(obs: np.ndarray, env: SensingShare) -> tuple[np.ndarray, float]:
    w = env.student.act(env.csi)
    return w, float((w[..., -1] ** 2).sum() / env.system.P.sum())


def fixed(rho: float) -> Any:
    return lambda obs, env: (env.beams(rho), rho)


def train(seed: int, steps: int, every: int, gamma: float, env_eval: SensingShare,
          comm: str = "student", snapshots: int = 32) -> list[dict[str, float]]:
    """PPO for ``steps`` decisions (4 envs), evaluated every ``every`` steps."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    curve: list[dict[str, float]] = []

    def act(model: Any) -> Any:
        def f(obs: np.ndarray, env: SensingShare) -> tuple[np.ndarray, float]:
            a, _ = model.predict(obs, deterministic=True)
            rho = float(np.clip(a[0], 0.0, 1.0))
            return env.beams(rho), rho
        return f

    class Eval(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % every < 4 and self.num_timesteps < steps:
                curve.append({"seed": seed, "steps": self.num_timesteps,
                              **evaluate(act(self.model), env_eval)})
            return True

    vec = DummyVecEnv([lambda: make_env(comm, snapshots) for _ in range(4)])
    vec.seed(seed)
    model = PPO("MlpPolicy", vec, n_steps=128, batch_size=128, n_epochs=8, gamma=gamma,
                gae_lambda=0.9, learning_rate=1e-3, ent_coef=0.0, seed=seed, device="cpu",
                policy_kwargs={"net_arch": [32, 32]}, verbose=0)
    curve.append({"seed": seed, "steps": 0, **evaluate(act(model), env_eval)})
    model.learn(total_timesteps=steps, callback=Eval(), progress_bar=False)
    curve.append({"seed": seed, "steps": steps, **evaluate(act(model), env_eval)})
    return curve


def plot(curves: list[dict[str, float]], base: dict[str, dict[str, float]], path: Path,
         what: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    for k, (key, label) in enumerate((("reward", "mean reward per decision"),
                                      ("position_rmse", "position RMSE in coverage, m"),
                                      ("rho", "mean sensing share rho"))):
        for seed in sorted({c["seed"] for c in curves}):
            pts = [c for c in curves if c["seed"] == seed]
            ax[k].plot([c["steps"] for c in pts], [c[key] for c in pts], "o-", ms=3,
                       label=f"PPO seed {seed:g}")
        for j, (name, b) in enumerate(base.items()):
            ax[k].axhline(b[key], ls="--", lw=1, color=f"C{j + 4}", label=name)
        ax[k].set_xlabel("training decisions")
        ax[k].set_title(label, fontsize=10)
    ax[0].legend(fontsize=7)
    fig.suptitle(f"track-highway, echo sensing, {what}: PPO picks the sensing share "
                 "(held-out episodes)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4096, help="PPO decisions per seed")
    p.add_argument("--every", type=int, default=1024, help="evaluate every this many decisions")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--gamma", type=float, default=0.9)
    p.add_argument("--comm", default="student",
                   help="policy whose communication beams the agent's split rescales")
    p.add_argument("--snapshots", type=int, default=32, help="echo snapshots per decision")
    p.add_argument("--out", type=Path, default=Path("runs/echo-ppo"))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    a.out.mkdir(parents=True, exist_ok=True)
    env_eval = make_env(a.comm, a.snapshots)
    base = {"student": evaluate(student_beams, env_eval)}
    base.update({f"split {r:g}": evaluate(fixed(r), env_eval) for r in SPLITS})
    with (a.out / "baselines.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["policy", *base["student"]])
        w.writeheader()
        w.writerows({"policy": k, **v} for k, v in base.items())
    curves: list[dict[str, float]] = []
    try:
        for seed in a.seeds:
            curves += train(seed, a.steps, a.every, a.gamma, env_eval, a.comm, a.snapshots)
            print(f"seed {seed}: {curves[-1]}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: keeping the finished seeds", file=sys.stderr)
    if curves:
        with (a.out / "curves.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, list(curves[0]))
            w.writeheader()
            w.writerows(curves)
        plot(curves, base, a.out / "curves.png", f"comm beams {a.comm}, {a.snapshots} snapshots")
    for k, v in base.items():
        print(f"{k:>12}: " + ", ".join(f"{n} {x:.3g}" for n, x in v.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
