"""Channel models: LoS by hand, path loss one-way/two-way, the Rician channel's empirical K factor
and per-entry power, the Gauss-Markov correlation over lag, and bad settings."""

import math

import numpy as np
import pytest

import scenarios
from cfisac_env.physics.layout import to_complex
from cfisac_env.physics.propagation import SPEED_OF_LIGHT, ChannelModel, geometry
from cfisac_env.physics.system import System
from cfisac_env.sim.world import drop_channels

SYSTEM = System(users=2)
UE = np.array([[10.0, 23.0], [90.0, 23.0]])
TG = np.array([50.0, 7.0])


def fixed(model, n=1, **channel):
    """pos2 with UEs and target pinned at UE / TG, ``channel.*`` overridden."""
    over = {"placement.ue_x": [10.0, 10.0], "placement.ue_y": [23.0, 23.0],
            "placement.target_x": [50.0, 50.0], "placement.target_y": [7.0, 7.0],
            "channel.model": model, **{f"channel.{k}": v for k, v in channel.items()}}
    return scenarios.load("pos2", users=n, overrides=over)


def test_los_with_path_loss_by_hand():
    ch = ChannelModel(pathloss_exponent=2.0, reference_distance=10.0)
    h = to_complex(ch.csi(SYSTEM, UE, TG))                                  # (L, M, Q)
    ap = SYSTEM.ap_positions
    for l in range(2):
        for q, (x, y) in enumerate([*UE, TG]):
            dx, dy = x - ap[l, 0], y - ap[l, 1]
            d = math.hypot(dx, dy)
            beta = (d / 10.0) ** -2.0
            amp = beta if q == 2 else math.sqrt(beta)                       # two-way for sensing
            a = np.exp(1j * np.pi * np.arange(16) * dx / d)
            np.testing.assert_allclose(h[l, :, q], amp * a, rtol=2e-6, atol=1e-7)


def test_path_loss_is_unit_inside_the_reference_distance_and_zero_exponent_is_seed():
    ch = ChannelModel(pathloss_exponent=3.0, reference_distance=10.0)
    np.testing.assert_array_equal(ch.gain(np.array([0.0, 5.0, 10.0])), [1.0, 1.0, 1.0])
    assert ch.gain(np.array([20.0]))[0] == pytest.approx(2.0 ** -3)
    assert ChannelModel().is_seed and not ch.is_seed


@pytest.mark.parametrize("model", ["rician", "cluster"])
@pytest.mark.parametrize("k_db", [0.0, 6.0])
def test_empirical_k_factor_and_per_entry_power(model, k_db):
    sc = fixed(model, n=2, k_factor_db=k_db, pathloss_exponent=2.0)
    b = 3000
    ue = np.broadcast_to(UE, (b, 2, 2))
    tg = np.broadcast_to(TG, (b, 2))
    true, observed = drop_channels(sc, ue, tg, np.random.default_rng(0))
    assert observed is true                                                 # perfect CSI
    h = to_complex(true.astype(np.float64))                                 # (B, L, M, Q)
    dist = geometry(sc.system, UE, TG).dist                                 # (L, Q)
    beta = (np.maximum(dist, 10.0) / 10.0) ** -2.0
    power = (np.abs(h) ** 2).mean(axis=(0, 2))                              # (L, Q)
    np.testing.assert_allclose(power[:, :2], beta[:, :2], rtol=0.06)        # one-way, comms
    np.testing.assert_allclose(power[:, 2], beta[:, 2] ** 2, rtol=1e-5)     # two-way, LoS
    comm = h[..., :2]
    los = comm.mean(axis=0)                                                 # E h = LoS part
    scattered = (np.abs(comm - los) ** 2).mean(axis=0)
    k_hat = (np.abs(los) ** 2).mean() / scattered.mean()
    assert 10 * np.log10(k_hat) == pytest.approx(k_db, abs=0.3)


def test_cluster_paths_share_departure_angles_across_ues():
    ch = ChannelModel(model="cluster", paths=8, clusters=2, cluster_spread_deg=0.0)
    sc = ch.draw(System(users=3), np.random.default_rng(1), 1)
    steer = sc.steer[0]                                                     # (L, N, P, M)
    np.testing.assert_array_equal(steer[:, 0], steer[:, 2])                 # same for all UEs
    assert np.unique(np.round(steer[0, 0, :, 1], 12)).size == 2             # two clusters
    rician = ChannelModel(model="rician").draw(System(users=3), np.random.default_rng(1), 1)
    assert not np.allclose(rician.steer[0][:, 0], rician.steer[0][:, 2])


def test_rho_is_jakes_at_one_step():
    ch = ChannelModel(carrier_ghz=3.5)
    x = 2 * np.pi * 1.2 * 3.5e9 / SPEED_OF_LIGHT * 0.01                     # 2 pi f_D dt
    j0 = sum((-1) ** m * (x / 2) ** (2 * m) / math.factorial(m) ** 2 for m in range(12))
    assert ch.rho(np.array([1.2]), 0.01)[0] == pytest.approx(j0, rel=1e-9)
    assert j0 == pytest.approx(0.8155, abs=1e-3)
    assert ch.rho(np.array([0.0]), 0.01)[0] == 1.0
    assert ch.rho(np.array([100.0]), 0.01)[0] >= 0.0                        # clipped past J0's zero


def test_gauss_markov_correlation_over_lag_matches_rho_power_k():
    rng = np.random.default_rng(2)
    rho = np.array([0.9, 0.6])
    g = (rng.standard_normal((4000, 2, 1)) + 1j * rng.standard_normal((4000, 2, 1))) / np.sqrt(2)
    series = [g]
    for _ in range(6):
        g = np.stack([ChannelModel.evolve(x, rho, rng) for x in g])
        series.append(g)
    g0 = series[0]
    for k in range(7):
        corr = (series[k] * g0.conj()).mean(axis=(0, 2)).real / (np.abs(g0) ** 2).mean(axis=(0, 2))
        np.testing.assert_allclose(corr, rho**k, atol=0.03)
        np.testing.assert_allclose((np.abs(series[k]) ** 2).mean(), 1.0, atol=0.04)  # stationary


def test_road_scattered_part_ages_as_gauss_markov_at_the_walking_speed():
    """On the road the fading of a UE walking at v decorrelates as rho(v) ** lag."""
    from policies.evaluation.stress import trajectory

    sc = scenarios.load("road", users=4, overrides={
        "walkers.speed": [1.2, 1.2], "channel.model": "rician", "channel.k_factor_db": 0.0,
        "channel.paths": 16})
    traj = trajectory(sc, 4.0, seed=3)
    ch = ChannelModel.of(sc.config)
    los = to_complex(ChannelModel().csi(sc.system, traj.ue_xy, traj.target_xy).astype(float))
    h = to_complex(traj.true_csi.astype(float))
    s = (h[..., :4] - np.sqrt(ch.los_share) * los[..., :4]) / np.sqrt(1 - ch.los_share)
    rho = ch.rho(np.array([1.2]), traj.dt)[0]
    power = (np.abs(s) ** 2).mean()
    assert power == pytest.approx(1.0, abs=0.1)
    for k in (1, 2, 4):
        corr = (s[k:] * s[:-k].conj()).mean().real / power
        assert corr == pytest.approx(rho**k, abs=0.1), k


def test_bad_channel_settings_are_clear_errors():
    for field, value, words in [("channel.model", "rayleigh", "channel.model"),
                                ("channel.paths", 0, "channel.paths"),
                                ("channel.pathloss_exponent", -1.0, "pathloss_exponent"),
                                ("channel.reference_distance", 0.0, "reference_distance"),
                                ("channel.k_factor_db", float("nan"), "k_factor_db"),
                                ("csi.nmse", -0.1, "csi.nmse"),
                                ("csi.target_angle_error_deg", "x", "target_angle_error_deg")]:
        with pytest.raises(ValueError, match=words):
            scenarios.load("pos2", overrides={field: value})
    with pytest.raises(ValueError, match="multiple"):
        scenarios.load("pos2", overrides={"channel.model": "cluster", "channel.paths": 5,
                                          "channel.clusters": 2})
