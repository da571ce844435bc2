"""Roll a policy out on a scenario and save what the environment renders: a film strip (PNG)
of the road, the APs' beam patterns, the UEs, the vehicles and the target, plus an animated GIF.

    python runners/render_road.py --scenario road --policy student --steps 100 --frames 4

The run folder is created (and checked) before the rollout and both files are written
atomically. Ctrl-C keeps the decisions made so far, renders them and exits 130; a user error
exits 2 with one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter

from cfisac_env.runs import atomic_path, run_dir
from policies.evaluation.evaluate import build, rollout
from policies.registry import parse_spec
from runners import _cli
from runners._plot import plt, save


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "render_road")
    _cli.add_common(p, scenario="road", threads=None)
    p.add_argument("--policy", default="student", metavar="SPEC",
                   help="policy spec: NAME, module:Class or file.py:Class, options after @")
    p.add_argument("--steps", type=_cli.int_in(1, 100_000), default=100,
                   help="decisions to roll out")
    p.add_argument("--frames", type=_cli.int_in(1, 100), default=4,
                   help="frames in the film strip")
    _cli.add_figure_flags(p, db=False)
    return p.parse_args(argv)


def crop(frame: np.ndarray) -> np.ndarray:
    """``frame (H, W, 3)`` without its white margins (2 px kept)."""
    ink = (frame < 250).any(axis=-1)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not rows.size:
        return frame
    return frame[max(rows[0] - 2, 0):rows[-1] + 3, max(cols[0] - 2, 0):cols[-1] + 3]


def filmstrip(steps: list[tuple[np.ndarray, dict]], row: str, a: argparse.Namespace,
              path: Path) -> None:
    """``--frames`` frames, evenly spaced over the rollout, stacked with no empty space; each
    names the decision and its SSNR / min-SINR (linear)."""
    pick = np.linspace(0, len(steps) - 1, min(a.frames, len(steps))).round().astype(int)
    frames = [crop(steps[k][0]) for k in pick]
    h, w = frames[0].shape[:2]
    width = 7.5
    fig, axes = plt.subplots(len(pick), 1, figsize=(width, len(pick) * (width * h / w + 0.25)),
                             squeeze=False)
    for ax, k, frame in zip(axes[:, 0], pick, frames, strict=True):
        info = steps[k][1]
        ax.imshow(frame, interpolation="lanczos")
        ax.set_axis_off()
        ax.set_title(f"{row} on {a.scenario} (N = {len(info['ue_xy'])}, seed {a.seed}), "
                     f"decision {k + 1} of {len(steps)}: SSNR {info['ssnr']:.2f}, min-SINR "
                     f"{info['min_sinr']:.2f} (linear)", fontsize=8.5, pad=2)
    fig.subplots_adjust(hspace=0.12, left=0, right=1, top=0.97, bottom=0)
    save(fig, path, dpi=130)


@_cli.entry("render_road")
def main(argv: list[str] | None = None) -> int:
    """Check, create the run folder, roll out, write the film strip and the GIF; returns the
    exit status (see :mod:`runners._cli`)."""
    a = parse_args(argv)
    sc = _cli.load_scenario(a)
    spec = parse_spec(a.policy)
    build(spec, sc)                       # an unknown or unbuildable policy fails here
    out = run_dir(f"render-{a.scenario}", a.out)
    _cli.set_threads(a.threads)
    steps: list[tuple[np.ndarray, dict]] = []
    interrupted = False
    try:
        rollout(a.scenario, a.users, spec, a.steps, a.seed, dict(a.set), not a.quiet, steps)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: rendering the decisions made so far", file=sys.stderr)
    if not steps:
        return _cli.outcome(0, 0, interrupted)
    filmstrip(steps, spec.row, a, out / "filmstrip.png")
    fig = plt.figure(figsize=(8, 3.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    image = ax.imshow(steps[0][0])
    with atomic_path(out / "rollout.gif") as tmp:
        FuncAnimation(fig, lambda k: [image.set_data(steps[k][0])], frames=len(steps)).save(
            tmp, writer=PillowWriter(fps=10))
    plt.close(fig)
    print(f"wrote {out}/filmstrip.png and rollout.gif ({len(steps)} decisions)")
    return _cli.outcome(1, 0, interrupted)


if __name__ == "__main__":
    sys.exit(main())
