"""Demirhan & Alkhateeb's published results, re-run: the four schemes on the reference drops and
their means beside the reference's (the engine of ``runners/reproduce_demirhan.py``).

The reference archives (``power_sweep.npz``, ``distance_sweep.npz``) hold the authors' drop
positions and per-drop metrics; :func:`power_sweep` and :func:`distance_sweep` run NS+RZF,
NS+OPT, CB+OPT and JSC+Q1 on the same positions and return one table row per scheme and rho (or
distance bin).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

import policies
from cfisac_env.physics import metrics
from cfisac_env.physics.channels import csi
from cfisac_env.physics.system import System
from policies.evaluation.pool import decide_many

SCHEMES = {"NS+RZF": "ns-rzf", "NS+OPT": "ns-opt", "CB+OPT": "cb-opt", "JSC+Q1": "cvx"}
#: Where no gamma is feasible the reference keeps zero communication beams and the scheme's
#: sensing beam; our policies fall back to NS+RZF (flagged), so those drops are re-scored so.
REFERENCE_ON_FAILURE = {"ns-opt": "ns-sensing", "cb-opt": "cb-sensing"}
#: Where the authors' outputs are looked for: ``$CFISAC_DEMIRHAN_REF``, else
#: ``reference/demirhan2023`` at the repository root (``--ref`` overrides both).
REF_ENV = "CFISAC_DEMIRHAN_REF"
REFERENCE = Path(os.environ.get(REF_ENV) or
                 Path(__file__).resolve().parents[2] / "reference" / "demirhan2023")
METRICS = ("min_sinr", "ssnr")


def load_reference(folder: Path, name: str) -> dict[str, np.ndarray]:
    """One reference archive as a dict; ValueError naming the path when missing."""
    path = folder / name
    if not path.is_file():
        raise ValueError(f"reference archive {path} not found; pass --ref <folder with {name}> "
                         f"or set {REF_ENV}; the data: output/power_data.mat, dist_data*.mat of "
                         "github.com/umut-demirhan/Cell-free-ISAC-beamforming (CC BY-NC-SA 4.0) "
                         "re-saved with numpy.savez (keys: docs page 'Demirhan reference data')")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def run_schemes(system: System, x: np.ndarray, rho: float, solver: str, jobs: int | None,
                progress: bool, label: str) -> dict[str, dict[str, np.ndarray]]:
    """Every scheme on drops ``x (B, L, 2, M, Q)`` at ``rho``: per scheme ``min_sinr``, ``ssnr``,
    ``fallback`` and ``seconds``, each ``(B,)``, scored with :mod:`cfisac_env.physics.metrics`."""
    out = {}
    for scheme, spec in SCHEMES.items():
        options: dict[str, Any] = {"rho": rho}
        if spec == "cvx":
            options["solver"] = solver
        decisions = decide_many(spec, system, x, options, jobs=jobs, progress=progress,
                                desc=f"{label} {scheme}")
        if len(decisions) < len(x):
            raise KeyboardInterrupt
        beams = np.concatenate([d.beams for d in decisions])
        fallback = np.array([bool(d.info.get("fallback", [False])[0]) for d in decisions])
        if spec in REFERENCE_ON_FAILURE and fallback.any():
            sensing_only = policies.make(REFERENCE_ON_FAILURE[spec], system, rho=rho)
            beams[fallback] = sensing_only.act(x[fallback])
        out[scheme] = {
            "min_sinr": metrics.min_sinr(x, beams, system),
            "ssnr": metrics.ssnr(x, beams, system),
            "fallback": fallback,
            "seconds": np.array([d.seconds for d in decisions]),
        }
    return out


def compare_rows(ref: dict[str, np.ndarray], ours: dict[str, dict[str, np.ndarray]],
                 sel: np.ndarray, rho_index: int, key: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows (one per scheme) of our means beside the reference's on drops ``sel``."""
    rows = []
    for k, scheme in enumerate(SCHEMES):
        mask = np.ones(len(sel), bool)
        if scheme == "JSC+Q1":
            mask = ref["jsc_feasible"][sel, rho_index].astype(bool)
        row = {**key, "scheme": scheme, "drops": int(mask.sum()),
               "fallbacks": int(ours[scheme]["fallback"][mask].sum()),
               "median_s": float(np.median(ours[scheme]["seconds"]))}
        for m in METRICS:
            mine = float(np.mean(ours[scheme][m][mask]))
            theirs = float(np.mean(ref[m][sel, rho_index, k][mask]))
            row.update({m: mine, f"{m}_ref": theirs, f"{m}_err": mine / theirs - 1.0})
        rows.append(row)
    return rows


def power_sweep(ref: dict[str, np.ndarray], drops: int, solver: str, jobs: int | None,
                progress: bool, only: list[float] | None = None,
                rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Rows for every rho (or those in ``only``) and scheme on the first ``drops`` drops of
    ``power_sweep.npz``, appended to ``rows`` as each rho finishes (kept on Ctrl-C)."""
    system = System(ap_xy=ref["ap_xy"])
    sel = np.arange(min(drops, len(ref["ue_xy"])))
    x = csi(system, ref["ue_xy"][sel], ref["target_xy"][sel])
    rows = [] if rows is None else rows
    for r, rho in enumerate(ref["rho"]):
        if only is not None and not np.any(np.isclose(rho, only)):
            continue
        ours = run_schemes(system, x, float(rho), solver, jobs, progress, f"rho={rho:g}")
        rows += compare_rows(ref, ours, sel, r, {"rho": float(rho)})
    return rows


def distance_sweep(ref: dict[str, np.ndarray], drops: int, solver: str, jobs: int | None,
                   progress: bool, rows: list[dict[str, Any]] | None = None
                   ) -> list[dict[str, Any]]:
    """Rows per distance bin and scheme (rho = 0.5) on the first ``drops`` drops of each bin,
    appended to ``rows`` as each bin finishes (kept on Ctrl-C)."""
    system = System(ap_xy=ref["ap_xy"])
    rows = [] if rows is None else rows
    for b in np.unique(ref["bin"]):
        sel = np.flatnonzero(ref["bin"] == b)[:drops]
        x = csi(system, ref["ue_xy"][sel], ref["target_xy"][sel])
        ours = run_schemes(system, x, float(ref["rho"][0]), solver, jobs, progress, f"bin={b}")
        rows += compare_rows(ref, ours, sel, 0, {"bin_m": int(b)})
    return rows
