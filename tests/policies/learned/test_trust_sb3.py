"""SB3 model files are data: a crafted zip runs no code unless the user trusts it."""

import base64
import json
import pickle
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")

import cfisac_env  # noqa: E402, F401
import policies  # noqa: E402
import scenarios  # noqa: E402
from policies.learned.rl import SB3Policy  # noqa: E402

ENV = "cfisac/CellFreeISAC-v0"


class Payload:
    """Unpickling this creates the file ``marker`` (stands for any code an attacker wants)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _serialized(obj) -> dict:
    blob = base64.b64encode(pickle.dumps(obj)).decode()
    return {":type:": "<class 'object'>", ":serialized:": blob}


def _rewrite(src: Path, dst: Path, edit) -> None:
    """Copy the SB3 zip ``src`` to ``dst`` with its JSON ``data`` entry passed through ``edit``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            blob = zin.read(item)
            if item == "data":
                data = json.loads(blob)
                edit(data)
                blob = json.dumps(data).encode()
            zout.writestr(item, blob)


@pytest.fixture(scope="module")
def system():
    return scenarios.load("pos2", users=2).system


@pytest.fixture(scope="module")
def ppo_zip(tmp_path_factory):
    env = gym.make(ENV, scenario="pos2", users=2, action_mode="normalized")
    model = sb3.PPO("MlpPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu",
                    policy_kwargs={"net_arch": [32], "activation_fn": __import__("torch").nn.ReLU})
    model.learn(16)
    path = tmp_path_factory.mktemp("sb3") / "ppo.zip"
    model.save(path)
    return path, model


@pytest.mark.parametrize("key", ["observation_space", "policy_class", "lr_schedule",
                                 "clip_range", "evil"])
def test_crafted_model_file_runs_no_code(ppo_zip, system, tmp_path, key):
    """A pickled payload in any ``data`` entry: a known one is replaced by cfisac's own object,
    an unknown one is refused in one line; the payload never runs."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.zip"
    _rewrite(ppo_zip[0], evil, lambda d: d.__setitem__(key, _serialized(Payload(marker))))
    if key == "evil":
        with pytest.raises(ValueError, match="trust_model") as e:
            SB3Policy(system, str(evil))
        assert "\n" not in str(e.value)
    else:
        pol = SB3Policy(system, str(evil))                 # loads: the entry is cfisac's
        obs, _ = gym.make(ENV, scenario="pos2", users=2).reset(seed=0)
        assert pol.act(obs).shape == obs.shape
    assert not marker.exists()


def test_crafted_model_file_through_the_policy_spec(ppo_zip, system, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.zip"
    kwargs = {**_serialized(Payload(marker)), "net_arch": [32],
              "activation_fn": "<class 'posix.system'>"}
    _rewrite(ppo_zip[0], evil, lambda d: d.__setitem__("policy_kwargs", kwargs))
    with pytest.raises(ValueError, match="activation_fn.*trust_model"):
        policies.make("policies.learned.rl:SB3Policy", system, model=str(evil))
    assert not marker.exists()


def test_trust_model_hands_the_file_to_sb3(ppo_zip, system, tmp_path):
    """What trusting means: SB3 unpickles the file, payload included."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.zip"
    _rewrite(ppo_zip[0], evil, lambda d: d.__setitem__("evil", _serialized(Payload(marker))))
    SB3Policy(system, str(evil), trust_model=True)
    assert marker.exists()
    with pytest.raises(ValueError, match="trust_model must be"):
        SB3Policy(system, str(evil), trust_model="yes")


def test_untrusted_load_acts_exactly_like_the_saved_model(ppo_zip, system):
    """Spaces, schedules and policy_kwargs classes supplied by cfisac: the same network."""
    path, model = ppo_zip
    pol = SB3Policy(system, str(path))
    obs, _ = gym.make(ENV, scenario="pos2", users=2).reset(seed=3)
    np.testing.assert_array_equal(pol.act(obs), SB3Policy(system, model).act(obs))
    assert pol.model.policy.activation_fn is __import__("torch").nn.ReLU
    assert pol.model.lr_schedule(1.0) == pytest.approx(3e-4)
    assert pol.model.clip_range(1.0) == pytest.approx(0.2)


def test_sac_model_loads_untrusted(system, tmp_path):
    env = gym.make(ENV, scenario="pos2", users=2, action_mode="normalized")
    model = sb3.SAC("MlpPolicy", env, buffer_size=8, learning_starts=1, seed=0, device="cpu")
    model.save(tmp_path / "sac.zip")
    pol = SB3Policy(system, str(tmp_path / "sac.zip"), algo="SAC")
    obs, _ = env.reset(seed=1)
    np.testing.assert_array_equal(pol.act(obs), SB3Policy(system, model).act(obs))


def test_bad_model_files_are_one_line_errors(ppo_zip, system, tmp_path):
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        SB3Policy(system, str(tmp_path / "junk.zip"))
    with pytest.raises(ValueError, match="observes"):
        SB3Policy(scenarios.load("pos2", users=3).system, str(ppo_zip[0]))
    with pytest.raises(ValueError, match="policy class ActorCriticPolicy"):
        SB3Policy(system, str(ppo_zip[0]), algo="SAC")
