"""Policy registry: names, module paths, entry points, errors."""

import pickle
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

import policies
import scenarios
from policies import registry
from policies.base import UnknownOptionError

EXAMPLE = f"{Path(__file__).resolve().parents[2]}/examples/power_split_mrt.py:PowerSplitMRT"


class TargetOnly(policies.DistributedPolicy):
    """Whole budget at the target, per AP."""

    def act_ap(self, l, csi_l):
        w = np.zeros_like(csi_l)
        w[..., -1] = csi_l[..., -1] * np.sqrt(self.system.P[l] / self.system.M)
        return w


def test_builtins_are_listed():
    names = policies.available()
    for name in ("cvx", "student", "ssnr-teacher", "sinr-teacher", "fixed-beta", "ns-opt",
                 "ns-rzf", "mrt-target"):
        assert name in names


def test_unknown_policy_lists_available():
    with pytest.raises(ValueError, match="available: .*cvx"):
        policies.make("nope", scenarios.load("pos1").system)


def test_module_path_and_entry_point(monkeypatch):
    system = scenarios.load("pos1").system
    via_path = policies.make(EXAMPLE, system, split=0.0)          # all power at the target
    ep = EntryPoint(name="target-only", value=f"{__name__}:TargetOnly",
                    group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if
                        group == registry.ENTRY_POINT_GROUP else [])
    assert "target-only" in policies.available()
    via_ep = policies.make("target-only", system)
    csi = scenarios.load("pos1").drops(np.random.default_rng(0), 2)[0]
    np.testing.assert_allclose(via_path.act(csi), via_ep.act(csi), rtol=1e-6)
    assert via_ep.act(csi[0]).shape == csi[0].shape


def test_register_decorator_and_duplicate_guard():
    @policies.register("test-null")
    class Null(policies.Policy):
        def act_batch(self, csi):
            return np.zeros_like(csi)

    system = scenarios.load("pos1").system
    assert isinstance(policies.make("test-null", system), Null)
    with pytest.raises(ValueError, match="already registered"):
        policies.register("test-null", lambda s: None)


def test_bad_csi_shape_is_a_clear_error():
    system = scenarios.load("pos1").system
    pol = policies.make(EXAMPLE, system)
    with pytest.raises(ValueError, match=r"\(L, 2, M, Q\)"):
        pol.act(np.zeros((2, 2, 16, 3), np.float32))


@pytest.mark.parametrize("name", ["mrt-target", "ns-rzf", "student"])
def test_nan_csi_is_a_clear_error(name):
    system = scenarios.load("pos2").system
    csi = np.full(system.csi_shape, np.nan, np.float32)
    with pytest.raises(ValueError, match="NaN"):
        policies.make(name, system).act(csi)


@pytest.mark.parametrize("name, accepted", [
    ("mrt-users", "it takes no options: remove it"),
    ("mrt", "accepted options: rho"),
    ("ns-rzf", "accepted options: cluster, rho"),
    ("cb-opt", "accepted options: bisection, rho, solver, timeout_s, warm_start"),
    ("cvx", "accepted options: bisection, bisection_solver, rho, solver, solver_options, "
            "timeout_s, warm_start"),
    ("student", r"accepted options: (\w+, )*checkpoint, (\w+, )*scenario(, \w+)*"),
])
def test_unknown_option_is_a_value_error_naming_the_accepted_ones(name, accepted):
    system = scenarios.load("pos2", users=2).system
    want = f"^policy '{name}': unknown option 'foo'; {accepted}$"
    with pytest.raises(ValueError, match=want) as err:
        policies.make(name, system, foo=1)
    assert isinstance(err.value, TypeError)            # what Python raises for a bad keyword
    with pytest.raises(UnknownOptionError, match=f"^policy '{name}': unknown options 'a', 'b'"):
        policies.make(f"{name}@b=2", system, a=1)
    back = pickle.loads(pickle.dumps(err.value))        # crosses a process pool intact
    assert str(back) == str(err.value) and back.unknown == ["foo"]


def test_unknown_option_of_a_plugin_class():
    system = scenarios.load("pos1").system
    with pytest.raises(ValueError, match=r"^policy 'TargetOnly': unknown option 'rho'; it takes "
                                         "no options"):
        TargetOnly(system, rho=0.5)
    with pytest.raises(ValueError, match=r"unknown option 'splitt'; accepted options: split"):
        policies.make(EXAMPLE, system, splitt=0.3)
