"""Policy registry: built-in names, user registrations, ``module:Class`` paths, entry points.

``policies.make(spec, system, **options)`` resolves ``spec`` in this order:
1. a name given to :func:`register` (built-ins are registered lazily as import paths);
2. ``"package.module:Class"`` or ``"path/to/file.py:Class"``;
3. a name in the entry-point group ``cfisac.policies``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from cfisac_env.physics.system import System

ENTRY_POINT_GROUP = "cfisac.policies"

_REGISTRY: dict[str, str | Callable[..., Any]] = {
    "mrt-target": "policies.classic:MRTTarget",
    "mrt-users": "policies.classic:MRTUsers",
    "ns-rzf": "policies.classic:NSRZF",
    "ns-sensing": "policies.classic:NSSensing",
    "cb-sensing": "policies.classic:CBSensing",
    "ns-opt": "policies.convex.policies:NSOpt",
    "cb-opt": "policies.convex.policies:CBOpt",
    "cvx": "policies.convex.policies:JointSDP",
    "ssnr-teacher": "policies.learned.policies:SSNRTeacher",
    "sinr-teacher": "policies.learned.policies:SINRTeacher",
    "student": "policies.learned.policies:Student",
    "paper-student": "policies.learned.policies:PaperStudent",
    "paper-sinr-teacher": "policies.learned.policies:PaperSINRTeacher",
    "fixed-beta": "policies.learned.policies:FixedBeta",
    "fixed-lambda": "policies.learned.policies:FixedLambda",
}
BUILTINS: tuple[str, ...] = tuple(_REGISTRY)  # the policies shipped with cfisac


def register(name: str, factory: Callable[..., Any] | str | None = None, *,
             overwrite: bool = False) -> Any:
    """Register a policy class (or factory, or ``"module:Class"`` path) under ``name``.

    Usable as a decorator: ``@policies.register("my-policy")``.
    """
    def add(f: Callable[..., Any] | str) -> Any:
        if name in _REGISTRY and not overwrite and _REGISTRY[name] is not f:
            raise ValueError(f"policy {name!r} is already registered; pass overwrite=True")
        _REGISTRY[name] = f
        return f

    return add if factory is None else add(factory)


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Every policy name :func:`make` accepts (registered and entry points)."""
    return sorted(set(_REGISTRY) | set(_entry_points()))


def _load_path(spec: str) -> Any:
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise ValueError(f"policy file {target!r} does not exist")
        mod_name = f"cfisac_user_{path.stem}_{abs(hash(str(path.resolve())))}"
        if mod_name not in sys.modules:
            spec_ = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec_)
            sys.modules[mod_name] = module
            spec_.loader.exec_module(module)
        module = sys.modules[mod_name]
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise ValueError(f"cannot import policy module {target!r}: {e}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {target!r} has no attribute {attr!r}") from None


def resolve(spec: str) -> Callable[..., Any]:
    """The class or factory that ``spec`` names (see module docstring)."""
    if spec in _REGISTRY:
        f = _REGISTRY[spec]
        return _load_path(f) if isinstance(f, str) else f
    if ":" in spec:
        return _load_path(spec)
    eps = _entry_points()
    if spec in eps:
        return eps[spec].load()
    raise ValueError(f"unknown policy {spec!r}; available: {', '.join(available())} "
                     "(or a 'module:Class' / 'file.py:Class' path)")


def make(spec: str, system: System, **options: Any) -> Any:
    """Build a policy for ``system``: ``policies.make("cvx", system, rho=0.5)``."""
    policy = resolve(spec)(system, **options)
    if not getattr(policy, "name", None) or policy.name == "policy":
        policy.name = spec
    return policy
