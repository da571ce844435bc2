"""Confidence intervals for the runners' tables: means and paired ratios of means.

Everything here is deterministic (Student-t intervals and the delta method, no resampling), so
the same drops give the same intervals on any machine::

    mean_ci(ssnr)                       # {"mean", "lo", "hi", "n"}: 95 % t-interval of the mean
    describe(ssnr)                      # + median and 5th percentile: every table's statistics
    ratio_ci(student_ssnr, cvx_ssnr)    # mean(x) / mean(y) on paired drops, with its interval
"""

from __future__ import annotations

import numpy as np
from scipy import stats

LEVEL = 0.95


def _t(n: int, level: float) -> float:
    return float(stats.t.ppf(0.5 + level / 2, n - 1))


def mean_ci(x: np.ndarray, level: float = LEVEL) -> dict[str, float]:
    """Mean of the finite values of ``x (K,)`` and its Student-t interval.

    Returns:
        ``{"mean", "lo", "hi", "n"}``; NaN bounds with fewer than two finite values, all NaN
        (``n = 0``) with none.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    m = float(x.mean())
    if n < 2:
        return {"mean": m, "lo": float("nan"), "hi": float("nan"), "n": 1}
    half = _t(n, level) * float(x.std(ddof=1)) / np.sqrt(n)
    return {"mean": m, "lo": float(m - half), "hi": float(m + half), "n": n}


def describe(x: np.ndarray, level: float = LEVEL) -> dict[str, float]:
    """The statistics every table reports for per-drop values ``x (K,)``, over the finite ones:
    ``{"mean", "lo", "hi", "n"}`` (:func:`mean_ci`), ``"median"`` and ``"p5"`` (5th percentile);
    NaN where there are none."""
    out: dict[str, float] = dict(mean_ci(x, level))
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    out["median"] = float(np.median(x)) if len(x) else float("nan")
    out["p5"] = float(np.percentile(x, 5)) if len(x) else float("nan")
    return out


def ratio_ci(x: np.ndarray, y: np.ndarray, level: float = LEVEL) -> dict[str, float]:
    """Ratio of means ``mean(x) / mean(y)`` on paired drops (``x[i]``, ``y[i]`` scored on the
    same drop ``i``), with a delta-method Student-t interval.

    Pairs where either value is not finite are left out. With ``R`` the ratio and
    ``d_i = x_i - R y_i``, the standard error is ``std(d) / (sqrt(n) |mean(y)|)``: the pairing
    removes the drop-to-drop variation the two share (hard drops are hard for both policies).

    Returns:
        ``{"ratio", "lo", "hi", "n"}``; NaN where ``mean(y)`` is 0 or fewer than two pairs.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired arrays must have the same shape, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    nan = float("nan")
    if n == 0 or y.mean() == 0:
        return {"ratio": nan, "lo": nan, "hi": nan, "n": n}
    r = float(x.mean() / y.mean())
    if n < 2:
        return {"ratio": r, "lo": nan, "hi": nan, "n": n}
    half = _t(n, level) * float((x - r * y).std(ddof=1)) / (np.sqrt(n) * abs(float(y.mean())))
    return {"ratio": r, "lo": float(r - half), "hi": float(r + half), "n": n}


def pm(center: float, lo: float, hi: float, digits: int = 3) -> str:
    """``"1.23 ±0.04"`` (half-width of ``[lo, hi]``); ``"-"`` for NaN, no ``±`` without bounds."""
    if not np.isfinite(center):
        return "-"
    c = f"{center:.{digits}g}"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return c
    return f"{c} ±{(hi - lo) / 2:.2g}"
