"""The PettingZoo view: one agent per AP, PettingZoo's own API and seed tests, agent-by-agent
driving by a distributed policy, identical numbers to the single env."""

import importlib.util
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pettingzoo")
from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402

import cfisac_env  # noqa: E402
import policies  # noqa: E402
from cfisac_env.envs.multiagent import CellFreeISACParallelEnv, act_agents  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# (scenario, kwargs): short episodes so that the API test also sees every agent truncated.
CASES = [("pos2", {"users": 3, "episode_steps": 4}),
         ("road", {"users": 2, "episode_steps": 3}),
         ("track-corridor", {"users": 2, "episode_steps": 2})]


@pytest.mark.parametrize("scenario, kw", CASES, ids=[c[0] for c in CASES])
def test_pettingzoo_parallel_api_test(scenario, kw):
    penv = cfisac_env.parallel_env(scenario=scenario, **kw)
    assert penv.possible_agents == [f"ap_{l}" for l in range(penv.system.L)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(penv, num_cycles=10)
    # the API test passes options={"options": 1}: our one warning; nothing else is reported
    others = [str(w.message) for w in caught if "unknown reset options" not in str(w.message)]
    assert others == []
    assert penv.agents == []                      # it ran into the end of an episode


@pytest.mark.parametrize("scenario, kw", CASES, ids=[c[0] for c in CASES])
def test_pettingzoo_seed_test(scenario, kw):
    parallel_seed_test(lambda: cfisac_env.parallel_env(scenario=scenario, **kw), num_cycles=5)


def test_track_corridor_has_six_agents_each_seeing_its_own_csi():
    penv = cfisac_env.parallel_env(scenario="track-corridor", users=2)
    env = gym.make("cfisac/CellFreeISAC-v0", scenario="track-corridor", users=2)
    obs, infos = penv.reset(seed=4)
    full, _ = env.reset(seed=4)
    assert len(penv.agents) == 6
    for l, agent in enumerate(penv.agents):
        assert obs[agent].shape == penv.observation_space(agent).shape == (2, 16, 3)
        np.testing.assert_array_equal(obs[agent], full[l])
    np.testing.assert_array_equal(penv.state(), full)


@pytest.mark.parametrize("scenario", ["pos2", "road"])
def test_distributed_policy_agent_by_agent_equals_the_single_env(scenario):
    """Driving AP by AP (each agent's own CSI only) gives the single env's numbers."""
    penv = cfisac_env.parallel_env(scenario=scenario, users=3)
    env = gym.make("cfisac/CellFreeISAC-v0", scenario=scenario, users=3)
    spec = f"{EXAMPLES / 'power_split_mrt.py'}:PowerSplitMRT"
    pol = policies.make(spec, penv.system, split=0.6)
    assert pol.distributed
    obs, _ = penv.reset(seed=11)
    full, _ = env.reset(seed=11)
    for _ in range(4):
        actions = act_agents(pol, obs)
        obs, rew, term, trunc, infos = penv.step(actions)
        full, r, _, _, info = env.step(pol.act(full))
        assert set(rew) == set(penv.possible_agents)
        assert all(v == pytest.approx(r) for v in rew.values())          # shared team reward
        for agent in penv.possible_agents:
            assert infos[agent]["ssnr"] == pytest.approx(info["ssnr"])
            np.testing.assert_allclose(infos[agent]["sinr"], info["sinr"])
        assert not any(term.values()) and not any(trunc.values())


def test_act_agents_uses_only_each_aps_own_csi():
    penv = cfisac_env.parallel_env(scenario="pos2", users=3)
    pol = policies.make("mrt-users", penv.system)
    obs, _ = penv.reset(seed=0)
    base = act_agents(pol, obs)
    changed = dict(obs, ap_1=np.zeros_like(obs["ap_1"]))
    moved = act_agents(pol, changed)
    np.testing.assert_array_equal(moved["ap_0"], base["ap_0"])
    assert not np.array_equal(moved["ap_1"], base["ap_1"])


def test_normalized_actions_and_bad_steps():
    penv = CellFreeISACParallelEnv("pos2", users=2, action_mode="normalized", episode_steps=2)
    space = penv.action_space("ap_0")
    assert space.low.min() == -1.0 and space.high.max() == 1.0
    obs, _ = penv.reset(seed=1)
    acts = {a: penv.action_space(a).sample() for a in penv.agents}
    _, _, _, _, infos = penv.step(acts)
    np.testing.assert_allclose(infos["ap_0"]["ap_power"], 1.0, rtol=1e-5)  # the full budget
    assert not infos["ap_0"]["power_scaled_any"]
    with pytest.raises(ValueError, match="missing \\['ap_1'\\]"):
        penv.step({"ap_0": acts["ap_0"]})
    with pytest.raises(ValueError, match=r"\(2, M, Q\) = \(2, 16, 3\)"):
        penv.step({"ap_0": acts["ap_0"], "ap_1": np.zeros((2, 16, 4))})
    bad = acts["ap_1"].copy()
    bad[0, 0, 0] = np.nan
    # the agent and its own (2, M, Q), not the joint (L, 2, M, Q) of the wrapped env
    with pytest.raises(ValueError, match=r"^the action of ap_1 contains NaN or inf; expected "
                                         r"finite floats of shape \(2, M, Q\) = \(2, 16, 3\)"):
        penv.step({"ap_0": acts["ap_0"], "ap_1": bad})
    with pytest.raises(ValueError, match=r"^the action of ap_0 must be real floats"):
        penv.step({"ap_0": acts["ap_0"].astype(complex), "ap_1": acts["ap_1"]})
    penv.step(acts)
    assert penv.agents == []
    with pytest.raises(ValueError, match="reset"):
        penv.step(acts)


def test_multiagent_example_runs():
    spec = importlib.util.spec_from_file_location("ex_multiagent", EXAMPLES / "multiagent.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.run("road", users=2, steps=3)
    assert out["agents"] == 2 and out["ssnr"] > 0 and out["min_sinr"] > 0
