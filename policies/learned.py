"""The learned distributed policies: one trained network per AP, each fed only its own CSI.

``policies.make(name, system, scenario="pos2", checkpoint=None, arch=None, device="cpu")`` with
name ``ssnr-teacher``, ``sinr-teacher``, ``student``, ``fixed-beta`` or ``fixed-lambda``. Without
``checkpoint`` the shipped one for ``(scenario, N, arch, role)`` is used
(``policies/checkpoints/<scenario>-N<N>-<arch>-<role>.pt``); when there is none, or it was made
for another system, :class:`CheckpointMissing` says the exact command that trains one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cfisac_env.system import System
from policies.base import DistributedPolicy
from policies.training import SHIPPED_DIR, checkpoint_name, load_checkpoint


class CheckpointMissing(ValueError):
    """No checkpoint exists for this scenario, system, architecture and role."""


# Roles beyond train.py's default (both teachers, then the student) that a role needs.
_EXTRA_ROLES = {"fixed-beta": " --role fixed-beta",
                "fixed-lambda": " --role ssnr-teacher --role sinr-teacher --role fixed-lambda"}


def train_command(scenario: str, users: int, arch: str, role: str) -> str:
    """The command that trains and installs the checkpoint a learned policy looks for."""
    return (f"python runners/train.py --scenario {scenario} --users {users} --arch {arch} "
            f"--preset cpu{_EXTRA_ROLES.get(role, '')} --install")


def shipped_checkpoint(scenario: str, users: int, arch: str, role: str) -> Path:
    """The shipped checkpoint for ``scenario`` or, failing that, for the nearest scenario in its
    ``base`` chain that has one (``road`` -> ``pos2``); the scenario's own name if none has."""
    names = [checkpoint_name(s, users, arch, role) for s in _lineage(scenario)]
    found = [SHIPPED_DIR / n for n in names if (SHIPPED_DIR / n).is_file()]
    return found[0] if found else SHIPPED_DIR / names[0]


# Architectures of shipped checkpoints, preferred first: ``arch=None`` takes the first that has a
# checkpoint for the scenario (or its base chain), N and role (``unet-span``: span output head).
DEFAULT_ARCHS = ("unet-span", "unet")


def default_arch(scenario: str, users: int, role: str) -> str:
    """The first of :data:`DEFAULT_ARCHS` with a shipped checkpoint, else ``unet``."""
    for arch in DEFAULT_ARCHS:
        if shipped_checkpoint(scenario, users, arch, role).is_file():
            return arch
    return DEFAULT_ARCHS[-1]


def _lineage(scenario: str) -> tuple[str, ...]:
    import scenarios

    try:
        return scenarios.load(scenario).lineage
    except ValueError:  # not a scenario file: only its own name can match
        return (scenario,)


class LearnedPolicy(DistributedPolicy):
    """A trained :class:`~policies.nets.DistributedNets` unit as a distributed policy.

    Args:
        system: the system to act in; must equal the checkpoint's.
        scenario: scenario the shipped checkpoint was trained on (``pos1``, ``pos2``, ...); a
            scenario without checkpoints of its own (``road``, ``track-highway``) uses those of
            its ``base`` chain (``pos2``).
        checkpoint: path of a checkpoint to use instead of the shipped one.
        arch: architecture of the shipped checkpoint (``unet``, ``unet-span``, ``cnn``, ...);
            None = :func:`default_arch` (``unet-span`` where shipped, else ``unet``).
        device: torch device of the networks.
    """

    role = "learned"

    def __init__(self, system: System, scenario: str = "pos2", checkpoint: str | Path | None = None,
                 arch: str | None = None, device: str = "cpu") -> None:
        super().__init__(system)
        if checkpoint is None:
            arch = arch or default_arch(scenario, system.N, self.role)
            path = shipped_checkpoint(scenario, system.N, arch, self.role)
            if not path.is_file():
                raise CheckpointMissing(
                    f"no shipped {self.role} checkpoint for scenario {scenario!r} with "
                    f"N={system.N} UEs and arch {arch!r} ({path.name}); train one with: "
                    f"{train_command(scenario, system.N, arch, self.role)}")
            try:
                self.nets, self.meta = load_checkpoint(path, system, device)
            except ValueError as e:
                raise CheckpointMissing(
                    f"{e}. Train one for this system with: "
                    f"{train_command(scenario, system.N, arch, self.role)} "
                    "--set FIELD=VALUE (the same system overrides)") from None
        else:
            self.nets, self.meta = load_checkpoint(checkpoint, system, device)
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
