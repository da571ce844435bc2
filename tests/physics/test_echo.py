"""The echo model, the ML angle estimator against the ULA's Cramér-Rao bound, the detector."""

import numpy as np
import pytest

from cfisac_env.physics import echo as E
from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_complex
from cfisac_env.physics.system import System

M, T = 16, 32


def omni(rng, k, m=M, t=T, power=1.0):
    """``k`` omnidirectional blocks: one QPSK stream per antenna, total power ``power``."""
    return E.qpsk(rng, (k, m, t)) * np.sqrt(power / m)


def test_echo_snr_is_the_ssnr_share():
    # Mean received echo power per antenna and snapshot over the radar noise is each AP's share
    # of eq. 6's SSNR; the shares sum to metrics.ssnr.
    rng = np.random.default_rng(0)
    s = System(users=3)
    csi = rng.normal(size=(*s.csi_shape,)).astype(np.float32)
    beams = rng.normal(size=(*s.csi_shape,)).astype(np.float32) * 0.2
    share = E.ssnr_per_ap(csi, beams, s)
    assert share.shape == (s.L,)
    np.testing.assert_allclose(share.sum(), metrics.ssnr(csi, beams, s), rtol=1e-12)
    col = csi[:, 0, :, -1] + 1j * csi[:, 1, :, -1]                  # (L, M)
    w = to_complex(np.asarray(beams, dtype=np.float64))
    k = 3000
    sym = E.qpsk(rng, (k, s.L, s.Q, T))
    alpha = E.cn(rng, (k, s.L), s.sensing_gain)
    y = E.echo(w @ sym, col, np.full((k, s.L), 0.2), alpha, np.zeros((k, s.L, s.M, T)))
    got = (np.abs(y) ** 2).mean(axis=(0, 2, 3)) / s.radar_noise
    np.testing.assert_allclose(got, share, rtol=0.06)


def crb_closed_form(alpha2, c, noise, m=M, spacing=0.5):
    """Hand-derived bound of u for C = c I: noise / (2 alpha2 * 2 c (2 pi d)^2 M^2 (M^2-1)/12)."""
    return noise / (2 * alpha2 * 2 * c * (2 * np.pi * spacing) ** 2 * m ** 2 * (m ** 2 - 1) / 12)


def test_crb_matches_hand_derivation_for_orthogonal_streams():
    u = np.array([-0.7, 0.0, 0.31])
    c = 5.0 * np.broadcast_to(np.eye(M), (3, M, M))
    np.testing.assert_allclose(E.crb_u(u, c, np.full(3, 0.2), 1.5),
                               crb_closed_form(0.2, 5.0, 1.5), rtol=1e-10)
    assert E.crb_u(u, np.zeros((3, M, M)), np.full(3, 0.2), 1.0).tolist() == [np.inf] * 3


def draw_errors(snr_db, k=500, u0=0.3, seed=1):
    """ML errors of u and the mean CRB at per-antenna, per-snapshot SNR ``snr_db``."""
    rng = np.random.default_rng(seed)
    x = omni(rng, k)
    alpha2 = 10 ** (snr_db / 10)          # |c^H x_t|^2 = 1 on average: SNR = alpha2 / noise
    alpha = np.sqrt(alpha2) * np.exp(2j * np.pi * rng.random(k))
    u = np.full(k, u0)
    y = E.echo(x, E.steering(u, M), u, alpha, E.cn(rng, (k, M, T)))
    est = E.ml_u(y, x, 1.0)
    _, c = E.statistics(y, x)
    return est.u - u0, E.crb_u(u, c, np.full(k, alpha2), 1.0)


# matched-filter output SNR = M T SNR: -12 dB -> 15.1 dB, -21 dB -> 6.1 dB
@pytest.mark.parametrize("snr_db", [-12.0, -6.0, 0.0])
def test_ml_attains_the_crb_above_the_threshold(snr_db):
    err, crb = draw_errors(snr_db)
    ratio = np.mean(err ** 2) / np.mean(crb)
    assert 0.7 < ratio < 1.3, ratio
    assert abs(np.mean(err)) < 3 * np.sqrt(np.mean(crb) / len(err))     # unbiased


@pytest.mark.parametrize("snr_db", [-21.0, -24.0])
def test_ml_breaks_down_below_the_threshold(snr_db):
    # Below ~12 dB of output SNR, outliers (side-lobe peaks) take over: the error variance is
    # far above the bound and many estimates land away from the main lobe (|du| > 2/M).
    err, crb = draw_errors(snr_db)
    assert np.mean(err ** 2) / np.mean(crb) > 20
    assert np.mean(np.abs(err) > 2 / M) > 0.2


def test_square_law_detector_swerling1():
    rng = np.random.default_rng(2)
    k, pfa, snr = 3000, 0.01, -12.0         # output SNR = M T 10^-1.2 = 32.3
    x = omni(rng, k)
    u = np.full(k, -0.4)
    var1 = 10 ** (snr / 10)
    for var, want in ((0.0, pfa), (var1, E.pd_swerling1(M * T * var1, pfa))):
        alpha = E.cn(rng, (k,), var) if var else np.zeros(k)
        y = E.echo(x, E.steering(u, M), u, alpha, E.cn(rng, (k, M, T)))
        r, c = E.statistics(y, x)
        stat = E.likelihood(u[:, None], r, c)[0][:, 0]
        got = np.mean(stat > E.threshold(pfa))
        assert abs(got - want) < 4 * np.sqrt(want * (1 - want) / k) + 1e-3, (got, want)


def test_network_pd():
    snr = np.array([[3.0], [0.0]])
    np.testing.assert_allclose(E.network_pd(snr, 4, 2, 1e-3)[0], E.pd_swerling1(24.0, 1e-3))
    # two APs, one blind: each detector at pfa_ap = 1 - sqrt(1 - pfa), OR-fused
    pfa_ap = 1 - (1 - 1e-3) ** 0.5
    np.testing.assert_allclose(E.network_pd(np.array([1.0, 0.0]), 4, 2, 1e-3),
                               1 - (1 - E.pd_swerling1(8.0, pfa_ap)) * (1 - pfa_ap))
    assert E.network_pd(np.zeros(2), 4, 2, 1e-3) == pytest.approx(1e-3)


def test_config_errors():
    assert E.SensingConfig.of({}).mode == "oracle"
    with pytest.raises(ValueError, match="sensing.mode"):
        E.SensingConfig.of({"sensing": {"mode": "sonar"}})
    with pytest.raises(ValueError, match="unknown \\[sensing\\] fields"):
        E.SensingConfig.of({"sensing": {"snapshot": 3}})
    with pytest.raises(ValueError, match="sensing.snapshots"):
        E.SensingConfig.of({"sensing": {"snapshots": 0}})
    with pytest.raises(ValueError, match="sensing.pfa"):
        E.SensingConfig.of({"sensing": {"pfa": 1.0}})
