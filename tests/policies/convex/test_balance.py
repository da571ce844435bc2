"""SINR balancing: certified bounds on gamma* at every iteration, the power-scale SOCP's root
when run to convergence, and the reference bisection's gamma_high without power-scale solves."""

from __future__ import annotations

import numpy as np
import pytest

from cfisac_env.physics.layout import to_complex
from policies.classic import ns_sensing_all
from policies.convex.balance import balance, downlink_shares
from policies.convex.socp import FastMaxMinSINR, MaxMinSINR, PowerScaleSOCP
from runners.bench_cvx import scale_scenario


@pytest.fixture(scope="module", params=[(2, 5, 8), (4, 8, 4)], ids=["L2-N5-M8", "L4-N8-M4"])
def loaded(request):
    """A Clarabel power-scale problem loaded with one drop (M < N in the second: r = M)."""
    sc = scale_scenario(*request.param)
    x, _, _ = sc.drops(np.random.default_rng(5), 1)
    hc = to_complex(x[0].astype(float))
    sense = ns_sensing_all(hc[None], sc.system, 0.5)[0]
    socp = PowerScaleSOCP(sc.system, 0.5)
    socp.load(hc, sense)
    return sc.system, hc, sense, socp, 0.5 * np.asarray(sc.system.P, dtype=float)


def test_every_iterate_brackets_the_socp_root_and_converges_to_it(loaded):
    system, _, _, socp, budget = loaded
    seen: list[tuple[float, float]] = []

    def record(lo: float, hi: float) -> bool:
        seen.append((lo, hi))
        return hi - lo <= 1e-10 * hi

    b = balance(socp.h, socp.nu2, budget, record)
    assert b is not None and b.iterations == len(seen)
    root = 0.5 * (b.lower + b.upper)
    # t*(gamma) of the SOCP is 1 at gamma*: just below the root feasible, just above not
    assert socp.solve(root * (1 - 1e-5))[0] < 1.0 < socp.solve(root * (1 + 1e-5))[0]
    los, his = np.array(seen).T
    assert np.all(los <= root * (1 + 1e-9)) and np.all(his >= root * (1 - 1e-9))
    assert his[0] > 1.001 * root                       # the first bounds are loose: a real test
    assert np.all(np.diff(his) <= 0) and np.all(np.diff(los) >= 0)


def test_lower_bound_beams_meet_gamma_within_every_budget(loaded):
    system, hc, sense, socp, budget = loaded
    b = balance(socp.h, socp.nu2, budget, lambda lo, hi: hi - lo <= 1e-3 * hi)
    p, share = downlink_shares(socp.h, socp.nu2, b.G, b.lower, budget)
    assert np.all(share <= 1.0 + 1e-12)
    assert socp.verified(b.lower, b.G * np.sqrt(p)) is not None     # the metric code's check
    # 1 % above the bound the same directions need more than some AP's budget (or cannot reach it)
    above = downlink_shares(socp.h, socp.nu2, b.G, 1.01 * b.lower, budget)
    assert above is None or above[1].max() > 1.0


def test_gamma_high_of_the_reference_bisection_without_solves(loaded):
    system, hc, sense, _, _ = loaded
    ref = MaxMinSINR(system, 0.5).solve(hc, sense)
    fast = FastMaxMinSINR(system, 0.5)
    res = fast.solve(hc, sense, need_beams=False)
    assert res.gamma_high == pytest.approx(ref.gamma_high, abs=1e-12)
    assert res.solves == 0 and 0 < res.iterations <= 60
    unbracketed = FastMaxMinSINR(system, 0.5, bracket=False).solve(hc, sense, need_beams=False)
    assert unbracketed.gamma_high == pytest.approx(ref.gamma_high, abs=1e-12)
    assert unbracketed.solves > 0 and unbracketed.iterations == 0


def test_warm_start_from_the_same_drop_needs_fewer_iterations(loaded):
    system, _, _, socp, budget = loaded
    done = lambda lo, hi: hi - lo <= 1e-6 * hi            # noqa: E731
    cold = balance(socp.h, socp.nu2, budget, done)
    warm = balance(socp.h, socp.nu2, budget, done, warm=(cold.mu, cold.q))
    assert warm.iterations < cold.iterations
    assert warm.lower == pytest.approx(cold.lower, rel=1e-5)


def test_a_ue_without_channel_breaks_the_uplink_down_cleanly(loaded):
    _, _, _, socp, budget = loaded
    h = socp.h.copy()
    h[:, 0] = 0.0
    assert balance(h, socp.nu2, budget, lambda lo, hi: False) is None
