"""``--sensing echo`` through compare, stress and sweep; the echo-sensing example."""

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import scenarios
from policies.evaluation.evaluate import Drops, score_policy
from policies.evaluation.sensing import echo_drops
from runners import compare, stress, sweep

ROOT = Path(__file__).resolve().parents[2]


def test_compare_echo_columns(tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = compare.main(["--scenario", "pos2", "--users", "3", "--drops", "8", "--sensing", "echo",
                       "--policy", "mrt-target", "--policy", "ns-rzf", "--out", str(out),
                       "--quiet", "--no-cache"])
    assert rc == 0
    rows = {r["policy"]: r for r in json.loads((out / "summary.json").read_text())["policies"]}
    for r in rows.values():
        assert 0.0 <= r["sensing"]["pd"] <= 1.0
        assert 0.0 <= r["sensing"]["fix_share"] <= 1.0
    # all power on the target: mrt-target's echo is detected at least as often as ns-rzf's
    assert rows["mrt-target"]["sensing"]["pd"] >= rows["ns-rzf"]["sensing"]["pd"]
    with (out / "drops.csv").open() as f:
        drops = list(csv.DictReader(f))
    assert {"pd", "position_error_m"} <= set(drops[0]) and len(drops) == 16
    assert "P_D" in capsys.readouterr().out


def test_echo_drops_are_shared_and_scores_reproducible():
    sc = scenarios.load("pos2", users=3, overrides={"sensing.mode": "echo"})
    plain = Drops.sample(sc, 5, seed=2)
    a, b = echo_drops(sc, plain, 2), echo_drops(sc, plain, 2)
    np.testing.assert_array_equal(a.csi, b.csi)
    np.testing.assert_array_equal(a.csi[..., :-1], plain.csi[..., :-1])    # only the target col
    np.testing.assert_array_equal(a.truth, plain.truth)
    r1 = score_policy("mrt-target", sc, a, progress=False)
    r2 = score_policy("mrt-target", sc, b, index=np.array([3, 4]), progress=False)
    # the echo streams belong to the drop, not to the subset scored
    np.testing.assert_array_equal(r1.sensing["position_error"][3:], r2.sensing["position_error"])


def test_stress_echo_rows_figures_and_held_baseline(tmp_path, capsys):
    out = tmp_path / "st"
    rc = stress.main(["--scenario", "track-highway", "--sensing", "echo", "--policy",
                      "mrt-target", "--latency", "zero", "--speeds", "30", "--set",
                      "stress.duration=1.0", "--out",
                      str(out), "--quiet"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["policy"]: r for r in summary["sweep"]["30.0"]}
    assert set(rows) == {"mrt-target", "mrt-target (held)"}
    ekf, held = rows["mrt-target"], rows["mrt-target (held)"]
    assert ekf["track_loss_rate"] == 0.0 and ekf["track_kept"]
    assert ekf["position_rmse_m"] < 1.5
    assert held["track_loss_rate"] > 0.5          # at 30 m/s a held estimate is soon 5 m off
    for name in ("position_error_t.png", "tracking_vs_speed.png"):
        assert (out / name).stat().st_size > 10_000
    assert "echo sensing" in capsys.readouterr().out


def test_sweep_echo_columns(tmp_path):
    out = tmp_path / "sw"
    rc = sweep.main(["--scenario", "pos2", "--users", "3", "--policy", "mrt-target", "--drops",
                     "4", "--seed", "0", "--sensing", "echo", "--out", str(out)])
    assert rc == 0
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(0 <= float(r["pd"]) <= 1 for r in rows)
    with (out / "summary.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert 0 <= float(row["pd_mean"]) <= 1


def _example():
    spec = importlib.util.spec_from_file_location("echo_ppo", ROOT / "examples" /
                                                  "echo_sensing_ppo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_example_wrapper_splits_the_budget():
    mod = _example()
    env = mod.make_env()
    belief, _ = env.reset(seed=0)
    assert belief.shape == (6,) and np.isfinite(belief).all()
    for rho in (0.0, 0.3, 1.0):
        w = env.beams(rho)
        p_sense = (w[..., -1] ** 2).sum(axis=(1, 2))
        p_all = (w ** 2).sum(axis=(1, 2, 3))
        np.testing.assert_allclose(p_sense, rho * env.system.P, atol=1e-5)
        np.testing.assert_allclose(p_all, env.system.P, rtol=1e-5)
    obs, r, term, trunc, info = env.step(np.array([0.2], np.float32))
    assert info["rho"] == pytest.approx(0.2) and np.isfinite(r)


@pytest.mark.slow
def test_example_trains_and_writes_curves(tmp_path):
    mod = _example()
    assert mod.main(["--steps", "256", "--every", "128", "--seeds", "0", "--out",
                     str(tmp_path)]) == 0
    assert (tmp_path / "curves.png").exists() and (tmp_path / "baselines.csv").exists()


def test_echo_crb_example_writes_its_figure_into_a_new_folder(tmp_path):
    spec = importlib.util.spec_from_file_location("echo_crb", ROOT / "examples" / "echo_crb.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "new" / "echo_crb.png"      # the folder does not exist yet
    assert mod.main(["--trials", "5", "--out", str(out)]) == 0
    assert out.stat().st_size > 0
