"""Robustness of every policy to imperfect CSI, scattering and channel ageing.

Two experiments, both on shared seeded realisations so the points of a curve are paired:

- :func:`sweep`: mean SSNR and min-SINR (with 95 % t-intervals over drops) of each policy on a
  static scenario as ONE channel or CSI field is varied (:data:`AXES`): the CSI NMSE, the Rician
  K factor (from LoS-only down to 0 dB) and the target-angle error. The drops' positions are the
  same at every point (the channel and the CSI errors draw from their own streams).
- :func:`ageing`: the closed-loop tracking stress (:func:`policies.evaluation.stress.run`) on a road
  scenario with a growing CSI delay, under the LoS channel and under Rician fading that ages
  with the walkers' Doppler (Gauss-Markov): mean SSNR and min-SINR of the loop while the target
  crosses the covered stretch.

``runners/robustness.py`` is the command line.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from policies.evaluation import stress
from policies.evaluation.evaluate import Drops, PolicyRun, build, parse_specs, score_policy
from policies.evaluation.stats import mean_ci
from policies.learned.checkpoints import CheckpointError
from policies.registry import PolicySpec
from scenarios.loader import Scenario, load

#: ``axis: (label, unit, [(value, overrides), ...])``; the first value of each axis is the seed's
#: model (LoS, perfect CSI).
AXES: dict[str, tuple[str, list[tuple[float, dict[str, Any]]]]] = {
    "nmse": ("CSI NMSE", [(v, {"csi.nmse": v}) for v in (0.0, 0.05, 0.1, 0.2, 0.3)]),
    "k_factor_db": ("Rician K factor (dB)", [
        (np.inf, {}),
        *[(k, {"channel.model": "rician", "channel.k_factor_db": k})
          for k in (20.0, 10.0, 6.0, 3.0, 0.0)]]),
    "angle_error_deg": ("target angle error (deg, std)",
                        [(v, {"csi.target_angle_error_deg": v}) for v in (0.0, 1.0, 2.0, 5.0,
                                                                          10.0)]),
}


@dataclass
class Point:
    """One policy at one setting of one axis: its :class:`PolicyRun` and the summary rows."""

    axis: str
    value: float
    policy: str
    run: PolicyRun

    def rows(self) -> list[dict[str, Any]]:
        """``{axis, value, policy, metric, mean, lo, hi, n}`` for ``ssnr`` and ``min_sinr``."""
        out = []
        for metric in ("ssnr", "min_sinr"):
            ci = mean_ci(getattr(self.run, metric))
            out.append({"axis": self.axis, "value": self.value, "policy": self.policy,
                        "metric": metric, "mean": ci["mean"], "lo": ci["lo"], "hi": ci["hi"],
                        "n": ci["n"]})
        return out


def sweep(scenario: str, users: int, specs: list[str | PolicySpec], drops: int, heavy_drops: int,
          seed: int = 0, axes: list[str] | None = None, heavy: tuple[str, ...] = ("cvx",),
          jobs: int | None = None, progress: bool = False, overrides: dict[str, Any] | None = None
          ) -> tuple[list[Point], dict[str, str], bool]:
    """Score ``specs`` at every point of ``axes`` (all of :data:`AXES` by default).

    Args:
        scenario, users: the static scenario and ``N``.
        specs: policy specs (as in ``runners/compare.py``).
        drops: drops per point for the fast policies; ``heavy_drops`` (the first ones) for the
            policies in ``heavy``.
        seed: the drops' seed (the same positions at every point).
        jobs: worker processes for heavy policies (``policies.evaluation.pool``).
        overrides: further scenario overrides applied at every point.

    Returns:
        ``(points, failed, interrupted)``: the results, ``{spec: error}`` of policies that could
        not be built or failed on every drop, and whether Ctrl-C cut the sweep short. A point
        shared by several axes (the seed's model) is computed once.
    """
    axes = list(AXES) if axes is None else axes
    unknown = sorted(set(axes) - set(AXES))
    if unknown:
        raise ValueError(f"unknown robustness axes {unknown}; axes: {', '.join(AXES)}")
    parsed = parse_specs(specs)
    points: list[Point] = []
    failed: dict[str, str] = {}
    cache: dict[str, dict[str, PolicyRun]] = {}
    try:
        for axis in axes:
            for value, over in AXES[axis][1]:
                key = repr(sorted(over.items()))
                if key not in cache:
                    sc = load(scenario, users=users, overrides={**(overrides or {}), **over})
                    d = Drops.sample(sc, drops, seed)
                    cache[key] = {}
                    for spec in parsed:
                        if spec.row in failed:
                            continue
                        n = heavy_drops if spec.target in heavy else drops
                        try:
                            run = score_policy(spec, sc, d, np.arange(min(n, drops)), jobs=jobs,
                                               progress=progress)
                        except CheckpointError as e:  # no checkpoint: a failed policy
                            failed[spec.row] = " ".join(str(e).split())
                            continue
                        except ValueError:
                            raise
                        except Exception as e:  # cannot be built
                            failed[spec.row] = " ".join(f"{type(e).__name__}: {e}".split())
                            continue
                        cache[key][spec.row] = run
                        if run.interrupted:
                            raise KeyboardInterrupt
                points += [Point(axis, value, s, r) for s, r in cache[key].items()]
    except KeyboardInterrupt:
        return points, failed, True
    return points, failed, False


@dataclass
class AgeingRow:
    """One policy, one channel, one CSI delay (s) of :func:`ageing`: mean SSNR and min-SINR of
    the closed loop over the covered steps, and their retention vs the zero-delay loop."""

    channel: str
    delay_s: float
    policy: str
    ssnr: float
    min_sinr: float
    retention: float
    retention_sinr: float


def ageing(scenario: Scenario, pols: dict[str, Any], delays: list[float],
           channels: dict[str, dict[str, Any]], seed: int = 0, progress: bool = False
           ) -> tuple[list[AgeingRow], bool]:
    """The tracking stress of ``scenario`` at zero compute latency with each CSI delay (s),
    under each channel (``{label: [channel]/[csi] overrides}``); the target-speed sweep is
    skipped. Policies decide on the aged estimated CSI; metrics use the true channel.

    Returns ``(rows, interrupted)``.
    """
    rows: list[AgeingRow] = []
    for label, over in channels.items():
        cfg = copy.deepcopy(scenario.config)
        for key, value in over.items():
            section, field = key.split(".")
            cfg[section][field] = value
        sc = Scenario(scenario.name, cfg, scenario.system, scenario.lineage)
        for delay in delays:
            settings = stress.StressSettings.of(sc)
            settings.latency, settings.csi_delay, settings.speeds = "zero", float(delay), []
            report = stress.run(sc, pols, settings, seed, progress)
            for name, r in report.main.items():
                cov = r.covered if r.covered.any() else np.ones_like(r.covered)
                rows.append(AgeingRow(label, float(delay), name, float(r.loop.ssnr[cov].mean()),
                                      float(r.loop.min_sinr[cov].mean()), r.retention,
                                      r.retention_sinr))
            if report.interrupted:
                return rows, True
    return rows, False


def build_tracking(name: str, specs: list[str | PolicySpec], overrides: dict[str, Any]
                   ) -> tuple[Scenario, dict[str, Any], dict[str, str]]:
    """The road scenario ``name`` and the policies of the ageing part by row name, with
    ``{row: error}`` for the ones that cannot be built (a user error still raises)."""
    road = load(name, overrides=overrides)
    pols, failed = {}, {}
    for spec in parse_specs(specs):
        try:
            pols[spec.row] = build(spec, road)
        except CheckpointError as e:  # no checkpoint: a failed row, the others still run
            failed[spec.row] = " ".join(str(e).split())
        except ValueError:
            raise
        except Exception as e:  # cannot be built: a failed row, the others still run
            failed[spec.row] = " ".join(f"{type(e).__name__}: {e}".split())
    return road, pols, failed
