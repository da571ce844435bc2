"""Sweeps: compare/sweep agreement, engines (serial, local pool, Ray, two-node Ray cluster),
the resumable result store, the decision cache and the statistics."""

import csv
import json
import multiprocessing as mp
import sqlite3
import warnings

import numpy as np
import pytest

import scenarios
from policies import Policy
from policies.evaluation.cache import CacheError, DecisionCache, decision_key
from policies.evaluation.evaluate import Drops, build, score_policy
from policies.evaluation.stats import mean_ci, ratio_ci
from policies.evaluation.store import COLUMNS, ResultStore, StoreError
from policies.evaluation.sweep import expand, run_sweep, summarize
from runners import compare, sweep

FAST = ["ns-rzf", "mrt-target"]


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _numbers(store):
    return {(r["cell"], r["drop"]): (r["ssnr"], r["min_sinr"], r["gamma_high"])
            for r in store.rows()}


# ---- agreement with compare ---------------------------------------------------------------------

def test_sweep_and_compare_score_the_same_drops_the_same(tmp_path):
    common = ["--scenario", "pos2", "--users", "3", "--policy", "cvx", "--policy", "ns-rzf",
              "--drops", "5", "--seed", "7", "--no-cache", "--quiet"]
    assert compare.main([*common, "--heavy-drops", "5", "--jobs", "1",
                         "--out", str(tmp_path / "c")]) == 0
    assert sweep.main([*common, "--jobs", "1", "--out", str(tmp_path / "s")]) == 0
    ours = {(r["policy"], int(r["drop"])): (float(r["ssnr"]), float(r["min_sinr"]))
            for r in _csv(tmp_path / "s" / "results.csv")}
    theirs = {(r["policy"], int(r["drop"])): (float(r["ssnr"]), float(r["min_sinr"]))
              for r in _csv(tmp_path / "c" / "drops.csv")}
    assert len(ours) == 10 and ours == theirs
    header = list(_csv(tmp_path / "s" / "results.csv")[0])
    assert header[: len(COLUMNS)] == list(COLUMNS)
    summary = {r["policy"]: r for r in _csv(tmp_path / "s" / "summary.csv")}
    cmp = {r["policy"]: r for r in json.loads((tmp_path / "c" / "summary.json").read_text())
           ["policies"]}
    for name in ("cvx", "ns-rzf"):
        assert float(summary[name]["ssnr_mean"]) == pytest.approx(cmp[name]["ssnr"]["mean"])
        assert [float(summary[name]["ssnr_lo"]), float(summary[name]["ssnr_hi"])] == \
            pytest.approx(cmp[name]["ssnr"]["ci"])
    assert float(summary["ns-rzf"]["ssnr_vs_cvx"]) == pytest.approx(cmp["ns-rzf"]["ssnr_vs_ref"])
    assert [float(summary["ns-rzf"]["min_sinr_vs_cvx_lo"]),
            float(summary["ns-rzf"]["min_sinr_vs_cvx_hi"])] == \
        pytest.approx(cmp["ns-rzf"]["min_sinr_vs_ref_ci"])
    for png in ("fig16a-pos2.png", "fig16b-pos2.png", "tradeoff-pos2-N3.png"):
        assert (tmp_path / "s" / png).stat().st_size > 1000


# ---- engines, store, resumption -----------------------------------------------------------------

def test_local_pool_equals_serial_and_a_rerun_skips_finished_cells(tmp_path):
    cells = expand(["pos2"], [2, 3], [("cvx", {}), *[(p, {}) for p in FAST]], [1], 6)
    serial = ResultStore(tmp_path / "a.sqlite")
    out = run_sweep(cells, serial, jobs=1, chunk=2, progress=False)
    assert out.rows == 36 and not out.failed and out.tasks == 18
    pool = ResultStore(tmp_path / "b.sqlite")
    out = run_sweep(cells, pool, jobs=2, chunk=2, progress=False)
    assert out.rows == 36 and len(out.workers) == 2
    assert _numbers(serial) == _numbers(pool)
    again = run_sweep(cells, pool, jobs=2, chunk=2, progress=False)
    assert again.rows == 0 and again.tasks == 0 and again.skipped == 36
    more = expand(["pos2"], [2, 3], [("cvx", {"rho": 0.3}), *[(p, {}) for p in FAST]], [1], 6)
    grown = run_sweep(more, pool, jobs=1, chunk=3, progress=False)
    assert grown.rows == 12 and grown.skipped == 24          # only the new cvx cells


class Interrupting(Policy):
    """Aims at the target; Ctrl-C on the drop whose first CSI entry is ``stop_at`` once armed."""

    armed = False
    calls = 0

    def act_batch(self, csi):
        Interrupting.calls += 1
        if Interrupting.armed and Interrupting.calls > 5:
            raise KeyboardInterrupt
        w = np.zeros_like(csi)
        w[..., -1] = csi[..., -1] / np.sqrt(self.system.M)
        return w


def test_ctrl_c_keeps_finished_chunks_and_a_rerun_resumes(tmp_path):
    spec = f"{__name__}:Interrupting"
    cells = expand(["pos2"], [2], [(spec, {})], [0], 12)
    store = ResultStore(tmp_path / "r.sqlite")
    Interrupting.armed, Interrupting.calls = True, 0
    out = run_sweep(cells, store, jobs=1, chunk=2, progress=False)
    assert out.interrupted
    kept = sorted(r["drop"] for r in store.rows())
    assert kept == [0, 1, 2, 3]        # whole chunks only: the one in flight is lost
    Interrupting.armed = False
    out = run_sweep(cells, store, jobs=1, chunk=2, progress=False)
    assert not out.interrupted and out.skipped == 4 and out.rows == 8
    fresh = ResultStore(tmp_path / "fresh.sqlite")
    run_sweep(cells, fresh, jobs=1, chunk=5, progress=False)
    assert _numbers(store) == _numbers(fresh)


def _writer(path, worker, n):
    store = ResultStore(path)
    for k in range(n):
        store.add([{"cell": f"w{worker}", "drop": 10 * k + j, "ssnr": float(j),
                    "min_sinr": np.nan, "users": 2, "policy": "p"} for j in range(10)])


def test_store_is_safe_with_concurrent_writers(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path)
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, w, 8))
             for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = ResultStore(path)
    assert len(store) == 320 and store.finished("w3") == set(range(80))
    assert np.isnan(store.rows(["w0"])[0]["min_sinr"])


def test_store_refuses_foreign_files(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError):
        ResultStore(bad)


def test_sweep_runner_user_errors_exit_2(tmp_path, capsys):
    assert sweep.main(["--policy", "nope", "--out", str(tmp_path / "a")]) == 2
    assert sweep.main(["--address", "auto", "--out", str(tmp_path / "b")]) == 2
    assert sweep.main(["--policy", "cvx@rho", "--out", str(tmp_path / "c")]) == 2
    f = tmp_path / "s.toml"
    f.write_text("users = [2]\nbogus = 1\n")
    assert sweep.main([str(f), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("error: sweep:") for line in err)


def test_sweep_file_runs_and_flags_override_it(tmp_path):
    f = tmp_path / "grid.toml"
    f.write_text('name = "t"\nscenario = ["pos1"]\nusers = [2, 3]\ndrops = 50\n'
                 '[[policy]]\nspec = "ns-rzf"\n[[policy]]\nspec = "cvx"\n'
                 'options = {rho = [0.3, 0.6]}\n')
    assert sweep.main([str(f), "--drops", "3", "--jobs", "1", "--quiet", "--no-cache",
                       "--out", str(tmp_path / "o")]) == 0
    rows = _csv(tmp_path / "o" / "summary.csv")
    assert {(r["policy"], r["users"], r["drops"]) for r in rows} == {
        (p, n, "3") for p in ("ns-rzf", "cvx[rho=0.3]", "cvx[rho=0.6]") for n in ("2", "3")}


# ---- Ray ----------------------------------------------------------------------------------------

def test_ray_local_instance_and_two_node_cluster_match_serial(tmp_path):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cells = expand(["pos2"], [2], [("cvx", {}), ("ns-rzf", {})], [3], 6)
    serial = ResultStore(tmp_path / "serial.sqlite")
    run_sweep(cells, serial, jobs=1, chunk=2, progress=False)
    local = ResultStore(tmp_path / "local.sqlite")
    out = run_sweep(cells, local, engine="ray", jobs=2, chunk=2, progress=False)
    assert not ray.is_initialized()                  # the instance it started is shut down
    assert out.rows == 12 and all("@" in w for w in out.workers)
    assert _numbers(local) == _numbers(serial)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        multi = ResultStore(tmp_path / "multi.sqlite")
        out = run_sweep(cells, multi, engine="ray", address=cluster.address, chunk=1,
                        progress=False)
        assert out.rows == 12 and out.tasks == 12
        assert _numbers(multi) == _numbers(serial)
    finally:
        ray.shutdown()
        cluster.shutdown()


# ---- the decision cache -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    sc = scenarios.load("pos2", users=3)
    return sc, Drops.sample(sc, 4, seed=11)


def test_cache_hit_returns_the_fresh_solve(tmp_path, small):
    sc, drops = small
    fresh = score_policy("cvx", sc, drops, jobs=1, progress=False)
    cache = DecisionCache(tmp_path / "c.sqlite")
    first = score_policy("cvx", sc, drops, jobs=1, progress=False, cache=cache)
    assert cache.stored == 4 and not first.cached.any()
    reopened = DecisionCache(tmp_path / "c.sqlite")        # survives across runs
    hit = score_policy("cvx", sc, drops, jobs=1, progress=False, cache=reopened)
    assert hit.cached.all() and reopened.hits == 4 and reopened.stored == 0
    for a in ("ssnr", "min_sinr", "gamma_high", "fallback"):
        np.testing.assert_array_equal(getattr(hit, a), getattr(fresh, a))
    np.testing.assert_array_equal(hit.seconds, first.seconds)   # the original solve time
    pol = build("cvx", sc)
    key = decision_key(pol, {}, drops.csi[:1])
    d = reopened.get_many([key])[key]
    np.testing.assert_array_equal(d.beams, pol.decide(drops.csi[:1]).beams)


def test_cache_key_covers_system_settings_and_drop(small):
    sc, drops = small
    base = build("cvx", sc)
    k = decision_key(base, {}, drops.csi[:1])
    assert k == decision_key(build("cvx", sc), {}, drops.csi[:1].copy())
    assert k == decision_key(build("cvx", sc, timeout_s=5.0), {"timeout_s": 5.0}, drops.csi[:1])
    assert k != decision_key(build("cvx", sc, rho=0.3), {"rho": 0.3}, drops.csi[:1])
    assert k != decision_key(build("cvx", sc, solver="SCS"), {"solver": "SCS"}, drops.csi[:1])
    assert k != decision_key(build("ns-opt", sc), {}, drops.csi[:1])
    assert k != decision_key(base, {}, drops.csi[1:2])
    other = scenarios.load("pos2", users=3, overrides={"power": 2.0})
    assert k != decision_key(build("cvx", other), {}, drops.csi[:1])


def test_corrupt_and_foreign_cache_files_are_not_trusted(tmp_path, small, capsys):
    sc, drops = small
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CacheError, match="not a cfisac decision cache"):
        DecisionCache(junk)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    with pytest.raises(CacheError):
        DecisionCache(foreign)
    assert compare.main(["--policy", "ns-rzf", "--drops", "2", "--cache", str(junk),
                         "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    path = tmp_path / "c.sqlite"
    cache = DecisionCache(path)
    good = score_policy("ns-opt", sc, drops, jobs=1, progress=False, cache=cache)
    with sqlite3.connect(path) as db:                 # damage one entry's payload
        key, blob = db.execute("SELECT key, payload FROM decisions LIMIT 1").fetchone()
        db.execute("UPDATE decisions SET payload = ? WHERE key = ?",
                   (blob[:-20] + b"x" * 20, key))
    cache = DecisionCache(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = score_policy("ns-opt", sc, drops, jobs=1, progress=False, cache=cache)
    assert cache.damaged == 1 and cache.stored == 1 and again.cached.sum() == 3
    assert any("damaged entry" in str(w.message) for w in caught)
    np.testing.assert_array_equal(again.ssnr, good.ssnr)


def test_second_compare_does_not_solve_cvx_again(tmp_path, monkeypatch):
    from policies.convex import policies as cvx

    args = ["--scenario", "pos2", "--users", "3", "--policy", "cvx", "--policy", "ns-rzf",
            "--drops", "6", "--heavy-drops", "4", "--jobs", "1", "--quiet",
            "--cache", str(tmp_path / "c.sqlite")]
    assert compare.main([*args, "--out", str(tmp_path / "a")]) == 0
    solves = []
    real = cvx.JointSDP._solve_drop
    monkeypatch.setattr(cvx.JointSDP, "_solve_drop",
                        lambda self, *a, **k: solves.append(1) or real(self, *a, **k))
    assert compare.main([*args, "--out", str(tmp_path / "b")]) == 0
    assert solves == []
    a, b = (_csv(tmp_path / d / "drops.csv") for d in "ab")
    assert [r["ssnr"] for r in a] == [r["ssnr"] for r in b]
    assert [r["cached"] for r in b if r["policy"] == "cvx"] == ["1"] * 4


# ---- statistics and the frontier ----------------------------------------------------------------

def test_intervals_cover_the_truth_at_their_level():
    rng = np.random.default_rng(0)
    hit_mean = hit_ratio = 0
    for _ in range(400):
        y = rng.gamma(4.0, 0.5, 40)                    # mean 2
        x = 0.8 * y + rng.normal(0, 0.3, 40)           # paired, ratio of means 0.8
        m, r = mean_ci(y), ratio_ci(x, y)
        hit_mean += m["lo"] <= 2.0 <= m["hi"]
        hit_ratio += r["lo"] <= 0.8 <= r["hi"]
    assert 0.92 <= hit_mean / 400 <= 0.98 and 0.92 <= hit_ratio / 400 <= 0.98
    assert ratio_ci(2 * y, y)["ratio"] == pytest.approx(2.0)
    assert ratio_ci(2 * y, y)["hi"] - ratio_ci(2 * y, y)["lo"] == pytest.approx(0, abs=1e-12)
    assert np.isnan(mean_ci([1.0])["lo"]) and mean_ci([])["n"] == 0


def test_summary_ratios_are_paired_on_common_drops(tmp_path):
    cells = expand(["pos2"], [2], [("cvx", {}), ("ns-rzf", {})], [0], 6, heavy_drops=3)
    store = ResultStore(tmp_path / "r.sqlite")
    run_sweep(cells, store, jobs=1, progress=False)
    s = {r["policy"]: r for r in summarize(cells, store.rows())}
    assert s["cvx"]["drops"] == 3 and s["ns-rzf"]["drops"] == 6
    assert s["ns-rzf"]["common_drops"] == 3
    rows = [r for r in store.rows() if r["drop"] < 3]
    x = np.array([r["ssnr"] for r in rows if r["policy"] == "ns-rzf"])
    y = np.array([r["ssnr"] for r in rows if r["policy"] == "cvx"])
    assert s["ns-rzf"]["ssnr_vs_cvx"] == pytest.approx(x.mean() / y.mean())
    assert s["cvx"]["ssnr_vs_cvx"] == 1.0
