"""The memory estimate of a run: hand-derived sizes, one-line refusals, and an estimate that
covers what a run really holds."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import scenarios
from cfisac_env.physics import validation as v

ROOT = Path(__file__).resolve().parents[2]


def test_drop_bytes_by_hand():
    sc = scenarios.load("pos2", users=8)                   # L M Q = 2 * 16 * 9 = 288 entries
    assert v.drop_bytes(sc.system, sc.config) == 288 * v.BYTES_PER_ENTRY
    noisy = scenarios.load("pos2", users=8, overrides={"csi.nmse": 0.1})
    assert v.drop_bytes(noisy.system, noisy.config) == 288 * (v.BYTES_PER_ENTRY +
                                                              v.BYTES_ESTIMATED)
    rician = scenarios.load("pos2", users=8, overrides={"channel.model": "rician",
                                                        "channel.paths": 8})
    assert v.drop_bytes(rician.system, rician.config) == 288 * (v.BYTES_PER_ENTRY +
                                                                8 * v.BYTES_PER_PATH)


def test_what_fits_passes_and_what_does_not_is_one_line():
    sc = scenarios.load("pos2", users=8)
    per = 288 * v.BYTES_PER_ENTRY
    limit = v.RUNTIME_BYTES + 1000 * per
    assert v.check_memory([(sc.system, sc.config, 1000)], limit=limit) == limit
    with pytest.raises(ValueError) as e:
        v.check_memory([(sc.system, sc.config, 1001)], "compare", limit=limit)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("compare needs about")
    assert "at most about 1,000 drops" in msg
    with pytest.raises(ValueError, match="at most about 500 drops per scenario, N and seed"):
        v.check_memory([(sc.system, sc.config, 600)] * 2, limit=limit)


def test_the_cases_that_ran_out_of_memory_are_refused():
    """--drops 1e9 on pos2, and M = 4096 with N = 1024: beyond any machine's 1 TB."""
    big = scenarios.load("pos2", users=1024, overrides={"system.antennas": 4096})
    sc = scenarios.load("pos2", users=8)
    for case in ((sc, 10**9), (big, 2000)):
        with pytest.raises(ValueError, match="of memory"):
            v.check_memory([(case[0].system, case[0].config, case[1])], limit=10**12)


def test_memory_limit_is_this_machine():
    limit = v.memory_limit()
    meminfo = Path("/proc/meminfo")
    if limit is None or not meminfo.is_file():
        pytest.skip("the OS does not report its memory")
    total_kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
    assert 0 < limit <= total_kb * 1024 * 1.01


PROBE = """
import json, os, sys, threading, time, warnings
warnings.filterwarnings("ignore")
import scenarios
from policies.evaluation.evaluate import Drops, score_policy as evaluate
from cfisac_env.physics.validation import RUNTIME_BYTES, check_memory
n, spec, over = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
page = os.sysconf("SC_PAGE_SIZE")

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page

sc = scenarios.load("pos2", users=8, overrides=over)
evaluate(spec, sc, Drops.sample(sc, 4, 1), progress=False)      # imports and warm-up
base, peak, done = rss(), [0], threading.Event()

def sample():                  # the run's own peak: an import-time peak above it does not hide it
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.005)

watcher = threading.Thread(target=sample)
watcher.start()
run = evaluate(spec, sc, Drops.sample(sc, n, 0), progress=False)
done.set()
watcher.join()
assert len(run.index) == n, run.errors[:1]
grown = max(peak[0], rss()) - base
print(json.dumps([grown, check_memory([(sc.system, sc.config, n)], limit=10**15) - RUNTIME_BYTES]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("spec, over", [("paper-student", {}), ("ns-rzf", {"csi.nmse": 0.1}),
                                        ("mrt-target", {"channel.model": "rician"})])
def test_the_estimate_covers_what_a_run_holds(spec, over):
    """Growth of the resident memory while drawing and scoring 20000 drops (its peak over the
    resident memory after warm-up, sampled every 5 ms in a fresh process) is below the
    estimate."""
    done = subprocess.run([sys.executable, "-c", PROBE, "20000", spec, json.dumps(over)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    grown, estimate = json.loads(done.stdout.splitlines()[-1])
    assert grown <= estimate, (grown, estimate)
    assert estimate < 4 * grown + 50e6          # and not wildly pessimistic


@pytest.mark.parametrize("argv", [
    ["compare", "--drops", "1000000000", "--policy", "mrt-target"],
    ["compare", "--users", "1024", "--set", "antennas=4096", "--policy", "mrt-target"],
    ["sweep", "--scenario", "pos2", "--users", "2", "--policy", "mrt-target", "--drops",
     "1000000000"],
    ["sweep", "--scenario", "pos2", "--users", "2", "8", "--seed", "0", "1", "2", "--policy",
     "mrt-target", "--drops", "500000"],          # each group fits; all six held do not
    ["stress", "--set", "stress.duration=19000", "--policy", "mrt-target"],
])
def test_runs_that_cannot_fit_exit_2_in_one_line_before_the_run_folder(argv, tmp_path, capsys,
                                                                      monkeypatch):
    from runners import compare, stress, sweep
    from tests.policies.evaluation.reliability_tools import one_line_error

    monkeypatch.setattr(v, "memory_limit", lambda: 16 * 10**9)     # any machine: 16 GB
    runner = {"compare": compare, "sweep": sweep, "stress": stress}[argv[0]]
    out = tmp_path / "run"
    rc = runner.main([*argv[1:], "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and one_line_error(err) and "of memory" in err, err
    assert not out.exists()
