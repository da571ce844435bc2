"""Property-based fuzzing of the public API (hypothesis).

Inputs: scenario overrides (every field of the shipped scenarios, any type or value), explicit
positions (reset options), actions (shapes, dtypes, magnitudes, NaN/inf), CSI given to
``Policy.act``, command lines of every runner (through ``main(argv)``) and checkpoint bytes.

Property, everywhere: a clear ``ValueError``/``TypeError`` (runners: exit status 2 with one line
``error: ...``), or a finite result inside the observation space and the power budget; never a
traceback from deep inside, a NaN in an observation or reward, or a hang (every example runs
under a hard time limit; hypothesis' own deadline flags slow ones).

Profiles: ``fast`` (derandomized, a few dozen examples; the default run) and ``long`` (random,
hundreds of examples; ``pytest -m slow tests/policies/evaluation/test_fuzz.py``).
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cfisac_env
import policies
import scenarios
from cfisac_env.physics import metrics
from runners import bench_env, bench_policy, compare, render_road, reproduce_demirhan, stress, train
from tests.policies.evaluation.reliability_tools import one_line_error, strict_json, time_limit

HARD_LIMIT_S = 60.0
BASE = settings(database=None, deadline=timedelta(seconds=20), print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
PROFILES = {"fast": settings(BASE, derandomize=True), "long": settings(BASE)}
PROFILE = pytest.mark.parametrize("profile", ["fast", pytest.param("long", marks=pytest.mark.slow)])


def fuzz(profile: str, examples: tuple[int, int], prop, *strategies) -> None:
    """Run property ``prop`` over ``strategies`` with ``examples[0]`` (fast) or ``examples[1]``
    (long) examples, each under the hard time limit."""
    def limited(args):
        with time_limit(HARD_LIMIT_S):
            prop(*args)

    n = examples[0] if profile == "fast" else examples[1]
    settings(PROFILES[profile], max_examples=n)(given(st.tuples(*strategies))(limited))()


# ---- value strategies ---------------------------------------------------------------------------

FLOATS = st.floats(allow_nan=True, allow_infinity=True)
ANY_VALUE = st.one_of(
    st.integers(-3, 40), st.sampled_from([0, -1, 10**9, 2**63]), FLOATS,
    st.floats(-200.0, 200.0), st.text(max_size=4), st.booleans(),
    st.lists(st.one_of(FLOATS, st.integers(-3, 5)), max_size=4),
    st.lists(st.lists(st.floats(-150.0, 150.0), min_size=2, max_size=2), min_size=1, max_size=3),
)
SCENARIOS = ("pos1", "pos2", "road", "track-highway")


def _fields(cfg: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in cfg.items():
        out += _fields(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return out


def _get(cfg: dict, field: str):
    for key in field.split("."):
        cfg = cfg[key]
    return cfg


FACTORS = [0.0, -1.0, 0.1, 0.5, 0.9, 1.1, 2.0, 10.0, 1e3]


def near(value) -> st.SearchStrategy:
    """Values close to a valid ``value``: itself, scaled, negated, zero, reordered, perturbed,
    plus NaN/inf for numbers; the same type, so many of them pass validation."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.one_of(st.just(value), st.sampled_from(FACTORS).map(lambda f: int(value * f)),
                         st.integers(-2, 2 * abs(value) + 4))
    if isinstance(value, float):
        return st.one_of(st.just(value), st.sampled_from(FACTORS).map(lambda f: value * f),
                         st.floats(-2 * abs(value) - 1, 2 * abs(value) + 1),
                         st.sampled_from([float("nan"), float("inf"), -float("inf")]))
    if isinstance(value, list) and value:
        return st.one_of(st.just(list(reversed(value))),
                         st.tuples(*[near(v) for v in value]).map(list),
                         st.just(value[:-1]), st.just([*value, value[-1]]))
    if isinstance(value, str):
        return st.sampled_from([value, "", value.upper(), "none"])
    return st.just(value)


FIELDS = {name: {f: near(_get(cfg, f)) for f in _fields(cfg) if "." in f}
          for name, cfg in ((n, scenarios.load(n).config) for n in SCENARIOS)}


def check_obs(obs: np.ndarray, env: gym.Env) -> None:
    assert np.all(np.isfinite(obs)), "NaN/inf in an observation"
    assert env.observation_space.contains(obs.astype(np.float32)), "observation outside its space"


def aimed(obs: np.ndarray, system) -> np.ndarray:
    """Beams from an observation: each AP's whole budget on its target steering vector."""
    w = np.zeros_like(obs, dtype=np.float64)
    w[..., -1] = obs[..., -1] * np.sqrt(system.P.min() / system.M)
    return w


# ---- scenarios and the environment --------------------------------------------------------------

@PROFILE
def test_fuzz_scenario_overrides(profile):
    def overrides(name: str) -> st.SearchStrategy:
        field = st.sampled_from(sorted(FIELDS[name]))
        pair = field.flatmap(lambda f: st.tuples(st.just(f), st.one_of(
            FIELDS[name][f], FIELDS[name][f], ANY_VALUE)))
        return st.lists(pair, max_size=3).map(dict)

    cases = st.sampled_from(SCENARIOS).flatmap(lambda name: st.tuples(st.just(name),
                                                                      overrides(name)))

    def prop(case):
        name, overrides = case
        try:
            env = gym.make(cfisac_env.ENV_ID, scenario=name, **overrides)
        except ValueError:
            event("rejected: ValueError")
            return
        event("accepted")
        system = env.unwrapped.system
        obs, _ = env.reset(seed=0)
        check_obs(obs, env)
        for _ in range(2):
            obs, reward, _, _, info = env.step(aimed(obs, system))
            check_obs(obs, env)
            assert np.isfinite(reward) and np.isfinite(info["ssnr"])
            assert np.all(np.isfinite(info["sinr"]))

    fuzz(profile, (40, 600), prop, cases)


def _coord() -> st.SearchStrategy:
    return st.one_of(FLOATS, st.floats(-1e3, 1e3), st.sampled_from([0.0, 25.0, 75.0, 23.0]))


@PROFILE
def test_fuzz_reset_positions(profile):
    aps = st.sampled_from([[25.0, 0.0], [75.0, 0.0]])           # exactly at an AP
    ue = st.one_of(
        hnp.arrays(np.float64, st.sampled_from([(3, 2), (2, 2), (3,), (3, 2, 1), ()]),
                   elements=_coord()),
        st.lists(st.one_of(aps, st.lists(_coord(), min_size=2, max_size=2)),
                 min_size=3, max_size=3),
        st.text(max_size=3), st.none())
    target = st.one_of(aps, hnp.arrays(np.float64, st.sampled_from([(2,), (1, 2), (3,)]),
                                       elements=_coord()), st.none())

    def prop(name, ue_xy, target_xy):
        env = gym.make(cfisac_env.ENV_ID, scenario=name, users=3)
        options = {k: v for k, v in (("ue_xy", ue_xy), ("target_xy", target_xy))
                   if v is not None}
        try:
            obs, _ = env.reset(seed=1, options=options)
        except (ValueError, TypeError) as e:
            event(f"rejected: {type(e).__name__}")
            return
        event("accepted")
        check_obs(obs, env)
        obs, reward, _, _, info = env.step(aimed(obs, env.unwrapped.system))
        check_obs(obs, env)
        assert np.isfinite(reward) and np.isfinite(info["min_sinr"])

    fuzz(profile, (40, 600), prop, st.sampled_from(["pos2", "road"]), ue, target)


SYSTEM = scenarios.load("pos2", users=2).system
SHAPE = SYSTEM.csi_shape
DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int8, np.complex64,
                          np.bool_])
SHAPES = st.sampled_from([SHAPE, SHAPE, (1, *SHAPE), SHAPE[1:], (SHAPE[0], 2, SHAPE[2], 1)])
MAGNITUDE = st.sampled_from([0.0, 1e-300, 1e-20, 1.0, 1e20, 1e200, 1e300])


@PROFILE
def test_fuzz_actions(profile):
    env = gym.make(cfisac_env.ENV_ID, scenario="pos2", users=2)
    env.reset(seed=2)

    def prop(dtype, shape, unit, scale):
        with np.errstate(all="ignore"):
            action = (np.resize(unit, shape) * scale).astype(dtype)
        try:
            obs, reward, _, _, info = env.step(action)
        except (ValueError, TypeError) as e:
            event(f"rejected: {type(e).__name__}")
            return
        event("accepted")
        check_obs(obs, env)
        assert np.isfinite(reward) and np.isfinite(info["ssnr"])
        w, scaled = metrics.project_power(np.asarray(action, dtype=np.float64)[None], SYSTEM)
        power = metrics.ap_power(w)[0]
        assert np.all(power <= SYSTEM.P * (1 + 1e-6)), "beams above the budget"
        assert np.allclose(power[scaled[0]], SYSTEM.P[scaled[0]], rtol=1e-6), \
            "over-budget beams must be scaled to the budget, not zeroed"

    unit = hnp.arrays(np.float64, 16, elements=st.one_of(FLOATS, st.floats(-1, 1)))
    fuzz(profile, (50, 800), prop, DTYPES, SHAPES, unit, MAGNITUDE)


@PROFILE
def test_fuzz_policy_act(profile):
    built = {spec: policies.make(spec, SYSTEM) for spec in ("mrt-target", "mrt-users", "ns-rzf",
                                                           "ns-sensing", "cb-sensing")}

    def prop(spec, dtype, shape, unit, scale):
        with np.errstate(all="ignore"):
            csi = (np.resize(unit, shape) * scale).astype(dtype)
        try:
            beams = built[spec].act(csi)
        except (ValueError, TypeError) as e:
            event(f"rejected: {type(e).__name__}")
            return
        event("accepted")
        assert beams.shape == csi.shape
        assert np.all(np.isfinite(beams)), f"{spec} returned NaN/inf beams"
        power = metrics.ap_power(beams.astype(np.float64))
        assert np.all(power <= SYSTEM.P * (1 + 1e-4)), f"{spec} exceeds the budget"

    unit = hnp.arrays(np.float64, 16, elements=st.one_of(FLOATS, st.floats(-1, 1)))
    fuzz(profile, (50, 800), prop, st.sampled_from(sorted(built)), DTYPES, SHAPES, unit,
         MAGNITUDE)


# ---- command lines of every runner --------------------------------------------------------------

def _bad_int(lo: int) -> st.SearchStrategy:
    return st.one_of(st.integers(max_value=lo - 1).map(str), st.sampled_from(
        ["", "x", "1.5", "nan", "inf", "0x10", "--"]))


_BAD_FLOAT = st.sampled_from(["nan", "inf", "-inf", "abc", "", "1e999"])
_BAD_SET = st.one_of(st.sampled_from(["ue_x=abc", "power=nan", "sytem.power=1", "=", "users=0",
                                      "antennas=-4", "spacing=inf", "noequals"]),
                     st.text(min_size=1, max_size=8).filter(lambda t: "=" not in t))
COMMON_BAD = {"--threads": _bad_int(1), "--seed": st.integers(max_value=-1).map(str),
              "--set": _BAD_SET, "--scenario": st.sampled_from(["nowhere", "pos3", "x.toml"])}
RUNNERS = {
    "compare": (compare, ["--policy", "mrt-target", "--users", "2", "--drops", "2", "--quiet"],
                {**COMMON_BAD, "--drops": _bad_int(1), "--heavy-drops": _bad_int(1),
                 "--jobs": _bad_int(1), "--users": _bad_int(1),
                 "--device": st.sampled_from(["cuda:77", "gpu", "", "tpu"]),
                 "--policy": st.sampled_from(["nope", "x:Y", "/no/file.py:Policy"])}),
    "stress": (stress, ["--policy", "mrt-target", "--speeds", "--quiet",
                        "--set", "stress.duration=0.3"],
               {**COMMON_BAD, "--csi-delay": _BAD_FLOAT, "--threshold": _BAD_FLOAT,
                "--hardware-scale": _BAD_FLOAT, "--latency": st.just("slow")}),
    "bench_env": (bench_env, ["--users", "2", "--envs", "2", "--seconds", "0.01"],
                  {**COMMON_BAD, "--envs": _bad_int(1), "--seconds": _BAD_FLOAT,
                   "--users": _bad_int(1)}),
    "render_road": (render_road, ["--policy", "mrt-target", "--steps", "2", "--frames", "1",
                                  "--quiet"],
                    {**COMMON_BAD, "--frames": _bad_int(1), "--steps": _bad_int(1)}),
    "train": (train, ["--preset", "tiny", "--users", "2", "--quiet"],
              {**COMMON_BAD, "--epochs": _bad_int(1), "--lr": _BAD_FLOAT,
               "--time-limit": _BAD_FLOAT, "--init": st.just("/nonexistent"),
               "--cvx-drops": _bad_int(0), "--beta": _BAD_FLOAT}),
    "bench_policy": (bench_policy, ["quality", "--users", "2", "--drops", "2", "--no-cvx"],
                     {**COMMON_BAD, "--drops": _bad_int(1), "--jobs": _bad_int(1)}),
    "reproduce_demirhan": (reproduce_demirhan, ["--drops", "1", "--rho", "0.5", "--quiet"],
                           {"--drops": _bad_int(1), "--jobs": _bad_int(1), "--rho": _BAD_FLOAT,
                            "--threads": _bad_int(1)}),
}


@PROFILE
@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_fuzz_cli_bad_values_exit_2_with_one_line(runner, profile, capsys):
    module, base, bad = RUNNERS[runner]
    cases = st.sampled_from(sorted(bad)).flatmap(lambda flag: st.tuples(st.just(flag), bad[flag]))

    def prop(case):
        flag, value = case
        capsys.readouterr()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            try:
                rc = module.main([*base, f"{flag}={value}", "--out", str(out)])
            except KeyboardInterrupt:
                raise AssertionError("Ctrl-C escaped main()") from None
            err = capsys.readouterr().err
            assert rc == 2, f"{flag}={value!r}: exit {rc}\n{err}"
            assert one_line_error(err), err
            assert not out.exists() or not any(out.iterdir()), "wrote files on a user error"

    fuzz(profile, (8, 80), prop, cases)


@PROFILE
def test_fuzz_cli_junk_arguments(profile, capsys):
    token = st.text(min_size=1, max_size=6).filter(lambda t: not t.startswith("-"))

    def prop(runner, junk):
        module, base, _ = RUNNERS[runner]
        capsys.readouterr()
        rc = module.main([*base, *junk])
        err = capsys.readouterr().err
        assert rc == 2 and one_line_error(err), err

    fuzz(profile, (10, 100), prop, st.sampled_from(sorted(RUNNERS)),
         st.lists(token, min_size=1, max_size=3))


@PROFILE
def test_fuzz_compare_valid_runs_write_strict_results(profile, capsys):
    def prop(users, drops, seed, specs, antennas):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            argv = ["--users", str(users), "--drops", str(drops), "--seed", str(seed), "--quiet",
                    "--set", f"antennas={antennas}", "--out", str(out)]
            for spec in specs:
                argv += ["--policy", spec]
            assert compare.main(argv) == 0, capsys.readouterr().err
            summary = strict_json(out / "summary.json")
            assert not summary["interrupted"] and len(summary["policies"]) == len(set(specs))

    fuzz(profile, (3, 30), prop, st.integers(1, 4), st.integers(1, 3),
         st.integers(0, 2**63 - 1),
         st.lists(st.sampled_from(["mrt-target", "mrt-users", "ns-rzf", "ns-sensing"]),
                  min_size=1, max_size=3),
         st.integers(1, 16))


# ---- checkpoint bytes ---------------------------------------------------------------------------

def _valid_zip() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.pt"
        torch.save({"format": 2, "state_dicts": [{"w": torch.zeros(3)}]}, path)
        return path.read_bytes()


@PROFILE
def test_fuzz_checkpoint_bytes(profile):
    whole = _valid_zip()
    content = st.one_of(st.binary(max_size=2048),
                        st.integers(0, len(whole) - 1).map(lambda n: whole[:n]),
                        st.just(whole))

    def prop(data):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "fuzzed.pt"
            path.write_bytes(data)
            with pytest.raises(ValueError, match="fuzzed.pt"):
                policies.make("student", SYSTEM, scenario="pos2", checkpoint=path)

    fuzz(profile, (25, 300), prop, content)


# ---- sweep files ---------------------------------------------------------------------------------

TOML_VALUE = st.one_of(
    st.integers(-3, 12), st.sampled_from([0, -1, 2**40]), st.floats(-10, 10),
    st.sampled_from([2.5, float("nan"), float("inf")]), st.booleans(),
    st.sampled_from(["pos2", "ns-rzf", "mrt-target", "fast", "", "ray", "local", "auto",
                     "cvx@rho=abc", "nope"]),
    st.lists(st.one_of(st.integers(-1, 3), st.sampled_from(["pos2", "mrt-target", "x"])),
             max_size=3),
    st.just({"spec": "mrt-target"}), st.just({"options": {}}), st.just({"spec": 3}),
    st.just({"spec": "ns-rzf", "options": {"foo": 1}}), st.just({"traffic.speed": 3}),
    st.just([{"spec": "mrt-target", "options": []}]))
SWEEP_KEYS = ["scenario", "scenarios", "users", "policy", "policies", "seed", "drops",
              "heavy_drops", "engine", "address", "jobs", "task_seconds", "chunk",
              "frontier_drops", "frontier_points", "name", "description", "set", "unknown_key"]
VALID_SWEEP = {"scenario": "pos2", "users": [2], "policy": ["mrt-target"], "drops": 2,
               "jobs": 1}


def _toml(value) -> str:
    """``value`` as TOML (inline tables and arrays; NaN and inf as TOML writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value == float("inf") else repr(value))
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


@PROFILE
def test_fuzz_sweep_file_values(profile, capsys):
    """Any value for any sweep-file key: a one-line exit 2 before the run folder exists, or a
    finished run with strict results; never a traceback."""
    from runners import sweep

    edits = st.dictionaries(st.sampled_from(SWEEP_KEYS), TOML_VALUE, min_size=1, max_size=3)

    def prop(edit):
        capsys.readouterr()
        with tempfile.TemporaryDirectory() as tmp:
            cfg = {**VALID_SWEEP, **edit}
            if isinstance(cfg.get("drops"), int) and cfg["drops"] > 3:
                cfg["drops"] = 3                                   # keep accepted runs short
            if isinstance(cfg.get("frontier_drops"), int) and cfg["frontier_drops"] > 0:
                cfg["frontier_drops"] = 0
            if cfg.get("engine") == "ray":
                cfg["engine"] = "local"
            f = Path(tmp) / "s.toml"
            f.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in cfg.items()))
            out = Path(tmp) / "run"
            rc = sweep.main([str(f), "--out", str(out), "--quiet", "--no-cache"])
            err = capsys.readouterr().err
            if rc == 2:
                event("rejected")
                assert one_line_error(err), f"{cfg}\n{err}"
                assert not out.exists(), f"run folder created before the error: {cfg}"
            else:
                event("accepted")
                assert rc in (0, 1), f"{cfg}: exit {rc}\n{err}"
                strict_json(out / "summary.json")

    fuzz(profile, (30, 300), prop, edits)


# ---- policy options ------------------------------------------------------------------------------

OPTION_VALUE = st.one_of(FLOATS, st.integers(-5, 5), st.sampled_from([10**9, -10**9]),
                         st.text(max_size=4), st.booleans(),
                         st.lists(st.floats(-2, 2), max_size=2))


@PROFILE
def test_fuzz_policy_options(profile):
    """Any options on any built-in policy (known names with any value, unknown names): the spec
    is refused in one line by the pre-run check, or the policy builds and acts within budget."""
    from policies.evaluation.evaluate import build, check_specs
    from policies.registry import PolicySpec, resolve

    sc = scenarios.load("pos2", users=2)
    names = ["cvx", "ns-opt", "cb-opt", "ns-rzf", "mrt-target", "mrt-users", "ns-sensing",
             "student"]

    def known(name):
        import inspect

        params = [p for p in inspect.signature(resolve(name)).parameters if p != "system"]
        return params or ["x"]

    cases = st.sampled_from(names).flatmap(lambda n: st.tuples(st.just(n), st.dictionaries(
        st.one_of(st.sampled_from(known(n)), st.sampled_from(["foo", "rho", "timeout_s"])),
        OPTION_VALUE, max_size=2)))

    def prop(case):
        name, options = case
        spec = PolicySpec(name, options, text=f"{name}@{options}")
        try:
            check_specs([spec], sc)
        except ValueError as e:
            event("rejected")
            assert "\n" not in str(e)
            return
        event("accepted")
        if name == "student" or resolve(name).heavy:
            return                                  # checkpoints / solves: checked elsewhere
        beams = build(spec, sc).act(sc.drops(np.random.default_rng(0), 2)[0])   # as runs do
        power = (beams.astype(np.float64) ** 2).sum(axis=(2, 3, 4))
        assert np.all(np.isfinite(beams)) and np.all(power <= sc.system.P * (1 + 1e-4))

    fuzz(profile, (40, 400), prop, cases)
