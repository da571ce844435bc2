"""Classic beams against hand-derived values and the Demirhan reference (a stored fixture)."""


import numpy as np
import pytest

import policies
from cfisac_env.physics import metrics
from cfisac_env.physics.channels import csi
from cfisac_env.physics.layout import to_complex
from cfisac_env.physics.system import System

NS_RZF = 0  # scheme index in the fixture


@pytest.mark.parametrize("rho_index", range(7))
def test_ns_rzf_matches_reference_per_drop(ref, drops, rho_index):
    system, x = drops
    beams = policies.make("ns-rzf", system, rho=ref["rho"][rho_index]).act(x)
    np.testing.assert_allclose(metrics.ssnr(x, beams, system), ref["ssnr"][:, rho_index, NS_RZF],
                               rtol=2e-4)
    np.testing.assert_allclose(metrics.sinr(x, beams, system), ref["sinr"][:, rho_index, NS_RZF],
                               rtol=2e-4)


def test_mrt_target_reaches_ssnr_bound(drops):
    system, x = drops
    beams = policies.make("mrt-target", system).act(x)
    np.testing.assert_allclose(metrics.ssnr(x, beams, system), system.ssnr_bound, rtol=1e-5)
    np.testing.assert_allclose(metrics.ap_power(beams), np.tile(system.P, (len(x), 1)), rtol=1e-5)


def test_mrt_users_is_conjugate_equal_power(drops):
    system, x = drops
    w = to_complex(policies.make("mrt-users", system).act(x).astype(float))
    h = to_complex(x.astype(float))
    n, m = system.N, system.M
    np.testing.assert_allclose(w[..., :n], h[..., :n] / np.sqrt(n * m), atol=1e-6)
    assert np.all(w[..., n] == 0)


@pytest.mark.parametrize("rho", [0.0, 0.3, 1.0])
def test_mrt_splits_conjugate_beams_at_rho(drops, rho):
    system, x = drops
    w = to_complex(policies.make("mrt", system, rho=rho).act(x).astype(float))
    h = to_complex(x.astype(float))
    n, m = system.N, system.M   # unit-modulus LoS entries: ||h_ln||^2 = ||a_l||^2 = M
    np.testing.assert_allclose(w[..., :n], h[..., :n] * np.sqrt(rho / (n * m)), atol=1e-6)
    np.testing.assert_allclose(w[..., n], h[..., n] * np.sqrt((1 - rho) / m), atol=1e-6)
    np.testing.assert_allclose(metrics.ap_power(policies.make("mrt", system, rho=rho).act(x)),
                               np.tile(system.P, (len(x), 1)), rtol=1e-5)
    # the sensing beam alone reaches (1 - rho) of the bound; the UE beams only add to it
    assert np.all(metrics.ssnr(x, policies.make("mrt", system, rho=rho).act(x), system)
                  >= (1 - rho) * system.ssnr_bound * (1 - 1e-5))


@pytest.mark.parametrize("name", ["ns-sensing", "cb-sensing"])
def test_sensing_beams_power_and_direction(drops, name):
    system, x = drops
    w = to_complex(policies.make(name, system, rho=0.25).act(x).astype(float))
    h = to_complex(x.astype(float))
    np.testing.assert_allclose(np.sum(np.abs(w[..., -1]) ** 2, axis=-1), 0.75, rtol=1e-5)
    assert np.all(w[..., :-1] == 0)
    leak = np.abs(np.einsum("blmn,blm->bln", h[..., :-1].conj(), w[..., -1]))
    if name == "ns-sensing":   # nulls every user of its own AP
        assert leak.max() < 1e-4
    else:                      # CB = a_l / sqrt(M) scaled
        np.testing.assert_allclose(w[..., -1], h[..., -1] * np.sqrt(0.75 / system.M), atol=1e-6)


def test_hand_derived_single_antenna_rzf():
    # M = 1, one AP, one UE at the AP's broadside (h = 1): RZF beam = sqrt(rho P) and SINR =
    # rho P / (|s|^2 + 1); the NS beam is zero (a lies in the user's span when M = N).
    system = System(ap_xy=((0.0, 0.0),), antennas=1, users=1)
    x = csi(system, np.array([[0.0, 10.0]]), np.array([5.0, 10.0]))
    beams = policies.make("ns-rzf", system, rho=0.4).act(x)
    np.testing.assert_allclose(metrics.sinr(x, beams, system), [0.4], rtol=1e-6)


def test_bad_rho_and_bad_shape_are_value_errors():
    system = System()
    with pytest.raises(ValueError, match="rho"):
        policies.make("ns-rzf", system, rho=1.5)
    with pytest.raises(ValueError, match="shape"):
        policies.make("ns-rzf", system).act(np.zeros((2, 2, 16, 3), np.float32))
