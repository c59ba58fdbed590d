"""The disk tier: envelopes in a diskcache store inside a verified private directory.

Process-safe and thread-safe (SQLite in WAL mode underneath). It stores envelopes and knows
nothing about time. Layout of the directory (mode 0700)::

    db/        the diskcache (SQLite) store: one row per key, named by SHA-256 of the key
    objects/   file-backed entries (S3 objects), named ``<sha256(key)>-<random>.obj``
    tmp/       downloads in flight, each held under an flock while it is written
    locks/     64 lock stripes for cross-process single-flight

Every value is stored inline in SQLite, so a write is one transaction: a reader sees the old
envelope or the new one, never a mix. Nothing is ever unpickled by the store itself: rows that
diskcache would unpickle, or that point at files, are refused and removed.

Faults: a lock timeout ("database is locked") is a miss or a skipped write. Any other error
(full disk, read-only or vanished directory, a corrupt database) disables the tier for
``retry_after`` seconds with one warning through ``logging``; a corrupt database is moved out
of the way and rebuilt. No disk exception ever reaches the caller.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from typing import IO, Any, Final

from . import _flight, _serial
from ._entry import FLAG_FILE, Entry, Guard, decode, encode
from ._log import log
from .exceptions import UnsafeCacheDirectoryError

__all__ = ["DiskTier", "default_budget", "disk_key", "verify_directory"]


GIB: Final = 2**30
_DB_FILES: Final = ("cache.db", "cache.db-wal", "cache.db-shm")
_WAL_CHECKPOINT_BYTES: Final = 4 * 2**20
_ORPHAN_AGE: Final = 60.0


def disk_key(key: str) -> str:
    """The name a key has on disk: keys never become file or row names themselves."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


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


def _safe_disk_class() -> type[Any]:
    """A diskcache ``Disk`` that stores bytes inline and never unpickles or follows a file."""
    import diskcache

    class SafeDisk(diskcache.Disk):  # type: ignore[misc]
        def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
            if mode != diskcache.core.MODE_RAW or filename is not None:
                raise _RefusedRowError(mode)
            return bytes(value) if isinstance(value, sqlite3.Binary) else value

    return SafeDisk


class _ConnectionCloser:
    """Closes a thread's diskcache connection explicitly when the thread ends.

    diskcache keeps one SQLite connection per thread and leaves it to be garbage collected
    when the thread dies; SQLite then keeps its file descriptor open while other connections
    of the process hold locks on the file (always, in WAL mode), so short-lived threads leaked
    descriptors without bound. An explicit close lets SQLite reuse them.
    """

    __slots__ = ("cache", "con")

    def __init__(self, cache: Any, con: Any) -> None:
        self.cache = cache
        self.con = con

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()


class _RefusedRowError(Exception):
    """A row this store did not write (a pickle or a file reference)."""


def _tree_bytes(root: str) -> int:
    total = 0
    stack = [root]
    while stack:
        with contextlib.suppress(FileNotFoundError), os.scandir(stack.pop()) as it:
            for item in it:
                with contextlib.suppress(FileNotFoundError):
                    if item.is_dir(follow_symlinks=False):
                        stack.append(item.path)
                    total += item.stat(follow_symlinks=False).st_size
    return total + os.lstat(root).st_size


class DiskTier:
    """Envelopes on disk for every process of this machine; see the module docstring."""

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
        self._cache: Any = None
        self._open_lock = threading.Lock()
        self._threads = threading.local()  # each thread's _ConnectionCloser
        self._broken_until = 0.0
        self._warned = False
        self.errors = 0
        self.timeouts = 0
        self.corrupt = 0
        self.evictions = 0

    # -- health ---------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while the tier is disabled after a fault."""
        return self._broken_until == 0.0 or time.monotonic() >= self._broken_until

    def _fault(self, exc: BaseException) -> None:
        """Account for a disk exception; never re-raises it."""
        import diskcache

        if isinstance(exc, diskcache.Timeout) or (
            isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
        ):
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
        for name in _DB_FILES:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(self.db_dir, name))

    def _close(self) -> None:
        cache, self._cache = self._cache, None
        if cache is not None:
            with contextlib.suppress(Exception):
                cache.close()

    def _db(self) -> Any:
        cache = self._cache
        if cache is None:
            with self._open_lock:
                if self._cache is None:
                    self._cache = self._open()
                cache = self._cache
        closer = getattr(self._threads, "closer", None)
        if closer is None or closer.cache is not cache:
            self._threads.closer = _ConnectionCloser(cache, cache._con)
        return cache

    def _open(self) -> Any:
        import diskcache

        for sub in (self.root, self.db_dir, self.objects_dir, self.tmp_dir, self.locks_dir):
            verify_directory(sub)  # a planted symlink here would lead sweeps and writes outside
        settings: dict[str, Any] = {
            "disk_min_file_size": 2**62,  # every value inline: one transaction per write
            "eviction_policy": "least-recently-stored",
            "size_limit": 2**62,  # the budget is enforced here, counting every file
            "cull_limit": 0,
            "sqlite_journal_size_limit": 2**20,
            "sqlite_mmap_size": 0,
        }
        try:
            cache = diskcache.Cache(
                self.db_dir, timeout=self.timeout, disk=_safe_disk_class(), **settings
            )
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
            cache = diskcache.Cache(
                self.db_dir, timeout=self.timeout, disk=_safe_disk_class(), **settings
            )
        self._sweep(cache)  # self._cache is not set yet: pass the store the sweep must ask
        return cache

    # -- envelopes --------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The stored entry for ``key``, or None (missing, damaged, refused or tier down)."""
        if not self.available:
            return None
        dkey = disk_key(key)
        try:
            data = self._db().get(dkey)
        except _RefusedRowError:
            self.corrupt += 1
            self._drop(dkey)
            return None
        except Exception as exc:
            self._fault(exc)
            return None
        if data is None:
            return None
        try:
            entry = decode(key, data, self.serializer)
            if entry.flags & FLAG_FILE:
                entry = self._resolve_file(entry)
        except ValueError:
            self.corrupt += 1
            self._drop(dkey)
            return None
        return entry

    def _resolve_file(self, entry: Entry) -> Entry:
        if type(entry.value) is not list or len(entry.value) != 3:
            raise ValueError("bad object reference")
        name, size, mtime_ns = entry.value
        if type(name) is not str or os.sep in name or not name.endswith(".obj"):
            raise ValueError("bad object name")
        path = os.path.join(self.objects_dir, name)
        try:
            info = os.stat(path)
        except OSError as exc:
            raise ValueError(f"object file missing: {exc}") from exc
        # Anything that rewrote the file (truncated, zeroed, overwritten in place) changed its
        # size or its modification time: a content hash would read the whole object instead.
        if info.st_size != size or info.st_mtime_ns != mtime_ns:
            raise ValueError("object file was changed after it was stored")
        result = entry.replace_value(path, entry.flags)
        result.size = len(path)
        return result

    def set(self, key: str, entry: Entry, payload: bytes, flags: int) -> bool:
        """Store an envelope; False when it was not written (old name of :meth:`put`)."""
        entry.flags = flags
        written, _ = self._write(key, entry, payload, None)
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
        ``guard.allows(current)``; otherwise return the standing entry (a file entry resolved to
        its path). None when written, and when the write was skipped after a fault or refused
        for size. ``lifetime`` is not used: rows leave by the budget, never by time.
        """
        _, standing = self._write(key, entry, payload or b"", guard)
        return standing

    def _write(
        self, key: str, entry: Entry, payload: bytes, guard: Guard | None
    ) -> tuple[bool, Entry | None]:
        """(written, standing entry that a guard kept)."""
        if not self.available:
            return False, None
        dkey = disk_key(key)
        data = encode(key, entry, payload, entry.flags)
        too_big = len(data) > self.budget
        try:
            cache = self._db()
            with cache.transact():
                try:
                    old = cache.get(dkey)
                except _RefusedRowError:
                    old = None
                if guard is not None:
                    current = self._decoded(key, old)
                    if not guard.allows(current):
                        old = None
                        standing = current
                    else:
                        standing = None
                else:
                    standing = None
                if standing is None:
                    if too_big:
                        cache.delete(dkey)
                    else:
                        cache.set(dkey, data)
            if standing is not None:
                return False, self._resolved(standing)
            self._remove_old_object(key, old, payload if entry.flags & FLAG_FILE else None)
            if too_big:
                return False, None
            self._enforce_budget(cache)
        except Exception as exc:
            self._fault(exc)
            return False, None
        return True, None

    def _decoded(self, key: str, data: bytes | None) -> Entry | None:
        if data is None:
            return None
        try:
            return decode(key, data, self.serializer)
        except ValueError:
            return None

    def _resolved(self, entry: Entry) -> Entry | None:
        if not entry.flags & FLAG_FILE:
            return entry
        try:
            return self._resolve_file(entry)
        except ValueError:
            return None

    def delete(self, key: str, tombstone: Entry | None = None) -> bool:
        """Remove ``key``; with ``tombstone``, leave it in the key's place (unconditionally), so
        that a load begun earlier cannot write over the delete. True if a live entry was there.
        """
        if not self.available:
            return False
        dkey = disk_key(key)
        try:
            cache = self._db()
            if tombstone is None:
                found = bool(cache.delete(dkey))
            else:
                data = encode(key, tombstone, b"", tombstone.flags)
                with cache.transact():
                    try:
                        old = cache.get(dkey)
                    except _RefusedRowError:
                        old = None
                    cache.set(dkey, data)
                current = self._decoded(key, old)
                found = current is not None and not current.is_tombstone
        except Exception as exc:
            self._fault(exc)
            return False
        self._remove_objects(dkey)
        return found

    def stats(self) -> dict[str, int]:
        """The tier's fault and eviction counters (approximate under heavy threading)."""
        return {
            "disk_errors": self.errors,
            "disk_corrupt": self.corrupt,
            "disk_lock_timeouts": self.timeouts,
            "disk_evictions": self.evictions,
        }

    @contextlib.contextmanager
    def lock(self, key: str, wait: float) -> Iterator[bool]:
        """The cross-process single-flight lock of ``key`` (one of the file-lock stripes);
        yields False on timeout or any error."""
        if self._cache is None:
            try:
                self._db()  # makes the locks directory
            except Exception as exc:
                self._fault(exc)
                yield False
                return
        with _flight.file_lock(self.locks_dir, key, wait) as locked:
            yield locked

    def clear(self) -> None:
        if not self.available:
            return
        try:
            self._db().clear()
        except Exception as exc:
            self._fault(exc)
            return
        self._remove_objects("")

    def _drop(self, dkey: str) -> None:
        with contextlib.suppress(Exception):
            self._db().delete(dkey)
        self._remove_objects(dkey)

    # -- file-backed entries ------------------------------------------------------------------

    def temp_file(self) -> tuple[str, IO[bytes]]:
        """A new private file in ``tmp/``, held under an flock until closed.

        A download killed halfway leaves only this file, which no reader ever takes for an
        entry; the next sweep sees its lock gone and removes it.
        """
        self._db()  # makes the directories
        path = os.path.join(self.tmp_dir, os.urandom(16).hex() + ".part")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return path, os.fdopen(fd, "wb")

    def commit_file(
        self, key: str, temp_path: str, entry: Entry, guard: Guard | None = None
    ) -> Entry | None:
        """Move a finished temp file into ``objects/`` and store its envelope atomically.

        Returns the entry with the file's absolute path as its value, or None when the disk
        refused it (the temp file is removed either way).
        """
        dkey = disk_key(key)
        try:
            name = f"{dkey}-{os.urandom(8).hex()}.obj"
            final = os.path.join(self.objects_dir, name)
            os.replace(temp_path, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(temp_path)
            self._fault(exc)
            return None
        try:
            payload = file_payload(final)
        except OSError as exc:
            self._fault(exc)
            return None
        entry.flags = FLAG_FILE
        written, standing = self._write(key, entry, payload, guard)
        if not written:
            with contextlib.suppress(OSError):
                os.remove(final)
            return standing
        result = entry.replace_value(final, FLAG_FILE)
        result.size = len(final)
        return result

    def _remove_old_object(self, key: str, old: bytes | None, new_payload: bytes | None) -> None:
        if old is None:
            return
        try:
            previous = decode(key, old, self.serializer)
        except ValueError:
            return
        if previous.flags & FLAG_FILE:
            name = previous.value[0]
            keep = payload_name(new_payload) if new_payload is not None else None
            if type(name) is str and os.sep not in name and keep != name:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.objects_dir, name))

    def _remove_objects(self, prefix: str) -> None:
        with contextlib.suppress(OSError), os.scandir(self.objects_dir) as it:
            for item in it:
                if item.name.startswith(prefix):
                    with contextlib.suppress(OSError):
                        os.remove(item.path)

    # -- budget and sweeping --------------------------------------------------------------------

    def usage(self) -> int:
        """Bytes under the cache directory: database, WAL, objects, temp and lock files."""
        return _tree_bytes(self.root)

    def _enforce_budget(self, cache: Any) -> None:
        used = self.usage()
        if used <= self.budget and _size(os.path.join(self.db_dir, "cache.db-wal")) < (
            _WAL_CHECKPOINT_BYTES
        ):
            return
        self._checkpoint(cache)
        used = self.usage()
        if used <= self.budget:
            return
        self._sweep(cache)
        excess = self.usage() - self.budget
        if excess <= 0:
            return
        victims: list[tuple[int, str]] = []
        freed = 0
        rows = cache._sql(  # diskcache's own connection; the schema is diskcache 5's
            "SELECT rowid, key, length(value) FROM Cache ORDER BY store_time"
        )
        for rowid, key, length in rows:
            victims.append((rowid, key if isinstance(key, str) else ""))
            freed += (length or 0) + self._objects_bytes(key)
            if freed >= excess:
                break
        rows.close()
        with cache.transact():
            for rowid, _ in victims:
                cache._sql("DELETE FROM Cache WHERE rowid = ?", (rowid,))
        for _, key in victims:
            if key:
                self._remove_objects(key)
        self.evictions += len(victims)
        self._checkpoint(cache)

    def _objects_bytes(self, dkey: Any) -> int:
        if not isinstance(dkey, str):
            return 0
        total = 0
        with contextlib.suppress(OSError), os.scandir(self.objects_dir) as it:
            for item in it:
                if item.name.startswith(dkey):
                    total += item.stat().st_size
        return total

    @staticmethod
    def _checkpoint(cache: Any) -> None:
        with contextlib.suppress(sqlite3.Error):
            cache._sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _sweep(self, cache: Any) -> None:
        """Remove temp files whose writer is gone and objects no row of ``cache`` refers to."""
        with contextlib.suppress(OSError), os.scandir(self.tmp_dir) as it:
            for item in it:
                _remove_if_unlocked(item.path)
        now = time.time()
        with contextlib.suppress(OSError), os.scandir(self.objects_dir) as it:
            for item in it:
                with contextlib.suppress(OSError):
                    old = now - item.stat().st_mtime > _ORPHAN_AGE
                    if old and not self._referenced(cache, item.name):
                        os.remove(item.path)

    @staticmethod
    def _referenced(cache: Any, name: str) -> bool:
        dkey = name.split("-", 1)[0]
        try:
            data = cache.get(dkey)
        except Exception:
            return True  # cannot tell: keep it
        return data is not None and name.encode() in data


def file_payload(path: str) -> bytes:
    """The stored form of an object file: its name, size and modification time (ns)."""
    info = os.stat(path)
    return _serial.dumps([os.path.basename(path), info.st_size, info.st_mtime_ns], _serial.SAFE)


def payload_name(data: bytes) -> str | None:
    """The object name held by a file envelope's payload (or by the raw bytes), if any."""
    with contextlib.suppress(ValueError):
        value = _serial.loads(data, _serial.SAFE)
        if type(value) is list and value and type(value[0]) is str:
            return value[0]
    return None


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _remove_if_unlocked(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return  # a live writer holds it
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.remove(path)
