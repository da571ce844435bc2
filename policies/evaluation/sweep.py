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

import hashlib
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from cfisac_env.physics.validation import check_memory
from cfisac_env.runs import write_json
from policies.base import Decision, Policy
from policies.evaluation import sensing
from policies.evaluation.cache import MemoryCache, cacheable, code_fingerprint, decision_key
from policies.evaluation.evaluate import (
    Drops,
    PolicyRun,
    build,
    check_specs,
    constructor_options,
    evaluate_policy,
    reference_of,
    summary,
)
from policies.evaluation.pool import THREAD_ENV, pin_threads, run_pool
from policies.evaluation.store import ResultStore, cell_key
from policies.registry import PolicySpec, parse_spec, resolve

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ENGINES = ("local", "ray")
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
    name: str | None = None     #: the spec's ``@label``
    code: str = ""              #: fingerprint of the policy's code and the scenario

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
                        self.options_dict, self.seed, self.drops, self.code)

    @property
    def group(self) -> tuple:
        """Cells of one group share their drops."""
        return (self.scenario, self.overrides, self.users, self.seed, self.drops)

    @property
    def spec(self) -> PolicySpec:
        return PolicySpec(self.policy, self.options_dict, self.name)

    @property
    def label(self) -> str:
        """The row name (:attr:`policies.registry.PolicySpec.row`)."""
        return self.spec.row

    @property
    def scenario_label(self) -> str:
        sets = ",".join(f"{k}={v}" for k, v in self.overrides)
        return self.scenario + (f"[{sets}]" if sets else "")


def _scenario_code(name: str, overrides: tuple[tuple[str, Any], ...], users: int) -> str:
    """SHA-256 of the resolved scenario (its config and system): a changed scenario file gives
    other drops."""
    import scenarios as scenario_lib

    sc = scenario_lib.load(name, users=users, overrides=dict(overrides))
    text = json.dumps({"config": sc.config, "system": sc.system.to_dict()}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def expand(scenarios: list[str], users: list[int],
           policies: list[tuple[str, dict[str, Any]] | str | PolicySpec], seeds: list[int],
           drops: int, heavy_drops: int | None = None,
           overrides: dict[str, Any] | None = None) -> list[Cell]:
    """Every combination as :class:`Cell` objects. A policy is a spec (``"cvx@rho=0.25"``) or
    ``(spec, options)``; an option whose value is a list is swept too (``("cvx", {"rho": [0.25,
    0.5]})`` is two cells). Each cell's key carries a fingerprint of the policy's code
    (:func:`policies.evaluation.cache.code_fingerprint`) and of the resolved scenario, so a
    store never returns rows of other code or another scenario file."""
    if drops < 1:
        raise ValueError(f"drops must be >= 1, got {drops}")
    sets = tuple(sorted((overrides or {}).items()))
    codes: dict[Any, str] = {}
    cells = []
    for item in policies:
        ps = parse_spec(*item) if isinstance(item, tuple) else parse_spec(item)
        names = sorted(ps.options)
        values = [v if isinstance(v, list) else [v] for v in (ps.options[n] for n in names)]
        if ps.target not in codes:
            codes[ps.target] = code_fingerprint(resolve(ps.target))
        for combo in itertools.product(*values) if names else [()]:
            o = tuple(zip(names, combo, strict=True))
            for sc, n, seed in itertools.product(scenarios, users, seeds):
                if (sc, n) not in codes:
                    codes[(sc, n)] = _scenario_code(sc, sets, int(n))
                code = hashlib.sha256(f"{codes[ps.target]}|{codes[(sc, n)]}".encode()
                                      ).hexdigest()[:32]
                cells.append(Cell(sc, int(n), ps.target, o, int(seed), int(drops), heavy_drops,
                                  sets, ps.label, code))
    out = list(dict.fromkeys(cells))
    seen: dict[tuple, str] = {}
    for c in out:
        k = (c.group, c.label)
        if k in seen and seen[k] != c.key:
            raise ValueError(f"two policies of the sweep both name the row {c.label!r}; give "
                             "one a label: SPEC@label=NAME")
        seen[k] = c.key
    return out


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
    timeout: float | None = None     #: seconds one decision may take


@dataclass
class TaskResult:
    """Rows of a finished task (dicts for the store), new decisions for the cache, wall time."""

    cell: str
    rows: list[dict[str, Any]]
    new: list[tuple[str, Decision]]
    seconds: float
    worker: str = ""


_WORKER_POLICIES: dict[tuple, Policy] = {}


def _policy(task: Task) -> Policy:
    c = task.cell
    k = (c.policy, c.options_text, c.scenario_label, c.users)
    if k not in _WORKER_POLICIES:
        _WORKER_POLICIES[k] = build(c.policy, task.scenario, **c.options_dict)
    return _WORKER_POLICIES[k]


def run_task(task: Task) -> TaskResult:
    """Score one chunk (in whatever process runs it): the same code path as
    :func:`policies.evaluation.evaluate.score_policy` on those drops."""
    t0 = time.perf_counter()
    pin_threads(task.threads)
    c = task.cell
    base = {"scenario": c.scenario_label, "users": c.users, "policy": c.label,
            "options": c.options_text, "seed": c.seed, "sample": c.drops, "cell": c.key}
    try:
        policy = _policy(task)
    except Exception as e:   # e.g. a checkpoint missing on this worker: failed rows
        return failed_task(task, f"{type(e).__name__}: {e}", time.perf_counter() - t0)
    cache = MemoryCache(task.hits)
    drops = Drops(task.csi, task.ue_xy, task.target_xy, task.truth,
                  (task.scenario, c.seed, task.drop) if sensing.echo_mode(task.scenario) else None)
    opts, _ = constructor_options(c.policy, task.scenario, c.options_dict)
    run = evaluate_policy(policy, c.policy, drops, jobs=1, progress=False,
                          options=opts, cache=cache, name=c.label)
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


def failed_task(task: Task, msg: str, seconds: float = 0.0) -> TaskResult:
    """Error rows for every drop of ``task`` (the policy could not be built, its worker died or
    it ran out of time): recorded, not final (a rerun tries them again)."""
    c = task.cell
    base = {"scenario": c.scenario_label, "users": c.users, "policy": c.label,
            "options": c.options_text, "seed": c.seed, "sample": c.drops, "cell": c.key}
    rows = [{**base, "drop": int(d), "ssnr": math.nan, "min_sinr": math.nan,
             "seconds": math.nan, "timing": "", "fallback": False, "over_budget": False,
             "error": msg, "gamma_high": math.nan, "cached": False,
             **sensing.row_cells(None, 0)} for d in task.drop]
    return TaskResult(c.key, rows, [], seconds, _worker())


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
    probe decision on the first pending drop (not kept: it follows a warm-up decision).
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
            opts, limit = constructor_options(cell.policy, sc, cell.options_dict)
            if cache is not None and cacheable(policy):
                keys = {i: decision_key(policy, opts, drops.csi[i: i + 1]) for i in pending}
                hits = cache.get_many(list(keys.values()))
            misses = [i for i in pending if keys.get(i) not in hits]
            if limit is None:   # the probe's decision is not kept: it followed a warm-up
                size_k = _chunk_size(policy, drops, misses, task_seconds, chunk)
            else:   # a time limit: no probe here (it could hang), one drop per task
                size_k = chunk or 1

            cached = [i for i in pending if keys.get(i) in hits]
            make = (cell, sc, drops, keys, hits, threads, bool(policy.heavy), limit)
            out.inline += [_task(ids, *make) for ids in _chunks(cached, MAX_CHUNK)]
            out.tasks += [_task(ids, *make) for ids in _chunks(misses, size_k)]
    out.tasks.sort(key=lambda t: not t.heavy)        # long tasks first: better load balance
    return out


def _task(ids: list[int], cell: Cell, sc: Any, drops: Drops, keys: dict[int, str],
          hits: dict[str, Decision], threads: int | None, heavy: bool,
          timeout: float | None) -> Task:
    ix = np.asarray(ids, dtype=int)
    return Task(cell, sc, ix, drops.csi[ix], None if drops.true_csi is None else drops.true_csi[ix],
                drops.ue_xy[ix], drops.target_xy[ix],
                {keys[i]: hits[keys[i]] for i in ids if keys.get(i) in hits}, threads, heavy,
                timeout)


def _chunk_size(policy: Policy, drops: Drops, misses: list[int], task_seconds: float,
                chunk: int | None) -> int:
    """Drops per task: ``chunk``, else from a timed probe decision on the first miss."""
    if chunk or not misses:
        return chunk or 1
    i = misses[0]
    try:
        policy.decide(drops.csi[i: i + 1])                 # warm-up (lazy set-up, caches)
        d = policy.decide(drops.csi[i: i + 1])
    except Exception:
        return 1
    per_drop = max(d.seconds, 1e-6) + 2e-4                 # + scoring and bookkeeping
    return int(min(MAX_CHUNK, max(1, math.ceil(task_seconds / per_drop))))


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
            elif ((jobs or os.cpu_count() or 1) == 1 or len(p.tasks) == 1) and \
                    all(t.timeout is None for t in p.tasks):
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


def _task_limit(t: Task) -> float | None:
    """Seconds a task may run: its decisions' limit times its drops (None: no limit)."""
    return None if t.timeout is None else t.timeout * len(t.drop) + 5.0


def _pool(tasks: list[Task], jobs: int, threads: int | None,
          finished: Callable[[TaskResult], None]) -> None:
    """The local process pool (:func:`policies.evaluation.pool.run_pool`): a task whose
    worker dies or runs out of time gives error rows; the others go on."""
    for i, outcome in run_pool(run_task, tasks, jobs, threads=threads, timeout=_task_limit):
        if isinstance(outcome, BaseException):
            outcome = failed_task(tasks[i], f"{type(outcome).__name__}: {outcome}")
        finished(outcome)


#: Ray reads it when imported: "0" makes this machine a single-node cluster whose node address is
#: the loopback one, so every server of a local instance listens on 127.0.0.1 only
RAY_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def start_local_ray(cpus: int, **kw: Any) -> None:
    """Start a local Ray instance of ``cpus`` CPUs whose servers (GCS, raylet, workers, agents;
    no dashboard) listen on 127.0.0.1 only: Ray has no authentication of its own, so a local
    instance must not be reachable from the network. ``kw`` goes to ``ray.init``.

    Raises:
        RuntimeError: Ray did not take the loopback address (it is shut down again).
    """
    import ray
    from ray._private import ray_constants

    saved = os.environ.get(RAY_LOOPBACK_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[RAY_LOOPBACK_ENV] = "0"             # for the processes ray.init starts
    ray_constants.ENABLE_RAY_CLUSTER = False       # for this process, which imported Ray already
    try:
        ray.init(num_cpus=cpus, include_dashboard=False, **kw)
    finally:
        if saved[0] is None:
            os.environ.pop(RAY_LOOPBACK_ENV, None)
        else:
            os.environ[RAY_LOOPBACK_ENV] = saved[0]
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]
    node = ray.util.get_node_ip_address()
    if node not in ("127.0.0.1", "::1", "localhost"):
        ray.shutdown()
        raise RuntimeError(f"the local Ray instance took the network address {node}, not "
                           "127.0.0.1; use --engine local (or a secured cluster, --address)")


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
            start_local_ray(jobs or os.cpu_count() or 1, **kw)
    try:
        remote = ray.remote(num_cpus=1, max_retries=2)(run_task)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        queue = iter(tasks)
        pending = [remote.remote(t) for t in itertools.islice(queue, 2 * cpus)]
        try:
            task_of = dict(zip(pending, tasks, strict=False))
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    res = ray.get(done[0])
                except ray.exceptions.RayError as e:   # the worker died (after retries)
                    res = failed_task(task_of[done[0]], _first_line(e))
                finished(res)
                nxt = next(queue, None)
                if nxt is not None:
                    ref = remote.remote(nxt)
                    task_of[ref] = nxt
                    pending.append(ref)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()


def _first_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


# ---- summaries --------------------------------------------------------------------------------

def _reference(cell: Cell, cells: list[Cell]) -> Cell | None:
    """The cell a cell is compared with: the group's reference by
    :func:`policies.evaluation.evaluate.reference_of`."""
    group = [c for c in cells if c.group == cell.group]
    k = reference_of([(c.policy, c.options_dict) for c in group])
    return None if k is None else group[k]


def run_of_rows(name: str, rows: list[dict[str, Any]]) -> PolicyRun:
    """A :class:`PolicyRun` from a cell's stored rows (ordered by drop)."""
    def col(m: str, kind: Any = float) -> np.ndarray:
        return np.array([r[m] for r in rows], dtype=kind)

    return PolicyRun(name, rows[0]["timing"] if rows else "", False, False, 0,
                     col("drop", int), col("ssnr"), col("min_sinr"), col("seconds"),
                     col("fallback", bool), col("over_budget", bool), col("gamma_high"),
                     [f"drop {r['drop']}: {r['error']}" for r in rows if r["error"]],
                     cached=col("cached", bool))


def summarize(cells: list[Cell], rows: list[dict[str, Any]],
              failed: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One summary row per cell (:func:`policies.evaluation.evaluate.summary`, flattened to
    :data:`SUMMARY_COLUMNS`): means with 95 % intervals, medians, 5th percentiles, time, counts,
    and paired ratios to the group's reference cell with their intervals (on the drops both
    scored)."""
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_cell.setdefault(r["cell"], []).append(r)
    failed = failed or {}
    runs = {c.key: run_of_rows(c.label, sorted(by_cell.get(c.key, []), key=lambda r: r["drop"]))
            for c in cells}
    out = []
    for cell in cells:
        ref = _reference(cell, cells)
        s = summary(runs[cell.key], runs[ref.key] if ref is not None else None)
        row: dict[str, Any] = {"scenario": cell.scenario_label, "users": cell.users,
                               "policy": cell.label, "options": cell.options_text,
                               "seed": cell.seed, "drops": s["drops"]}
        for m in ("ssnr", "min_sinr"):
            st = s[m]
            row.update({f"{m}_mean": st["mean"], f"{m}_lo": st["ci"][0], f"{m}_hi": st["ci"][1],
                        f"{m}_median": st["median"], f"{m}_p5": st["p5"]})
        row["time_ms_median"] = s["time_ms"]["median"]
        row["time_ms_p95"] = s["time_ms"]["p95"]
        row["timing"] = s["timing"]
        for k in ("fallbacks", "over_budget", "errors", "cached"):
            row[k] = s[k]
        row["common_drops"] = s.get("common_drops", 0)
        for m in ("ssnr", "min_sinr"):
            lo, hi = s.get(f"{m}_vs_ref_ci", [math.nan, math.nan])
            row.update({f"{m}_vs_cvx": s.get(f"{m}_vs_ref", math.nan), f"{m}_vs_cvx_lo": lo,
                        f"{m}_vs_cvx_hi": hi})
        row.update(sensing.summary_cells(by_cell.get(cell.key, [])))
        row["failed"] = failed.get(cell.key, "")
        out.append(row)
    return out


SUMMARY_COLUMNS = ("scenario", "users", "policy", "options", "seed", "drops",
                   "ssnr_mean", "ssnr_lo", "ssnr_hi", "ssnr_median", "ssnr_p5",
                   "min_sinr_mean", "min_sinr_lo", "min_sinr_hi", "min_sinr_median",
                   "min_sinr_p5",
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
    from policies.convex.frontier import frontier_ssnr

    g_max = max_min_sinr(truth, system)
    t = np.linspace(0.0, top, points)
    per = np.full((len(g_max), points), np.nan)
    for k in tqdm(range(points), desc="frontier", disable=not progress, leave=False):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            per[:, k] = frontier_ssnr(truth, t[k] * np.nan_to_num(g_max), system)
    solved = np.isfinite(per)
    gam = t[None, :] * g_max[:, None]
    with np.errstate(invalid="ignore"):
        n = np.maximum(solved.sum(axis=0), 1)
        ssnr = np.where(solved.any(axis=0), np.nansum(per, axis=0) / n, np.nan)
        gamma = np.where(solved.any(axis=0), np.sum(np.where(solved, gam, 0.0), axis=0) / n,
                         np.nan)
    return {"fraction": t, "gamma": gamma, "ssnr": ssnr, "solved": solved.sum(axis=0),
            "gamma_max": g_max}


# ---- settings: command line over sweep file over defaults --------------------------------------

DEFAULTS: dict[str, Any] = {
    "scenario": ["pos2"], "users": [8], "policy": ["cvx", "ns-rzf", "mrt-target"], "seed": [0],
    "drops": 100, "heavy_drops": None, "engine": "local", "address": None, "jobs": None,
    "task_seconds": 2.0, "chunk": None, "frontier_drops": 0, "frontier_points": 9,
    "name": None}
_ALIASES = {"scenarios": "scenario", "seeds": "seed", "policies": "policy"}


def read_file(path: Path) -> dict[str, Any]:
    """A sweep file (TOML) as settings (keys of :data:`DEFAULTS`, policies as
    :class:`~policies.registry.PolicySpec`); ValueError naming the problem."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"sweep file {path} not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"sweep file {path}: {e}") from None
    out: dict[str, Any] = {"name": raw.pop("name", Path(path).stem)}
    for k, v in list(raw.items()):
        key = _ALIASES.get(k, k).replace("-", "_")
        if key == "set":
            if not isinstance(v, (dict, list)):
                raise ValueError(f"sweep file {path}: set must be a table of scenario fields")
            out["set"] = list(v.items()) if isinstance(v, dict) else v
        elif key == "policy":
            out["policy"] = [_file_policy(path, p) for p in (v if isinstance(v, list) else [v])]
        elif key in DEFAULTS or key == "description":
            out[key] = v
        else:
            raise ValueError(f"sweep file {path}: unknown key {k!r}; known: "
                             f"{', '.join(sorted(set(DEFAULTS) | set(_ALIASES) | {'set'}))}")
    for key in ("scenario", "users", "seed"):
        if key in out and not isinstance(out[key], list):
            out[key] = [out[key]]
    return out


def _file_policy(path: Path, p: Any) -> PolicySpec:
    """One ``policy`` entry of a sweep file: a spec string or ``{spec = ..., options = {...}}``."""
    if isinstance(p, str):
        return parse_spec(p)
    if isinstance(p, dict):
        if not isinstance(p.get("spec"), str):
            raise ValueError(f"sweep file {path}: a policy table needs spec = \"NAME\", got {p}")
        opts = p.get("options", {})
        if not isinstance(opts, dict):
            raise ValueError(f"sweep file {path}: policy options must be a table, got {opts!r}")
        return parse_spec(p["spec"], dict(opts))
    raise ValueError(f"sweep file {path}: a policy is a spec string or a table, got {p!r}")


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def settings(cli: dict[str, Any], file: Path | None = None) -> dict[str, Any]:
    """The sweep's settings: ``cli`` (values not None) over the sweep ``file`` over
    :data:`DEFAULTS`, checked as the command line checks them; ``"policy"`` as
    :class:`~policies.registry.PolicySpec` objects, ``"set"`` as ``[(key, value), ...]``.

    Raises:
        ValueError: naming the setting and the rule.
    """
    given = read_file(file) if file is not None else {}
    s: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        v = cli.get(key)
        s[key] = v if v is not None else given.get(key, default)
    s["policy"] = [parse_spec(p) for p in s["policy"]]
    s["set"] = list(cli.get("set") or []) or given.get("set", [])
    if not s["policy"]:
        raise ValueError("no policy to sweep; give --policy or policy = [...]")
    for key in ("users", "seed"):
        bad = [v for v in s[key] if not _integer(v) or v < 0]
        if bad or not s[key] or (key == "users" and 0 in s[key]):
            raise ValueError(f"{key} must be {'positive' if key == 'users' else 'non-negative'} "
                             f"integers, got {s[key]}")
    rules = {"drops": (1, None), "heavy_drops": (1, None), "chunk": (1, MAX_CHUNK),
             "jobs": (1, None), "frontier_drops": (0, None), "frontier_points": (2, 200)}
    for key, (lo, hi) in rules.items():
        v = s[key]
        if v is not None and (not _integer(v) or v < lo or (hi is not None and v > hi)):
            raise ValueError(f"{key} must be an integer >= {lo}"
                             + (f" and <= {hi}" if hi is not None else "") + f", got {v!r}")
    v = s["task_seconds"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
        raise ValueError(f"task_seconds must be a number of seconds > 0, got {v!r}")
    if not s["scenario"] or not all(isinstance(v, str) and v for v in s["scenario"]):
        raise ValueError(f"scenario must be scenario names or paths, got {s['scenario']!r}")
    for key in ("name", "address"):
        if s.get(key) is not None and not (isinstance(s[key], str) and s[key]):
            raise ValueError(f"{key} must be a non-empty string, got {s[key]!r}")
    if not all(isinstance(kv, (list, tuple)) and len(kv) == 2 and isinstance(kv[0], str)
               for kv in s["set"]):
        raise ValueError(f"set must be a table of scenario fields (field = value), got "
                         f"{s['set']!r}")
    if not isinstance(s["engine"], str) or s["engine"] not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {s['engine']!r}")
    if s["address"] and s["engine"] != "ray":
        raise ValueError("--address needs --engine ray")
    return s


# ---- the whole sweep ---------------------------------------------------------------------------

@dataclass
class SweepReport:
    """What :func:`run` did: the ``cells``, the stored ``rows`` of those cells, their
    ``summary`` (:func:`summarize`), the CVX ``frontier`` per ``(scenario label, N)``, the
    engine's :class:`Outcome`, the SSNR bound of the first scenario and the rows stored before
    this run."""

    cells: list[Cell]
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    frontier: dict[tuple[str, int], dict[str, Any]]
    outcome: Outcome
    bound: float
    resumed: int

    @property
    def scored(self) -> int:
        """Cells with at least one finite result."""
        return sum(1 for r in self.summary if r["drops"] and math.isfinite(r["ssnr_mean"]))


def prepare(s: dict[str, Any]) -> list[Cell]:
    """Check every scenario and policy of the settings (:func:`settings`) and expand the grid,
    before any work."""
    import scenarios as scenario_lib

    for ps in s["policy"]:
        resolve(ps.target)
    held = []                              # the plan holds every (scenario, N, seed)'s drops
    grid = []
    for sc in s["scenario"]:
        for n in s["users"]:
            loaded = scenario_lib.load(sc, users=n, overrides=dict(s["set"]))
            held += [(loaded.system, loaded.config, s["drops"])] * len(s["seed"])
            grid.append(loaded)
    check_memory(held)
    cells = expand(s["scenario"], s["users"], s["policy"], s["seed"], s["drops"],
                   s["heavy_drops"], dict(s["set"]))
    once = {(c.policy, c.options): c for c in cells}     # each policy x options, swept ones too
    check_specs([PolicySpec(c.policy, c.options_dict, text=f"{c.policy}@{c.options_text}")
                 for c in once.values()], loaded, also=grid[:-1])
    if s["engine"] == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("--engine ray needs Ray: pip install -e '.[ray]' (or use "
                             "--engine local)") from None
        if s["address"]:
            check_ray_address(s["address"])
    return cells


def check_ray_address(address: str, timeout: float = 3.0) -> None:
    """Fail fast unless a Ray cluster answers at ``address`` (``auto``: the
    cluster Ray finds from ``$RAY_ADDRESS`` or the last ``ray start``; ``host:port``;
    ``ray://host:port``), within ``timeout`` seconds.

    Raises:
        ValueError: one line naming the address and what went wrong.
    """
    import socket

    from ray._private.services import canonicalize_bootstrap_address

    target = address.removeprefix("ray://")
    try:
        target = canonicalize_bootstrap_address(target) if not address.startswith("ray://") \
            else target
    except Exception as e:  # Ray's own parsing: any bad address
        raise ValueError(f"--address {address!r} is not a Ray address ({e})") from None
    if target is None:
        raise ValueError(f"--address {address}: no running Ray cluster found; start one "
                         "(ray start --head) or leave out --address for a local instance")
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
        if not address.startswith("ray://"):              # a GCS answers there, not just a port
            from ray._raylet import GcsClient

            GcsClient(address=target, cluster_id=None)
    except Exception as e:  # refused, unreachable, timed out, or not a Ray GCS
        why = getattr(e, "strerror", None) or str(e).splitlines()[0] or type(e).__name__
        raise ValueError(f"--address {address}: no Ray cluster answers at {target} ({why})"
                         ) from None


def run(s: dict[str, Any], cells: list[Cell], out: Path, *, cache: Any = None,
        threads: int | None = 1, progress: bool = True) -> SweepReport:
    """Run the grid into ``out/results.sqlite`` (resuming what it holds), summarise it and, with
    ``frontier_drops``, solve the CVX frontiers (kept in ``out/frontier.json``)."""
    import scenarios as scenario_lib

    store = ResultStore(out / "results.sqlite")
    before = len(store)
    res = run_sweep(cells, store, engine=s["engine"], jobs=s["jobs"], address=s["address"],
                    cache=cache, task_seconds=s["task_seconds"], chunk=s["chunk"],
                    threads=threads, progress=progress)
    rows = store.rows([c.key for c in cells])
    table = summarize(cells, rows, res.failed)
    fr: dict[tuple[str, int], dict[str, Any]] = {}
    if s["frontier_drops"] and not res.interrupted and any(r["drops"] for r in table):
        fr = frontiers(cells, s["frontier_drops"], s["frontier_points"], out, progress)
    if cache is not None:
        res.log += [f"decision cache {cache.path}: {n}" for n in getattr(cache, "notes", [])]
    bound = scenario_lib.load(cells[0].scenario, users=cells[0].users,
                              overrides=dict(cells[0].overrides)).system.ssnr_bound
    return SweepReport(cells, rows, table, fr, res, bound, before)


def frontiers(cells: list[Cell], k: int, points: int, out: Path, progress: bool
              ) -> dict[tuple[str, int], dict[str, Any]]:
    """CVX frontier (:func:`frontier_curve`) per (scenario, N) on the first ``k`` drops (first
    seed), kept in ``out/frontier.json`` and reused by a rerun."""
    import scenarios as scenario_lib

    path = out / "frontier.json"
    try:
        old = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        old = {}
    res: dict[tuple[str, int], dict[str, Any]] = {}
    for c in cells:
        g = (c.scenario_label, c.users)
        if g in res or c.seed != cells[0].seed:
            continue
        key = (f"{c.scenario_label}|N={c.users}|seed={c.seed}|sample={c.drops}|k={k}|p={points}"
               f"|code={c.code}")
        if key in old:
            res[g] = old[key]
            continue
        sc = scenario_lib.load(c.scenario, users=c.users, overrides=dict(c.overrides))
        drops = Drops.sample(sc, c.drops, c.seed)
        f = frontier_curve(drops.truth[: min(k, c.drops)], sc.system, points, progress=progress)
        res[g] = {"gamma": f["gamma"].tolist(), "ssnr": f["ssnr"].tolist(),
                  "solved": f["solved"].tolist(), "fraction": f["fraction"].tolist(),
                  "drops": int(min(k, c.drops))}
        old[key] = res[g]
        write_json(path, old)
    return res


# ---- engines side by side (runners/bench_sweep.py) ---------------------------------------------

def _timed(cells: list[Cell], engine: str, jobs: int, **kw: Any
           ) -> tuple[float, dict[tuple[str, int], tuple[float, float]], Outcome]:
    """One sweep into a fresh store: wall time, ``{(cell, drop): (ssnr, min_sinr)}``, outcome."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp) / "r.sqlite")
        t0 = time.perf_counter()
        out = run_sweep(cells, store, engine=engine, jobs=jobs, progress=False, **kw)
        wall = time.perf_counter() - t0
        numbers = {(r["cell"], r["drop"]): (r["ssnr"], r["min_sinr"]) for r in store.rows()}
        store.close()
    return wall, numbers, out


def bench_engines(scenario: str, users: int, seed: int, drops: int, jobs: int,
                  task_seconds: float, overhead_tasks: int, ray: bool = True,
                  report: Callable[[str], None] = print) -> tuple[list[dict[str, Any]],
                                                                  float | None]:
    """The same sweep (``cvx`` and ``ns-rzf`` on ``drops`` drops, no cache) serially, on the
    local pool and (``ray``) on a local Ray instance started before timing; whether each gives
    the serial numbers; the overhead per task from one-drop tasks of ``mrt-target``.

    Returns:
        ``(rows, ray start-up s or None)``: per engine ``engine, wall_s, drops, drops_per_s,
        tasks, task_s_median, same_numbers, overhead_wall_s, overhead_tasks,
        overhead_ms_per_task, speedup_vs_serial``.
    """
    engines = [("serial", "local", 1), (f"local pool ({jobs})", "local", jobs)]
    ray_start = None
    if ray:
        import ray as ray_lib

        t0 = time.perf_counter()
        start_local_ray(jobs, log_to_driver=False, logging_level="ERROR",
                        runtime_env={"env_vars": {v: "1" for v in THREAD_ENV}})
        warm = expand([scenario], [users], ["cvx", "ns-rzf"], [seed + 1], 2 * jobs)
        _timed(warm, "ray", jobs, chunk=1)     # workers import torch and the solvers once
        ray_start = time.perf_counter() - t0
        engines.append((f"local Ray ({jobs} CPUs)", "ray", jobs))
    heavy = expand([scenario], [users], ["cvx", "ns-rzf"], [seed], drops)
    light = expand([scenario], [users], ["mrt-target"], [seed], overhead_tasks)
    rows: list[dict[str, Any]] = []
    ref = None
    try:
        for label, engine, n in engines:
            wall, numbers, res = _timed(heavy, engine, n, task_seconds=task_seconds)
            same = ref is None or numbers == ref
            ref = ref or numbers
            light_wall, _, light_res = _timed(light, engine, n, chunk=1)
            rows.append({"engine": label, "wall_s": wall, "drops": res.rows,
                         "drops_per_s": res.rows / wall, "tasks": res.tasks + res.inline,
                         "task_s_median": float(np.median(res.task_seconds)),
                         "same_numbers": same, "overhead_wall_s": light_wall,
                         "overhead_tasks": light_res.tasks + light_res.inline})
            report(f"{label:>22}: {res.rows} drops in {wall:6.2f} s = {res.rows / wall:6.2f} "
                   f"drops/s ({rows[-1]['tasks']} tasks, median "
                   f"{rows[-1]['task_s_median']:.2f} s); same numbers as serial: {same}")
    finally:
        if ray_start is not None:
            import ray as ray_lib

            ray_lib.shutdown()
    base = rows[0]["overhead_wall_s"]
    for r, (_, _, n) in zip(rows, engines, strict=True):
        # worker time per task beyond the serial work: jobs x wall - serial wall, per task
        r["overhead_ms_per_task"] = 1e3 * (n * r["overhead_wall_s"] - base) \
            / r["overhead_tasks"] if r is not rows[0] else 0.0
        r["speedup_vs_serial"] = r["drops_per_s"] / rows[0]["drops_per_s"]
    return rows, ray_start
