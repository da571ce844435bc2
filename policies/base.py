"""The Policy protocol: CSI in, beams out, in the ``(L, 2, M, Q)`` layout (docs/system.md).

A policy is a class constructed as ``Cls(system, **options)`` with

- ``act(csi)``: ``(L, 2, M, Q)`` or ``(B, L, 2, M, Q)`` float32 -> beams of the same shape,
  each AP within its budget ``sum_q ||w_lq||^2 <= P_l``;
- ``distributed``: True when AP ``l``'s beams depend only on AP ``l``'s CSI. Such a policy
  implements ``act_ap(l, csi_l)`` and its compute time per decision is the slowest AP's own time
  (the APs run in parallel); a central policy implements ``act_batch`` and is timed as a whole;
- ``last_info``: diagnostics of the latest call (e.g. ``{"fallback": (B,) bool}``), may be empty;
- ``heavy``: True for solvers that take seconds per drop; runners score them on a common subset of
  the drops (in a process pool) and everything else on all drops.

Subclass :class:`Policy` (central) or :class:`DistributedPolicy`; :meth:`Policy.decide` measures
compute time the same way for every policy.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cfisac_env.physics.system import System


@dataclass
class Decision:
    """One timed call: ``beams (B, L, 2, M, Q)``, ``seconds`` of compute per decision as a
    deployment would wait (slowest AP for distributed policies, whole call for central ones),
    and the policy's ``info``."""

    beams: np.ndarray
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


def _as_csi(csi: object) -> np.ndarray:
    """``csi`` as float32 without silent loss: complex, boolean or non-numeric input (which
    ``astype`` would cast, dropping the imaginary part) is a ``ValueError``."""
    raw = np.asarray(csi)
    if np.iscomplexobj(raw):
        raise ValueError("csi must be real float32 in the (L, 2, M, Q) layout (axis -3 = real, "
                         f"imag), got complex dtype {raw.dtype}; stack np.real and np.imag "
                         "on axis -3")
    if raw.dtype == bool or not np.issubdtype(raw.dtype, np.number):
        raise ValueError(f"csi must be real floats in the (L, 2, M, Q) layout, got dtype "
                         f"{raw.dtype}")
    with np.errstate(over="ignore"):
        return raw.astype(np.float32, copy=False)


class UnknownOptionError(ValueError, TypeError):
    """An option a policy does not take. A ``ValueError`` (a user mistake); also a
    ``TypeError``, what Python raises for an unexpected keyword, for code that catches that.
    ``policy``, ``unknown`` and ``accepted`` hold what the message says."""


def unknown_options(policy: str, unknown: Iterable[str], accepted: Iterable[str] | None
                    ) -> UnknownOptionError:
    """The error for ``unknown`` options given to ``policy`` (``accepted``: the options it
    takes, None when they cannot be read)."""
    unknown, known = sorted(unknown), None if accepted is None else sorted(accepted)
    names = ", ".join(map(repr, unknown))
    msg = f"policy {policy!r}: unknown option{'s' if len(unknown) > 1 else ''} {names}; "
    if known is None:
        msg += "see the policy's docstring for the options it takes"
    elif known:
        msg += f"accepted options: {', '.join(known)}"
    else:
        msg += "it takes no options: remove it"
    err = UnknownOptionError(msg)
    err.policy, err.unknown, err.accepted = policy, unknown, known
    return err


#: ``options.pop("rho", ...)`` and the like in a constructor that takes ``**options``
_OPTION_READ = re.compile(
    r"""\b(?:options|opts|kwargs)\.(?:pop|get|setdefault)\(\s*["'](\w+)["']""")


def accepted_options(factory: Any) -> list[str] | None:
    """The option names a policy class (or factory) takes, for messages: the keyword
    parameters of its constructors and, for one that takes ``**options``, the keys its classes
    read from them (``options.pop("rho", 0.5)``, found in their source). None when neither can
    be read."""
    names: set[str] = set()
    found = False
    is_class = isinstance(factory, type)
    classes = [c for c in factory.__mro__ if c.__module__ not in (__name__, "builtins")] \
        if is_class else [factory]
    for c in classes:
        init = c.__dict__.get("__init__") if is_class else c
        if init is not None:
            try:
                params = list(inspect.signature(init).parameters.values())
            except (TypeError, ValueError):
                params = []
            found = found or bool(params)
            keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            # after (self,) system: the options
            names |= {q.name for q in params[2 if is_class else 1:] if q.kind in keyword}
        try:
            source = inspect.getsource(c)
        except (OSError, TypeError):
            continue
        found = True
        names |= set(_OPTION_READ.findall(source))
    return sorted(names) if found else None


class Policy:
    """Base class of central policies: override :meth:`act_batch`."""

    name: str = "policy"
    distributed: bool = False
    heavy: bool = False

    def __init__(self, system: System, **options: Any) -> None:
        if options:
            raise unknown_options(type(self).__name__, options, accepted_options(type(self)))
        self.system = system
        self.last_info: dict[str, Any] = {}

    def act_batch(self, csi: np.ndarray) -> np.ndarray:
        """``csi (B, L, 2, M, Q) float32`` -> ``beams (B, L, 2, M, Q) float32``."""
        raise NotImplementedError

    def act(self, csi: np.ndarray) -> np.ndarray:
        """Beams for one drop ``(L, 2, M, Q)`` or a batch ``(B, L, 2, M, Q)`` (same shape out)."""
        x = _as_csi(csi)
        single = x.ndim == 4
        if x.shape[-4:] != self.system.csi_shape or x.ndim not in (4, 5):
            raise ValueError(f"csi must have shape (L, 2, M, Q) = {self.system.csi_shape} or "
                             f"(B, L, 2, M, Q), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("csi contains NaN or inf; expected finite float32 (L, 2, M, Q)")
        out = self.act_batch(x[None] if single else x)
        return out[0] if single else out

    def decide(self, csi: np.ndarray) -> Decision:
        """Timed :meth:`act` on ``(B, L, 2, M, Q)``; ``seconds`` is the whole call."""
        t0 = time.perf_counter()
        beams = self.act_batch(np.asarray(csi, dtype=np.float32))
        return Decision(beams, time.perf_counter() - t0, dict(self.last_info))

    @property
    def timing(self) -> str:
        """How :meth:`decide` counts compute time (shown in runner tables)."""
        return "slowest AP" if self.distributed else "central"

    def fronthaul(self) -> int:
        """Complex values exchanged between the APs and the central unit per decision:
        a central policy gathers every AP's CSI and returns every AP's beams, ``2 L M Q``."""
        s = self.system
        return 0 if self.distributed else 2 * s.L * s.M * s.Q


class DistributedPolicy(Policy):
    """Base class of distributed policies: override :meth:`act_ap` (AP ``l`` sees only
    ``csi[:, l]``)."""

    distributed = True

    def act_ap(self, l: int, csi_l: np.ndarray) -> np.ndarray:
        """AP ``l``'s beams from its own CSI: ``(B, 2, M, Q)`` -> ``(B, 2, M, Q)``."""
        raise NotImplementedError

    def act_batch(self, csi: np.ndarray) -> np.ndarray:
        return np.stack([self.act_ap(l, csi[:, l]) for l in range(self.system.L)], axis=1)

    def decide(self, csi: np.ndarray) -> Decision:
        """Timed per AP; ``seconds`` is the slowest AP's own time."""
        x = np.asarray(csi, dtype=np.float32)
        beams, times = [], []
        for l in range(self.system.L):
            t0 = time.perf_counter()
            beams.append(self.act_ap(l, x[:, l]))
            times.append(time.perf_counter() - t0)
        return Decision(np.stack(beams, axis=1), max(times), dict(self.last_info))
