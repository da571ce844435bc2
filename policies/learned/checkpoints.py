"""The one place for checkpoints of the learned policies: naming, finding, loading, saving,
installing and training a missing one.

A checkpoint is a ``torch.save`` dict of plain data and tensors (loaded with
``weights_only=True``: no code runs from a checkpoint file), named
``<scenario>-N<users>-<arch>-<role>.pt``. Where one is looked up, in this order:

1. the shipped folder ``policies/learned/shipped/``, for the scenario and then each scenario of its
   ``base`` chain (``road`` -> ``pos2``: the same system and placement family);
2. the cache ``runs/cache/checkpoints/`` of checkpoints the runners trained on demand.

``arch=None`` takes the first architecture of :data:`DEFAULT_ARCHS` that has one.
Every failure (missing, truncated, garbage, made for another system) is a
:class:`CheckpointError` (a ``ValueError``) whose one-line message names the file and the command
that rebuilds it.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch

from cfisac_env.physics.system import System
from cfisac_env.runs import CHECKPOINT_CACHE, atomic_path

FORMAT = 2
ROLES = ("ssnr-teacher", "sinr-teacher", "student", "fixed-beta", "fixed-lambda")
SHIPPED_DIR = Path(__file__).parent / "shipped"
# Architectures of shipped checkpoints, preferred first (arch=None).
DEFAULT_ARCHS = ("gram-mlp", "unet")
# Roles that ``train.py`` trains besides its default (both teachers, then the student).
_EXTRA_ROLES = {"fixed-beta": " --role fixed-beta",
                "fixed-lambda": " --role ssnr-teacher --role sinr-teacher --role fixed-lambda"}


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or made for another system."""


def checkpoint_name(scenario: str, users: int, arch: str, role: str) -> str:
    """File name of a checkpoint: ``<scenario>-N<users>-<arch>-<role>.pt``."""
    return f"{scenario}-N{users}-{arch}-{role}.pt"


def train_command(scenario: str, users: int, arch: str, role: str) -> str:
    """The command that trains and installs the checkpoint a learned policy looks for."""
    return (f"python runners/train.py --scenario {scenario} --users {users} --arch {arch} "
            f"--preset cpu{_EXTRA_ROLES.get(role, '')} --install")


def _lineage(scenario: str) -> tuple[str, ...]:
    import scenarios

    try:
        return scenarios.load(scenario).lineage
    except ValueError:  # not a scenario file: only its own name can match
        return (scenario,)


def candidates(scenario: str, users: int, arch: str, role: str) -> list[Path]:
    """Every path where the checkpoint may be, in lookup order (module docstring)."""
    names = [checkpoint_name(s, users, arch, role) for s in _lineage(scenario)]
    return [SHIPPED_DIR / n for n in names] + [CHECKPOINT_CACHE / n for n in names]


def find(scenario: str, users: int, role: str, arch: str | None = None) -> Path | None:
    """The first existing checkpoint for ``(scenario, users, role)`` (``arch=None``: any of
    :data:`DEFAULT_ARCHS`, preferred first), or None."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    for a in (arch,) if arch else DEFAULT_ARCHS:
        for path in candidates(scenario, users, a, role):
            if path.is_file():
                return path
    return None


def require(scenario: str, users: int, role: str, arch: str | None = None) -> Path:
    """:func:`find`, or a :class:`CheckpointError` with the command that trains one."""
    path = find(scenario, users, role, arch)
    if path is None:
        a = arch or DEFAULT_ARCHS[0]
        raise CheckpointError(
            f"no {role} checkpoint for scenario {scenario!r} with N={users} UEs and arch {a!r} "
            f"({checkpoint_name(scenario, users, a, role)}); train one with: "
            f"{train_command(scenario, users, a, role)}")
    return path


def read(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict at ``path`` (``weights_only=True``), or a one-line
    :class:`CheckpointError` naming the file when it is missing, truncated or not a checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError, TypeError, AttributeError, KeyError, IndexError, struct.error,
            UnicodeDecodeError, MemoryError, OverflowError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {path} is unreadable or not a cfisac checkpoint "
                              f"({first}); {_rebuild_hint(path)}") from None
    keys = ("format", "role", "arch", "width", "system", "state_dicts")
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in keys):
        raise CheckpointError(f"checkpoint {path} is not a cfisac checkpoint (it lacks "
                              f"{', '.join(keys)}); {_rebuild_hint(path)}")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {ckpt['format']!r}, this version "
                              f"reads format {FORMAT}; {_rebuild_hint(path)}")
    return ckpt


def _rebuild_hint(path: Path) -> str:
    """``rebuild it with: <command>`` from the file name, or a generic hint."""
    parts = path.stem.split("-N", 1)
    for role in ROLES:
        if len(parts) == 2 and parts[1].endswith("-" + role):
            users, _, arch = parts[1][: -len(role) - 1].partition("-")
            if users.isdigit() and arch:
                return f"rebuild it with: {train_command(parts[0], int(users), arch, role)}"
    return "rebuild it with: python runners/train.py --scenario S --users N --arch A --install"


def load(path: str | Path, system: System | None = None, device: str | torch.device = "cpu"
         ) -> tuple[Any, dict[str, Any]]:
    """Rebuild the :class:`~policies.learned.nets.DistributedNets` unit of a checkpoint (eval mode).

    Returns:
        ``(nets, meta)``: the unit and the checkpoint's metadata (everything but the weights).

    Raises:
        CheckpointError: unreadable file, or ``system`` given and different from the
            checkpoint's.
    """
    from policies.learned.nets import DistributedNets

    path = Path(path)
    ckpt = read(path)
    saved = System.from_dict(ckpt["system"])
    if system is not None:
        try:
            system.require_same(saved, f"checkpoint {path.name}")
        except ValueError as e:
            raise CheckpointError(f"{e}; {_rebuild_hint(path)} --set FIELD=VALUE "
                                  "(the same system overrides)") from None
    try:
        nets = DistributedNets(saved if system is None else system, ckpt["arch"], ckpt["width"])
        for ap, sd in zip(nets.aps, ckpt["state_dicts"], strict=True):
            ap.load_state_dict(sd)
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0][:160]
        raise CheckpointError(f"checkpoint {path} does not fit its architecture "
                              f"{ckpt['arch']!r} ({first}); {_rebuild_hint(path)}") from None
    nets.to(device).eval()
    return nets, {k: v for k, v in ckpt.items() if k != "state_dicts"}


def save(path: str | Path, ckpt: dict[str, Any]) -> Path:
    """Write the checkpoint dict atomically (temporary file, then rename) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **ckpt}, tmp)
    return path


def install(path: str | Path, folder: str | Path | None = None) -> Path:
    """Copy a finished checkpoint into ``folder`` (None: the shipped one) atomically, after
    checking that it reads back; returns the installed path."""
    path = Path(path)
    read(path)
    dest = Path(SHIPPED_DIR if folder is None else folder) / path.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        tmp.write_bytes(path.read_bytes())
    return dest


def resolve(role: str, system: System, scenario: str, arch: str | None = None,
            train_missing: bool = False, progress: bool = True,
            log: list[str] | None = None, overrides: dict[str, Any] | None = None,
            device: str = "auto") -> Path:
    """The checkpoint of ``role`` for ``system`` on ``scenario``: found (:func:`find`), else,
    with ``train_missing``, trained with the ``cpu`` preset into the cache (teachers too when
    the role needs them), else a :class:`CheckpointError` naming the command.

    Args:
        overrides: scenario overrides that make ``system`` (e.g. ``{"system.antennas": 32}``),
            passed to the training.
        log: collects a line per checkpoint trained here.
    """
    path = find(scenario, system.N, role, arch)
    if path is not None or not train_missing:
        return path if path is not None else require(scenario, system.N, role, arch)
    from policies.learned.training import train

    a = arch or DEFAULT_ARCHS[0]
    roles = {"ssnr-teacher": ("ssnr-teacher",), "sinr-teacher": ("sinr-teacher",),
             "fixed-beta": ("fixed-beta",)}.get(role, ("ssnr-teacher", "sinr-teacher", role))
    out = train(scenario, system.N, a, "cpu", device, None, roles, progress=progress,
                overrides=overrides)
    for trained, ckpt in out.checkpoints.items():
        dest = install(ckpt, CHECKPOINT_CACHE)
        if log is not None:
            log.append(f"trained {trained} with the cpu preset -> {dest}")
    return CHECKPOINT_CACHE / checkpoint_name(scenario, system.N, a, role)
