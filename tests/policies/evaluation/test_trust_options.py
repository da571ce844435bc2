"""Policy specs: bad options, broken plug-in files and sweep-file values are user errors found
before the run folder exists (one line, exit 2)."""

from __future__ import annotations

import pytest

from runners import compare, sweep
from tests.policies.evaluation.reliability_tools import one_line_error

BAD_OPTIONS = ["cvx@rho=abc", "cvx@rho=nan", "cvx@rho=-5", "cvx@rho=inf", "cvx@foo=1",
               "cvx@timeout_s=-1", "cvx@timeout_s=abc", "cvx@solver=NOPE", "ns-rzf@foo=1",
               "mrt-target@x=[1,2]", "student@foo=1"]


def _exit_2_before_work(runner, argv, out, capsys) -> str:
    rc = runner.main([*argv, "--out", str(out), "--quiet", "--no-cache"])
    err = capsys.readouterr().err
    assert rc == 2 and one_line_error(err), err
    assert not out.exists(), "the run folder was created before the error"
    return err


@pytest.mark.parametrize("spec", BAD_OPTIONS)
def test_compare_bad_policy_options(spec, tmp_path, capsys):
    err = _exit_2_before_work(compare, ["--policy", "ns-rzf", "--policy", spec, "--drops", "2"],
                              tmp_path / "run", capsys)
    assert spec.split("@")[1].split("=")[0] in err


@pytest.mark.parametrize("spec", ["cvx@rho=abc", "cvx@timeout_s=-1", "cvx@rho=[0.5,-1]",
                                  "ns-rzf@foo=1"])
def test_sweep_bad_policy_options(spec, tmp_path, capsys):
    _exit_2_before_work(sweep, ["--scenario", "pos2", "--users", "2", "--policy", spec,
                                "--drops", "2", "--jobs", "1"], tmp_path / "run", capsys)


PLUGINS = {
    "raises.py": "raise RuntimeError('plug-in broke on import')\n",
    "syntax.py": "class Broken(:\n    pass\n",
    "exits.py": "import sys\nsys.exit(3)\n",
    "imports.py": "import no_such_module_anywhere\n",
}


@pytest.mark.parametrize("name", [*PLUGINS, "notpython.txt", "missing.py"])
@pytest.mark.parametrize("runner", ["compare", "sweep"])
def test_broken_plugin_files_are_one_line_errors(name, runner, tmp_path, capsys):
    path = tmp_path / name
    if name in PLUGINS:
        path.write_text(PLUGINS[name])
    elif name == "notpython.txt":
        path.write_text("class Policy: pass\n")
    spec = f"{path}:Policy"
    argv = {"compare": ["--policy", spec, "--drops", "2"],
            "sweep": ["--scenario", "pos2", "--users", "2", "--policy", spec, "--drops", "2"]}
    err = _exit_2_before_work({"compare": compare, "sweep": sweep}[runner], argv[runner],
                              tmp_path / "run", capsys)
    assert name in err


SWEEP_FILE_ERRORS = {
    "chunk = 2.5": "chunk",
    'task_seconds = "fast"': "task_seconds",
    'policy = [{options = {rho = 0.5}}]': "spec",
    "frontier_points = 1": "frontier_points",
    "scenario = 0": "scenario",
    "name = 5": "name",
    "set = [1, 2]": "set",
    'policy = ["cvx@rho=abc"]': "rho",
    'policy = [{spec = "ns-rzf", options = {foo = 1}}]': "foo",
}


@pytest.mark.parametrize("line", sorted(SWEEP_FILE_ERRORS))
def test_sweep_file_values_get_the_command_line_checks(line, tmp_path, capsys):
    f = tmp_path / "s.toml"
    base = {"scenario": 'scenario = "pos2"', "users": "users = [2]",
            "policy": 'policy = ["mrt-target"]', "drops": "drops = 2", "jobs": "jobs = 1"}
    base[line.split("=")[0].strip()] = line
    f.write_text("\n".join(base.values()) + "\n")
    err = _exit_2_before_work(sweep, [str(f)], tmp_path / "run", capsys)
    assert SWEEP_FILE_ERRORS[line] in err


def test_a_policy_string_in_a_sweep_file_is_one_policy(tmp_path, capsys):
    f = tmp_path / "s.toml"
    f.write_text('scenario = "pos2"\nusers = [2]\npolicy = "ns-rzf"\ndrops = 2\njobs = 1\n')
    assert sweep.main([str(f), "--out", str(tmp_path / "o"), "--quiet", "--no-cache"]) == 0
    import csv
    rows = list(csv.DictReader((tmp_path / "o" / "summary.csv").open()))
    assert [r["policy"] for r in rows] == ["ns-rzf"]
