"""Reinforcement-learning agents as cfisac policies.

:class:`SB3Policy` wraps a trained Stable-Baselines3 model (PPO, SAC, ...) that was trained on
``cfisac/CellFreeISAC-v0``: it feeds the model the CSI ``(B, L, 2, M, Q)`` float32 exactly as the
env observes it and turns the model's actions into beams the way the env does for the model's
``action_mode`` (``"normalized"``: each AP's block onto its full budget, seed eqs. 17-18;
``"beams"``: the actions are beams, projected onto the budget). Every runner then scores it beside
the built-ins::

    import functools, policies
    from policies.learned.rl import SB3Policy
    policies.register("ppo", functools.partial(SB3Policy, model=model))
    # runners/compare.py --policy ppo ... (in the same process), or model="path/to/model.zip"

The model sees every AP's CSI: it is a central policy (timed as a whole call). Needs
``stable-baselines3`` (``pip install "cfisac[ecosystem]"``).

**Model files are data, not code.** SB3's own ``load`` unpickles (cloudpickle) the policy class,
the spaces and the schedules stored in the zip's ``data`` entry, so a crafted file runs code on
load. :func:`load_model` never does: it reads ``data`` as JSON and supplies every pickled entry
itself (the observation and action spaces of the cfisac system, the algorithm's own policy class,
SB3's own buffer classes, schedules rebuilt from their readable form, ``policy_kwargs`` classes
only from ``torch.nn``/``torch.optim``/SB3's layers); any other pickled entry is refused with a
one-line ``ValueError``. Network weights are read by ``torch.load(weights_only=True)``. Only
``trust_model=True`` (``--policy policies.learned.rl:SB3Policy@model=m.zip,trust_model=true``)
hands the file to SB3's unpickling loader: pass it for files you made yourself.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cfisac_env.envs.core import ACTION_MODES, spaces_for
from cfisac_env.physics import metrics
from cfisac_env.physics.system import System
from policies.base import Policy

SERIALIZED = ":serialized:"  # SB3's marker of a cloudpickled entry in a model zip's ``data``
# modules a ``policy_kwargs`` class of an untrusted file may come from (installed library code)
SAFE_CLASS_MODULES = ("torch.nn.modules.", "torch.optim.", "stable_baselines3.common.torch_layers")
# pickled training-loop state, not needed to act (SB3 rebuilds it when training resumes)
TRAINING_STATE = ("_last_obs", "_last_episode_starts", "_last_original_obs", "ep_info_buffer",
                  "ep_success_buffer", "action_noise")
_CLASS_REPR = re.compile(r"^<class '([\w.]+)\.(\w+)'>$")
_SCHEDULE_REPR = re.compile(r"^(ConstantSchedule|LinearSchedule)\(([^()]*)\)$")


def _read_data(path: Path, blob: bytes) -> dict[str, Any]:
    """The JSON ``data`` entry of the SB3 model zip ``blob`` (read from ``path``), parsed
    without unpickling anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            raw = archive.read("data")
        data = json.loads(raw.decode())
    except KeyError:
        raise ValueError(f"SB3 model {path} has no 'data' entry: not a Stable-Baselines3 "
                         "model file") from None
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"SB3 model {path} is not a readable Stable-Baselines3 model file "
                         f"({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"SB3 model {path}: its 'data' entry is not a JSON object")
    return data


def _schedule(entry: dict[str, Any]) -> Any:
    """A pickled SB3 schedule rebuilt from its readable form (constant or linear); a schedule
    of another kind becomes the constant 0 (only training reads it, prediction never does)."""
    from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

    kinds = {"ConstantSchedule": ConstantSchedule, "LinearSchedule": LinearSchedule}
    inner: Any = ConstantSchedule(0.0)
    m = _SCHEDULE_REPR.match(str(entry.get("value_schedule", "")).strip())
    if m is not None:
        try:
            args = dict(kv.split("=") for kv in m.group(2).split(","))
            inner = kinds[m.group(1)](**{k.strip(): float(v) for k, v in args.items()})
        except (TypeError, ValueError):
            pass                                           # unreadable: the constant 0
    return FloatSchedule(inner)


def _safe_class(text: Any, what: str, path: Path) -> Any:
    """The class named ``"<class 'torch.nn.modules.activation.ReLU'>"`` if its module is one of
    :data:`SAFE_CLASS_MODULES`, else a ``ValueError``."""
    m = _CLASS_REPR.match(str(text))
    if m is None or not m.group(1).startswith(SAFE_CLASS_MODULES):
        raise ValueError(f"SB3 model {path}: {what} = {text!r} is pickled code cfisac does not "
                         "load from an untrusted file; pass trust_model=True if you made it")
    cls = getattr(importlib.import_module(m.group(1)), m.group(2), None)
    if not isinstance(cls, type):
        raise ValueError(f"SB3 model {path}: {what} names no class ({text!r})")
    return cls


def _policy_kwargs(entry: dict[str, Any], path: Path) -> dict[str, Any]:
    """``policy_kwargs`` pickled because they hold classes, rebuilt from their readable form."""
    out: dict[str, Any] = {}
    for k, v in entry.items():
        if k.startswith(":"):
            continue
        out[k] = _safe_class(v, f"policy_kwargs[{k!r}]", path) \
            if isinstance(v, str) and v.startswith("<class ") else v
    return out


def _supplied(data: dict[str, Any], cls: Any, path: Path, system: System, action_mode: str,
              policy: str) -> dict[str, Any]:
    """cfisac's replacement for every pickled entry of ``data`` (SB3's ``custom_objects``), so
    that SB3 unpickles nothing; a pickled entry cfisac cannot supply is a ``ValueError``."""
    from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit

    obs_entry = data.get("observation_space")
    obs_entry = obs_entry if isinstance(obs_entry, dict) else {}
    shape = obs_entry.get("_shape")             # unstated: the weights' shapes are checked on load
    if shape is not None and tuple(shape) != system.csi_shape:
        raise ValueError(f"SB3 model {path} observes {tuple(shape)}, this system's CSI is "
                         f"(L, 2, M, Q) = {system.csi_shape}; train it on this system")
    bounded = "inf" not in str(obs_entry.get("high", ""))
    obs_space, act_space = spaces_for(system, bounded, action_mode)
    aliases = getattr(cls, "policy_aliases", {})
    if policy not in aliases:
        raise ValueError(f"policy must be one of {sorted(aliases)} for {cls.__name__}, "
                         f"got {policy!r}")
    policy_class = aliases[policy]
    saved = re.search(r"<function (\w+)\.__init__", str(data.get("policy_class", {})))
    if saved is not None and saved.group(1) != policy_class.__name__:
        raise ValueError(f"SB3 model {path} was trained with policy class {saved.group(1)}, "
                         f"{cls.__name__} {policy!r} is {policy_class.__name__}: pass the "
                         "matching policy=..., or trust_model=True for a custom class")
    out: dict[str, Any] = {}
    for key, entry in data.items():
        if not (isinstance(entry, dict) and SERIALIZED in entry):
            continue
        if key == "observation_space":
            out[key] = obs_space
        elif key == "action_space":
            out[key] = act_space
        elif key == "policy_class":
            out[key] = policy_class
        elif key in ("rollout_buffer_class", "replay_buffer_class") or key in TRAINING_STATE:
            out[key] = None                   # SB3's default buffer; training state restarts
        elif key == "train_freq":
            out[key] = TrainFreq(1, TrainFrequencyUnit.STEP)
        elif key == "policy_kwargs":
            out[key] = _policy_kwargs(entry, path)
        elif "Schedule" in str(entry.get(":type:", "")) or key.endswith(("schedule", "clip_range",
                                                                         "clip_range_vf")):
            out[key] = _schedule(entry)
        else:
            raise ValueError(f"SB3 model {path} stores a pickled {key!r} "
                             f"({entry.get(':type:', '?')}); cfisac does not unpickle untrusted "
                             "files: pass trust_model=True if you made it")
    return out


def load_model(model: Any, algo: str = "PPO", device: str = "cpu", *,
               system: System | None = None, action_mode: str = "normalized",
               policy: str = "MlpPolicy", trust_model: bool = False) -> Any:
    """``model`` itself, or the SB3 model saved at path ``model``.

    Args:
        model: a loaded SB3 model (returned as is) or the path of a ``model.save`` zip.
        algo: the SB3 class name, ``PPO``, ``SAC``, ``A2C``, ``TD3``, ...
        system: the cfisac system the model acts on; its observation and action spaces
            (``(L, 2, M, Q)`` float32, :func:`cfisac_env.envs.core.spaces_for`) replace the
            stored ones. Required for a path unless ``trust_model``.
        action_mode: the env's ``action_mode`` the model was trained with (its action bounds).
        policy: the SB3 policy alias it was trained with (``MlpPolicy``).
        trust_model: let SB3 unpickle the file (runs any code stored in it).
    """
    if not isinstance(model, (str, Path)):
        return model
    import stable_baselines3

    path = Path(model)
    if not path.is_file() and path.with_suffix(".zip").is_file():
        path = path.with_suffix(".zip")
    if not path.is_file():
        raise ValueError(f"SB3 model {path} does not exist")
    cls = getattr(stable_baselines3, algo, None)
    if not isinstance(cls, type):
        raise ValueError(f"unknown stable_baselines3 algorithm {algo!r}")
    if trust_model:
        return cls.load(str(path), device=device)
    if system is None:
        raise ValueError("load_model needs the cfisac system to load an untrusted model file")
    try:
        blob = path.read_bytes()                           # read once: what is checked is loaded
    except OSError as e:
        raise ValueError(f"SB3 model {path} is unreadable: {e.strerror}") from None
    custom = _supplied(_read_data(path, blob), cls, path, system, action_mode, policy)
    try:
        return cls.load(io.BytesIO(blob), device=device, custom_objects=custom)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise ValueError(f"SB3 model {path} cannot be loaded as {algo} {policy}: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


class SB3Policy(Policy):
    """A Stable-Baselines3 model as a central policy.

    Args:
        system: the system the model was trained on (observation ``(L, 2, M, Q)``).
        model: a trained SB3 model, or the path of one saved with ``model.save``.
        action_mode: the env's ``action_mode`` the model was trained with.
        algo: SB3 class name used to load a saved model (default ``PPO``).
        deterministic: use the mean action (True) or sample.
        policy: the SB3 policy alias a saved model was trained with (default ``MlpPolicy``).
        trust_model: let SB3 unpickle a saved model (runs code stored in the file; only for
            files you made). Without it the file is read as data (:func:`load_model`).

    Its ``name`` is the one it is made under (``policies.make("sb3-ppo", ...)`` -> ``sb3-ppo``).
    """

    def __init__(self, system: System, model: Any, action_mode: str = "normalized",
                 algo: str = "PPO", deterministic: bool = True, device: str = "cpu",
                 policy: str = "MlpPolicy", trust_model: bool = False) -> None:
        super().__init__(system)
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        if not isinstance(trust_model, bool):
            raise ValueError(f"trust_model must be true or false, got {trust_model!r}")
        self.model = load_model(model, algo, device, system=system, action_mode=action_mode,
                                policy=policy, trust_model=trust_model)
        shape = getattr(self.model.observation_space, "shape", None)
        if tuple(shape or ()) != system.csi_shape:
            raise ValueError(f"the model observes {shape}, this system's CSI is "
                             f"(L, 2, M, Q) = {system.csi_shape}; train it on this system")
        self.action_mode, self.deterministic = action_mode, deterministic

    def act_batch(self, csi: np.ndarray) -> np.ndarray:
        """``csi (B, L, 2, M, Q)`` float32 -> beams ``(B, L, 2, M, Q)`` float32 in budget."""
        actions, _ = self.model.predict(csi, deterministic=self.deterministic)
        a = np.asarray(actions, dtype=np.float64).reshape(csi.shape)
        if self.action_mode == "normalized":
            beams = metrics.normalize_power(np.clip(a, -1.0, 1.0), self.system)
        else:
            beams, _ = metrics.project_power(a, self.system)
        return beams.astype(np.float32)
