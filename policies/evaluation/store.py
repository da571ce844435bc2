"""The result store of a sweep: one tidy table (one row per policy x drop) in SQLite.

Columns (:data:`COLUMNS`, as in ``results.csv``): ``scenario, users, policy, options, seed, drop,
ssnr, min_sinr, seconds, timing, fallback, over_budget, error`` plus ``gamma_high`` (the ``cvx``
bisection's, NaN for other policies), ``cached`` (decision taken from the decision cache),
``sample`` (how many drops were drawn for the ``(scenario, N, seed)``: drop ``i`` depends on it),
``cell`` (the JSON key of the grid cell) and, in echo sensing mode (NaN otherwise), ``pd``,
``angle_error_deg`` (largest over the APs that detected) and ``position_error_m``
(:mod:`policies.evaluation.sensing`). ``(cell, drop)`` is the primary key.

A row whose ``error`` is set (the policy raised, timed out or its worker died) is kept for the
tables but is not final: a rerun scores that drop again. Writes are transactions of whole
chunks (:meth:`ResultStore.add`): a chunk is either stored
completely or not at all, so an interrupted sweep loses at most the chunks in flight, and
:meth:`ResultStore.finished` tells a rerun which drops of a cell to skip. The database uses the
write-ahead log and a busy timeout, so many processes may read and write it at once.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from policies.evaluation.sqlite import WrongFile, open_versioned, transaction

FORMAT = "cfisac-sweep-store"
VERSION = "2"
#: The tidy table's public columns, in order.
COLUMNS = ("scenario", "users", "policy", "options", "seed", "drop", "ssnr", "min_sinr", "seconds",
           "timing", "fallback", "over_budget", "error")
#: Further columns of the store (and of ``results.csv``, after :data:`COLUMNS`).
EXTRA = ("gamma_high", "cached", "sample", "cell", "pd", "angle_error_deg", "position_error_m")
_TYPES = {"scenario": "TEXT", "users": "INTEGER", "policy": "TEXT", "options": "TEXT",
          "seed": "INTEGER", "drop": "INTEGER", "ssnr": "REAL", "min_sinr": "REAL",
          "seconds": "REAL", "timing": "TEXT", "fallback": "INTEGER", "over_budget": "INTEGER",
          "error": "TEXT", "gamma_high": "REAL", "cached": "INTEGER", "sample": "INTEGER",
          "cell": "TEXT", "pd": "REAL", "angle_error_deg": "REAL", "position_error_m": "REAL"}
ALL = COLUMNS + EXTRA


class StoreError(ValueError):
    """The file is not a cfisac sweep store (or cannot be opened)."""


def _q(name: str) -> str:
    return f'"{name}"'


class ResultStore:
    """The SQLite table of one sweep (created when missing).

    Args:
        path: the database file (e.g. ``<run folder>/results.sqlite``).

    Raises:
        StoreError: ``path`` exists but is not a cfisac sweep store of this version.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        cols = ", ".join(f"{_q(c)} {_TYPES[c]}" for c in ALL)
        try:
            conn = open_versioned(self.path, FORMAT, VERSION,
                                  f"CREATE TABLE IF NOT EXISTS results ({cols}, "
                                  'PRIMARY KEY ("cell", "drop"))')
        except WrongFile as e:
            raise StoreError(f"{self.path} is not a cfisac sweep store of version {VERSION} "
                             f"({e}); choose another --out folder") from None
        self._conn, self._pid = conn, os.getpid()
        return conn

    def add(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert (or replace) ``rows`` (dicts with the keys of :data:`ALL`) in one transaction;
        returns how many."""
        if not rows:
            return 0
        conn = self._connect()
        marks = ", ".join("?" * len(ALL))
        values = [tuple(_sql(r.get(c)) for c in ALL) for r in rows]
        with transaction(conn):
            conn.executemany(f"INSERT OR REPLACE INTO results VALUES ({marks})", values)
        return len(rows)

    def finished(self, cell: str) -> set[int]:
        """Drops of ``cell`` stored as final: those that errored (or timed out) are not, so a
        rerun tries them again (and replaces their rows)."""
        cur = self._connect().execute(
            "SELECT \"drop\" FROM results WHERE cell = ? AND (error IS NULL OR error = '')",
            (cell,))
        return {int(d) for (d,) in cur}

    def rows(self, cells: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Stored rows (of ``cells`` only, when given), ordered by cell then drop; NaN where the
        store holds NULL for a real column."""
        conn = self._connect()
        cols = ", ".join(_q(c) for c in ALL)
        if cells is None:
            cur = conn.execute(f'SELECT {cols} FROM results ORDER BY cell, "drop"')
            raw = cur.fetchall()
        else:
            raw = []
            for cell in dict.fromkeys(cells):
                raw += conn.execute(f'SELECT {cols} FROM results WHERE cell = ? ORDER BY "drop"',
                                    (cell,)).fetchall()
        out = []
        for values in raw:
            row = dict(zip(ALL, values, strict=True))
            for c in ALL:
                if _TYPES[c] == "REAL" and row[c] is None:
                    row[c] = math.nan
            row["error"] = row["error"] or ""
            out.append(row)
        return out

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None


def _sql(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if hasattr(v, "item"):            # numpy scalars
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def cell_key(scenario: str, overrides: dict[str, Any], users: int, policy: str,
             options: dict[str, Any], seed: int, sample: int, code: str = "") -> str:
    """The JSON key that names one grid cell (stable: sorted keys). ``code``: a fingerprint of
    everything else the cell's numbers depend on (the policy's code and the libraries', the
    resolved scenario): rows stored under another fingerprint are not reused."""
    return json.dumps({"scenario": scenario, "set": overrides, "users": users, "policy": policy,
                       "options": options, "seed": seed, "sample": sample, "code": code},
                      sort_keys=True, default=str)
