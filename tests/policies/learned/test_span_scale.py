"""The ``span-attn`` network at scale: cvx's operating point at ``N >= M``, the warm start
across deployments, the street's own checkpoint family (``[learned] checkpoints``)."""

import dataclasses

import numpy as np
import pytest
import torch

import policies
import scenarios
from cfisac_env.physics import metrics
from cfisac_env.physics.system import System
from cfisac_env.sim.drops import sample_drops
from policies.classic import ns_sensing_all
from policies.learned import checkpoints as store
from policies.learned.fastpath import FastSpan
from policies.learned.span import NumpySpan, SpanAttn
from policies.learned.span_training import SpanConfig, ns_sensing, span_loss, ue_geometry

POS2 = store.SHIPPED_DIR / "pos2-span-attn.pt"


def _small(m: int, n: int) -> tuple[System, np.ndarray]:
    """A two-AP system with ``m`` antennas and its pos2 drops at ``n`` UEs."""
    sc = scenarios.load("pos2", users=n, overrides={"system.antennas": m})
    return sc.system, sc.drops(np.random.default_rng(3), 6)[0]


def test_ns_beam_is_null_below_m_and_spends_the_rest_of_the_budget():
    system, x = _small(8, 3)
    rho = torch.tensor([0.2, 0.5, 0.9, 0.5, 0.5, 0.1])
    s = ns_sensing(torch.from_numpy(x), rho, system).double().numpy()
    assert np.all(s[..., :3] == 0.0)
    np.testing.assert_allclose(metrics.ap_power(s), np.repeat((1 - rho.numpy())[:, None], 2, 1),
                               rtol=1e-5)
    h = x[:, :, 0] + 1j * x[:, :, 1]
    sc = s[:, :, 0, :, 3] + 1j * s[:, :, 1, :, 3]                        # (B, L, M)
    leak = np.abs(np.einsum("blmn,blm->bln", h[..., :3].conj(), sc)) ** 2
    assert leak.max() < 1e-2 * system.ue_noise  # null space (to eps): < 1 % of the noise


@pytest.mark.parametrize("m, n", [(8, 3), (4, 4), (4, 6)])
def test_reference_level_is_cvx_ns_opt_level(m, n):
    """The level the loss sets is the reference's min-SINR beside the NS beams at the rest of
    the budget (cvx's NS+OPT at rho): they interfere with no UE below N = M (null space) and are
    zero from N = M up (no null space), as cvx's NS beams are."""
    system, x = _small(m, n)
    torch.manual_seed(0)
    net = SpanAttn(system, 23.0, width=16, heads=2).eval()
    obs, rho = torch.from_numpy(x), torch.full((6,), 0.5)
    with torch.no_grad():
        _, parts = span_loss(net, obs, obs, rho, SpanConfig())
        ref = net.both(obs, rho)[1]
        alone = metrics.sinr(obs, ref, system).amin(-1)
        ns = ns_sensing(obs, rho, system)
        beside = metrics.sinr(obs, ref + ns, system).amin(-1)
    torch.testing.assert_close(parts["g2_ref"], beside)
    np.testing.assert_allclose(beside.numpy(), alone.numpy(), rtol=1e-3)
    hc = x[:, :, 0] + 1j * x[:, :, 1]
    cvx_ns = ns_sensing_all(hc, system, 0.5)                               # (B, L, M)
    assert (np.abs(cvx_ns).max() == 0.0) == (n >= m) == bool(torch.all(ns == 0))


def test_warm_start_transfers_pos2_to_the_street():
    street = scenarios.load("street", users=4)
    with pytest.raises(store.CheckpointError, match="L=2"):
        store.load_span(POS2, street.system)
    net = store.warm_start_span(POS2, street.system, ue_geometry(street))
    src = torch.load(POS2, map_location="cpu", weights_only=True)["state_dict"]
    assert net.training and net.system.L == 8
    assert net.ue_lines == (-3.0, 23.0) and net.ue_x == (0.0, 400.0)
    for k, v in net.state_dict().items():
        if k != "embed_ue.0.weight":
            assert torch.equal(v, src[k]), k
    w, w0 = net.state_dict()["embed_ue.0.weight"], src["embed_ue.0.weight"]
    assert w.shape == (w0.shape[0], 8 + 4)
    # APs at x = 25, 75 (pos2); the street's at 25 ... 375: AP 0 nearest pos2's AP 0, the others
    # pos2's AP 1, each scaled by 2 / 8
    torch.testing.assert_close(w[:, 0], w0[:, 0] / 4)
    for k in range(1, 8):
        torch.testing.assert_close(w[:, k], w0[:, 1] / 4)
    torch.testing.assert_close(w[:, 8:], w0[:, 2:])
    x = torch.from_numpy(street.drops(np.random.default_rng(0), 2)[0])
    with torch.no_grad():
        beams = net.eval()(x)
    np.testing.assert_allclose(metrics.ap_power(beams.numpy()), 1.0, rtol=1e-5)
    same = store.warm_start_span(POS2, scenarios.load("pos2", users=3).system,
                                 {"ue_line_y": 23.0})
    for k, v in same.state_dict().items():
        assert torch.equal(v, src[k])


def test_warm_start_across_m_is_one_line():
    system, _ = _small(8, 2)
    with pytest.raises(store.CheckpointError, match="M=16") as e:
        store.warm_start_span(POS2, system, {"ue_line_y": 23.0})
    assert "\n" not in str(e.value)


def test_declared_family_is_the_only_one_looked_up(tmp_path, monkeypatch):
    """street-road declares its own family: it never borrows road's L = 2 network through its
    base chain; a declared family without a checkpoint (block) is an error naming its own file
    and command."""
    monkeypatch.setenv(store.ENV, str(tmp_path))
    assert store._same_kind_lineage("street-road") == ("street-road",)
    assert store._same_kind_lineage("track-street") == ("street-road",)
    assert store._same_kind_lineage("road") == ("road",)
    assert store.require_span("track-street").name == "street-road-span-attn.pt"
    sc = scenarios.load("block")
    with pytest.raises(store.CheckpointError) as e:
        policies.make("student", sc.system, scenario="block")
    msg = str(e.value)
    assert "\n" not in msg and "block-span-attn.pt" in msg
    assert "train.py --scenario block --arch span-attn" in msg


def test_none_declared_is_one_line(monkeypatch):
    real = scenarios.load("pos2")
    fake = dataclasses.replace(real, config={**real.config, "learned": {"checkpoints": "none"}})
    monkeypatch.setattr(scenarios, "load", lambda *a, **k: fake)
    with pytest.raises(store.CheckpointError, match='checkpoints = "none"'):
        store.require_span("pos2")


@pytest.fixture(scope="module")
def street_net():
    torch.manual_seed(1)
    sc = scenarios.load("street", users=1)
    net = SpanAttn(sc.system, width=16, heads=2, **ue_geometry(sc)).eval()
    with torch.no_grad():                  # the heads that start at zero: exercise them
        for lin in (net.head_nu, net.head_ap[2], net.head_comm, net.embed_rel[2]):
            lin.weight.normal_(0.0, 0.3)
            lin.bias.normal_(0.0, 0.3)
    return net


def test_street_geometry_takes_the_likeliest_sidewalk(street_net):
    """Both sidewalks: AP l puts UE n on the far one (y = 23 m) when the far-side position its
    cos(phi) gives lies on the street, else on the near one (y = -3 m). So every UE across the
    road, and every near-side UE whose far-side reading would leave the street, is located
    exactly (to float32 CSI); a near-side UE whose reading fits the far side is put there. The
    earlier single line in the middle (y = 10 m) located none exactly."""
    sc = scenarios.load("street", users=16)
    d = sample_drops(sc, np.random.default_rng(5), 8)
    ue = d.ue_xy
    ap = np.asarray(sc.system.ap_xy)
    for l in range(8):
        h = torch.complex(torch.from_numpy(d.true[:, l, 0, :, :16]),
                          torch.from_numpy(d.true[:, l, 1, :, :16])).to(torch.complex128)
        x, cos_all = street_net.geometry(h, torch.full((8,), l))
        dx = ue[..., 0] - ap[l, 0]
        c = dx / np.hypot(dx, ue[..., 1])
        far = ap[l, 0] + 23.0 * c / np.sqrt(1 - c ** 2)
        exact = (ue[..., 1] > 0) | (far < 0) | (far > 400)
        assert exact.mean() > 0.6
        np.testing.assert_allclose(x.numpy()[exact], ue[..., 0][exact], atol=0.5)
        np.testing.assert_allclose(x.numpy()[~exact], np.clip(far, 0, 400)[~exact], atol=0.5)
        true_cos = (ue[:, None, :, 0] - ap[None, :, 0, None]) / np.hypot(
            ue[:, None, :, 0] - ap[None, :, 0, None], ue[:, None, :, 1] - ap[None, :, 1, None])
        np.testing.assert_allclose(cos_all.numpy().transpose(0, 2, 1)[exact],
                                   true_cos.transpose(0, 2, 1)[exact], atol=5e-3)


@pytest.mark.parametrize("n", [1, 5, 16])
def test_street_twins_equal_torch(street_net, n):
    x = scenarios.load("street", users=n).drops(np.random.default_rng(2), 4)[0]
    with torch.no_grad():
        ref = street_net(torch.from_numpy(x), 0.5).numpy()
    twin, fast = NumpySpan(street_net), FastSpan(street_net)
    for l in (0, 3, 7):
        np.testing.assert_allclose(twin(l, x[:, l], 0.5), ref[:, l], rtol=0, atol=1e-5)
        np.testing.assert_allclose(fast(l, x[:, l], 0.5), ref[:, l], rtol=0, atol=1e-5)


def test_street_network_round_trips(street_net, tmp_path):
    path = store.save_span(tmp_path / "street-span-attn.pt", street_net, {"scenario": "street"})
    net, _ = store.load_span(path, scenarios.load("street", users=3).system)
    assert net.ue_lines == (-3.0, 23.0) and net.ue_x == (0.0, 400.0)
    x = torch.from_numpy(scenarios.load("street", users=3).drops(np.random.default_rng(1), 2)[0])
    with torch.no_grad():
        torch.testing.assert_close(net(x), street_net(x))


@pytest.mark.parametrize("n", [1, 7, 16])
def test_shipped_street_student_serves_any_n(n):
    sc = scenarios.load("street", users=n)
    pol = policies.make("student", sc.system, scenario="street")
    x = sc.drops(np.random.default_rng(4), 3)[0]
    beams = pol.act(x)
    assert beams.shape == x.shape
    np.testing.assert_allclose(metrics.ap_power(beams), 1.0, rtol=1e-5)
    torch_pol = policies.make("student", sc.system, scenario="street", backend="torch")
    np.testing.assert_allclose(beams, torch_pol.act(x), atol=1e-5)


def test_stress_loads_the_scenarios_own_family():
    """The tracking runner's learned policies use the scenario's own family (road drops for
    track-*, street-road for track-street) unless told otherwise."""
    from policies.evaluation.stress import make_policy

    highway, street = scenarios.load("track-highway"), scenarios.load("track-street")
    assert make_policy("student", highway).checkpoint.name == "road-span-attn.pt"
    assert make_policy("student", street).checkpoint.name == "street-road-span-attn.pt"
    assert make_policy("student", highway, "pos2").checkpoint.name == "pos2-span-attn.pt"
    assert make_policy("student@scenario=pos1", highway, "pos2").checkpoint.name == \
        "pos1-span-attn.pt"
    assert not make_policy("student", scenarios.load(
        "track-highway", overrides={"channel.model": "rician"})).los_fit
