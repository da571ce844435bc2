"""The any-N ``span-attn`` network, its NumPy twin, its checkpoints and the one drop sampler."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import policies
import scenarios
from cfisac_env.physics import metrics
from cfisac_env.sim.drops import sample_drops
from policies.evaluation.evaluate import Drops
from policies.learned import checkpoints as store
from policies.learned.span import NumpySpan, SpanAttn


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    net = SpanAttn(scenarios.load("pos2", users=1).system, 23.0, width=16, heads=2).eval()
    with torch.no_grad():                  # the weighted-RZF heads start at zero: exercise them
        for lin in (net.head_nu, net.head_ap[2], net.head_comm, net.embed_rel[2]):
            lin.weight.normal_(0.0, 0.3)
            lin.bias.normal_(0.0, 0.3)
    return net


def _csi(n, b=8, seed=0, scenario="pos2"):
    return scenarios.load(scenario, users=n).drops(np.random.default_rng(seed), b)[0]


@pytest.mark.parametrize("n", [1, 3, 8, 16])
def test_numpy_twin_equals_torch(net, n):
    x = _csi(n)
    with torch.no_grad():
        ref = net(torch.from_numpy(x), 0.5).numpy()
    fast = NumpySpan(net)
    for l in range(2):
        np.testing.assert_allclose(fast(l, x[:, l], 0.5), ref[:, l], rtol=0, atol=1e-5)


def test_reference_is_the_weighted_joint_rzf():
    """``_reference`` by hand: AP 0's slice of UE n's beam is ``D_0 H_0 c_n`` with
    ``C = (sum_k D_k G_k / L + diag(nu))^-1``, joint beam n at power p_n, slice at rho P."""
    x = _csi(3, b=2)
    h = torch.complex(torch.from_numpy(x[:, :, 0]), torch.from_numpy(x[:, :, 1]))
    h = h.to(torch.complex128)
    hu = h[..., :3]                                                      # (B, L, M, N)
    gl = hu.mH @ hu / 16
    dl = torch.tensor([[0.5, 2.0], [1.0, 1.0]], dtype=torch.float64)
    nu = torch.tensor([[0.1, 0.2, 0.3], [1e-3, 1e-3, 1e-3]], dtype=torch.float64)
    p = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    rho = torch.full((2,), 0.4, dtype=torch.float64)
    got = SpanAttn._reference(hu[:, 0], gl, dl, p, nu, rho, torch.ones(2).double(), 16)
    for b in range(2):
        g = sum(float(dl[b, k]) * gl[b, k] for k in range(2)) / 2
        c = torch.linalg.inv(g + torch.diag(nu[b].to(torch.complex128)))
        joint = torch.cat([float(dl[b, k]) * hu[b, k] @ c for k in range(2)])   # (L M, N)
        joint = joint * torch.sqrt(p[b] / (joint.abs() ** 2).sum(0))
        own = joint[:16] * torch.sqrt(0.4 / (joint[:16].abs() ** 2).sum())
        np.testing.assert_allclose(got[b].numpy(), own.numpy(), atol=1e-10)


def test_beams_spend_the_budget_and_reference_the_share(net):
    x = torch.from_numpy(_csi(5))
    with torch.no_grad():
        w, ref = net.both(x, 0.3)
    np.testing.assert_allclose(metrics.ap_power(w.numpy()), 1.0, rtol=1e-5)
    np.testing.assert_allclose(metrics.ap_power(ref.numpy()), 0.3, rtol=1e-5)
    assert np.all(ref.numpy()[..., -1] == 0)          # no sensing beam in the reference


def test_equivariant_to_the_ue_order(net):
    x = _csi(6)
    perm = np.array([3, 0, 5, 1, 4, 2])
    xp = np.concatenate([x[..., perm], x[..., -1:]], -1)
    with torch.no_grad():
        w = net(torch.from_numpy(x)).numpy()
        wp = net(torch.from_numpy(xp)).numpy()
    np.testing.assert_allclose(wp[..., :-1], w[..., perm], atol=1e-5)
    np.testing.assert_allclose(wp[..., -1], w[..., -1], atol=1e-5)


def test_each_ap_uses_its_own_csi_only(net):
    x = _csi(4)
    y = x.copy()
    y[:, 1] = _csi(4, seed=9)[:, 1]                    # another channel at AP 1 only
    with torch.no_grad():
        a, b = net(torch.from_numpy(x)).numpy(), net(torch.from_numpy(y)).numpy()
    np.testing.assert_array_equal(a[:, 0], b[:, 0])
    assert np.abs(a[:, 1] - b[:, 1]).max() > 1e-3


def test_geometry_recovers_the_ue_positions(net):
    sc = scenarios.load("pos2", users=5)
    x, ue, _ = sc.drops(np.random.default_rng(3), 16)
    for l in range(2):
        h = torch.complex(torch.from_numpy(x[:, l, 0, :, :5]), torch.from_numpy(x[:, l, 1, :, :5]))
        got, _ = net.geometry(h, torch.full((16,), l))
        np.testing.assert_allclose(got.numpy(), ue[..., 0], atol=0.05)   # metres


@pytest.mark.parametrize("n", [1, 2, 7, 16])
def test_shipped_student_serves_any_n(n):
    sc = scenarios.load("pos2", users=n)
    pol = policies.make("student", sc.system, scenario="pos2")
    x = _csi(n, 4)
    beams = pol.act(x)
    assert beams.shape == x.shape
    np.testing.assert_allclose(metrics.ap_power(beams), 1.0, rtol=1e-5)
    torch_pol = policies.make("student", sc.system, scenario="pos2", backend="torch")
    np.testing.assert_allclose(beams, torch_pol.act(x), atol=1e-5)


def test_more_users_than_trained_is_one_line():
    sc = scenarios.load("pos2", users=17)
    with pytest.raises(store.CheckpointError, match="N = 1..16") as e:
        policies.make("student", sc.system, scenario="pos2")
    assert "\n" not in str(e.value)


def test_foreign_system_through_the_base_chain_is_one_line(tmp_path, monkeypatch):
    """track-corridor (L = 6) reaches road's L = 2 network through its base chain."""
    monkeypatch.setenv(store.ENV, str(tmp_path))
    (tmp_path / "road-span-attn.pt").write_bytes(
        (store.SHIPPED_DIR / "pos2-span-attn.pt").read_bytes())
    sc = scenarios.load("track-corridor")
    with pytest.raises(store.CheckpointError) as e:
        policies.make("student", sc.system, scenario="track-corridor")
    msg = str(e.value)
    assert "\n" not in msg and "road-span-attn.pt" in msg and "L=2" in msg
    assert "train.py --scenario track-corridor --arch span-attn" in msg


def test_road_never_borrows_the_static_family(tmp_path, monkeypatch):
    monkeypatch.setenv(store.ENV, str(tmp_path))
    assert store._same_kind_lineage("road") == ("road",)
    assert "pos2" not in store._same_kind_lineage("track-highway")


def test_checkpoint_root_comes_first_and_is_described(tmp_path, monkeypatch):
    monkeypatch.setenv(store.ENV, str(tmp_path))
    path = tmp_path / "pos2-span-attn.pt"
    path.write_bytes((store.SHIPPED_DIR / "pos2-span-attn.pt").read_bytes())
    assert store.find_span("pos2") == path
    d = store.describe(path)
    assert d["path"] == str(path.resolve()) and len(d["sha256"]) == 64
    store.set_root(tmp_path / "elsewhere")
    try:
        assert store.find_span("pos2") == store.SHIPPED_DIR / "pos2-span-attn.pt"
    finally:
        store.set_root(None)


def test_one_sampler_honours_channel_and_csi():
    sc = scenarios.load("pos2", users=3, overrides={"csi.nmse": 0.05,
                                                    "channel.model": "rician"})
    d = sample_drops(sc, np.random.default_rng(4), 6)
    assert not np.allclose(d.observed, d.true)
    err = np.mean((d.observed - d.true) ** 2) / np.mean(d.true ** 2)
    assert 0.01 < err < 0.2                           # about the configured NMSE
    obs, ue, tg = sc.drops(np.random.default_rng(4), 6)
    np.testing.assert_array_equal(obs, d.observed)
    ev = Drops.sample(sc, 6, 4)
    np.testing.assert_array_equal(ev.csi, d.observed)
    np.testing.assert_array_equal(ev.truth, d.true)
    los = scenarios.load("pos2", users=3)             # defaults: the seed's LoS, one array
    d0 = sample_drops(los, np.random.default_rng(4), 6)
    assert d0.observed is d0.true
    np.testing.assert_array_equal(d0.ue_xy, ue)


def test_span_checkpoint_round_trip(net, tmp_path):
    path = store.save_span(tmp_path / "x-span-attn.pt", net, {"scenario": "pos2"})
    system = dataclasses.replace(net.system, users=9)
    loaded, meta = store.load_span(path, system)
    x = torch.from_numpy(_csi(9))
    with torch.no_grad():
        np.testing.assert_array_equal(loaded(x).numpy(), net(x).numpy())
    assert meta["scenario"] == "pos2" and meta["config"]["width"] == 16


def test_train_interrupted_before_the_first_epoch_writes_summary(tmp_path, monkeypatch):
    from runners import train as runner

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "train", stop)
    rc = runner.main(["--scenario", "pos2", "--users", "2", "--arch", "gram-mlp", "--preset",
                      "tiny", "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 130
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["interrupted"] is True


@pytest.mark.slow
def test_divergent_learning_rate_stops_with_nothing_non_finite(tmp_path, capsys):
    from runners import train as runner

    rc = runner.main(["--scenario", "pos2", "--users", "2", "--arch", "gram-mlp", "--preset",
                      "tiny", "--lr", "1e30", "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "diverged" in err[0]
    assert not list((tmp_path / "r").glob("*.pt"))


def test_numpy_reference_beams_equal_torch(net):
    x = _csi(5)
    with torch.no_grad():
        _, ref = net.both(torch.from_numpy(x), 1.0)
    got = NumpySpan(net)(1, x[:, 1], 1.0, reference=True)
    np.testing.assert_allclose(got, ref[:, 1].numpy(), atol=1e-5)
