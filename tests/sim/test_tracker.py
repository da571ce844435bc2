"""The batched constant-velocity EKF and the triangulation of angle cosines."""

import numpy as np

from cfisac_env.sim.tracker import BatchEKF, cosines, transition, triangulate

AP = np.array([[25.0, 0.0], [75.0, 0.0]])
BOX = (-50.0, 150.0, 0.0, 20.0)


def test_transition_and_jacobian():
    f, q = transition(np.array([0.5]), 2.0)
    np.testing.assert_allclose(f[0] @ [1, 2, 3, 4], [2.5, 4, 3, 4])
    np.testing.assert_allclose(q[0, 0, 0], 4 * 0.5 ** 3 / 3)
    np.testing.assert_allclose(q[0, 0, 2], 4 * 0.5 ** 2 / 2)
    p = np.array([[40.0, 7.5]])
    u, jac = cosines(AP, p)
    eps = 1e-6
    for i in range(2):
        dp = np.zeros(2)
        dp[i] = eps
        np.testing.assert_allclose((cosines(AP, p + dp)[0] - u) / eps, jac[..., i], atol=1e-6)


def test_triangulation_is_exact_without_noise():
    rng = np.random.default_rng(0)
    p = np.stack([rng.uniform(0, 100, 50), rng.uniform(3, 20, 50)], axis=1)
    u, _ = cosines(AP, p)
    got, cov, ok = triangulate(AP, u, np.full(u.shape, 1e-6), np.ones(u.shape, bool), BOX)
    assert ok.all()
    np.testing.assert_allclose(got, p, atol=1e-6)
    one = np.array([[True, False]] * 50)
    assert not triangulate(AP, u, np.full(u.shape, 1e-6), one, BOX)[2].any()


def straight_line(b, steps, dt=0.1, speed=20.0, sigma_u=2e-3, seed=0, visible=(-1e9, 1e9)):
    """``b`` runs of a target crossing at ``speed`` m/s along y = 7.5 m, tracked from noisy
    cosines; returns (truth (steps, b, 2), estimates, covariances, lost (steps, b))."""
    rng = np.random.default_rng(seed)
    ekf = BatchEKF(b, AP, accel_std=0.5, gate=16.0, lost_std=5.0, lost_after=3)
    start = np.array([0.0, 7.5])
    ekf.start(np.arange(b), start + rng.normal(0, 1.0, (b, 2)), np.eye(2)[None] * 1.0, 30.0, 0.0)
    truth, est, cov, lost = [], [], [], []
    for k in range(1, steps + 1):
        p = start + np.array([speed * k * dt, 0.0])
        u, _ = cosines(AP, np.broadcast_to(p, (b, 2)))
        seen = visible[0] <= p[0] <= visible[1]
        z = u + rng.normal(0, sigma_u, u.shape)
        ekf.update(k * dt, z, np.full(u.shape, sigma_u ** 2), np.full(u.shape, seen))
        truth.append(np.broadcast_to(p, (b, 2)))
        est.append(ekf.x[:, :2].copy())
        cov.append(ekf.P[:, :2, :2].copy())
        lost.append(ekf.lost())
    return np.array(truth), np.array(est), np.array(cov), np.array(lost)


def test_straight_line_followed_within_its_covariance():
    truth, est, cov, lost = straight_line(300, 40)
    e = est - truth
    nees = np.einsum("kbi,kbij,kbj->kb", e, np.linalg.inv(cov), e)[10:]   # after the transient
    # consistency: the mean NEES of the 2-D position is at most ~2 (below it: the process noise
    # allows accelerations this target does not make) and 99 % of errors fall inside the
    # chi^2(2) 99 % ellipse (9.21), as they must for a filter whose covariance is right
    assert 1.0 < nees.mean() < 2.6, nees.mean()
    assert np.mean(nees < 9.21) > 0.97
    assert not lost.any()
    assert np.sqrt(np.mean(np.sum(e[10:] ** 2, -1))) < 0.5       # m


def test_batched_tracks_equal_single_tracks():
    big = straight_line(4, 10, seed=3)
    rng = np.random.default_rng(3)
    assert big[1].shape == (10, 4, 2)
    # batch of 4 vs the same 4 runs one by one through the batched code path
    one = BatchEKF(1, AP, 0.5, 16.0, 5.0, 3)
    ekf = BatchEKF(4, AP, 0.5, 16.0, 5.0, 3)
    p0 = rng.normal(size=(4, 2))
    ekf.start(np.arange(4), p0, np.eye(2)[None], 5.0, 0.0)
    z = rng.normal(0.1, 0.01, (4, 2))
    ekf.update(0.1, z, np.full((4, 2), 1e-4), np.ones((4, 2), bool))
    for i in range(4):
        one.start(np.array([0]), p0[i:i + 1], np.eye(2)[None], 5.0, 0.0)
        one.update(0.1, z[i:i + 1], np.full((1, 2), 1e-4), np.ones((1, 2), bool))
        np.testing.assert_allclose(one.x[0], ekf.x[i], rtol=1e-12)
        np.testing.assert_allclose(one.P[0], ekf.P[i], rtol=1e-12)


def test_target_leaving_coverage_is_declared_lost():
    # echoes only while the target is inside x in [0, 60] m: 3 decisions later the track is lost
    truth, est, cov, lost = straight_line(20, 45, visible=(0.0, 60.0))
    x = truth[:, 0, 0]
    inside = x <= 60.0
    assert not lost[inside].any()
    first_out = np.flatnonzero(~inside)[0]
    assert lost[first_out + 2].all() and not lost[first_out + 1].any()


def test_gate_rejects_an_outlier():
    ekf = BatchEKF(1, AP, 0.5, 9.0, 5.0, 3)
    ekf.start(np.array([0]), np.array([[50.0, 7.5]]), np.eye(2)[None] * 0.1, 1.0, 0.0)
    u, _ = cosines(AP, np.array([[50.0, 7.5]]))
    acc = ekf.update(0.1, u + [[0.5, 0.0]], np.full((1, 2), 1e-6), np.ones((1, 2), bool))
    assert acc.tolist() == [[False, True]]


def test_endfire_alias_is_the_same_measurement():
    # at half-wavelength spacing u = 1 and u = -1 are one steering vector: an estimate that
    # lands on the other end is wrapped, not rejected (nor does it wreck a triangulation)
    from cfisac_env.sim.tracker import wrap

    np.testing.assert_allclose(wrap(np.array([-1.999, 1.998, 0.3])), [0.001, -0.002, 0.3],
                               atol=1e-12)
    p = np.array([[200.0, 7.5]])
    ap = np.array([[25.0, 0.0], [175.0, 0.0], [225.0, 0.0], [375.0, 0.0]])
    u, _ = cosines(ap, p)
    aliased = u.copy()
    aliased[0, 0] -= 2.0                                    # AP 0 at endfire: +0.9991 -> -1.0009
    got, _, ok = triangulate(ap, aliased, np.full(u.shape, 1e-8), np.ones(u.shape, bool),
                             (-100.0, 500.0, 0.0, 20.0))
    assert ok[0] and np.allclose(got, p, atol=1e-4)
    ekf = BatchEKF(1, ap, 0.5, 9.0, 5.0, 3)
    ekf.start(np.array([0]), p, np.eye(2)[None] * 0.01, 1.0, 0.0)
    assert ekf.update(0.1, aliased, np.full(u.shape, 1e-6), np.ones(u.shape, bool)).all()
    np.testing.assert_allclose(ekf.x[0, :2], p[0], atol=0.05)
