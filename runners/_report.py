"""The runners' text output: one aligned terminal table and one CSV writer for every runner.

    print(table(["policy", "drops"], [["cvx", "24"]]))
    write_text(out / "drops.csv", csv_text(rows, ["policy", "drop", "ssnr"]))
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a table: ``digits`` significant digits, ``-`` for None/NaN/inf."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:.3g}"


def table(head: Sequence[str], body: Iterable[Sequence[Any]], left: int = 1) -> str:
    """An aligned table: the header, a rule, the rows; the first ``left`` columns flush left,
    the others flush right (cells are shown with ``str``)."""
    rows = [[str(c) for c in head], *([str(c) for c in r] for r in body)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i < left else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def csv_text(rows: Iterable[Mapping[str, Any] | Sequence[Any]],
             columns: Sequence[str]) -> str:
    """CSV text, header first: ``rows`` as dicts (keys not in ``columns`` left out) or as
    sequences in ``columns`` order."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(columns)
    for r in rows:
        w.writerow([r.get(c, "") for c in columns] if isinstance(r, Mapping) else list(r))
    return buf.getvalue()
