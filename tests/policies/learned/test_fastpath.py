"""The compiled per-AP forward passes (numba) against the torch modules they compile.

At random weights, so that a change to the torch network that the compiled twin does not follow
fails here (update policies/learned/fastpath.py with it)."""

import numpy as np
import pytest
import torch

import policies
import scenarios
from policies.learned import checkpoints as store
from policies.learned.fastpath import FastGram, FastSpan, gram_flops, span_flops
from policies.learned.nets import DistributedNets
from policies.learned.span import SpanAttn


def _random(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """``net`` with every parameter moved off its initial value (biases and the attention
    bias included, which start at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return net.eval()


def _csi(scenario: str, n: int, b: int = 6, seed: int = 0) -> np.ndarray:
    return scenarios.load(scenario, users=n).drops(np.random.default_rng(seed), b)[0]


@pytest.fixture(scope="module")
def span_net():
    torch.manual_seed(1)
    return _random(SpanAttn(scenarios.load("pos2", users=1).system, 23.0, width=32, heads=4,
                            layers=2))


def _check_span(net: SpanAttn, x: np.ndarray, rho: float) -> None:
    fast = FastSpan(net)
    with torch.no_grad():
        w, ref = net.both(torch.from_numpy(x), rho)
    for l in range(x.shape[1]):
        np.testing.assert_allclose(fast(l, x[:, l], rho), w[:, l].numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(fast(l, x[:, l], rho, reference=True), ref[:, l].numpy(),
                                   rtol=0, atol=1e-5)


@pytest.mark.parametrize("n", [1, 3, 8, 12, 16])
def test_span_equals_torch_at_random_weights(span_net, n):
    _check_span(span_net, _csi("pos2", n), 0.5)


def test_span_equals_torch_with_eight_aps_and_other_shapes():
    """L = 8 (street), a width that is no multiple of the kernels' unrolling, one layer."""
    sc = scenarios.load("street", users=12)
    torch.manual_seed(2)
    net = _random(SpanAttn(sc.system, 23.0, width=20, heads=2, layers=1), seed=3)
    _check_span(net, _csi("street", 12, b=3), 0.3)


@pytest.mark.parametrize("scenario", ["pos1", "pos2", "road"])
def test_span_equals_torch_for_the_shipped_networks(scenario):
    path = store.find_span(scenario)
    for n in (2, 8):
        net = store.load_span(path, scenarios.load(scenario, users=n).system)[0]
        _check_span(net, _csi(scenario, n, b=4, seed=n), 0.5)


def test_gram_equals_torch_at_random_weights():
    sc = scenarios.load("pos2", users=3)
    torch.manual_seed(4)
    nets = _random(DistributedNets(sc.system, "gram-mlp", width=24), seed=5)
    x = _csi("pos2", 3, b=8)
    with torch.no_grad():
        ref = nets(torch.from_numpy(x)).numpy()
    for l, ap in enumerate(nets.aps):
        np.testing.assert_allclose(FastGram(ap)(x[:, l]), ref[:, l], rtol=0, atol=1e-5)


@pytest.mark.parametrize("role", ["paper-student", "ssnr-teacher"])
def test_paper_policies_compiled_equal_torch(role):
    sc = scenarios.load("pos2", users=8)
    x = _csi("pos2", 8, b=5, seed=7)
    fast = policies.make(role, sc.system, scenario="pos2")
    slow = policies.make(role, sc.system, scenario="pos2", backend="torch")
    assert fast.backend == "compiled" and slow.backend == "torch"
    np.testing.assert_allclose(fast.act(x), slow.act(x), rtol=0, atol=1e-5)


def test_default_backend_is_compiled_and_numpy_is_span_only():
    sc = scenarios.load("pos2", users=4)
    assert policies.make("student", sc.system, scenario="pos2").backend == "compiled"
    with pytest.raises(ValueError, match="span-attn network only"):
        policies.make("paper-student", scenarios.load("pos2", users=8).system, scenario="pos2",
                      backend="numpy")
    with pytest.raises(ValueError, match="backend must be one of"):
        policies.make("student", sc.system, scenario="pos2", backend="jax")


def test_a_parameter_the_compiled_path_does_not_know_is_refused(span_net):
    net = SpanAttn(span_net.system, 23.0, width=32, heads=4, layers=2)
    net.extra = torch.nn.Linear(2, 2)                 # a torch change fastpath.py lacks
    with pytest.raises(ValueError, match="extra.weight.*policies/learned/fastpath.py"):
        FastSpan(net)


def test_flop_counts_grow_with_the_network():
    a, b = span_flops(8, 16, 2), span_flops(16, 16, 2)
    assert a["total"] == a["network"] + a["complex"]
    # the token layers are linear in N: doubling N at least doubles their share
    assert b["network"] > 1.9 * a["network"] and a["network"] > 1e6
    assert span_flops(8, 16, 2, layers=3)["network"] > a["network"]
    g = gram_flops(9, 16)
    assert g["network"] == 2 * (171 * 256 + 2 * 256 * 256 + 256 * 162)    # Linear MACs x 2
