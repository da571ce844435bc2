"""Export: every AP's network alone to ONNX (run in onnxruntime), TorchScript and a torch.export
program, dynamic batch, matching torch to 1e-5 for every architecture and for the any-N span-attn
policies (their real-valued export graph, LoS fit and Cholesky solves inside); the export runner
end to end."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import policies  # noqa: E402
import scenarios  # noqa: E402
from cfisac_env.physics.los_fit import los_fit  # noqa: E402
from cfisac_env.physics.system import System  # noqa: E402
from policies.learned import export  # noqa: E402
from policies.learned.nets import ARCHS, DistributedNets  # noqa: E402
from policies.learned.span_graph import SpanGraph, hpd_solve, los_fit_graph  # noqa: E402
from policies.learned.training import save_checkpoint  # noqa: E402
from runners import export as export_runner  # noqa: E402

TOL = 1e-5
# Two APs with different budgets (the normalisation is part of each AP's graph), N = 3.
SYSTEM = System(ap_xy=((25.0, 0.0), (75.0, 0.0)), users=3, power=(1.0, 2.0))


def _nets(arch: str, seed: int = 0) -> DistributedNets:
    """Untrained nets with non-trivial batch-norm statistics (eval mode)."""
    torch.manual_seed(seed)
    nets = DistributedNets(SYSTEM, arch)
    for m in nets.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return nets.eval()


def _csi(batch: int, seed: int) -> np.ndarray:
    sc = scenarios.load("pos2", users=SYSTEM.N)
    return sc.drops(np.random.default_rng(seed), batch)[0]           # (B, L, 2, M, Q)


@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_round_trip_every_arch(arch, tmp_path):
    """Every AP of the shipped default (gram-mlp); AP 1 (budget 2 W) of the other archs (the
    APs of one arch share the graph, only weights and budget differ; each export takes s)."""
    nets = _nets(arch)
    aps = list(nets.aps) if arch == "gram-mlp" else [nets.aps[1]]
    files = export.export_nets(aps, tmp_path, "onnx")
    assert [f.name for f in files] == [f"ap_{l}.onnx" for l in range(len(aps))]
    index = range(2) if arch == "gram-mlp" else [1]
    for batch, seed in ((1, 1), (7, 2)):                              # dynamic batch
        csi = _csi(batch, seed)
        for l, path in zip(index, files, strict=True):
            got = export.run_onnx(export.onnx_session(path), csi[:, l])
            with torch.no_grad():
                ref = nets.aps[l](torch.from_numpy(csi[:, l])).numpy()
            assert got.shape == (batch, 2, SYSTEM.M, SYSTEM.Q) and got.dtype == np.float32
            assert np.abs(got - ref).max() <= TOL, (arch, l, batch)
            power = (got.astype(np.float64) ** 2).sum(axis=(1, 2, 3))
            np.testing.assert_allclose(power, SYSTEM.power[l], rtol=1e-4)  # its own budget


@pytest.mark.parametrize("arch", ["gram-mlp", "unet"])
def test_torchscript_round_trip(arch, tmp_path):
    """``torchscript`` is TorchScript: ``ap_<l>.pt`` that ``torch.jit.load`` runs at any batch."""
    nets = _nets(arch, seed=3)
    files = export.export_nets(nets.aps, tmp_path, "torchscript")
    assert [f.name for f in files] == ["ap_0.pt", "ap_1.pt"]
    for batch, seed in ((1, 4), (5, 6)):
        csi = _csi(batch, seed)
        for l, path in enumerate(files):
            loaded = torch.jit.load(str(path))
            assert isinstance(loaded, torch.jit.ScriptModule)
            with torch.no_grad():
                got = loaded(torch.from_numpy(csi[:, l])).numpy()
                ref = nets.aps[l](torch.from_numpy(csi[:, l])).numpy()
            assert got.shape == (batch, 2, SYSTEM.M, SYSTEM.Q)
            assert np.abs(got - ref).max() <= TOL, (arch, l, batch)


@pytest.mark.parametrize("arch", ["gram-mlp", "unet"])
def test_torch_export_program_round_trip(arch, tmp_path):
    nets = _nets(arch, seed=3)
    files = export.export_nets(nets.aps, tmp_path, "pt2")
    assert [f.name for f in files] == ["ap_0.pt2", "ap_1.pt2"]
    csi = _csi(5, 4)
    for l, path in enumerate(files):
        with torch.no_grad():
            got = export.load_program(path)(torch.from_numpy(csi[:, l])).numpy()
            ref = nets.aps[l](torch.from_numpy(csi[:, l])).numpy()
        assert np.abs(got - ref).max() <= TOL


def test_unknown_format_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="onnx, torchscript, pt2"):
        export.export_nets(_nets("gram-mlp").aps, tmp_path, "tflite")


def _checkpoint(path, system, arch="gram-mlp"):
    """A student checkpoint of untrained nets, written as training writes one."""
    torch.manual_seed(5)
    nets = DistributedNets(system, arch)
    result = SimpleNamespace(
        nets=nets, epoch=0, val_g1=0.0, val_g2=0.0, history=[], stopped="test", seconds=0.0,
        objective=SimpleNamespace(kind="student", beta=None, lam=0.5, g1max=1.0, g2max=1.0))
    return save_checkpoint(path, result, "student", "pos2", "test")


def test_export_runner_writes_one_checked_file_per_ap(tmp_path, capsys):
    system = scenarios.load("pos2", users=2).system
    ckpt = _checkpoint(tmp_path / "student.pt", system)
    out = tmp_path / "onnx"
    rc = export_runner.main(["--policy", "paper-student", "--scenario", "pos2", "--users", "2",
                             "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(out),
                             "--check-drops", "4", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["ap_0.onnx", "ap_1.onnx", "export.json"]
    meta = json.loads((out / "export.json").read_text())
    assert meta["input"]["shape"] == ["B", 2, 16, 3] and meta["arch"] == "gram-mlp"
    assert all(f["max_abs_diff"] <= TOL for f in meta["files"])
    assert meta["provenance"]["packages"]["torch"] == torch.__version__
    # the exported AP 1 reproduces the policy's own beams for AP 1
    import policies

    pol = policies.make("paper-student", system, checkpoint=str(ckpt))
    csi = scenarios.load("pos2", users=2).drops(np.random.default_rng(9), 3)[0]
    got = export.run_onnx(export.onnx_session(out / "ap_1.onnx"), csi[:, 1])
    np.testing.assert_allclose(got, pol.act(csi)[:, 1], atol=TOL)


@pytest.mark.parametrize("argv, match", [
    (["--policy", "mrt-target"], "no per-AP networks"),
    (["--policy", "student", "--checkpoint", "missing.pt"], "does not exist"),
    (["--policy", "cvx", "--arch", "unet"], "learned policies"),
    (["--policy", "student", "--format", "tflite"], "invalid choice"),
])
def test_export_runner_user_errors_exit_2_before_writing(argv, match, tmp_path, capsys):
    out = tmp_path / "run"
    rc = export_runner.main([*argv, "--users", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


# ------------------------------------------------------------ span-attn: student, sinr-teacher

SPAN_N = 3                                 # export is at a fixed N; the graph is unrolled over it
ROLES = ("student", "sinr-teacher")


@pytest.fixture(scope="module")
def span_policies():
    """The shipped pos2 span-attn policies at N = 3 on their torch path (what files match)."""
    system = scenarios.load("pos2", users=SPAN_N).system
    return {name: policies.make(name, system, scenario="pos2", backend="torch")
            for name in ROLES}


def _span_csi(batch, seed, scenario="pos2", users=SPAN_N, overrides=None):
    sc = scenarios.load(scenario, users=users, overrides=overrides)
    return sc.drops(np.random.default_rng(seed), batch)[0]


def _check_files(files, pol, fmt, batches=((1, 21), (7, 22))):
    """Every file against the torch policy's beams for its AP; each spends its AP's budget."""
    for batch, seed in batches:
        csi = _span_csi(batch, seed)
        for l, path in enumerate(files):
            got = export.run_file(path, fmt, csi[:, l])
            ref = pol.act_ap(l, csi[:, l])
            assert got.shape == (batch, 2, pol.system.M, pol.system.Q)
            assert got.dtype == np.float32
            assert np.abs(got - ref).max() <= TOL, (fmt, pol.name, l, batch)
            power = (got.astype(np.float64) ** 2).sum(axis=(1, 2, 3))
            np.testing.assert_allclose(power, pol.system.power[l], rtol=1e-4)


def test_hermitian_solve_by_unrolled_cholesky_equals_linalg():
    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 3, 8):
        z = torch.randn(4, n, n, dtype=torch.complex128, generator=g)
        a = z @ z.mH + 1e-3 * torch.eye(n, dtype=torch.complex128)   # PD, badly conditioned
        b = torch.randn(4, n, 2, dtype=torch.complex128, generator=g)
        x = torch.complex(*hpd_solve((a.real, a.imag), (b.real, b.imag)))
        ref = torch.linalg.solve(a, b)
        assert ((x - ref).abs().max() / ref.abs().max()).item() < 1e-9, n


@pytest.mark.parametrize("nmse", [0.0, 0.05])
def test_los_fit_graph_is_the_compiled_fit(nmse):
    """The LoS fit in the graph equals the compiled one to float32 rounding (a Newton step
    accepted on a gain below float64 rounding can flip one float32 ulp)."""
    csi = _span_csi(16, 5, overrides={"csi.nmse": nmse})
    for l in range(2):
        x = csi[:, l]
        with torch.no_grad():
            got = los_fit_graph(torch.from_numpy(x), 0.5).numpy()
        ref = los_fit(x, 0.5)
        assert np.abs(got - ref).max() <= 2.5e-7 * max(1.0, np.abs(ref).max())
        assert (got != ref).mean() < 0.05


@pytest.mark.parametrize("channel", ["los", "rician"])
def test_span_graph_equals_the_torch_policy(span_policies, channel):
    """The real-valued export graph (eager) is the policy's per-AP map: LoS fit on under a LoS
    channel, off under Rician; ``sinr-teacher`` its reference beams at rho = 1."""
    system = span_policies["student"].system
    csi = _span_csi(16, 11)
    for name in ROLES:
        pol = policies.make(name, system, scenario="pos2", backend="torch", channel=channel)
        assert pol.los_fit == (channel == "los")
        for l, module in enumerate(export.ap_modules(pol)):
            assert isinstance(module, SpanGraph) and module.los_fit == pol.los_fit
            with torch.no_grad():
                got = module(torch.from_numpy(csi[:, l])).numpy()
            assert np.abs(got - pol.act_ap(l, csi[:, l])).max() <= TOL, (name, channel, l)


def test_span_graph_street_geometry_equals_torch():
    """Two UE lines (the street's sidewalks): the graph's choice of line is the network's."""
    system = scenarios.load("street", users=4).system
    pol = policies.make("student", system, scenario="street", backend="torch")
    csi = _span_csi(8, 3, scenario="street", users=4)
    for l in (0, 5):
        x = los_fit(csi[:, l], system.spacing)
        module = SpanGraph(pol.net, system, l, pol.rho, los_fit=False).eval()
        with torch.no_grad():
            got = module(torch.from_numpy(x)).numpy()
            ref = pol.net.ap_forward(torch.from_numpy(x), l, pol.rho)[0].numpy()
        assert np.abs(got - ref).max() <= TOL, l


@pytest.mark.parametrize("name", ROLES)
def test_span_torchscript_round_trip(span_policies, name, tmp_path):
    pol = span_policies[name]
    files = export.export_nets(export.ap_modules(pol), tmp_path, "torchscript")
    assert [f.name for f in files] == ["ap_0.pt", "ap_1.pt"]
    assert all(isinstance(torch.jit.load(str(f)), torch.jit.ScriptModule) for f in files)
    _check_files(files, pol, "torchscript")


@pytest.mark.slow
@pytest.mark.parametrize("name", ROLES)
def test_span_onnx_round_trip(span_policies, name, tmp_path):
    """ONNX of the span policies (about 30 s: one graph for both APs): one input ``csi``, each
    file its own AP's constants, onnxruntime equal to the torch policy to 1e-5."""
    import onnx

    pol = span_policies[name]
    files = export.export_nets(export.ap_modules(pol), tmp_path, "onnx")
    assert [f.name for f in files] == ["ap_0.onnx", "ap_1.onnx"]
    for f in files:
        model = onnx.load(str(f))
        onnx.checker.check_model(model)
        assert [i.name for i in model.graph.input] == [export.INPUT]
        assert [o.name for o in model.graph.output] == [export.OUTPUT]
    _check_files(files, pol, "onnx")


def test_export_runner_span_torchscript(tmp_path, capsys):
    out = tmp_path / "ts"
    rc = export_runner.main(["--policy", "student", "--scenario", "pos2", "--users", str(SPAN_N),
                             "--format", "torchscript", "--out", str(out), "--check-drops", "4",
                             "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["ap_0.pt", "ap_1.pt", "export.json"]
    meta = json.loads((out / "export.json").read_text())
    assert meta["arch"] == "span-attn" and meta["format"] == "torchscript"
    assert meta["graph"]["los_fit_in_graph"] is True and meta["graph"]["rho"] == 0.5
    assert all(f["max_abs_diff"] <= TOL and f["within_tolerance"] for f in meta["files"])


@pytest.mark.slow
def test_export_runner_span_onnx_is_the_default_policy(tmp_path, capsys):
    """The design's command with the default policy: ONNX files equal to the student's beams
    (its default compiled path) on new drops."""
    out = tmp_path / "onnx"
    rc = export_runner.main(["--scenario", "pos2", "--users", str(SPAN_N), "--format", "onnx",
                             "--out", str(out), "--check-drops", "4", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    meta = json.loads((out / "export.json").read_text())
    assert meta["policy"] == "student" and meta["input"]["shape"] == ["B", 2, 16, SPAN_N + 1]
    assert all(f["max_abs_diff"] <= TOL for f in meta["files"])
    system = scenarios.load("pos2", users=SPAN_N).system
    pol = policies.make("student", system, scenario="pos2")
    csi = _span_csi(5, 31)
    beams = pol.act(csi)
    for l in range(system.L):
        got = export.run_onnx(export.onnx_session(out / f"ap_{l}.onnx"), csi[:, l])
        np.testing.assert_allclose(got, beams[:, l], atol=TOL)
