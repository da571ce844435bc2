"""A content-addressed cache of heavy policies' decisions (``cvx``, ``ns-opt``, ``cb-opt``, ...).

A convex solve takes a tenth of a second to seconds per drop and gives the same beams for the
same input, so runners keep every decision in a cache and never solve a drop twice::

    cache = DecisionCache.open()                  # runs/cache/decisions.sqlite, or $CFISAC_CACHE
    key = decision_key(policy, options, csi_one)  # csi_one: (1, L, 2, M, Q) float32
    cache.get_many([key]) / cache.put_many([(key, decision)])

The key is the SHA-256 of everything the decision depends on: the policy class and a fingerprint
of its code (:func:`code_fingerprint`: its module and every module of its own package, or of its
own folder for a ``file.py`` plug-in, that it imports, directly or not; or the ``cache_version``
its author declares), the versions of the numerical libraries, the system
(``System.to_dict()``), the policy's options and solver settings (``rho``, ``solver``,
``bisection``, ...) and the observed CSI of the drop, bit for bit (which fixes the drop's
positions and channel). Options that cannot change a finished decision (``timeout_s``,
``warm_start``, ``device``) are left out; a decision that timed out or failed is never stored
(it depends on the machine).

A hit returns the stored :class:`~policies.base.Decision`: the same beams, ``info`` and the
``seconds`` of the original solve (what a deployment would have waited), with
``info["cached"] = True``.

Storage: one SQLite file (stdlib ``sqlite3``, write-ahead log, busy timeout), safe for many
processes reading and writing at once. Each entry holds its payload (an ``.npz`` without pickles)
and the SHA-256 of key and payload together: a damaged entry, or one moved under another key, is
detected, reported once and recomputed. A file that is not a cfisac decision cache (another
database, another format version, random bytes) is a ``ValueError`` naming the file, never
trusted. A cache that cannot be written (read-only file or folder, full disk) or whose pages are
damaged is reported once and the run goes on: hits still come from it where it can be read,
everything else is computed and kept in the run's results.
"""

from __future__ import annotations

import hashlib
import importlib.util
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
from policies.evaluation.sqlite import WrongFile, open_versioned, transaction

#: Environment variable naming the cache file (``off`` disables the cache).
ENV = "CFISAC_CACHE"
DEFAULT_PATH = Path("runs") / "cache" / "decisions.sqlite"
FORMAT = "cfisac-decision-cache"
VERSION = "2"
#: Older versions of this format: their entries are dropped when the file is opened.
REPLACES = {"1": "DROP TABLE IF EXISTS decisions"}
#: Options that never change a finished decision; not part of the key.
IGNORED_OPTIONS = frozenset({"timeout_s", "warm_start", "device"})
#: Solver settings read from the policy object (defaults the options did not name).
SETTINGS = ("rho", "solver", "bisection", "bisection_solver", "solver_options")
#: Packages whose code the built-in policies' decisions depend on beside their own.
CFISAC_PACKAGES = ("policies", "cfisac_env")
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

def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` (imported if needed), None when it has none."""
    mod = sys.modules.get(name)
    if mod is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        origin = getattr(spec, "origin", None) if spec is not None else None
        return Path(origin) if origin and origin.endswith(".py") else None
    path = getattr(mod, "__file__", None)
    return Path(path) if path and str(path).endswith(".py") else None


def _imports(path: Path, module: str) -> set[str]:
    """Names of the modules ``path`` (the source of ``module``) imports anywhere in its code;
    relative imports resolved, ``from a import b`` giving both ``a`` and ``a.b``."""
    import ast

    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                keep = len(parts) - (node.level - 1)
                if keep < 0:
                    continue
                base = ".".join([*parts[:keep], *([base] if base else [])])
            if base:
                out.add(base)
                out.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return out


def code_files(cls: type) -> dict[str, Path]:
    """``{module: source file}`` a policy class's decisions depend on: its own module and every
    module of the same package (for a top-level module or a ``file.py`` plug-in: of the same
    folder; for cfisac's built-ins: of :data:`CFISAC_PACKAGES`) that it imports, directly or
    through such modules."""
    first = cls.__module__
    top = first.split(".")[0]
    own = _module_file(first)
    if own is None:
        return {}
    if top in CFISAC_PACKAGES:
        tops = set(CFISAC_PACKAGES)
        roots = [_module_file(t) for t in tops]
        dirs = [r.parent for r in roots if r is not None]
    else:
        tops = {top}
        dirs = [own.parent if "." not in first else (_module_file(top) or own).parent]

    def inside(name: str, path: Path) -> bool:
        if name.split(".")[0] in tops:
            return True
        return any(path.resolve().is_relative_to(d.resolve()) for d in dirs) and \
            "site-packages" not in path.parts

    files = {first: own}
    todo = [first]
    while todo:
        name = todo.pop()
        for dep in sorted(_imports(files[name], name)):
            if dep in files:
                continue
            path = _module_file(dep)
            if path is not None and inside(dep, path):
                files[dep] = path
                todo.append(dep)
    return files


@lru_cache(maxsize=64)
def code_fingerprint(cls: type) -> str:
    """SHA-256 over what a policy class's decisions depend on: its author's ``cache_version``
    when the class declares one, else the source of every module of :func:`code_files`; plus
    the numerical libraries' versions. Any change invalidates the cache (and a sweep's stored
    rows of that policy)."""
    h = hashlib.sha256()
    declared = getattr(cls, "cache_version", None)
    if declared is not None:
        h.update(f"cache_version={declared!r};".encode())
    else:
        for name, path in sorted(code_files(cls).items()):
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                digest = "unreadable"
            h.update(f"{name}={digest};".encode())
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

def _digest(key: str, blob: bytes) -> str:
    """The checksum of an entry: SHA-256 over its key and its payload."""
    return hashlib.sha256(key.encode() + b"\0" + blob).hexdigest()


def _final(d: Decision) -> bool:
    """Whether a decision may be stored: not timed out (that depends on the machine)."""
    return not np.any(np.asarray(d.info.get("timeout", False)))


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
        self.notes: list[str] = []
        self.read_only = False
        self._pid: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._connect()

    @classmethod
    def open(cls, path: str | Path | None = "default") -> DecisionCache | None:
        """The cache at ``path`` (``"default"``: :func:`default_path`; None: no cache)."""
        p = default_path() if path == "default" else path
        return None if p is None else cls(p)

    def _note(self, text: str) -> None:
        """Report a problem once (a warning, kept in :attr:`notes`)."""
        if text not in self.notes:
            self.notes.append(text)
            warnings.warn(f"decision cache {self.path}: {text}", stacklevel=3)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self.path.is_dir():
            raise CacheError(f"{self.path} is a folder, not a cfisac decision cache file; pass "
                             "another --cache PATH")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(f"cannot create the cache folder {self.path.parent} "
                             f"({e.strerror or e}); pass another --cache PATH") from None
        writable = os.access(self.path.parent, os.W_OK) and (
            not self.path.exists() or os.access(self.path, os.W_OK))
        if not writable and self.path.exists():
            conn = self._open_read_only()
        elif not writable:
            raise CacheError(f"cannot create the cache {self.path}: its folder is not writable; "
                             "pass another --cache PATH or --no-cache")
        else:
            try:
                conn = open_versioned(self.path, FORMAT, VERSION, CREATE, REPLACES)
            except WrongFile as e:
                raise CacheError(f"{self.path} is not a cfisac decision cache of version "
                                 f"{VERSION} ({e}); delete it or pass another --cache PATH"
                                 ) from None
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _open_read_only(self) -> sqlite3.Connection:
        """A cache file this process may read but not write: hits only."""
        meta: dict[str, str] = {}
        error: Exception | None = None
        for query in ("mode=ro", "mode=ro&immutable=1"):   # immutable: no -shm can be made
            try:
                conn = sqlite3.connect(f"file:{self.path}?{query}", uri=True,
                                       isolation_level=None)
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                break
            except sqlite3.DatabaseError as e:
                error = e
        else:
            raise CacheError(f"{self.path} is not a cfisac decision cache of version {VERSION} "
                             f"({error}); delete it or pass another --cache PATH") from None
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise CacheError(f"{self.path} is not a cfisac decision cache of version {VERSION} "
                             f"(format {meta.get('format')!r}, version {meta.get('version')!r}); "
                             "delete it or pass another --cache PATH")
        self.read_only = True
        self._note("read-only: hits are used, new decisions are not stored")
        return conn

    def get_many(self, keys: Sequence[str]) -> dict[str, Decision]:
        """The stored decisions of those ``keys`` that are cached (damaged entries are left out,
        with a warning, and will be overwritten; an unreadable file gives no hits)."""
        out: dict[str, Decision] = {}
        uniq = list(dict.fromkeys(keys))
        try:
            conn = self._connect()
            for s in range(0, len(uniq), _SQL_VARS):
                part = uniq[s: s + _SQL_VARS]
                marks = ",".join("?" * len(part))
                q = f"SELECT key, payload, sha256 FROM decisions WHERE key IN ({marks})"
                for key, blob, digest in conn.execute(q, part):
                    try:
                        if _digest(key, bytes(blob)) != digest:
                            raise ValueError("checksum mismatch")
                        out[key] = _decode(bytes(blob))
                    except Exception as e:
                        self.damaged += 1
                        self._note(f"damaged entry {key[:12]} ({type(e).__name__}: {e}); "
                                   "recomputing it")
        except sqlite3.DatabaseError as e:
            self._note(f"cannot be read ({e}); recomputing its decisions")
        self.hits += len(out)
        self.misses += len(uniq) - len(out)
        return out

    def put_many(self, items: Iterable[tuple[str, Decision]]) -> int:
        """Store decisions (one transaction; decisions that timed out are skipped); returns how
        many were stored (0 when the cache cannot be written: reported once, the run goes
        on)."""
        rows = []
        for key, d in items:
            if not _final(d):
                continue
            blob = _encode(d)
            rows.append((key, blob, _digest(key, blob), time.time()))
        if not rows or self.read_only:
            return 0
        try:
            conn = self._connect()
            with transaction(conn):
                conn.executemany("INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?)", rows)
        except sqlite3.DatabaseError as e:   # read-only, full disk, damaged pages
            self._note(f"cannot be written ({e}); decisions are not stored")
            return 0
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


CREATE = ("CREATE TABLE IF NOT EXISTS decisions (key TEXT PRIMARY KEY, payload BLOB NOT NULL, "
          "sha256 TEXT NOT NULL, created REAL)")


class MemoryCache:
    """In-memory stand-in with the :class:`DecisionCache` interface: pre-filled hits in, new
    decisions collected in :attr:`new` (how sweep tasks carry cache traffic to the driver)."""

    def __init__(self, hits: dict[str, Decision] | None = None) -> None:
        self.data: dict[str, Decision] = dict(hits or {})
        self.new: list[tuple[str, Decision]] = []

    def get_many(self, keys: Sequence[str]) -> dict[str, Decision]:
        return {k: self.data[k] for k in keys if k in self.data}

    def put_many(self, items: Iterable[tuple[str, Decision]]) -> int:
        items = [(k, d) for k, d in items if _final(d)]
        self.new += items
        self.data.update(items)
        return len(items)
