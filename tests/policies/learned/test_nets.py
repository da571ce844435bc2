"""Per-AP networks: shapes, budgets, eq. 13/15 layout, AP independence, export."""

import dataclasses

import numpy as np
import pytest
import torch

import scenarios
from cfisac_env.physics import metrics
from policies.learned.nets import ARCHS, DistributedNets, export_ap, flatten_eq13, unflatten_eq15


@pytest.fixture(scope="module")
def system():
    # Unequal budgets so that a per-AP normalisation mistake shows.
    return dataclasses.replace(scenarios.load("pos2", users=3).system, power=(1.0, 2.5))


@pytest.fixture(scope="module")
def csi(system):
    sc = scenarios.load("pos2", users=3)
    return torch.from_numpy(sc.drops(np.random.default_rng(0), 6)[0])


@pytest.mark.parametrize("arch", ARCHS)
def test_shape_and_full_budget(arch, system, csi):
    torch.manual_seed(0)
    nets = DistributedNets(system, arch, width=4).eval()
    with torch.no_grad():
        beams = nets(csi)
    assert beams.shape == csi.shape
    np.testing.assert_allclose(metrics.ap_power(beams).numpy(),
                               np.broadcast_to([1.0, 2.5], (6, 2)), rtol=1e-5)


@pytest.mark.parametrize("arch", ["cnn", "cae", "unet-f5", "gram-mlp"])
def test_ap_beams_depend_only_on_own_csi(arch, system, csi):
    torch.manual_seed(1)
    nets = DistributedNets(system, arch, width=4).eval()
    other = csi.clone()
    other[:, 1] = torch.flip(other[:, 1], dims=[0])       # AP 1 sees other drops
    with torch.no_grad():
        a, b = nets(csi), nets(other)
    torch.testing.assert_close(a[:, 0], b[:, 0], rtol=0, atol=0)
    assert not torch.allclose(a[:, 1], b[:, 1])


def test_eval_mode_output_independent_of_batch(system, csi):
    torch.manual_seed(2)
    nets = DistributedNets(system, "unet", width=4)
    nets.train()
    nets(csi)                                               # move the batch-norm statistics
    nets.eval()
    with torch.no_grad():
        torch.testing.assert_close(nets(csi)[:1], nets(csi[:1]), rtol=1e-5, atol=1e-6)


def test_eq13_eq15_layout():
    m, q = 3, 2
    x = torch.arange(2 * m * q, dtype=torch.float32).reshape(1, 2, m, q)
    v = flatten_eq13(x)[0, 0]
    # Real part of column 0 (h_l1), real part of column 1 (a_l), then the imaginary parts.
    expected = torch.cat([x[0, 0, :, 0], x[0, 0, :, 1], x[0, 1, :, 0], x[0, 1, :, 1]])
    torch.testing.assert_close(v, expected)
    torch.testing.assert_close(unflatten_eq15(flatten_eq13(x).flatten(1), m, q), x)


def test_unknown_arch_is_value_error(system):
    with pytest.raises(ValueError, match="unknown arch"):
        DistributedNets(system, "transformer")


def test_torchscript_export_matches(system, csi, tmp_path):
    torch.manual_seed(3)
    nets = DistributedNets(system, "unet", width=4).eval()
    path = tmp_path / "ap1.pt"
    export_ap(nets.aps[1], path)
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        torch.testing.assert_close(loaded(csi[:, 1]), nets.aps[1](csi[:, 1]))


# ----------------------------------------------------------------------------- Table 1 layers

def _convs(module):
    return [m for m in module.modules() if isinstance(m, (torch.nn.Conv2d,
                                                            torch.nn.ConvTranspose2d))]


def test_unet_is_table1():
    from policies.learned.nets import UNet

    convs = _convs(UNet(16, 3))
    enc, bridge, dec = convs[:4], convs[4], convs[5:]
    assert [c.out_channels for c in enc] == [16, 32, 64, 128]
    assert bridge.in_channels == bridge.out_channels == 128
    assert [c.in_channels for c in dec] == [256, 128, 64, 32]      # Table 1's decoder
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert all(c.kernel_size == (5, 5) and c.padding == (2, 2) for c in _convs(UNet(16, 5)))


def test_cae_is_table1():
    from policies.learned.nets import CAE

    convs = _convs(CAE(16))
    enc, dec = convs[:4], convs[5:]
    assert [c.out_channels for c in enc] == [16, 32, 64, 128]
    assert [c.kernel_size for c in enc] == [(3, 5), (2, 5), (1, 3), (1, 3)]
    assert [c.in_channels for c in dec] == [256, 128, 64, 32]
    assert [c.kernel_size for c in dec] == [(1, 3), (1, 3), (2, 5), (3, 5)]
    assert all(c.padding == (0, 0) for c in enc + dec)


def test_eq14_image_rows_are_channel_vectors():
    from policies.learned.nets import image_eq14, unimage_eq16

    x = torch.randn(3, 2, 16, 4)
    img = image_eq14(x)
    assert img.shape == (3, 1, 8, 16)
    torch.testing.assert_close(img[:, 0, 1], x[:, 0, :, 1])        # Re h_l2^T
    torch.testing.assert_close(img[:, 0, 4 + 3], x[:, 1, :, 3])    # Im a_l^T
    torch.testing.assert_close(unimage_eq16(img), x)


# ----------------------------------------------------------------------------- gram-mlp

def test_phase_steps_are_pi_cos_phi():
    from policies.learned.architectures import phase_steps

    phi = torch.tensor([0.3, 1.2, 2.5])
    arg = torch.pi * torch.arange(16.0)[:, None] * torch.cos(phi)  # a(phi)_k, spacing 0.5
    psi = phase_steps(torch.cos(arg)[None], torch.sin(arg)[None])   # (1, M, Q) -> (1, Q)
    torch.testing.assert_close(psi[0], torch.pi * torch.cos(phi), rtol=1e-5, atol=1e-5)


def test_gram_mlp_beams_lie_in_span_of_own_csi(system, csi):
    torch.manual_seed(5)
    nets = DistributedNets(system, "gram-mlp", width=16).eval()
    with torch.no_grad():
        w = nets(csi).numpy()
    h = csi.numpy()
    for l in range(system.L):
        hc = h[:, l, 0] + 1j * h[:, l, 1]                  # (B, M, Q)
        wc = w[:, l, 0] + 1j * w[:, l, 1]
        coef = [np.linalg.lstsq(hc[i], wc[i], rcond=None)[0] for i in range(len(hc))]
        resid = np.stack([hc[i] @ coef[i] - wc[i] for i in range(len(hc))])
        assert np.abs(resid).max() < 1e-4 * np.abs(wc).max()


def test_gram_mlp_is_equivariant_to_ue_order(system, csi):
    """Relabelling the UEs relabels their beams and nothing else (canonical order inside)."""
    torch.manual_seed(7)
    nets = DistributedNets(system, "gram-mlp", width=16).eval()
    perm = torch.tensor([2, 0, 1, 3])                       # UEs permuted, target column last
    with torch.no_grad():
        a, b = nets(csi), nets(csi[..., perm])
    torch.testing.assert_close(b, a[..., perm], rtol=1e-4, atol=1e-5)


def test_checkpoint_round_trip(system, csi, tmp_path):
    from policies.learned import checkpoints as store
    from policies.learned.losses import Objective
    from policies.learned.training import RunResult, save_checkpoint

    torch.manual_seed(6)
    nets = DistributedNets(system, "gram-mlp", width=8).eval()
    res = RunResult(nets, [], 0, 1.0, 1.0, Objective("teacher"))
    path = save_checkpoint(tmp_path / "x.pt", res, "ssnr-teacher", "pos2", "tiny")
    loaded, meta = store.load(path, system)
    assert meta["arch"] == "gram-mlp" and meta["width"] == 8
    with torch.no_grad():
        torch.testing.assert_close(loaded(csi), nets(csi))
