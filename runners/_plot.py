"""The runners' figure module: one backend (Agg: files, no display), one style, one palette.

Every plotting runner adds the figure flags with :func:`add_flags` (``--format png pdf svg``,
several at once; ``--db`` for SSNR/SINR axes in dB; ``--series N|all``, at most eight series per
axes by default), calls :func:`configure` with its parsed arguments, draws with ``plt`` from here
and saves with :func:`save`, which writes one file per requested format::

    from runners import _plot
    from runners._plot import plt, save
    _plot.configure(args)                       # after parse_args
    fig, ax = plt.subplots()
    ax.plot(x, _plot.to_axis(y), color=_plot.palette(0))
    ax.set_ylabel(_plot.axis_label("SSNR"))
    save(fig, out / "bars.png")                 # bars.png (+ bars.pdf, bars.svg)

The palette is Okabe & Ito's eight colour-blind-safe colours; series past the eighth (on
request) reuse them with another marker and line style. Grey means one thing only: "outside
what was run" (a stretch the APs do not cover, a reference), never a series.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from cfisac_env.runs import atomic_path

matplotlib.use("Agg")
plt = importlib.import_module("matplotlib.pyplot")

FORMATS = ("png", "pdf", "svg")
#: Okabe & Ito (2008), ordered for contrast on white (yellow, the weakest, last).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
             "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
LINESTYLES = ("-", "--", "-.", ":")
#: The one meaning of grey: outside what was run (uncovered stretch, shaded region).
GREY = "0.88"
MAX_SERIES = 8
STYLE: dict[str, Any] = {
    "figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight", "font.size": 9,
    "axes.titlesize": 9.5, "axes.labelsize": 9, "legend.fontsize": 7.5, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
    "axes.spines.right": False, "legend.frameon": False, "lines.linewidth": 1.5,
    "axes.prop_cycle": matplotlib.cycler(color=list(OKABE_ITO)), "svg.fonttype": "none",
    "pdf.fonttype": 42,
}
matplotlib.rcParams.update(STYLE)


@dataclass
class Options:
    """What the figure flags asked for (module state, set by :func:`configure`)."""

    formats: tuple[str, ...] = ("png",)
    db: bool = False
    series: int | None = MAX_SERIES        # None: every series
    written: list[Path] = field(default_factory=list)


OPTIONS = Options()


def _series(text: str) -> int | None:
    if text == "all":
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}"
                                         ) from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    return n


def add_flags(p: argparse.ArgumentParser, db: bool = True) -> None:
    """Add ``--format``, ``--db`` (when the runner has SSNR/SINR axes) and ``--series``."""
    g = p.add_argument_group("figures")
    g.add_argument("--format", nargs="+", choices=FORMATS, default=["png"], metavar="FMT",
                   help="figure formats, several at once: png pdf svg (default png)")
    if db:
        g.add_argument("--db", action="store_true",
                       help="SSNR and SINR axes in dB (10 log10) instead of linear")
    g.add_argument("--series", type=_series, default=MAX_SERIES, metavar="N|all",
                   help=f"at most N series per axes, the first N in the order given "
                        f"(default {MAX_SERIES}; 'all': every one)")


def configure(args: argparse.Namespace | None = None, **kw: Any) -> Options:
    """Set :data:`OPTIONS` from parsed flags (missing flags keep the defaults) or keywords."""
    global OPTIONS
    src = {**(vars(args) if args is not None else {}), **kw}
    OPTIONS = Options(formats=tuple(dict.fromkeys(src.get("format") or ["png"])),
                      db=bool(src.get("db", False)),
                      series=src.get("series", MAX_SERIES))
    return OPTIONS


def palette(k: int) -> str:
    """Colour of series ``k`` (cycles through the eight)."""
    return OKABE_ITO[k % len(OKABE_ITO)]


def marker(k: int) -> str:
    """Marker of series ``k``: the eight first differ by colour, the next eight by marker too."""
    return MARKERS[(k // len(OKABE_ITO) + k) % len(MARKERS)] if k >= len(OKABE_ITO) \
        else MARKERS[0]


def linestyle(k: int) -> str:
    """Line style of series ``k`` (solid for the first eight)."""
    return LINESTYLES[(k // len(OKABE_ITO)) % len(LINESTYLES)]


def limit(names: Sequence[str], keep: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """The series to draw (the first :attr:`Options.series`, those in ``keep`` first) and the
    ones left out (say so on the figure with :func:`note_left_out`)."""
    order = [n for n in keep if n in names] + [n for n in names if n not in keep]
    n = OPTIONS.series
    if n is None or len(order) <= n:
        return [x for x in names if x in order], []
    shown = set(order[:n])
    return [x for x in names if x in shown], [x for x in names if x not in shown]


def note_left_out(ax: Any, left_out: Sequence[str]) -> None:
    """A footnote on ``ax`` naming how many series were left out and how to get them."""
    if left_out:
        ax.text(0.0, -0.02, f"{len(left_out)} more not drawn ({', '.join(left_out[:4])}"
                f"{', ...' if len(left_out) > 4 else ''}): --series all",
                transform=ax.figure.transFigure, fontsize=7, va="top", color="0.3")


def to_axis(x: Any, floor_db: float = -30.0) -> np.ndarray:
    """Linear SSNR/SINR values as the axis shows them: ``10 log10`` (floored at ``floor_db``)
    under ``--db``, else unchanged."""
    x = np.asarray(x, dtype=float)
    if not OPTIONS.db:
        return x
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(10 * np.log10(np.maximum(x, 0)), floor_db)


def axis_label(quantity: str, db: bool | None = None) -> str:
    """``"SSNR (dB)"`` or ``"SSNR (linear)"``, following ``--db`` unless ``db`` is given."""
    return f"{quantity} ({'dB' if (OPTIONS.db if db is None else db) else 'linear'})"


def drops_label(name: str, drops: int, most: int) -> str:
    """A legend entry that marks a subset: ``"cvx (24 drops)"`` when ``drops < most``."""
    return f"{name} ({drops} drops)" if drops < most else name


def save(fig: Any, path: Path, dpi: int | None = None) -> list[Path]:
    """Write ``fig`` as ``path`` in every format of ``--format`` (``path``'s suffix replaced),
    each file atomically (a reader never sees half a figure), then close it; returns the
    paths written."""
    path = Path(path)
    out = []
    for f in OPTIONS.formats:
        target = path.with_suffix(f".{f}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=f, **({"dpi": dpi} if dpi else {}))
        out.append(target)
    OPTIONS.written.extend(out)
    plt.close(fig)
    return out

