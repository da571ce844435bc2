"""Training unit, model selection, the whole teacher-student scheme, checkpoints."""

import csv
import dataclasses

import numpy as np
import pytest
import torch

import scenarios
from cfisac_env.physics import metrics
from policies.learned import checkpoints as store
from policies.learned.checkpoints import CheckpointError
from policies.learned.nets import DistributedNets
from policies.learned.training import Selector, score_nets, train


def test_selector_balanced_rule():
    sel = Selector("balanced", ratio=0.94)
    # (g1, g2) per epoch; best g2 = 2.05 -> threshold 1.927: epochs 1 and 3 qualify, 1 has more g1.
    for epoch, (g1, g2) in enumerate([(3.0, 1.0), (2.0, 2.0), (2.5, 1.9), (1.0, 2.05)]):
        sel.offer(epoch, g1, g2, lambda e=epoch: {"epoch": e})
    epoch, g1, g2, state = sel.selected()
    assert (epoch, g1, g2, state) == (1, 2.0, 2.0, {"epoch": 1})
    assert sel.last_gain() == 3                       # the best g2 came last
    assert all(c[2] >= 0.94 * 2.05 for c in sel.cands)  # unselectable states are dropped


def test_selector_maxmin_picks_the_epoch_closest_to_both_teachers():
    sel = Selector("maxmin", norms=(4.0, 2.0))
    # min(g1/4, g2/2): 0.25, 0.5, 0.475, 0.25 -> epoch 1.
    for epoch, (g1, g2) in enumerate([(3.0, 0.5), (2.0, 1.5), (1.9, 1.8), (1.0, 2.0)]):
        sel.offer(epoch, g1, g2, dict)
    assert sel.selected()[0] == 1
    with pytest.raises(ValueError, match="norms"):
        Selector("maxmin")


def test_selector_last_keeps_the_latest_epoch():
    sel = Selector("last")
    for epoch, (g1, g2) in enumerate([(3.0, 0.5), (2.0, 1.5), (1.0, 1.0)]):
        sel.offer(epoch, g1, g2, lambda e=epoch: {"epoch": e})
    assert sel.selected()[0] == 2 and sel.selected()[3] == {"epoch": 2}
    assert len(sel.cands) == 1                          # only one state kept


def test_selector_single_metric_modes():
    for mode, expected in (("g1", 0), ("g2", 3)):
        sel = Selector(mode)
        for epoch, (g1, g2) in enumerate([(3.0, 1.0), (2.0, 2.0), (2.5, 1.9), (1.0, 2.05)]):
            sel.offer(epoch, g1, g2, dict)
        assert sel.selected()[0] == expected


def test_loss_on_whole_system_reaches_every_ap():
    system = scenarios.load("pos2", users=2).system
    nets = DistributedNets(system, "unet", width=4)
    csi = torch.from_numpy(scenarios.load("pos2", users=2).drops(np.random.default_rng(0), 8)[0])
    g1, g2 = metrics.g1_g2(csi, nets(csi), system)
    (-(g1 + g2).mean()).backward()
    for ap in nets.aps:
        assert ap.body.enc[0][0].weight.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    torch.set_num_threads(1)
    return train("pos2", 2, "unet", "tiny", "cpu", out, progress=False,
                 roles=("ssnr-teacher", "sinr-teacher", "student", "fixed-lambda"))


def test_train_writes_checkpoints_and_csv(tiny_run):
    for role in ("ssnr-teacher", "sinr-teacher", "student", "fixed-lambda"):
        assert tiny_run.checkpoints[role].name == f"pos2-N2-unet-{role}.pt"
        rows = list(csv.DictReader((tiny_run.out / f"{role}.csv").open()))
        assert rows and {"train_g1", "train_g2", "val_g1", "val_g2", "lambda", "lr"} <= set(rows[0])


def test_student_gmax_are_teacher_means_on_training_drops(tiny_run):
    sc = scenarios.load("pos2", users=2)
    _, meta = store.load(tiny_run.checkpoints["student"], sc.system)
    rng = np.random.default_rng(0)                      # train()'s data: same seed, same draw
    csi = sc.drops(rng, 300)[0][60:]                    # tiny preset: 20% validation first
    t1, _ = store.load(tiny_run.checkpoints["ssnr-teacher"], sc.system)
    t2, _ = store.load(tiny_run.checkpoints["sinr-teacher"], sc.system)
    assert meta["g1max"] == pytest.approx(score_nets(t1, csi)[0].mean(), rel=1e-5)
    assert meta["g2max"] == pytest.approx(score_nets(t2, csi)[1].mean(), rel=1e-5)
    rows = list(csv.DictReader((tiny_run.out / "student.csv").open()))
    assert meta["lambda"] == pytest.approx(float(rows[-1]["lambda"]))
    assert 0.0 <= meta["lambda"] <= 1.0


def test_checkpoint_round_trip_and_mismatch(tiny_run):
    sc = scenarios.load("pos2", users=2)
    path = tiny_run.checkpoints["student"]
    nets, meta = store.load(path, sc.system)
    assert not nets.training
    assert meta["arch"] == "unet" and meta["scenario"] == "pos2" and meta["role"] == "student"
    assert meta["system"] == sc.system.to_dict()
    assert {"epoch", "val_g1", "val_g2", "g1max", "g2max"} <= set(meta)
    csi = torch.from_numpy(sc.drops(np.random.default_rng(5), 4)[0])
    ckpt = torch.load(path, weights_only=True)
    again = DistributedNets(sc.system, "unet", ckpt["width"])
    for ap, sd in zip(again.aps, ckpt["state_dicts"], strict=True):
        ap.load_state_dict(sd)
    with torch.no_grad():
        torch.testing.assert_close(nets(csi), again.eval()(csi))
    other = dataclasses.replace(sc.system, antennas=8)
    with pytest.raises(CheckpointError, match="antennas"):
        store.load(path, other)
    with pytest.raises(ValueError, match="users"):
        store.load(path, scenarios.load("pos2", users=3).system)


def test_unknown_role_and_preset():
    with pytest.raises(ValueError, match="unknown roles"):
        train("pos2", 2, roles=("oracle",))
    with pytest.raises(ValueError, match="unknown preset"):
        train("pos2", 2, preset="huge")


def test_warm_start_and_time_limit(tiny_run, tmp_path):
    res = train("pos2", 2, "unet", "tiny", "cpu", tmp_path, roles=("sinr-teacher",),
                progress=False, init=tiny_run.out, time_limits={"sinr-teacher": 0.0})
    _, meta = store.load(res.checkpoints["sinr-teacher"])
    assert meta["init"] == str(tiny_run.out)
    assert meta["epochs_run"] == 1 and meta["stopped"] == "time limit 0 s"


def test_interrupted_training_installs_nothing(tmp_path, monkeypatch):
    """One Ctrl-C stops the whole training: later roles are not trained, the run folder keeps
    the finished checkpoints, and nothing reaches the shipped folder."""
    import policies.learned.training as training

    shipped = tmp_path / "shipped"
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    real = training._write_csv

    def interrupt_in_second_role(path, rows):
        real(path, rows)
        if path.stem == "sinr-teacher":
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "_write_csv", interrupt_in_second_role)
    res = train("pos2", 2, "gram-mlp", "tiny", "cpu", tmp_path / "run", progress=False,
                install=True)
    assert res.interrupted
    assert list(res.checkpoints) == ["ssnr-teacher", "sinr-teacher"]   # the student never ran
    assert res.summary["sinr-teacher"]["stopped"] == "interrupted"
    assert not shipped.exists() or not any(shipped.iterdir())
    for path in res.checkpoints.values():
        store.load(path)                                                # complete files


def test_completed_training_installs_atomically(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    res = train("pos2", 2, "gram-mlp", "tiny", "cpu", tmp_path / "run", progress=False,
                roles=("ssnr-teacher",), install=True)
    assert not res.interrupted
    assert sorted(p.name for p in shipped.iterdir()) == ["pos2-N2-gram-mlp-ssnr-teacher.pt"]


def test_init_from_missing_folder_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="--init"):
        train("pos2", 2, "gram-mlp", "tiny", "cpu", tmp_path, progress=False,
              roles=("ssnr-teacher",), init=tmp_path / "nonexistent")


@pytest.mark.parametrize("content", [b"", b"garbage bytes", b"PK\x03\x04truncated zip"])
def test_unreadable_checkpoint_is_one_line_error(tmp_path, content):
    path = tmp_path / "pos2-N8-gram-mlp-student.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as e:
        store.load(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    assert "python runners/train.py --scenario pos2 --users 8 --arch gram-mlp" in msg


def test_truncated_real_checkpoint_is_one_line_error(tiny_run, tmp_path):
    data = tiny_run.checkpoints["student"].read_bytes()
    path = tmp_path / "pos2-N2-unet-student.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="pos2-N2-unet-student.pt"):
        store.load(path)


def test_checkpoint_cannot_run_code(tmp_path):
    """A crafted pickle that would run code on a full unpickle is refused (weights_only)."""
    import os

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"format": store.FORMAT, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        store.load(path)
    assert not marker.exists()
