"""The disk tier's SQLite database, opened with ``sqlite3`` alone: diskcache 5's schema, made
the way ``diskcache.Cache`` makes it, without importing diskcache or running its set-up.

``diskcache.Cache(...)`` costs a cold start about 4 ms to import and 4-9 ms to open (two
connections and some 75 statements, each its own transaction, even when the database exists).
The disk tier reads and writes rows with its own SQL, so it needs only the database: this
module opens it with one connection, sets the per-connection pragmas ``diskcache`` would set
for the tier's settings, and, when the schema is missing or incomplete, makes it in one
``BEGIN IMMEDIATE`` transaction of ``IF NOT EXISTS``/``OR IGNORE`` statements, the very
statements and settings rows ``diskcache.Cache(directory, **SETTINGS)`` writes. Any number of
processes may open a new database at once: the first to take the write lock makes the schema,
the others find it made. The database stays a valid diskcache store that ``diskcache.Cache``
opens as its own (tests check that both make the same schema and settings). A database this
process may be the one to make is made with ``synchronous=OFF`` until its schema is in (see
``Store.__init__``); rows are always written with ``synchronous=1`` (NORMAL, in WAL mode).

Thread-safe: one connection per thread (the disk tier wraps each in a ``_connections``
``Connection``). Not fork-aware by itself: after a fork the disk tier forgets the whole store
and opens a new one, never using or closing the parent's connections. Errors are SQLite's own
(``sqlite3.DatabaseError`` for a file that is not a database, ``OperationalError`` for a lock
or I/O failure), for the disk tier to handle.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Final

__all__ = ["DBNAME", "SETTINGS", "Store"]

DBNAME: Final = "cache.db"

#: The disk tier's diskcache settings (what ``_disk`` asked ``diskcache.Cache`` for).
SETTINGS: Final[dict[str, Any]] = {
    "disk_min_file_size": 2**62,  # every value inline: one transaction per write
    "eviction_policy": "least-recently-stored",
    "size_limit": 2**62,  # the budget is enforced by the disk tier, counting every file
    "cull_limit": 0,
    "sqlite_journal_size_limit": 2**20,
    "sqlite_mmap_size": 0,  # a file truncated under a mapping would kill the process
}

# diskcache 5's DEFAULT_SETTINGS, updated with SETTINGS, then its METADATA counters.
_ROWS: Final[tuple[tuple[str, Any], ...]] = tuple(
    {
        "statistics": 0,
        "tag_index": 0,
        "eviction_policy": "least-recently-stored",
        "size_limit": 2**30,
        "cull_limit": 10,
        "sqlite_auto_vacuum": 1,
        "sqlite_cache_size": 2**13,
        "sqlite_journal_mode": "wal",
        "sqlite_mmap_size": 2**26,
        "sqlite_synchronous": 1,
        "disk_min_file_size": 2**15,
        "disk_pickle_protocol": 5,
        **SETTINGS,
    }.items()
)
_METADATA: Final = (("count", 0), ("size", 0), ("hits", 0), ("misses", 0))

#: Per connection, as ``diskcache`` sets the ``sqlite_*`` settings on each of its connections.
_PRAGMAS: Final = tuple(
    f"PRAGMA {key[len('sqlite_') :]} = {value}"
    for key, value in sorted(_ROWS)
    if key.startswith("sqlite_")  # auto_vacuum first: it takes effect only before any table
)
_SYNCHRONOUS: Final = next(p for p in _PRAGMAS if p.startswith("PRAGMA synchronous ="))
#: A thread's further connections: auto_vacuum and journal_mode belong to the database (set
#: by the store's first connection), the others to each connection.
_PER_CONNECTION: Final = tuple(
    p for p in _PRAGMAS if not p.startswith(("PRAGMA auto_vacuum", "PRAGMA journal_mode"))
)
#: Making a new database: no fsync until the schema is in (then ``_SYNCHRONOUS``).
_MAKING: Final = ("PRAGMA synchronous = 0", *(p for p in _PRAGMAS if p != _SYNCHRONOUS))

# diskcache 5.6's statements, verbatim (so the sqlite_master text is the same either way).
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS Settings ( key TEXT NOT NULL UNIQUE, value)",
    "CREATE TABLE IF NOT EXISTS Cache ( rowid INTEGER PRIMARY KEY, key BLOB, raw INTEGER,"
    " store_time REAL, expire_time REAL, access_time REAL, access_count INTEGER DEFAULT 0,"
    " tag BLOB, size INTEGER DEFAULT 0, mode INTEGER DEFAULT 0, filename TEXT, value BLOB)",
    "CREATE UNIQUE INDEX IF NOT EXISTS Cache_key_raw ON Cache(key, raw)",
    "CREATE INDEX IF NOT EXISTS Cache_expire_time ON Cache (expire_time)",
    "CREATE INDEX IF NOT EXISTS Cache_store_time ON Cache (store_time)",
    "CREATE TRIGGER IF NOT EXISTS Settings_count_insert AFTER INSERT ON Cache FOR EACH ROW BEGIN"
    ' UPDATE Settings SET value = value + 1 WHERE key = "count"; END',
    "CREATE TRIGGER IF NOT EXISTS Settings_count_delete AFTER DELETE ON Cache FOR EACH ROW BEGIN"
    ' UPDATE Settings SET value = value - 1 WHERE key = "count"; END',
    "CREATE TRIGGER IF NOT EXISTS Settings_size_insert AFTER INSERT ON Cache FOR EACH ROW BEGIN"
    ' UPDATE Settings SET value = value + NEW.size WHERE key = "size"; END',
    "CREATE TRIGGER IF NOT EXISTS Settings_size_update AFTER UPDATE ON Cache FOR EACH ROW BEGIN"
    ' UPDATE Settings SET value = value + NEW.size - OLD.size WHERE key = "size"; END',
    "CREATE TRIGGER IF NOT EXISTS Settings_size_delete AFTER DELETE ON Cache FOR EACH ROW BEGIN"
    ' UPDATE Settings SET value = value - OLD.size WHERE key = "size"; END',
    "DROP INDEX IF EXISTS Cache_tag_rowid",  # tag_index = 0
)
_NAMES: Final = (
    "Settings",
    "Cache",
    "Cache_key_raw",
    "Cache_expire_time",
    "Cache_store_time",
    "Settings_count_insert",
    "Settings_count_delete",
    "Settings_size_insert",
    "Settings_size_update",
    "Settings_size_delete",
)
_MADE: Final = (  # placeholders only: no name is formatted in
    f"SELECT count(*) FROM sqlite_master WHERE name IN ({', '.join('?' * len(_NAMES))})"  # noqa: S608
    " AND (SELECT count(*) FROM Settings WHERE key IN ('count', 'size')) = 2"
)


class Store:
    """The database under ``directory`` (made when missing), one connection per thread."""

    def __init__(self, directory: str, timeout: float) -> None:
        self.directory = directory
        self.path = os.path.join(directory, DBNAME)
        self.timeout = timeout
        self._local = threading.local()
        # A database this call may be the one to make starts with synchronous=OFF: SQLite then
        # makes the file, switches it to WAL and writes the schema without the half dozen
        # fsyncs of a rollback-journal start (most of a cold start's disk time, and seconds on
        # a busy disk). Nothing is at stake: an empty store, safe across a killed process
        # (the page cache keeps what was written); only an OS crash could damage it, and a
        # damaged store is moved aside and made again. Rows are written with synchronous=1.
        fresh = not os.path.exists(self.path)
        con = self._connect(_MAKING if fresh else _PRAGMAS)
        try:
            self._make_schema(con)
            if fresh:
                _retry(lambda: con.execute(_SYNCHRONOUS).fetchall(), timeout)
        except BaseException:
            self.close()
            raise

    @property
    def _con(self) -> Any:
        """This thread's connection (opened on first use, with the tier's pragmas)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._connect(_PER_CONNECTION)
        return con

    def _connect(self, pragmas: tuple[str, ...]) -> Any:
        import sqlite3

        con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            for pragma in pragmas:
                _retry(lambda p=pragma: con.execute(p).fetchall(), self.timeout)
        except BaseException:
            con.close()
            raise
        self._local.con = con
        return con

    @property
    def _sql(self) -> Any:
        """``execute`` of this thread's connection (as ``diskcache.Cache._sql``)."""
        return self._con.execute

    def close(self) -> None:
        """Close this thread's connection (others stay open), as ``diskcache.Cache.close``."""
        con = getattr(self._local, "con", None)
        if con is not None:
            del self._local.con
            con.close()

    def _make_schema(self, con: Any) -> None:
        import sqlite3

        try:
            (found,) = con.execute(_MADE, _NAMES).fetchone()
            if found == len(_NAMES):
                return
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
        _retry(lambda: con.execute("BEGIN IMMEDIATE"), self.timeout)
        try:
            for statement in _SCHEMA:
                con.execute(statement)
            con.executemany("INSERT OR IGNORE INTO Settings VALUES (?, ?)", _ROWS + _METADATA)
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise


def _retry(statement: Any, timeout: float) -> Any:
    """``statement()``, retried while SQLite says "database is locked", for up to ``timeout``
    seconds (some SQLite builds return SQLITE_BUSY before the busy timeout: diskcache retries
    its set-up statements the same way)."""
    import sqlite3

    until = time.monotonic() + timeout
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= until:
                raise
            time.sleep(0.001)
