"""The registered learned policies and the shipped checkpoints."""

import dataclasses

import numpy as np
import pytest

import policies
import scenarios
from cfisac_env.physics import metrics
from policies.learned.policies import CheckpointMissing

ROLES = ("student", "sinr-teacher", "ssnr-teacher", "paper-student", "paper-sinr-teacher",
         "fixed-beta", "fixed-lambda")
SHIPPED = [("pos1", 5), ("pos2", 8)]          # the seed scheme's shipped (family, N) pairs


@pytest.mark.parametrize("scenario,users", SHIPPED)
@pytest.mark.parametrize("role", ROLES)
def test_shipped_checkpoints_load_and_act(role, scenario, users):
    sc = scenarios.load(scenario, users=users)
    pol = policies.make(role, sc.system, scenario=scenario)
    assert pol.distributed and pol.timing == "slowest AP"
    csi = sc.drops(np.random.default_rng(0), 5)[0]
    beams = pol.act(csi)
    assert beams.shape == csi.shape and beams.dtype == np.float32
    np.testing.assert_allclose(metrics.ap_power(beams), 1.0, rtol=1e-4)
    np.testing.assert_allclose(pol.act(csi[0]), beams[0], rtol=1e-5, atol=1e-6)


def test_ssnr_teacher_reaches_bound():
    sc = scenarios.load("pos2", users=8)
    pol = policies.make("ssnr-teacher", sc.system, scenario="pos2")
    csi = sc.drops(np.random.default_rng(3), 50)[0]
    assert metrics.ssnr(csi, pol.act(csi), sc.system).mean() >= 0.99 * sc.system.ssnr_bound


def test_policy_ap_sees_only_own_csi():
    sc = scenarios.load("pos2", users=8)
    pol = policies.make("student", sc.system, scenario="pos2")
    csi = sc.drops(np.random.default_rng(1), 4)[0]
    other = csi.copy()
    other[:, 0] = sc.drops(np.random.default_rng(2), 4)[0][:, 0]
    a, b = pol.act(csi), pol.act(other)
    np.testing.assert_array_equal(a[:, 1], b[:, 1])
    assert not np.allclose(a[:, 0], b[:, 0])
    d = pol.decide(csi)
    assert d.beams.shape == csi.shape and d.seconds > 0


def test_missing_checkpoint_names_the_train_command():
    system = scenarios.load("pos2", users=3).system
    with pytest.raises(CheckpointMissing) as e:
        policies.make("paper-student", system, scenario="pos2")
    assert "python runners/train.py --scenario pos2 --users 3 --arch gram-mlp" in str(e.value)
    assert isinstance(e.value, ValueError)
    with pytest.raises(CheckpointMissing) as e:
        policies.make("student", system, scenario="pos1-copy.toml")
    assert "train.py --scenario pos1-copy.toml --arch span-attn" in str(e.value)


def test_other_system_is_checkpoint_missing():
    system = dataclasses.replace(scenarios.load("pos2", users=8).system, antennas=8)
    for name in ("student", "paper-student"):
        with pytest.raises(CheckpointMissing, match="antennas|M=8"):
            policies.make(name, system, scenario="pos2")


def test_explicit_checkpoint_for_another_system_is_clear_error():
    from policies.learned import checkpoints as store

    system = scenarios.load("pos2", users=5).system
    with pytest.raises(ValueError, match="users"):
        policies.make("paper-student", system, checkpoint=store.find("pos2", 8, "student"))


def test_road_scenarios_use_the_road_network():
    """``road`` and its ``track-*`` variants act with the network trained on road drops."""
    from policies.learned import checkpoints as store

    road = scenarios.load("track-highway", users=8)
    pol = policies.make("student", road.system, scenario="track-highway")
    assert pol.checkpoint == store.SHIPPED_DIR / "road-span-attn.pt"
    assert pol.meta["scenario"] == "road"


def test_default_arch_is_the_first_shipped():
    from policies.learned import checkpoints as store

    sc = scenarios.load("pos1", users=5)
    path = store.find("pos1", 5, "student")
    assert path is not None and path.parent == store.SHIPPED_DIR
    arch = policies.make("paper-student", sc.system, scenario="pos1").meta["arch"]
    assert arch == next(a for a in store.DEFAULT_ARCHS if store.find("pos1", 5, "student", a))
    assert store.find("pos2", 3, "student") is None           # nothing shipped for N = 3
