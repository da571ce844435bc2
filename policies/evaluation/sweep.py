"""Sweeps: a grid of (scenario, N, policy, options, seed) cells scored on shared seeded drops,
in chunks, serially, on a local process pool or on Ray; results in a resumable store.

Each ``(scenario, overrides, N, seed, drops)`` group draws its drops once with
:meth:`policies.evaluation.evaluate.Drops.sample` and scores every policy of the group on them with
:func:`policies.evaluation.evaluate.evaluate_policy`, exactly as ``runners/compare.py`` does: the
same
seed gives the same numbers in both. Heavy policies (``cvx``, ...) are scored on the first
``heavy_drops`` drops (all by default).

A cell's pending drops (those not yet in the :class:`policies.evaluation.store.ResultStore`) are
split into
chunks sized to take about ``task_seconds`` each (from a timed probe decision); each chunk is a
task: the policy is built once per worker, the chunk's decisions are made and scored there, and
the driver stores the chunk's rows in one transaction as it comes back. Heavy policies' decisions
come from and go to the :class:`policies.evaluation.cache.DecisionCache` in the driver (workers
need no
shared disk): chunks whose drops are all cached are scored in the driver without solving.

Engines (:func:`run_sweep`): ``local`` with ``jobs == 1`` runs the tasks in this process;
``local`` with more jobs uses a ``ProcessPoolExecutor``; ``ray`` submits them as Ray tasks (one
CPU each) to a cluster at ``address`` (``"auto"`` or ``"host:port"``) or to a local instance
started for the sweep. Workers pin torch and BLAS to ``threads`` threads each. Ctrl-C stops
handing out tasks and returns; chunks in flight are lost, everything stored stays.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from policies.base import Decision, Policy
from policies.evaluation import sensing
from policies.evaluation.cache import MemoryCache, cacheable, decision_key
from policies.evaluation.evaluate import Drops, build, evaluate_policy
from policies.evaluation.stats import mean_ci, ratio_ci
from policies.evaluation.store import ResultStore, cell_key

ENGINES = ("local", "ray")
REFERENCE = "cvx"
#: Environment of worker processes: one BLAS/OpenMP thread each (torch is pinned in the worker).
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
MAX_CHUNK = 4096


# ---- the grid ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One grid cell: a policy with its options on ``drops`` seeded drops of a scenario at N."""

    scenario: str
    users: int
    policy: str
    options: tuple[tuple[str, Any], ...] = ()
    seed: int = 0
    drops: int = 100
    heavy_drops: int | None = None
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def options_dict(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def options_text(self) -> str:
        """The options as compact JSON (the ``options`` column): ``{}`` for none."""
        return json.dumps(self.options_dict, sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        return cell_key(self.scenario, dict(self.overrides), self.users, self.policy,
                        self.options_dict, self.seed, self.drops)

    @property
    def group(self) -> tuple:
        """Cells of one group share their drops."""
        return (self.scenario, self.overrides, self.users, self.seed, self.drops)

    @property
    def label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        return self.policy + (f"[{opts}]" if opts else "")

    @property
    def scenario_label(self) -> str:
        sets = ",".join(f"{k}={v}" for k, v in self.overrides)
        return self.scenario + (f"[{sets}]" if sets else "")


def expand(scenarios: list[str], users: list[int], policies: list[tuple[str, dict[str, Any]]],
           seeds: list[int], drops: int, heavy_drops: int | None = None,
           overrides: dict[str, Any] | None = None) -> list[Cell]:
    """Every combination as :class:`Cell` objects. A policy option whose value is a list is
    swept too (``("cvx", {"rho": [0.25, 0.5]})`` is two cells)."""
    if drops < 1:
        raise ValueError(f"drops must be >= 1, got {drops}")
    sets = tuple(sorted((overrides or {}).items()))
    cells = []
    for spec, opts in policies:
        names = sorted(opts)
        values = [v if isinstance(v, list) else [v] for v in (opts[n] for n in names)]
        for combo in itertools.product(*values) if names else [()]:
            o = tuple(zip(names, combo, strict=True))
            for sc, n, seed in itertools.product(scenarios, users, seeds):
                cells.append(Cell(sc, int(n), spec, o, int(seed), int(drops), heavy_drops, sets))
    return list(dict.fromkeys(cells))


# ---- tasks ------------------------------------------------------------------------------------

@dataclass
class Task:
    """A chunk of drops of one cell: ``drop (K,)`` indices, their ``csi``/``truth``
    ``(K, L, 2, M, Q)``, positions, and the cached decisions of some of them."""

    cell: Cell
    scenario: Any
    drop: np.ndarray
    csi: np.ndarray
    truth: np.ndarray | None
    ue_xy: np.ndarray
    target_xy: np.ndarray
    hits: dict[str, Decision] = field(default_factory=dict)
    threads: int | None = 1
    heavy: bool = False


@dataclass
class TaskResult:
    """Rows of a finished task (dicts for the store), new decisions for the cache, wall time."""

    cell: str
    rows: list[dict[str, Any]]
    new: list[tuple[str, Decision]]
    seconds: float
    worker: str = ""


_WORKER_POLICIES: dict[tuple, Policy] = {}


def pin_threads(threads: int | None) -> None:
    """Limit this process to ``threads`` torch/BLAS threads (None: leave as is)."""
    if not threads:
        return
    for var in THREAD_ENV:
        os.environ[var] = str(threads)
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    try:   # BLAS already loaded by numpy: threadpoolctl when available
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass


def _policy(task: Task) -> Policy:
    c = task.cell
    k = (c.policy, c.options_text, c.scenario_label, c.users)
    if k not in _WORKER_POLICIES:
        _WORKER_POLICIES[k] = build(c.policy, task.scenario, **c.options_dict)
    return _WORKER_POLICIES[k]


def run_task(task: Task) -> TaskResult:
    """Score one chunk (in whatever process runs it): the same code path as
    :func:`policies.evaluation.evaluate.evaluate` on those drops."""
    t0 = time.perf_counter()
    pin_threads(task.threads)
    c = task.cell
    base = {"scenario": c.scenario_label, "users": c.users, "policy": c.label,
            "options": c.options_text, "seed": c.seed, "sample": c.drops, "cell": c.key}
    try:
        policy = _policy(task)
    except Exception as e:   # e.g. a checkpoint missing on this worker: failed rows
        msg = f"{type(e).__name__}: {e}"
        rows = [{**base, "drop": int(d), "ssnr": math.nan, "min_sinr": math.nan,
                 "seconds": math.nan, "timing": "", "fallback": False, "over_budget": False,
                 "error": msg, "gamma_high": math.nan, "cached": False,
                 **sensing.row_cells(None, 0)} for d in task.drop]
        return TaskResult(c.key, rows, [], time.perf_counter() - t0, _worker())
    cache = MemoryCache(task.hits)
    drops = Drops(task.csi, task.ue_xy, task.target_xy, task.truth,
                  (task.scenario, c.seed, task.drop) if sensing.echo_mode(task.scenario) else None)
    run = evaluate_policy(policy, c.policy, drops, jobs=1, progress=False,
                          options=c.options_dict, cache=cache)
    if run.interrupted:
        raise KeyboardInterrupt
    rows = []
    for j, local in enumerate(run.index):
        rows.append({**base, "drop": int(task.drop[local]), "ssnr": float(run.ssnr[j]),
                     "min_sinr": float(run.min_sinr[j]), "seconds": float(run.seconds[j]),
                     "timing": run.timing, "fallback": bool(run.fallback[j]),
                     "over_budget": bool(run.over_budget[j]),
                     "error": run.drop_errors.get(int(local), ""),
                     "gamma_high": float(run.gamma_high[j]),
                     "cached": bool(run.cached[j]) if run.cached is not None else False,
                     **sensing.row_cells(run.sensing, j)})
    return TaskResult(c.key, rows, cache.new, time.perf_counter() - t0, _worker())


def _worker() -> str:
    """``host:pid`` of this process, plus ``@<node id>`` inside a Ray worker."""
    import socket

    name = f"{socket.gethostname()}:{os.getpid()}"
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        try:
            name += "@" + ray.get_runtime_context().get_node_id()[:8]
        except Exception:
            pass
    return name


# ---- planning ---------------------------------------------------------------------------------

@dataclass
class Plan:
    """What :func:`plan` found: tasks to dispatch, tasks answered from the cache, failures."""

    tasks: list[Task] = field(default_factory=list)
    inline: list[Task] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    drops: dict[tuple, Drops] = field(default_factory=dict)
    scenarios: dict[tuple, Any] = field(default_factory=dict)
    skipped: int = 0


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for s in range(0, len(items), size):
        yield items[s: s + size]


def plan(cells: list[Cell], store: ResultStore, cache: Any = None, task_seconds: float = 2.0,
         chunk: int | None = None, threads: int | None = 1, log: list[str] | None = None
         ) -> Plan:
    """Draw each group's drops, build each cell's policy once (a failure is a failed cell),
    skip the drops the store holds and split the rest into tasks.

    Chunk size: ``chunk`` if given, else ``ceil(task_seconds / t)`` with ``t`` the time of a
    probe decision on the first pending drop (heavy policies: that decision is cached).
    """
    import scenarios as scenario_lib

    out = Plan()
    log = [] if log is None else log
    for g, group in itertools.groupby(sorted(cells, key=lambda c: repr(c.group)),
                                      key=lambda c: c.group):
        name, sets, n, seed, size = g
        sc = scenario_lib.load(name, users=n, overrides=dict(sets))
        drops = Drops.sample(sc, size, seed)
        if sensing.echo_mode(sc):        # the target column from a search dwell per drop
            drops = sensing.echo_drops(sc, drops, seed)
        out.drops[g], out.scenarios[g] = drops, sc
        for cell in group:
            try:
                policy = build(cell.policy, sc, **cell.options_dict)
            except Exception as e:
                out.failed[cell.key] = " ".join(f"{type(e).__name__}: {e}".split())
                log.append(f"{cell.scenario_label} N={n} {cell.label}: cannot build: "
                           f"{out.failed[cell.key]}")
                continue
            k = size if not policy.heavy or cell.heavy_drops is None else min(cell.heavy_drops,
                                                                               size)
            done = store.finished(cell.key)
            pending = [i for i in range(k) if i not in done]
            out.skipped += k - len(pending)
            if not pending:
                continue
            keys: dict[int, str] = {}
            hits: dict[str, Decision] = {}
            if cache is not None and cacheable(policy):
                keys = {i: decision_key(policy, cell.options_dict, drops.csi[i: i + 1])
                        for i in pending}
                hits = cache.get_many(list(keys.values()))
            misses = [i for i in pending if keys.get(i) not in hits]
            size_k, probe = _chunk_size(policy, drops, misses, task_seconds, chunk)
            if probe is not None and misses[0] in keys:      # the probe's decision is kept
                cache.put_many([(keys[misses[0]], probe)])
                hits[keys[misses[0]]] = probe
                misses = misses[1:]

            cached = [i for i in pending if keys.get(i) in hits]
            make = (cell, sc, drops, keys, hits, threads, bool(policy.heavy))
            out.inline += [_task(ids, *make) for ids in _chunks(cached, MAX_CHUNK)]
            out.tasks += [_task(ids, *make) for ids in _chunks(misses, size_k)]
    out.tasks.sort(key=lambda t: not t.heavy)        # long tasks first: better load balance
    return out


def _task(ids: list[int], cell: Cell, sc: Any, drops: Drops, keys: dict[int, str],
          hits: dict[str, Decision], threads: int | None, heavy: bool) -> Task:
    ix = np.asarray(ids, dtype=int)
    return Task(cell, sc, ix, drops.csi[ix], None if drops.true_csi is None else drops.true_csi[ix],
                drops.ue_xy[ix], drops.target_xy[ix],
                {keys[i]: hits[keys[i]] for i in ids if keys.get(i) in hits}, threads, heavy)


def _chunk_size(policy: Policy, drops: Drops, misses: list[int], task_seconds: float,
                chunk: int | None) -> tuple[int, Decision | None]:
    """Drops per task (``chunk``, else from a timed probe decision on the first miss) and the
    probe's decision (None without a probe)."""
    if chunk or not misses:
        return chunk or 1, None
    i = misses[0]
    try:
        policy.decide(drops.csi[i: i + 1])                 # warm-up (lazy set-up, caches)
        d = policy.decide(drops.csi[i: i + 1])
    except Exception:
        return 1, None
    per_drop = max(d.seconds, 1e-6) + 2e-4                 # + scoring and bookkeeping
    return int(min(MAX_CHUNK, max(1, math.ceil(task_seconds / per_drop)))), d


# ---- engines ----------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What :func:`run_sweep` did."""

    interrupted: bool = False
    failed: dict[str, str] = field(default_factory=dict)
    tasks: int = 0
    inline: int = 0
    skipped: int = 0
    rows: int = 0
    seconds: float = 0.0
    task_seconds: list[float] = field(default_factory=list)
    workers: set[str] = field(default_factory=set)
    log: list[str] = field(default_factory=list)


def run_sweep(cells: list[Cell], store: ResultStore, *, engine: str = "local",
              jobs: int | None = None, address: str | None = None, cache: Any = None,
              task_seconds: float = 2.0, chunk: int | None = None, threads: int | None = 1,
              progress: bool = True) -> Outcome:
    """Score every cell's pending drops into ``store``; see the module docstring.

    Args:
        cells: the grid (:func:`expand`).
        store: where rows go (one transaction per task); drops already there are skipped.
        engine: ``"local"`` or ``"ray"``.
        jobs: worker processes (``local``; None: all cores, 1: this process) or, for a local
            Ray instance, its CPUs.
        address: Ray cluster address (``"auto"``, ``"host:port"``); None starts a local one.
        cache: :class:`policies.evaluation.cache.DecisionCache` or None.
        task_seconds, chunk: task sizing (see :func:`plan`).
        threads: torch/BLAS threads per worker.
        progress: tqdm bar over drops.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("--engine ray needs Ray: pip install 'cfisac[ray]' (or "
                             "'ray>=2.9'), or use --engine local") from None
    t0 = time.perf_counter()
    out = Outcome()
    try:
        p = plan(cells, store, cache, task_seconds, chunk, threads, out.log)
    except KeyboardInterrupt:
        out.interrupted = True
        out.seconds = time.perf_counter() - t0
        return out
    out.failed, out.skipped = p.failed, p.skipped
    total = sum(len(t.drop) for t in p.tasks + p.inline)
    bar = tqdm(total=total, desc="sweep", unit="drop", disable=not progress)

    def finished(res: TaskResult) -> None:
        store.add(res.rows)
        if cache is not None and res.new:
            cache.put_many(res.new)
        out.rows += len(res.rows)
        out.task_seconds.append(res.seconds)
        out.workers.add(res.worker)
        bar.update(len(res.rows))

    try:
        for t in p.inline:
            finished(run_task(_no_pin(t)))
            out.inline += 1
        if p.tasks:
            if engine == "ray":
                _ray(p.tasks, jobs, address, finished)
            elif (jobs or os.cpu_count() or 1) == 1 or len(p.tasks) == 1:
                for t in p.tasks:                 # serial, in this process
                    finished(run_task(_no_pin(t)))
            else:
                _pool(p.tasks, jobs or os.cpu_count() or 1, threads, finished)
            out.tasks = len(p.tasks)
    except KeyboardInterrupt:
        out.interrupted = True
        bar.write(f"interrupted: {out.rows} drops stored; rerun the same command to resume")
    finally:
        bar.close()
        out.seconds = time.perf_counter() - t0
    return out


def _no_pin(t: Task) -> Task:
    """Run in this process: keep the caller's thread settings."""
    t.threads = None
    return t


def _init_pool_worker(threads: int | None) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the driver handles Ctrl-C
    pin_threads(threads)


def _pool(tasks: list[Task], jobs: int, threads: int | None,
          finished: Callable[[TaskResult], None]) -> None:
    """Local process pool; at most ``2 jobs`` tasks in flight (what Ctrl-C can lose)."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(min(jobs, len(tasks)), initializer=_init_pool_worker,
                               initargs=(threads,))
    queue = iter(tasks)
    pending: set = set()
    try:
        for t in itertools.islice(queue, 2 * jobs):
            pending.add(pool.submit(run_task, t))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                finished(fut.result())
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(run_task, nxt))
    except BaseException:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()                      # do not wait for chunks in flight
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _ray(tasks: list[Task], jobs: int | None, address: str | None,
         finished: Callable[[TaskResult], None]) -> None:
    """Ray tasks (one CPU each); at most twice the cluster's CPUs in flight."""
    import ray

    started = not ray.is_initialized()
    if started:
        env = {"env_vars": {v: "1" for v in THREAD_ENV}}
        kw: dict[str, Any] = {"runtime_env": env, "log_to_driver": False,
                              "logging_level": "ERROR", "configure_logging": True}
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=jobs or os.cpu_count() or 1, include_dashboard=False, **kw)
    try:
        remote = ray.remote(num_cpus=1, max_retries=2)(run_task)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        queue = iter(tasks)
        pending = [remote.remote(t) for t in itertools.islice(queue, 2 * cpus)]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                finished(ray.get(done[0]))
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append(remote.remote(nxt))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()


# ---- summaries --------------------------------------------------------------------------------

def _reference(cell: Cell, cells: list[Cell]) -> Cell | None:
    """The ``cvx`` cell a cell is compared with: same group, default options, else rho 0.5,
    else the first ``cvx`` cell of the group."""
    refs = [c for c in cells if c.policy == REFERENCE and c.group == cell.group]
    for want in ((), (("rho", 0.5),)):
        for c in refs:
            if c.options == want:
                return c
    return refs[0] if refs else None


def summarize(cells: list[Cell], rows: list[dict[str, Any]],
              failed: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One summary row per cell: means with 95 % intervals, medians, time, counts, and paired
    ratios to the group's ``cvx`` cell with their intervals (on the drops both scored)."""
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_cell.setdefault(r["cell"], []).append(r)
    failed = failed or {}
    out = []
    for cell in cells:
        rs = sorted(by_cell.get(cell.key, []), key=lambda r: r["drop"])
        row: dict[str, Any] = {"scenario": cell.scenario_label, "users": cell.users,
                               "policy": cell.label, "options": cell.options_text,
                               "seed": cell.seed, "drops": len(rs)}
        arr = {m: np.array([r[m] for r in rs], float) for m in ("ssnr", "min_sinr", "seconds")}
        for m in ("ssnr", "min_sinr"):
            ci = mean_ci(arr[m])
            row.update({f"{m}_mean": ci["mean"], f"{m}_lo": ci["lo"], f"{m}_hi": ci["hi"],
                        f"{m}_median": float(np.nanmedian(arr[m])) if len(rs) else math.nan})
        t = arr["seconds"][np.isfinite(arr["seconds"])] * 1e3
        row["time_ms_median"] = float(np.median(t)) if len(t) else math.nan
        row["time_ms_p95"] = float(np.percentile(t, 95)) if len(t) else math.nan
        row["timing"] = rs[0]["timing"] if rs else ""
        row["fallbacks"] = sum(bool(r["fallback"]) for r in rs)
        row["over_budget"] = sum(bool(r["over_budget"]) for r in rs)
        row["errors"] = sum(bool(r["error"]) for r in rs)
        row["cached"] = sum(bool(r["cached"]) for r in rs)
        ref = _reference(cell, cells)
        ref_rows = {r["drop"]: r for r in by_cell.get(ref.key, [])} if ref else {}
        common = [r for r in rs if r["drop"] in ref_rows]
        row["common_drops"] = len(common)
        for m in ("ssnr", "min_sinr"):
            rc = ratio_ci(np.array([r[m] for r in common], float),
                          np.array([ref_rows[r["drop"]][m] for r in common], float))
            row.update({f"{m}_vs_cvx": rc["ratio"], f"{m}_vs_cvx_lo": rc["lo"],
                        f"{m}_vs_cvx_hi": rc["hi"]})
        row.update(sensing.summary_cells(rs))
        row["failed"] = failed.get(cell.key, "")
        out.append(row)
    return out


SUMMARY_COLUMNS = ("scenario", "users", "policy", "options", "seed", "drops",
                   "ssnr_mean", "ssnr_lo", "ssnr_hi", "ssnr_median",
                   "min_sinr_mean", "min_sinr_lo", "min_sinr_hi", "min_sinr_median",
                   "ssnr_vs_cvx", "ssnr_vs_cvx_lo", "ssnr_vs_cvx_hi",
                   "min_sinr_vs_cvx", "min_sinr_vs_cvx_lo", "min_sinr_vs_cvx_hi", "common_drops",
                   "time_ms_median", "time_ms_p95", "timing", "fallbacks", "over_budget",
                   "errors", "cached", "pd_mean", "angle_rmse_deg", "position_rmse_m", "failed")


# ---- the CVX frontier -------------------------------------------------------------------------

def max_min_sinr(truth: np.ndarray, system: Any) -> np.ndarray:
    """``(K,)`` the highest common SINR each drop admits (all power to communication, no sensing
    beam): the NS+OPT bisection's ``gamma_high`` at ``rho = 1`` with a zero sensing beam, the
    largest target at which the joint SDP is feasible (to the bisection's 0.01)."""
    from policies.convex.socp import FastMaxMinSINR

    x = np.asarray(truth, dtype=np.float64)
    hc = x[:, :, 0] + 1j * x[:, :, 1]
    fast = FastMaxMinSINR(system, 1.0)
    zero = np.zeros((system.L, system.M), complex)
    return np.array([fast.solve(h, zero, need_beams=False).gamma_high for h in hc])


def frontier_ssnr_ipm(truth: np.ndarray, system: Any, gamma: np.ndarray) -> np.ndarray:
    """``(K,)`` optimum SSNR of the joint SDP on drop ``i`` at target ``gamma[i]`` (the bound
    where ``gamma <= 0``; NaN where infeasible), by :class:`policies.convex.ipm.IPMJointSDP`, the
    solver of ``cvx``."""
    from policies.convex.ipm import IPMJointSDP

    x = np.asarray(truth, dtype=np.float64)
    hc = x[:, :, 0] + 1j * x[:, :, 1]
    sdp = IPMJointSDP(system)
    out = np.full(len(x), np.nan)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(len(x)):
            out[i] = system.ssnr_bound if gamma[i] <= 0 else sdp.solve(hc[i],
                                                                       float(gamma[i])).ssnr_opt
    return out


def frontier_curve(truth: np.ndarray, system: Any, points: int = 9, top: float = 0.98,
                   progress: bool = False) -> dict[str, np.ndarray]:
    """The CVX frontier averaged over drops: the joint SDP over a sweep of SINR targets.

    Drop ``i`` admits common SINRs up to ``G_i`` (:func:`max_min_sinr`); at each fraction ``t``
    of ``linspace(0, top, points)`` the SDP is solved on every drop at ``gamma_i = t G_i`` (a
    common absolute target would be infeasible on the hardest drops long before the others
    saturate) and the frontier point is ``(mean_i gamma_i, mean_i SSNR*_i)``: the mean SSNR the
    joint design reaches while every drop gives each UE ``gamma_i``.

    Args:
        truth: ``(K, L, 2, M, Q)`` float32 true channels of the drops.
        system: their system.
        points, top: the fractions ``t``.
        progress: tqdm bar.

    Returns:
        ``{"fraction" (P,), "gamma" (P,), "ssnr" (P,), "solved" (P,) drops with an optimum,
        "gamma_max" (K,)}``; means over the solved drops.
    """
    g_max = max_min_sinr(truth, system)
    t = np.linspace(0.0, top, points)
    per = np.full((len(g_max), points), np.nan)
    for k in tqdm(range(points), desc="frontier", disable=not progress, leave=False):
        per[:, k] = frontier_ssnr_ipm(truth, system, t[k] * np.nan_to_num(g_max))
    solved = np.isfinite(per)
    gam = t[None, :] * g_max[:, None]
    with np.errstate(invalid="ignore"):
        n = np.maximum(solved.sum(axis=0), 1)
        ssnr = np.where(solved.any(axis=0), np.nansum(per, axis=0) / n, np.nan)
        gamma = np.where(solved.any(axis=0), np.sum(np.where(solved, gam, 0.0), axis=0) / n,
                         np.nan)
    return {"fraction": t, "gamma": gamma, "ssnr": ssnr, "solved": solved.sum(axis=0),
            "gamma_max": g_max}
