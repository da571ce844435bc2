"""The learned distributed policies: one trained network per AP, each fed only its own CSI.

``policies.make(name, system, scenario="pos2", checkpoint=None, arch=None, device="cpu")`` with
name ``ssnr-teacher``, ``sinr-teacher``, ``student``, ``fixed-beta`` or ``fixed-lambda``. Without
``checkpoint`` the shipped one for ``(scenario, N, arch, role)`` is used (see
:mod:`policies.learned.checkpoints`: shipped folder, the scenario's ``base`` chain, the runners'
cache); when there is none, or it was made for another system, :class:`CheckpointMissing` says
the exact command that trains one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cfisac_env.physics.system import System
from policies.base import DistributedPolicy
from policies.learned import checkpoints as store

# A missing, unreadable or foreign checkpoint (the store's error, under its historical name).
CheckpointMissing = store.CheckpointError


class LearnedPolicy(DistributedPolicy):
    """A trained :class:`~policies.learned.nets.DistributedNets` unit as a distributed policy.

    Args:
        system: the system to act in; must equal the checkpoint's.
        scenario: scenario the shipped checkpoint was trained on (``pos1``, ``pos2``, ...); a
            scenario without checkpoints of its own (``road``, ``track-highway``) uses those of
            its ``base`` chain (``pos2``).
        checkpoint: path of a checkpoint to use instead of the shipped one.
        arch: architecture of the shipped checkpoint (``gram-mlp``, ``unet``, ``cnn``, ...);
            None = the first of :data:`policies.learned.checkpoints.DEFAULT_ARCHS` that has one.
        device: torch device of the networks.
    """

    role = "learned"

    def __init__(self, system: System, scenario: str = "pos2", checkpoint: str | Path | None = None,
                 arch: str | None = None, device: str = "cpu") -> None:
        super().__init__(system)
        path = store.require(scenario, system.N, self.role, arch) if checkpoint is None \
            else checkpoint
        self.nets, self.meta = store.load(path, system, device)
        self.device = torch.device(device)
        self.nets.eval()

    @torch.no_grad()
    def act_ap(self, l: int, csi_l: np.ndarray) -> np.ndarray:
        """AP ``l``'s network alone: ``(B, 2, M, Q)`` float32 -> beams ``(B, 2, M, Q)``."""
        x = torch.as_tensor(np.asarray(csi_l, dtype=np.float32), device=self.device)
        return self.nets.aps[l](x).cpu().numpy()


class SSNRTeacher(LearnedPolicy):
    """Teacher trained with eq. 10 at beta = 0 (sensing only)."""

    role = "ssnr-teacher"


class SINRTeacher(LearnedPolicy):
    """Teacher trained with eq. 10 at beta = 1 (min-SINR only)."""

    role = "sinr-teacher"


class Student(LearnedPolicy):
    """Student trained with eq. 11, lambda adapted by eq. 12 (the seed's proposed scheme)."""

    role = "student"


class FixedBeta(LearnedPolicy):
    """Sensitivity baseline: eq. 10 with a fixed beta (seed Fig. 11)."""

    role = "fixed-beta"


class FixedLambda(LearnedPolicy):
    """Sensitivity baseline: eq. 11 with a fixed lambda (seed Fig. 12)."""

    role = "fixed-lambda"
