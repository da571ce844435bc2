"""Drawing the scene: road, APs, UEs, target, other vehicles and each AP's beam pattern.

Frames are drawn with matplotlib's object-oriented API (a ``Figure`` on its own Agg canvas), so
rendering never touches ``pyplot`` or switches the user's backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cfisac_env.physics.channels import steering
from cfisac_env.physics.layout import to_complex

if TYPE_CHECKING:
    from scenarios.loader import Scenario


def beam_pattern(beams: np.ndarray, antennas: int, spacing: float, phi: np.ndarray
                 ) -> np.ndarray:
    """Radiated power of one AP towards angles ``phi``: ``sum_q |a(phi)^H w_q|^2``.

    Args:
        beams: one AP's beams ``(2, M, Q)``.
        phi: ``(K,)`` radians.

    Returns:
        ``(K,)`` linear power gain.
    """
    a = steering(phi, antennas, spacing)                          # (K, M)
    return (np.abs(a.conj() @ to_complex(beams[None])[0]) ** 2).sum(axis=-1)


def draw(scenario: Scenario, ue_xy: np.ndarray, target_xy: np.ndarray, others_xy: np.ndarray,
         beams: np.ndarray | None, time: float | None = None, width: float = 8.0) -> np.ndarray:
    """Render one frame as an RGB array ``(H, W, 3)`` uint8.

    Beam patterns (if ``beams (L, 2, M, Q)`` is given) are drawn as polar curves around each AP,
    radius proportional to the radiated power, the largest lobe 30 m long; the view ends 8 m
    above the highest UE (at least 35 m).
    """
    system = scenario.system
    cfg = scenario.config
    road = cfg.get("road", {"x": [0.0, 100.0], "lanes": [5.0, 15.0]})
    x_lo, x_hi = min(road["x"][0], 0.0), max(road["x"][1], 100.0)
    fig = Figure(figsize=(width, width * 0.3), dpi=80)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.axhspan(0.0, 20.0, color="0.82", zorder=0)
    lanes = np.asarray(road["lanes"], dtype=float)
    for y in (lanes[1:] + lanes[:-1]) / 2:
        ax.axhline(y, color="white", lw=1, ls=(0, (6, 6)), zorder=1)
    ax.axhline(10.0, color="gold", lw=1.5, zorder=1)
    ax.axhspan(21.5, 24.5, color="0.92", zorder=0)
    ap = system.ap_positions
    if beams is not None:
        phi = np.linspace(0.0, np.pi, 361)
        pats = [beam_pattern(beams[l], system.M, system.spacing, phi) for l in range(system.L)]
        scale = 30.0 / max(max(p.max() for p in pats), 1e-12)
        for l, p in enumerate(pats):
            r = p * scale
            ax.fill(ap[l, 0] + r * np.cos(phi), ap[l, 1] + r * np.sin(phi),
                    alpha=0.25, color=f"C{l}", zorder=2)
            ax.plot(ap[l, 0] + r * np.cos(phi), ap[l, 1] + r * np.sin(phi), color=f"C{l}", lw=1,
                    zorder=2)
    if len(others_xy):
        ax.scatter(others_xy[:, 0], others_xy[:, 1], marker="s", s=40, color="0.35",
                   label="vehicles", zorder=3)
    ax.scatter(ue_xy[:, 0], ue_xy[:, 1], marker="o", s=35, color="tab:blue", label="UEs",
               zorder=4)
    ax.scatter([target_xy[0]], [target_xy[1]], marker="s", s=90, color="tab:red",
               edgecolor="k", label="target", zorder=5)
    ax.scatter(ap[:, 0], ap[:, 1], marker="^", s=120, color="k", label="APs", zorder=5)
    top = max(35.0, float(np.max(ue_xy[:, 1])) + 8)
    ax.set(xlim=(x_lo, x_hi), ylim=(-5.0, top), xlabel="x (m)", ylabel="y (m)")
    ax.set_title(f"{scenario.name}" + ("" if time is None else f"   t = {time:.2f} s"),
                 loc="left", fontsize=9)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7, ncol=4, frameon=False,
              borderaxespad=0.2)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
