"""Reliability: no lost work, no hang, no traceback on bad input.

One section per kind of failure a careful user can provoke: Ctrl-C (runners keep what finished,
record ``interrupted: true``, exit 130), bad traffic settings (a clear error, never a hang),
a policy that cannot be built (a failed row, the run still writes), run folders (checked before
the work, atomic files, distinct names), the exit-status promise of every runner, and scenario /
input validation. The property-based counterpart is ``test_fuzz.py``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import gymnasium as gym
import matplotlib.figure
import numpy as np
import pytest
import torch

import cfisac_env
import policies
import scenarios
from cfisac_env.physics import metrics
from cfisac_env.runs import atomic_path, run_dir, write_json
from cfisac_env.sim.traffic import RoadTraffic
from runners import bench_env, bench_policy, compare, render_road, reproduce_demirhan, stress, train
from tests.policies.evaluation.reliability_tools import (
    ROOT,
    TOOLS,
    CtrlC,
    Hang,
    interrupt_when_started,
    one_line_error,
    runner_cmd,
    strict_json,
    time_limit,
)

FAST = ["--policy", "mrt-target", "--users", "2", "--drops", "4", "--quiet"]


def _main(module, argv: list[str]) -> int | str:
    """``module.main(argv)``; a KeyboardInterrupt escaping it is returned as a string (so that a
    regression fails the test instead of stopping pytest)."""
    try:
        return module.main(argv)
    except KeyboardInterrupt:
        return "KeyboardInterrupt escaped main()"


# ---- Ctrl-C: keep what finished, record it, exit 130 ------------------------------------------

def test_compare_ctrl_c_keeps_finished_policies_and_exits_130(tmp_path):
    CtrlC.calls = 0
    out = tmp_path / "run"
    rc = _main(compare, [*FAST, "--policy", f"{TOOLS}:CtrlC", "--out", str(out)])
    assert rc == 130
    summary = strict_json(out / "summary.json")
    assert summary["interrupted"] is True
    rows = {r["policy"]: r for r in summary["policies"]}
    assert rows["mrt-target"]["drops"] == 4                # the finished policy is kept whole
    assert rows["ctrl-c"]["drops"] == 2 and rows["ctrl-c"]["interrupted"]   # and its 2 drops
    assert (out / "drops.csv").read_text().count("mrt-target") == 4


def test_compare_real_sigint_exits_130_with_results(tmp_path):
    out = tmp_path / "run"
    done = interrupt_when_started(
        runner_cmd("compare", *FAST, "--drops", "400", "--policy", f"{TOOLS}:Sleepy",
                   "--out", str(out)), tmp_path / "started", cwd=tmp_path)
    assert done.returncode == 130, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    summary = strict_json(out / "summary.json")
    assert summary["interrupted"] is True
    rows = {r["policy"]: r for r in summary["policies"]}
    assert rows["mrt-target"]["drops"] == 400 and 0 < rows["sleepy"]["drops"] < 400


def test_stress_real_sigint_writes_what_finished(tmp_path):
    out = tmp_path / "run"
    done = interrupt_when_started(
        runner_cmd("stress", "--policy", "mrt-target", "--policy", f"{TOOLS}:Sleepy",
                   "--speeds", "--out", str(out), "--quiet"),
        tmp_path / "started", cwd=tmp_path)
    assert done.returncode == 130, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    summary = strict_json(out / "summary.json")
    assert summary["interrupted"] is True
    assert "mrt-target" in {r["policy"] for r in summary["main"]}


@pytest.mark.parametrize("runner, args", [
    ("compare", ["--policy", "cvx", "--jobs", "1", "--users", "2", "--drops", "3000",
                 "--heavy-drops", "3000", "--quiet"]),
    ("stress", ["--policy", "cvx", "--latency", "measured", "--quiet"]),
])
def test_real_sigint_stops_a_cvx_solve(runner, args, tmp_path):
    """Ctrl-C while cvx solves (its solver must not swallow SIGINT): stop, keep, exit 130."""
    out = tmp_path / "run"
    done = interrupt_when_started(runner_cmd(runner, *args, "--out", str(out)), out,
                                  cwd=tmp_path, after=2.0)
    assert done.returncode == 130, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert strict_json(out / "summary.json")["interrupted"] is True


def test_train_ctrl_c_exits_130(monkeypatch, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train", interrupted)
    assert _main(train, ["--arch", "gram-mlp", "--preset", "tiny", "--users", "2",
                         "--out", str(tmp_path)]) == 130


def test_train_interrupted_run_is_recorded(monkeypatch, tmp_path, capsys):
    class Result:
        out, histories, summary, interrupted, diverged = tmp_path, {}, {}, True, None

    monkeypatch.setattr(train, "train", lambda *a, **k: Result())
    monkeypatch.setattr(train, "plot_curves", lambda *a, **k: None)
    rc = _main(train, ["--arch", "gram-mlp", "--preset", "tiny", "--users", "2",
                       "--out", str(tmp_path)])
    assert rc == 130 and strict_json(tmp_path / "summary.json")["interrupted"] is True


def test_train_real_sigint_stops_the_whole_training(tmp_path):
    out = tmp_path / "run"
    done = interrupt_when_started(
        runner_cmd("train", "--preset", "tiny", "--users", "2", "--quiet", "--arch", "unet",
                   "--role", "ssnr-teacher", "--role", "sinr-teacher", "--epochs", "500",
                   "--out", str(out)), out / "ssnr-teacher.csv", cwd=tmp_path, after=0.5)
    assert done.returncode == 130, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not (out / "sinr-teacher.csv").exists()       # one Ctrl-C stops every role


# ---- bad traffic settings: a clear error, never a hang ----------------------------------------

HANGING_TRAFFIC = [
    {"traffic.length": -50.0},
    {"traffic.length": 0.0, "traffic.min_gap": 0.0, "traffic.initial_spacing": 0.0},
    {"traffic.length": 1e-9, "traffic.min_gap": 0.0},
]


@pytest.mark.parametrize("overrides", HANGING_TRAFFIC)
def test_bad_traffic_is_an_error_not_a_hang(overrides):
    with time_limit(10), pytest.raises(ValueError, match="traffic"):
        env = gym.make(cfisac_env.ENV_ID, scenario="road", **overrides)
        env.reset(seed=0)


@pytest.mark.parametrize("runner, argv", [
    (stress, ["--speeds", "--policy", "mrt-target", "--quiet"]),
    (render_road, ["--policy", "mrt-target", "--steps", "2", "--quiet"]),
])
@pytest.mark.parametrize("overrides", HANGING_TRAFFIC[:2])
def test_runners_reject_bad_traffic_at_once(runner, argv, overrides, tmp_path, capsys):
    sets = [x for k, v in overrides.items() for x in ("--set", f"{k}={v}")]
    with time_limit(20):
        rc = runner.main([*argv, *sets, "--out", str(tmp_path / "run")])
    assert rc == 2 and one_line_error(capsys.readouterr().err)


def test_traffic_model_bounds_its_own_loops():
    """Even a config that bypasses the loader cannot make the vehicle placement loop forever."""
    cfg = scenarios.load("road").config
    cfg["traffic"] = {**cfg["traffic"], "length": 1e-12, "min_gap": 0.0, "initial_spacing": 0.0}
    with time_limit(10), pytest.raises(ValueError, match="too dense"):
        RoadTraffic(cfg, np.zeros((2, 2)), np.random.default_rng(0))


# ---- a policy that cannot be built is a failed row; the run still writes ----------------------

def test_compare_unbuildable_learned_policy_is_a_failed_row(monkeypatch, tmp_path):
    from policies.learned.policies import LearnedPolicy

    def corrupt(self, *args, **kwargs):
        raise RuntimeError("PytorchStreamReader failed reading zip archive")

    monkeypatch.setattr(LearnedPolicy, "__init__", corrupt)
    out = tmp_path / "run"
    rc = _main(compare, [*FAST, "--policy", "student", "--policy", f"{TOOLS}:Unbuildable",
                         "--no-train", "--out", str(out)])
    assert rc == 0
    summary = strict_json(out / "summary.json")
    assert [r["policy"] for r in summary["policies"]] == ["mrt-target"]
    assert "PytorchStreamReader" in summary["failed"]["student"]
    assert "cannot build" in summary["failed"]["Unbuildable"]      # the row name, not the path
    assert (out / "bars.png").stat().st_size > 0


@pytest.mark.parametrize("content", [b"", b"garbage, not a checkpoint", b"PK\x03\x04trunc",
                                     b"M", b"r"])
def test_broken_checkpoint_is_a_value_error_naming_the_file(content, tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    system = scenarios.load("pos2", users=2).system
    with pytest.raises(ValueError, match="broken.pt"):
        policies.make("student", system, scenario="pos2", checkpoint=path)


def test_missing_checkpoint_is_a_value_error_naming_the_file(tmp_path):
    system = scenarios.load("pos2", users=2).system
    with pytest.raises(ValueError, match="nowhere.pt"):
        policies.make("student", system, scenario="pos2", checkpoint=tmp_path / "nowhere.pt")


def test_crafted_checkpoint_runs_no_code(tmp_path):
    flag = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (flag,))

    path = tmp_path / "crafted.pt"
    torch.save({"state": Payload()}, path)
    system = scenarios.load("pos2", users=2).system
    with pytest.raises(ValueError):
        policies.make("student", system, scenario="pos2", checkpoint=path)
    assert not flag.exists()


# ---- run folders: checked before the work, atomic files, distinct names -----------------------

def test_out_that_is_a_file_fails_before_any_work(tmp_path, capsys):
    marker = tmp_path / "started"
    os.environ["CFISAC_TEST_MARKER"] = str(marker)
    try:
        (tmp_path / "file").write_text("x")
        rc = _main(compare, [*FAST, "--policy", f"{TOOLS}:Sleepy", "--out",
                             str(tmp_path / "file")])
    finally:
        del os.environ["CFISAC_TEST_MARKER"]
    assert rc == 2 and one_line_error(capsys.readouterr().err)
    assert not marker.exists()                                  # no policy ever ran


def test_unwritable_working_folder_fails_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("runs").write_text("a file where the runs folder should be")
    marker = tmp_path / "started"
    monkeypatch.setenv("CFISAC_TEST_MARKER", str(marker))
    rc = _main(compare, [*FAST, "--policy", f"{TOOLS}:Sleepy"])
    assert rc == 2 and one_line_error(capsys.readouterr().err)
    assert not marker.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permissions")
def test_read_only_out_fails_before_any_work(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        rc = _main(compare, [*FAST, "--out", str(ro / "run")])
    finally:
        ro.chmod(0o700)
    assert rc == 2 and one_line_error(capsys.readouterr().err)


def test_ctrl_c_while_writing_leaves_no_truncated_file(tmp_path, monkeypatch):
    def interrupted_savefig(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        raise KeyboardInterrupt

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", interrupted_savefig)
    out = tmp_path / "run"
    rc = _main(compare, [*FAST, "--out", str(out)])
    assert rc == 130
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "drops.csv", "summary.json"]
    strict_json(out / "summary.json")


def test_atomic_path_keeps_the_old_file_on_interrupt(tmp_path):
    target = tmp_path / "summary.json"
    write_json(target, {"old": 1})
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text('{"new": ')
        raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_runs_started_at_the_same_instant_get_distinct_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt: "20250101-000000")
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(run_dir("compare-pos2-N8")))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 8 and all(p.is_dir() for p in paths)


# ---- the exit-status promise: user errors exit 2 with one line ---------------------------------

def _toml_without_system(tmp: Path) -> str:
    text = (ROOT / "scenarios" / "pos2.toml").read_text()
    path = tmp / "nosystem.toml"
    path.write_text(text.split("[system]")[0] + "[placement]" + text.split("[placement]")[1])
    return str(path)


USER_ERRORS = [
    (compare, ["--threads", "0"]),
    (compare, ["--seed", "-1"]),
    (compare, ["--device", "cuda:99"]),
    (compare, ["--device", "warp-drive"]),
    (compare, ["--set", "ue_x=abc"]),
    (compare, ["--set", "users=abc"]),
    (compare, ["--set", "power=nan"]),
    (compare, ["--jobs", "0"]),
    (compare, ["--drops", "0"]),
    (compare, ["--scenario", "TOML_WITHOUT_SYSTEM"]),
    (compare, ["--users", "many"]),
    (compare, ["--threads=--"]),
    (bench_env, ["--envs", "0"]),
    (bench_env, ["--seconds", "0"]),
    (bench_env, ["--seconds", "-1"]),
    (bench_env, ["--seconds", "inf"]),
    (bench_env, ["--users", "0"]),
    (bench_env, ["--scenario", "nowhere"]),
    (render_road, ["--frames", "0"]),
    (render_road, ["--steps", "-3"]),
    (train, ["--epochs", "-1"]),
    (train, ["--init", "/nonexistent"]),
    (train, ["--lr", "nan"]),
    (train, ["--time-limit", "0"]),
    (stress, ["--threads", "0"]),
    (stress, ["--seed", "-1"]),
    (bench_policy, ["latency", "--repeats", "0"]),
    (bench_policy, ["quality", "--drops", "0"]),
    (reproduce_demirhan, ["--drops", "0"]),
    (reproduce_demirhan, ["--jobs", "0"]),
]


@pytest.mark.parametrize("runner, argv", USER_ERRORS,
                         ids=[f"{r.__name__.split('.')[-1]} {' '.join(a)}" for r, a in USER_ERRORS])
def test_user_errors_exit_2_with_one_line(runner, argv, tmp_path, capsys):
    argv = [_toml_without_system(tmp_path) if a == "TOML_WITHOUT_SYSTEM" else a for a in argv]
    with time_limit(30):
        rc = _main(runner, [*argv, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert one_line_error(err), err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present here")
def test_cuda_without_a_gpu_is_a_user_error(capsys, tmp_path):
    assert _main(compare, ["--device", "cuda", "--out", str(tmp_path)]) == 2
    assert one_line_error(capsys.readouterr().err)


def test_train_init_without_checkpoints_is_a_user_error(tmp_path, capsys):
    rc = _main(train, ["--init", str(tmp_path), "--arch", "gram-mlp", "--preset", "tiny",
                       "--users", "2",
                       "--out", str(tmp_path / "run")])
    assert rc == 2 and "holds none of" in capsys.readouterr().err


def test_every_policy_failed_exits_1(tmp_path):
    out = tmp_path / "run"
    rc = _main(compare, ["--users", "2", "--drops", "3", "--quiet", "--out", str(out),
                         "--policy", f"{TOOLS}:Unbuildable"])
    assert rc == 1
    assert "Unbuildable" in next(iter(strict_json(out / "summary.json")["failed"]))


@pytest.mark.parametrize("runner, prefix", [
    (compare, []), (stress, []), (train, []), (bench_env, []), (render_road, []),
    (bench_policy, ["quality"]),
])
def test_common_flags_are_named_the_same_everywhere(runner, prefix, capsys):
    assert _main(runner, [*prefix, "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--scenario", "--users", "--set", "--seed", "--out", "--quiet", "--threads"):
        assert flag in text, f"{runner.__name__} lacks {flag}"


# ---- scenario and input validation -------------------------------------------------------------

def test_unknown_section_lists_the_known_ones(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text((ROOT / "scenarios" / "pos2.toml").read_text().replace("[system]",
                                                                           "[sytem]"))
    with pytest.raises(ValueError, match="sytem.*system, placement"):
        scenarios.load(path)


def test_unknown_field_lists_the_known_ones(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text((ROOT / "scenarios" / "road.toml").read_text().replace("headway",
                                                                           "headwya"))
    with pytest.raises(ValueError, match="headwya.*headway"):
        scenarios.load(path)


@pytest.mark.parametrize("field, value", [
    ("power", float("nan")), ("power", float("inf")), ("power", [1.0, float("nan")]),
    ("sensing_gain", float("nan")), ("sensing_gain", float("inf")),
    ("ue_noise", float("inf")), ("radar_noise", float("nan")),
    ("spacing", float("inf")), ("ap_xy", [[25.0, float("nan")], [75.0, 0.0]]),
    ("ap_xy", [[float("inf"), 0.0]]),
])
def test_non_finite_system_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        scenarios.load("pos2", overrides={f"system.{field}": value})


@pytest.mark.parametrize("field, value", [
    ("placement.ue_x", [100.0, 0.0]), ("road.x", [150.0, -50.0]), ("walkers.speed", [2.0, 1.0]),
    ("traffic.speed", -1.0), ("traffic.comfort_decel", 0.0), ("traffic.arrival_rate", "fast"),
    ("target.lane", 1.5), ("env.episode_steps", 0), ("env.beta", 2.0), ("env.reward", "money"),
    ("stress.duration", 0.0), ("stress.covered", [100.0, 0.0]), ("stress.speeds", [-5.0]),
    ("stress.threshold", float("nan")),
])
def test_road_and_stress_fields_are_checked(field, value):
    with pytest.raises(ValueError, match=field.split(".")[0]):
        scenarios.load("track-highway", overrides={field: value})


def test_road_dt_zero_is_a_clear_error():
    with pytest.raises(ValueError, match="env.dt"):
        gym.make(cfisac_env.ENV_ID, scenario="road", **{"env.dt": 0.0})


def test_complex_csi_is_an_error_not_a_silent_cast():
    sc = scenarios.load("pos2", users=2)
    csi = sc.drops(np.random.default_rng(0), 1)[0][0].astype(np.complex64) * (1 + 1j)
    for spec in ("mrt-target", "ns-rzf"):
        with pytest.raises(ValueError, match="complex"):
            policies.make(spec, sc.system).act(csi)


def test_huge_action_is_scaled_to_the_budget_not_zeroed():
    env = gym.make(cfisac_env.ENV_ID, scenario="pos2", users=3)
    ue, tg = np.array([[10.0, 23.0], [50.0, 23.0], [90.0, 23.0]]), np.array([40.0, 10.0])
    obs, _ = env.reset(seed=0, options={"ue_xy": ue, "target_xy": tg})
    beams = obs.astype(np.float64)
    infos = []
    for scale in (1.0, 1e200):
        env.reset(seed=0, options={"ue_xy": ue, "target_xy": tg})
        infos.append(env.step(beams * scale)[4])
    assert infos[1]["ssnr"] > 0 and infos[1]["power_scaled"].all()
    np.testing.assert_allclose(infos[1]["ssnr"], infos[0]["ssnr"], rtol=1e-9)
    np.testing.assert_allclose(infos[1]["sinr"], infos[0]["sinr"], rtol=1e-9)
    w, scaled = metrics.project_power(beams[None] * 1e300, env.unwrapped.system)
    np.testing.assert_allclose(metrics.ap_power(w), env.unwrapped.system.P[None], rtol=1e-9)


def test_summary_json_holds_no_bare_nan(tmp_path):
    out = tmp_path / "run"
    rc = _main(compare, [*FAST, "--policy", f"{TOOLS}:Broken", "--out", str(out)])
    assert rc == 0
    summary = strict_json(out / "summary.json")
    broken = next(r for r in summary["policies"] if r["policy"] == "broken")
    assert broken["ssnr"]["mean"] is None and broken["errors"] == 4


def test_hang_guard_works():
    with pytest.raises(Hang), time_limit(0.2):
        while True:
            pass
