"""Scoring policies on shared drops, the engine of ``runners/compare.py``: every policy sees
identical CSI, each decision is timed.

Importable for notebooks and tests::

    sc = scenarios.load("pos2", users=8)
    drops = Drops.sample(sc, n=200, seed=0)
    run = score_policy("mrt-target", sc, drops)
    summary(run, reference=cvx_run)
    result = compare_policies(["cvx", "student@label=shipped"], sc, drops, heavy_drops=24)

Policies are named by their spec (:func:`policies.registry.parse_spec`): ``run.name`` is the
spec's row name, the same in every table, legend and file.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cfisac_env.physics.scoring import score
from cfisac_env.physics.validation import check_beams, check_memory
from cfisac_env.sim.drops import sample_drops
from policies.base import Decision, Policy
from policies.evaluation.stats import describe, ratio_ci
from policies.registry import PolicySpec, check_options, make, parse_spec, resolve
from scenarios.loader import Scenario

GAMMA_RTOL = 0.01  # min-SINR "reaches gamma_high" within this relative tolerance
#: The reference policy of every head-to-head column (see :func:`reference_of`).
REFERENCE = "cvx"
#: Seconds a heavy policy's worker gets beyond its own ``timeout_s`` before it is stopped.
TIMEOUT_GRACE = 30.0


@dataclass
class Drops:
    """``B`` drops shared by every policy: ``csi (B, L, 2, M, Q)`` float32, what the policies
    observe (the estimated CSI of the scenario's ``[csi]``), positions (m) and ``true_csi``
    (same shape), on which the beams are scored (None: ``csi`` itself, perfect CSI)."""

    csi: np.ndarray
    ue_xy: np.ndarray
    target_xy: np.ndarray
    true_csi: np.ndarray | None = None
    #: echo mode: ``(scenario, seed[, drop numbers])`` of the echoes
    #: (:func:`policies.evaluation.sensing.echo_drops`); each run then carries sensing scores
    sensing: tuple[Any, ...] | None = None

    @classmethod
    def sample(cls, scenario: Scenario, n: int, seed: int) -> Drops:
        """``n`` drops of ``scenario`` (positions, true and estimated channel under its
        ``[channel]`` and ``[csi]``) from ``np.random.default_rng(seed)``."""
        if n < 1:
            raise ValueError(f"need at least one drop, got {n}")
        check_memory([(scenario.system, scenario.config, n)], "drawing the drops")
        d = sample_drops(scenario, np.random.default_rng(seed), n)
        return cls(d.observed, d.ue_xy, d.target_xy, None if d.observed is d.true else d.true)

    @property
    def truth(self) -> np.ndarray:
        """The true channel ``(B, L, 2, M, Q)`` the metrics use."""
        return self.csi if self.true_csi is None else self.true_csi

    def __len__(self) -> int:
        return len(self.csi)


@dataclass
class PolicyRun:
    """Per-drop results of one policy on ``drops[index]`` (arrays ``(K,)``)."""

    name: str
    timing: str
    distributed: bool
    heavy: bool
    fronthaul: int
    index: np.ndarray
    ssnr: np.ndarray
    min_sinr: np.ndarray
    seconds: np.ndarray
    fallback: np.ndarray
    over_budget: np.ndarray
    gamma_high: np.ndarray
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    cached: np.ndarray | None = None      #: ``(K,)`` bool: decision taken from the cache
    drop_errors: dict[int, str] = field(default_factory=dict)   #: drop -> error message
    #: echo mode: per-drop sensing scores (:func:`policies.evaluation.sensing.drop_scores`)
    sensing: dict[str, np.ndarray] | None = None

    @property
    def scored(self) -> bool:
        """Whether at least one drop has a finite result."""
        return bool(np.isfinite(self.ssnr).any())


# ---- building ---------------------------------------------------------------------------------

def accepts(cls: Any, name: str) -> bool:
    """Whether a policy class's constructor names the parameter ``name``."""
    try:
        return name in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def constructor_options(spec: str | PolicySpec, scenario: Scenario, options: dict[str, Any]
                        ) -> tuple[dict[str, Any], float | None]:
    """The options a policy is built with, and the time limit (s) of one of its decisions.

    ``scenario=<name>`` is added for policies whose constructor names a ``scenario`` parameter
    (learned policies find their checkpoint by it), ``channel=<[channel] model>`` for those
    that name ``channel``. ``timeout_s`` is every heavy policy's
    option: passed on to a constructor that takes it (``cvx``: the solver's own limit; its
    worker is stopped ``TIMEOUT_GRACE`` s later), else kept here as the limit after which the
    decision's worker is stopped.
    """
    cls = resolve(spec)
    opts = {**parse_spec(spec).options, **options}
    if accepts(cls, "scenario"):
        opts.setdefault("scenario", scenario.name)
    if accepts(cls, "channel"):
        opts.setdefault("channel", scenario.config["channel"]["model"])
    limit = opts.get("timeout_s")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise ValueError(f"policy {parse_spec(spec).text or spec!r}: timeout_s must be a "
                             f"number of seconds > 0, got {limit!r}")
        if accepts(cls, "timeout_s"):
            return opts, float(limit) + TIMEOUT_GRACE
        opts.pop("timeout_s")
        return opts, float(limit)
    return opts, None


def build(spec: str | PolicySpec, scenario: Scenario, /, **options: Any) -> Policy:
    """``policies.make(spec, system, ...)`` with :func:`constructor_options` (``spec`` and
    ``scenario`` are positional: a ``scenario=`` option is the policy's own, e.g. the family of a
    learned policy's checkpoint)."""
    opts, _ = constructor_options(spec, scenario, options)
    return make(parse_spec(spec).target, scenario.system, **opts)


# ---- scoring ----------------------------------------------------------------------------------

def _checked(decision: Decision, policy: Policy) -> np.ndarray:
    """The decision's beams ``(1, L, 2, M, Q)``, or ValueError naming the problem."""
    return check_beams(np.asarray(decision.beams), policy.system, batch=1,
                       what=f"beams returned by {policy.name!r}")


def _pooled(policy: Policy, jobs: int | None, timeout: float | None) -> bool:
    """Whether the decisions run in worker processes: heavy policies unless ``jobs == 1``, and
    any policy with a time limit (a worker can be stopped, this process cannot)."""
    return timeout is not None or (policy.heavy and (jobs or 0) != 1)


def _run(policy: Policy, target: str, csi: np.ndarray, jobs: int | None,
         options: dict[str, Any], progress: bool, timeout: float | None, desc: str,
         on_done: Any = None) -> tuple[dict[int, Decision | BaseException], bool]:
    """One timed decision per row of ``csi (K, L, 2, M, Q)``, keyed by row (a drop's exception
    kept in its place; ``on_done(row, decision)`` after each decision), and whether Ctrl-C cut
    it short."""
    out: dict[int, Decision | BaseException] = {}
    if not len(csi):
        return out, False
    bar = tqdm(total=len(csi), desc=desc, disable=not progress, leave=False)
    try:
        if _pooled(policy, jobs, timeout):
            import os

            from policies.evaluation.pool import iter_decisions

            n = min(len(csi), jobs or os.cpu_count() or 1)
            outcomes: Any = iter_decisions(target, policy.system, csi, options, n, timeout,
                                           fresh=policy.heavy)
        elif policy.heavy:     # each drop by a new instance: no decision depends on another
            outcomes = ((i, _decide(None, csi[i: i + 1], target, policy.system, options))
                        for i in range(len(csi)))
        else:
            outcomes = ((i, _decide(policy, csi[i: i + 1])) for i in range(len(csi)))
        for i, d in outcomes:
            out[i] = d
            if on_done is not None and isinstance(d, Decision):
                on_done(i, d)
            bar.update()
    except KeyboardInterrupt:
        return out, True
    finally:
        bar.close()
    return out, False


def _decide(policy: Policy | None, csi_one: np.ndarray, target: str = "", system: Any = None,
            options: dict[str, Any] | None = None) -> Decision | BaseException:
    """One decision of ``policy`` (None: of a new instance of ``target``), or what it raised."""
    try:
        if policy is None:
            policy = make(target, system, **(options or {}))
        return policy.decide(csi_one)
    except (Exception, SystemExit) as e:   # a policy's failure (even sys.exit) is a result
        return e


def _decisions(policy: Policy, target: str, drops: Drops, index: np.ndarray, jobs: int | None,
               options: dict[str, Any], progress: bool, cache: Any, timeout: float | None,
               desc: str) -> tuple[dict[int, Decision | BaseException], bool]:
    """Decisions on ``drops.csi[index]`` keyed by position in ``index``; with a ``cache`` (see
    :mod:`policies.evaluation.cache`) for a cacheable policy, cached drops are not decided again
    and each new decision is stored as soon as it is made."""
    from policies.evaluation.cache import cacheable, decision_key

    if cache is None or not cacheable(policy):
        return _run(policy, target, drops.csi[index], jobs, options, progress, timeout, desc)
    keys = [decision_key(policy, options, drops.csi[i: i + 1]) for i in index]
    hits = cache.get_many(keys)
    out: dict[int, Decision | BaseException] = {j: hits[k] for j, k in enumerate(keys)
                                                if k in hits}
    todo = np.array([j for j in range(len(index)) if j not in out], dtype=int)

    def store(row: int, d: Decision) -> None:
        cache.put_many([(keys[todo[row]], d)])

    new, interrupted = _run(policy, target, drops.csi[index[todo]], jobs, options, progress,
                            timeout, desc, store)
    out.update({int(todo[r]): d for r, d in new.items()})
    return out, interrupted


def score_policy(spec: str | PolicySpec, scenario: Scenario, drops: Drops, /,
                 index: np.ndarray | None = None, jobs: int | None = None,
                 progress: bool = True, cache: Any = None, **options: Any) -> PolicyRun:
    """Score policy ``spec`` on ``drops[index]`` (all drops by default), one decision per drop.

    Policies decide on ``drops.csi`` (estimated); the metrics use ``drops.truth``. A heavy
    policy decides each drop with a new instance (no decision depends on which drops came before
    it in the same process: the same numbers with any ``jobs``). Beams must be
    finite and shaped ``(L, 2, M, Q)``; an AP over its budget is scaled down as the environment
    would and counted in ``over_budget``; a policy exception, bad beams, a decision over its
    ``timeout_s`` or a worker that died on a drop is recorded in ``errors`` and that drop scores
    NaN. ``cache``: a :class:`policies.evaluation.cache.DecisionCache` (or None) for heavy
    policies' decisions. ``options`` add to (and override) the spec's ``@key=value`` ones.
    """
    ps = parse_spec(spec)
    opts, timeout = constructor_options(ps, scenario, options)
    policy = make(ps.target, scenario.system, **opts)
    return evaluate_policy(policy, ps.target, drops, index, jobs=jobs, progress=progress,
                           options=opts, cache=cache, name=ps.row, timeout=timeout)


def evaluate_policy(policy: Policy, spec: str, drops: Drops, index: np.ndarray | None = None, *,
                    jobs: int | None = None, progress: bool = True,
                    options: dict[str, Any] | None = None, cache: Any = None,
                    name: str | None = None, timeout: float | None = None) -> PolicyRun:
    """:func:`score_policy` with a policy already built from ``spec`` and ``options`` (the
    sweep engines build each policy once per worker); ``name``: the row name (default: the
    spec's); ``timeout``: seconds one decision may take (run in a worker that is stopped)."""
    index = np.arange(len(drops)) if index is None else np.asarray(index)
    options = dict(options or {})
    system = policy.system
    k = len(index)
    name = name or parse_spec(spec).row
    ssnr, sinr, secs, gamma = (np.full(k, np.nan) for _ in range(4))
    fallback, over, cached = np.zeros(k, bool), np.zeros(k, bool), np.zeros(k, bool)
    errors: list[str] = []
    drop_errors: dict[int, str] = {}
    applied: dict[int, np.ndarray] = {}
    decisions, interrupted = _decisions(policy, spec, drops, index, jobs, options, progress,
                                        cache, timeout, name)
    for j, d in decisions.items():
        try:
            if isinstance(d, BaseException):
                raise d
            beams = _checked(d, policy)
        except (Exception, SystemExit) as e:
            msg = f"{type(e).__name__}: {e}"
            errors.append(f"drop {index[j]}: {msg}")
            drop_errors[int(index[j])] = msg
            continue
        s = score(drops.truth[index[j]: index[j] + 1], beams, system)
        applied[j] = beams[0]
        over[j] = bool(np.any(s.power_scaled))
        ssnr[j], sinr[j], secs[j] = s.ssnr[0], s.min_sinr[0], d.seconds
        fallback[j] = bool(np.any(d.info.get("fallback", False)))
        cached[j] = bool(d.info.get("cached", False))
        gamma[j] = float(np.asarray(d.info.get("gamma_high", [np.nan]), float).ravel()[0])
    keep = np.array(sorted(decisions), dtype=int)
    run = PolicyRun(name, policy.timing, policy.distributed, policy.heavy,
                    policy.fronthaul(), index[keep], ssnr[keep], sinr[keep], secs[keep],
                    fallback[keep], over[keep], gamma[keep], errors, interrupted, cached[keep],
                    drop_errors)
    if drops.sensing is not None:              # echo mode: what the beams' echo tells
        from policies.evaluation.sensing import run_scores

        run.sensing = run_scores(drops, index[keep], [applied.get(j) for j in keep])
    return run


# ---- summaries --------------------------------------------------------------------------------

def reference_of(policies: Sequence[tuple[str, dict[str, Any]]]) -> int | None:
    """The one reference rule of every head-to-head column: among ``(target, options)`` pairs,
    the :data:`REFERENCE` policy with no options, else with ``rho = 0.5``, else the first
    :data:`REFERENCE` one; None when there is none."""
    refs = [i for i, (target, _) in enumerate(policies) if target == REFERENCE]
    for want in ({}, {"rho": 0.5}):
        for i in refs:
            if dict(policies[i][1]) == want:
                return i
    return refs[0] if refs else None


def _stats(x: np.ndarray) -> dict[str, Any]:
    d = describe(x)
    return {"mean": d["mean"], "median": d["median"], "p5": d["p5"], "ci": [d["lo"], d["hi"]]}


def summary(run: PolicyRun, reference: PolicyRun | None = None) -> dict[str, Any]:
    """Aggregate figures of one run; head-to-head ones against ``reference`` (see
    :func:`reference_of`) use only the drops both scored (paired).

    Keys: ``ssnr``/``min_sinr`` (mean, median, p5, ``ci``: the mean's 95 % Student-t interval
    ``[lo, hi]``), ``time_ms`` (median, p95), ``timing``, ``fronthaul``, ``drops``, ``errors``,
    ``fallbacks``, ``over_budget``, ``cached`` (decisions taken from the cache), ``sensing``
    in echo mode (:func:`policies.evaluation.sensing.summary`), and with a
    reference: ``common_drops``, ``reach_gamma`` (share of common drops with min-SINR >= the
    reference's gamma_high, within 1 %), ``ssnr_vs_ref``/``min_sinr_vs_ref`` (ratio of means on
    the common drops) with ``ssnr_vs_ref_ci``/``min_sinr_vs_ref_ci`` (95 % paired intervals, see
    :func:`policies.evaluation.stats.ratio_ci`), ``speedup`` (ratio of median times).
    """
    t = run.seconds[np.isfinite(run.seconds)] * 1e3
    out: dict[str, Any] = {
        "policy": run.name, "drops": int(len(run.index)), "timing": run.timing,
        "distributed": run.distributed, "fronthaul": run.fronthaul,
        "ssnr": _stats(run.ssnr), "min_sinr": _stats(run.min_sinr),
        "time_ms": {"median": float(np.median(t)) if len(t) else np.nan,
                    "p95": float(np.percentile(t, 95)) if len(t) else np.nan},
        "errors": len(run.errors), "fallbacks": int(run.fallback.sum()),
        "over_budget": int(run.over_budget.sum()), "interrupted": run.interrupted,
        "cached": int(run.cached.sum()) if run.cached is not None else 0,
    }
    if run.sensing is not None:
        from policies.evaluation.sensing import summary as sensing_summary

        out["sensing"] = sensing_summary(run.sensing)
    if reference is not None:
        common, a, b = np.intersect1d(run.index, reference.index, return_indices=True)
        gamma = reference.gamma_high[b]
        ok = np.isfinite(gamma) & np.isfinite(run.min_sinr[a])
        out["common_drops"] = int(len(common))
        out["reach_gamma"] = (float(np.mean(run.min_sinr[a][ok] >= gamma[ok] * (1 - GAMMA_RTOL)))
                              if ok.any() else np.nan)
        for m in ("ssnr", "min_sinr"):
            r = ratio_ci(getattr(run, m)[a], getattr(reference, m)[b])
            out[f"{m}_vs_ref"] = r["ratio"]
            out[f"{m}_vs_ref_ci"] = [r["lo"], r["hi"]]
        ref_t = np.nanmedian(reference.seconds) if np.isfinite(reference.seconds).any() else np.nan
        out["speedup"] = float(ref_t / np.nanmedian(run.seconds)) if len(t) else np.nan
    return out


# ---- the comparison (compare's engine) ---------------------------------------------------------

def learned_options(spec: PolicySpec, scenario: Scenario, device: str, train: bool,
                    log: list[str]) -> dict[str, Any] | None:
    """Options for a learned policy, naming the checkpoint file it loads: an explicit
    ``@checkpoint=PATH`` as given, else the one found for the scenario (shipped or cached, see
    :mod:`policies.learned.checkpoints`), else (unless ``train`` is False) one trained now with
    the ``cpu`` preset into the cache. None = skip the policy (noted in ``log``)."""
    from policies.learned import checkpoints as store
    from policies.learned.training import resolve as resolve_checkpoint

    options: dict[str, Any] = {"device": device, **spec.options}
    if "checkpoint" in spec.options:
        return options
    family = spec.options.get("scenario", scenario.name)
    try:
        path = resolve_checkpoint(spec.target, scenario.system, family, spec.options.get("arch"))
        build(spec, scenario, **{**options, "checkpoint": str(path)})
        return {**options, "checkpoint": str(path)}
    except store.CheckpointError as e:
        if not train:
            log.append(f"skipped {spec.row}: {e}")
            return None
    print(f"no checkpoint for {spec.row} on {scenario.name} N={scenario.system.N}: training one "
          "with the cpu preset (cached under runs/cache/checkpoints)", file=sys.stderr)
    system = {f"system.{k}": v for k, v in scenario.config["system"].items() if k != "users"}
    path = resolve_checkpoint(spec.target, scenario.system, family, train_missing=True,
                              log=log, overrides=system, device=device)
    return {**options, "checkpoint": str(path)}


def file_record(path: str | Path) -> dict[str, Any]:
    """``{"path": resolved path, "sha256": digest}`` of a file a result depends on (a
    checkpoint); ``sha256`` None when it cannot be read."""
    p = Path(path).resolve()
    try:
        digest: str | None = hashlib.sha256(p.read_bytes()).hexdigest()
    except OSError:
        digest = None
    return {"path": str(p), "sha256": digest}


def parse_specs(texts: Sequence[str | PolicySpec]) -> list[PolicySpec]:
    """Parse and resolve policy specs (duplicates dropped), refusing two with one row name.

    Raises:
        ValueError: an unknown policy, a bad spec, or two specs with the same row name.
    """
    specs = list({(s := parse_spec(t)).text or repr(s): s for t in texts}.values())
    rows: dict[str, str] = {}
    for s in specs:
        resolve(s.target)
        if s.row in rows:
            raise ValueError(f"policies {rows[s.row]!r} and {s.text!r} both name the row "
                             f"{s.row!r}; give one a label: {s.text}@label=NAME")
        rows[s.row] = s.text
    return specs


def check_specs(specs: Sequence[PolicySpec], scenario: Scenario,
                also: Sequence[Scenario] = ()) -> None:
    """Find the user errors in the policies before any work: every policy that needs no
    checkpoint is built once for ``scenario`` (its constructor checks its options: values,
    ranges, unknown names). A learned one has its option names checked against its constructor
    and is built too: with its ``@checkpoint=PATH`` (a file that does not exist, is not a
    checkpoint or was made for another system is a user error; with ``also``, the other
    scenarios of a grid, only when it fits none of them), else with the checkpoint found for the
    scenario (``@scenario=`` or ``scenario``; an unknown scenario is a user error; none found, or
    one for another system, is left to the run, which skips or trains it). Other failures of a
    constructor are left to the run, where they are a failed row.

    Raises:
        ValueError: one line naming the spec and the bad option or file (and how to fix it).
    """
    for ps in specs:
        cls = resolve(ps.target)
        try:
            with warnings.catch_warnings():   # the run's own build warns (once, not twice)
                warnings.simplefilter("ignore")
                _check_one(cls, ps, scenario, also)
        except (ValueError, TypeError) as e:
            msg, name = " ".join(str(e).split()), ps.text or ps.target
            named = repr(name) in msg or msg.startswith(f"policy {ps.target!r}")
            raise ValueError(msg if named else f"policy {name!r}: {msg}") from None
        except Exception:  # noqa: S110 - not a user error: the run records it as a failed row
            pass


def _check_one(cls: Any, ps: PolicySpec, scenario: Scenario, also: Sequence[Scenario]) -> None:
    """Build ``ps`` (resolved to ``cls``) once as :func:`check_specs` says; raises its user
    error."""
    from policies.learned.policies import LearnedPolicy

    if isinstance(cls, type) and issubclass(cls, LearnedPolicy):
        check_options(cls, ps.target, ps.options)
        _check_learned(ps, scenario, also)
    else:
        build(ps, scenario)


def _check_learned(ps: PolicySpec, scenario: Scenario, also: Sequence[Scenario]) -> None:
    """Build learned policy ``ps`` as :func:`check_specs` says; raises its user error."""
    from policies.learned import checkpoints as store
    from policies.learned.training import resolve as resolve_checkpoint

    if "checkpoint" in ps.options:
        first: ValueError | None = None
        for sc in (scenario, *also):
            try:
                build(ps, sc)
                return
            except store.CheckpointError as e:
                first = first or e
        if first is not None:
            raise first
        return
    family = ps.options.get("scenario", scenario.name)
    try:
        path = resolve_checkpoint(ps.target, scenario.system, family, ps.options.get("arch"))
        build(ps, scenario, checkpoint=str(path))
    except store.CheckpointError:
        return                           # none for this system: the run skips or trains it


@dataclass
class Comparison:
    """What :func:`compare_policies` did: ``runs`` ``{row: PolicyRun}`` (reference first),
    ``rows`` (their :func:`summary`), ``failed`` ``{row: one-line error}``, ``log`` notes,
    whether Ctrl-C cut it short, the drops and the checkpoint files used."""

    runs: dict[str, PolicyRun]
    rows: list[dict[str, Any]]
    failed: dict[str, str]
    log: list[str]
    interrupted: bool
    drops: Drops | None
    #: ``{row: {"path", "sha256"}}``: the checkpoint file every learned policy loaded
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def scored(self) -> int:
        """Policies with at least one finite result."""
        return sum(r.scored for r in self.runs.values())


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


def compare_policies(specs: Sequence[str | PolicySpec], scenario: Scenario, drops: int, seed: int,
                     heavy_drops: int, *, jobs: int | None = None, device: str = "cpu",
                     train: bool = True, frontier: bool = False, cache: Any = None,
                     progress: bool = True) -> Comparison:
    """Score every policy on the same ``drops`` seeded drops (heavy ones on the first
    ``heavy_drops``) and summarise them against the reference (:func:`reference_of`).

    A policy that cannot be built (any exception, e.g. a broken checkpoint) or fails as a whole
    is a ``failed`` entry; the others go on. Ctrl-C keeps the policies (and the drops of the
    current policy) that finished. ``frontier``: add each row's ``frontier_efficiency``
    (:func:`add_frontier`). In echo sensing mode every policy observes each drop's search-dwell
    estimate of the target column and its rows carry the sensing columns
    (:mod:`policies.evaluation.sensing`).
    """
    from policies.evaluation.sensing import echo_drops, echo_mode
    from policies.learned.roles import ROLES

    parsed = parse_specs(specs)
    ref = reference_of([(s.target, s.options) for s in parsed])
    order = sorted(range(len(parsed)), key=lambda i: i != ref)      # the reference first
    runs: dict[str, PolicyRun] = {}
    failed: dict[str, str] = {}
    log: list[str] = []
    checkpoints: dict[str, dict[str, Any]] = {}
    interrupted, sample = False, None
    try:
        sample = Drops.sample(scenario, drops, seed)
        if echo_mode(scenario):            # the target column from a search dwell per drop
            sample = echo_drops(scenario, sample, seed)
        heavy_index = np.arange(min(heavy_drops, len(sample)))
        for i in order:
            spec = parsed[i]
            try:
                options: dict[str, Any] | None = {}
                if spec.target in ROLES:
                    options = learned_options(spec, scenario, device, train, log)
                    if options is None:
                        continue
                    checkpoints[spec.row] = file_record(options["checkpoint"])
                heavy = bool(getattr(resolve(spec.target), "heavy", False))
                run = score_policy(spec, scenario, sample, heavy_index if heavy else None,
                                   jobs=jobs, progress=progress, cache=cache, **options)
            except KeyboardInterrupt:
                log.append(f"interrupted during {spec.row}; keeping the finished policies")
                interrupted = True
                break
            except Exception as e:  # a broken policy is a row in the table, not a crash
                failed[spec.row] = _one_line(e)
                continue
            if len(run.index):
                runs[spec.row] = run
            if run.interrupted:
                log.append(f"interrupted during {spec.row}; kept its {len(run.index)} finished "
                           "drops")
                interrupted = True
                break
    except KeyboardInterrupt:
        interrupted = True
        log.append("interrupted before any policy finished")
    reference = runs.get(parsed[ref].row) if ref is not None else None
    rows = [summary(r, reference) for r in runs.values()]
    if frontier and not interrupted and sample is not None:
        add_frontier(rows, runs, sample, scenario, heavy_drops, progress)
    if cache is not None:
        log += [f"decision cache {cache.path}: {n}" for n in getattr(cache, "notes", [])]
        if cache.hits + cache.stored:
            log.append(f"decision cache {cache.path}: {cache.hits} drops reused, {cache.stored} "
                       "solved and stored (times are those of the original solves)")
    return Comparison(runs, rows, failed, log, interrupted, sample, checkpoints)


def add_frontier(rows: list[dict[str, Any]], runs: dict[str, PolicyRun], drops: Drops,
                 scenario: Scenario, heavy_drops: int, progress: bool) -> None:
    """Add ``frontier_efficiency`` (and ``frontier_drops``) to each row, on the policy's drops
    among the first ``heavy_drops`` (see :mod:`policies.convex.frontier`)."""
    from policies.convex.frontier import frontier_ssnr

    for row in rows:
        run = runs[row["policy"]]
        keep = (run.index < heavy_drops) & np.isfinite(run.min_sinr)
        fs = frontier_ssnr(drops.truth[run.index[keep]], run.min_sinr[keep], scenario.system,
                           progress=progress)
        ok = np.isfinite(fs)
        row["frontier_drops"] = int(ok.sum())
        row["frontier_efficiency"] = float(run.ssnr[keep][ok].mean() / fs[ok].mean()) \
            if ok.any() else float("nan")


# ---- a rendered rollout ------------------------------------------------------------------------

def rollout(scenario: str, users: int | None, spec: str | PolicySpec, steps: int, seed: int,
            overrides: dict[str, Any], progress: bool = True, frames: list | None = None
            ) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """``steps`` decisions of policy ``spec`` in the environment (``render_mode="rgb_array"``);
    returns ``(frame (H, W, 3) uint8, info)`` per step, appended to ``frames`` as they come (so
    a caller keeps them on Ctrl-C)."""
    import gymnasium as gym

    import cfisac_env

    env = gym.make(cfisac_env.ENV_ID, scenario=scenario, users=users, render_mode="rgb_array",
                   **overrides)
    pol = build(spec, env.unwrapped.scenario)
    obs, _ = env.reset(seed=seed)
    out = [] if frames is None else frames
    for _ in tqdm(range(steps), desc=f"{parse_spec(spec).row} on {scenario}",
                  disable=not progress):
        obs, _, terminated, truncated, info = env.step(pol.act(obs))
        out.append((env.render(), info))
        if terminated or truncated:
            break
    return out
