"""The timing attributes the docs name: ``env.unwrapped.dt`` and ``decision_interval``."""

import gymnasium as gym
import numpy as np
import pytest

import cfisac_env  # noqa: F401

ENV = "cfisac/CellFreeISAC-v0"


@pytest.mark.parametrize("scenario, dt, interval", [("road", 0.01, 0.1),
                                                    ("track-highway", None, None)])
def test_road_env_exposes_its_step_and_decision_interval(scenario, dt, interval):
    env = gym.make(ENV, scenario=scenario, users=2)
    cfg = env.unwrapped.config["env"]
    dt = cfg["dt"] if dt is None else dt
    interval = cfg["decision_interval"] if interval is None else interval
    assert env.unwrapped.dt == pytest.approx(dt)
    assert env.unwrapped.decision_interval == pytest.approx(interval)
    env.reset(seed=0)
    env.step(np.zeros(env.action_space.shape, np.float32))
    road = env.unwrapped.world.roads[0]
    assert road.time == pytest.approx(env.unwrapped.decision_interval)   # one decision held
    venv = gym.make_vec(ENV, num_envs=2, vectorization_mode="vector_entry_point",
                        scenario=scenario, users=2)
    assert (venv.unwrapped.dt, venv.unwrapped.decision_interval) == (
        env.unwrapped.dt, env.unwrapped.decision_interval)


def test_overridden_timing_is_what_the_env_runs():
    env = gym.make(ENV, scenario="road", users=2, **{"env.dt": 0.02,
                                                     "env.decision_interval": 0.2})
    assert (env.unwrapped.dt, env.unwrapped.decision_interval) == pytest.approx((0.02, 0.2))
    assert env.unwrapped.world.steps_per_decision == 10


def test_static_scenarios_have_no_time_step():
    env = gym.make(ENV, scenario="pos2", users=2)
    assert env.unwrapped.dt is None and env.unwrapped.decision_interval is None
