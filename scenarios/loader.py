"""Declarative scenarios: TOML files in this folder, loaded with overrides.

A scenario file has top-level ``description`` and ``kind`` (``static`` or ``road``), an optional
``base`` (another scenario whose fields it inherits and overrides, table by table at every depth:
:func:`deep_merge`), and sections: ``system``
(-> :class:`cfisac_env.System`), ``placement`` (uniform boxes for static drops and the initial
positions), ``env`` (reward, episode length, timing) and, for ``road``, ``road``, ``traffic``,
``target`` and ``walkers``.

Overrides name a field by its dotted path (``"traffic.speed"``) or, when unique, by its bare name
(``"antennas"``); ``users`` is the shortcut for ``system.users``. An unknown name is a
``ValueError`` that lists what exists. ``[channel]`` (:mod:`cfisac_env.physics.propagation`) and
``[csi]``
(:mod:`cfisac_env.physics.estimation`) are always present, completed with the seed's defaults (LoS,
perfect CSI).

Every loaded scenario is checked against :mod:`scenarios.schema` (sections, fields, types,
finite values, ranges and their order) and, for ``road``, the traffic model's cross-field rules
(:func:`cfisac_env.sim.traffic.validate`): a bad file or override is one ``ValueError`` naming the
field, never a hang or a crash later.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cfisac_env.physics.echo import SENSING_DEFAULTS, SensingConfig
from cfisac_env.physics.estimation import CSI_DEFAULTS, CsiError
from cfisac_env.physics.propagation import CHANNEL_DEFAULTS, ChannelModel
from cfisac_env.physics.system import System
from scenarios import schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).parent
KINDS = schema.KINDS


def available() -> list[str]:
    """Names of the scenarios shipped in this folder."""
    return sorted(p.stem for p in HERE.glob("*.toml"))


def _read(name: str | Path, seen: tuple[str, ...] = ()) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The merged config of a scenario file and its lineage (its name, its base's, ...)."""
    path = Path(name)
    if path.suffix != ".toml":
        path = HERE / f"{name}.toml"
    if not path.is_file():
        raise ValueError(f"unknown scenario {str(name)!r}; available: {', '.join(available())} "
                         "(or a path to a .toml file)")
    try:
        with path.open("rb") as f:
            cfg = tomllib.load(f)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"cannot read scenario file {path}: {e}") from None
    base = cfg.pop("base", None)
    if base is not None and not isinstance(base, str):
        raise ValueError(f"scenario {path.stem!r}: base must be a scenario name, got {base!r}")
    if base is None:
        return cfg, (path.stem,)
    if base in seen:
        raise ValueError(f"scenario {path.stem!r}: circular base {base!r}")
    merged, lineage = _read(base, (*seen, path.stem))
    return deep_merge(merged, cfg), (path.stem, *lineage)


def deep_merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``child`` over ``parent``, table by table at every depth: a child's
    ``[stress.fixed_latency] cvx = 2.0`` changes that one entry and keeps the parent's other
    ``stress.fixed_latency`` entries. Non-table values (numbers, strings, arrays) replace the
    parent's. Neither input is modified."""
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _fields(cfg: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in cfg.items():
        path = f"{prefix}{k}"
        out.extend(_fields(v, path + ".") if isinstance(v, dict) else [path])
    return out


def apply_override(cfg: dict[str, Any], key: str, value: Any) -> None:
    """Set ``cfg[key]`` in place; ``key`` dotted or a unique bare field name."""
    fields = _fields(cfg)
    if key not in fields:
        matches = [f for f in fields if f.rsplit(".", 1)[-1] == key]
        if len(matches) != 1:
            why = "ambiguous" if matches else "unknown"
            raise ValueError(f"{why} scenario field {key!r}; fields: {', '.join(fields)}")
        key = matches[0]
    *parents, leaf = key.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[leaf] = value


def parse_value(raw: str) -> Any:
    """One value written on a command line: a TOML literal (``30``, ``0.5``, ``true``,
    ``[1, 2]``, ``"text"``), else the text itself (``IPM``, ``runs/x.pt``). The one value parser
    of ``--set`` and of policy options (``cvx@rho=0.5``)."""
    raw = raw.strip()
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"traffic.speed=30"`` -> ``("traffic.speed", 30)``; values by :func:`parse_value`."""
    if "=" not in text:
        raise ValueError(f"expected key=value, got {text!r}")
    key, raw = (s.strip() for s in text.split("=", 1))
    return key, parse_value(raw)


@dataclass
class Scenario:
    """A resolved scenario: its name, full config, the :class:`System` it defines and its
    lineage (its own name, then its ``base``, that one's base, ...)."""

    name: str
    config: dict[str, Any]
    system: System
    lineage: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.config["kind"]

    @property
    def description(self) -> str:
        return self.config.get("description", "")

    def sample(self, rng: np.random.Generator, batch: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Draw positions uniformly from the ``placement`` boxes (with ``ue_y_lines``, each UE
        on one of those lines y, picked uniformly: UEs on both sidewalks).

        Returns:
            ``ue_xy (B, N, 2)`` and ``target_xy (B, 2)`` in metres (no batch axis when
            ``batch`` is None).
        """
        b, n = 1 if batch is None else batch, self.system.N
        ue, tg = self.place(rng.random((b, n, 2)), rng.random((b, 2)))
        return (ue, tg) if batch is not None else (ue[0], tg[0])

    def sample_each(self, rngs: list[np.random.Generator]) -> tuple[np.ndarray, np.ndarray]:
        """One drop from each generator: ``ue_xy (B, N, 2)``, ``target_xy (B, 2)`` metres, for
        ``B = len(rngs)``; drop ``i`` is exactly ``sample(rngs[i])`` (each generator draws the
        same ``2 N + 2`` uniforms in the same order, in one call)."""
        n = self.system.N
        u = np.empty((len(rngs), 2 * n + 2))
        for r, row in zip(rngs, u, strict=True):
            r.random(out=row)
        return self.place(u[:, : 2 * n].reshape(-1, n, 2), u[:, 2 * n:])

    def place(self, u_ue: np.ndarray, u_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions from uniforms in [0, 1): ``u_ue (B, N, 2)`` -> ``ue_xy (B, N, 2)``,
        ``u_target (B, 2)`` -> ``target_xy (B, 2)``, metres (the ``placement`` boxes)."""
        pl = self.config["placement"]
        lo = np.array([pl["ue_x"][0], pl["ue_y"][0]])
        hi = np.array([pl["ue_x"][1], pl["ue_y"][1]])
        ue = lo + (hi - lo) * u_ue
        lines = pl.get("ue_y_lines")
        if lines is not None:
            pick = np.minimum((u_ue[..., 1] * len(lines)).astype(int), len(lines) - 1)
            ue[..., 1] = np.asarray(lines, dtype=float)[pick]
        tlo = np.array([pl["target_x"][0], pl["target_y"][0]])
        thi = np.array([pl["target_x"][1], pl["target_y"][1]])
        return ue, tlo + (thi - tlo) * u_target

    def drops(self, rng: np.random.Generator, batch: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch of drops from the one drop sampler (:func:`cfisac_env.sim.drops.sample_drops`,
        honouring ``[channel]`` and ``[csi]``): the observed ``csi (B, L, 2, M, Q) float32``
        (estimated under ``[csi]``), ``ue_xy (B, N, 2)``, ``target_xy (B, 2)``."""
        from cfisac_env.sim.drops import sample_drops

        d = sample_drops(self, rng, batch)
        return d.observed, d.ue_xy, d.target_xy


def with_model_defaults(cfg: dict[str, Any]) -> None:
    """Complete ``[channel]``, ``[csi]`` and ``[sensing]`` in place with their defaults (the
    seed's LoS channel, perfect CSI, oracle sensing), so that every field exists and can be
    overridden."""
    for section, defaults in (("channel", CHANNEL_DEFAULTS), ("csi", CSI_DEFAULTS),
                              ("sensing", SENSING_DEFAULTS)):
        if isinstance(cfg.get(section, {}), dict):
            cfg[section] = {**defaults, **cfg.get(section, {})}


def load(name: str | Path = "pos2", users: int | None = None,
         overrides: dict[str, Any] | None = None) -> Scenario:
    """Load a scenario by name (``pos1``, ``pos2``, ``road``, ...) or path to a TOML file.

    Args:
        name: scenario name or path.
        users: number of UEs ``N`` (shortcut for ``system.users``); must be >= 1.
        overrides: ``{field: value}``, fields dotted or unique bare names.
    """
    cfg, lineage = _read(name)
    cfg = copy.deepcopy(cfg)
    if users is not None:
        if not isinstance(users, (int, np.integer)) or isinstance(users, bool) or users < 1:
            raise ValueError(f"users must be an integer >= 1, got {users!r}")
        if isinstance(cfg.get("system"), dict):
            cfg["system"]["users"] = int(users)
    with_model_defaults(cfg)
    for key, value in (overrides or {}).items():
        apply_override(cfg, key, value)
    schema.validate(cfg, lineage[0])
    ChannelModel.of(cfg), CsiError.of(cfg), SensingConfig.of(cfg)  # checked by their models
    if cfg["kind"] == "road":
        from cfisac_env.sim.traffic import validate as validate_traffic
        from cfisac_env.sim.world import interval_steps

        validate_traffic(cfg)
        interval_steps(cfg["env"]["decision_interval"], cfg["env"]["dt"], "env.decision_interval")
    try:
        system = System(**cfg["system"])
    except TypeError as e:
        raise ValueError(f"bad [system] section: {e}") from None
    return Scenario(name=lineage[0], config=cfg, system=system, lineage=lineage)
