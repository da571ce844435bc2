"""Echo sensing in the environment: defaults unchanged, the target column from the tracker,
metrics on the truth, the same numbers in the single, vector and PettingZoo views."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import cfisac_env
import policies

REF = dict(np.load(Path(__file__).parents[1] / "data" / "default_reference.npz"))
ECHO = {"sensing.mode": "echo"}
ENV = "cfisac/CellFreeISAC-v0"


@pytest.mark.parametrize("tag,scenario,users,seed",
                         [("pos2", "pos2", 8, 3), ("road", "road", 4, 1)])
def test_oracle_mode_is_the_default_and_changes_no_number(tag, scenario, users, seed):
    # the stored reference predates echo sensing: sensing.mode = "oracle" must reproduce it
    env = gym.make(ENV, scenario=scenario, users=users, **{"sensing.mode": "oracle"})
    assert env.unwrapped.config["sensing"]["mode"] == "oracle"
    assert env.unwrapped.core.sensing is None
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(100 + seed)
    got = {"obs": [obs], "reward": [], "ssnr": []}
    for _ in range(4):
        a = rng.normal(0, 0.15, env.action_space.shape).astype(np.float32)
        obs, r, _, _, info = env.step(a)
        got["obs"].append(obs), got["reward"].append(r), got["ssnr"].append(info["ssnr"])
        assert "position_error" not in info
    np.testing.assert_array_equal(np.asarray(got["obs"]), REF[f"env_{tag}_obs"])
    np.testing.assert_allclose(got["reward"], REF[f"env_{tag}_reward"], rtol=1e-6)
    np.testing.assert_allclose(got["ssnr"], REF[f"env_{tag}_ssnr"], rtol=1e-6)


def run(env, pol, steps, seed=0):
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        a = pol.act(obs)
        nxt, r, term, trunc, info = env.step(a)
        out.append((obs, a, r, info))
        obs = nxt
    return out


def test_echo_target_column_from_the_tracker_metrics_on_the_truth():
    kw = dict(scenario="track-highway", users=4)
    echo, oracle = gym.make(ENV, **kw, **ECHO), gym.make(ENV, **kw)
    pol = policies.make("mrt-target", echo.unwrapped.system)
    steps = run(echo, pol, 30)
    o_ref, _ = oracle.reset(seed=0)
    for o, a, r, info in steps:      # the oracle env replays the echo env's beams
        nxt, r_ref, _, _, info_ref = oracle.step(a)
        # the communication columns are the oracle's, the positions the same (the echo streams
        # are spawned, the world's are untouched); only the target column differs
        np.testing.assert_array_equal(o[..., :-1], o_ref[..., :-1])
        np.testing.assert_array_equal(info["target_xy"], info_ref["target_xy"])
        assert not np.array_equal(o[..., -1], o_ref[..., -1])
        # metrics and the ISAC reward use the true channel: the same beams score the same
        assert info["ssnr"] == pytest.approx(info_ref["ssnr"], rel=1e-9)
        assert r == pytest.approx(r_ref, rel=1e-9)
        assert info["angle_error"].shape == (2,) and info["track_cov"].shape == (4, 4)
        o_ref = nxt
    inside = [s[3] for s in steps if 0 <= s[3]["target_xy"][0] <= 100]
    assert len(inside) > 25
    assert not any(i["track_lost"] for i in inside[5:])
    assert np.median([i["position_error"] for i in inside]) < 1.0
    # the position error of what was shown agrees with the positions
    last = steps[-1][3]
    assert last["position_error"] >= 0 and np.isfinite(last["pd"])


def test_echo_env_passes_check_env_and_tracking_reward():
    env = gym.make(ENV, scenario="road", users=3, **ECHO, **{"sensing.tracking_weight": 0.5})
    check_env(env.unwrapped)
    pol = policies.make("mrt-target", env.unwrapped.system)
    plain = gym.make(ENV, scenario="road", users=3, **ECHO)
    for (_, _, r, info), (_, _, r0, _) in zip(run(env, pol, 5), run(plain, pol, 5), strict=True):
        assert info["reward_tracking"] <= 0
        assert r == pytest.approx(r0 + info["reward_tracking"], rel=1e-9)


def test_vector_env_equals_single_envs_in_echo_mode():
    vec = gym.make_vec(ENV, num_envs=3, vectorization_mode="vector_entry_point",
                       scenario="road", users=3, **ECHO)
    singles = [gym.make(ENV, scenario="road", users=3, **ECHO) for _ in range(3)]
    pol = policies.make("mrt-target", vec.unwrapped.system if hasattr(vec, "unwrapped")
                        else vec.system)
    obs, _ = vec.reset(seed=5)
    sobs = [e.reset(seed=5 + i)[0] for i, e in enumerate(singles)]
    for _ in range(4):
        np.testing.assert_allclose(obs, np.stack(sobs), atol=1e-6)
        a = pol.act(obs)
        obs, r, _, _, info = vec.step(a)
        outs = [e.step(a[i]) for i, e in enumerate(singles)]
        sobs = [o[0] for o in outs]
        np.testing.assert_allclose(r, [o[1] for o in outs], rtol=1e-6)
        np.testing.assert_allclose(info["position_error"], [o[4]["position_error"] for o in outs],
                                   rtol=1e-6)
        assert info["_track_lost"].all()


def test_parallel_env_in_echo_mode():
    penv = cfisac_env.parallel_env(scenario="road", users=3, **ECHO)
    env = gym.make(ENV, scenario="road", users=3, **ECHO)
    pol = policies.make("mrt-target", penv.system)
    obs, _ = penv.reset(seed=2)
    o, _ = env.reset(seed=2)
    for _ in range(3):
        np.testing.assert_array_equal(np.stack([obs[a] for a in penv.agents]), o)
        act = pol.act(o)
        obs, rew, *_rest, infos = penv.step({a: act[l] for l, a in enumerate(penv.agents)})
        o, r, *_r, info = env.step(act)
        assert rew["ap_0"] == pytest.approx(r)
        assert infos["ap_0"]["position_error"] == pytest.approx(info["position_error"])


def test_static_scenario_acquires_every_drop():
    env = gym.make(ENV, scenario="pos2", users=4, **ECHO)
    pol = policies.make("mrt-target", env.unwrapped.system)
    infos = [s[3] for s in run(env, pol, 150)]
    lost = np.array([i["track_lost"] for i in infos])
    errs = np.array([i["position_error"] for i in infos])
    # a search dwell per drop: Swerling-I fades (P_D ~ 0.9 per AP) and targets near the APs'
    # line or the ends of the road (bearings almost parallel: the fix's std above lost_std)
    # leave many drops unacquired (0.43 of 200 drops of this stream); the rest are placed well
    assert 0.2 < lost.mean() < 0.55
    assert np.median(errs[~lost]) < 1.5


def test_bad_sensing_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="sensing.mode"):
        gym.make(ENV, scenario="pos2", **{"sensing.mode": "radar"})
    with pytest.raises(ValueError, match="unknown scenario field"):
        gym.make(ENV, scenario="pos2", **{"sensing.snapshot": 3})


def test_vector_env_autoreset_keeps_echo_streams_per_sub_env():
    kw = dict(scenario="road", users=2, **ECHO, **{"env.episode_steps": 2})
    vec = gym.make_vec(ENV, num_envs=2, vectorization_mode="vector_entry_point", **kw)
    single = gym.make(ENV, **kw)
    pol = policies.make("mrt-target", single.unwrapped.system)
    obs, _ = vec.reset(seed=9)
    got = []
    for _ in range(5):                      # two episodes and the autoreset step between them
        obs, r, _, trunc, info = vec.step(pol.act(obs))
        none = np.zeros(2)
        got.append((r[0], bool(info.get("_position_error", none)[0]),
                    info.get("position_error", none)[0]))
    o, _ = single.reset(seed=9)
    want = []
    for k in range(5):
        if k == 2:                          # the vector env's autoreset step: reward 0, no key
            want.append((0.0, False, 0.0))
            continue
        o, r, _, trunc, info = single.step(pol.act(o))
        want.append((r, True, info["position_error"]))
        if trunc:
            o, _ = single.reset()
    for g, w in zip(got, want, strict=True):
        assert g[0] == pytest.approx(w[0], rel=1e-6) and g[1] == w[1]
        assert g[2] == pytest.approx(w[2], rel=1e-6)
