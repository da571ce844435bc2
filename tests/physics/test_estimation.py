"""Estimated vs true CSI: requested NMSE, target angle error, policies observe the estimate while
metrics use the truth (env, vector env, compare drops, closed loop), the env's road step is the
closed loop at zero latency, LoS checkpoints run under every model, an entity at an AP."""

import gymnasium as gym
import numpy as np
import pytest

import cfisac_env  # noqa: F401
import policies
import scenarios
from cfisac_env.physics.layout import to_complex
from cfisac_env.physics.propagation import geometry
from cfisac_env.physics.scoring import score
from cfisac_env.sim.tracking import closed_loop
from cfisac_env.sim.world import drop_channels
from policies.base import Policy
from policies.evaluation.evaluate import Drops, score_policy
from policies.evaluation.stress import trajectory

ENV = "cfisac/CellFreeISAC-v0"
MODELS = {
    "los": {},
    "rician": {"channel.model": "rician", "channel.k_factor_db": 6.0},
    "cluster": {"channel.model": "cluster", "channel.k_factor_db": 3.0},
    "pathloss": {"channel.pathloss_exponent": 2.0},
    "estimated": {"channel.model": "rician", "channel.k_factor_db": 6.0, "csi.nmse": 0.05,
                  "csi.target_angle_error_deg": 1.0},
}


class Recorder(Policy):
    """``ns-rzf`` beams; keeps every CSI it is shown."""

    def __init__(self, system):
        super().__init__(system)
        self.inner, self.seen = policies.make("ns-rzf", system), []

    def act_batch(self, csi):
        self.seen.append(np.array(csi))
        return self.inner.act_batch(csi)


@pytest.mark.parametrize("channel", ["los", "rician"])
def test_estimated_csi_has_the_requested_nmse(channel):
    over = {"csi.nmse": 0.1, "channel.pathloss_exponent": 2.0, **MODELS[channel]}
    sc = scenarios.load("pos2", users=8, overrides=over)
    rng = np.random.default_rng(0)
    ue, tg = sc.sample(rng, 2000)
    true, obs = drop_channels(sc, ue, tg, rng)
    h, e = to_complex(true.astype(float)), to_complex(obs.astype(float) - true)
    nmse = (np.abs(e[..., :8]) ** 2).sum() / (np.abs(h[..., :8]) ** 2).sum()
    assert nmse == pytest.approx(0.1, rel=0.03)
    np.testing.assert_array_equal(obs[..., -1], true[..., -1])          # sensing column exact


def test_target_angle_error_has_the_requested_spread():
    over = {"csi.target_angle_error_deg": 2.0, "placement.target_x": [50.0, 50.0],
            "placement.target_y": [10.0, 10.0]}
    sc = scenarios.load("pos2", users=2, overrides=over)
    rng = np.random.default_rng(1)
    ue, tg = sc.sample(rng, 4000)
    true, obs = drop_channels(sc, ue, tg, rng)
    np.testing.assert_array_equal(obs[..., :2], true[..., :2])           # comms exact
    a = to_complex(obs.astype(float))[..., -1]                            # (B, L, M)
    cos = np.angle(a[..., 1] / a[..., 0]) / np.pi                        # spacing 0.5
    delta = np.rad2deg(np.arccos(cos) - geometry(sc.system, ue, tg).phi[..., -1])
    assert delta.mean() == pytest.approx(0.0, abs=0.1)
    np.testing.assert_allclose(delta.std(axis=0), [2.0, 2.0], rtol=0.05)


def test_env_observes_the_estimate_and_scores_the_truth():
    env = gym.make(ENV, scenario="pos2", users=4, **MODELS["estimated"])
    obs, _ = env.reset(seed=0)
    world = env.unwrapped.world
    true = world.true_csi[0].copy()
    assert not np.allclose(obs, true)
    beams = policies.make("ns-rzf", env.unwrapped.system).act(obs)
    _, reward, _, _, info = env.step(beams)
    s = score(true[None], beams[None], env.unwrapped.system)
    assert info["ssnr"] == pytest.approx(s.ssnr[0], rel=1e-6)
    assert info["min_sinr"] == pytest.approx(s.min_sinr[0], rel=1e-6)
    assert reward == pytest.approx(s.reward[0], rel=1e-6)


def test_vector_env_and_compare_drops_observe_estimates_score_truth():
    venv = gym.make_vec(ENV, num_envs=3, vectorization_mode="vector_entry_point",
                        scenario="road", users=3, **MODELS["estimated"])
    obs, _ = venv.reset(seed=0)
    true = venv.unwrapped.world.true_csi.copy()
    assert obs.shape == true.shape and not np.allclose(obs, true)
    beams = policies.make("ns-rzf", venv.unwrapped.system).act(obs)
    _, reward, _, _, info = venv.step(beams)
    assert np.all(np.isfinite(reward))
    sc = scenarios.load("pos2", users=4, overrides=MODELS["estimated"])
    drops = Drops.sample(sc, 6, seed=0)
    assert not np.allclose(drops.csi, drops.truth)
    run = score_policy("ns-rzf", sc, drops, progress=False)
    pol = policies.make("ns-rzf", sc.system)
    expected = score(drops.truth, pol.act(drops.csi), sc.system)
    np.testing.assert_allclose(run.ssnr, expected.ssnr, rtol=1e-6)
    np.testing.assert_allclose(run.min_sinr, expected.min_sinr, rtol=1e-6)


@pytest.mark.parametrize("model", ["los", "estimated"])
def test_env_road_step_is_the_closed_loop_at_zero_latency(model):
    """One mechanism: the env's held beams, scored every dt, are the closed loop's."""
    sc = scenarios.load("track-highway", overrides=MODELS[model])
    env = gym.make(ENV, scenario=sc)
    steps = 5
    obs, _ = env.reset(seed=4)
    mine = Recorder(sc.system)
    ssnr, sinr = [], []
    for _ in range(steps):
        obs, _, _, _, info = env.step(mine.act(obs))
        ssnr.append(info["ssnr"])
        sinr.append(info["min_sinr"])
    traj = trajectory(sc, steps * 0.1, seed=4)
    theirs = Recorder(sc.system)
    loop = closed_loop(theirs, traj, sc.system, 0.1)
    np.testing.assert_array_equal(np.concatenate(theirs.seen)[:steps],
                                  np.concatenate(mine.seen)[:steps])        # same observations
    np.testing.assert_allclose(loop.ssnr.reshape(steps, 10).mean(axis=1), ssnr, rtol=1e-6)
    np.testing.assert_allclose(loop.min_sinr.reshape(steps, 10).mean(axis=1), sinr, rtol=1e-6)


def test_csi_delay_ages_the_fading():
    """Under Rician fading with standing UEs, old CSI is worse than fresh CSI for the UEs."""
    sc = scenarios.load("track-highway", users=4, overrides={
        "channel.model": "rician", "channel.k_factor_db": 0.0, "walkers.speed": [1.5, 1.5]})
    traj = trajectory(sc, 1.0, seed=0)
    pol = policies.make("ns-rzf", sc.system)
    fresh = closed_loop(pol, traj, sc.system, 0.01)
    aged = closed_loop(pol, traj, sc.system, 0.01, csi_delay=0.05)
    assert aged.min_sinr.mean() < 0.8 * fresh.min_sinr.mean()


@pytest.mark.parametrize("model", sorted(MODELS))
def test_los_checkpoints_load_and_run_under_every_model(model):
    from policies.learned import checkpoints as checkpoint_store

    if checkpoint_store.find("pos2", 8, "student") is None:
        pytest.skip("no shipped pos2 N=8 student checkpoint in this tree")
    env = gym.make(ENV, scenario="pos2", users=8, **MODELS[model])
    system = env.unwrapped.system
    student = policies.make("student", system, scenario="pos2")
    obs, _ = env.reset(seed=1)
    for _ in range(3):
        beams = student.act(obs)
        assert beams.shape == obs.shape and np.all(np.isfinite(beams))
        assert np.all((beams.astype(float) ** 2).sum(axis=(1, 2, 3)) <= system.P * (1 + 1e-4))
        obs, reward, _, _, info = env.step(beams)
        assert np.isfinite(reward) and info["ssnr"] > 0


@pytest.mark.parametrize("model", ["los", "estimated", "pathloss"])
@pytest.mark.parametrize("scenario", ["pos2", "road"])
def test_entity_at_an_ap_gives_finite_observations_and_rewards(model, scenario):
    env = gym.make(ENV, scenario=scenario, users=2, **MODELS[model])
    ap = env.unwrapped.system.ap_positions
    obs, _ = env.reset(seed=0, options={"ue_xy": [ap[0], [50.0, 23.0]], "target_xy": ap[1]})
    assert np.all(np.isfinite(obs)) and env.observation_space.contains(obs)
    rng = np.random.default_rng(0)
    _, reward, _, _, info = env.step(rng.normal(0, 0.1, obs.shape).astype(np.float32))
    assert np.isfinite(reward) and np.isfinite(info["ssnr"]) and np.isfinite(info["min_sinr"])
    if model == "los" and scenario == "pos2":   # broadside: the steering vector is all ones
        np.testing.assert_allclose(to_complex(obs)[0, :, 0], np.ones(16), atol=1e-7)
        np.testing.assert_allclose(to_complex(obs)[1, :, -1], np.ones(16), atol=1e-7)
