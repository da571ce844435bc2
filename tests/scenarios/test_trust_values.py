"""Scenario values, explicit positions and stress settings: what cannot give finite numbers is
refused in one line before any work; what is accepted gives finite observations."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import event
from hypothesis import strategies as st

import cfisac_env
import policies
import scenarios
from policies.evaluation.stress import StressSettings
from runners import compare, stress
from tests.policies.evaluation.reliability_tools import one_line_error
from tests.policies.evaluation.test_fuzz import PROFILE, fuzz

ENV = cfisac_env.ENV_ID


@pytest.mark.parametrize("scenario, field, value", [
    ("pos2", "placement.ue_x", [-1e308, 1e308]),
    ("pos2", "placement.target_x", [-1e308, 1e308]),
    ("pos2", "system.ap_xy", [[1e308, 0.0], [75.0, 0.0]]),
    ("pos2", "system.power", 1e308),
    ("pos2", "system.power", 1e-308),
    ("pos2", "system.power", [1.0, 1e308]),
    ("pos2", "system.ue_noise", 1e308),
    ("pos2", "system.radar_noise", 1e-308),
    ("pos2", "system.sensing_gain", 1e308),
    ("pos2", "system.spacing", 1e308),
    ("pos2", "csi.nmse", 1e308),
    ("road", "traffic.arrival_rate", 1e-308),
    ("road", "env.dt", 1e308),
    ("road", "env.decision_interval", 0.015),          # not a whole number of 10 ms steps
    ("road", "road.x", [-1e308, 1e308]),
])
def test_values_that_cannot_give_finite_numbers_are_refused_at_load(scenario, field, value):
    with pytest.raises(ValueError) as e:
        scenarios.load(scenario, users=2, overrides={field: value})
    assert field.rsplit(".", 1)[-1] in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("scenario", ["pos2", "road"])
@pytest.mark.parametrize("overrides", [
    {"system.power": 1e6, "system.ue_noise": 1e-15, "system.radar_noise": 1e-15,
     "system.sensing_gain": 1e6},
    {"system.power": 1e-6, "system.ue_noise": 1e15, "system.radar_noise": 1e15},
    {"placement.ue_x": [-1e6, 1e6], "placement.target_y": [-1e6, 1e6], "system.power": 1e6,
     "system.ue_noise": 1e-15},
    {"system.spacing": 100.0, "system.antennas": 64},
    {"csi.nmse": 1e6, "csi.target_angle_error_deg": 180.0},
])
def test_the_extremes_accepted_give_finite_numbers(scenario, overrides):
    """The corners of the accepted ranges: every policy's beams score finite numbers."""
    env = gym.make(ENV, scenario=scenario, users=2, **overrides)
    obs, _ = env.reset(seed=0)
    system = env.unwrapped.system
    for name in ("ns-rzf", "mrt-target", "mrt-users"):
        assert np.all(np.isfinite(obs))
        obs, reward, _, _, info = env.step(policies.make(name, system).act(obs))
        assert np.isfinite(reward) and np.isfinite(info["ssnr"]) and np.all(
            np.isfinite(info["sinr"]))


@pytest.mark.parametrize("key", ["ue_xy", "target_xy"])
def test_complex_or_non_numeric_positions_are_an_error(key):
    env = gym.make(ENV, scenario="pos2", users=2)
    good = {"ue_xy": np.array([[10.0, 23.0], [60.0, 23.0]]), "target_xy": np.array([40.0, 5.0])}
    for bad in (good[key] + 1j, good[key].astype(str), good[key] * 1e7):
        with pytest.raises(ValueError, match=key if bad.dtype.kind in "cU" else "within"):
            env.reset(seed=0, options={**good, key: bad})
    _, info = env.reset(seed=0, options=good)                  # the real part alone is fine
    np.testing.assert_array_equal(info[key], good[key])


def test_stress_csi_delay_beyond_the_run_is_exit_2_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    rc = stress.main(["--csi-delay", "1e6", "--policy", "mrt-target", "--quiet",
                      "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and one_line_error(err) and "CSI delay" in err, err
    assert not out.exists()
    with pytest.raises(ValueError, match="CSI delay"):        # the scenario file's own field
        scenarios.load("track-highway", overrides={"stress.csi_delay": 1e6})


def test_stress_csi_delay_beyond_a_sweep_run_is_refused():
    sc = scenarios.load("track-highway")
    s = StressSettings.of(sc)
    s.speeds, s.covered, s.sweep_duration = [50.0], (0.0, 100.0), 10.0     # a 2 s sweep run
    s.csi_delay = 1.5
    s.check()
    s.csi_delay = 2.5
    with pytest.raises(ValueError, match="50 m/s sweep"):
        s.check()


def test_compare_refuses_non_finite_placements_before_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    rc = compare.main(["--scenario", "pos2", "--users", "2", "--drops", "2", "--policy",
                       "mrt-target", "--set", "placement.ue_x=[-1e308,1e308]", "--out",
                       str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and one_line_error(err) and "placement.ue_x" in err, err
    assert not out.exists()


NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([1e308, -1e308, 1e-308, 1e-30, 1e30, 0.0]))


def _numeric_fields(name: str) -> list[str]:
    cfg = scenarios.load(name).config

    def walk(node, prefix=""):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from walk(v, f"{prefix}{k}.")
            elif isinstance(v, (int, float, list)) and not isinstance(v, bool):
                yield f"{prefix}{k}"
    return sorted(walk(cfg))


def _like(value, numbers: st.SearchStrategy) -> st.SearchStrategy:
    """``numbers`` in the shape of ``value`` (a number, a pair, a list of pairs)."""
    if isinstance(value, list):
        return st.tuples(*[_like(v, numbers) for v in value]).map(list) if value else st.just([])
    return numbers


@PROFILE
def test_fuzz_extreme_finite_values(profile):
    """Any finite value (up to +-1e308) in any numeric field: refused, or finite numbers."""
    def cases(name):
        cfg = scenarios.load(name).config
        fields = _numeric_fields(name)

        def value(field):
            node = cfg
            for k in field.split("."):
                node = node[k]
            return _like(node, NUMBERS)
        pair = st.sampled_from(fields).flatmap(lambda f: st.tuples(st.just(f), value(f)))
        return st.lists(pair, min_size=1, max_size=2).map(dict)

    def prop(case):
        name, overrides = case
        try:
            env = gym.make(ENV, scenario=name, users=2, **overrides)
        except ValueError:
            event("rejected")
            return
        event("accepted")
        obs, _ = env.reset(seed=0)
        system = env.unwrapped.system
        for _ in range(2):
            assert np.all(np.isfinite(obs)), f"NaN/inf observation with {overrides}"
            obs, reward, _, _, info = env.step(policies.make("ns-rzf", system).act(obs))
            assert np.isfinite(reward) and np.all(np.isfinite(info["sinr"])), overrides

    fuzz(profile, (40, 400), prop,
         st.sampled_from(["pos2", "road"]).flatmap(lambda n: st.tuples(st.just(n), cases(n))))
