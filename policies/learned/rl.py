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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cfisac_env.envs.core import ACTION_MODES
from cfisac_env.physics import metrics
from cfisac_env.physics.system import System
from policies.base import Policy


def load_model(model: Any, algo: str = "PPO", device: str = "cpu") -> Any:
    """``model`` itself, or the SB3 model saved at path ``model`` (``algo``: the SB3 class name,
    ``PPO``, ``SAC``, ``A2C``, ``TD3``, ...)."""
    if not isinstance(model, (str, Path)):
        return model
    import stable_baselines3

    path = Path(model)
    if not path.is_file() and not path.with_suffix(".zip").is_file():
        raise ValueError(f"SB3 model {path} does not exist")
    cls = getattr(stable_baselines3, algo, None)
    if cls is None:
        raise ValueError(f"unknown stable_baselines3 algorithm {algo!r}")
    return cls.load(str(path), device=device)


class SB3Policy(Policy):
    """A Stable-Baselines3 model as a central policy.

    Args:
        system: the system the model was trained on (observation ``(L, 2, M, Q)``).
        model: a trained SB3 model, or the path of one saved with ``model.save``.
        action_mode: the env's ``action_mode`` the model was trained with.
        algo: SB3 class name used to load a saved model (default ``PPO``).
        deterministic: use the mean action (True) or sample.

    Its ``name`` is the one it is made under (``policies.make("sb3-ppo", ...)`` -> ``sb3-ppo``).
    """

    def __init__(self, system: System, model: Any, action_mode: str = "normalized",
                 algo: str = "PPO", deterministic: bool = True, device: str = "cpu") -> None:
        super().__init__(system)
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        self.model = load_model(model, algo, device)
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
