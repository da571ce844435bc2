"""Road envs pickle at any instant (right after reset included) and a copy runs on exactly like
the original without replaying the road."""

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest
import simpy

import cfisac_env  # noqa: F401
import scenarios
from cfisac_env.sim.traffic import RoadTraffic

ENV = "cfisac/CellFreeISAC-v0"


def _same_future(a, copies, steps: int) -> None:
    zeros = np.zeros(a.action_space.shape, np.float32)
    for _ in range(steps):
        ra = a.step(zeros)
        for b in copies:
            rb = b.step(zeros)
            np.testing.assert_array_equal(ra[0], rb[0])
            assert ra[1] == rb[1]
            for key in ("ue_xy", "target_xy", "ssnr"):
                np.testing.assert_array_equal(ra[4][key], rb[4][key])


@pytest.mark.parametrize("scenario", ["road", "track-dense", "track-lane-change"])
@pytest.mark.parametrize("after", [0, 1, 7])
def test_road_env_pickles_after_reset_and_any_step(scenario, after):
    env = gym.make(ENV, scenario=scenario, users=2)
    env.reset(seed=5)
    zeros = np.zeros(env.action_space.shape, np.float32)
    for _ in range(after):
        env.step(zeros)
    _same_future(env, [pickle.loads(pickle.dumps(env)), copy.deepcopy(env)], 6)


def _road(seed: int = 0, **over) -> RoadTraffic:
    sc = scenarios.load("track-dense", users=3, overrides=over or None)
    rng = np.random.default_rng(seed)
    ue, _ = sc.sample(rng)
    return RoadTraffic(sc.config, ue, rng)


def _state(road: RoadTraffic) -> tuple:
    return (road.time, road.target_xy.tolist(), road.ue_xy.tolist(),
            road.others_xy().tolist(), road.rng.bit_generator.state["state"])


def test_unpickling_runs_no_simulation(monkeypatch):
    """Restoring a road that has run 800 steps costs no simulation (no replay from t = 0)."""
    road = _road()
    for _ in range(800):
        road.advance(road.dt)
    blob = pickle.dumps(road)

    def refuse(*a, **k):
        raise AssertionError("unpickling ran the simulation")

    monkeypatch.setattr(simpy.Environment, "run", refuse)
    copy_ = pickle.loads(blob)
    monkeypatch.undo()
    assert _state(copy_) == _state(road)
    for _ in range(150):                                   # vehicles arrive and leave
        road.advance(road.dt)
        copy_.advance(road.dt)
        assert _state(copy_) == _state(road)


def test_copy_of_a_copy_and_fresh_road_match():
    road = _road(seed=2)
    twin = pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(road))))   # before any step
    for k in range(120):
        road.advance(road.dt)
        twin.advance(road.dt)
        if k % 40 == 0:
            twin = copy.deepcopy(twin)
        assert _state(twin) == _state(road)


def test_zero_second_advance_is_a_no_op():
    road = _road()
    before = _state(road)
    road.advance(0.0)
    assert _state(road) == before
