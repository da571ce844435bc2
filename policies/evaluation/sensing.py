"""Sensing columns for compare, sweep and stress in echo mode (``docs/sensing.md``).

Static drops (compare, sweep): every policy observes the same target column, estimated from a
search dwell on each drop (:func:`echo_drops`); the echo of each policy's beams is then received
(one dwell of ``sensing.snapshots``, the same noise streams for every policy) and gives, per drop,
the network detection probability ``pd`` (square-law detector, Swerling-I target, at
``sensing.pfa``), each AP's ML angle error and the triangulated position error
(:func:`drop_scores`, :func:`summary`).

Closed loop (stress): the per-decision record of :class:`cfisac_env.sim.sensing.EchoLoop`
becomes position RMSE, angle RMSE and the track-loss rate over the covered stretch
(:func:`loop_summary`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cfisac_env.physics import metrics
from cfisac_env.sim.sensing import EchoSensing, echo_scores

if TYPE_CHECKING:
    from cfisac_env.sim.tracking import LoopResult
    from scenarios.loader import Scenario

#: :class:`policies.evaluation.evaluate.Drops` (not imported: that module imports this one)
Drops = Any

#: suffix of the communication-only baseline's rows (``sensing.tracker = "hold"``)
HELD = " (held)"
#: decisions after an acquisition that :func:`loop_summary`'s settled RMSE leaves out
SETTLE_DECISIONS = 3
COMPARE_COLUMNS = ("pd", "angle_rmse_deg", "angle_median_deg", "position_rmse_m",
                   "position_median_m", "fix_share")
STRESS_COLUMNS = ("position_rmse_m", "position_rmse_settled_m", "angle_rmse_deg",
                  "track_loss_rate", "position_median_m", "track_kept")


def echo_mode(scenario: Scenario) -> bool:
    """Whether the scenario's ``sensing.mode`` is ``"echo"``."""
    return scenario.config.get("sensing", {}).get("mode", "oracle") == "echo"


def held(scenario: Scenario) -> Scenario:
    """The scenario with ``sensing.tracker = "hold"``: the first estimate is never updated."""
    import copy

    cfg = copy.deepcopy(scenario.config)
    cfg["sensing"]["tracker"] = "hold"
    return type(scenario)(scenario.name, cfg, scenario.system, scenario.lineage)


def drop_rngs(seed: int, index: np.ndarray, stream: int) -> list[np.random.Generator]:
    """One generator per drop ``index``, from ``(seed, stream, drop)``: the same for every
    policy and every subset of drops."""
    return [np.random.default_rng([int(seed), stream, int(i)]) for i in index]


def echo_drops(scenario: Scenario, drops: Drops, seed: int) -> Drops:
    """``drops`` whose observed target column is each drop's search-dwell estimate (the truth
    stays in ``true_csi``; drops without an acquisition show the placement box's centre),
    marked for sensing scores with echo streams from ``seed``."""
    import dataclasses

    n = len(drops)
    sen = EchoSensing(scenario, n)
    sen.begin(drop_rngs(seed, np.arange(n), 1), np.arange(n), drops.truth, drops.target_xy)
    return dataclasses.replace(drops, csi=sen.fill(drops.csi.copy()),
                               true_csi=drops.truth.copy(), sensing=(scenario, seed))


def run_scores(drops: Drops, index: np.ndarray, beams: list[np.ndarray | None]
               ) -> dict[str, np.ndarray]:
    """:func:`drop_scores` of one policy's beams on ``drops[index]`` (``None``: a failed drop,
    NaN scores), for drops made by :func:`echo_drops` (``drops.sensing = (scenario, seed)``, or
    ``(scenario, seed, ids)`` for a chunk of a sweep: ``ids`` the drops' numbers in the whole
    sample, which pick their echo streams)."""
    scenario, seed, *ids = drops.sensing
    numbers = np.asarray(ids[0])[index] if ids else index
    s = scenario.system
    out = {"pd": np.full(len(index), np.nan), "detected": np.zeros((len(index), s.L), bool),
           "angle_error": np.full((len(index), s.L), np.nan),
           "position_error": np.full(len(index), np.nan)}
    ok = np.array([b is not None for b in beams], dtype=bool)
    if ok.any():
        got = drop_scores(scenario, drops, index[ok], np.stack([b for b in beams if b is not None]),
                          seed, numbers[ok])
        for k, v in got.items():
            out[k][ok] = v
    return out


def drop_scores(scenario: Scenario, drops: Drops, index: np.ndarray, beams: np.ndarray,
                seed: int, numbers: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Echo metrics of ``beams (K, L, 2, M, Q)`` on ``drops[index]`` (projected onto the budget
    as applied): ``pd``, ``detected``, ``angle_error`` (rad), ``position_error`` (m), each per
    drop (:func:`cfisac_env.sim.sensing.echo_scores`); the echo streams are those of drop
    ``numbers`` (default ``index``)."""
    applied, _ = metrics.project_power(np.asarray(beams, dtype=np.float64), scenario.system)
    return echo_scores(scenario, drops.truth[index], applied, drops.target_xy[index],
                       drop_rngs(seed, index if numbers is None else numbers, 2))


def summary(scores: dict[str, np.ndarray]) -> dict[str, float]:
    """:data:`COMPARE_COLUMNS`: mean ``pd``; angle RMSE and median absolute error (deg) over the
    APs' detections (modulo the ULA's endfire ambiguity, see
    :func:`cfisac_env.sim.tracker.wrap`);
    position RMSE and median (m) over the drops with a fix (two APs detected, triangulated);
    ``fix_share`` of drops with one."""
    ang = scores["angle_error"][np.isfinite(scores["angle_error"])]
    pos = scores["position_error"][np.isfinite(scores["position_error"])]
    pd = scores["pd"][np.isfinite(scores["pd"])]
    n = len(pd)
    return {"pd": float(np.mean(pd)) if n else np.nan,
            "angle_rmse_deg": float(np.rad2deg(np.sqrt(np.mean(ang ** 2)))) if ang.size
            else np.nan,
            "angle_median_deg": float(np.rad2deg(np.median(np.abs(ang)))) if ang.size
            else np.nan,
            "position_rmse_m": float(np.sqrt(np.mean(pos ** 2))) if pos.size else np.nan,
            "position_median_m": float(np.median(pos)) if pos.size else np.nan,
            "fix_share": float(pos.size / n) if n else np.nan}


def loop_summary(loop: LoopResult, covered: np.ndarray, lost_std: float) -> dict[str, Any]:
    """:data:`STRESS_COLUMNS` of one closed loop in echo mode, over the decisions whose instant
    lies in the covered stretch (``covered (S,)`` bool per step). A decision counts as LOST when
    its tracker declared the track lost or the prediction it was shown is more than
    ``lost_std`` m (``sensing.lost_std``) from the target (a held estimate never declares it):

    - ``track_loss_rate``: share of those decisions lost;
    - ``position_rmse_m``: RMSE of the shown prediction over the decisions not lost;
    - ``position_rmse_settled_m``: the same, leaving out the first :data:`SETTLE_DECISIONS`
      decisions after each (re)acquisition (a new track's transient, its velocity unknown);
    - ``angle_rmse_deg``: RMSE of the shown direction over the APs, decisions not lost;
    - ``position_median_m``: median error over all those decisions, lost ones included;
    - ``track_kept``: no lost decision after the first one not lost.
    """
    rec = loop.sensing
    if rec is None:
        raise ValueError("loop_summary needs a closed loop run in echo mode")
    inside = np.asarray(covered, dtype=bool)[loop.decided]
    err, ang = rec["position_error"], rec["angle_error"]
    lost = rec["track_lost"] | (err > lost_std)
    since = np.zeros(len(lost), dtype=int)            # decisions since the track (re)started
    for k in range(1, len(lost)):
        since[k] = 0 if lost[k - 1] else since[k - 1] + 1
    tracked = inside & ~lost
    settled = tracked & (since >= SETTLE_DECISIONS)

    def rmse(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(np.square(x)))) if x.size else float("nan")

    first = np.flatnonzero(tracked)
    after = inside & (np.arange(len(lost)) >= (first[0] if first.size else len(lost)))
    return {"position_rmse_m": rmse(err[tracked]),
            "position_rmse_settled_m": rmse(err[settled]),
            "angle_rmse_deg": float(np.rad2deg(rmse(ang[tracked]))),
            "track_loss_rate": float(lost[inside].mean()) if inside.any() else float("nan"),
            "position_median_m": float(np.median(err[inside])) if inside.any()
            else float("nan"),
            "track_kept": bool(first.size and not lost[after].any())}


def row_cells(scores: dict[str, np.ndarray] | None, j: int) -> dict[str, float]:
    """A sweep row's sensing columns for drop ``j`` of ``scores`` (NaN in oracle mode): ``pd``,
    ``angle_error_deg`` (largest over the APs that detected), ``position_error_m``."""
    if scores is None:
        return {"pd": np.nan, "angle_error_deg": np.nan, "position_error_m": np.nan}
    ang = scores["angle_error"][j]
    worst = float(np.rad2deg(np.nanmax(np.abs(ang)))) if np.isfinite(ang).any() else np.nan
    return {"pd": float(scores["pd"][j]), "angle_error_deg": worst,
            "position_error_m": float(scores["position_error"][j])}


def summary_cells(rows: list[dict[str, Any]]) -> dict[str, float]:
    """A sweep summary row's sensing columns over a cell's rows (NaN in oracle mode):
    ``pd_mean``, ``angle_rmse_deg`` (of each drop's largest AP error), ``position_rmse_m``."""
    def pick(key: str) -> np.ndarray:
        x = np.array([r.get(key, np.nan) for r in rows], float)
        return x[np.isfinite(x)]

    pd, ang, pos = pick("pd"), pick("angle_error_deg"), pick("position_error_m")
    return {"pd_mean": float(pd.mean()) if pd.size else np.nan,
            "angle_rmse_deg": float(np.sqrt(np.mean(ang ** 2))) if ang.size else np.nan,
            "position_rmse_m": float(np.sqrt(np.mean(pos ** 2))) if pos.size else np.nan}
