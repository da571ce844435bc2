"""The robustness command: intervals by hand, paired drops across a sweep, a tiny run end to end."""

import csv
import json

import numpy as np
import pytest

from policies.evaluation.robustness import sweep
from policies.evaluation.stats import describe, mean_ci
from runners import robustness as runner


def test_t_interval_by_hand():
    ci = mean_ci(np.array([1.0, 2.0, 3.0, np.nan]))
    half = 4.302652729911275 * 1.0 / np.sqrt(3)               # t_{0.975, 2} * s / sqrt(n)
    assert (ci["mean"], ci["n"]) == (2.0, 3)
    assert ci["lo"] == pytest.approx(2.0 - half) and ci["hi"] == pytest.approx(2.0 + half)
    assert np.isnan(mean_ci(np.array([1.0]))["lo"])
    d = describe(np.array([1.0, 2.0, 3.0, np.nan, np.inf]))
    assert (d["median"], d["lo"]) == (2.0, ci["lo"])
    assert d["p5"] == pytest.approx(1.1)                      # 1 + 0.05 * (3 - 1) by hand


def test_sweep_points_share_positions_and_degrade_with_nmse():
    points, failed, interrupted = sweep("pos2", 4, ["ns-rzf"], 40, 4, seed=0, axes=["nmse"])
    assert not failed and not interrupted
    sinr = {p.value: p.run.min_sinr.mean() for p in points}
    assert list(sinr) == [0.0, 0.05, 0.1, 0.2, 0.3]
    assert sinr[0.3] < sinr[0.0]                               # nulling needs good CSI
    ssnr = {p.value: p.run.ssnr for p in points}
    assert np.all(np.isfinite(ssnr[0.3]))


def test_runner_writes_tables_and_figures(tmp_path, capsys):
    out = tmp_path / "rob"
    code = runner.main(["--policy", "mrt-target", "--policy", "ns-rzf", "--drops", "6",
                        "--axis", "angle_error_deg", "--delays", "0", "0.05", "--quiet",
                        "--users", "3", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    for name in ("robustness.csv", "robustness.png", "ageing.csv", "ageing.png",
                 "summary.json", "config.json"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "robustness.csv").open()))
    assert {r["policy"] for r in rows} == {"mrt-target", "ns-rzf"}
    assert len(rows) == 5 * 2 * 2                               # values x policies x metrics
    summary = json.loads((out / "summary.json").read_text())
    assert {r["channel"] for r in summary["ageing"]} == {"LoS", "Rician K=6 dB"}


def test_runner_user_error_exits_2(capsys):
    assert runner.main(["--axis", "snr"]) == 2
    assert runner.main(["--set", "channel.model=rayleigh", "--no-ageing"]) == 2
    assert "channel.model" in capsys.readouterr().err
