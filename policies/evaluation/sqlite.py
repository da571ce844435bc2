"""Opening a versioned SQLite file that many processes share (the decision cache, the store).

One file per purpose, stdlib ``sqlite3``: write-ahead log, a 60 s busy timeout, autocommit (the
callers open their own transactions), and a ``meta`` table naming the file's format and version
so that a foreign or outdated file is refused instead of trusted. :func:`transaction` is the
one way both write: ``with transaction(conn): conn.executemany(...)``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cfisac_env.runs import write_failure


class WrongFile(Exception):
    """The file is not a SQLite file of the expected format and version (message: why)."""


def open_versioned(path: Path, fmt: str, version: str, create_sql: str,
                   replaces: dict[str, str] | None = None) -> sqlite3.Connection:
    """Connect to ``path``, creating it with ``create_sql`` (the data table) when new or empty.

    Args:
        path: the SQLite file.
        fmt, version: what the ``meta`` table must say.
        create_sql: ``CREATE TABLE IF NOT EXISTS ...`` of the data table.
        replaces: ``{older version: SQL}`` of this format that may be upgraded in place: the SQL
            (e.g. ``DROP TABLE ...``) runs, then ``create_sql``, and the file says ``version``.

    Raises:
        WrongFile: not SQLite, or another format or version.
    """
    fresh = not path.exists() or path.stat().st_size == 0
    try:
        conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 60000")
        if fresh:
            conn.execute("PRAGMA journal_mode = WAL")
            with transaction(conn):
                conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                conn.execute(create_sql)
                conn.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                                 [("format", fmt), ("version", version)])
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        old = (replaces or {}).get(meta.get("version", "")) if meta.get("format") == fmt else None
        if old is not None:
            with transaction(conn):
                for stmt in filter(str.strip, old.split(";")):
                    conn.execute(stmt)
                conn.execute(create_sql)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'version'", (version,))
            meta["version"] = version
    except sqlite3.DatabaseError as e:
        why = write_failure(e, path)               # the OS refused the write: not a wrong file
        if why is not None:
            raise ValueError(why) from None
        raise WrongFile(str(e)) from None
    if meta.get("format") != fmt or meta.get("version") != version:
        conn.close()
        raise WrongFile(f"format {meta.get('format')!r}, version {meta.get('version')!r}; "
                        f"expected {fmt!r} version {version}")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if the body (or the commit) fails.

    The original exception always propagates: a rollback that is impossible because no
    transaction is open any more (the commit went through just before a Ctrl-C, or SQLite
    already rolled back after a disk error) is skipped and never hides it.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass   # the original error is the one to report
        raise
