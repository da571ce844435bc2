"""The figure module and the main job's compact table."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from policies.registry import BUILTINS
from runners import _cli, _plot, compare


def _parse(argv: list[str]) -> argparse.Namespace:
    p = _cli.parser("test")
    _cli.add_figure_flags(p)
    return p.parse_args(argv)


def test_flags_configure_formats_db_and_series(tmp_path: Path) -> None:
    _parse(["--format", "png", "svg", "--db", "--series", "3"])
    assert _plot.OPTIONS.formats == ("png", "svg") and _plot.OPTIONS.db
    fig, ax = _plot.plt.subplots()
    ax.plot([0, 1], [0, 1])
    written = _plot.save(fig, tmp_path / "f.png")
    assert [p.name for p in written] == ["f.png", "f.svg"]
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")
    np.testing.assert_allclose(_plot.to_axis([1.0, 10.0, 0.1]), [0.0, 10.0, -10.0])
    assert _plot.axis_label("SSNR") == "SSNR (dB)"
    shown, left = _plot.limit(["a", "b", "c", "d", "e"], keep=["e"])
    assert shown == ["a", "b", "e"] and left == ["c", "d"]
    _parse([])
    assert _plot.OPTIONS.formats == ("png",) and not _plot.OPTIONS.db
    assert _plot.to_axis([2.0])[0] == 2.0 and _plot.axis_label("SSNR") == "SSNR (linear)"
    assert _plot.drops_label("cvx", 24, 200) == "cvx (24 drops)"
    assert _plot.drops_label("student", 200, 200) == "student"


def test_series_flag_rejects_nonsense() -> None:
    with pytest.raises(SystemExit):
        _parse(["--series", "0"])
    assert _parse(["--series", "all"]).series is None


def test_palette_is_eight_distinct_colours() -> None:
    assert len({_plot.palette(k) for k in range(8)}) == 8
    assert _plot.palette(8) == _plot.palette(0) and _plot.marker(8) != _plot.marker(0)


def _row(name: str, drops: int, distributed: bool) -> dict:
    stat = {"mean": 1.23456, "ci": [1.1, 1.3], "median": 12.3456, "p5": 0.000123}
    return {"policy": name, "drops": drops, "ssnr": stat, "min_sinr": stat,
            "ssnr_vs_ref": 1.0765, "ssnr_vs_ref_ci": [1.0, 1.15], "min_sinr_vs_ref": 0.952,
            "min_sinr_vs_ref_ci": [0.9, 1.01], "time_ms": {"median": 170.123, "p95": 200.0},
            "speedup": 11358.4, "distributed": distributed, "fallbacks": 0,
            "over_budget": 0, "errors": 0}


def test_compact_table_of_every_builtin_fits_100_columns() -> None:
    rows = [_row(n, 24 if n in ("cvx", "ns-opt", "cb-opt") else 200, n != "cvx")
            for n in BUILTINS]
    rows[3]["fallbacks"] = 2
    text = compare.compact_table(rows, {"my-plugin": "ValueError: " + "x" * 200})
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100, max(lines, key=len)
    assert lines[0].split()[:4] == ["policy", "drops", "SSNR", "p5"]
    assert "1.08±0.07" in text and "11,358" in text and "170*" in text
    assert lines[-1].startswith("flagged: ") and "2 fallback" in lines[-1]
    assert any(line.startswith("my-plugin") and "FAILED" in line for line in lines)
