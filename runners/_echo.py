"""Echo-sensing columns and figures shared by the runners (``--sensing echo``).

``add_flag`` adds ``--sensing oracle|echo`` (a shortcut for ``--set sensing.mode=...``);
``stress_table`` / ``plot_stress_errors`` / ``plot_stress_speeds`` are the stress runner's sensing
table columns and figures (position error over time; track loss and position error vs speed,
each policy beside its communication-only baseline, the first estimate held).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from policies.evaluation.sensing import HELD, STRESS_COLUMNS
from runners._plot import plt, save

MODES = ("oracle", "echo")
COMPARE_HEAD = ["P_D", "angle RMSE deg", "med", "pos. RMSE m", "med", "fix"]
COMPARE_NOTE = ("echo sensing: every policy saw the target column of one search dwell per drop; "
                "P_D: network detection probability of its beams' echo (square-law, Swerling I, "
                "at sensing.pfa); angle RMSE / median |error| over the APs' ML estimates that "
                "detected (modulo the ULA's endfire ambiguity); pos.: "
                "error of the triangulated detections, fix: share of drops with one")
DROP_COLUMNS = ("pd", "angle_error_deg_max", "position_error_m", "detected_aps")


def add_flag(p: argparse.ArgumentParser) -> None:
    """``--sensing oracle|echo``: where the observed target column comes from."""
    p.add_argument("--sensing", choices=MODES, default=None,
                   help="target column from the truth (oracle) or from the tracker of the "
                        "APs' echoes (echo); default: the scenario's sensing.mode")


def apply_flag(args: argparse.Namespace) -> None:
    """Turn ``--sensing`` into the override ``sensing.mode`` (before the scenario loads)."""
    if getattr(args, "sensing", None):
        args.set = [*args.set, ("sensing.mode", args.sensing)]


def compare_cells(sensing: dict[str, float] | None, fmt: Any) -> list[str]:
    """The compare table's sensing cells of one row (``-`` when missing)."""
    if sensing is None:
        return ["-"] * len(COMPARE_HEAD)
    return [fmt(sensing["pd"]), fmt(sensing["angle_rmse_deg"]), fmt(sensing["angle_median_deg"]),
            fmt(sensing["position_rmse_m"]), fmt(sensing["position_median_m"]),
            fmt(sensing["fix_share"], 2)]


def drop_cells(scores: dict[str, np.ndarray] | None, j: int) -> list[Any]:
    """``drops.csv`` sensing cells of drop ``j``: P_D, the largest angle error over the APs
    that detected (deg), the position error (m), how many APs detected."""
    if scores is None:
        return [""] * len(DROP_COLUMNS)
    ang = scores["angle_error"][j]
    worst = float(np.rad2deg(np.nanmax(np.abs(ang)))) if np.isfinite(ang).any() else np.nan
    return [scores["pd"][j], worst, scores["position_error"][j], int(scores["detected"][j].sum())]


def stress_table(results: dict[str, Any]) -> list[list[str]]:
    """The stress runner's sensing table rows (policy, position RMSE, settled RMSE, angle RMSE,
    loss rate, median error, kept) of results that have them."""
    from runners._report import fmt

    return [[name, *(fmt(r.sensing[k]) for k in STRESS_COLUMNS[:-1]),
             "yes" if r.sensing["track_kept"] else "no"]
            for name, r in results.items() if r.sensing is not None]


STRESS_HEAD = ["echo sensing", "pos. RMSE m", "settled m", "angle RMSE deg", "loss rate",
               "median err. m", "kept"]


def _style(name: str, names: list[str]) -> dict[str, Any]:
    base = name.removesuffix(HELD)
    order = list(dict.fromkeys(n.removesuffix(HELD) for n in names))
    return {"color": f"C{order.index(base)}", "ls": "--" if name != base else "-",
            "lw": 0.9 if name != base else 1.5}


def plot_stress_errors(results: dict[str, Any], traj: Any, covered: tuple[float, float],
                       path: Path, title: str) -> None:
    """Position error of the prediction each decision was shown, over time (log scale; crosses:
    decisions shown a lost track; grey: target outside the covered stretch), every policy
    (solid) and its held baseline (dashed)."""
    fig, ax = plt.subplots(figsize=(9, 4.2))
    names = list(results)
    dt = traj.dt
    x = traj.target_xy[:, 0]
    ax.fill_between(traj.time, 0, 1, where=(x < covered[0]) | (x > covered[1]),
                    transform=ax.get_xaxis_transform(), color="0.92", lw=0)
    for name, r in results.items():
        rec = r.loop.sensing
        t = r.loop.decided * dt
        err = np.maximum(rec["position_error"], 1e-2)
        kw = _style(name, names)
        rmse = r.sensing["position_rmse_m"]
        rmse_text = f"{rmse:.2f} m" if np.isfinite(rmse) else "- (never tracked)"
        ax.semilogy(t, err, label=f"{name}: RMSE {rmse_text}, loss "
                    f"{r.sensing['track_loss_rate']:.2f}", **kw)
        lost = rec["track_lost"]
        ax.plot(t[lost], err[lost], "x", color=kw["color"], ms=5)
    ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("position error of the prediction shown (m)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2, title="solid: EKF of the echoes, dashed: first estimate held;"
              " x: track lost", title_fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save(fig, path, dpi=120)


def plot_stress_speeds(sweep: dict[float, dict[str, Any]], path: Path, title: str) -> None:
    """Track-loss rate, median position error (lost decisions included) and SSNR retention vs
    target speed."""
    fig, ax = plt.subplots(1, 3, figsize=(13, 4))
    names = list(dict.fromkeys(n for res in sweep.values() for n in res))
    for name in names:
        pts = [(v, res[name]) for v, res in sorted(sweep.items()) if name in res]
        v = [p for p, _ in pts]
        kw = _style(name, names)
        ax[0].plot(v, [r.sensing["track_loss_rate"] for _, r in pts], "o", label=name, **kw)
        ax[1].semilogy(v, [max(r.sensing["position_median_m"], 1e-2) for _, r in pts], "o",
                       **kw)
        ax[2].plot(v, [r.retention for _, r in pts], "o", **kw)
    ax[0].set_ylabel("track-loss rate (share of decisions in coverage)")
    ax[1].set_ylabel("median position error (m)")
    ax[1].set_title("all decisions in coverage, lost ones included", fontsize=8)
    ax[1].axhline(1.0, color="0.5", lw=0.8, ls=":")
    ax[2].set_ylabel("SSNR retention (vs zero latency)")
    for a in ax:
        a.set_xlabel("target speed (m/s)")
        a.grid(alpha=0.3, which="both")
    ax[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save(fig, path, dpi=120)
