"""The one place for checkpoints of the learned policies: naming, finding, loading, saving,
installing (training a missing one is :func:`policies.learned.training.resolve`).

A checkpoint is a ``torch.save`` dict of plain data and tensors (loaded with
``weights_only=True``: no code runs from a checkpoint file). Two kinds (see
:mod:`policies.learned.roles`):

- ``<scenario>-span-attn.pt``: a family's any-N ``span-attn`` network (format 4);
- ``<scenario>-N<users>-<arch>-<role>.pt``: one network per AP of the seed's scheme (format 2).

Where one is looked up, in this order, for the scenario and then each scenario of its ``base``
chain (``road`` -> ``pos2``):

1. the checkpoint root: ``$CFISAC_CHECKPOINTS`` (or :func:`set_root`, the runners'
   ``--checkpoint-root``), where runners also put the checkpoints they train on demand;
   default ``~/.cache/cfisac/checkpoints`` (never a folder relative to the current directory);
2. the shipped folder ``policies/learned/shipped/``.

``arch=None`` takes the first architecture of :data:`DEFAULT_ARCHS` that has one.
Every failure (missing, truncated, garbage, made for another system) is a
:class:`CheckpointError` (a ``ValueError``) whose one-line message names the file and how to get
the right one: an explicit path that does not exist or is not a cfisac checkpoint says so (and
where the shipped ones are); a checkpoint that a lookup cannot find, or one made for another
system, names the command that trains it. A lookup for a scenario the loader does not know is the
loader's own ``ValueError`` (``unknown scenario ...; available: ...``), not a missing checkpoint.
:func:`describe` gives the path and SHA-256 of the file used (for run records).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch

from cfisac_env.physics.system import System
from cfisac_env.runs import atomic_path
from policies.learned.roles import PAPER_ROLES, ROLES

FORMAT = 2
SHIPPED_DIR = Path(__file__).parent / "shipped"
ENV = "CFISAC_CHECKPOINTS"
DEFAULT_ROOT = Path.home() / ".cache" / "cfisac" / "checkpoints"
_root: Path | None = None
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


def paper_command(scenario: str, users: int, arch: str | None, role: str) -> str | None:
    """:func:`train_command` for a scenario the loader knows (``arch`` None: the first of
    :data:`DEFAULT_ARCHS`), else None."""
    return train_command(scenario, users, arch or DEFAULT_ARCHS[0], role) \
        if _is_scenario(scenario) else None


def set_root(path: str | Path | None) -> None:
    """Use ``path`` as the checkpoint root (None: back to ``$CFISAC_CHECKPOINTS`` / default)."""
    global _root
    _root = None if path is None else Path(path).expanduser().resolve()


def root() -> Path:
    """The checkpoint root: :func:`set_root`'s, else ``$CFISAC_CHECKPOINTS``, else
    :data:`DEFAULT_ROOT` (absolute in every case)."""
    if _root is not None:
        return _root
    env = os.environ.get(ENV)
    return Path(env).expanduser().resolve() if env else DEFAULT_ROOT


def describe(path: str | Path) -> dict[str, str]:
    """``{"path": absolute path, "sha256": hex digest}`` of a checkpoint file."""
    path = Path(path).resolve()
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def known_scenario(scenario: str) -> None:
    """Nothing if the scenario loader knows ``scenario`` (a shipped name or a ``.toml`` path),
    else the loader's own one-line ``ValueError`` (``unknown scenario ...; available: ...``)."""
    import scenarios

    scenarios.load(scenario)


def _lineage(scenario: str) -> tuple[str, ...]:
    import scenarios

    try:
        return scenarios.load(scenario).lineage
    except ValueError:  # not a scenario file: only its own name can match
        return (scenario,)


def candidates(scenario: str, users: int, arch: str, role: str) -> list[Path]:
    """Every path where the checkpoint may be, in lookup order (module docstring)."""
    names = [checkpoint_name(s, users, arch, role) for s in _lineage(scenario)]
    return [root() / n for n in names] + [SHIPPED_DIR / n for n in names]


def find(scenario: str, users: int, role: str, arch: str | None = None) -> Path | None:
    """The first existing checkpoint for ``(scenario, users, role)`` (``arch=None``: any of
    :data:`DEFAULT_ARCHS`, preferred first), or None."""
    if role not in PAPER_ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(PAPER_ROLES)}")
    for a in (arch,) if arch else DEFAULT_ARCHS:
        for path in candidates(scenario, users, a, role):
            if path.is_file():
                return path
    return None


def require(scenario: str, users: int, role: str, arch: str | None = None) -> Path:
    """:func:`find`, or a :class:`CheckpointError` with the command that trains one (the
    loader's ``ValueError`` when ``scenario`` is not a scenario at all)."""
    path = find(scenario, users, role, arch)
    if path is None:
        known_scenario(scenario)
        a = arch or DEFAULT_ARCHS[0]
        raise CheckpointError(
            f"no {role} checkpoint for scenario {scenario!r} with N={users} UEs and arch {a!r} "
            f"({checkpoint_name(scenario, users, a, role)}); train one with: "
            f"{train_command(scenario, users, a, role)}")
    return path


def read(path: str | Path, command: str | None = None) -> dict[str, Any]:
    """The checkpoint dict at ``path`` (``weights_only=True``), or a one-line
    :class:`CheckpointError` naming the file when it is missing, truncated or not a checkpoint,
    and how to get one (``command``: the training command to name; default from the file
    name)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; {_source_hint(path, command)}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError, TypeError, AttributeError, KeyError, IndexError, struct.error,
            UnicodeDecodeError, MemoryError, OverflowError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {path} is not a cfisac checkpoint (unreadable: "
                              f"{first}); {_source_hint(path, command)}") from None
    keys = ("format", "role", "arch", "width", "system", "state_dicts")
    if isinstance(ckpt, dict) and ckpt.get("format") == SPAN_FORMAT:
        raise CheckpointError(f"checkpoint {path} is an any-N span-attn checkpoint (format "
                              f"{SPAN_FORMAT}, for the policies {_policies_of('span')}), not a "
                              f"seed-scheme one (format {FORMAT}); {_source_hint(path, command)}")
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in keys):
        raise CheckpointError(f"checkpoint {path} is not a cfisac checkpoint (it lacks "
                              f"{', '.join(keys)}); {_source_hint(path, command)}")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {ckpt['format']!r}, this version "
                              f"reads format {FORMAT}; {_rebuild_hint(path)}")
    return ckpt


def _paper_command(path: Path) -> str:
    """The training command of a seed-scheme checkpoint from its file name
    (``<scenario>-N<users>-<arch>-<role>.pt`` of a known scenario), or a generic one."""
    parts = path.stem.split("-N", 1)
    for role in PAPER_ROLES:
        if len(parts) == 2 and parts[1].endswith("-" + role):
            users, _, arch = parts[1][: -len(role) - 1].partition("-")
            if users.isdigit() and arch and _is_scenario(parts[0]):
                return train_command(parts[0], int(users), arch, role)
    return "python runners/train.py --scenario SCENARIO --users N --arch ARCH --install"


def _rebuild_hint(path: Path) -> str:
    """``rebuild it with: <command>`` (:func:`_paper_command`)."""
    return f"rebuild it with: {_paper_command(path)}"


def _source_hint(path: Path, command: str | None = None) -> str:
    """How to get a checkpoint when ``path`` (given explicitly) is not one: the right path, the
    scenario's own, or ``command`` (default: :func:`_paper_command`)."""
    return (f"give the path of an existing cfisac checkpoint file (the shipped ones are in "
            f"{SHIPPED_DIR}), leave out checkpoint= to use the scenario's own, or train one "
            f"with: {command or _paper_command(path)}")


def _policies_of(scheme: str) -> str:
    """The learned policy names of ``scheme`` (``"span"`` or ``"paper"``), comma-separated."""
    return ", ".join(n for n, r in ROLES.items() if r.scheme == scheme)


def _is_scenario(name: str) -> bool:
    """Whether the scenario loader knows ``name``."""
    try:
        known_scenario(name)
    except (ValueError, TypeError):
        return False
    return True


def load(path: str | Path, system: System | None = None, device: str | torch.device = "cpu",
         command: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Rebuild the :class:`~policies.learned.nets.DistributedNets` unit of a checkpoint (eval mode).

    Returns:
        ``(nets, meta)``: the unit and the checkpoint's metadata (everything but the weights).

    Args:
        command: the training command an error names when ``path`` is missing or not a
            checkpoint (default: from the file name, :func:`_paper_command`).

    Raises:
        CheckpointError: unreadable file, or ``system`` given and different from the
            checkpoint's.
    """
    from policies.learned.nets import DistributedNets

    path = Path(path)
    ckpt = read(path, command)
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
    if path.name.endswith("-span-attn.pt"):
        load_span(path)
    else:
        read(path)
    dest = Path(SHIPPED_DIR if folder is None else folder) / path.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        tmp.write_bytes(path.read_bytes())
    return dest


# ----------------------------------------------------------------------------- any-N networks

SPAN_FORMAT = 4
SPAN_MAX_USERS = 16


def span_name(scenario: str) -> str:
    """File name of a family's any-N ``span-attn`` checkpoint: ``<scenario>-span-attn.pt``."""
    return f"{scenario}-span-attn.pt"


def _same_kind_lineage(scenario: str) -> tuple[str, ...]:
    """The families whose ``span-attn`` file may serve ``scenario``: its ``[learned]
    checkpoints`` family alone when it declares one (``none``: no family), else itself and its
    ``base`` chain up to the first change of kind."""
    import scenarios

    try:
        sc = scenarios.load(scenario)
    except ValueError:
        return (scenario,)
    declared = sc.config.get("learned", {}).get("checkpoints")
    if declared is not None:
        return () if declared == "none" else (declared,)
    names = sc.lineage
    out = [names[0]]                 # the scenario itself (a .toml path: its file's stem)
    for name in names[1:]:
        if scenarios.load(name).kind != sc.kind:
            break
        out.append(name)
    return tuple(out)


def find_span(scenario: str) -> Path | None:
    """The first existing ``span-attn`` checkpoint of ``scenario`` or its ``base`` chain (root,
    then shipped), or None. The chain stops where the scenario kind changes: a road scenario
    never borrows a static family's network (its targets leave the static drops' area); a
    scenario that declares ``[learned] checkpoints = "F"`` uses ``F-span-attn.pt`` only."""
    for s in _same_kind_lineage(scenario):
        for folder in (root(), SHIPPED_DIR):
            if (folder / span_name(s)).is_file():
                return folder / span_name(s)
    return None


def require_span(scenario: str) -> Path:
    """:func:`find_span`, or a one-line :class:`CheckpointError` with the training command (the
    loader's ``ValueError`` when ``scenario`` is not a scenario at all)."""
    path = find_span(scenario)
    if path is None:
        known_scenario(scenario)     # an unknown scenario is that, not a missing checkpoint
        families = _same_kind_lineage(scenario)
        if not families:
            raise CheckpointError(f"scenario {scenario!r} declares [learned] checkpoints = "
                                  "\"none\": no learned policy serves it")
        raise CheckpointError(f"no span-attn checkpoint for scenario {scenario!r} "
                              f"({span_name(families[0])} in {root()} or {SHIPPED_DIR}); train "
                              f"one with: {_family_command(scenario)}")
    return path


def span_train_command(scenario: str) -> str:
    """The command that trains and installs a family's ``span-attn`` checkpoint."""
    return f"python runners/train.py --scenario {scenario} --arch span-attn --install"


def _family_command(scenario: str) -> str:
    """:func:`span_train_command` of the family whose checkpoint serves ``scenario`` (a
    scenario file that is its own family: its path, as the loader takes it)."""
    families = _same_kind_lineage(scenario)
    family = families[0] if families else scenario
    own = str(scenario).endswith(".toml") and family == Path(scenario).stem
    return span_train_command(scenario if own else family)


def save_span(path: str | Path, net: Any, meta: dict[str, Any]) -> Path:
    """Write a ``span-attn`` network atomically (plain data and tensors only)."""
    import dataclasses

    system = dataclasses.replace(net.system, users=1)
    return save(path, {"format": SPAN_FORMAT, "role": "span", "arch": net.arch,
                       "config": net.config(), "system": system.to_dict(),
                       "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                       **meta})


def load_span(path: str | Path, system: System | None = None, scenario: str | None = None
              ) -> tuple[Any, dict[str, Any]]:
    """The ``span-attn`` network of ``path`` (eval mode) and its metadata; ``system`` may have
    any N (1..16) but must otherwise be the checkpoint's (L, M, P, noise, gains, AP
    positions), else a one-line :class:`CheckpointError` naming the file and the command that
    trains one for ``scenario`` (default: the checkpoint's own). A ``path`` that does not exist
    or is not a ``span-attn`` checkpoint is a one-line :class:`CheckpointError` saying so, with
    where the shipped ones are and the command that trains one for ``scenario``."""
    import dataclasses

    from policies.learned.span import SpanAttn

    path = Path(path)
    get = _source_hint(path, _span_command(path, scenario))
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; {get}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise CheckpointError(f"checkpoint {path} is not a cfisac checkpoint (unreadable: "
                              f"{type(e).__name__}); {get}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != SPAN_FORMAT:
        paper = isinstance(ckpt, dict) and ckpt.get("format") == FORMAT
        what = (f"a seed-scheme {ckpt.get('role')!r} checkpoint (format {FORMAT}, for the "
                f"policies {_policies_of('paper')})" if paper else "not a cfisac checkpoint")
        raise CheckpointError(f"checkpoint {path} is {what}, not a span-attn checkpoint of "
                              f"format {SPAN_FORMAT}; {get}")
    if any(k not in ckpt for k in ("system", "config", "state_dict")):
        raise CheckpointError(f"checkpoint {path} is not a cfisac checkpoint (it lacks system, "
                              f"config, state_dict); {get}")
    try:
        saved = System.from_dict(ckpt["system"])
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise CheckpointError(f"checkpoint {path} is not a cfisac checkpoint (its system: "
                              f"{' '.join(str(e).split())[:160]}); {get}") from None
    scen = scenario or ckpt.get("scenario", path.stem.removesuffix("-span-attn"))
    if system is not None:
        if system.N > SPAN_MAX_USERS:
            raise CheckpointError(f"checkpoint {path} serves N = 1..{SPAN_MAX_USERS} UEs, got "
                                  f"N = {system.N}; use at most {SPAN_MAX_USERS} UEs (--users) "
                                  f"or a policy of {_policies_of('paper')} trained for this N")
        hint = f"train one with: {span_train_command(scen)} (with the same --set overrides)"
        if (system.L, system.M) != (saved.L, saved.M):
            raise CheckpointError(f"checkpoint {path} was made for L={saved.L} APs with "
                                  f"M={saved.M} antennas, this system has L={system.L}, "
                                  f"M={system.M}; {hint}")
        try:
            dataclasses.replace(system, users=1).require_same(saved, f"checkpoint {path}")
        except ValueError as e:
            raise CheckpointError(f"{str(e).split('; use')[0]}; {hint}") from None
    try:
        net = SpanAttn(saved if system is None else system, **ckpt["config"])
        net.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as e:
        first = " ".join(str(e).split())[:160]
        raise CheckpointError(f"checkpoint {path} does not fit the span-attn network ({first});"
                              f" {get}") from None
    net.eval()
    return net, {k: v for k, v in ckpt.items() if k != "state_dict"}


def _span_command(path: Path, scenario: str | None) -> str:
    """The command that trains a ``span-attn`` checkpoint for ``scenario`` (else for the family
    the file name names, when it is a scenario; else a generic one)."""
    for name in (scenario, path.stem.removesuffix("-span-attn")):
        if name and _is_scenario(name):
            return _family_command(name)
    return span_train_command("SCENARIO")


def warm_start_span(path: str | Path, system: System, geometry: dict[str, Any]) -> Any:
    """A ``span-attn`` network for ``system`` started from the checkpoint ``path``, in train
    mode. Made for the same system (any N): the checkpoint itself. Made for another deployment
    with the same ``M`` (other ``L``, AP positions, UE line): every weight is copied except the
    UE embedding's per-AP direction inputs (``L`` columns of ``embed_ue.0.weight``), which
    depend on ``L``: AP ``k`` of ``system`` gets the column of the checkpoint's AP nearest to
    it along x, scaled by ``L_ckpt / L`` (the embedding's response to directions that every AP
    shares keeps its size); the UE geometry is ``geometry``'s (``SpanAttn``'s ``ue_line_y`` and
    ``ue_x``: :func:`policies.learned.span_training.ue_geometry`). The layers of the
    network do not otherwise depend on ``L``, so every head starts where the checkpoint's was."""
    import numpy as np

    from policies.learned.span import SpanAttn

    path = Path(path)
    meta = load_span(path)[1]
    saved = System.from_dict(meta["system"])
    if saved.M != system.M:
        raise CheckpointError(f"checkpoint {path} was made for M={saved.M} antennas, this "
                              f"system has M={system.M}; no warm start across M")
    try:
        net, _ = load_span(path, system)
    except CheckpointError:
        src = torch.load(path, map_location="cpu", weights_only=True)
        cfg = {**{k: v for k, v in src["config"].items() if k != "ue_x"}, **geometry}
        net = SpanAttn(system, **cfg)
        sd = dict(src["state_dict"])
        w = sd["embed_ue.0.weight"]                                  # (D, L_ckpt + 4)
        old_x = np.asarray(saved.ap_xy, dtype=float)[:, 0]
        near = [int(np.argmin(np.abs(old_x - x))) for x, _ in system.ap_xy]
        cols = w[:, near] * (saved.L / system.L)
        sd["embed_ue.0.weight"] = torch.cat([cols, w[:, saved.L:]], 1)
        net.load_state_dict(sd)
    net.train()
    return net
