"""bench_scale: growth exponents from hand-made timings; a tiny run writes its table and plot."""

import json

import pytest

from runners import bench_scale


def test_exponents_are_the_log_log_slopes_along_each_axis():
    rows = []
    for L in (2, 4, 8, 16):                       # t = 1e-3 L^2 along L (N, M at the base)
        rows.append(bench_scale._row((L, 8, 16), "p", 1e-3 * L**2, "ok", 3))
    for m in (8, 32):                             # t = 0.064 (M / 16) along M
        rows.append(bench_scale._row((8, 8, m), "p", 0.064 * m / 16, "ok", 3))
    rows.append(bench_scale._row((8, 32, 16), "p", None, "over budget", 0))
    fits = {f["axis"]: f for f in bench_scale.exponents(rows)}
    assert fits["L"]["exponent"] == pytest.approx(2.0)
    assert fits["M"]["exponent"] == pytest.approx(1.0)
    assert fits["M"]["points"] == 3 and "N" not in fits          # N: the base point only
    assert sorted(bench_scale.default_sizes())[0] == (2, 8, 16) and len(
        bench_scale.default_sizes()) == 10


def test_a_tiny_run_writes_table_exponents_and_plot(tmp_path, capsys):
    rc = bench_scale.main(["--sizes", "2,2,4", "4,2,4", "--policy", "ns-rzf", "--policy",
                           "lp-mmse", "--policy", "student", "--envs", "2", "--out",
                           str(tmp_path), "--quiet"])
    assert rc == 0
    data = json.loads((tmp_path / "scale.json").read_text())
    got = {(r["L"], r["policy"]): r for r in data["rows"]}
    assert got[(4, "lp-mmse")]["seconds"] > 0 and got[(2, "env step")]["seconds"] > 0
    assert got[(2, "student")]["seconds"] is None                    # no checkpoint: a note
    assert any(n.startswith("student at (2, 2, 4)") for n in data["notes"])
    assert (tmp_path / "scale.png").stat().st_size > 1000
    assert "exponent" in (tmp_path / "exponents.csv").read_text()


def test_bad_size_is_one_line():
    with pytest.raises(SystemExit):
        bench_scale.parse_args(["--sizes", "8,8"])
