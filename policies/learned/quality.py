"""Per-drop parity of a policy with ``cvx``: the quality bar of the learned policies.

On the same drops, drop by drop, ``r1 = SSNR / SSNR_cvx`` and ``r2 = min-SINR / min-SINR_cvx``:

- median of ``r1`` and of ``r2``                               (bar >= 0.95 each)
- share of drops with both ``r1`` and ``r2 >= 0.9``              (bar >= 80 %)
- 5th percentile of min-SINR over cvx's 5th percentile         (bar >= 0.9)
- mean SSNR / cvx's mean, mean min-SINR / cvx's mean           (bar >= 0.95 each)

Every quantity is a plain function of the per-drop arrays (``(K,)`` linear values); NaN drops
(a policy error) count as failures.
"""

from __future__ import annotations

import numpy as np

BAR = {"median_ssnr": 0.95, "median_min_sinr": 0.95, "share_both_090": 0.80,
       "p5_min_sinr": 0.90, "mean_ssnr": 0.95, "mean_min_sinr": 0.95}


def parity(g1: np.ndarray, g2: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> dict[str, float]:
    """The per-drop figures of the module docstring, plus ``bar_met`` (1.0 or 0.0).

    Args:
        g1, g2: the policy's SSNR and min-SINR per drop, ``(K,)``.
        c1, c2: cvx's on the same drops, ``(K,)``.
    """
    g1, g2, c1, c2 = (np.asarray(x, dtype=np.float64) for x in (g1, g2, c1, c2))
    if not g1.shape == g2.shape == c1.shape == c2.shape or g1.ndim != 1 or not len(g1):
        raise ValueError("parity needs four (K,) arrays of the same drops, K >= 1")
    r1, r2 = g1 / c1, g2 / c2
    both = np.nan_to_num(np.minimum(r1, r2), nan=0.0)
    out = {"drops": float(len(g1)),
           "median_ssnr": float(np.nanmedian(r1)), "median_min_sinr": float(np.nanmedian(r2)),
           "share_both_090": float(np.mean(both >= 0.9)),
           "p5_min_sinr": float(np.nanpercentile(g2, 5) / np.percentile(c2, 5)),
           "mean_ssnr": float(np.nanmean(g1) / np.mean(c1)),
           "mean_min_sinr": float(np.nanmean(g2) / np.mean(c2))}
    out["bar_met"] = float(all(out[k] >= v for k, v in BAR.items()))
    return out


def parity_line(name: str, p: dict[str, float]) -> str:
    """One table row: the figures of :func:`parity` and whether the bar holds."""
    return (f"{name:16s} {p['median_ssnr']:7.3f} {p['median_min_sinr']:8.3f} "
            f"{p['share_both_090']:8.1%} {p['p5_min_sinr']:7.3f} {p['mean_ssnr']:7.3f} "
            f"{p['mean_min_sinr']:8.3f}  {'met' if p['bar_met'] else 'NOT met'}")


HEADER = (f"{'policy':16s} {'med r1':>7s} {'med r2':>8s} {'both>=.9':>8s} {'p5 r2':>7s} "
          f"{'mean r1':>7s} {'mean r2':>8s}  bar (0.95, 0.95, 80 %, 0.9, 0.95, 0.95)")
