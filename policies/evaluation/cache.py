"""A content-addressed cache of heavy policies' decisions (``cvx``, ``ns-opt``, ``cb-opt``, ...).

A convex solve takes a tenth of a second to seconds per drop and gives the same beams for the
same input, so runners keep every decision in a cache and never solve a drop twice::

    cache = DecisionCache.open()                  # runs/cache/decisions.sqlite, or $CFISAC_CACHE
    key = decision_key(policy, options, csi_one)  # csi_one: (1, L, 2, M, Q) float32
    cache.get_many([key]) / cache.put_many([(key, decision)])

The key is the SHA-256 of everything the decision depends on: the policy class and a fingerprint
of its source code (and, for the built-in convex policies, of the solver modules), the versions
of the numerical libraries, the system (``System.to_dict()``), the policy's options and solver
settings (``rho``, ``solver``, ``bisection``, ...) and the observed CSI of the drop, bit for bit
(which fixes the drop's positions and channel). Options that cannot change a finished decision
(``timeout_s``, ``warm_start``, ``device``) are left out; a decision that timed out is never
stored (it depends on the machine).

A hit returns the stored :class:`~policies.base.Decision`: the same beams, ``info`` and the
``seconds`` of the original solve (what a deployment would have waited), with
``info["cached"] = True``.

Storage: one SQLite file (stdlib ``sqlite3``, write-ahead log, busy timeout), safe for many
processes reading and writing at once. Each entry holds its payload (an ``.npz`` without pickles)
and the payload's SHA-256: a damaged entry is detected, reported once and recomputed. A file
that is not a cfisac decision cache (another database, another format version, random bytes) is
a ``ValueError`` naming the file, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from policies.base import Decision, Policy
from policies.evaluation.sqlite import WrongFile, open_versioned

#: Environment variable naming the cache file (``off`` disables the cache).
ENV = "CFISAC_CACHE"
DEFAULT_PATH = Path("runs") / "cache" / "decisions.sqlite"
FORMAT = "cfisac-decision-cache"
VERSION = "1"
#: Options that never change a finished decision; not part of the key.
IGNORED_OPTIONS = frozenset({"timeout_s", "warm_start", "device"})
#: Solver settings read from the policy object (defaults the options did not name).
SETTINGS = ("rho", "solver", "bisection", "bisection_solver", "solver_options")
#: Modules whose code the built-in convex policies' decisions depend on.
SOLVER_MODULES = ("policies.convex.policies", "policies.convex.basis", "policies.convex.ipm",
                  "policies.convex.sdp", "policies.convex.socp", "policies.classic",
                  "cfisac_env.physics.metrics")
LIBRARIES = ("numpy", "scipy", "cvxpy", "clarabel", "scs")
_SQL_VARS = 500   # keys per SELECT ... IN (...)


class CacheError(ValueError):
    """The cache file is not a cfisac decision cache (or cannot be opened)."""


def cacheable(policy: Policy) -> bool:
    """Whether ``policy``'s decisions are cached: heavy policies unless the class sets
    ``cacheable = False`` (e.g. a solver with randomness of its own)."""
    return bool(getattr(policy, "cacheable", getattr(policy, "heavy", False)))


def default_path() -> Path | None:
    """``$CFISAC_CACHE`` (None when it is ``off``/``none``/empty), else
    ``runs/cache/decisions.sqlite``."""
    env = os.environ.get(ENV)
    if env is None:
        return DEFAULT_PATH
    return None if env.strip().lower() in ("", "off", "none", "0") else Path(env)


# ---- the key ----------------------------------------------------------------------------------

def _file_hash(module: str) -> str:
    mod = sys.modules.get(module)
    if mod is None:
        import importlib

        try:
            mod = importlib.import_module(module)
        except ImportError:
            return "missing"
    path = getattr(mod, "__file__", None)
    if not path:
        return "builtin"
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


@lru_cache(maxsize=64)
def code_fingerprint(cls: type) -> str:
    """SHA-256 over the source of ``cls``'s module (plus the solver modules for the built-in
    convex policies) and the numerical libraries' versions: any change invalidates the cache."""
    mods = [cls.__module__]
    if cls.__module__.startswith("policies."):
        mods += [m for m in SOLVER_MODULES if m != cls.__module__]
    h = hashlib.sha256()
    for m in mods:
        h.update(f"{m}={_file_hash(m)};".encode())
    for lib in LIBRARIES:
        try:
            from importlib.metadata import version

            h.update(f"{lib}={version(lib)};".encode())
        except Exception:   # not installed: part of the key as such
            h.update(f"{lib}=none;".encode())
    return h.hexdigest()


def _canon(value: Any) -> Any:
    """JSON-able, order-independent form of an option value."""
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float):
        return repr(value)        # exact, and NaN/inf safe
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    return repr(value)


def settings(policy: Policy) -> dict[str, Any]:
    """Solver settings the policy object holds (see :data:`SETTINGS`)."""
    out = {}
    for name in SETTINGS:
        if hasattr(policy, name):
            out[name] = _canon(getattr(policy, name))
    return out


def decision_key(policy: Policy, options: dict[str, Any] | None, csi_one: np.ndarray) -> str:
    """The cache key of ``policy``'s decision on one drop.

    Args:
        policy: the built policy (its class, ``system`` and solver settings are read).
        options: the keyword options it was built with (those in :data:`IGNORED_OPTIONS` are
            left out).
        csi_one: ``(1, L, 2, M, Q)`` (or ``(L, 2, M, Q)``) observed CSI, hashed as float32.
    """
    cls = type(policy)
    head = {
        "format": FORMAT, "version": VERSION,
        "class": f"{cls.__module__}:{cls.__qualname__}", "code": code_fingerprint(cls),
        "system": _canon(policy.system.to_dict()),
        "options": _canon({k: v for k, v in (options or {}).items()
                           if k not in IGNORED_OPTIONS}),
        "settings": settings(policy),
    }
    x = np.ascontiguousarray(np.asarray(csi_one, dtype=np.float32).reshape(policy.system.csi_shape))
    h = hashlib.sha256(json.dumps(head, sort_keys=True).encode())
    h.update(x.tobytes())
    return h.hexdigest()


# ---- payloads ---------------------------------------------------------------------------------

def _encode(d: Decision) -> bytes:
    arrays: dict[str, np.ndarray] = {"__beams": np.asarray(d.beams, dtype=np.float32),
                                     "__seconds": np.array(float(d.seconds))}
    for k, v in d.info.items():
        if k in ("cached", "drop"):
            continue
        a = np.asarray(v)
        if a.dtype == object:
            a = np.asarray([str(e) for e in np.ravel(v)])
        arrays[f"info.{k}"] = a
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _decode(blob: bytes) -> Decision:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        info: dict[str, Any] = {}
        for k in z.files:
            if k.startswith("info."):
                a = z[k]
                info[k[5:]] = a.tolist() if a.dtype.kind == "U" else a
        info["cached"] = True
        return Decision(z["__beams"], float(z["__seconds"]), info)


# ---- the store --------------------------------------------------------------------------------

class DecisionCache:
    """SQLite-backed cache of decisions; see the module docstring.

    Args:
        path: the cache file (created with its folder when missing).

    Raises:
        CacheError: ``path`` exists but is not a cfisac decision cache of this version, or
            cannot be opened.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.hits = self.misses = self.stored = self.damaged = 0
        self._pid: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._connect()

    @classmethod
    def open(cls, path: str | Path | None = "default") -> DecisionCache | None:
        """The cache at ``path`` (``"default"``: :func:`default_path`; None: no cache)."""
        p = default_path() if path == "default" else path
        return None if p is None else cls(p)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(f"cannot create the cache folder {self.path.parent} "
                             f"({e.strerror or e}); pass another --cache PATH") from None
        try:
            conn = open_versioned(self.path, FORMAT, VERSION,
                                  "CREATE TABLE IF NOT EXISTS decisions (key TEXT PRIMARY KEY, "
                                  "payload BLOB NOT NULL, sha256 TEXT NOT NULL, created REAL)")
        except WrongFile as e:
            raise CacheError(f"{self.path} is not a cfisac decision cache of version {VERSION} "
                             f"({e}); delete it or pass another --cache PATH") from None
        self._conn, self._pid = conn, os.getpid()
        return conn

    def get_many(self, keys: Sequence[str]) -> dict[str, Decision]:
        """The stored decisions of those ``keys`` that are cached (damaged entries are left out,
        with a warning, and will be overwritten)."""
        conn = self._connect()
        out: dict[str, Decision] = {}
        uniq = list(dict.fromkeys(keys))
        for s in range(0, len(uniq), _SQL_VARS):
            part = uniq[s: s + _SQL_VARS]
            marks = ",".join("?" * len(part))
            q = f"SELECT key, payload, sha256 FROM decisions WHERE key IN ({marks})"
            for key, blob, digest in conn.execute(q, part):
                try:
                    if hashlib.sha256(blob).hexdigest() != digest:
                        raise ValueError("checksum mismatch")
                    out[key] = _decode(blob)
                except Exception as e:
                    self.damaged += 1
                    warnings.warn(f"decision cache {self.path}: damaged entry {key[:12]} "
                                  f"({type(e).__name__}: {e}); recomputing it", stacklevel=2)
        self.hits += len(out)
        self.misses += len(uniq) - len(out)
        return out

    def put_many(self, items: Iterable[tuple[str, Decision]]) -> int:
        """Store decisions (one transaction; decisions that timed out are skipped); returns how
        many were stored."""
        rows = []
        for key, d in items:
            if np.any(np.asarray(d.info.get("timeout", False))):
                continue
            blob = _encode(d)
            rows.append((key, blob, hashlib.sha256(blob).hexdigest(), time.time()))
        if rows:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self.stored += len(rows)
        return len(rows)

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM decisions").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __getstate__(self) -> dict[str, Any]:     # picklable: reconnects in the new process
        return {**self.__dict__, "_conn": None, "_pid": None}


class MemoryCache:
    """In-memory stand-in with the :class:`DecisionCache` interface: pre-filled hits in, new
    decisions collected in :attr:`new` (how sweep tasks carry cache traffic to the driver)."""

    def __init__(self, hits: dict[str, Decision] | None = None) -> None:
        self.data: dict[str, Decision] = dict(hits or {})
        self.new: list[tuple[str, Decision]] = []

    def get_many(self, keys: Sequence[str]) -> dict[str, Decision]:
        return {k: self.data[k] for k in keys if k in self.data}

    def put_many(self, items: Iterable[tuple[str, Decision]]) -> int:
        items = [(k, d) for k, d in items if not np.any(np.asarray(d.info.get("timeout", False)))]
        self.new += items
        self.data.update(items)
        return len(items)
