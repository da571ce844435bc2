"""Gymnasium conventions: the vector env number for number against SyncVectorEnv, seeding,
``_key`` masks, options, render mode, copies; ``action_mode="normalized"``; spec, config,
rendering without pyplot; scenario inheritance; run-folder provenance; the import layering."""

import copy
import json
import pickle
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import cfisac_env  # noqa: F401
import scenarios
from cfisac_env.physics import metrics

ENV = "cfisac/CellFreeISAC-v0"
ROOT = Path(__file__).resolve().parents[2]


def _vec(mode, n=3, **kw):
    return gym.make_vec(ENV, num_envs=n, vectorization_mode=mode, **kw)


def _run(venv, seed, steps, actions_seed=0):
    """Observations, rewards, truncations and info of ``steps`` steps after reset(seed)."""
    rng = np.random.default_rng(actions_seed)
    obs, info = venv.reset(seed=seed)
    out = [(obs, info)]
    for _ in range(steps):
        a = rng.normal(0, 0.2, venv.action_space.shape).astype(np.float32)
        out.append(venv.step(a))
    return out


@pytest.mark.parametrize("scenario, kw", [("pos2", {"users": 3, "episode_steps": 2}),
                                          ("road", {"users": 2, "episode_steps": 2})])
def test_vector_env_equals_sync_vector_env_with_autoreset(scenario, kw):
    """Same seeds, same actions: the batched env gives SyncVectorEnv's numbers, autoreset, info
    and ``_key`` masks included; later drops come from every sub-env's own generator."""
    fast = _run(_vec("vector_entry_point", scenario=scenario, **kw), 7, 5)
    sync = _run(_vec("sync", scenario=scenario, **kw), 7, 5)
    np.testing.assert_array_equal(fast[0][0], sync[0][0])
    for a, b in zip(fast[1:], sync[1:], strict=True):
        np.testing.assert_array_equal(a[0], b[0])                       # observations
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)               # rewards
        np.testing.assert_array_equal(a[3], b[3])                       # truncations
        assert set(a[4]) == set(b[4])
        for k in b[4]:
            np.testing.assert_allclose(np.asarray(a[4][k], float), np.asarray(b[4][k], float),
                                       rtol=1e-6, err_msg=k)
    # step 3 is the autoreset step of every sub-env: no metrics (no sub-env has them), the
    # reset positions with their masks
    info3 = fast[3][4]
    assert "ssnr" not in info3 and "_ssnr" not in info3 and info3["_ue_xy"].all()
    assert fast[1][4]["_ssnr"].all()
    assert fast[2][3].all() and not fast[3][3].any()
    # each sub-env's later drops are its own (sub-env 0's stream would repeat across the batch)
    assert not np.array_equal(fast[1][0][0], fast[1][0][1])


def test_seed_list_equals_single_envs_and_bad_seed_lists_fail():
    venv = _vec("vector_entry_point", scenario="pos2", users=2)
    obs, _ = venv.reset(seed=[10, 20, 30])
    rng = np.random.default_rng(3)
    acts = [rng.normal(0, 0.2, venv.action_space.shape).astype(np.float32) for _ in range(3)]
    steps = [venv.step(a) for a in acts]
    for i, s in enumerate([10, 20, 30]):
        env = gym.make(ENV, scenario="pos2", users=2)
        o, _ = env.reset(seed=s)
        np.testing.assert_array_equal(o, obs[i])
        for a, st in zip(acts, steps, strict=True):
            o, r, _, _, _ = env.step(a[i])
            np.testing.assert_array_equal(o, st[0][i])
            assert r == pytest.approx(st[1][i])
    with pytest.raises(ValueError, match="one seed per sub-env"):
        venv.reset(seed=[1, 2])


def test_reset_without_seed_after_a_seeded_reset_is_reproducible():
    def episode():
        venv = _vec("vector_entry_point", scenario="pos2", users=2)
        venv.reset(seed=5)
        venv.step(np.zeros(venv.action_space.shape, np.float32))
        obs, _ = venv.reset()
        return obs, venv.step(np.zeros(venv.action_space.shape, np.float32))[0]

    a, b = episode(), episode()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_vector_env_options_reset_mask_and_render_mode():
    venv = _vec("vector_entry_point", scenario="pos2", users=2, render_mode="rgb_array")
    with pytest.raises(ValueError, match=r"unknown reset options \[.ue.\]; expected .*reset_mask"):
        venv.reset(seed=0, options={"ue": 1})
    obs, info = venv.reset(seed=0, options={"target_xy": np.array([40.0, 5.0])})
    np.testing.assert_array_equal(info["target_xy"], [[40.0, 5.0]] * 3)
    assert info["_target_xy"].all()
    venv.step(np.zeros(venv.action_space.shape, np.float32))
    frames = venv.render()
    assert len(frames) == 3 and frames[0].ndim == 3 and frames[0].dtype == np.uint8
    before, _ = venv.step(np.zeros(venv.action_space.shape, np.float32))[0], None
    mask = np.array([False, True, False])
    obs2, info2 = venv.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(obs2[0], before[0])
    assert not np.array_equal(obs2[1], before[1])
    np.testing.assert_array_equal(info2["_ue_xy"], mask)
    with pytest.raises(ValueError, match="render_mode"):
        _vec("vector_entry_point", scenario="pos2", render_mode="human")


@pytest.mark.parametrize("vector", [False, True])
def test_road_envs_pickle_and_deepcopy(vector):
    env = (_vec("vector_entry_point", n=2, scenario="road", users=2) if vector
           else gym.make(ENV, scenario="road", users=2))
    obs, _ = env.reset(seed=3)
    zeros = np.zeros(env.action_space.shape, np.float32)
    for _ in range(3):
        env.step(zeros)
    clones = [pickle.loads(pickle.dumps(env)), copy.deepcopy(env)]
    for _ in range(4):
        ref = env.step(zeros)
        for c in clones:
            got = c.step(zeros)
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_array_equal(got[1], ref[1])


# ---- action_mode="normalized" ---------------------------------------------------------------
def test_normalized_actions_spend_the_full_budget_and_pass_check_env():
    env = gym.make(ENV, scenario="pos2", users=4, action_mode="normalized")
    check_env(env.unwrapped)
    space = env.action_space
    assert space.low.min() == -1.0 and space.high.max() == 1.0
    obs, _ = env.reset(seed=0)
    space.seed(0)
    system = env.unwrapped.system
    for _ in range(5):
        a = space.sample()
        _, r, _, _, info = env.step(a)
        np.testing.assert_allclose(info["ap_power"], system.P, rtol=1e-5)
        assert not info["power_scaled_any"]
    # the same action as beams: the env scores normalize_power(a) (seed eqs. 17-18)
    beams_env = gym.make(ENV, scenario="pos2", users=4)
    beams_env.reset(seed=0)
    env.reset(seed=0)
    a = space.sample()
    _, r1, _, _, _ = env.step(a)
    _, r2, _, _, _ = beams_env.step(metrics.normalize_power(a, system).astype(np.float32))
    assert r1 == pytest.approx(r2, rel=1e-5)
    _, _, _, _, info = env.step(np.zeros_like(a))             # all-zero block: zero beams
    assert info["ssnr"] == 0.0 and np.all(info["ap_power"] == 0.0)


def test_beams_mode_is_the_default_and_bad_modes_fail():
    env = gym.make(ENV, scenario="pos2", users=2)
    assert env.unwrapped.action_mode == "beams" and env.action_space.high.max() == 1.0
    with pytest.raises(ValueError, match="action_mode"):
        gym.make(ENV, scenario="pos2", action_mode="unit")


# ---- spec, config, render ---------------------------------------------------------------------
def test_spec_max_episode_steps_and_config():
    env = gym.make(ENV, scenario="road", users=2, episode_steps=7)
    assert env.spec.max_episode_steps == 7
    remade = gym.make(env.spec)
    assert remade.spec.max_episode_steps == 7
    cfg = env.unwrapped.config
    assert cfg == scenarios.load("road", users=2, overrides={"episode_steps": 7}).config
    cfg["env"]["episode_steps"] = 99                          # a copy: the env is unchanged
    assert env.unwrapped.config["env"]["episode_steps"] == 7


def test_render_keeps_the_users_matplotlib_backend():
    code = ("import matplotlib, sys; matplotlib.use('svg'); import gymnasium as gym, numpy as np;"
            "import cfisac_env; e = gym.make('cfisac/CellFreeISAC-v0', scenario='road', users=2,"
            " render_mode='rgb_array'); o, _ = e.reset(seed=0); e.step(np.zeros_like(o));"
            "f = e.render(); print(f.shape, matplotlib.get_backend(),"
            " 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    shape, backend, pyplot = out.stdout.strip().rsplit(" ", 2)
    assert backend == "svg" and pyplot == "False" and shape.startswith("(")


# ---- scenarios, runs, layering ----------------------------------------------------------------
def test_scenario_base_inheritance_merges_nested_tables(tmp_path):
    child = tmp_path / "child.toml"
    child.write_text('base = "track-highway"\n[stress.fixed_latency]\ncvx = 2.0\n')
    parent = scenarios.load("track-highway").config["stress"]["fixed_latency"]
    got = scenarios.load(child).config["stress"]["fixed_latency"]
    assert got["cvx"] == 2.0
    assert {k: v for k, v in got.items() if k != "cvx"} == \
        {k: v for k, v in parent.items() if k != "cvx"}
    assert len(parent) > 1


def test_compare_run_folder_records_provenance_and_strict_json(tmp_path):
    pd = pytest.importorskip("pandas")
    from runners import compare

    out = tmp_path / "run"
    rc = compare.main(["--policy", "mrt-target", "--policy", "mrt-users", "--users", "2",
                       "--drops", "3", "--quiet", "--out", str(out)])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())
    prov = cfg["provenance"]
    assert prov["packages"]["numpy"] == np.__version__
    assert prov["packages"]["gymnasium"] == gym.__version__
    assert prov["platform"] and prov["python"] and "commit" in prov["git"]

    def reject(token):
        raise AssertionError(f"bare {token}")

    summary = json.loads((out / "summary.json").read_text(), parse_constant=reject)
    flat = pd.json_normalize(summary, record_path="policies")
    assert set(flat["policy"]) == {"mrt-target", "mrt-users"}
    assert "ssnr.mean" in flat.columns


def test_cfisac_env_does_not_import_scenarios_and_either_imports_first():
    code = ("import sys, cfisac_env, cfisac_env.envs.env, cfisac_env.envs.vector_env, "
            "cfisac_env.envs.core, cfisac_env.sim.world, cfisac_env.envs.render; "
            "print('scenarios' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
    code = ("import scenarios; import gymnasium as gym, cfisac_env;"
            "e = gym.make('cfisac/CellFreeISAC-v0', scenario='pos1');"
            "print(e.reset(seed=0)[0].shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "(2, 2, 16, 6)"
