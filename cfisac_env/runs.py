"""Run folders: every runner (and training) writes to ``runs/<date>-<name>/``."""

from __future__ import annotations

import time
from pathlib import Path

RUNS = Path("runs")
CHECKPOINT_CACHE = RUNS / "cache" / "checkpoints"  # checkpoints runners trained on demand


def run_dir(name: str, out: str | Path | None = None) -> Path:
    """``out`` if given, else ``runs/<YYYYmmdd-HHMMSS>-<name>``, numbered (``-2``, ...) when
    that exists already. The folder is not created."""
    if out is not None:
        return Path(out)
    base = RUNS / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    path, k = base, 2
    while path.exists():
        path, k = Path(f"{base}-{k}"), k + 1
    return path
