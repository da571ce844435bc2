"""The runners' figures: the one place matplotlib's backend is chosen (Agg: files, no display).

Every plotting runner takes ``plt`` from here and saves with :func:`save`::

    from runners._plot import plt, save
    fig, ax = plt.subplots()
    save(fig, out / "bars.png")
"""

from __future__ import annotations

import importlib
from pathlib import Path

import matplotlib

from cfisac_env.runs import atomic_path

matplotlib.use("Agg")
plt = importlib.import_module("matplotlib.pyplot")


def save(fig: matplotlib.figure.Figure, path: Path, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` atomically (a reader never sees half a PNG) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
