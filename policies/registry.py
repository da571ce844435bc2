"""Policy registry and the one policy spec every runner takes.

A policy spec names a policy and, optionally, its options and its row name::

    NAME | package.module:Class | path/to/file.py:Class      then   @key=value,...   @label=ROW

e.g. ``cvx``, ``cvx@rho=0.25,solver=IPM``, ``student@checkpoint=runs/x/student.pt@label=retrained``,
``examples/power_split_mrt.py:PowerSplitMRT@split=0.3``. Values are TOML literals, else text
(:func:`scenarios.loader.parse_value`); a list value (``rho=[0.25,0.5]``) is a sweep in
``runners/sweep.py``. :func:`parse_spec` reads one; :attr:`PolicySpec.row` is the name of its
row in every table, legend, CSV and JSON: the label, else the name part (a registered name, else
the class's ``name`` attribute, else the class name; never a file path) followed by the options
in brackets (``cvx[rho=0.25]``; a path-valued option shows its file name only).

``policies.make(spec, system, **options)`` resolves the target in this order:
1. a name given to :func:`register` (built-ins are registered lazily as import paths);
2. ``"package.module:Class"`` or ``"path/to/file.py:Class"``;
3. a name in the entry-point group ``cfisac.policies``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from cfisac_env.physics.system import System
from policies.base import UnknownOptionError, unknown_options

ENTRY_POINT_GROUP = "cfisac.policies"
#: The spec option that names the row instead of reaching the policy's constructor.
LABEL = "label"

_REGISTRY: dict[str, str | Callable[..., Any]] = {
    "mrt": "policies.classic:MRT",
    "mrt-target": "policies.classic:MRTTarget",
    "mrt-users": "policies.classic:MRTUsers",
    "ns-rzf": "policies.classic:NSRZF",
    "ns-sensing": "policies.classic:NSSensing",
    "cb-sensing": "policies.classic:CBSensing",
    "lp-mmse": "policies.cellfree:LPMMSE",
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
    if "@" in name:
        raise ValueError(f"policy name {name!r} must not contain '@' (it starts the options)")

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


# ---- the spec ---------------------------------------------------------------------------------

@dataclass
class PolicySpec:
    """A parsed policy spec: ``target`` (name or ``module:Class`` / ``file.py:Class``), the
    constructor ``options`` and the optional row ``label``; ``text`` as written."""

    target: str
    options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    text: str = ""

    @property
    def is_path(self) -> bool:
        """Whether the target is a ``module:Class`` or ``file.py:Class`` path."""
        return self.target not in _REGISTRY and ":" in self.target

    @property
    def base_name(self) -> str:
        """The name part: a registered name, else the class's own ``name`` attribute (when it
        sets one), else the class name."""
        if not self.is_path:
            return self.target
        own = getattr(resolve(self.target), "name", None)
        return own if isinstance(own, str) and own and own != "policy" else \
            self.target.rpartition(":")[2]

    @property
    def row(self) -> str:
        """The row name in every table, legend and file (see the module docstring)."""
        if self.label:
            return self.label
        opts = ",".join(f"{k}={_show(v)}" for k, v in sorted(self.options.items()))
        return self.base_name + (f"[{opts}]" if opts else "")

    def with_options(self, **options: Any) -> PolicySpec:
        """A copy with ``options`` replacing these (the label kept)."""
        return PolicySpec(self.target, dict(options), self.label, self.text)


def _show(value: Any) -> str:
    """An option value as shown in a row name: a path by its file name."""
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return Path(value).name
    return str(value)


def _split_items(text: str) -> list[str]:
    """``"a=1,b=[1,2],c='x,y'"`` -> ``["a=1", "b=[1,2]", "c='x,y'"]``: commas inside brackets
    or quotes do not split."""
    items, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    items.append("".join(cur))
    return [s.strip() for s in items if s.strip()]


def parse_spec(text: str | PolicySpec, options: dict[str, Any] | None = None) -> PolicySpec:
    """Read a policy spec (see the module docstring); ``options`` (e.g. from a sweep file)
    are merged under the spec's own.

    Raises:
        ValueError: an empty name, an option that is not ``KEY=VALUE`` or an empty label.
    """
    from scenarios.loader import parse_value

    if isinstance(text, PolicySpec):
        return text if not options else PolicySpec(text.target, {**options, **text.options},
                                                    text.label, text.text)
    if not isinstance(text, str):
        raise ValueError(f"a policy spec must be text, got {type(text).__name__} {text!r}")
    target, *groups = text.strip().split("@")
    target = target.strip()
    if not target:
        raise ValueError(f"policy spec {text!r}: empty policy name")
    opts: dict[str, Any] = dict(options or {})
    label = None
    for item in (i for g in groups for i in _split_items(g)):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"policy spec {text!r}: options must be KEY=VALUE after @, got "
                             f"{item!r}")
        if key == LABEL:
            label = value.strip()
            if not label:
                raise ValueError(f"policy spec {text!r}: empty label")
        else:
            opts[key] = parse_value(value)
    if LABEL in opts:
        label = str(opts.pop(LABEL))
    return PolicySpec(target, opts, label, text)


# ---- resolving and building -------------------------------------------------------------------

def _file_module_name(path: Path) -> str:
    """A module name for a policy file, the same in every process and run (the decision cache
    and the result store key on it)."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"cfisac_user_{stem}_{digest}"


def _load_path(spec: str) -> Any:
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if path.suffix != ".py":
            raise ValueError(f"policy file {target!r} is not a .py file; give "
                             "path/to/file.py:Class or package.module:Class")
        if not path.is_file():
            raise ValueError(f"policy file {target!r} does not exist")
        mod_name = _file_module_name(path)
        if mod_name not in sys.modules:
            spec_ = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec_)
            sys.modules[mod_name] = module
            try:
                spec_.loader.exec_module(module)
            except (Exception, SystemExit) as e:   # a plug-in's sys.exit() is its failure too
                del sys.modules[mod_name]
                raise ValueError(f"policy file {target!r} cannot be loaded: "
                                 f"{type(e).__name__}: {e}") from None
        module = sys.modules[mod_name]
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise ValueError(f"cannot import policy module {target!r}: {e}") from None
        except (Exception, SystemExit) as e:
            raise ValueError(f"policy module {target!r} raises on import: "
                             f"{type(e).__name__}: {e}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {target!r} has no attribute {attr!r}") from None


def resolve(spec: str | PolicySpec) -> Callable[..., Any]:
    """The class or factory that ``spec`` names (options after ``@`` are ignored here)."""
    name = spec.target if isinstance(spec, PolicySpec) else spec.split("@", 1)[0].strip()
    if name in _REGISTRY:
        f = _REGISTRY[name]
        return _load_path(f) if isinstance(f, str) else f
    if ":" in name:
        return _load_path(name)
    eps = _entry_points()
    if name in eps:
        return eps[name].load()
    raise ValueError(f"unknown policy {name!r}; available: {', '.join(available())} "
                     "(or a 'module:Class' / 'file.py:Class' path)")


def check_options(factory: Callable[..., Any], name: str, options: dict[str, Any]) -> None:
    """Refuse options that ``factory`` (a policy class or factory, called as
    ``factory(system, **options)``) does not name, when its signature lists them all (no
    ``**options``; a :class:`~policies.base.Policy` that takes ``**options`` refuses the ones
    left over itself).

    Raises:
        UnknownOptionError: (a ``ValueError``) naming ``name``, the unknown options and the
            accepted ones.
    """
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return
    if not params or any(p.kind is p.VAR_KEYWORD for p in params):
        return
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = [p.name for p in params[1:] if p.kind in keyword]          # after the system
    unknown = set(options) - set(named)
    if unknown:
        raise unknown_options(name, unknown, named)


def make(spec: str | PolicySpec, system: System, **options: Any) -> Any:
    """Build a policy for ``system``: ``policies.make("cvx", system, rho=0.5)``; the spec's own
    ``@key=value`` options apply too (keyword ``options`` win).

    Raises:
        ValueError: an unknown policy, or an option it does not take
            (:class:`~policies.base.UnknownOptionError`, also a ``TypeError``: the message names
            the policy, the option and the accepted ones); the policy's own checks of values.
    """
    ps = parse_spec(spec)
    factory = resolve(ps.target)
    opts = {**ps.options, **options}
    check_options(factory, ps.target, opts)
    try:
        policy = factory(system, **opts)
    except UnknownOptionError as e:                   # from Policy.__init__: name it as given
        if getattr(e, "policy", None) != getattr(factory, "__name__", None):
            raise
        raise unknown_options(ps.target, e.unknown, e.accepted) from None
    if not getattr(policy, "name", None) or policy.name == "policy":
        policy.name = ps.target
    return policy
