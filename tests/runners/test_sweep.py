"""The sweep runner's user errors in policy specs: one line naming the fix, exit 2, before the
run folder; a checkpoint that fits some cells of the grid is a failed cell for the others."""

import csv
import json
from pathlib import Path

import pytest

import policies
from runners import sweep

SHIPPED = Path(policies.__file__).parent / "learned" / "shipped"
SPAN_HINT = "python runners/train.py --scenario pos2 --arch span-attn --install"
BASE = ["--users", "2", "--drops", "2", "--jobs", "1", "--quiet", "--no-cache"]


@pytest.mark.parametrize("spec, wanted", [
    ("student@checkpoint=NOWHERE", ["does not exist", SPAN_HINT]),
    ("student@checkpoint=GARBAGE", ["is not a cfisac checkpoint", SPAN_HINT]),
    (f"student@checkpoint={SHIPPED / 'street-span-attn.pt'}", ["L=8", SPAN_HINT]),
    ("student@scenario=nope", ["unknown scenario 'nope'", "available: "]),
], ids=["missing", "garbage", "other-system", "unknown-scenario"])
def test_policy_spec_user_errors_exit_2_before_the_run_folder(spec, wanted, tmp_path, capsys):
    garbage = tmp_path / "hostname"
    garbage.write_bytes(b"garbage, not a checkpoint")
    spec = spec.replace("NOWHERE", str(tmp_path / "nowhere.pt")).replace("GARBAGE", str(garbage))
    out = tmp_path / "run"
    rc = sweep.main(["--scenario", "pos2", *BASE, "--policy", "mrt-target", "--policy", spec,
                     "--out", str(out)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: sweep: "), err
    for text in wanted:
        assert text in lines[0], lines[0]
    assert "--scenario nowhere" not in lines[0] and "--scenario hostname" not in lines[0]
    assert not out.exists()


def test_checkpoint_that_fits_one_scenario_of_the_grid_runs_there(tmp_path, capsys):
    """street's own network fits the street cells: the pos2 cell (L = 2) is a failed cell whose
    note keeps the whole message, the street cell is scored, and the exit status is 0."""
    out = tmp_path / "run"
    street = SHIPPED / "street-span-attn.pt"
    rc = sweep.main(["--scenario", "pos2", "--scenario", "street", *BASE, "--policy",
                     f"student@checkpoint={street}@label=street-net", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    rows = {r["scenario"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert int(rows["street"]["drops"]) == 2 and rows["pos2"]["failed"]
    notes = json.loads((out / "summary.json").read_text())["notes"]
    assert any("L=8" in n and SPAN_HINT in n for n in notes)
    assert SPAN_HINT in text
    # figures for the scenario that scored, none (and no empty legend) for the one that did not
    assert (out / "fig16a-street.png").exists() and not (out / "fig16a-pos2.png").exists()
