"""Power-split actions and their features for RL agents."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import cfisac_env  # noqa: F401  (registers the env)
from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_complex
from policies.learned.power_actions import (
    PowerAllocation,
    SplitFeatures,
    beams_from_shares,
    split_features,
    unit_basis,
)


@pytest.fixture(scope="module")
def drop() -> tuple[np.ndarray, object]:
    env = gym.make("cfisac/CellFreeISAC-v0", scenario="pos2", users=8)
    obs, _ = env.reset(seed=3)
    return obs[None], env.unwrapped.system


@pytest.mark.parametrize("sensing", ["ns", "cb"])
def test_every_action_spends_each_budget_and_zero_is_uniform(drop, sensing) -> None:
    csi, system = drop
    rng = np.random.default_rng(0)
    for x in (np.zeros((1, system.L, system.Q)), rng.uniform(-1, 1, (1, system.L, system.Q))):
        w = to_complex(beams_from_shares(csi, x, system, sensing).astype(float))
        power = (np.abs(w) ** 2).sum(axis=-2)                                   # (1, L, Q)
        np.testing.assert_allclose(power.sum(-1), system.P[None], rtol=1e-5)
    np.testing.assert_allclose(power.sum(-1)[0], system.P, rtol=1e-5)
    w0 = to_complex(beams_from_shares(csi, np.zeros((1, system.L, system.Q)), system,
                                      sensing).astype(float))
    np.testing.assert_allclose((np.abs(w0) ** 2).sum(-2), system.P[0] / system.Q, rtol=1e-5)


def test_cb_direction_is_the_steering_vector(drop) -> None:
    csi, system = drop
    u = unit_basis(csi, system, "cb")[..., -1]
    a = to_complex(csi.astype(float))[..., -1]
    np.testing.assert_allclose(u, a / np.sqrt(system.M), atol=1e-6)
    with pytest.raises(ValueError, match="sensing must be one of"):
        unit_basis(csi, system, "xx")


def test_features_are_the_gains_and_the_uniform_split_metrics(drop) -> None:
    csi, system = drop
    f = split_features(csi, system, "cb")
    assert f.shape == (1, 2, system.L, system.Q) and f.dtype == np.float32
    np.testing.assert_allclose(f[0, 0, :, -1], 0.0, atol=1e-5)    # |a^H a / sqrt(M)|^2 / M = 1
    uniform = beams_from_shares(csi, np.zeros((1, system.L, system.Q)), system, "cb")
    sinr = metrics.sinr(csi, uniform, system)[0]
    np.testing.assert_allclose(f[0, 1, 0, :-1], np.log10(np.maximum(sinr, 1e-3)), rtol=1e-5)
    np.testing.assert_allclose(f[0, 1, 1, -1], np.log10(metrics.ssnr(csi, uniform, system)[0]),
                               rtol=1e-5)


def test_wrappers_score_the_split_on_the_observed_drop() -> None:
    env = SplitFeatures(PowerAllocation(gym.make("cfisac/CellFreeISAC-v0", scenario="pos2",
                                                 users=8), sensing="cb"))
    obs, info = env.reset(seed=1)
    assert obs.shape == (2, 2, 9) and env.observation_space.contains(obs)
    x = np.zeros(env.action_space.shape, np.float32)
    _, _, _, _, step = env.step(x)
    raw = gym.make("cfisac/CellFreeISAC-v0", scenario="pos2", users=8)
    csi, _ = raw.reset(seed=1)
    g1, g2 = metrics.g1_g2(csi[None], beams_from_shares(csi[None], x[None], env.system, "cb"),
                           env.system)
    assert step["ssnr"] == pytest.approx(float(g1[0]), rel=1e-5)
    assert step["min_sinr"] == pytest.approx(float(g2[0]), rel=1e-5)
