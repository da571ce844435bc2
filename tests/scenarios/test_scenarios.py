"""Scenario loader: names, overrides, errors, samplers."""

import numpy as np
import pytest

import scenarios


def test_shipped_scenarios_load():
    names = scenarios.available()
    for required in ("pos1", "pos2", "road"):
        assert required in names
    for name in names:
        sc = scenarios.load(name)
        assert sc.system.L >= 1 and sc.description


def test_pos2_geometry_and_overrides():
    sc = scenarios.load("pos2", users=3, overrides={"antennas": 8})
    assert (sc.system.N, sc.system.M, sc.system.Q) == (3, 8, 4)
    ue, tg = sc.sample(np.random.default_rng(0), 1000)
    assert ue.shape == (1000, 3, 2) and tg.shape == (1000, 2)
    assert np.all(ue[..., 1] == 23.0) and ue[..., 0].min() >= 0 and ue[..., 0].max() <= 100
    assert tg[:, 1].min() >= 0 and tg[:, 1].max() <= 20
    pos1_ue, pos1_tg = scenarios.load("pos1").sample(np.random.default_rng(0), 10)
    assert np.all(pos1_ue[..., 1] == 50.0) and np.all(pos1_tg[:, 1] == 50.0)


def test_dotted_override_and_cli_assignment():
    key, value = scenarios.parse_assignment("traffic.speed=30")
    assert (key, value) == ("traffic.speed", 30)
    sc = scenarios.load("road", overrides={key: value})
    assert sc.config["traffic"]["speed"] == 30


@pytest.mark.parametrize("bad", [
    lambda: scenarios.load("nope"),
    lambda: scenarios.load("pos2", users=0),
    lambda: scenarios.load("pos2", users=-3),
    lambda: scenarios.load("pos2", overrides={"no_such_field": 1}),
])
def test_errors_name_what_exists(bad):
    with pytest.raises(ValueError) as e:
        bad()
    msg = str(e.value)
    assert "available" in msg or "fields" in msg or "users" in msg


def test_unknown_scenario_lists_the_available_ones():
    with pytest.raises(ValueError, match="pos1, pos2"):
        scenarios.load("pos9")


def test_sampler_is_seeded():
    sc = scenarios.load("pos2", users=8)
    a = sc.drops(np.random.default_rng(7), 5)[0]
    b = sc.drops(np.random.default_rng(7), 5)[0]
    assert a.shape == (5, 2, 2, 16, 9) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
