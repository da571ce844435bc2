"""Scoring policies on shared drops: every policy sees identical CSI, each decision is timed.

Used by ``runners/compare.py``; importable for notebooks and tests::

    sc = scenarios.load("pos2", users=8)
    drops = Drops.sample(sc, n=200, seed=0)
    run = evaluate("mrt-target", sc, drops)
    summary(run, reference=cvx_run)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from cfisac_env.physics import metrics
from cfisac_env.physics.scoring import score
from cfisac_env.physics.validation import check_beams
from cfisac_env.sim.drops import sample_drops
from policies.base import Decision, Policy
from policies.evaluation.stats import mean_ci, ratio_ci
from policies.registry import make, resolve
from scenarios.loader import Scenario

GAMMA_RTOL = 0.01  # min-SINR "reaches gamma_high" within this relative tolerance


@dataclass
class Drops:
    """``B`` drops shared by every policy: ``csi (B, L, 2, M, Q)`` float32, what the policies
    observe (the estimated CSI of the scenario's ``[csi]``), positions (m) and ``true_csi``
    (same shape), on which the beams are scored (None: ``csi`` itself, perfect CSI)."""

    csi: np.ndarray
    ue_xy: np.ndarray
    target_xy: np.ndarray
    true_csi: np.ndarray | None = None

    @classmethod
    def sample(cls, scenario: Scenario, n: int, seed: int) -> Drops:
        """``n`` drops of ``scenario`` (positions, true and estimated channel under its
        ``[channel]`` and ``[csi]``) from ``np.random.default_rng(seed)``."""
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


def build(spec: str, scenario: Scenario, **options: Any) -> Policy:
    """``policies.make(spec, system, ...)``, passing ``scenario=<name>`` to policies whose
    constructor names a ``scenario`` parameter (learned policies find their checkpoint by it)."""
    if "scenario" in inspect.signature(resolve(spec)).parameters:
        options.setdefault("scenario", scenario.name)
    return make(spec, scenario.system, **options)


def _checked(decision: Decision, policy: Policy) -> np.ndarray:
    """The decision's beams ``(1, L, 2, M, Q)``, or ValueError naming the problem."""
    return check_beams(np.asarray(decision.beams), policy.system, batch=1,
                       what=f"beams returned by {policy.name!r}")


def _run(policy: Policy, spec: str, csi: np.ndarray, jobs: int | None, options: dict[str, Any],
         progress: bool, on_done: Any = None) -> tuple[dict[int, Decision | Exception], bool]:
    """One timed decision per row of ``csi (K, L, 2, M, Q)``, keyed by row (exceptions kept in
    place; ``on_done(row, decision)`` after each serial one), and whether Ctrl-C cut it short."""
    if not len(csi):
        return {}, False
    if policy.heavy and (jobs or 0) != 1:
        from policies.evaluation.pool import decide_many

        done = decide_many(spec, policy.system, csi, options=options, jobs=jobs,
                           progress=progress, desc=spec)
        out: dict[int, Decision | Exception] = {}
        for k, d in enumerate(done):
            out[int(d.info.pop("drop", k))] = d
        return out, len(done) < len(csi)
    out = {}
    try:
        for i in tqdm(range(len(csi)), desc=spec, disable=not progress, leave=False):
            try:
                out[i] = policy.decide(csi[i: i + 1])
            except Exception as e:  # a policy's failure is a result, not a crash
                out[i] = e
                continue
            if on_done is not None:
                on_done(i, out[i])
    except KeyboardInterrupt:
        return out, True
    return out, False


def _decisions(policy: Policy, spec: str, drops: Drops, index: np.ndarray, jobs: int | None,
               options: dict[str, Any], progress: bool, cache: Any = None
               ) -> tuple[dict[int, Decision | Exception], bool]:
    """Decisions on ``drops.csi[index]`` keyed by position in ``index``; with a ``cache`` (see
    :mod:`policies.evaluation.cache`) for a cacheable policy, cached drops are not decided again
    and new
    decisions are stored as they finish."""
    from policies.evaluation.cache import cacheable, decision_key

    if cache is None or not cacheable(policy):
        return _run(policy, spec, drops.csi[index], jobs, options, progress)
    keys = [decision_key(policy, options, drops.csi[i: i + 1]) for i in index]
    hits = cache.get_many(keys)
    out: dict[int, Decision | Exception] = {j: hits[k] for j, k in enumerate(keys) if k in hits}
    todo = np.array([j for j in range(len(index)) if j not in out], dtype=int)
    serial = not (policy.heavy and (jobs or 0) != 1)

    def store(row: int, d: Decision) -> None:
        cache.put_many([(keys[todo[row]], d)])

    new, interrupted = _run(policy, spec, drops.csi[index[todo]], jobs, options, progress,
                            store if serial else None)
    if not serial:
        cache.put_many([(keys[todo[r]], d) for r, d in new.items() if isinstance(d, Decision)])
    out.update({int(todo[r]): d for r, d in new.items()})
    return out, interrupted


def evaluate(spec: str, scenario: Scenario, drops: Drops, index: np.ndarray | None = None,
             jobs: int | None = None, progress: bool = True, cache: Any = None,
             **options: Any) -> PolicyRun:
    """Score policy ``spec`` on ``drops[index]`` (all drops by default), one decision per drop.

    Policies decide on ``drops.csi`` (estimated); the metrics use ``drops.truth``. Beams must be
    finite and shaped ``(L, 2, M, Q)``; an AP over its budget is scaled down as
    the environment would and counted in ``over_budget``; a policy exception or bad beams on a
    drop is recorded in ``errors`` and that drop scores NaN. ``cache``: a
    :class:`policies.evaluation.cache.DecisionCache` (or None) for heavy policies' decisions.
    """
    policy = build(spec, scenario, **options)
    return evaluate_policy(policy, spec, drops, index, jobs=jobs, progress=progress,
                           options=options, cache=cache)


def evaluate_policy(policy: Policy, spec: str, drops: Drops, index: np.ndarray | None = None, *,
                    jobs: int | None = None, progress: bool = True,
                    options: dict[str, Any] | None = None, cache: Any = None) -> PolicyRun:
    """:func:`evaluate` with a policy already built from ``spec`` and ``options`` (the sweep
    engines build each policy once per worker)."""
    index = np.arange(len(drops)) if index is None else np.asarray(index)
    options = dict(options or {})
    system = policy.system
    k = len(index)
    ssnr, sinr, secs, gamma = (np.full(k, np.nan) for _ in range(4))
    fallback, over, cached = np.zeros(k, bool), np.zeros(k, bool), np.zeros(k, bool)
    errors: list[str] = []
    drop_errors: dict[int, str] = {}
    decisions, interrupted = _decisions(policy, spec, drops, index, jobs, options, progress,
                                        cache)
    for j, d in decisions.items():
        try:
            if isinstance(d, Exception):
                raise d
            beams = _checked(d, policy)
        except Exception as e:
            msg = f"{type(e).__name__}: {e}"
            errors.append(f"drop {index[j]}: {msg}")
            drop_errors[int(index[j])] = msg
            continue
        over[j] = bool(np.any(metrics.ap_power(beams) > system.P * (1 + 1e-4)))
        s = score(drops.truth[index[j]: index[j] + 1], beams, system)
        ssnr[j], sinr[j], secs[j] = s.ssnr[0], s.min_sinr[0], d.seconds
        fallback[j] = bool(np.any(d.info.get("fallback", False)))
        cached[j] = bool(d.info.get("cached", False))
        gamma[j] = float(np.asarray(d.info.get("gamma_high", [np.nan]), float).ravel()[0])
    keep = np.array(sorted(decisions), dtype=int)
    return PolicyRun(policy.name, policy.timing, policy.distributed, policy.heavy,
                     policy.fronthaul(), index[keep], ssnr[keep], sinr[keep], secs[keep],
                     fallback[keep], over[keep], gamma[keep], errors, interrupted, cached[keep],
                     drop_errors)


def _stats(x: np.ndarray) -> dict[str, Any]:
    ci = mean_ci(x)
    x = x[np.isfinite(x)]
    if not len(x):
        return {"mean": np.nan, "median": np.nan, "p5": np.nan, "ci": [np.nan, np.nan]}
    return {"mean": float(x.mean()), "median": float(np.median(x)),
            "p5": float(np.percentile(x, 5)), "ci": [ci["lo"], ci["hi"]]}


def summary(run: PolicyRun, reference: PolicyRun | None = None) -> dict[str, Any]:
    """Aggregate figures of one run; head-to-head ones against ``reference`` (the ``cvx`` run)
    use only the drops both scored (paired).

    Keys: ``ssnr``/``min_sinr`` (mean, median, p5, ``ci``: the mean's 95 % Student-t interval
    ``[lo, hi]``), ``time_ms`` (median, p95), ``timing``, ``fronthaul``, ``drops``, ``errors``,
    ``fallbacks``, ``over_budget``, ``cached`` (decisions taken from the cache), and with a
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
