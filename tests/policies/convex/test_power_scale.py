"""The power-scale problem by the dual method: the same t* as Clarabel's SOCP, certified
decisions, verified beams, and the same gamma_high as the Clarabel root finding."""

from __future__ import annotations

import numpy as np
import pytest

from cfisac_env.physics.layout import to_complex
from policies.classic import ns_sensing_all
from policies.convex.power_scale import DualPowerScale
from policies.convex.socp import FastMaxMinSINR, PowerScaleSOCP
from runners.bench_cvx import scale_scenario


@pytest.fixture(scope="module")
def drop():
    sc = scale_scenario(3, 8, 8)
    x, _, _ = sc.drops(np.random.default_rng(3), 2)
    return sc.system, x


def _loaded(system, x, i):
    hc = to_complex(x[i].astype(float))
    sense = ns_sensing_all(hc[None], system, 0.5)[0]
    ref = PowerScaleSOCP(system, 0.5)
    dual = DualPowerScale(system, 0.5, PowerScaleSOCP(system, 0.5))
    ref.load(hc, sense)
    dual.load(hc, sense)
    return ref, dual


def test_t_star_equals_the_socp_and_feasible_beams_are_verified(drop):
    system, x = drop
    ref, dual = _loaded(system, x, 0)
    t_ref = [ref.solve(g)[0] for g in (0.05, 0.2, 0.5, 1.0, 2.0)]
    assert min(t_ref) < 1.0 < max(t_ref)                 # both sides of the root are tested
    for g, ta in zip((0.05, 0.2, 0.5, 1.0, 2.0), t_ref, strict=True):
        tb, X, status = dual.solve(g, tight=True)
        assert status == "optimal"
        assert tb == pytest.approx(ta, rel=1e-6)
        if ta <= 1.0:
            comm = dual.verified(g, X)                   # SINR >= gamma within rho P_l
            assert comm is not None
        else:                                            # infeasible: no beams meet the budgets
            assert X is None or dual.verified(g, X) is None
    print("handed to Clarabel:", dual.fallbacks)
    assert dual.fallbacks <= 1


def test_negative_powers_give_no_beams(drop):
    system, x = drop
    _, dual = _loaded(system, x, 0)
    G = -np.eye(dual.h.shape[0], system.N, dtype=complex)   # directions that cannot meet gamma
    assert dual.beams(0.5, G) is None


@pytest.mark.parametrize("i", [0, 1])
def test_dual_root_finding_gives_the_clarabel_gamma_high(drop, i):
    system, x = drop
    hc = to_complex(x[i].astype(float))
    sense = ns_sensing_all(hc[None], system, 0.5)[0]
    a = FastMaxMinSINR(system, 0.5, oracle="dual").solve(hc, sense)
    b = FastMaxMinSINR(system, 0.5, oracle="clarabel").solve(hc, sense)
    assert a.gamma_high == b.gamma_high
    np.testing.assert_allclose(a.comm, b.comm, rtol=0, atol=1e-3 * np.abs(b.comm).max())


def test_unknown_oracle_is_a_clear_error(drop):
    with pytest.raises(ValueError, match="oracle must be one of"):
        FastMaxMinSINR(drop[0], 0.5, oracle="magic")
