"""``runners/bench_policy.py latency``: every inference path timed, checked against torch."""

import json

from runners import bench_policy


def test_latency_times_every_path_and_checks_them_against_torch(tmp_path, capsys):
    out = tmp_path / "bench"
    rc = bench_policy.main(["latency", "--users", "2", "--repeats", "5", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "span-attn compiled (default)" in text and "gram-mlp compiled" in text
    data = json.loads((out / "latency.json").read_text())
    paths = {r["path"]: r for r in data["rows"]}
    assert set(paths) >= {"span-attn compiled (default)", "span-attn numpy", "span-attn torch",
                          "gram-mlp compiled (paper default)", "gram-mlp torch"}
    for name, r in paths.items():
        assert r["median_ms"] > 0 and r["users"] == 2
        if r["max_diff"] is not None:                    # every non-torch path = torch
            assert r["max_diff"] <= 1e-5, name
    fast = paths["span-attn compiled (default)"]
    assert fast["mflop"] > 0.1 and fast["gflops"] > 0 and fast["weights"] == "shipped"
    assert data["provenance"]["git"]


def test_quality_rows_are_named_by_the_spec_row(tmp_path, capsys):
    """``@label=`` names the row in the table and the JSON, as in every runner."""
    out = tmp_path / "q"
    rc = bench_policy.main(["quality", "--users", "2", "--drops", "2", "--no-cache", "--quiet",
                            "--policy", "student@label=mine", "--policy", "mrt@rho=0.3",
                            "--out", str(out)])
    assert rc == 0
    rows = [x.split()[0] for x in capsys.readouterr().out.splitlines()[2:] if x.strip()]
    assert rows[:2] == ["mine", "mrt[rho=0.3]"]
    data = json.loads((out / "quality-pos2-N2.json").read_text())
    assert list(data["policies"]) == ["mine", "mrt[rho=0.3]"]
    for p in data["policies"].values():
        assert 0 < p["mean_ssnr"] and 0 < p["median_min_sinr"]
