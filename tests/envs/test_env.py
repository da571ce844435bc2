"""The Gymnasium environment: API contract, determinism, explicit placement, bad input."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import cfisac_env
from cfisac_env.physics import metrics

ENV = "cfisac/CellFreeISAC-v0"


def target_beams(obs, system):
    """Every AP's whole budget on the target steering vector."""
    w = np.zeros_like(obs)
    w[..., -1] = obs[..., -1] * np.sqrt(system.P / system.M)[:, None, None]
    return w


@pytest.mark.parametrize("scenario", ["pos1", "pos2", "road"])
def test_check_env(scenario):
    env = gym.make(ENV, scenario=scenario, users=3, render_mode="rgb_array")
    check_env(env.unwrapped)


def test_reset_step_contract_and_info():
    env = gym.make(ENV, scenario="pos2", users=8)
    obs, info = env.reset(seed=0)
    system = env.unwrapped.system
    assert obs.shape == (2, 2, 16, 9) and obs.dtype == np.float32
    assert info["ue_xy"].shape == (8, 2) and info["target_xy"].shape == (2,)
    obs2, reward, terminated, truncated, info = env.step(target_beams(obs, system))
    assert info["ssnr"] == pytest.approx(3.2, rel=1e-5)
    assert info["min_sinr"] == 0.0 and info["sinr"].shape == (8,)
    assert reward == pytest.approx(0.5 * 3.2, rel=1e-5)          # default: beta = 0.5
    assert info["ap_xy"].shape == (2, 2) and not info["power_scaled_any"]
    assert not np.array_equal(obs, obs2)                           # a fresh drop
    assert not terminated and not truncated


def test_step_scores_the_drop_the_observation_described():
    env = gym.make(ENV, scenario="pos2", users=4)
    obs, info0 = env.reset(seed=3)
    system = env.unwrapped.system
    rng = np.random.default_rng(0)
    beams = metrics.normalize_power(rng.standard_normal(obs.shape), system).astype(np.float32)
    _, _, _, _, info = env.step(beams)
    assert info["ssnr"] == pytest.approx(float(metrics.ssnr(obs, beams, system)), rel=1e-6)
    np.testing.assert_allclose(info["sinr"], metrics.sinr(obs, beams, system), rtol=1e-6)
    np.testing.assert_array_equal(info["ue_xy"], info0["ue_xy"])


def test_explicit_positions_reproduce_eq4_by_hand():
    env = gym.make(ENV, scenario="pos2", users=2)
    ue = np.array([[10.0, 23.0], [90.0, 23.0]])
    tg = np.array([50.0, 7.0])
    obs, info = env.reset(seed=0, options={"ue_xy": ue, "target_xy": tg})
    np.testing.assert_array_equal(info["ue_xy"], ue)
    k = np.arange(16)
    for l, (ax, ay) in enumerate([(25.0, 0.0), (75.0, 0.0)]):
        for q, (x, y) in enumerate([*ue, tg]):
            cos = (x - ax) / np.hypot(x - ax, y - ay)
            a = np.exp(1j * 2 * np.pi * 0.5 * k * cos)
            np.testing.assert_allclose(obs[l, 0, :, q], a.real, atol=2e-6)
            np.testing.assert_allclose(obs[l, 1, :, q], a.imag, atol=2e-6)


def test_over_budget_action_is_scaled_and_reported():
    env = gym.make(ENV, scenario="pos2", users=2)
    obs, _ = env.reset(seed=0)
    beams = target_beams(obs, env.unwrapped.system)
    beams[1] *= 3.0                                               # AP 1 spends 9 W of 1 W
    _, _, _, _, info = env.step(beams)
    assert info["power_scaled"].tolist() == [False, True]
    assert info["ap_power"][1] == pytest.approx(9.0, rel=1e-5)
    assert info["ssnr"] == pytest.approx(3.2, rel=1e-5)


def test_road_same_seed_same_observations_over_100_steps():
    def rollout(seed):
        env = gym.make(ENV, scenario="road", users=5)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for _ in range(100):
            obs, _, term, trunc, _ = env.step(target_beams(obs, env.unwrapped.system))
            out.append(obs)
            if term or trunc:
                obs, _ = env.reset()
        return np.stack(out)

    a, b = rollout(11), rollout(11)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, rollout(12))
    assert not np.array_equal(a[0], a[50])                          # the traffic moved


def test_road_moves_between_decisions_and_averages_over_the_interval():
    env = gym.make(ENV, scenario="road", users=3)
    obs, info0 = env.reset(seed=0)
    _, _, _, _, info = env.step(target_beams(obs, env.unwrapped.system))
    # beams aimed at the start position lose a little as the target drives on
    assert 0.5 * 3.2 < info["ssnr"] < 3.2
    _, _, _, _, info2 = env.step(target_beams(obs, env.unwrapped.system))
    speed = np.linalg.norm(info2["target_xy"] - info["target_xy"]) / 0.1
    assert speed == pytest.approx(13.9, rel=1e-6)                   # road.toml: 13.9 m/s


def test_road_render_shows_vehicles_moving():
    env = gym.make(ENV, scenario="road", users=3, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    first = env.render()
    for _ in range(30):
        obs, *_ = env.step(target_beams(obs, env.unwrapped.system))
    last = env.render()
    assert first.ndim == 3 and first.shape[2] == 3 and first.dtype == np.uint8
    assert np.mean(first != last) > 0.005


@pytest.mark.parametrize("action, match", [
    (np.zeros((2, 2, 16, 8), np.float32), r"\(L, 2, M, Q\) = \(2, 2, 16, 9\)"),
    (np.zeros((1, 2, 2, 16, 9), np.float32), r"shape"),
    (np.zeros((2, 16, 9), np.complex64), r"shape"),
    (np.full((2, 2, 16, 9), np.nan, np.float32),
     r"^NaN or inf in action; expected finite floats of shape \(2, 2, 16, 9\)"),
    (np.full((2, 2, 16, 9), np.inf, np.float32), r"NaN or inf"),
])
def test_bad_actions_raise(action, match):
    env = gym.make(ENV, scenario="pos2", users=8)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.unwrapped.step(action)


@pytest.mark.parametrize("kwargs, match", [
    ({"scenario": "pos7"}, "available"),
    ({"scenario": "pos2", "users": 0}, "users"),
    ({"scenario": "pos2", "reward": "fun"}, "reward"),
    ({"scenario": "pos2", "no_field": 3}, "fields"),
])
def test_bad_construction_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(ENV, **kwargs)


def test_bad_reset_options_raise():
    env = gym.make(ENV, scenario="pos2", users=2)
    with pytest.raises(ValueError, match=r"\(N, 2\) = \(2, 2\)"):
        env.reset(seed=0, options={"ue_xy": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(seed=0, options={"ue": 1})


def test_make_in_fresh_subprocess_by_module_path():
    code = ("import gymnasium as gym; e = gym.make('cfisac_env:CellFreeISAC-v0', scenario='pos1');"
            "o, _ = e.reset(seed=0); print(o.shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(2, 2, 16, 6)"


def test_vector_env_matches_single_env():
    venv = gym.make_vec(ENV, num_envs=16, vectorization_mode="vector_entry_point",
                        scenario="pos2", users=4)
    obs, _ = venv.reset(seed=5)
    system = venv.unwrapped.system
    assert obs.shape == (16, 2, 2, 16, 5)
    rng = np.random.default_rng(1)
    beams = metrics.normalize_power(rng.standard_normal(obs.shape), system).astype(np.float32)
    nxt, reward, term, trunc, info = venv.step(beams)
    assert reward.shape == term.shape == trunc.shape == (16,)
    np.testing.assert_allclose(info["ssnr"], metrics.ssnr(obs, beams, system), rtol=1e-6)
    env = gym.make(ENV, scenario="pos2", users=4)
    env.reset(options={"ue_xy": info["ue_xy"][3], "target_xy": info["target_xy"][3]})
    _, r3, _, _, i3 = env.step(beams[3])
    assert r3 == pytest.approx(reward[3]) and i3["min_sinr"] == pytest.approx(info["min_sinr"][3])
    assert not np.array_equal(nxt, obs)
    with pytest.raises(ValueError, match=r"\(B, L, 2, M, Q\)"):
        venv.step(beams[:3])


def test_vector_env_road_autoresets():
    venv = gym.make_vec(ENV, num_envs=3, vectorization_mode="vector_entry_point",
                        scenario="road", users=2, episode_steps=2)
    obs, _ = venv.reset(seed=0)
    zeros = np.zeros_like(obs)
    flags = [venv.step(zeros)[3] for _ in range(3)]
    assert not flags[0].any() and flags[1].all() and not flags[2].any()


def test_env_id_registered():
    assert cfisac_env.ENV_ID in gym.registry
