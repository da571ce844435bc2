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
    return p.parse_args(argv)


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
    pick = np.linspace(0, len(steps) - 1, min(a.frames, len(steps))).round().astype(int)
    fig, axes = plt.subplots(len(pick), 1, figsize=(8, 3.4 * len(pick)))
    for ax, k in zip(np.atleast_1d(axes), pick, strict=True):
        frame, info = steps[k]
        ax.imshow(frame)
        ax.set_axis_off()
        ax.set_title(f"{spec.row}, decision {k + 1}: SSNR {info['ssnr']:.2f}, "
                     f"min-SINR {info['min_sinr']:.2f}", fontsize=9)
    fig.tight_layout()
    save(fig, out / "filmstrip.png", dpi=100)
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
