"""The fast cvx path against the cvxpy formulations it replaces: the same gamma_high as the
reference bisection, the same SDP optimum and beams as a tight Clarabel solve, warm starts, the
per-drop time limit, Ctrl-C and high SNR."""

import os
import signal
import threading

import numpy as np
import pytest

import policies
import scenarios
from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_complex
from policies.classic import ns_sensing_all
from policies.convex.dual import DualJointSDP
from policies.convex.ipm import IPMJointSDP
from policies.convex.sdp import JointSDPSolver
from policies.convex.socp import GAMMA_TOL, FastMaxMinSINR, MaxMinSINR, reference_gamma
from policies.evaluation.stress import trajectory

RHO_HALF = 3
TIGHT = {"tol_feas": 1e-10, "tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10}


def _float(beams):
    return np.stack([beams.real, beams.imag], axis=-3)


def test_reference_replay_is_the_bisection():
    # With an exact oracle the replay gives the bisection's own answer for any known interval.
    star = 3.14159
    plain, _, _ = reference_gamma(lambda g: g <= star)
    for lo, hi in [(-np.inf, np.inf), (3.0, 3.3), (3.1415, 3.1417), (0.5, 50.0)]:
        got, _, _ = reference_gamma(lambda g: g <= star, known_lo=lo, known_hi=hi)
        assert got == plain
    assert np.isnan(reference_gamma(lambda g: False)[0])


@pytest.fixture(scope="module")
def pos2_drops():
    sc = scenarios.load("pos2", users=8)
    x, _, _ = sc.drops(np.random.default_rng(5), 4)
    return sc.system, x


def test_fast_bisection_equals_cvxpy_bisection(drops, ref, pos2_drops):
    for system, x in (drops, pos2_drops):
        old, new = MaxMinSINR(system, 0.5), FastMaxMinSINR(system, 0.5)
        for i in range(len(x)):
            hc = to_complex(x[i].astype(float))
            sense = ns_sensing_all(hc[None], system, 0.5)[0]
            a, b = old.solve(hc, sense), new.solve(hc, sense)
            assert abs(a.gamma_high - b.gamma_high) < 1e-9
            assert b.solves < a.solves
            # The beams at gamma_high meet it within rho P_l.
            w = _float(np.concatenate([b.comm, sense[..., None]], axis=-1))
            assert metrics.min_sinr(_float(hc), w, system) >= b.gamma_high * (1 - 1e-6)
            assert np.all(np.sum(np.abs(b.comm) ** 2, axis=(-2, -1)) <= 0.5 * system.P * 1.000001)
    # And the Demirhan reference on the fixture drops.
    system, x = drops
    pol = policies.make("ns-opt", system)
    pol.act(x)
    assert np.all(np.abs(pol.last_info["gamma_high"] - ref["ns_opt_gamma"][:, RHO_HALF]) <= 0.02)


@pytest.mark.parametrize("solver, shortfall", [(DualJointSDP, 1e-4), (IPMJointSDP, 1e-6)],
                         ids=["dual", "ipm"])
def test_fast_sdp_matches_tight_clarabel(drops, ref, solver, shortfall):
    # the dual method's primal comes from its last Newton direction: its beams may fall short of
    # gamma by ~1e-5 relative (the policy accepts 1e-3, JSC_CHECK_RTOL)
    system, x = drops
    ipm, tight = solver(system), JointSDPSolver(system, "CLARABEL", TIGHT)
    for i in range(len(x)):
        hc = to_complex(x[i].astype(float))
        gamma = ref["ns_opt_gamma"][i, RHO_HALF]
        a, b = tight.solve(hc, gamma), ipm.solve(hc, gamma)
        assert b.status == "optimal"
        np.testing.assert_allclose(b.ssnr_opt, a.ssnr_opt, rtol=1e-5)
        wa = metrics.project_power(_float(a.beams), system)[0]
        wb = metrics.project_power(_float(b.beams), system)[0]
        ga, gb = metrics.g1_g2(_float(hc), wa, system), metrics.g1_g2(_float(hc), wb, system)
        np.testing.assert_allclose(gb, ga, rtol=1e-3)          # SSNR and min-SINR within 0.1 %
        assert gb[1] >= gamma * (1 - shortfall)


@pytest.mark.slow
def test_default_cvx_matches_cvxpy_path_on_pos2(pos2_drops):
    system, x = pos2_drops
    fast = policies.make("cvx", system)
    slow = policies.make("cvx", system, solver="CLARABEL", bisection="reference",
                         solver_options=TIGHT)
    bf, bs = fast.act(x), slow.act(x)
    assert not fast.last_info["fallback"].any() and not slow.last_info["fallback"].any()
    assert np.all(np.abs(fast.last_info["gamma_high"] - slow.last_info["gamma_high"]) < 1e-9)
    np.testing.assert_allclose(metrics.ssnr(x, bf, system), metrics.ssnr(x, bs, system),
                               rtol=1e-3)
    np.testing.assert_allclose(metrics.min_sinr(x, bf, system), metrics.min_sinr(x, bs, system),
                               rtol=1e-3)
    assert np.all(metrics.ap_power(bf) <= system.P * (1 + 1e-5))


def test_warm_start_on_the_road_same_answers_less_work():
    """Consecutive road drops: the warm start (the previous drop's prices and powers) changes the
    balancing iterations, never gamma_high; each drop's beams take one tight solve."""
    sc = scenarios.load("track-highway", users=4)
    traj = trajectory(sc, 3.0, seed=0)
    every = int(round(float(sc.config["env"]["decision_interval"]) / traj.dt))
    x = traj.csi(sc.system)[::every][:12]
    cold = policies.make("ns-opt", sc.system, warm_start=False)
    warm = policies.make("ns-opt", sc.system)
    infos = []
    for pol in (cold, warm):
        rows = []
        for i in range(len(x)):
            pol.act(x[i:i + 1])
            info = pol.last_info
            rows.append((info["gamma_high"][0], info["solves"][0], info["iterations"][0]))
        infos.append(np.array(rows))
    np.testing.assert_allclose(infos[1][:, 0], infos[0][:, 0], atol=1e-9)
    assert np.all(infos[0][:, 2] > 0) and infos[1][1:, 2].sum() < infos[0][1:, 2].sum()
    assert infos[1][1:, 1].sum() <= infos[0][1:, 1].sum()


def test_timeout_falls_back_to_ns_rzf_flagged(drops):
    system, x = drops
    for opts in ({}, {"solver": "SCS", "bisection": "reference"}):
        pol = policies.make("cvx", system, timeout_s=1e-4, **opts)
        beams = pol.act(x[:2])
        assert pol.last_info["timeout"].tolist() == [True, True]
        assert pol.last_info["fallback"].all() and pol.last_info["status"] == ["timeout"] * 2
        np.testing.assert_allclose(beams, policies.make("ns-rzf", system).act(x[:2]), atol=1e-6)
    pol = policies.make("cvx", system, timeout_s=60)
    pol.act(x[:1])
    assert not pol.last_info["timeout"].any() and not pol.last_info["fallback"].any()
    for bad in (0, -1, "soon", float("nan")):
        with pytest.raises(ValueError, match="timeout_s"):
            policies.make("cvx", system, timeout_s=bad)


def test_ctrl_c_inside_scs_raises(drops, monkeypatch):
    # SCS catches SIGINT and returns "interrupted": that must not become a silent fallback.
    # The signal is sent 50 ms into the first SCS call, so it lands inside SCS.
    import scs

    system, x = drops
    pol = policies.make("cvx", system, solver="SCS")
    pol.act(x[:1])                                   # compile first
    real, timers = scs.solve, []

    def interrupted_solve(*args, **kwargs):
        if not timers:
            timers.append(threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)))
            timers[0].start()
        return real(*args, **kwargs)

    monkeypatch.setattr(scs, "solve", interrupted_solve)
    try:
        with pytest.raises(KeyboardInterrupt):
            pol.act(x[1:4])
    finally:
        for t in timers:
            t.cancel()


def test_ctrl_c_during_default_solve_raises(drops):
    system, x = drops
    pol = policies.make("cvx", system)
    many = np.repeat(x, 20, axis=0)                  # seconds of work: the signal lands in it
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            pol.act(many)
    finally:
        timer.cancel()


def test_high_snr_keeps_gamma_and_beams():
    # Lower UE noise can only raise the achievable SINR; at 1e-6 W the solver tolerances used
    # to swamp the noise (gamma_high 1.4 "optimal" where 1e-3 W gave 51).
    highs, cases = [], []
    for noise in (1e-3, 1e-6):
        sc = scenarios.load("pos2", users=2, overrides={"ue_noise": noise})
        x, _, _ = sc.drops(np.random.default_rng(0), 3)
        pol = policies.make("cvx", sc.system)
        beams = pol.act(x)
        highs.append(pol.last_info["gamma_high"])
        cases.append((sc.system, x, beams, pol.last_info))
    assert np.all(highs[1] >= highs[0] - GAMMA_TOL)
    for system, x, beams, info in cases:
        assert not info["fallback"].any()
        assert np.all(metrics.min_sinr(x, beams, system) >= info["gamma_high"] * (1 - 1e-3))
        # The cvxpy bisection, scaled the same way, agrees.
        ref = policies.make("ns-opt", system, bisection="reference")
        ref.act(x)
        np.testing.assert_allclose(ref.last_info["gamma_high"], info["gamma_high"],
                                   atol=GAMMA_TOL)


@pytest.mark.parametrize("users", [1, 3])
def test_fast_bisection_any_number_of_users(users):
    sc = scenarios.load("pos2", users=users)
    x, _, _ = sc.drops(np.random.default_rng(users), 3)
    fast = policies.make("cvx", sc.system, rho=0.3)
    ref = policies.make("ns-opt", sc.system, rho=0.3, bisection="reference")
    beams = fast.act(x)
    ref.act(x)
    assert not fast.last_info["fallback"].any()
    np.testing.assert_allclose(fast.last_info["gamma_high"], ref.last_info["gamma_high"],
                               atol=1e-9)
    assert np.all(metrics.min_sinr(x, beams, sc.system)
                  >= fast.last_info["gamma_high"] * (1 - 1e-3))


def test_a_stalled_dual_sdp_is_solved_again_by_the_ipm(drops):
    """A dual SDP that stops short (here: two Newton steps) is not a fallback: the IPM solves
    the drop again and its beams are the IPM's own."""
    system, x = drops
    stalled = policies.make("cvx", system, solver_options={"max_iters": 2})
    ipm = policies.make("cvx", system, solver="IPM")
    got, want = stalled.act(x[:2]), ipm.act(x[:2])
    assert not stalled.last_info["fallback"].any()
    assert all(s.startswith("dual: max iterations") and s.endswith("IPM: optimal")
               for s in stalled.last_info["status"])
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(stalled.last_info["ssnr_opt"], ipm.last_info["ssnr_opt"],
                               rtol=1e-12)
