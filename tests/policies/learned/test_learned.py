"""The registered learned policies and the shipped checkpoints."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import policies
import scenarios
from cfisac_env.physics import metrics
from policies.learned import checkpoints as store
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


def test_missing_checkpoint_names_the_train_command(tmp_path, monkeypatch):
    monkeypatch.setenv("CFISAC_CHECKPOINTS", str(tmp_path / "root"))
    system = scenarios.load("pos2", users=3).system
    with pytest.raises(CheckpointMissing) as e:
        policies.make("paper-student", system, scenario="pos2")
    assert "python runners/train.py --scenario pos2 --users 3 --arch gram-mlp" in str(e.value)
    assert isinstance(e.value, ValueError)
    copy = tmp_path / "pos1-copy.toml"                 # a scenario file of its own family
    copy.write_text((Path(scenarios.__file__).parent / "pos1.toml").read_text())
    with pytest.raises(CheckpointMissing) as e:
        policies.make("student", system, scenario=str(copy))
    assert f"train.py --scenario {copy} --arch span-attn" in str(e.value)


# ---- what a checkpoint error says: the file, what is wrong with it, how to get one -----------

SPAN_HINT = "python runners/train.py --scenario pos2 --arch span-attn --install"
PAPER_HINT = "python runners/train.py --scenario pos2 --users 3 --arch gram-mlp"


@pytest.mark.parametrize("name, hint", [("student", SPAN_HINT), ("paper-student", PAPER_HINT)],
                         ids=["span", "paper"])
def test_explicit_checkpoint_that_does_not_exist_says_so(name, hint, tmp_path):
    """An explicit path that is not there: the message says the file does not exist and how to
    get one for the policy's scenario; never a family named after the file."""
    path = tmp_path / "nowhere.pt"
    system = scenarios.load("pos2", users=3).system
    with pytest.raises(CheckpointMissing) as e:
        policies.make(name, system, scenario="pos2", checkpoint=path)
    msg = str(e.value)
    assert "\n" not in msg and f"checkpoint {path} does not exist" in msg
    assert hint in msg and "--scenario nowhere" not in msg
    assert str(store.SHIPPED_DIR) in msg and "leave out checkpoint=" in msg


@pytest.mark.parametrize("name, hint", [("student", SPAN_HINT), ("paper-student", PAPER_HINT)],
                         ids=["span", "paper"])
@pytest.mark.parametrize("content", [b"", b"garbage, not a checkpoint", b"PK\x03\x04trunc"])
def test_explicit_garbage_checkpoint_is_not_a_cfisac_checkpoint(name, hint, content, tmp_path):
    path = tmp_path / "hostname"
    path.write_bytes(content)
    system = scenarios.load("pos2", users=3).system
    with pytest.raises(CheckpointMissing) as e:
        policies.make(name, system, scenario="pos2", checkpoint=path)
    msg = str(e.value)
    assert "\n" not in msg and f"checkpoint {path} is not a cfisac checkpoint" in msg
    assert hint in msg and "--scenario hostname" not in msg


def test_checkpoint_of_the_other_scheme_names_its_policies():
    system = scenarios.load("pos2", users=8).system
    with pytest.raises(CheckpointMissing, match="seed-scheme 'student' checkpoint .*paper-student"):
        policies.make("student", system, checkpoint=store.find("pos2", 8, "student"))
    with pytest.raises(CheckpointMissing, match="span-attn checkpoint .*student, sinr-teacher"):
        policies.make("paper-student", system, checkpoint=store.SHIPPED_DIR / "pos2-span-attn.pt")


@pytest.mark.parametrize("name", ["student", "paper-student"])
def test_unknown_scenario_is_the_loaders_error_not_a_missing_checkpoint(name):
    system = scenarios.load("pos2", users=3).system
    with pytest.raises(ValueError) as loader:
        scenarios.load("nope")
    with pytest.raises(ValueError) as e:
        policies.make(name, system, scenario="nope")
    assert not isinstance(e.value, CheckpointMissing)
    assert str(e.value) == str(loader.value)
    assert "unknown scenario 'nope'" in str(e.value) and "pos2" in str(e.value)
    assert "checkpoint" not in str(e.value)


def test_known_family_without_a_checkpoint_keeps_its_training_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("CFISAC_CHECKPOINTS", str(tmp_path))
    sc = scenarios.load("block")
    with pytest.raises(CheckpointMissing) as e:
        policies.make("student", sc.system, scenario="block")
    assert "block-span-attn.pt" in str(e.value)
    assert "train.py --scenario block --arch span-attn --install" in str(e.value)


def test_explicit_span_checkpoint_for_another_deployment_is_one_line():
    path = store.SHIPPED_DIR / "street-span-attn.pt"
    system = scenarios.load("pos2", users=3).system
    with pytest.raises(CheckpointMissing) as e:
        policies.make("student", system, scenario="pos2", checkpoint=path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "L=8" in msg and "L=2" in msg
    assert SPAN_HINT in msg


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
