"""Cell-free baselines: L-P-MMSE / MR with a sensing beam, user-centric clusters, every classic
policy at every size."""

import warnings

import numpy as np
import pytest

import policies
import scenarios
from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_complex
from cfisac_env.physics.system import System
from policies.classic import serving_sets

CLASSIC = ("mrt-target", "mrt-users", "ns-rzf", "ns-sensing", "cb-sensing", "lp-mmse")


@pytest.fixture(scope="module")
def street():
    sc = scenarios.load("street", users=16)
    h, _, _ = sc.drops(np.random.default_rng(3), 6)
    return sc.system, h


@pytest.mark.parametrize("name,users", [("street", 16), ("street", 32), ("block", 32),
                                        ("pos2", 8)])
@pytest.mark.parametrize("policy", CLASSIC)
def test_every_classic_policy_runs_within_budget_at_every_size(name, users, policy):
    sc = scenarios.load(name, users=users)
    h, _, _ = sc.drops(np.random.default_rng(0), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        beams = policies.make(policy, sc.system).act(h)
    assert beams.shape == h.shape and np.all(np.isfinite(beams))
    assert np.all(metrics.ap_power(beams) <= sc.system.P * (1 + 1e-5))


def test_lp_mmse_single_ue_single_ap_is_matched_filter_and_full_budget():
    # One AP, one UE: C = p h h^H + I, and C^-1 h = h / (1 + p ||h||^2): the MR direction.
    system = System(ap_xy=((0.0, 0.0),), antennas=8, users=1)
    sc_h = np.exp(1j * np.pi * 0.3 * np.arange(8))
    a = np.exp(-1j * np.pi * 0.7 * np.arange(8))
    h = np.stack([sc_h, a], axis=-1)[None, None]                             # (1, 1, M, Q)
    x = np.stack([h.real, h.imag], axis=-3).astype(np.float32)
    w = to_complex(policies.make("lp-mmse", system, rho=0.6).act(x).astype(float))[0, 0]
    np.testing.assert_allclose(w[:, 0], np.sqrt(0.6) * sc_h / np.sqrt(8), atol=1e-6)
    np.testing.assert_allclose(np.sum(np.abs(w) ** 2), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(w[:, 1]) ** 2, 0.4, rtol=1e-6)


def test_lp_mmse_is_local(street):
    system, h = street
    pol = policies.make("lp-mmse", system)
    base = pol.act(h)
    other = h.copy()
    other[:, 3] = np.random.default_rng(1).normal(size=other[:, 3].shape)  # change AP 3 only
    changed = pol.act(other)
    keep = [l for l in range(system.L) if l != 3]
    np.testing.assert_array_equal(base[:, keep], changed[:, keep])
    assert not np.allclose(base[:, 3], changed[:, 3])
    assert pol.distributed and pol.timing == "slowest AP"


def test_sensing_beam_leans_away_from_served_ues():
    # The MMSE sensing beam leaks less into the UEs than the conventional beam at equal power
    # (at N = 4 a UE's p ||h||^2 = 2 against the unit noise: a third less leakage).
    sc = scenarios.load("street", users=4)
    system, (h, _, _) = sc.system, sc.drops(np.random.default_rng(3), 20)
    lp = to_complex(policies.make("lp-mmse", system).act(h).astype(float))
    cb = to_complex(policies.make("cb-sensing", system).act(h).astype(float))
    hc = to_complex(h.astype(float))[..., : system.N]
    leak = lambda w: np.abs(np.einsum("blmn,blm->bln", hc.conj(), w[..., -1])) ** 2  # noqa: E731
    assert leak(lp).sum() < 0.75 * leak(cb).sum()


def test_clusters_pick_the_strongest_aps_and_break_ties_at_broadside():
    system = System(ap_xy=((0.0, 0.0), (50.0, 0.0), (100.0, 0.0)), antennas=8, users=2)
    sc_ue = np.array([[[52.0, 20.0], [2.0, 30.0]]])                     # near AP 1, near AP 0
    from cfisac_env.physics.channels import csi

    hc = to_complex(csi(system, sc_ue, np.array([[10.0, 5.0]])).astype(float))
    serve = serving_sets(hc, system, 1)                                   # unit gain: ties
    assert serve.shape == (1, 3, 2)
    np.testing.assert_array_equal(serve[0, :, 0], [False, True, False])
    np.testing.assert_array_equal(serve[0, :, 1], [True, False, False])
    hc[:, 2, :, 1] *= 3.0                                                 # AP 2 now strongest
    assert serving_sets(hc, system, 1)[0, 2, 1]


@pytest.mark.parametrize("policy", ["lp-mmse", "ns-rzf"])
def test_cluster_option_serves_each_ue_from_k_aps_only(street, policy):
    system, h = street
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pol = policies.make(policy, system, cluster=2)
    w = to_complex(pol.act(h).astype(float))[..., : system.N]             # (B, L, M, N)
    active = np.linalg.norm(w, axis=-2) > 1e-9                            # (B, L, N)
    np.testing.assert_array_equal(active.sum(axis=1), 2)
    # ns-rzf at M = N = 16: no null space, the sensing share (1 - rho) P stays unused
    full = 0.5 if policy == "ns-rzf" else 1.0
    np.testing.assert_allclose(metrics.ap_power(pol.act(h))[active.any(-1)].max(), full,
                               rtol=1e-5)


def test_a_policy_that_cannot_run_says_so_before_any_work(street):
    system, h = street
    for bad in (0, 9, 2.5, True):
        with pytest.raises(ValueError, match="cluster must be"):
            policies.make("lp-mmse", system, cluster=bad)
    with pytest.raises(ValueError, match="precoder"):
        policies.make("lp-mmse", system, precoder="zf")
    with pytest.warns(UserWarning, match="null-space sensing beam is zero"):
        policies.make("ns-rzf", system)                                   # M = N = 16
    pol = policies.make("lp-mmse", system, cluster=2)
    with pytest.raises(ValueError, match="whole"):
        pol.act_ap(0, h[:, 0])


def test_decide_counts_the_slowest_ap_plus_cluster_formation(street):
    system, h = street
    d = policies.make("lp-mmse", system, cluster=3).decide(h)
    assert d.beams.shape == h.shape and d.seconds > 0


def test_lp_mmse_drives_the_pettingzoo_view_agent_by_agent():
    import gymnasium as gym

    import cfisac_env
    from cfisac_env.envs.multiagent import act_agents

    penv = cfisac_env.parallel_env(scenario="street", users=8)
    pol = policies.make("lp-mmse", penv.system)
    obs, _ = penv.reset(seed=2)
    _, rewards, _, _, infos = penv.step(act_agents(pol, obs))
    env = gym.make(cfisac_env.ENV_ID, scenario="street", users=8)
    full, _ = env.reset(seed=2)
    _, r, _, _, _ = env.step(pol.act(full))
    assert rewards["ap_0"] == pytest.approx(r, rel=1e-6) and infos["ap_7"]["ssnr"] > 0
