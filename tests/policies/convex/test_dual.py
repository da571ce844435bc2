"""The dual barrier method of the joint SDP: its derivatives, its certificate and its optimum."""

from __future__ import annotations

import numpy as np
import pytest

from policies.convex.dual import DualSDP, primal_parts


def _problem(seed: int = 1, L: int = 3, r: int = 3, N: int = 4, gamma: float = 0.7,
             sensing: bool = True):
    rng = np.random.default_rng(seed)
    R = L * r
    h = (rng.normal(size=(R, N)) + 1j * rng.normal(size=(R, N))) / np.sqrt(2)
    a = rng.normal(size=(L, r)) + 1j * rng.normal(size=(L, r))
    C0 = np.zeros((R, R), complex)
    for l in range(L):
        C0[l * r:(l + 1) * r, l * r:(l + 1) * r] = -0.1 * np.outer(a[l], a[l].conj())
    if not sensing:                     # the power-scale form
        return DualSDP(h, r, gamma, np.full(N, 0.5), np.full(L, 0.5), None, False, True)
    return DualSDP(h, r, gamma, np.full(N, 0.5), np.ones(L), C0)


def _phi(dual: DualSDP, v: np.ndarray) -> float:
    """The barrier from its definition: -sum_k log det Z_k - sum log v (dense Cholesky)."""
    B = dual.B(v)
    Zs = [B - dual.c1 * v[k] * np.outer(dual.h[:, k], dual.h[:, k].conj())
          for k in range(dual.N)] + [B] * dual.sensing_block
    return float(-sum(2 * np.sum(np.log(np.diag(np.linalg.cholesky(Z)).real)) for Z in Zs)
                 - np.sum(np.log(v)))


@pytest.mark.parametrize("sensing", [True, False], ids=["joint", "power-scale"])
def test_barrier_gradient_and_hessian_match_finite_differences(sensing):
    dual = _problem(sensing=sensing)
    v = dual.start() * 1.3
    f = dual.factor(v)
    assert dual.barrier(v, f) == pytest.approx(_phi(dual, v), rel=1e-12)
    g, H = dual.derivatives(v, f)
    e, eye = 1e-6, np.eye(dual.m)
    gn = np.array([(_phi(dual, v + e * eye[i]) - _phi(dual, v - e * eye[i])) / (2 * e)
                   for i in range(dual.m)])
    np.testing.assert_allclose(g, gn, rtol=1e-6, atol=1e-6 * np.abs(gn).max())
    e = 1e-4
    Hn = np.array([[(_phi(dual, v + e * (eye[i] + eye[j])) - _phi(dual, v + e * (eye[i] - eye[j]))
                     - _phi(dual, v - e * (eye[i] - eye[j]))
                     + _phi(dual, v - e * (eye[i] + eye[j]))) / (4 * e * e)
                    for j in range(dual.m)] for i in range(dual.m)])
    np.testing.assert_allclose(H, Hn, rtol=1e-4, atol=1e-5 * np.abs(Hn).max())


def test_infeasible_points_have_no_factor():
    dual = _problem()
    v = dual.start()
    assert dual.factor(v) is not None
    bad = v.copy()
    bad[0] = 2.0 / (dual.c1 * dual.hn2[0]) * 1e3        # delta_0 < 0
    assert dual.factor(bad) is None
    assert dual.factor(-v) is None


def test_solution_is_certified_and_its_primal_is_feasible():
    dual = _problem()
    res = dual.solve()
    assert res.status == "optimal"
    assert 0 <= res.gap <= 1e-8 * (1 + abs(res.dobj))
    fh, S = primal_parts(dual, res)
    h, L, r = dual.h, dual.L, dual.r
    # the primal F(tau): every AP within budget, every SINR row met, objective = dual + gap
    blocks = np.real(np.einsum("lala->l", S.reshape(L, r, L, r)))
    assert np.all(blocks <= 1.0 + 1e-6)               # exact in exact arithmetic
    useful = np.real(np.sum(h.conj() * fh, axis=0))                 # h_n^H F_n h_n
    total = np.real(np.einsum("rn,rs,sn->n", h.conj(), S, h))       # h_n^H S h_n
    sinr_row = useful / dual.gamma - (total - useful)
    assert np.all(sinr_row >= 0.5 * (1 - 1e-6))
    ssnr = -np.real(np.trace(dual.C0 @ S))
    assert -ssnr == pytest.approx(res.dobj, rel=1e-6)    # primal = dual + gap, to rounding
    assert np.linalg.eigvalsh(0.5 * (S + S.conj().T))[0] >= -1e-9


def test_recentring_solves_a_drop_where_the_default_path_stalls():
    """Street drop (N = 8, seed 0, drop 6): cutting tau at every step strands the path next
    to one SINR slack's boundary; re-centring first reaches the IPM's optimum."""
    import scenarios
    from cfisac_env.physics.layout import to_complex
    from policies.classic import ns_sensing_all
    from policies.convex.basis import reduce, span_basis
    from policies.convex.dual import CENTRE, DualSDP
    from policies.convex.ipm import IPMJointSDP
    from policies.convex.sdp import sensing_cost
    from policies.convex.socp import FastMaxMinSINR

    sc = scenarios.load("street", users=8)
    s = sc.system
    x, _, _ = sc.drops(np.random.default_rng(0), 7)
    hc = to_complex(x[6].astype(float))
    gamma = FastMaxMinSINR(s, 0.5).solve(hc, ns_sensing_all(hc[None], s, 0.5)[0],
                                         need_beams=False).gamma_high
    basis = span_basis(hc)
    r = basis.shape[-1]
    a = (basis.conj().transpose(0, 2, 1) @ hc[..., s.N:])[..., 0]
    C0 = -s.sensing_gain / s.radar_noise * sensing_cost(a, r)
    dual = DualSDP(reduce(basis, hc[..., : s.N]), r, gamma, np.full(s.N, s.ue_noise),
                   np.asarray(s.P, float), C0)
    assert dual.solve().status == "max iterations"
    res = dual.solve(centre=CENTRE)
    assert res.status == "optimal"
    assert -res.dobj == pytest.approx(IPMJointSDP(s).solve(hc, gamma).ssnr_opt, rel=1e-5)
