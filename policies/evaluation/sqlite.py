"""Opening a versioned SQLite file that many processes share (the decision cache, the store).

One file per purpose, stdlib ``sqlite3``: write-ahead log, a 60 s busy timeout, autocommit (the
callers open their own transactions), and a ``meta`` table naming the file's format and version
so that a foreign or outdated file is refused instead of trusted.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class WrongFile(Exception):
    """The file is not a SQLite file of the expected format and version (message: why)."""


def open_versioned(path: Path, fmt: str, version: str, create_sql: str) -> sqlite3.Connection:
    """Connect to ``path``, creating it with ``create_sql`` (the data table) when new or empty.

    Args:
        path: the SQLite file.
        fmt, version: what the ``meta`` table must say.
        create_sql: ``CREATE TABLE IF NOT EXISTS ...`` of the data table.

    Raises:
        WrongFile: not SQLite, or another format or version.
    """
    fresh = not path.exists() or path.stat().st_size == 0
    try:
        conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 60000")
        if fresh:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute(create_sql)
            conn.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                             [("format", fmt), ("version", version)])
            conn.execute("COMMIT")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as e:
        raise WrongFile(str(e)) from None
    if meta.get("format") != fmt or meta.get("version") != version:
        conn.close()
        raise WrongFile(f"format {meta.get('format')!r}, version {meta.get('version')!r}; "
                        f"expected {fmt!r} version {version}")
    return conn
