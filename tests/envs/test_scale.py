"""The simulator at cell-free scale: street / block scenarios, the env, the vector env, the
PettingZoo view and the road at (L, N, M) = (16, 32, 8) and (8, 32, 16); the fast paths give the
reference numbers."""

import numpy as np
import pytest

import cfisac_env
import scenarios
from cfisac_env.envs.core import SCORE_CHUNK_ENTRIES, score_batch
from cfisac_env.physics import metrics
from cfisac_env.physics.channels import wrapped_phase
from cfisac_env.physics.scoring import score


def test_street_and_block_geometry():
    st = scenarios.load("street")
    assert (st.system.L, st.system.N, st.system.M) == (8, 16, 16)
    np.testing.assert_array_equal(st.system.ap_positions[:, 0], 25.0 + 50.0 * np.arange(8))
    assert np.all(st.system.ap_positions[:, 1] == 0)
    ue, tg = st.sample(np.random.default_rng(0), 500)
    assert set(np.unique(ue[..., 1])) == {-3.0, 23.0}                  # both sidewalks
    share = np.mean(ue[..., 1] == 23.0)
    assert 0.45 < share < 0.55
    assert ue[..., 0].min() >= 0 and ue[..., 0].max() <= 400
    assert tg[:, 1].min() >= 0 and tg[:, 1].max() <= 20 and tg[:, 0].max() > 300
    bl = scenarios.load("block")
    assert (bl.system.L, bl.system.N, bl.system.M) == (16, 32, 8)
    xs, ys = np.unique(bl.system.ap_positions[:, 0]), np.unique(bl.system.ap_positions[:, 1])
    np.testing.assert_array_equal(xs, [25, 75, 125, 175])
    np.testing.assert_array_equal(ys, [25, 75, 125, 175])


def test_each_scale_scenario_declares_its_own_checkpoints():
    assert scenarios.load("street").config["learned"]["checkpoints"] == "street"
    assert scenarios.load("block").config["learned"]["checkpoints"] == "block"
    for name in ("street-road", "track-street"):
        assert scenarios.load(name).config["learned"]["checkpoints"] == "street-road"
    with pytest.raises(ValueError, match="learned.checkpoints"):
        scenarios.load("street", overrides={"learned.checkpoints": 3})


def test_sidewalk_lines_must_lie_in_the_ue_box():
    with pytest.raises(ValueError, match="ue_y_lines"):
        scenarios.load("street", overrides={"placement.ue_y_lines": [-3.0, 40.0]})


def test_batched_sampler_equals_one_generator_at_a_time():
    sc = scenarios.load("street", users=9)
    rngs = [np.random.default_rng(s) for s in range(4)]
    ue, tg = sc.sample_each(rngs)
    for i in range(4):
        u, t = sc.sample(np.random.default_rng(i))
        np.testing.assert_array_equal(ue[i], u)
        np.testing.assert_array_equal(tg[i], t)


def test_fast_phase_wrap_is_bit_identical_to_the_modulo():
    rng = np.random.default_rng(5)
    cos = np.concatenate([rng.uniform(-1, 1, 20000), [-1.0, 0.0, 1.0, 0.5, -0.5]])
    phase = np.pi * cos[:, None] * np.arange(64)                            # M up to 64
    edges = np.array([k * np.pi + d for k in range(-70, 70)
                            for d in (0.0, 1e-12, -1e-12, 2e-16, -2e-16)])
    for x in (phase, edges):
        want = ((x + np.pi) % (2 * np.pi) - np.pi).astype(np.float32)
        np.testing.assert_array_equal(wrapped_phase(x).view(np.int32), want.view(np.int32))


def test_chunked_scoring_gives_the_same_numbers():
    sc = scenarios.load("street", users=32)
    h, _, _ = sc.drops(np.random.default_rng(0), 40)
    w = np.random.default_rng(1).normal(0, 0.1, h.shape)
    assert 40 * 4 * 8 * 16 * 32 > SCORE_CHUNK_ENTRIES                      # really chunked
    got = score_batch(h[:, None], w[:, None], sc.system, "weighted", 0.5)
    want = score(h[:, None], w[:, None], sc.system)
    for key in ("ssnr", "sinr", "min_sinr", "reward", "ap_power", "power_scaled"):
        np.testing.assert_array_equal(got[key], getattr(want, key), err_msg=key)


def test_gains_by_one_product_match_the_complex_definition():
    sc = scenarios.load("block", users=5)
    h, _, _ = sc.drops(np.random.default_rng(2), 3)
    w = np.random.default_rng(3).normal(size=h.shape)
    re, im = metrics.gains(h, w, sc.system)
    hc = h[:, :, 0] + 1j * h[:, :, 1]
    wc = w[:, :, 0] + 1j * w[:, :, 1]
    g = np.einsum("blmn,blmq->bnq", hc[..., :5].conj(), wc)
    np.testing.assert_allclose(re + 1j * im, g, rtol=1e-12, atol=1e-12)
    a = hc[..., -1]
    ssnr = 0.1 * np.sum(np.abs(np.einsum("blm,blmq->blq", a.conj(), wc)) ** 2, axis=(-2, -1))
    np.testing.assert_allclose(metrics.ssnr(h, w, sc.system), ssnr, rtol=1e-12)


@pytest.mark.parametrize("scenario,users,shape", [("block", 32, (16, 2, 8, 33)),
                                                  ("street", 32, (8, 2, 16, 33))])
def test_env_vector_env_and_pettingzoo_at_scale(scenario, users, shape):
    import gymnasium as gym

    env = gym.make(cfisac_env.ENV_ID, scenario=scenario, users=users)
    obs, info = env.reset(seed=4)
    assert obs.shape == shape and info["ap_xy"].shape == (shape[0], 2)
    a = env.action_space.sample()
    _, r, _, _, info = env.step(a)
    assert np.isfinite(r) and info["sinr"].shape == (users,)
    venv = gym.make_vec(cfisac_env.ENV_ID, num_envs=3, vectorization_mode="vector_entry_point",
                        scenario=scenario, users=users)
    vobs, _ = venv.reset(seed=4)
    np.testing.assert_array_equal(vobs[0], obs)                          # sub-env 0 = seed 4
    _, vr, _, _, _ = venv.step(np.stack([a] * 3))
    assert vr[0] == pytest.approx(r, rel=1e-12)
    penv = cfisac_env.parallel_env(scenario=scenario, users=users)
    pobs, _ = penv.reset(seed=4)
    assert len(penv.agents) == shape[0]
    np.testing.assert_array_equal(pobs["ap_3"], obs[3])
    _, pr, _, _, _ = penv.step({f"ap_{l}": a[l] for l in range(shape[0])})
    assert pr["ap_0"] == pytest.approx(r, rel=1e-12)


def test_street_road_moves_along_the_whole_street():
    import gymnasium as gym

    env = gym.make(cfisac_env.ENV_ID, scenario="track-street", users=4)
    obs, info = env.reset(seed=0)
    assert obs.shape == (8, 2, 16, 5)
    y = sorted(set(info["ue_xy"][:, 1]))
    assert set(y) <= {-3.0, 23.0}
    x0 = info["target_xy"][0]
    for _ in range(10):
        _, r, _, trunc, info = env.step(env.action_space.sample())
    assert np.isfinite(r) and not trunc
    assert info["target_xy"][0] - x0 == pytest.approx(30.0 * 0.9, abs=0.5)   # 30 m/s
    assert env.unwrapped.episode_steps == 140


@pytest.mark.parametrize("aps,antennas", [(8, 16), (16, 8)])
def test_the_road_at_scale(aps, antennas):
    # (L, N, M) = (8, 32, 16) and (16, 32, 8) on the moving street (APs every 25 m for 16).
    import gymnasium as gym

    gap = 400.0 / aps
    ap_xy = [[gap / 2 + gap * l, 0.0] for l in range(aps)]
    venv = gym.make_vec(cfisac_env.ENV_ID, num_envs=2, vectorization_mode="vector_entry_point",
                        scenario="street-road", users=32,
                        **{"system.ap_xy": ap_xy, "system.antennas": antennas})
    obs, _ = venv.reset(seed=1)
    assert obs.shape == (2, aps, 2, antennas, 33)
    _, r, _, trunc, info = venv.step(venv.action_space.sample())
    assert np.all(np.isfinite(r)) and info["sinr"].shape == (2, 32) and not trunc.any()
