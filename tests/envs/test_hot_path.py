"""The env's fast paths give the plain path's numbers: positions drawn a block ahead, the reused
beam buffer, the CSI phase shortcuts (antenna 0, the product by the ramp, the tight slack)."""

import gymnasium as gym
import numpy as np
import pytest

import cfisac_env  # noqa: F401
import scenarios
from cfisac_env.physics import channels, metrics
from cfisac_env.sim.ahead import DrawAhead

ENV = "cfisac/CellFreeISAC-v0"


def _vec(mode, n, **kw):
    return gym.make_vec(ENV, num_envs=n, vectorization_mode=mode, **kw)


def _same_steps(fast, sync, steps, rng):
    for _ in range(steps):
        a = rng.normal(0, 0.2, fast.action_space.shape).astype(np.float32)
        got, want = fast.step(a), sync.step(a)
        np.testing.assert_array_equal(got[0], want[0])                   # observations
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12)           # rewards
        np.testing.assert_array_equal(got[3], want[3])                   # truncations


def test_drawn_ahead_drops_are_each_generators_own_across_blocks_and_resets():
    # N = 30: 62 uniforms a drop, blocks of 8 drops; 20 steps (autoresets every 7) cross two.
    kw = {"scenario": "pos2", "users": 30, "episode_steps": 7}
    fast, sync = _vec("vector_entry_point", 3, **kw), _vec("sync", 3, **kw)
    assert fast.world.ahead is not None and fast.world.ahead.block == 8
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(fast.reset(seed=4)[0], sync.reset(seed=4)[0])
    _same_steps(fast, sync, 20, rng)
    np.testing.assert_array_equal(fast.reset()[0], sync.reset()[0])     # generators run on
    _same_steps(fast, sync, 3, rng)
    seeds = [11, None, 12]                                             # sub-env 1 runs on
    np.testing.assert_array_equal(fast.reset(seed=seeds)[0], sync.reset(seed=seeds)[0])
    _same_steps(fast, sync, 18, rng)


def test_draw_ahead_hands_out_what_sample_draws():
    sc = scenarios.load("street", users=9)
    ahead = DrawAhead(sc, 3)
    ref = [np.random.default_rng(s) for s in (1, 2, 3)]
    for i in range(3):
        ahead.use(i, np.random.default_rng(i + 1))
    for step in range(2 * ahead.block + 3):
        idx = np.array([0, 2]) if step % 3 == 1 else np.arange(3)     # world 1 sits some out
        if step == ahead.block + 1:                                   # world 2: a new stream
            ref[2] = np.random.default_rng(99)
            ahead.use(2, np.random.default_rng(99))
        ue, tg = ahead.take(idx)
        for k, i in enumerate(idx):
            u, t = sc.sample(ref[i])
            np.testing.assert_array_equal(ue[k], u)
            np.testing.assert_array_equal(tg[k], t)


def test_the_single_env_draws_nothing_ahead():
    env = gym.make(ENV, scenario="pos2", users=3)
    env.reset(seed=0)
    state = env.unwrapped.np_random.bit_generator.state
    env.step(env.action_space.sample())
    assert env.unwrapped.world.ahead is None
    probe = np.random.default_rng(0)
    probe.bit_generator.state = state
    probe.random(2 * 3 + 2)                                            # one drop's uniforms
    assert env.unwrapped.np_random.bit_generator.state == probe.bit_generator.state


def test_beam_buffer_keeps_the_scored_beams_not_the_callers_array():
    env = gym.make(ENV, scenario="pos2", users=3)
    env.reset(seed=0)
    system = env.unwrapped.system
    a = np.full(system.csi_shape, 0.5)                                 # float64, over budget
    env.step(a)
    want = metrics.project_power(a, system)[0].astype(np.float32)
    a[:] = 0.0                                                         # changed afterwards
    np.testing.assert_array_equal(env.unwrapped.core.beams[0], want)
    env.reset(seed=1)
    assert not env.unwrapped.core.beams.any()


def _plain_csi(system, ue_xy, target_xy):
    """The LoS CSI the straightforward way: float64 geometry and phases, ``%`` itself, float32
    trig (what the fast path must give bit for bit)."""
    pts = channels.entity_xy(ue_xy, target_xy)
    d = pts[..., None, :, :] - system.ap_positions[:, None]
    r = np.hypot(d[..., 0], d[..., 1])
    cos_phi = np.divide(d[..., 0], r, out=np.zeros_like(r), where=r > 0)
    phase = (2.0 * np.pi * system.spacing * cos_phi)[..., None, :] * np.arange(system.M)[:, None]
    v = ((phase + np.pi) % (2 * np.pi) - np.pi).astype(np.float32)
    return np.stack([np.cos(v), np.sin(v)], axis=-3)


@pytest.mark.parametrize("scenario,users,overrides", [
    ("pos2", 8, {}), ("pos1", 3, {}), ("street", 32, {}), ("block", 32, {}),
    ("pos2", 2, {"system.antennas": 1}), ("pos2", 2, {"system.antennas": 2}),
    ("pos2", 4, {"system.antennas": 64, "system.spacing": 0.7})])
def test_fast_csi_is_the_plain_formula_bit_for_bit(scenario, users, overrides):
    sc = scenarios.load(scenario, users=users, overrides=overrides)
    s = sc.system
    ue, tg = sc.sample(np.random.default_rng(3), 300)
    ue[0, 0], tg[1] = s.ap_positions[0], s.ap_positions[-1]           # at an AP: broadside
    cases = ((ue, tg), (ue[5], tg[5]), (ue[:6].reshape(2, 3, users, 2), tg[:6].reshape(2, 3, 2)))
    for u, t in cases:
        got, want = channels.csi(s, u, t), _plain_csi(s, u, t)
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))


@pytest.mark.parametrize("m", [2, 4, 16, 65])
def test_tight_phase_slack_is_still_bit_identical(m):
    bound = np.pi * (m - 1)
    rng = np.random.default_rng(m)
    cos = np.concatenate([rng.uniform(-1, 1, 40000), [-1.0, 0.0, 1.0, 0.5, -0.5]])
    x = ((np.pi * cos)[:, None] * np.arange(1, m)).reshape(-1)
    edges = np.array([k * np.pi + d for k in range(-(m - 1), m)
                      for d in (0.0, 1e-12, -1e-12, 1e-15, -1e-15, 2e-16, -2e-16)])
    for ph in (x, edges[np.abs(edges) <= bound]):
        want = ((ph + np.pi) % (2 * np.pi) - np.pi).astype(np.float32)
        got = channels.wrapped_phase(ph, bound=bound)
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
    assert channels.wrap_slack(channels.PHASE_BOUND) == 2.0**-36     # the default, as before
    assert channels.wrap_slack(bound) < 2.0**-36
