"""The SimPy road-traffic model: kinematics of the target profile, walkers, lane changes."""

import numpy as np
import pytest

import scenarios
from cfisac_env.sim.traffic import RoadTraffic


def make(overrides=None, seed=0):
    sc = scenarios.load("road", users=4, overrides=overrides or {})
    rng = np.random.default_rng(seed)
    ue, _ = sc.sample(rng)
    return RoadTraffic(sc.config, ue, rng)


def test_target_cruises_exactly():
    tr = make()
    x0 = tr.target.x
    tr.advance(2.0)
    assert tr.time == pytest.approx(2.0)
    assert tr.target.x - x0 == pytest.approx(2.0 * 13.9, rel=1e-9)


def test_brake_then_lane_change_profile():
    profile = [{"at": 1.0, "action": "brake", "rate": 5.0, "speed": 4.0},
               {"at": 3.0, "action": "lane_change", "lane": 0, "duration": 2.0}]
    tr = make({"target.profile": profile})
    tr.advance(1.0)
    assert tr.target.speed == pytest.approx(13.9)
    tr.advance(1.0)                       # 1 s of braking at 5 m/s^2
    assert tr.target.speed == pytest.approx(13.9 - 5.0, abs=1e-9)
    tr.advance(1.0)                       # reached 4 m/s and holds it
    assert tr.target.speed == pytest.approx(4.0)
    assert tr.target.y == pytest.approx(7.5)
    tr.advance(1.0)                       # half-way across one lane (5 m in 2 s)
    assert tr.target.y == pytest.approx(5.0, abs=0.06)
    tr.advance(2.0)
    assert tr.target.y == pytest.approx(2.5)


def test_walkers_stay_on_the_sidewalk_and_vehicles_move():
    tr = make()
    y0 = tr.ue_xy[:, 1].copy()
    others0 = tr.others_xy()
    tr.advance(30.0)
    np.testing.assert_array_equal(tr.ue_xy[:, 1], y0)
    assert np.all((tr.ue_xy[:, 0] >= 0) & (tr.ue_xy[:, 0] <= 100))
    assert len(others0) > 0 and len(tr.others_xy()) > 0
    assert not tr.target_on_road                                    # drove off after 30 s


def test_speed_beyond_the_road_limit_is_an_error():
    with pytest.raises(ValueError, match="max_speed"):
        make({"target.speed": 80.0})


def test_same_seed_same_traffic():
    a, b = make(seed=3), make(seed=3)
    a.advance(5.0)
    b.advance(5.0)
    np.testing.assert_array_equal(a.others_xy(), b.others_xy())
    np.testing.assert_array_equal(a.ue_xy, b.ue_xy)
