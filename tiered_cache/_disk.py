"""The disk tier: envelopes in a diskcache (SQLite) store inside a verified private directory.

Process-safe and thread-safe (SQLite in WAL mode underneath). It stores envelopes and knows
nothing about time ("tiers are dumb"). Layout of the directory (mode 0700)::

    db/        the diskcache (SQLite) store: one row per key, named by SHA-256 of the key
    objects/   file-backed entries (S3 objects); see ``_objects``
    tmp/       downloads in flight; see ``_objects``
    locks/     64 lock stripes for cross-process single-flight; see ``_flight``

Every value is stored inline in SQLite, so a write is one transaction: a reader sees the old
envelope or the new one, never a mix. Nothing is ever unpickled by the store itself: rows that
diskcache would unpickle, or that point at its own value files, are refused and removed. The
schema is diskcache 5's; this module reads and writes its rows with its own SQL (one statement
per read, no per-call ``getpid``). ``_store`` opens the database with ``sqlite3`` alone and
makes it, when missing, with diskcache's own statements, settings and per-connection pragmas:
a cold start never imports diskcache nor runs its set-up (about 8-13 ms).

Guarded writes: ``put(..., guard)`` and ``commit_file(..., guard)`` read the key's current row
and write in one ``BEGIN IMMEDIATE`` transaction, so ``guard.allows(current)`` and the write
are atomic across every process of the machine.

The budget (DESIGN.md guarantee 5): after any write, everything under the directory (database,
WAL, -shm, value rows, objects, temp and lock files, the directories themselves) is within the
budget plus the largest single item. A write costs the same whatever the directory holds
(guarantee 11), because the total is never found by walking the tree:

- the database's three files and the five directories: 8 ``stat`` calls;
- object bytes: a running total kept *in the database*. Each object row carries its object's
  name (diskcache's ``tag`` column) and size (its ``size`` column), and diskcache's own triggers
  keep ``Settings.size`` equal to the sum of that column in the same transaction as every row
  change: exact across processes, evictions, deletes and clears, read with one primary-key
  lookup inside the write's transaction;
- temp files: a scan of ``tmp/``, which holds only downloads in flight;
- everything else (objects no row refers to, left by killed writers; rows of older versions
  that do not carry their size; anything foreign): ``untracked``, measured by a real walk of the
  tree, rarely: after the first 100 writes of a process and then every max(1000, 4 x files)
  writes (amortized, a fraction of a ``stat`` per write), and before evicting when untracked
  bytes were found but not re-measured for a while. Orphans found then are swept.

Eviction removes the least recently stored rows until the total is a little under the budget
(1/32 of it, at most 4 MiB, so a full cache does not evict on every write); each victim's
object is removed by the name in its row, never by scanning ``objects/``.

Faults: a lock timeout ("database is locked") is a miss or a skipped write. Any other error
(full disk, read-only or vanished directory, a corrupt database) disables the tier for
``retry_after`` seconds with one warning through ``logging``; a corrupt database is moved out
of the way and rebuilt. No disk exception ever reaches the caller.

Fork safety (guarantee 10): a fork waits until no thread is inside this tier's SQLite work
(see ``_connections``); in the child the tier forgets the parent's store and connections, never
using or closing them, takes new locks and thread-locals, and opens its own connection on first
use. If the fork could not wait for quiet (a thread stuck in SQLite for ``timeout`` + 1 s), the
child runs this tier as disabled (memory and origin) for ``retry_after`` seconds, with one
warning.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Iterator
from typing import IO, Any, Final

from . import _flight, _fork, _serial
from ._connections import Connection, Gate, keep_forever, pin_inherited
from ._entry import FLAG_FILE, Entry, Guard, decode, encode
from ._log import log
from ._objects import ORPHAN_AGE, ObjectStore, file_payload, object_fields, payload_name
from ._objects import valid_name as _valid_name
from ._store import Store
from .exceptions import UnsafeCacheDirectoryError

__all__ = [
    "DiskTier",
    "default_budget",
    "disk_key",
    "file_payload",
    "payload_name",
    "verify_directory",
]


GIB: Final = 2**30
_DB_FILES: Final = ("cache.db", "cache.db-wal", "cache.db-shm")
_WAL_CHECKPOINT_BYTES: Final = 4 * 2**20
_ORPHAN_AGE: Final = ORPHAN_AGE
_MODE_RAW: Final = 1  # diskcache's MODE_RAW: bytes stored as they are
_KEYS_REMEMBERED: Final = 4096  # disk names of recent keys (sha256 costs ~0.5 us)
_FIRST_RECONCILE: Final = 100  # writes of a process before its first walk of the tree
_RECONCILE_MIN: Final = 1000  # and at least this many writes between two walks

_GET: Final = "SELECT value, mode, filename FROM Cache WHERE key = ? AND raw = 1"
_ROW: Final = "SELECT rowid, value, mode, filename, tag FROM Cache WHERE key = ? AND raw = 1"
_INSERT: Final = (
    "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, tag, size,"
    " mode, filename, value) VALUES (?, 1, ?, NULL, ?, 0, ?, ?, 1, NULL, ?)"
)
_UPDATE: Final = (
    "UPDATE Cache SET store_time = ?, expire_time = NULL, access_time = ?, access_count = 0,"
    " tag = ?, size = ?, mode = 1, filename = NULL, value = ? WHERE rowid = ?"
)
_TOTAL: Final = "SELECT value FROM Settings WHERE key = 'size'"  # kept by diskcache's triggers


def disk_key(key: str) -> str:
    """The name a key has on disk: keys never become file or row names themselves."""
    return _flight.key_digest(key)


def verify_directory(path: str) -> None:
    """Make ``path`` with mode 0700, or check that an existing one is private to this user.

    Raises :class:`UnsafeCacheDirectoryError` for a symlink, a non-directory, a directory owned
    by another user or one writable by group or others.
    """
    parent = os.path.dirname(path)
    try:
        if parent:
            os.makedirs(parent, exist_ok=True)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UnsafeCacheDirectoryError(
            f"tiered-cache: cannot create the cache directory {path!r} ({exc}); set "
            "TIERED_CACHE_DIR (or directory=) to a writable place such as /tmp/tiered-cache"
        ) from exc
    try:
        info = os.lstat(path)
    except OSError as exc:  # a parent is a file (makedirs said "exists"), or it vanished
        raise UnsafeCacheDirectoryError(
            f"tiered-cache: cannot use the cache directory {path!r} ({exc}); set "
            "TIERED_CACHE_DIR (or directory=) to a writable place such as /tmp/tiered-cache"
        ) from exc
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symlink"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid != os.geteuid():
        problem = f"is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()})"
    elif info.st_mode & 0o022:
        problem = f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
    else:
        return
    raise UnsafeCacheDirectoryError(
        f"tiered-cache: refusing the cache directory {path!r}: it {problem}. Remove it so "
        "tiered-cache can create it with mode 0700, or point TIERED_CACHE_DIR (or directory=) "
        "at a directory that you own and that only you can write."
    )


def default_budget(path: str) -> int:
    """Half the file system holding ``path``, at most 1 GiB."""
    try:
        info = os.statvfs(path)
    except OSError:
        return 256 * 2**20
    return max(2**20, min(GIB, info.f_blocks * info.f_frsize // 2))


def _wall() -> float:
    """The wall clock object ages are measured with (read through this module's ``time``)."""
    return time.time()


# -- the tier --------------------------------------------------------------------------------------


class DiskTier:
    """Envelopes on disk for every process of this machine; see the module docstring.

    Every method is thread-safe and process-safe, and never raises for a fault of the disk
    (see the module docstring); ``temp_file`` alone raises ``OSError``, for the core to report.
    """

    name = "disk"
    remote = False

    def __init__(
        self,
        directory: str,
        budget: int | None = None,
        serializer: str = _serial.SAFE,
        timeout: float = 2.0,
        retry_after: float = 60.0,
    ) -> None:
        self.root = os.path.abspath(directory)
        verify_directory(self.root)
        self.budget = budget if budget is not None else default_budget(self.root)
        if self.budget < 1:
            raise ValueError("disk_bytes must be a positive number of bytes")
        self.serializer = serializer
        self.timeout = timeout
        self.retry_after = retry_after
        self.db_dir = os.path.join(self.root, "db")
        self.objects_dir = os.path.join(self.root, "objects")
        self.tmp_dir = os.path.join(self.root, "tmp")
        self.locks_dir = os.path.join(self.root, "locks")
        self.objects = ObjectStore(self.objects_dir, self.tmp_dir, _wall, self.budget)
        self._dirs = (self.root, self.db_dir, self.objects_dir, self.tmp_dir, self.locks_dir)
        self._db_paths = tuple(os.path.join(self.db_dir, name) for name in _DB_FILES)
        self._slack = min(self.budget // 32, 4 * 2**20)
        self._cache: Any = None
        self._open_lock = threading.Lock()
        self._threads = threading.local()  # each thread's Connection
        self._gate = Gate(timeout + 1.0)
        self._keys: dict[str, str] = {}  # key -> disk_key(key), for recent keys
        self._broken_until = 0.0
        self._warned = False
        self._fork_warning = False
        self._swept = False  # the objects directory was swept by this process (or its parent)
        self._writes = 0
        self._reconcile_at = _FIRST_RECONCILE  # self._writes when the tree is walked next
        self._reconciled_at = 0
        self._untracked = 0  # bytes the running total does not know, as of the last walk
        self.errors = 0
        self.timeouts = 0
        self.corrupt = 0
        self.evictions = 0
        _fork.after_fork_in_child(self._after_fork)

    # -- health ---------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while the tier is disabled after a fault."""
        return self._broken_until == 0.0 or time.monotonic() >= self._broken_until

    def _down(self) -> bool:
        """``not available``, for the calls that found a fault recorded (the slow branch)."""
        if self._fork_warning:  # said here: logging is not safe to use inside a fork hook
            self._fork_warning = False
            log.warning(
                "tiered-cache: the disk tier at %s was busy when this process was forked; "
                "it runs from memory and the origin for %g s",
                self.root,
                self.retry_after,
            )
        return not self.available

    def stats(self) -> dict[str, int]:
        """The tier's fault and eviction counters (approximate under heavy threading)."""
        return {
            "disk_errors": self.errors,
            "disk_corrupt": self.corrupt,
            "disk_lock_timeouts": self.timeouts,
            "disk_evictions": self.evictions,
        }

    def _fault(self, exc: BaseException) -> None:
        """Account for a disk exception; never re-raises it."""
        import sqlite3  # (sqlite3 loads with the store: not at import)

        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            self.timeouts += 1
            return
        self.errors += 1
        corrupt = isinstance(exc, sqlite3.DatabaseError) and not isinstance(
            exc, sqlite3.OperationalError
        )
        self._close()
        if corrupt:
            self._remove_database()
        else:
            self._broken_until = time.monotonic() + self.retry_after
        if not self._warned:
            self._warned = True
            action = (
                "moved the corrupt database aside and will rebuild it"
                if corrupt
                else f"serving from memory and the origin; retrying the disk in "
                f"{self.retry_after:g} s"
            )
            log.warning(
                "tiered-cache: the disk tier at %s failed (%s: %s); %s",
                self.root,
                type(exc).__name__,
                exc,
                action,
            )
        else:
            log.debug("tiered-cache: disk tier fault: %r", exc)

    def _remove_database(self) -> None:
        for path in self._db_paths:
            with contextlib.suppress(OSError):
                os.remove(path)

    def close(self) -> None:
        """Close the calling thread's database connection (other threads' close as their
        threads end); the entries stay, and the next use opens the store again."""
        self._close()

    def _close(self) -> None:
        """Close this thread's connection and forget the store (reopened on next use)."""
        cache, self._cache = self._cache, None
        if cache is not None:
            with contextlib.suppress(Exception):
                cache.close()

    # -- the store and its connections ----------------------------------------------------------

    def _db(self) -> Any:
        """The diskcache store (opened on first use), with this thread's connection ready."""
        cache = self._cache
        if cache is None:
            with self._open_lock:
                if self._cache is None:
                    self._cache = self._open()
                cache = self._cache
        conn = getattr(self._threads, "conn", None)
        if conn is None or conn.cache is not cache:
            self._threads.conn = Connection(cache, cache._con, self._gate)
        return cache

    def _conn(self) -> Connection:
        """This thread's connection to the open store (opening either on first use)."""
        conn: Connection | None = getattr(self._threads, "conn", None)
        if conn is not None and conn.cache is self._cache:
            return conn
        self._db()
        made: Connection = self._threads.conn
        return made

    def _open(self) -> Any:
        import sqlite3

        for sub in self._dirs:
            verify_directory(sub)  # a planted symlink here would lead sweeps and writes outside
        try:
            cache = Store(self.db_dir, self.timeout)  # diskcache's schema, without diskcache
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise
            log.warning(
                "tiered-cache: the cache database in %s is corrupt (%s); rebuilding it",
                self.db_dir,
                exc,
            )
            self.corrupt += 1
            self._warned = True
            self._remove_database()
            cache = Store(self.db_dir, self.timeout)
        if not self._swept:
            self._swept = True
            self._sweep(cache)  # self._cache is not set yet: pass the store the sweep must ask
        return cache

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Hold off forks (see ``_Gate``) for a block of SQLite work."""
        gate = self._gate
        gate.active.append(None)
        try:
            if gate.closed:
                gate.wait()
            yield
        finally:
            gate.active.pop()

    def _disk_key(self, key: str) -> str:
        dkey = self._keys.get(key)
        if dkey is None:
            if len(self._keys) >= _KEYS_REMEMBERED:
                self._keys.clear()
            dkey = self._keys[key] = disk_key(key)
        return dkey

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's store and connections, never closing them."""
        quiet = self._gate.quiet
        conn = getattr(self._threads, "conn", None)
        if conn is not None:
            keep_forever(conn.con)
            keep_forever(self._threads)
        if self._cache is not None:
            keep_forever(self._cache)
        pin_inherited()
        self._cache = None
        self._threads = threading.local()
        self._open_lock = threading.Lock()
        self._gate = Gate(self.timeout + 1.0)
        self._writes = 0
        self._reconcile_at = self._reconciled_at = 0
        if not quiet:  # a thread was inside SQLite at the fork: its state came along half done
            self._broken_until = time.monotonic() + self.retry_after
            self._fork_warning = True

    # -- envelopes --------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The stored entry for ``key`` (fresh or not; a tombstone is one), or None (missing,
        damaged, refused or tier down)."""
        if self._broken_until and self._down():
            return None
        dkey = self._keys.get(key) or self._disk_key(key)
        gate = self._gate
        gate.active.append(None)
        try:
            if gate.closed:
                gate.wait()
            conn = getattr(self._threads, "conn", None)
            if conn is None or conn.cache is not self._cache:
                conn = self._conn()
            row = conn.cursor.execute(_GET, (dkey,)).fetchone()
        except Exception as exc:
            self._fault(exc)
            return None
        finally:
            gate.active.pop()
        if row is None:
            return None
        value, mode, filename = row
        try:
            if mode != _MODE_RAW or filename is not None or type(value) is not bytes:
                raise ValueError("a row this store did not write")
            entry = decode(key, value, self.serializer)
            if entry.flags & FLAG_FILE:
                entry = self.objects.resolve(entry)
        except ValueError:
            self.corrupt += 1
            self._drop(dkey, value)
            return None
        return entry

    def set(self, key: str, entry: Entry, payload: bytes, flags: int) -> bool:
        """Store an envelope; False when it was not written (the old name of :meth:`put`)."""
        entry.flags = flags
        written, _ = self._write(key, entry, payload, None, None)
        return written

    def put(
        self,
        key: str,
        entry: Entry,
        payload: bytes | None,
        lifetime: float = 0.0,
        guard: Guard | None = None,
    ) -> Entry | None:
        """Store ``entry`` (its flags say pickle, file or tombstone) with ``payload``.

        With ``guard``, atomically (one SQLite transaction, across processes): write only if
        ``guard.allows(current)`` (an undecodable current row counts as None); otherwise
        write nothing and return the standing entry (a file entry resolved to its path, as
        :meth:`get` gives it). None when written, and when the write was skipped (too large for
        the budget, or a fault: counted, never raised). ``lifetime`` is not used: rows leave by
        the budget, never by time.
        """
        _, standing = self._write(key, entry, payload or b"", guard, None)
        return standing

    def _write(
        self,
        key: str,
        entry: Entry,
        payload: bytes,
        guard: Guard | None,
        obj: tuple[str, int] | None,
    ) -> tuple[bool, Entry | None]:
        """(written, the standing entry a guard kept). ``obj``: (name, size) of its object."""
        if self._broken_until and self._down():
            return False, None
        dkey = self._keys.get(key) or self._disk_key(key)
        data = encode(key, entry, payload, entry.flags)
        if obj is None and entry.flags & FLAG_FILE:
            obj = object_fields(payload)
        name, size = obj if obj is not None else (None, 0)
        too_big = len(data) + size > self.budget
        standing: Entry | None = None
        written = False
        with self._quiet():
            try:
                conn = self._conn()
                con = conn.con
                cur = conn.cursor
                cur.execute("BEGIN IMMEDIATE")
                try:
                    row = cur.execute(_ROW, (dkey,)).fetchone()
                    current = self._row_entry(key, row) if guard is not None else None
                    if guard is not None and not guard.allows(current):
                        standing = current
                        row = None
                    elif too_big:
                        if row is not None:
                            cur.execute("DELETE FROM Cache WHERE rowid = ?", (row[0],))
                    else:
                        now = time.time()
                        if row is None:
                            cur.execute(_INSERT, (dkey, now, now, name, size, data))
                        else:
                            cur.execute(_UPDATE, (now, now, name, size, data, row[0]))
                        written = True
                    objects_total = cur.execute(_TOTAL).fetchone()
                    cur.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        cur.execute("ROLLBACK")
                    raise
            except Exception as exc:
                self._fault(exc)
                return False, None
            if row is not None:
                self._remove_old_object(key, row, name)
            if written:
                self._writes += 1
                try:
                    self._enforce_budget(con, objects_total[0] if objects_total else 0)
                except Exception as exc:  # the row is written; only the budget check failed
                    self._fault(exc)
        if standing is not None and standing.flags & FLAG_FILE:
            try:
                standing = self.objects.resolve(standing)
            except ValueError:
                standing = None
        return written, standing

    def _row_entry(self, key: str, row: Any) -> Entry | None:
        """The entry a row read by ``_ROW`` holds; None for none, or a damaged or refused one."""
        if row is None:
            return None
        _, value, mode, filename, _ = row
        if mode != _MODE_RAW or filename is not None or type(value) is not bytes:
            return None
        try:
            return decode(key, value, self.serializer)
        except ValueError:
            return None

    def _remove_old_object(self, key: str, row: Any, keep: str | None) -> None:
        """Remove the object of a replaced or deleted row, unless it is ``keep``."""
        _, value, _, _, tag = row
        name = tag if _valid_name(tag) else None
        if name is None and type(value) is bytes and len(value) > 3 and value[3] & FLAG_FILE:
            with contextlib.suppress(ValueError):  # a row of an older version: no tag
                reference = decode(key, value, _serial.SAFE).value
                if type(reference) is list and reference and _valid_name(reference[0]):
                    name = reference[0]
        if name is not None and name != keep:
            self.objects.remove(name)

    def delete(self, key: str, tombstone: Entry | None = None) -> bool:
        """Remove ``key``; with ``tombstone``, leave it in the key's place (unconditionally), so
        that a load begun earlier cannot write over the delete. True if a live (non-tombstone)
        entry was there; without a tombstone, True if any row was. Its object is removed.
        """
        if self._broken_until and self._down():
            return False
        dkey = self._disk_key(key)
        with self._quiet():
            try:
                conn = self._conn()
                cur = conn.cursor
                cur.execute("BEGIN IMMEDIATE")
                try:
                    row = cur.execute(_ROW, (dkey,)).fetchone()
                    if tombstone is not None:
                        data = encode(key, tombstone, b"", tombstone.flags)
                        now = time.time()
                        if row is None:
                            cur.execute(_INSERT, (dkey, now, now, None, 0, data))
                        else:
                            cur.execute(_UPDATE, (now, now, None, 0, data, row[0]))
                    elif row is not None:
                        cur.execute("DELETE FROM Cache WHERE rowid = ?", (row[0],))
                    objects_total = cur.execute(_TOTAL).fetchone()
                    cur.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        cur.execute("ROLLBACK")
                    raise
            except Exception as exc:
                self._fault(exc)
                return False
            found = False
            if row is not None:
                if tombstone is None:
                    found = True
                else:
                    current = self._row_entry(key, row)
                    found = current is not None and not current.is_tombstone
                self._remove_old_object(key, row, None)
            if tombstone is not None:
                self._writes += 1
                try:
                    self._enforce_budget(conn.con, objects_total[0] if objects_total else 0)
                except Exception as exc:
                    self._fault(exc)
        return found

    def clear(self) -> None:
        """Remove every row and every object (downloads in flight finish and commit)."""
        if self._broken_until and self._down():
            return
        with self._quiet():
            try:
                cur = self._conn().cursor
                cur.execute("BEGIN IMMEDIATE")
                try:
                    cur.execute("DELETE FROM Cache")
                    cur.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        cur.execute("ROLLBACK")
                    raise
            except Exception as exc:
                self._fault(exc)
                return
        self.objects.remove_prefix("")
        self._untracked = 0  # measured again at the next walk

    def _drop(self, dkey: str, value: Any) -> None:
        """Remove a damaged or refused row (if it is still the one read) and its object."""
        with self._quiet(), contextlib.suppress(Exception):
            cur = self._conn().cursor
            row = cur.execute("SELECT tag FROM Cache WHERE key = ? AND raw = 1", (dkey,)).fetchone()
            cur.execute("DELETE FROM Cache WHERE key = ? AND raw = 1 AND value IS ?", (dkey, value))
            if row is not None and _valid_name(row[0]):
                self.objects.remove(row[0])
            else:
                self.objects.remove_prefix(dkey)

    # -- the cross-process lock ------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, key: str, wait: float) -> Iterator[bool]:
        """The cross-process single-flight lock of ``key`` (one of the file-lock stripes), held
        for the block; yields False on timeout or any error."""
        if self._cache is None:
            try:
                with self._quiet():
                    self._db()  # makes the locks directory
            except Exception as exc:
                self._fault(exc)
                yield False
                return
        with _flight.file_lock(self.locks_dir, key, wait) as locked:
            yield locked

    # -- file-backed entries ------------------------------------------------------------------

    def temp_file(self) -> tuple[str, IO[bytes]]:
        """A new private file in ``tmp/``, locked until it is closed (see ``_objects``).

        Raises ``OSError`` (or the store's own error) when the disk cannot take one.
        """
        with self._quiet():
            self._db()  # makes the directories
        return self.objects.temp_file()

    def commit_file(
        self, key: str, temp_path: str, entry: Entry, guard: Guard | None = None
    ) -> Entry | None:
        """Move a finished temp file into ``objects/`` and store its envelope atomically.

        Returns the entry with the file's absolute path as its value. With ``guard``, as
        :meth:`put`: when a newer entry stands, the new file is removed and that entry is
        returned instead (resolved to its path if it is a file entry; it may be a tombstone).
        None when the disk refused it (the temp file is removed either way).
        """
        dkey = self._disk_key(key)
        try:
            final, payload, size = self.objects.place(dkey, temp_path)
        except OSError as exc:
            self._fault(exc)
            return None
        entry.flags = FLAG_FILE
        name = os.path.basename(final)
        written, standing = self._write(key, entry, payload, guard, (name, size))
        if not written:
            self.objects.remove(name)
            return standing
        result = entry.replace_value(final, FLAG_FILE)
        result.size = len(final)
        return result

    # -- budget and sweeping --------------------------------------------------------------------

    def usage(self) -> int:
        """Bytes under the cache directory, by a real walk: database, WAL, objects, temp and
        lock files, and the directories. O(files): writes use the running total instead."""
        return _tree_bytes(self.root)[0]

    def _estimate(self, objects_total: int) -> tuple[int, int]:
        """(bytes under the directory by the running total, bytes of the WAL): O(1) calls."""
        used = objects_total + self._untracked + self.objects.temp_bytes()
        wal = 0
        for path in self._db_paths:
            with contextlib.suppress(OSError):
                size = os.stat(path).st_size
                used += size
                if path is self._db_paths[1]:
                    wal = size
        for path in self._dirs:  # raises if the directory vanished: a fault, as it should be
            used += os.lstat(path).st_size
        return used, wal

    def _enforce_budget(self, con: Any, objects_total: int) -> None:
        """Keep the directory within the budget after a write (see the module docstring)."""
        if self._writes >= self._reconcile_at:
            self._reconcile(con)
            objects_total = _total(con)
        used, wal = self._estimate(objects_total)
        if used <= self.budget and wal < _WAL_CHECKPOINT_BYTES:
            return
        _checkpoint_con(con)
        used, _ = self._estimate(objects_total)
        if used <= self.budget:
            return
        if self._untracked and self._writes - self._reconciled_at >= 64:
            self._reconcile(con)  # the untracked bytes may be gone (swept): measure them again
            objects_total = _total(con)
            used, _ = self._estimate(objects_total)
        for _ in range(4):  # freed row bytes are an estimate: re-measure after each round
            excess = used - (self.budget - self._slack)
            if excess <= 0 or not self._evict(con, excess):
                return
            _checkpoint_con(con)
            objects_total = _total(con)
            used, _ = self._estimate(objects_total)
            if used <= self.budget:
                return

    def _evict(self, con: Any, excess: int) -> bool:
        """Remove the least recently stored rows holding at least ``excess`` bytes, and their
        objects (by the names in the rows). False if there was nothing to remove."""
        victims: list[tuple[int, Any, Any, Any]] = []
        con.execute("BEGIN IMMEDIATE")
        try:
            freed = 0
            rows = con.execute(
                "SELECT rowid, key, length(value), size, tag, substr(value, 4, 1) FROM Cache"
                " ORDER BY store_time"
            )
            for rowid, dkey, length, size, tag, flags in rows:
                victims.append((rowid, dkey, tag, flags))
                freed += (length or 0) + (size or 0) + 100  # a row's own overhead, roughly
                if freed >= excess:
                    break
            rows.close()
            for start in range(0, len(victims), 500):
                batch = [v[0] for v in victims[start : start + 500]]
                marks = ",".join("?" * len(batch))  # placeholders only: no value is formatted in
                con.execute(f"DELETE FROM Cache WHERE rowid IN ({marks})", batch)  # noqa: S608
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            raise
        for _, dkey, tag, flags in victims:
            if _valid_name(tag):
                self.objects.remove(tag)
            elif type(flags) is bytes and flags and flags[0] & FLAG_FILE and type(dkey) is str:
                self.objects.remove_prefix(dkey)  # a file row of an older version: no tag
        self.evictions += len(victims)
        return bool(victims)

    def _reconcile(self, con: Any) -> None:
        """Walk the tree once: what the running total does not know becomes ``_untracked``;
        orphaned objects found are swept."""
        self._reconciled_at = self._writes
        walked, files = _tree_bytes(self.root)
        self._reconcile_at = self._writes + max(_RECONCILE_MIN, 4 * files)
        self._untracked = 0
        tracked, _ = self._estimate(_total(con))
        untracked = max(0, walked - tracked)
        if untracked:
            tags = {row[0] for row in con.execute("SELECT tag FROM Cache WHERE tag IS NOT NULL")}
            untracked -= self.objects.sweep(lambda name: name in tags or self._named(con, name))
        self._untracked = max(0, untracked)

    @staticmethod
    def _named(con: Any, name: str) -> bool:
        """True if the row of the object's key refers to ``name`` (or cannot be read)."""
        try:
            row = con.execute(
                "SELECT value FROM Cache WHERE key = ? AND raw = 1", (name.split("-", 1)[0],)
            ).fetchone()
        except Exception:  # cannot tell: keep it
            return True
        return row is not None and type(row[0]) is bytes and name.encode() in row[0]

    @staticmethod
    def _checkpoint(cache: Any) -> None:
        _checkpoint_con(cache._con)

    def _sweep(self, cache: Any) -> None:
        """Remove temp files whose writer is gone and objects no row of ``cache`` refers to."""
        try:
            tags = {row[0] for row in cache._sql("SELECT tag FROM Cache WHERE tag IS NOT NULL")}
        except Exception:  # then every name is looked up
            tags = set()
        self.objects.sweep(lambda name: name in tags or self._referenced(cache, name))

    @staticmethod
    def _referenced(cache: Any, name: str) -> bool:
        dkey = name.split("-", 1)[0]
        try:
            row = cache._sql(_GET, (dkey,)).fetchone()
        except Exception:
            return True  # cannot tell: keep it
        if row is None:
            return False
        data, mode, filename = row
        if mode != _MODE_RAW or filename is not None or type(data) is not bytes:
            return True  # a row this store did not write: cannot tell, keep it
        return name.encode() in data


def _total(con: Any) -> int:
    row = con.execute(_TOTAL).fetchone()
    return int(row[0]) if row and row[0] else 0


#: How long a checkpoint retries while another connection checkpoints (seconds).
_CHECKPOINT_RETRY: Final = 0.05


def _checkpoint_con(con: Any) -> None:
    """Copy the WAL into the database and truncate it. SQLite answers "busy" at once, without
    calling the busy handler, while another process runs a checkpoint of its own; so retry for
    a few ms: giving up there let two writing processes leave the WAL at several times the
    budget (tests/reliability/test_budget.py, two processes under load)."""
    import sqlite3

    until = time.monotonic() + _CHECKPOINT_RETRY
    with contextlib.suppress(sqlite3.Error):
        while True:
            busy = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy or not busy[0] or time.monotonic() >= until:
                return
            time.sleep(0.001)  # the other checkpoint is copying pages: a ms or two


def _tree_bytes(root: str) -> tuple[int, int]:
    """(bytes, files) under ``root``, the directories' own sizes included."""
    total = 0
    files = 0
    stack = [root]
    while stack:
        with contextlib.suppress(FileNotFoundError), os.scandir(stack.pop()) as it:
            for item in it:
                with contextlib.suppress(FileNotFoundError):
                    if item.is_dir(follow_symlinks=False):
                        stack.append(item.path)
                    else:
                        files += 1
                    total += item.stat(follow_symlinks=False).st_size
    return total + os.lstat(root).st_size, files
