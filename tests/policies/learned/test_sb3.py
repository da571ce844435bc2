"""Stable-Baselines3: the PPO example end to end (tiny step count) and the model -> Policy
adapter."""

import importlib.util
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import cfisac_env  # noqa: E402, F401
import scenarios  # noqa: E402
from policies.learned.rl import SB3Policy  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sb3_ppo.py"


def _example():
    spec = importlib.util.spec_from_file_location("ex_sb3_ppo", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny_model():
    return _example().train(steps=32, users=2)


def test_sb3_ppo_example_trains_and_compare_scores_it(tmp_path, capsys):
    out = tmp_path / "run"
    rc = _example().main(["--steps", "32", "--users", "2", "--drops", "4", "--out", str(out),
                          "--quiet"])
    assert rc == 0, capsys.readouterr().err
    rows = {r["policy"]: r for r in json.loads((out / "summary.json").read_text())["policies"]}
    assert set(rows) == {"sb3-ppo", "mrt-target", "mrt-users", "ns-rzf"}
    assert np.isfinite(rows["sb3-ppo"]["ssnr"]["mean"]) and rows["sb3-ppo"]["ssnr"]["mean"] > 0
    assert "sb3-ppo" in capsys.readouterr().out


def test_adapter_acts_like_the_env_maps_normalized_actions(tiny_model, tmp_path):
    system = scenarios.load("pos2", users=2).system
    pol = SB3Policy(system, tiny_model)
    env = gym.make("cfisac/CellFreeISAC-v0", scenario="pos2", users=2, action_mode="normalized")
    obs, _ = env.reset(seed=0)
    beams = pol.act(obs)
    assert beams.shape == obs.shape and beams.dtype == np.float32
    np.testing.assert_allclose((beams.astype(float) ** 2).sum(axis=(1, 2, 3)), system.P,
                               rtol=1e-5)
    action, _ = tiny_model.predict(obs, deterministic=True)
    _, r_model, _, _, info = env.step(action)
    beams_env = gym.make("cfisac/CellFreeISAC-v0", scenario="pos2", users=2)
    beams_env.reset(seed=0)
    _, r_policy, _, _, _ = beams_env.step(beams)
    assert r_policy == pytest.approx(r_model, rel=1e-5)
    batch = np.stack([obs, obs])
    np.testing.assert_allclose(pol.act(batch)[1], beams, atol=1e-6)
    tiny_model.save(tmp_path / "ppo.zip")                              # by path, too
    again = SB3Policy(system, str(tmp_path / "ppo.zip"))
    np.testing.assert_allclose(again.act(obs), beams, rtol=1e-5, atol=1e-7)


def test_adapter_rejects_another_system_and_bad_options(tiny_model):
    other = scenarios.load("pos2", users=3).system
    with pytest.raises(ValueError, match=r"\(L, 2, M, Q\)"):
        SB3Policy(other, tiny_model)
    system = scenarios.load("pos2", users=2).system
    with pytest.raises(ValueError, match="action_mode"):
        SB3Policy(system, tiny_model, action_mode="unit")
    with pytest.raises(ValueError, match="does not exist"):
        SB3Policy(system, "no/such/model.zip")
