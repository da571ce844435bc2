"""The frontier metric: the joint SDP at a policy's own min-SINR, drop by drop."""

import numpy as np
import pytest

import policies
import scenarios
from cfisac_env.physics import metrics
from policies.convex.frontier import frontier, frontier_ssnr


@pytest.fixture(scope="module")
def drops():
    sc = scenarios.load("pos2", users=3)
    return sc.system, sc.drops(np.random.default_rng(11), 6)[0]


def test_frontier_bounds_any_feasible_beams(drops):
    """Any beams within budget are a point of the SDP at their own min-SINR: the frontier is at
    least their SSNR, so the efficiency is at most 1 (up to solver tolerance)."""
    system, csi = drops
    for name in ("ns-rzf", "mrt-users"):
        fr = frontier(csi, policies.make(name, system).act(csi), system)
        assert fr.solved.all()
        assert np.all(fr.frontier_ssnr >= fr.ssnr * (1 - 1e-4))
        assert fr.efficiency <= 1 + 1e-4


def test_cvx_lies_on_the_frontier(drops):
    """cvx's joint design is the SDP optimum at its own gamma: efficiency ~1."""
    system, csi = drops
    beams = policies.make("cvx", system).act(csi)
    fr = frontier(csi, beams, system)
    assert fr.efficiency == pytest.approx(1.0, abs=0.01)


def test_frontier_falls_as_sinr_rises_and_solvers_agree(drops):
    system, csi = drops
    g2 = metrics.min_sinr(csi, policies.make("ns-rzf", system).act(csi), system)
    lo = frontier_ssnr(csi[:3], 0.5 * g2[:3], system)
    hi = frontier_ssnr(csi[:3], g2[:3], system)
    assert np.all(lo >= hi - 1e-6) and np.all(hi <= system.ssnr_bound + 1e-6)
    np.testing.assert_allclose(frontier_ssnr(csi[:2], g2[:2], system, solver="CLARABEL"),
                               hi[:2], rtol=2e-3)
    # No SINR constraint binds at gamma <= 0: the sensing bound.
    assert frontier_ssnr(csi[:1], np.zeros(1), system)[0] == system.ssnr_bound


def test_compare_frontier_column(tmp_path):
    import json

    from runners import compare

    out = tmp_path / "run"
    rc = compare.main(["--scenario", "pos2", "--users", "2", "--policy", "cvx", "--policy",
                       "ns-rzf", "--drops", "4", "--heavy-drops", "3", "--frontier", "--quiet",
                       "--no-cache", "--out", str(out)])
    assert rc == 0
    rows = {r["policy"]: r for r in json.loads((out / "summary.json").read_text())["policies"]}
    assert rows["cvx"]["frontier_efficiency"] == pytest.approx(1.0, abs=0.01)
    assert 0 < rows["ns-rzf"]["frontier_efficiency"] < 1
    assert rows["ns-rzf"]["frontier_drops"] == 3
