"""The docs figures are regenerated whenever a shipped checkpoint they depend on changes."""

from __future__ import annotations

from pathlib import Path

from runners import figures


def _fake(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A shipped folder with one pos1 and one pos2 checkpoint, a docs folder holding every
    figure, and the record runners/figures.py would write for them."""
    shipped, docs = tmp_path / "shipped", tmp_path / "docs"
    shipped.mkdir()
    docs.mkdir()
    (shipped / "pos1-span-attn.pt").write_bytes(b"pos1 weights")
    (shipped / "pos2-N8-gram-mlp-student.pt").write_bytes(b"pos2 weights")
    record: dict = {"figures": {}}
    for run in figures.RUNS:
        for name in run.figures:
            (docs / name).write_bytes(b"png")
            record["figures"][name] = {
                "command": run.command(),
                "checkpoints": figures.checkpoint_hashes(run.checkpoints, shipped)}
    return shipped, docs, record


def test_current_record_is_not_stale(tmp_path: Path) -> None:
    shipped, docs, record = _fake(tmp_path)
    assert figures.stale(record, shipped, docs) == []


def test_changed_new_and_removed_checkpoints_make_their_figures_stale(tmp_path: Path) -> None:
    shipped, docs, record = _fake(tmp_path)
    pos2 = {f for r in figures.RUNS if "pos2-N*.pt" in r.checkpoints for f in r.figures}
    pos1 = {f for r in figures.RUNS if "pos1-*.pt" in r.checkpoints for f in r.figures}
    assert "tradeoff-pos2-N8.png" in pos2 and "fig16a-pos1.png" in pos1
    (shipped / "pos2-N8-gram-mlp-student.pt").write_bytes(b"retrained")
    out = figures.stale(record, shipped, docs)
    assert {line.split(":")[0] for line in out} == pos2
    assert all("pos2-N8-gram-mlp-student.pt changed" in line for line in out)
    (shipped / "pos1-span-attn.pt").unlink()
    (shipped / "pos1-N5-gram-mlp-student.pt").write_bytes(b"new")
    out = figures.stale(record, shipped, docs)
    assert {line.split(":")[0] for line in out} == pos1 | pos2
    assert any("pos1-span-attn.pt was removed" in line for line in out)
    assert any("pos1-N5-gram-mlp-student.pt is new" in line for line in out)
    # another family's checkpoint under a pos2- name (pos2-rician) is no pos2 figure's input
    (shipped / "pos2-rician-span-attn.pt").write_bytes(b"other family")
    assert figures.stale(record, shipped, docs) == out


def test_unrecorded_or_missing_figures_are_reported(tmp_path: Path) -> None:
    shipped, docs, record = _fake(tmp_path)
    (docs / "orphan.png").write_bytes(b"png")
    (docs / "road_student.png").unlink()
    del record["figures"]["robustness.png"]
    out = figures.stale(record, shipped, docs)
    assert any(line.startswith("orphan.png: under docs/ but not drawn") for line in out)
    assert "road_student.png: recorded but missing from docs/" in out
    assert any(line.startswith("robustness.png: never regenerated") for line in out)


def test_shipped_figures_match_shipped_checkpoints() -> None:
    """The real docs/figures.json against the real shipped checkpoints: fails when a checkpoint
    changed but the figures depending on it were not regenerated (python runners/figures.py)."""
    assert figures.stale() == []
