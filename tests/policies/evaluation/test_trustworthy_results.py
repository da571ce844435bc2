"""Results a user can trust: no stale or swapped numbers, no lost work, no hang, one outcome per
drop whatever ``--jobs`` is. Each test is a defect found by trying to break the engine:

- stale rows and decisions: a changed plug-in (or a module it imports) is never answered from the
  result store or the decision cache; a ``file.py`` plug-in hits the cache in the next run; an
  entry moved under another key is refused; errored drops are retried on resume;
- lost work: ``sys.exit`` in a policy, a worker that dies, a policy that fails on one drop with
  any ``--jobs``, a damaged cache, a run that scored nothing, solves lost to kill -9;
- hangs and leaks: Ctrl-C during a solve that never returns, ``timeout_s`` for any heavy policy,
  workers outliving a killed driver; Ctrl-C right after a COMMIT;
- ``--frontier`` with a plug-in given as a file.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import scenarios
from policies.base import Decision
from policies.evaluation.cache import DecisionCache
from policies.evaluation.evaluate import Drops
from policies.evaluation.store import ResultStore
from runners import compare, sweep
from tests.policies.evaluation.reliability_tools import (
    MARKER_ENV,
    ROOT,
    interrupt_when_started,
    runner_cmd,
    strict_json,
)

SMALL = ["--scenario", "pos2", "--users", "2", "--quiet"]

PLUGIN_HEAD = '''
import os, sys, time
from pathlib import Path
import numpy as np
from policies.base import DistributedPolicy, Policy


def aim(policy, csi, split):
    """All power of each AP: ``split`` on the target beam, the rest on the UEs' beams."""
    w = np.array(csi, dtype=np.float32)
    n = np.sqrt((w ** 2).sum(axis=(-3, -2), keepdims=True)) + 1e-12
    w = w / n
    w[..., -1] *= np.sqrt(split)
    w[..., :-1] *= np.sqrt((1 - split) / (w.shape[-1] - 1))
    return w * np.sqrt(policy.system.P.min())


def touch_marker():
    marker = os.environ.get("CFISAC_TEST_MARKER")
    if marker and not os.path.exists(marker):
        Path(marker).touch()
'''


def plugin(folder: Path, name: str, body: str) -> str:
    """Write ``folder/name.py`` (the common head, then ``body``); returns its path."""
    path = folder / f"{name}.py"
    path.write_text(PLUGIN_HEAD + textwrap.dedent(body))
    return str(path)


def run(runner: str, *args: str, cwd: Path, env: dict | None = None, timeout: float = 240
        ) -> subprocess.CompletedProcess:
    """``runners/<runner>.py args`` in a fresh process (so edited plug-ins are re-imported)."""
    e = {**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{ROOT}", **(env or {})}
    return subprocess.run(runner_cmd(runner, *args), cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=timeout)


def start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    """Start ``cmd`` in ``cwd`` and return once its policy has begun work (the marker)."""
    marker = cwd / "started"
    env = {**os.environ, MARKER_ENV: str(marker), "PYTHONPATH": f"{cwd}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while not marker.exists() and time.monotonic() - t0 < 60 and proc.poll() is None:
        time.sleep(0.05)
    return proc


def drops_csv(out: Path, name: str = "drops.csv") -> list[dict[str, str]]:
    with open(out / name, newline="") as f:
        return list(csv.DictReader(f))


def first_value(drop: int, users: int = 2, n: int = 6) -> float:
    """``csi[0, 0, 1, 0]`` (AP 0, real part, antenna 1, UE 0) of drop ``drop`` of pos2 (seed 0,
    ``n`` drops): a plug-in keys on it."""
    sc = scenarios.load("pos2", users=users)
    return float(Drops.sample(sc, n, 0).csi[drop, 0, 0, 1, 0])


# ---- numbers that can be stale or swapped -------------------------------------------------------

@pytest.mark.slow
def test_sweep_resume_does_not_reuse_rows_of_changed_plugin_code(tmp_path):
    code = '''
    SPLIT = {split}
    class Ver(DistributedPolicy):
        def act_ap(self, l, csi_l):
            return aim(self, csi_l[:, None], SPLIT)[:, 0]
    '''
    spec = plugin(tmp_path, "ver", code.format(split=0.9)) + ":Ver"
    args = ["--scenario", "pos2", "--users", "2", "--policy", spec, "--drops", "2", "--jobs",
            "1", "--no-cache", "--quiet"]
    assert run("sweep", *args, "--out", "d", cwd=tmp_path).returncode == 0
    plugin(tmp_path, "ver", code.format(split=0.1))
    again = run("sweep", *args, "--out", "d", cwd=tmp_path)
    fresh = run("sweep", *args, "--out", "f", cwd=tmp_path)
    assert again.returncode == fresh.returncode == 0
    ssnr = [[float(r["ssnr"]) for r in drops_csv(tmp_path / d, "results.csv")] for d in "df"]
    assert ssnr[0] == ssnr[1]


@pytest.mark.slow
def test_decision_cache_covers_the_modules_a_plugin_imports(tmp_path):
    (tmp_path / "helper.py").write_text("SPLIT = 0.9\n")
    plugin(tmp_path, "heavyplug", '''
    import helper
    class Heavy(Policy):
        heavy = True
        def act_batch(self, csi):
            return aim(self, csi, helper.SPLIT)
    ''')
    spec = "heavyplug:Heavy"                      # a module on the path (a file is keyed apart)
    args = [*SMALL, "--policy", spec, "--drops", "2", "--heavy-drops", "2", "--jobs", "1",
            "--cache", "c.sqlite"]
    assert run("compare", *args, "--out", "a", cwd=tmp_path).returncode == 0
    (tmp_path / "helper.py").write_text("SPLIT = 0.1\n")
    assert run("compare", *args, "--out", "b", cwd=tmp_path).returncode == 0
    a, b = drops_csv(tmp_path / "a"), drops_csv(tmp_path / "b")
    assert [r["cached"] for r in b] == ["0", "0"]
    assert float(b[0]["ssnr"]) < float(a[0]["ssnr"])


@pytest.mark.slow
def test_a_file_plugin_hits_the_cache_in_the_next_run(tmp_path):
    spec = plugin(tmp_path, "heavyfile", '''
    class Heavy(Policy):
        heavy = True
        def act_batch(self, csi):
            return aim(self, csi, 0.5)
    ''') + ":Heavy"
    args = [*SMALL, "--policy", spec, "--drops", "3", "--heavy-drops", "3", "--jobs", "1",
            "--cache", "c.sqlite"]
    assert run("compare", *args, "--out", "a", cwd=tmp_path).returncode == 0
    assert run("compare", *args, "--out", "b", cwd=tmp_path).returncode == 0
    assert [r["cached"] for r in drops_csv(tmp_path / "b")] == ["1", "1", "1"]
    assert len(DecisionCache(tmp_path / "c.sqlite")) == 3


def test_a_cache_entry_moved_under_another_key_is_refused(tmp_path):
    cache = DecisionCache(tmp_path / "c.sqlite")
    a = Decision(np.ones((1, 2, 2, 4, 3), np.float32), 0.1, {})
    b = Decision(np.zeros((1, 2, 2, 4, 3), np.float32), 0.2, {})
    cache.put_many([("key-a", a), ("key-b", b)])
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    rows = dict((k, (p, s)) for k, p, s in conn.execute(
        "SELECT key, payload, sha256 FROM decisions"))
    with conn:
        for key, other in (("key-a", "key-b"), ("key-b", "key-a")):
            conn.execute("UPDATE decisions SET payload = ?, sha256 = ? WHERE key = ?",
                         (*rows[other], key))
    conn.close()
    with pytest.warns(UserWarning, match="damaged"):
        hits = DecisionCache(tmp_path / "c.sqlite").get_many(["key-a", "key-b"])
    assert hits == {}


def test_errored_drops_are_not_final_and_a_rerun_retries_them(tmp_path):
    flag = tmp_path / "fail-now"
    flag.touch()
    spec = plugin(tmp_path, "flaky", f'''
    class Flaky(DistributedPolicy):
        def act_ap(self, l, csi_l):
            if os.path.exists({str(flag)!r}):
                raise RuntimeError("transient failure")
            return aim(self, csi_l[:, None], 0.5)[:, 0]
    ''') + ":Flaky"
    args = ["--scenario", "pos2", "--users", "2", "--policy", spec, "--drops", "2", "--jobs",
            "1", "--no-cache", "--quiet", "--out", str(tmp_path / "d")]
    sweep.main(args)
    first = drops_csv(tmp_path / "d", "results.csv")
    assert all(r["error"] for r in first)
    flag.unlink()
    assert sweep.main(args) == 0
    again = drops_csv(tmp_path / "d", "results.csv")
    assert [r["error"] for r in again] == ["", ""]
    assert all(np.isfinite(float(r["ssnr"])) for r in again)


# ---- lost work, or success reported for failed work ---------------------------------------------

def test_sys_exit_inside_a_policy_is_that_drops_error(tmp_path, capsys):
    spec = plugin(tmp_path, "exiter", '''
    class Exiter(DistributedPolicy):
        name = "exiter"
        def act_ap(self, l, csi_l):
            sys.exit(0)
    ''') + ":Exiter"
    out = tmp_path / "run"
    rc = compare.main([*SMALL, "--policy", "ns-rzf", "--policy", spec, "--drops", "3",
                       "--no-cache", "--out", str(out)])
    assert rc == 0
    rows = {r["policy"]: r for r in strict_json(out / "summary.json")["policies"]}
    assert rows["ns-rzf"]["drops"] == 3 and rows["ns-rzf"]["errors"] == 0
    assert rows["exiter"]["errors"] == 3


FAIL_ON_ONE = '''
V = {value!r}
class OneBad(Policy):
    heavy = True
    name = "one-bad"
    def act_batch(self, csi):
        touch_marker()
        if abs(float(csi[0, 0, 0, 1, 0]) - V) < 1e-7:
            {action}
        return aim(self, csi, 0.5)
'''


@pytest.mark.parametrize("action", ["raise RuntimeError('bad drop')", "os._exit(1)"])
def test_compare_outcome_of_a_drop_does_not_depend_on_jobs(tmp_path, action):
    spec = plugin(tmp_path, "onebad", FAIL_ON_ONE.format(value=first_value(3),
                                                         action=action)) + ":OneBad"
    rows = {}
    for jobs in ("1", "2") if "raise" in action else ("2",):
        out = tmp_path / f"j{jobs}"
        rc = compare.main([*SMALL, "--policy", spec, "--drops", "6", "--heavy-drops", "6",
                           "--jobs", jobs, "--no-cache", "--out", str(out)])
        assert rc == 0
        summary = strict_json(out / "summary.json")
        assert summary["failed"] == {}
        rows[jobs] = summary["policies"][0]
        assert rows[jobs]["drops"] == 6 and rows[jobs]["errors"] == 1
        assert "drop 3" in summary["errors"]["one-bad"][0]
    if len(rows) == 2:
        assert rows["1"]["ssnr"] == rows["2"]["ssnr"]


@pytest.mark.slow
def test_sweep_worker_that_dies_on_one_drop_is_one_failed_row(tmp_path):
    spec = plugin(tmp_path, "onebad", FAIL_ON_ONE.format(value=first_value(3),
                                                         action="os._exit(1)")) + ":OneBad"
    args = ["--scenario", "pos2", "--users", "2", "--policy", spec, "--drops", "6", "--jobs",
            "2", "--chunk", "1", "--no-cache", "--quiet", "--out", "d"]
    done = run("sweep", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = drops_csv(tmp_path / "d", "results.csv")
    assert [bool(r["error"]) for r in rows] == [False, False, False, True, False, False]
    assert "died" in rows[3]["error"]


def _damage_decisions(path: Path) -> None:
    """Overwrite every page after the first two (the schema and the meta table) with garbage."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 3 * page
    for i in range(2 * page, len(data)):
        data[i] = (7 * i + 3) & 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_cache_is_recomputed_not_a_failed_policy(tmp_path):
    cache = tmp_path / "c.sqlite"
    args = [*SMALL, "--policy", "cvx", "--drops", "3", "--heavy-drops", "3", "--jobs", "1",
            "--cache", str(cache)]
    assert compare.main([*args, "--out", str(tmp_path / "a")]) == 0
    _damage_decisions(cache)
    with pytest.warns(UserWarning):
        rc = compare.main([*args, "--out", str(tmp_path / "b")])
    assert rc == 0
    b = strict_json(tmp_path / "b" / "summary.json")
    assert b["failed"] == {} and b["policies"][0]["drops"] == 3
    a = drops_csv(tmp_path / "a")
    assert [r["ssnr"] for r in drops_csv(tmp_path / "b")] == [r["ssnr"] for r in a]


def test_exit_1_when_nothing_has_a_finite_result(tmp_path):
    from tests.policies.evaluation.reliability_tools import TOOLS

    out = tmp_path / "c"
    assert compare.main([*SMALL, "--policy", f"{TOOLS}:Broken", "--drops", "2", "--no-cache",
                         "--out", str(out)]) == 1
    assert strict_json(out / "summary.json")["errors"]
    assert sweep.main(["--scenario", "pos2", "--users", "2", "--policy", f"{TOOLS}:Broken",
                       "--drops", "2", "--jobs", "1", "--no-cache", "--quiet", "--out",
                       str(tmp_path / "s")]) == 1


SLOW_HEAVY = '''
class SlowHeavy(Policy):
    heavy = True
    name = "slow-heavy"
    def act_batch(self, csi):
        touch_marker()
        time.sleep({seconds})
        return aim(self, csi, 0.5)
'''


@pytest.mark.slow
def test_pooled_solves_are_cached_as_they_finish(tmp_path):
    spec = plugin(tmp_path, "slowheavy", SLOW_HEAVY.format(seconds=0.5)) + ":SlowHeavy"
    proc = start(runner_cmd("compare", *SMALL, "--policy", spec, "--drops", "40",
                            "--heavy-drops", "40", "--jobs", "2", "--cache", "c.sqlite", "--out",
                            "run"), tmp_path)
    try:
        time.sleep(3.0)
    finally:
        proc.kill()
        proc.wait()
    assert len(DecisionCache(tmp_path / "c.sqlite")) >= 2


# ---- hangs and leaks -----------------------------------------------------------------------------

@pytest.mark.slow
def test_ctrl_c_during_a_pooled_solve_that_never_returns_exits(tmp_path):
    spec = plugin(tmp_path, "forever", SLOW_HEAVY.format(seconds=10_000)) + ":SlowHeavy"
    t0 = time.monotonic()
    done = interrupt_when_started(runner_cmd("compare", *SMALL, "--policy", "ns-rzf", "--policy",
                                             spec, "--drops", "4", "--jobs", "2", "--no-cache",
                                             "--out", str(tmp_path / "run")),
                                  tmp_path / "started", cwd=tmp_path, after=1.0,
                                  exit_timeout=30.0)
    assert done.returncode == 130, done.stderr[-2000:]
    assert time.monotonic() - t0 < 60
    names = [r["policy"] for r in strict_json(tmp_path / "run" / "summary.json")["policies"]]
    assert names == ["ns-rzf"]


def test_timeout_s_bounds_any_heavy_policy(tmp_path):
    spec = plugin(tmp_path, "hang", SLOW_HEAVY.format(seconds=10_000)) + ":SlowHeavy"
    out = tmp_path / "run"
    t0 = time.monotonic()
    rc = compare.main([*SMALL, "--policy", "ns-rzf", "--policy", f"{spec}@timeout_s=1",
                       "--drops", "2", "--heavy-drops", "2", "--jobs", "1", "--no-cache",
                       "--out", str(out)])
    assert time.monotonic() - t0 < 45
    assert rc == 0
    summary = strict_json(out / "summary.json")
    errors = summary["errors"]["slow-heavy[timeout_s=1]"]
    assert len(errors) == 2 and all("TimeoutError" in e for e in errors)


@pytest.mark.slow
def test_timeout_s_bounds_a_heavy_policy_in_a_sweep(tmp_path):
    spec = plugin(tmp_path, "hang", SLOW_HEAVY.format(seconds=10_000)) + ":SlowHeavy"
    out = tmp_path / "run"
    t0 = time.monotonic()
    rc = sweep.main(["--scenario", "pos2", "--users", "2", "--policy", "ns-rzf", "--policy",
                     f"{spec}@timeout_s=1", "--drops", "2", "--jobs", "1", "--no-cache",
                     "--quiet", "--out", str(out)])
    assert time.monotonic() - t0 < 90
    assert rc == 0
    rows = [r for r in drops_csv(out, "results.csv") if r["policy"] != "ns-rzf"]
    assert len(rows) == 2 and all("TimeoutError" in r["error"] for r in rows)


@pytest.mark.slow
def test_killing_the_driver_ends_its_workers(tmp_path):
    psutil = pytest.importorskip("psutil")
    spec = plugin(tmp_path, "forever", SLOW_HEAVY.format(seconds=10_000)) + ":SlowHeavy"
    proc = start(runner_cmd("compare", *SMALL, "--policy", spec, "--drops", "4", "--jobs", "2",
                            "--no-cache", "--out", "run"), tmp_path)
    try:
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert workers
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=10)
    for p in alive:
        p.kill()
    assert alive == []


class _CommitThenCtrlC:
    """A connection whose COMMIT goes through and is then interrupted (Ctrl-C at that
    instant)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, *args):
        out = self.conn.execute(sql, *args)
        if sql.strip().upper() == "COMMIT":
            raise KeyboardInterrupt
        return out

    def __getattr__(self, name: str):
        return getattr(self.conn, name)


def test_ctrl_c_right_after_a_commit_is_a_ctrl_c(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store._conn = _CommitThenCtrlC(store._connect())
    row = {"cell": "c", "drop": 0, "ssnr": 1.0, "error": ""}
    with pytest.raises(KeyboardInterrupt):
        store.add([row])
    assert ResultStore(tmp_path / "r.sqlite").finished("c") == {0}     # it was committed


# ---- found in ordinary use ----------------------------------------------------------------------

def test_frontier_with_a_plugin_given_as_a_file(tmp_path):
    out = tmp_path / "run"
    rc = compare.main([*SMALL, "--policy", "cvx", "--policy",
                       str(ROOT / "examples" / "power_split_mrt.py") + ":PowerSplitMRT",
                       "--drops", "3", "--heavy-drops", "2", "--frontier", "--jobs", "1",
                       "--no-cache", "--out", str(out)])
    assert rc == 0
    rows = {r["policy"]: r for r in json.loads((out / "summary.json").read_text())["policies"]}
    assert 0 < rows["power-split-mrt"]["frontier_efficiency"] <= 1.01
    assert rows["power-split-mrt"]["frontier_drops"] == 2


def test_row_names_are_the_same_in_every_runner_output(tmp_path):
    """One spec, one row name: compare's table, CSV and JSON, sweep's and stress's."""
    spec = str(ROOT / "examples" / "power_split_mrt.py") + ":PowerSplitMRT@split=0.3"
    assert compare.main([*SMALL, "--policy", spec, "--drops", "2", "--no-cache", "--out",
                         str(tmp_path / "c")]) == 0
    assert sweep.main(["--scenario", "pos2", "--users", "2", "--policy", spec, "--drops", "2",
                       "--jobs", "1", "--no-cache", "--quiet", "--out", str(tmp_path / "s")]) == 0
    want = "power-split-mrt[split=0.3]"
    assert {r["policy"] for r in drops_csv(tmp_path / "c")} == {want}
    assert [r["policy"] for r in strict_json(tmp_path / "c" / "summary.json")["policies"]] == \
        [want]
    assert {r["policy"] for r in drops_csv(tmp_path / "s", "results.csv")} == {want}
    assert {r["policy"] for r in drops_csv(tmp_path / "s", "summary.csv")} == {want}
    labelled = compare.main([*SMALL, "--policy", f"{spec}@label=mine", "--policy", "ns-rzf",
                             "--drops", "2", "--no-cache", "--out", str(tmp_path / "l")])
    assert labelled == 0
    assert {r["policy"] for r in drops_csv(tmp_path / "l")} == {"mine", "ns-rzf"}


def test_a_read_only_cache_gives_its_hits_and_keeps_every_row(tmp_path, monkeypatch):
    cache = tmp_path / "c.sqlite"
    args = [*SMALL, "--policy", "cvx", "--drops", "3", "--jobs", "1", "--cache", str(cache)]
    assert compare.main([*args, "--heavy-drops", "2", "--out", str(tmp_path / "a")]) == 0
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if mode & os.W_OK and
                        str(p) in (str(cache), str(cache.parent)) else real(p, mode, *a, **k))
    with pytest.warns(UserWarning, match="read-only"):
        rc = compare.main([*args, "--heavy-drops", "3", "--out", str(tmp_path / "b")])
    assert rc == 0
    b = drops_csv(tmp_path / "b")
    assert [r["cached"] for r in b] == ["1", "1", "0"]          # 2 hits, 1 solved, none stored
    monkeypatch.undo()
    assert len(DecisionCache(cache)) == 2


def test_config_records_the_checkpoint_file_of_each_learned_policy(tmp_path):
    import hashlib

    out = tmp_path / "run"
    assert compare.main([*SMALL[:2], "--users", "8", "--quiet", "--policy", "student",
                         "--drops", "2", "--no-train", "--no-cache", "--out", str(out)]) == 0
    rec = strict_json(out / "config.json")["checkpoints"]["student"]
    assert Path(rec["path"]).name == "pos2-span-attn.pt"         # the any-N student of pos2
    assert rec["sha256"] == hashlib.sha256(Path(rec["path"]).read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_solver_with_state_gives_the_same_numbers_with_any_jobs(tmp_path):
    """ns-opt keeps solver state between calls (warm starts): each drop is decided by a new
    instance, so serial, pooled and swept numbers agree bit for bit."""
    args = ["--scenario", "pos2", "--users", "8", "--quiet", "--policy", "ns-opt", "--drops",
            "4", "--no-cache"]
    got = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"j{jobs}"
        assert compare.main([*args, "--heavy-drops", "4", "--jobs", jobs, "--out", str(out)]) == 0
        got[jobs] = [(r["ssnr"], r["min_sinr"]) for r in drops_csv(out)]
    assert sweep.main([*args, "--jobs", "1", "--out", str(tmp_path / "s")]) == 0
    swept = [(r["ssnr"], r["min_sinr"]) for r in drops_csv(tmp_path / "s", "results.csv")]
    assert got["1"] == got["2"] == swept
