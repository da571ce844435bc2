"""Helpers for the reliability and fuzzing tests: a hard time limit, test policies that sleep or
raise Ctrl-C, and runner subprocesses interrupted with a real SIGINT.

Not a test module (pytest collects only ``test_*.py``); the policies are referenced by file path
(``f"{TOOLS}:Sleepy"``) so runner subprocesses can load them too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from policies.base import Policy

ROOT = Path(__file__).resolve().parents[3]
TOOLS = str(Path(__file__).resolve())
MARKER_ENV = "CFISAC_TEST_MARKER"


class Hang(BaseException):
    """Raised by :func:`time_limit` (a BaseException so that no ``except Exception`` in the code
    under test swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail with :class:`Hang` if the block runs longer than ``seconds`` (SIGALRM; main thread,
    POSIX). Pure-Python loops are interrupted; a hang inside C code is caught on its return."""
    def on_alarm(signum, frame):
        raise Hang(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _aim_at_target(policy: Policy, csi: np.ndarray) -> np.ndarray:
    w = np.zeros_like(csi)
    w[..., -1] = csi[..., -1] * np.sqrt(policy.system.P.min() / policy.system.M)
    return w


class Sleepy(Policy):
    """Central test policy: all power on the target beam, ``0.05 s`` per call; its first call
    creates the file named by ``$CFISAC_TEST_MARKER`` (so a test knows the work has begun)."""

    name = "sleepy"
    delay = 0.05

    def act_batch(self, csi: np.ndarray) -> np.ndarray:
        marker = os.environ.get(MARKER_ENV)
        if marker and not os.path.exists(marker):
            Path(marker).touch()
        time.sleep(self.delay)
        return _aim_at_target(self, csi)


class CtrlC(Policy):
    """Central test policy that acts like :class:`Sleepy` but raises KeyboardInterrupt (as
    Ctrl-C would) on its third call."""

    name = "ctrl-c"
    calls = 0

    def act_batch(self, csi: np.ndarray) -> np.ndarray:
        CtrlC.calls += 1
        if CtrlC.calls == 3:
            raise KeyboardInterrupt
        return _aim_at_target(self, csi)


class Broken(Policy):
    """Fails on every drop."""

    name = "broken"

    def act_batch(self, csi: np.ndarray) -> np.ndarray:
        raise RuntimeError("boom")


class Unbuildable(Policy):
    """Cannot even be constructed (as a policy with a corrupt resource)."""

    def __init__(self, system, **options) -> None:
        raise RuntimeError("cannot build: resource is corrupt")


def runner_cmd(runner: str, *args: str) -> list[str]:
    """The command line of ``runners/<runner>.py`` with ``args``."""
    return [sys.executable, str(ROOT / "runners" / f"{runner}.py"), *args]


def interrupt_when_started(cmd: list[str], marker: Path, cwd: Path, start_timeout: float = 60.0,
                           after: float = 0.3, exit_timeout: float = 60.0
                           ) -> subprocess.CompletedProcess:
    """Run ``cmd``; once ``marker`` exists (the work has begun) wait ``after`` s, send one
    SIGINT (Ctrl-C) and wait for the process to end. Kills it (and fails) if it does not."""
    env = {**os.environ, MARKER_ENV: str(marker), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not marker.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"ended before its work began (rc {proc.returncode}):\n"
                                     f"{err[-2000:]}")
            if time.monotonic() - t0 > start_timeout:
                raise AssertionError("the work did not begin in time")
            time.sleep(0.05)
        time.sleep(after)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=exit_timeout)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def strict_json(path: Path) -> object:
    """Parse ``path`` as strict JSON: a bare ``NaN``/``Infinity`` fails the test."""
    def reject(token: str) -> None:
        raise AssertionError(f"{path.name} holds a bare {token} (not JSON)")

    return json.loads(path.read_text(), parse_constant=reject)


def one_line_error(err: str) -> bool:
    """True when stderr is exactly one line ``error: ...`` and no traceback."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err
