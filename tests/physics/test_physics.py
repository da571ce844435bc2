"""Physics against values derived by hand (steering, channels, SINR, SSNR, power)."""

import numpy as np
import pytest
import torch

from cfisac_env import System, csi, steering, to_complex, to_layout
from cfisac_env.physics import metrics


@pytest.fixture
def system():
    return System(users=3)


def random_drop(system, rng):
    ue = np.c_[rng.uniform(0, 100, system.N), rng.uniform(5, 60, system.N)]
    return ue, np.array([rng.uniform(0, 100), rng.uniform(1, 20)])


def test_steering_matches_eq4_by_hand():
    # phi = 60 deg: cos = 0.5, so a_k = exp(j * pi * 0.5 * k) = j^k
    a = steering(np.pi / 3, 4, 0.5)
    np.testing.assert_allclose(a, [1, 1j, -1, -1j], atol=1e-12)
    # spacing is a parameter: d = 0.25 at phi = 0 gives exp(j pi k / 2) as well
    np.testing.assert_allclose(steering(0.0, 4, 0.25), [1, 1j, -1, -1j], atol=1e-12)


def test_csi_from_positions_reproduces_eq4(system):
    rng = np.random.default_rng(1)
    ue, tg = random_drop(system, rng)
    h = to_complex(csi(system, ue, tg))                          # (L, M, Q)
    for l, (ax, ay) in enumerate(system.ap_xy):
        for q, (x, y) in enumerate([*ue, tg]):
            phi = np.arctan2(y - ay, x - ax)
            k = np.arange(system.M)
            np.testing.assert_allclose(h[l, :, q], np.exp(1j * np.pi * k * np.cos(phi)), atol=2e-6)


def test_full_budget_at_target_gives_the_ssnr_bound(system):
    h = csi(system, *random_drop(system, np.random.default_rng(2)))
    w = np.zeros_like(h)
    w[..., -1] = h[..., -1] * np.sqrt(system.P / system.M)[:, None, None]
    assert metrics.ssnr(h, w, system) == pytest.approx(3.2, rel=1e-6)
    assert system.ssnr_bound == pytest.approx(3.2)
    np.testing.assert_allclose(metrics.ap_power(w), system.P, rtol=1e-6)


def test_single_ue_matched_beams_sinr():
    system = System(users=1, power=(1.0, 2.0), ue_noise=0.5)
    h = csi(system, np.array([[40.0, 30.0]]), np.array([60.0, 10.0]))
    w = np.zeros_like(h)
    w[..., 0] = h[..., 0] * np.sqrt(system.P / system.M)[:, None, None]  # matched, full power
    expected = (np.sqrt(16 * 1.0) + np.sqrt(16 * 2.0)) ** 2 / 0.5
    assert metrics.sinr(h, w, system)[0] == pytest.approx(expected, rel=1e-6)


def test_zero_forcing_leaves_no_interuser_interference(system):
    ue, tg = random_drop(system, np.random.default_rng(3))
    h = to_complex(csi(system, ue, tg).astype(np.float64))
    stacked = np.concatenate(list(h[..., : system.N]), axis=0)    # (L M, N)
    f = stacked @ np.linalg.inv(stacked.conj().T @ stacked)        # h_n^H f_k = delta_nk
    w = np.zeros(h.shape, complex)
    w[..., : system.N] = f.reshape(system.L, system.M, system.N) * 0.1
    g_re, g_im = metrics.gains(to_layout(h), to_layout(w), system)
    p = g_re**2 + g_im**2
    off = p[:, : system.N] - np.diag(np.diag(p[:, : system.N]))
    assert np.abs(off).max() < 1e-9 * p.max()
    s = metrics.sinr(to_layout(h), to_layout(w), system)
    np.testing.assert_allclose(s, np.diag(p)[: system.N] / system.ue_noise, rtol=1e-4)


def test_numpy_and_torch_agree(system):
    rng = np.random.default_rng(4)
    h = rng.standard_normal((7, *system.csi_shape)).astype(np.float32)
    w = rng.standard_normal((7, *system.csi_shape)).astype(np.float32)
    ht, wt = torch.tensor(h), torch.tensor(w, requires_grad=True)
    for f in (metrics.sinr, metrics.ssnr, metrics.min_sinr):
        np.testing.assert_allclose(f(ht, wt, system).detach().numpy(), f(h, w, system),
                                   rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(metrics.normalize_power(wt, system).detach().numpy(),
                               metrics.normalize_power(w, system), rtol=1e-5, atol=1e-7)
    metrics.ssnr(ht, metrics.normalize_power(wt, system), system).sum().backward()
    assert wt.grad is not None and torch.isfinite(wt.grad).all() and wt.grad.abs().sum() > 0


def test_power_normalisation_and_projection(system):
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, *system.csi_shape))
    np.testing.assert_allclose(metrics.ap_power(metrics.normalize_power(w, system)),
                               np.broadcast_to(system.P, (4, system.L)), rtol=1e-9)
    small = 0.01 * w / np.sqrt(metrics.ap_power(w))[..., None, None, None]
    mixed = small.copy()
    mixed[:, 1] = w[:, 1]                                            # AP 1 over budget
    out, scaled = metrics.project_power(mixed, system)
    assert scaled[:, 1].all() and not scaled[:, 0].any()
    np.testing.assert_array_equal(out[:, 0], mixed[:, 0])            # within budget: unchanged
    np.testing.assert_allclose(metrics.ap_power(out)[:, 1], system.P[1], rtol=1e-9)


def test_systems_with_other_ap_counts_mismatch_in_one_line():
    import scenarios

    two = scenarios.load("pos2", users=8).system
    eight = scenarios.load("street", users=8).system
    diff = two.mismatch(eight)
    assert any(d.startswith("ap_xy") for d in diff)
    with pytest.raises(ValueError, match="made for another system"):
        two.require_same(eight, "checkpoint")
    assert two.mismatch(two) == []


@pytest.mark.parametrize("torch_", [False, True], ids=["numpy", "torch"])
@pytest.mark.parametrize("f", [metrics.ssnr, metrics.sinr, metrics.min_sinr, metrics.gains,
                               metrics.g1_g2])
def test_metrics_refuse_arrays_of_another_system(system, f, torch_):
    # Q = N + 1 = 4 here: a CSI with one more column used to give wrong numbers silently
    L, _, M, Q = system.csi_shape
    ok = np.zeros(system.csi_shape)
    wrong = {"Q + 1": (L, 2, M, Q + 1), "L + 1": (L + 1, 2, M, Q), "M - 1": (L, 2, M - 1, Q),
             "no real/imag axis": (L, M, Q)}
    as_ = torch.tensor if torch_ else np.asarray
    expected = (rf"\(L, 2, M, Q\) = \({L}, 2, {M}, {Q}\) or, batched, \(B, L, 2, M, Q\) = "
                rf"\(B, {L}, 2, {M}, {Q}\)")
    for shape in wrong.values():
        got = rf"got \({', '.join(map(str, shape))}\)"
        with pytest.raises(ValueError, match=rf"^csi must have shape {expected}.*{got}$"):
            f(as_(np.zeros(shape)), as_(ok), system)
        with pytest.raises(ValueError, match=rf"^beams must have shape {expected}.*{got}$"):
            f(as_(ok), as_(np.zeros(shape)), system)
    with pytest.raises(ValueError, match=r"csi \(3, 2, 2, 16, 4\) and beams \(4, 2, 2, 16, 4\)"):
        f(as_(np.zeros((3, *system.csi_shape))), as_(np.zeros((4, *system.csi_shape))), system)
    with pytest.raises(ValueError, match="complex"):
        f(as_(ok + 0j), as_(ok), system)


def test_power_helpers_refuse_beams_of_another_system(system):
    L, _, M, Q = system.csi_shape
    for beams in (np.ones((L + 1, 2, M, Q)), torch.ones(4, L, 2, M, Q + 1)):
        with pytest.raises(ValueError, match=rf"beams must have shape .*got \({len(beams)}, "):
            metrics.normalize_power(beams, system)
        with pytest.raises(ValueError, match=r"beams must have shape \(L, 2, M, Q\)"):
            metrics.project_power(beams, system)


def test_torch_metrics_promote_mixed_dtypes(system):
    rng = np.random.default_rng(6)
    h = rng.standard_normal((3, *system.csi_shape))
    w = rng.standard_normal((3, *system.csi_shape))
    h32, w64 = torch.tensor(h, dtype=torch.float32), torch.tensor(w, requires_grad=True)
    for f in (metrics.ssnr, metrics.sinr, metrics.min_sinr):
        out = f(h32, w64, system)             # float32 CSI, float64 beams: computed in float64
        assert out.dtype == torch.float64
        want = f(h32.double(), w64, system)
        torch.testing.assert_close(out, want, rtol=0, atol=0)
        assert f(w64.detach(), h32, system).dtype == torch.float64
    metrics.ssnr(h32, w64, system).sum().backward()
    assert w64.grad is not None and w64.grad.dtype == torch.float64
    # NumPy beams with torch CSI: a tensor on the CSI's device
    np.testing.assert_allclose(metrics.ssnr(h32, w, system).numpy(), metrics.ssnr(h, w, system),
                               rtol=1e-5)


def test_nan_in_metrics_propagates_without_a_scan(system):
    # the metrics check shapes only (O(1)); NaN gives NaN scores, in both namespaces, and the
    # public boundary (env.step, Policy.act: validation.check_beams) is what rejects it
    w = np.ones((2, *system.csi_shape))
    w[0, 0, 0, 0, 0] = np.nan
    h = np.ones((2, *system.csi_shape))
    for a, b in ((h, w), (torch.tensor(h), torch.tensor(w))):
        out = np.asarray(metrics.ssnr(a, b, system))
        assert np.isnan(out[0]) and np.isfinite(out[1])
