"""Files the runners write: permissions follow the umask."""

import os
import stat
from pathlib import Path

import pytest

from cfisac_env import runs


@pytest.fixture
def set_umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_atomic_writes_follow_the_umask(tmp_path, set_umask, mask):
    set_umask(mask)
    runs.write_json(tmp_path / "summary.json", {"a": 1})
    runs.write_text(tmp_path / "notes.txt", "x")
    with runs.atomic_path(tmp_path / "bars.png") as tmp:
        tmp.write_bytes(b"\x89PNG")                        # as savefig does: reopen by path
    plain = tmp_path / "plain"
    plain.write_text("x")                                  # what a plain open gives
    want = stat.S_IMODE(plain.stat().st_mode)
    assert want == 0o666 & ~mask
    for name in ("summary.json", "notes.txt", "bars.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want, name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_umask_is_read_without_changing_it(set_umask):
    set_umask(0o027)
    assert runs.umask() == 0o027
    assert runs.umask() == 0o027


# ---- writes the OS refuses: one line naming the root cause -----------------------------------

def test_write_failure_names_the_root_cause(tmp_path, monkeypatch):
    import errno
    import shutil
    import sqlite3
    from collections import namedtuple

    assert runs.write_failure(ValueError("x")) is None
    assert runs.write_failure(OSError(errno.ENOENT, "No such file")) is None
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "summary.json"))
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9, 0))
    msg = runs.write_failure(full)
    assert "summary.json" in msg and "no space left" in msg and "0 bytes free" in msg
    masked = sqlite3.OperationalError("database or disk is full")
    msg = runs.write_failure(masked, tmp_path / "results.sqlite")
    assert "results.sqlite" in msg and "disk is full" in msg and "\n" not in msg


SIZE_CAP = """
import resource, runpy, sys
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _capped(cap: int, *argv: str):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    return subprocess.run([sys.executable, "-c", SIZE_CAP, str(cap), *argv],
                          capture_output=True, text=True, cwd=root, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("cap, runner, extra", [
    (3000, "runners/compare.py", ["--policy", "mrt-target", "--policy", "ns-rzf",
                                  "--drops", "40"]),
    (20000, "runners/sweep.py", ["--scenario", "pos2", "--users", "2", "--policy",
                                 "mrt-target", "--drops", "50", "--jobs", "1"]),
    (200000, "runners/sweep.py", ["--scenario", "pos2", "--users", "2", "--policy",
                                  "mrt-target", "--policy", "ns-rzf", "--drops", "3000",
                                  "--chunk", "100", "--jobs", "1"]),     # full mid-run
])
def test_a_file_size_limit_ends_in_one_line_naming_it(tmp_path, cap, runner, extra):
    from tests.policies.evaluation.reliability_tools import one_line_error

    done = _capped(cap, runner, *extra, "--no-cache", "--quiet", "--out", str(tmp_path / "o"))
    assert done.returncode in (1, 2), done.stderr[-3000:]
    assert one_line_error(done.stderr), done.stderr[-3000:]
    assert "ulimit -f" in done.stderr and "cannot rollback" not in done.stderr
