"""The compare runner and the evaluation library: plugins, shared drops, error paths."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import policies
import scenarios
from policies import DistributedPolicy, Policy
from policies.evaluation.evaluate import Drops, score_policy, summary
from runners import compare

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = f"{ROOT}/examples/power_split_mrt.py:PowerSplitMRT"


class Recorder(Policy):
    """Central test policy that remembers the CSI it was given and aims at the target."""

    seen: list = []

    def act_batch(self, csi):
        Recorder.seen.append(csi.copy())
        w = np.zeros_like(csi)
        w[..., -1] = csi[..., -1] / np.sqrt(self.system.M)
        return w


class Broken(DistributedPolicy):
    def act_ap(self, l, csi_l):
        raise RuntimeError("boom")


class WrongShape(Policy):
    def act_batch(self, csi):
        return csi[..., :-1]


class Greedy(Policy):
    """Spends 4x the budget on the target beam."""

    def act_batch(self, csi):
        w = np.zeros_like(csi)
        w[..., -1] = 2 * csi[..., -1] / np.sqrt(self.system.M)
        return w


def test_every_policy_sees_identical_csi():
    sc = scenarios.load("pos2", users=3)
    drops = Drops.sample(sc, 6, seed=4)
    Recorder.seen = []
    score_policy(f"{__name__}:Recorder", sc, drops, progress=False)
    first = np.concatenate(Recorder.seen)
    Recorder.seen = []
    score_policy(f"{__name__}:Recorder", sc, Drops.sample(sc, 6, seed=4), progress=False)
    np.testing.assert_array_equal(first, np.concatenate(Recorder.seen))
    np.testing.assert_array_equal(first, drops.csi)


def test_example_policy_scores_and_registers():
    sc = scenarios.load("pos2", users=4)
    run = score_policy(EXAMPLE, sc, Drops.sample(sc, 5, 0), progress=False, split=0.0)
    np.testing.assert_allclose(run.ssnr, sc.system.ssnr_bound, rtol=1e-5)   # all at target
    assert run.distributed and run.fronthaul == 0
    policies.register("test-split", policies.resolve(EXAMPLE), overwrite=True)
    assert "test-split" in policies.available()
    assert policies.make("test-split", sc.system, split=0.3).split == 0.3


def test_failures_are_recorded_not_raised():
    sc = scenarios.load("pos2", users=2)
    drops = Drops.sample(sc, 3, 0)
    broken = score_policy(f"{__name__}:Broken", sc, drops, progress=False)
    assert len(broken.errors) == 3 and "boom" in broken.errors[0] and np.isnan(broken.ssnr).all()
    wrong = score_policy(f"{__name__}:WrongShape", sc, drops, progress=False)
    assert "shape" in wrong.errors[0]
    greedy = score_policy(f"{__name__}:Greedy", sc, drops, progress=False)
    assert greedy.over_budget.all()
    np.testing.assert_allclose(greedy.ssnr, sc.system.ssnr_bound, rtol=1e-5)  # scaled down
    s = summary(greedy, reference=score_policy(f"{__name__}:Recorder", sc, drops, progress=False))
    assert s["over_budget"] == 3 and s["ssnr_vs_ref"] == pytest.approx(1.0, rel=1e-5)


def test_compare_main_writes_outputs(tmp_path, capsys):
    rc = compare.main(["--scenario", "pos2", "--users", "3", "--drops", "8", "--quiet",
                       "--policy", "mrt-target", "--policy", EXAMPLE,
                       "--policy", f"{__name__}:Broken", "--out", str(tmp_path)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "power-split-mrt" in text and "mrt-target" in text
    summary_json = json.loads((tmp_path / "summary.json").read_text())
    names = [r["policy"] for r in summary_json["policies"]]
    assert names[0] == "mrt-target" and "power-split-mrt" in names
    for f in ("config.json", "drops.csv", "tradeoff.png", "bars.png"):
        assert (tmp_path / f).stat().st_size > 0


@pytest.mark.parametrize("args, match", [
    (["--scenario", "nowhere"], "available"),
    (["--policy", "no-such-policy"], "available"),
    (["--users", "0"], "users"),
])
def test_user_errors_exit_2_without_traceback(args, match):
    out = subprocess.run([sys.executable, "runners/compare.py", *args], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert match in out.stderr and "Traceback" not in out.stderr


# ---- a user error in a policy spec: one line naming the fix, exit 2, before any work ----------

SHIPPED = Path(policies.__file__).parent / "learned" / "shipped"
SPAN_HINT = "python runners/train.py --scenario pos2 --arch span-attn --install"


def _spec_errors(tmp_path: Path) -> list[tuple[str, list[str]]]:
    garbage = tmp_path / "hostname"
    garbage.write_bytes(b"garbage, not a checkpoint")
    street = SHIPPED / "street-span-attn.pt"
    nowhere = tmp_path / "nowhere.pt"
    return [
        (f"student@checkpoint={nowhere}", [f"checkpoint {nowhere} does not exist", SPAN_HINT]),
        (f"student@checkpoint={garbage}", [f"{garbage} is not a cfisac checkpoint", SPAN_HINT]),
        (f"student@checkpoint={street}", [str(street), "L=8", SPAN_HINT]),
        (f"paper-student@checkpoint={nowhere}", ["does not exist", "train.py --scenario pos2"]),
        ("student@scenario=nope", ["unknown scenario 'nope'", "available: ", "pos2"]),
        ("student@rho=7", ["rho must be in (0, 1]"]),
        ("student@foo=1", ["policy 'student': unknown option 'foo'", "accepted options: arch"]),
    ]


@pytest.mark.parametrize("case", range(7), ids=["missing", "garbage", "other-system",
                                                 "paper-missing", "unknown-scenario", "rho",
                                                 "unknown-option"])
def test_policy_spec_user_errors_exit_2_before_any_work(case, tmp_path, capsys):
    spec, wanted = _spec_errors(tmp_path)[case]
    out = tmp_path / "run"
    rc = compare.main(["--users", "2", "--drops", "2", "--quiet", "--no-cache", "--policy",
                       "mrt-target", "--policy", spec, "--out", str(out)])
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert rc == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("error: compare: "), captured.err
    for text in wanted:
        assert text in lines[0], lines[0]
    assert "--scenario nowhere" not in lines[0] and "--scenario hostname" not in lines[0]
    assert not out.exists() and "mrt-target" not in captured.out       # no work was done


def test_scenario_option_picks_the_family_of_a_learned_policy(tmp_path):
    out = tmp_path / "run"
    assert compare.main(["--users", "2", "--drops", "2", "--quiet", "--no-cache", "--policy",
                         "student@scenario=pos1", "--out", str(out)]) == 0
    used = json.loads((out / "config.json").read_text())["checkpoints"]
    assert Path(used["student[scenario=pos1]"]["path"]).name == "pos1-span-attn.pt"


FIX = "the fix: python runners/train.py --scenario pos2 --arch span-attn --install"


class Unbuildable(Policy):
    """Fails to build with a long message whose fix comes last (not a user error)."""

    def __init__(self, system, **options) -> None:
        raise RuntimeError("resource is corrupt " + "and so on " * 12 + FIX)


def _unwrapped(text: str) -> str:
    return " ".join(text.split())


def test_failed_rows_print_the_whole_message():
    err = "RuntimeError: resource is corrupt " + "and so on " * 12 + FIX
    compact = compare.compact_table([], {"plugin": err})
    assert max(map(len, compact.splitlines())) <= 100
    assert _unwrapped(f"FAILED plugin: {err}") in _unwrapped(compact)
    wide = compare.summary_table([], {"plugin": err})
    assert _unwrapped(f"FAILED plugin: {err}") in _unwrapped(wide)


def test_a_policy_that_fails_to_build_is_still_a_failed_row(tmp_path, capsys):
    """Not a user error: the run goes on, the row is FAILED with its whole message, and with
    nothing scored the exit status is 1."""
    out = tmp_path / "run"
    rc = compare.main(["--users", "2", "--drops", "2", "--quiet", "--no-cache", "--policy",
                       f"{__name__}:Unbuildable", "--out", str(out)])
    assert rc == 1
    assert FIX in _unwrapped(capsys.readouterr().out)
    assert FIX in json.loads((out / "summary.json").read_text())["failed"]["Unbuildable"]


def test_a_policy_warning_is_shown_once_not_by_the_spec_check_too(tmp_path):
    """The spec check builds every policy before the run builds it again; a constructor's
    warning (ns-rzf's empty null space at M = N = 16) reaches the user once."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = compare.main(["--scenario", "street", "--users", "16", "--drops", "1", "--quiet",
                           "--no-cache", "--policy", "ns-rzf", "--out", str(tmp_path / "r")])
    assert rc == 0
    assert [str(w.message) for w in caught].count(
        "ns-rzf: M = 16 <= N = 16: an AP's user channels span its whole space, so the "
        "null-space sensing beam is zero (only the communication beams light the target)") == 1


def test_a_runner_prints_a_warning_as_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(Path(compare.__file__)), "--scenario", "street",
                        "--users", "16", "--drops", "1", "--quiet", "--no-cache", "--policy",
                        "ns-rzf", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if "null-space sensing beam is zero" in x]
    assert len(lines) == 1 and lines[0].startswith("warning: ns-rzf: M = 16 <= N = 16")
    assert "UserWarning" not in r.stderr
