"""Export: every AP's network alone to ONNX (run in onnxruntime) and to a torch.export program,
dynamic batch, matching torch to 1e-5 for every architecture; the export runner end to end."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import scenarios  # noqa: E402
from cfisac_env.physics.system import System  # noqa: E402
from policies.learned import export  # noqa: E402
from policies.learned.nets import ARCHS, DistributedNets  # noqa: E402
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
def test_torch_export_program_round_trip(arch, tmp_path):
    nets = _nets(arch, seed=3)
    files = export.export_nets(nets.aps, tmp_path, "torchscript")
    assert [f.name for f in files] == ["ap_0.pt2", "ap_1.pt2"]
    csi = _csi(5, 4)
    for l, path in enumerate(files):
        with torch.no_grad():
            got = export.load_program(path)(torch.from_numpy(csi[:, l])).numpy()
            ref = nets.aps[l](torch.from_numpy(csi[:, l])).numpy()
        assert np.abs(got - ref).max() <= TOL


def test_unknown_format_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="onnx, torchscript"):
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
