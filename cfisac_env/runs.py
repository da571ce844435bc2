"""Run folders and safe writes: every runner (and training) writes to ``runs/<date>-<name>/``.

- :func:`run_dir` creates the folder *before* any work and checks that it can be written, so a
  bad ``--out`` fails at once, not after hours of computing; two runs started at the same instant
  get distinct folders (the folder is claimed with an atomic ``mkdir``).
- :func:`atomic_path`, :func:`write_text` and :func:`write_json` write to a temporary file in the
  same folder and rename it into place, so Ctrl-C while writing never leaves a truncated file;
  the file gets the permissions a plain ``open`` would give (``0666`` less the umask).
- :func:`write_json` stores non-finite floats (NaN, inf) as ``null``: the files are strict JSON.
- :func:`write_failure` names the root cause of a write the OS refused (full disk, file-size
  limit) in one line; the runners exit with it instead of a traceback.
- :func:`provenance` is what a run folder's ``config.json`` records about where it was made:
  package versions, the git commit (and whether the tree had uncommitted changes) and platform.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

RUNS = Path("runs")
CHECKPOINT_CACHE = RUNS / "cache" / "checkpoints"  # checkpoints runners trained on demand


def _check_writable(path: Path) -> None:
    """Raise ``ValueError`` unless a file can be created in the folder ``path``."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"cannot write to the run folder {path} ({e.strerror or e}); "
                         "pass a writable --out DIR") from None


def run_dir(name: str, out: str | Path | None = None) -> Path:
    """Create and return the run folder: ``out`` if given, else
    ``runs/<YYYYmmdd-HHMMSS>-<name>``, numbered (``-2``, ...) when that exists already.

    The folder is created here (claimed atomically, so concurrent runs never share one) and
    checked for writing.

    Raises:
        ValueError: ``out`` is an existing file, cannot be created, or is not writable.
    """
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise ValueError(f"--out {path} is a file, not a folder; pass a folder path")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"cannot create the run folder {path} ({e.strerror or e}); "
                             "pass a writable --out DIR") from None
        _check_writable(path)
        return path
    base = RUNS / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create {base.parent}/ in {Path.cwd()} ({e.strerror or e}); "
                         "run from a writable folder or pass --out DIR") from None
    for k in range(1, 10_000):
        path = base if k == 1 else Path(f"{base}-{k}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise ValueError(f"cannot create the run folder {path} ({e.strerror or e}); "
                             "run from a writable folder or pass --out DIR") from None
        _check_writable(path)
        return path
    raise ValueError(f"too many run folders named {base}-*; pass --out DIR")


def umask() -> int:
    """The process's file-mode creation mask (read without changing it where the OS tells)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)                                 # elsewhere: set, read back, restore
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path (same folder, same suffix) to write ``path`` through; on success
    it is renamed to ``path`` (atomic on POSIX), on any exception (Ctrl-C included) removed.

    Example: ``with atomic_path(out / "bars.png") as tmp: fig.savefig(tmp)``.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}",
                               dir=path.parent)
    try:                                   # mkstemp makes 0600; a normal open follows the umask
        os.fchmod(fd, 0o666 & ~umask())
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


#: SQLite's words for a write the OS refused (the file-size limit or a full disk)
SQLITE_WRITE_ERRORS = ("disk I/O error", "database or disk is full")
_WRITE_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EFBIG: "file too large",
                 getattr(errno, "EDQUOT", -1): "disk quota exceeded"}


def write_failure(e: BaseException, path: str | Path | None = None) -> str | None:
    """One line naming the root cause when ``e`` is a write the OS refused (no space left, a
    file-size limit such as ``ulimit -f``, a quota; SQLite's "disk I/O error" among them), else
    None. ``path``: the file being written, when ``e`` does not say."""
    import resource
    import shutil
    import sqlite3

    if isinstance(e, OSError) and e.errno in _WRITE_ERRNOS:
        what = _WRITE_ERRNOS[e.errno]
    elif isinstance(e, sqlite3.Error) and any(m in str(e) for m in SQLITE_WRITE_ERRORS):
        what = f"SQLite: {e}"
    else:
        return None
    path = getattr(e, "filename", None) or path
    folder = Path(path).parent if path else Path.cwd()
    causes = []
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        causes.append(f"the file-size limit is {limit:,} bytes (ulimit -f)")
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(folder).free
        if free < 64 << 20:
            causes.append(f"the disk holding {folder} has {free:,} bytes free")
    return (f"cannot write {path or 'the results'}: {what}"
            + (f"; {' and '.join(causes)}" if causes else "")
            + "; free some space or raise the limit (finished results are kept)")


def json_safe(obj: Any) -> Any:
    """``obj`` with NumPy scalars/arrays as Python values, paths as strings and every
    non-finite float (NaN, inf) as None, so ``json.dumps(..., allow_nan=False)`` accepts it."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, strict JSON (no bare NaN: see :func:`json_safe`), atomically."""
    write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False))


#: distributions whose versions :func:`provenance` records (absent ones are ``None``)
PACKAGES = ("cfisac", "numpy", "scipy", "torch", "gymnasium", "cvxpy", "scs", "clarabel", "simpy",
            "matplotlib", "pettingzoo", "stable-baselines3", "onnx", "onnxruntime")


def _git(*args: str) -> str | None:
    """Output of ``git args`` in this source tree, or None (no git, not a checkout)."""
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance() -> dict[str, Any]:
    """Where and with what a run was made: ``{"packages": {name: version or None},
    "git": {"commit": sha or None, "dirty": bool or None}, "python": version,
    "platform": platform string, "machine": architecture, "argv": command line}``."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"packages": versions,
            "git": {"commit": commit, "dirty": None if status is None else bool(status)},
            "python": platform.python_version(), "platform": platform.platform(),
            "machine": platform.machine(), "argv": list(sys.argv)}
