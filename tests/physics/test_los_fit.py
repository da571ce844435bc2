"""The single-path LoS fit of estimated CSI: the identity on LoS CSI (with or without path loss),
a denoiser under an estimation error, the learned student runs it only under a LoS channel."""

import numpy as np
import pytest

import policies
import scenarios
from cfisac_env.physics.layout import to_complex
from cfisac_env.physics.los_fit import los_fit
from cfisac_env.sim.drops import sample_drops
from policies.evaluation.evaluate import constructor_options


def _drops(over, n=40, seed=0):
    sc = scenarios.load("pos2", users=8, overrides=over)
    return sc, sample_drops(sc, np.random.default_rng(seed), n)


def _err(x, truth):
    h, t = to_complex(x.astype(float)), to_complex(truth.astype(float))
    return float((np.abs(h - t) ** 2).sum() / (np.abs(t) ** 2).sum())


@pytest.mark.parametrize("over", [{}, {"channel.pathloss_exponent": 2.0}])
def test_exact_los_csi_is_returned_unchanged(over):
    sc, d = _drops(over)
    fit = los_fit(d.true, sc.system.spacing)
    assert fit.shape == d.true.shape and fit.dtype == np.float32
    np.testing.assert_allclose(fit, d.true, atol=2e-6 * float(np.abs(d.true).max()))


def test_estimation_error_shrinks_by_an_order_of_magnitude():
    sc, d = _drops({"csi.nmse": 0.05}, n=100)
    raw = _err(d.observed[..., :8], d.true[..., :8])
    fitted = _err(los_fit(d.observed, sc.system.spacing)[..., :8], d.true[..., :8])
    assert raw == pytest.approx(0.05, rel=0.1)
    assert fitted < raw / 10                      # 2 real unknowns against 2 M noisy numbers


def test_one_path_with_a_real_gain_is_recovered_from_noise():
    # h = g a(u) with g = 0.3, u = 0.37: the fit's angle and gain from one noisy column
    m, u, g = 64, 0.37, 0.3
    a = g * np.exp(2j * np.pi * 0.5 * np.arange(m) * u)
    rng = np.random.default_rng(1)
    h = a + 0.05 * g * (rng.standard_normal(m) + 1j * rng.standard_normal(m))
    x = np.stack([h.real, h.imag])[:, :, None]                # (2, M, 1)
    f = los_fit(x, 0.5)[0, :, 0] + 1j * los_fit(x, 0.5)[1, :, 0]
    assert abs(f[0]) == pytest.approx(g, rel=0.02)            # phase 0 at antenna 0, gain g
    assert np.angle(f[1] / f[0]) / np.pi == pytest.approx(u, abs=1e-3)


def test_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, M, Q\)"):
        los_fit(np.zeros((3, 16, 9), np.float32), 0.5)


def test_student_fits_under_los_only():
    sc, d = _drops({"csi.nmse": 0.05}, n=4)
    s = sc.system
    on = policies.make("student", s, scenario="pos2")
    off = policies.make("student", s, scenario="pos2", channel="rician")
    assert on.los_fit and not off.los_fit
    x = d.observed[0]
    np.testing.assert_allclose(on.act(x), off.act(los_fit(x, s.spacing)), atol=1e-5)
    for backend in ("numpy", "torch"):
        np.testing.assert_allclose(policies.make("student", s, scenario="pos2",
                                                 backend=backend).act(x), on.act(x), atol=1e-5)
    rician = scenarios.load("pos2", users=8, overrides={"channel.model": "rician"})
    assert constructor_options("student", rician, {})[0]["channel"] == "rician"
    assert "channel" not in constructor_options("cvx", rician, {})[0]
    with pytest.raises(ValueError, match="channel must be one of"):
        policies.make("student", s, scenario="pos2", channel="fading")
