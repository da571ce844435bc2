"""Closed-loop tracking: the loop itself, the stress properties it must show, bad input.

The default run uses classic beams and a test policy whose reported compute time is fixed; the
``stress`` marker runs the long versions (real cvx solves, the full speed sweep).
"""

import json

import numpy as np
import pytest

import policies
import scenarios
from cfisac_env.physics.scoring import score
from cfisac_env.sim.tracking import Latency, closed_loop, retention
from policies.base import Policy
from policies.evaluation.stress import StressSettings, at_speed, run_closed_loop, trajectory
from runners import stress as runner

#: Median compute time of one ``cvx`` decision (N = 8, L = 2, M = 16, interior-point SDP) on the
#: shared 2-core development machine, s (``[stress.fixed_latency]`` of track-highway).
CVX_SECONDS = 0.15
#: The earlier SCS-based ``cvx``'s median (1.6 s): a central solve slow enough to miss a moving
#: target for most of its crossing.
SLOW_SECONDS = 1.6


class Timed(Policy):
    """Test policy: another policy's beams, with a fixed reported compute time (s); it keeps
    the CSI of every call in ``seen``."""

    def __init__(self, system, inner="ns-rzf", seconds=0.0):
        super().__init__(system)
        self.inner, self.seconds, self.seen = policies.make(inner, system), seconds, []

    def act_batch(self, csi):
        self.seen.append(np.array(csi))
        return self.inner.act_batch(csi)

    def decide(self, csi):
        d = super().decide(csi)
        d.seconds = self.seconds
        return d


def highway(**overrides):
    return scenarios.load("track-highway", overrides=overrides)


def sweep_case(speed, seed=0):
    sc = highway()
    settings = StressSettings.of(sc)
    sc_v, seconds = at_speed(sc, speed, settings)
    return sc_v, settings, trajectory(sc_v, seconds, seed)


# ---- the loop ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ns-rzf", "mrt-target"])
def test_zero_latency_zero_delay_equals_static_evaluation(name):
    sc = highway()
    traj = trajectory(sc, 1.0, seed=1)
    pol = policies.make(name, sc.system)
    h = traj.csi(sc.system)
    static = score(h, pol.act(h), sc.system)                   # fresh beams at every instant
    every_step = closed_loop(pol, traj, sc.system, traj.dt)
    np.testing.assert_allclose(every_step.ssnr, static.ssnr, rtol=1e-6)
    np.testing.assert_allclose(every_step.min_sinr, static.min_sinr, rtol=1e-6)
    held = closed_loop(pol, traj, sc.system, 0.1)                # decisions every 10 steps
    np.testing.assert_array_equal(held.decided, np.arange(0, traj.steps, 10))
    np.testing.assert_allclose(held.ssnr[::10], static.ssnr[::10], rtol=1e-6)
    assert not np.allclose(held.ssnr, static.ssnr)              # held beams age in between


def test_same_seed_same_trajectory_for_every_policy():
    sc = highway()
    a, b, c = (trajectory(sc, 0.5, seed) for seed in (4, 4, 5))
    np.testing.assert_array_equal(a.ue_xy, b.ue_xy)
    np.testing.assert_array_equal(a.target_xy, b.target_xy)
    assert not np.allclose(a.ue_xy, c.ue_xy)
    np.testing.assert_allclose(a.target_xy[-1, 0] - a.target_xy[0, 0], 30.0 * 0.49, rtol=1e-9)


def test_slow_controller_keeps_old_beams_and_skips_busy_instants():
    sc = highway()
    traj = trajectory(sc, 1.0, seed=0)
    pol = Timed(sc.system, seconds=0.25)
    r = closed_loop(pol, traj, sc.system, 0.1, Latency("measured", scale=1.0), csi_delay=0.05)
    np.testing.assert_array_equal(r.decided, [0, 30, 60, 90])   # busy at 10, 20, 40, ...
    np.testing.assert_array_equal(r.landed, [25, 55, 85, 115])
    assert np.all(r.applied[:25] == -1) and np.all(r.applied[25:55] == 0)
    assert r.beam_age_steps[54] == 54 and r.beam_age_steps[55] == 25
    h = traj.csi(sc.system)
    assert len(pol.seen) == 4                                    # one call per decision
    np.testing.assert_array_equal(pol.seen[1][0], h[30 - 5])    # decision at 30: CSI of step 25
    np.testing.assert_array_equal(pol.seen[0][0], h[0])         # decision at 0, aged past t = 0
    doubled = closed_loop(pol, traj, sc.system, 0.1, Latency("measured", scale=2.0))
    np.testing.assert_array_equal(doubled.decided, [0, 50])   # lands at 50: decides again
    np.testing.assert_array_equal(doubled.landed, [50, 100])


def test_latency_is_rounded_to_the_step():
    sc = highway()
    traj = trajectory(sc, 0.3, seed=0)
    pol = Timed(sc.system, seconds=0.0149)
    assert closed_loop(pol, traj, sc.system, 0.1, Latency("measured")).landed[0] == 1
    pol.seconds = 0.0151
    assert closed_loop(pol, traj, sc.system, 0.1, Latency("measured")).landed[0] == 2
    assert closed_loop(pol, traj, sc.system, 0.1, Latency("fixed", 0.2)).landed[0] == 20
    assert closed_loop(pol, traj, sc.system, 0.1, Latency("zero")).landed[0] == 0


def test_retention_counts_the_masked_share():
    ref = np.array([1.0, 1.0, 2.0, 2.0])
    val = np.array([0.95, 0.5, 1.8, 1.7])
    assert retention(val, ref) == 0.5
    assert retention(val, ref, 0.5) == 1.0
    assert retention(val, ref, mask=np.array([1, 0, 1, 0])) == 1.0
    assert np.isnan(retention(val, ref, mask=np.zeros(4)))


# ---- the stress properties --------------------------------------------------------------------
def test_stale_beam_ssnr_falls_as_target_speed_rises():
    means = []
    for v in (0.0, 10.0, 20.0, 40.0):
        sc, _, traj = sweep_case(v)
        pol = policies.make("mrt-target", sc.system)
        r = closed_loop(pol, traj, sc.system, 0.1, Latency("fixed", 0.3))
        means.append(r.ssnr.mean())
    assert means[0] == pytest.approx(sc.system.ssnr_bound, rel=1e-5)  # stopped: nothing stale
    assert all(a > b for a, b in zip(means[:-1], means[1:], strict=True)), means


@pytest.mark.parametrize("speed", [0.0, 30.0, 60.0])
def test_cvx_like_latency_loses_retention_where_a_fast_policy_keeps_it(speed):
    """Same ns-rzf beams, charged the scenario's fixed compute time of ns-rzf and the earlier
    cvx's 1.6 s: only the latency differs."""
    sc, settings, traj = sweep_case(speed)
    settings.latency = "fixed"
    assert settings.fixed_latency["cvx"] == CVX_SECONDS
    settings.fixed_latency["cvx"] = SLOW_SECONDS
    fast = run_closed_loop("ns-rzf", policies.make("ns-rzf", sc.system), sc, traj, settings)
    slow = run_closed_loop("cvx", policies.make("ns-rzf", sc.system), sc, traj, settings)
    assert fast.retention == 1.0
    if speed == 0.0:
        assert slow.retention == 1.0
    else:
        assert slow.retention < 0.8
        assert (slow.loop.landed < traj.steps).sum() <= 1       # busy for most of the crossing


@pytest.mark.parametrize("latency,delay", [(0.05, 0.0), (0.5, 0.2), (SLOW_SECONDS, 1.0)])
@pytest.mark.parametrize("name", ["ns-rzf", "mrt-target"])
def test_stopped_target_keeps_retention_one(latency, delay, name):
    sc, settings, traj = sweep_case(0.0)
    settings.csi_delay = delay
    pol = Timed(sc.system, name, latency)
    r = run_closed_loop("stopped", pol, sc, traj, settings)
    assert np.all(traj.target_speed == 0.0) and np.ptp(traj.ue_xy[..., 0]) > 0  # UEs walk
    assert r.retention == 1.0


# ---- bad input ---------------------------------------------------------------------------------
def test_bad_latency_delay_and_speed_raise():
    sc = highway()
    settings = StressSettings.of(sc)
    traj = trajectory(sc, 0.2, seed=0)
    pol = policies.make("mrt-target", sc.system)
    with pytest.raises(ValueError, match="latency must be >= 0"):
        Latency("fixed", -0.1)
    with pytest.raises(ValueError, match="latency mode"):
        Latency("sometimes")
    with pytest.raises(ValueError, match="CSI delay must be >= 0"):
        closed_loop(pol, traj, sc.system, 0.1, csi_delay=-0.01)
    with pytest.raises(ValueError, match="multiple of dt"):
        closed_loop(pol, traj, sc.system, 0.015)
    with pytest.raises(ValueError, match="max_speed"):
        at_speed(sc, 61.0, settings)
    with pytest.raises(ValueError, match="max_speed"):
        at_speed(sc, -1.0, settings)
    typo = scenarios.Scenario("x", {**sc.config, "stress": {"durattion": 1}}, sc.system)
    with pytest.raises(ValueError, match="unknown \\[stress\\] fields"):
        StressSettings.of(typo)
    with pytest.raises(ValueError, match="road scenario"):
        StressSettings.of(scenarios.load("pos2"))


@pytest.mark.parametrize("argv,message", [
    (["--fixed-latency", "mrt-target=-1", "--latency", "fixed"], "latency must be >= 0"),
    (["--csi-delay", "-0.5"], "CSI delay must be >= 0"),
    (["--speeds", "0", "75"], "max_speed"),
    (["--set", "target.speed=61"], "max_speed"),
    (["--policy", "no-such-policy"], "unknown policy"),
    (["--scenario", "no-such-scenario"], "unknown scenario"),
    (["--latency", "fixed", "--policy", "policies.classic:MRTTarget"],
     "no fixed latency for policy"),
])
def test_runner_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code = runner.main([*argv, "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_runner_writes_series_sweep_and_plots(tmp_path, capsys):
    out = tmp_path / "run"
    code = runner.main(["--policy", "mrt-target", "--policy", "ns-rzf", "--speeds", "0", "60",
                        "--latency", "fixed", "--fixed-latency", "ns-rzf=0.5",
                        "--set", "stress.duration=0.5", "--out", str(out), "--quiet"])
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"config.json", "summary.json", "timeseries.csv", "ssnr_t.png",
                     "retention_vs_speed.csv", "retention_vs_speed.png"}
    summary = json.loads((out / "summary.json").read_text())
    sweep = {row["policy"]: row for row in summary["sweep"]["60.0"]}
    assert sweep["ns-rzf"]["retention"] < sweep["mrt-target"]["retention"] == 1.0
    assert all(row["retention"] == 1.0 for row in summary["sweep"]["0.0"])
    assert len((out / "timeseries.csv").read_text().splitlines()) == 1 + 2 * 50
    assert "retention vs target speed" in capsys.readouterr().out


# ---- long versions -----------------------------------------------------------------------------
@pytest.mark.stress
def test_real_cvx_loses_retention_at_60_mps_where_classic_keeps_it():
    sc, settings, traj = sweep_case(60.0)
    cvx = run_closed_loop("cvx", policies.make("cvx", sc.system), sc, traj, settings)
    fast = run_closed_loop("ns-rzf", policies.make("ns-rzf", sc.system), sc, traj, settings)
    assert cvx.loop.compute_s[0] > 0.01                        # a real solve, not zero
    assert cvx.retention < 0.8 <= fast.retention


@pytest.mark.stress
@pytest.mark.parametrize("name", [n for n in scenarios.available() if n.startswith("track-")])
def test_every_track_scenario_runs_with_a_fixed_cvx_like_latency(name):
    sc = scenarios.load(name)
    settings = StressSettings.of(sc)
    traj = trajectory(sc, settings.duration, seed=0)
    fast = run_closed_loop("mrt-target", policies.make("mrt-target", sc.system), sc, traj, settings)
    slow = run_closed_loop("slow", Timed(sc.system, "mrt-target", CVX_SECONDS), sc, traj, settings)
    assert fast.retention == 1.0 and slow.retention < 1.0
