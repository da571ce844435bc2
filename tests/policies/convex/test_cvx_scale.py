"""The convex baseline beyond the seed's two APs: the structured IPM data against dense constraint
blocks, and ``cvx`` / ``ns-opt`` against the cvxpy reference on stored cell-free drops."""

from pathlib import Path

import numpy as np
import pytest

import policies
from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_complex
from policies.classic import ns_sensing_all
from policies.convex.ipm import jsc_data
from policies.convex.socp import FastMaxMinSINR, MaxMinSINR
from runners.bench_cvx import scale_scenario

DATA = Path(__file__).parents[2] / "data" / "cvx_scale_drops.npz"


def _dense(d):
    """The constraint blocks ``(m, K, R, R)`` spelled out from the structure."""
    N, L, r, K, R = d.N, d.L, d.r, d.K, d.R
    A = np.zeros((N + L, K, R, R), dtype=complex)
    for n in range(N):
        A[n] = d.alpha[n][:, None, None] * np.outer(d.h[:, n], d.h[:, n].conj())[None]
    for l in range(L):
        sel = np.zeros((R, R))
        sel[l * r:(l + 1) * r, l * r:(l + 1) * r] = np.eye(r)
        A[N + l] = sel / (1.0 / d.inv_p[l])
    return A


def _herm(rng, K, R):
    a = rng.normal(size=(K, R, R)) + 1j * rng.normal(size=(K, R, R))
    return a @ np.conj(np.swapaxes(a, 1, 2)) + np.eye(R)


def test_structured_op_adj_schur_equal_dense_blocks():
    rng = np.random.default_rng(3)
    L, r, N = 3, 4, 5
    h = rng.normal(size=(L * r, N)) + 1j * rng.normal(size=(L * r, N))
    a = rng.normal(size=(L, r)) + 1j * rng.normal(size=(L, r))
    d = jsc_data(h, a, 1.7, np.full(N, 1.0), np.array([1.0, 2.0, 0.5]), r, 0.1)
    A = _dense(d)
    K, R = d.K, d.R
    X, Zi = _herm(rng, K, R), _herm(rng, K, R)
    x, z, v = rng.uniform(0.5, 2, N + L), rng.uniform(0.5, 2, N + L), rng.normal(size=N + L)
    op = np.real(np.einsum("ikab,kba->i", A, X)) + d.A_lp @ x
    np.testing.assert_allclose(d.op(X, x), op, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(d.adj(v), np.einsum("i,ikab->kab", v, A), rtol=1e-12, atol=1e-12)
    M = np.real(np.einsum("ikab,kbc,jkcd,kda->ij", A, X, A, Zi))
    M += (d.A_lp * (x / z)) @ d.A_lp.T
    np.testing.assert_allclose(d.schur(X, Zi, x, z), 0.5 * (M + M.T), rtol=1e-10)


def _stored():
    z = dict(np.load(DATA))
    return [tuple(int(t) for t in k[4:].split("_")) for k in z if k.startswith("csi_")], z


@pytest.mark.parametrize("size", _stored()[0], ids=lambda s: "L{}-N{}-M{}".format(*s))
def test_cvx_matches_cvxpy_reference_on_stored_cell_free_drops(size):
    _, z = _stored()
    key = "{}_{}_{}".format(*size)
    system = scale_scenario(*size).system
    x = z[f"csi_{key}"]
    cvx, nsopt = policies.make("cvx", system, rho=0.5), policies.make("ns-opt", system, rho=0.5)
    beams = cvx.act(x)
    nsopt.act(x)
    assert not cvx.last_info["fallback"].any()
    np.testing.assert_allclose(cvx.last_info["gamma_high"], z[f"gamma_{key}"], atol=1e-9)
    np.testing.assert_allclose(nsopt.last_info["gamma_high"], z[f"gamma_{key}"], atol=1e-9)
    np.testing.assert_allclose(metrics.ssnr(x, beams, system), z[f"ssnr_{key}"], rtol=1e-3)
    np.testing.assert_allclose(metrics.min_sinr(x, beams, system), z[f"min_sinr_{key}"],
                               rtol=1e-3)
    assert np.all(metrics.ap_power(beams) <= system.P * (1 + 1e-5))


@pytest.mark.slow
@pytest.mark.parametrize("size", [(4, 8, 16), (4, 16, 16)], ids=lambda s: "L{}-N{}-M{}".format(*s))
def test_fast_bisection_equals_cvxpy_bisection_at_scale(size):
    sc = scale_scenario(*size)
    system = sc.system
    x, _, _ = sc.drops(np.random.default_rng(0), 1)
    hc = to_complex(x[0].astype(float))
    sense = ns_sensing_all(hc[None], system, 0.5)[0]
    ref = MaxMinSINR(system, 0.5).solve(hc, sense)
    fast = FastMaxMinSINR(system, 0.5).solve(hc, sense)
    assert abs(ref.gamma_high - fast.gamma_high) < 1e-9
    assert fast.solves < ref.solves


@pytest.mark.slow
def test_dual_phases_equal_the_previous_ones_at_8_aps():
    """(8, 16, 16): the dual root finding gives the Clarabel root finding's gamma_high, and the
    dual joint SDP the primal-dual IPM's optimum (both at tolerance 1e-8 or tighter)."""
    from policies.convex.dual import DualJointSDP
    from policies.convex.ipm import IPMJointSDP

    sc = scale_scenario(8, 16, 16)
    system = sc.system
    x, _, _ = sc.drops(np.random.default_rng(0), 2)
    for i in range(2):
        hc = to_complex(x[i].astype(float))
        sense = ns_sensing_all(hc[None], system, 0.5)[0]
        g = FastMaxMinSINR(system, 0.5, oracle="dual").solve(hc, sense, need_beams=False)
        g_ref = FastMaxMinSINR(system, 0.5, oracle="clarabel").solve(hc, sense,
                                                                     need_beams=False)
        assert g.gamma_high == g_ref.gamma_high
        a, b = DualJointSDP(system).solve(hc, g.gamma_high), IPMJointSDP(system).solve(
            hc, g.gamma_high)
        assert a.status == b.status == "optimal"
        assert a.ssnr_opt == pytest.approx(b.ssnr_opt, rel=1e-6)
