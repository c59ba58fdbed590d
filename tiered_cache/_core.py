"""TieredCache: memory, then disk, then the loader; TTL with jitter, stale-if-error, stats.

This module is the only one that knows about time. Tiers store envelopes (``Entry``); here an
entry is *fresh* for a caller when::

    entry.stored_at <= now < entry.expires_at            (stored expiry, jittered TTL)
    and now - entry.stored_at < max_age                   (the caller's own bound, if given)

An entry stamped in the future (the clock stepped back) is not fresh.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Final, Literal, ParamSpec, TypeVar, overload

from . import _serial
from ._disk import DiskTier, file_payload
from ._entry import FLAG_PICKLE, Entry
from ._flight import Flight, bounded_wait, file_lock
from ._log import log
from ._memory import MemoryTier, approximate_size
from .exceptions import TieredCacheError

if TYPE_CHECKING:
    from ._decorator import CachedFunction
    from ._shared import SharedTier

__all__ = ["NOT_MODIFIED", "MemoryOnly", "TieredCache", "Unshared"]


T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: Returned by a file fetcher when the origin says the stored version is still current.
NOT_MODIFIED: Final = "tiered-cache:not-modified"


class MemoryOnly:
    """Returned by a loader to keep its value out of the disk and shared tiers.

    For values found to be secret only once loaded (an SSM SecureString): the cache stores
    ``value`` in memory alone and the caller gets ``value``, as if ``persist=False`` was passed.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Unshared(MemoryOnly):
    """Returned by a loader to keep its value out of the shared tier only.

    For a secret the caller chose to persist on this machine's disk (an SSM SecureString with
    ``persist=True``) but did not opt in to share with the fleet.
    """

    __slots__ = ()


_INF: Final = float("inf")


class TieredCache:
    """A two-tier cache: this process's memory in front of a diskcache store on local disk.

    Thread-safe and process-safe. Reads never call an origin; ``get_or_load`` and the
    decorators call it at most once per key at a time across threads, and across processes
    for entries that go to disk. Disk faults are never raised: the cache degrades to memory
    and the origin with one warning. Loader exceptions propagate unchanged, unless a stale
    value may stand in for them (``stale_if_error``).
    """

    def __init__(
        self,
        directory: str = "/tmp/tiered-cache",
        ttl: float = 60.0,
        jitter: float = 0.1,
        stale_if_error: float = 0.0,
        memory_items: int = 1024,
        memory_bytes: int = 64 * 2**20,
        disk_bytes: int | None = None,
        disk: bool = True,
        serializer: Literal["safe", "pickle"] = "safe",
        clock: Callable[[], float] = time.time,
        lock_timeout: float = 5.0,
        shared: str | SharedTier | None = None,
    ) -> None:
        if ttl < 0 or stale_if_error < 0 or lock_timeout < 0:
            raise ValueError("ttl, stale_if_error and lock_timeout must be >= 0 seconds")
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter must be a fraction in [0, 1), for example 0.1 for 10 %")
        if serializer not in (_serial.SAFE, _serial.PICKLE):
            raise ValueError("serializer must be 'safe' or 'pickle'")
        self.ttl = float(ttl)
        self.jitter = float(jitter)
        self.stale_if_error = float(stale_if_error)
        self.serializer = serializer
        self.lock_timeout = float(lock_timeout)
        self._clock = clock
        self._memory = MemoryTier(memory_items, memory_bytes)
        self._mem = self._memory.data  # the hit path's dict, read without a lock
        self._disk: DiskTier | None = DiskTier(directory, disk_bytes, serializer) if disk else None
        if isinstance(shared, str):  # a redis:// or rediss:// URL; redis loads on first use
            from ._shared import SharedTier

            shared = SharedTier(shared, clock=clock)
        self._shared = shared  # the optional third tier (Redis/Valkey), or None
        self._flight = Flight()
        self._not_before = -_INF  # entries stored earlier count as expired (SnapStart)
        self._random = random.random
        self.memory_hits = 0
        self.disk_hits = 0
        self.misses = 0
        self.loads = 0
        self.load_errors = 0
        self.stale_served = 0
        self.shared_hits = 0
        self._outages: set[str] = set()  # keys whose stale value is standing in (logged once)

    # -- reading ----------------------------------------------------------------------------

    @property
    def clock(self) -> Callable[[], float]:
        """The wall clock this cache reads (``time.time`` unless injected)."""
        return self._clock

    @property
    def directory(self) -> str | None:
        """The disk tier's directory, or None for a memory-only cache."""
        return self._disk.root if self._disk is not None else None

    def get(self, key: str, default: Any = None, ttl: float | None = None) -> Any:
        """A fresh value for ``key`` from memory or disk, else ``default``; never loads.

        With ``ttl``, an entry older than ``ttl`` seconds is also not fresh for this call.
        """
        entry = self._mem.get(key)
        if entry is not None:
            now = self._clock()
            if entry.stored_at <= now < entry.expires_at and (
                ttl is None or now - entry.stored_at < ttl
            ):
                self.memory_hits += 1
                try:
                    self._mem.move_to_end(key)
                except KeyError:
                    pass
                return entry.value
        entry = self._from_disk(key, _INF if ttl is None else ttl, self._clock())
        if entry is None and self._shared is not None:  # fills memory only: persist unknown
            entry = self._from_shared(key, _INF if ttl is None else ttl, self._clock(), None, False)
        return default if entry is None else entry.value

    def _fresh(
        self, entry: Entry | None, now: float, max_age: float, seen: Entry | None = None
    ) -> bool:
        """Fresh for this caller; with ``seen`` (a refresh), also newer than what it saw."""
        return (
            entry is not None
            and self._not_before <= entry.stored_at <= now < entry.expires_at
            and now - entry.stored_at < max_age
            and (seen is None or _differs(entry, seen))
        )

    def _from_disk(
        self, key: str, max_age: float, now: float, seen: Entry | None = None
    ) -> Entry | None:
        """A fresh entry from disk, promoted to memory with its remaining lifetime."""
        if self._disk is None:
            return None
        entry = self._disk.get(key)
        if entry is not None and self._fresh(entry, now, max_age, seen):
            self.disk_hits += 1
            self._memory.set(key, entry)
            return entry
        return None

    def _from_shared(
        self, key: str, max_age: float, now: float, seen: Entry | None, persist: bool
    ) -> Entry | None:
        """A fresh entry from the shared tier, filling memory (and, with ``persist``, disk).

        The lower tiers get the same entry times: its remaining lifetime, never a new one.
        """
        found = self._shared.get(key) if self._shared is not None else None
        if found is None or not self._fresh(found[0], now, max_age, seen):
            return None
        entry, payload = found
        self.shared_hits += 1
        self._memory.set(key, entry)
        if persist and self._disk is not None:
            self._disk.set(key, entry, payload, 0)  # a safe payload: readable by any serializer
        return entry

    # -- writing ----------------------------------------------------------------------------

    def _new_entry(
        self,
        value: Any,
        ttl: float,
        stale_if_error: float,
        version: str | None = None,
        now: float | None = None,
    ) -> Entry:
        """An entry stamped ``now`` (default: the clock) whose jittered lifetime <= ``ttl``.

        Loads pass the time they *started*: an origin update made while the load ran still
        reaches every caller within ``ttl`` of that update.
        """
        if now is None:
            now = self._clock()
        lifetime = ttl * (1.0 - self.jitter * self._random())
        expires = now + lifetime
        return Entry(value, now, expires, expires + stale_if_error, version)

    def _store(self, key: str, entry: Entry, persist: bool, share: bool = False) -> None:
        payload = None
        if persist and self._disk is not None:
            payload = _serial.dumps(entry.value, self.serializer)  # TypeError: not stored
            entry.size = len(payload)
        else:
            entry.size = approximate_size(entry.value)
        self._memory.set(key, entry)
        if payload is not None and self._disk is not None:
            flags = FLAG_PICKLE if self.serializer == _serial.PICKLE else 0
            self._disk.set(key, entry, payload, flags)
        if share and self._shared is not None:
            self._share(key, entry, payload if self.serializer == _serial.SAFE else None)

    def _share(self, key: str, entry: Entry, payload: bytes | None) -> None:
        """Write to the shared tier (safe serializer only) until the entry's ``stale_until``."""
        if payload is None:
            try:
                payload = _serial.dumps(entry.value, _serial.SAFE)
            except TypeError:
                log.debug("tiered-cache: %r not shared: the safe serializer cannot store it", key)
                return
        if self._shared is not None:
            self._shared.set(key, entry, payload, entry.stale_until - self._clock())

    def set(self, key: str, value: Any, ttl: float | None = None, persist: bool = True) -> None:
        """Store ``value`` in memory and (with ``persist``) on disk and shared, for ``ttl`` s.

        Raises ``TypeError`` for a value the safe serializer cannot store when it would go to
        disk; nothing is stored then.
        """
        ttl = self.ttl if ttl is None else _check_seconds("ttl", ttl)
        self._store(key, self._new_entry(value, ttl, self.stale_if_error), persist, persist)

    def delete(self, key: str) -> bool:
        """Drop ``key`` from every tier; True if any tier held it."""
        found = self._memory.delete(key)
        if self._disk is not None:
            found = self._disk.delete(key) or found
        if self._shared is not None:
            found = self._shared.delete(key) or found
        return found

    def clear(self) -> None:
        """Drop every entry from every tier (other processes' memory tiers excepted)."""
        self._memory.clear()
        if self._disk is not None:
            self._disk.clear()
        if self._shared is not None:
            self._shared.clear()

    def expire_all(self) -> None:
        """Make every entry stored until now count as expired, in every tier.

        Used after a SnapStart restore: values from snapshot time are never served.
        """
        self._not_before = self._clock()
        self._memory.clear()

    # -- loading ----------------------------------------------------------------------------

    def get_or_load(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: float | None = None,
        stale_if_error: float | None = None,
        persist: bool = True,
    ) -> T:
        """A fresh value for ``key``, or ``loader()``'s result, stored in both tiers.

        ``ttl`` also bounds the age of an entry another call site stored. The loader runs
        at most once per key at a time (threads, and processes when ``persist``). If it
        raises and an expired value is within ``stale_if_error`` seconds of its expiry, that
        value is returned; otherwise the loader's exception propagates unchanged.
        """
        # The hit path is inlined on purpose (a helper call costs ~50 ns per hit); it must stay
        # in step with TieredCache._fresh and the other inlined copies (see _decorator, _aws).
        entry = self._mem.get(key)
        if entry is not None:
            now = self._clock()
            if entry.stored_at <= now < entry.expires_at and (
                ttl is None or now - entry.stored_at < ttl
            ):
                self.memory_hits += 1
                try:
                    self._mem.move_to_end(key)
                except KeyError:
                    pass
                value: T = entry.value
                return value
        return self.load(key, loader, ttl, stale_if_error, persist)

    def load(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: float | None = None,
        stale_if_error: float | None = None,
        persist: bool = True,
        max_age: float | None = None,
        refresh: bool = False,
        shared: bool | None = None,
    ) -> T:
        """The miss path of :meth:`get_or_load`, with three more controls.

        ``max_age`` bounds the age of an entry for this call separately from the ``ttl`` it
        stores with (``max_age=0``: always load, as a refresh, and store for ``ttl`` for everyone
        else).
        ``refresh=True`` loads anew unless another thread or process stored a new entry for
        the key while this call waited (concurrent refreshes coalesce into one origin call).
        ``shared`` (default: ``persist``) writes the value to the shared tier and reads it
        there, with a fleet-wide lock around the load: ``persist=False, shared=True`` opts a
        memory-only value (a secret) in. A refresh writes the shared tier but never reads it.
        """
        if max_age == 0:  # "always load" (lambda-cache's forced refresh) is a refresh:
            refresh = True  # concurrent ones coalesce into one origin call
        share = persist if shared is None else shared
        look = share and not refresh  # read the shared tier (a refresh loads anew)
        if max_age is None:  # the caller's own ttl bounds the age; none: stored expiry alone
            max_age = _INF if ttl is None else ttl
        ttl = self.ttl if ttl is None else _check_seconds("ttl", ttl)
        sie = self.stale_if_error if stale_if_error is None else stale_if_error
        bound = _INF if refresh else max_age
        # A refresh loads anew unless the entry changed while it waited for the lock: then
        # another thread or process has just loaded it, and concurrent refreshes coalesce.
        seen = (self._stale(key, persist) or _NOTHING) if refresh else None
        if not refresh:
            found = self._current(key, bound, seen, persist, look)
            if found is not None:
                return found.value  # type: ignore[no-any-return]
        self.misses += 1
        since = time.monotonic()
        until = since + bounded_wait(self.lock_timeout)  # one bound for all waits
        with self._flight.hold(key, _left(until)) as held:
            if held:  # local re-checks: a peer elsewhere shows up after the fleet lock
                found = self._current(key, bound, seen, persist)
                if found is not None:
                    return found.value  # type: ignore[no-any-return]
                if self._flight.failed_since(key, since):  # the load it waited for failed:
                    stale = self._serve_stale(key, persist, bound, sie, share)  # no new call
                    if stale is not None:
                        return stale.value  # type: ignore[no-any-return]
            disk = self._disk
            if not persist or disk is None or not disk.available:
                return self._fleet_load(
                    key, loader, ttl, sie, persist, bound, seen, share, look, until
                )
            with file_lock(disk.locks_dir, key, _left(until)) as locked:
                if locked:
                    found = self._current(key, bound, seen, persist)
                    if found is not None:
                        return found.value  # type: ignore[no-any-return]
                return self._fleet_load(
                    key, loader, ttl, sie, persist, bound, seen, share, look, until
                )

    def _fleet_load(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: float,
        stale_if_error: float,
        persist: bool,
        bound: float,
        seen: Entry | None,
        share: bool,
        look: bool,
        until: float,
    ) -> T:
        """Load, under the shared tier's fleet-wide lock when the entry is shared.

        Taken after the thread and file locks, within what is left of the same wait budget
        (``until``, monotonic) and at most the tier's ``lock_wait``; then the caller loads by
        itself. After acquiring it the tiers are checked again.
        """
        shared = self._shared
        if not look or shared is None or not shared.available:
            return self._call_loader(key, loader, ttl, stale_if_error, persist, bound, share)
        wait = min(_left(until), shared.lock_wait)
        with shared.lock(key, wait) as locked:
            if locked:
                found = self._current(key, bound, seen, persist, look)
                if found is not None:
                    return found.value  # type: ignore[no-any-return]
            return self._call_loader(key, loader, ttl, stale_if_error, persist, bound, share)

    def _current(
        self, key: str, max_age: float, seen: Entry | None, persist: bool, share: bool = False
    ) -> Entry | None:
        """A fresh entry from memory, else (``persist``) disk, else (``share``) shared, or None."""
        now = self._clock()
        entry = self._memory.get(key)
        if self._fresh(entry, now, max_age, seen):
            self.memory_hits += 1
            return entry
        entry = self._from_disk(key, max_age, now, seen) if persist else None
        if entry is None and share and self._shared is not None:
            entry = self._from_shared(key, max_age, now, seen, persist)
        return entry

    def _stale(self, key: str, persist: bool, share: bool = False) -> Entry | None:
        entry = self._memory.get(key)
        if entry is None and persist and self._disk is not None:
            entry = self._disk.get(key)
        if entry is None and share and self._shared is not None:
            found = self._shared.get(key)
            entry = found[0] if found is not None else None
        return entry

    def _serve_stale(
        self, key: str, persist: bool, bound: float, stale_if_error: float, share: bool = False
    ) -> Entry | None:
        """An expired entry still inside the failing call's ``stale_if_error`` window."""
        if stale_if_error <= 0:
            return None
        entry = self._stale(key, persist, share)
        if entry is None:
            return None
        now = self._clock()
        expiry = min(entry.expires_at, entry.stored_at + bound)
        if entry.stored_at <= now < expiry + stale_if_error:
            self.stale_served += 1
            return entry
        return None

    def _call_loader(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: float,
        stale_if_error: float,
        persist: bool,
        bound: float,
        share: bool = False,
    ) -> T:
        self.loads += 1
        started = self._clock()
        try:
            value = loader()
        except Exception:
            self.load_errors += 1
            self._flight.failed(key)
            stale = self._serve_stale(key, persist, bound, stale_if_error, share)
            if stale is None:
                raise
            # Once per key and outage: a hot key must not log on every invocation.
            (log.debug if key in self._outages else log.warning)(
                "tiered-cache: loading %r failed; serving the stale value", key, exc_info=True
            )
            self._outages.add(key)
            return stale.value  # type: ignore[no-any-return]
        self._outages.discard(key)
        if isinstance(value, MemoryOnly):
            if isinstance(value, Unshared):
                value, share = value.value, False
            else:
                value, persist, share = value.value, False, False
        self._store(key, self._new_entry(value, ttl, stale_if_error, now=started), persist, share)
        return value

    # -- file-backed entries -------------------------------------------------------------------

    def load_file(
        self,
        key: str,
        fetch: Callable[[IO[bytes], str | None], str | None],
        ttl: float | None = None,
        stale_if_error: float | None = None,
        max_age: float | None = None,
    ) -> str:
        """The path of a local file holding the object for ``key``, fetched when not fresh.

        ``fetch(dest, version)`` writes the object into ``dest`` (a temporary file inside the
        cache directory) and returns its new version (an ETag), or returns ``NOT_MODIFIED``
        without writing when ``version`` is still current: the entry is then renewed and no
        body moves. The finished file is moved into place atomically; a fetch that raises or
        is killed leaves nothing a later call could take for complete. Single-flight across
        threads and processes. Raises ``TieredCacheError`` when the disk tier is unavailable
        or the object does not fit in its budget.
        """
        ttl = self.ttl if ttl is None else _check_seconds("ttl", ttl)
        bound = ttl if max_age is None else max_age
        entry = self._file_entry(key, bound)
        if entry is not None:
            return entry.value  # type: ignore[no-any-return]
        disk = self._disk
        if disk is None or not disk.available:
            raise TieredCacheError(
                "tiered-cache: file-backed entries need the disk tier, which is "
                f"{'disabled' if disk is None else 'unavailable after a fault'}; "
                "check TIERED_CACHE_DIR and TIERED_CACHE_DISABLE_DISK"
            )
        sie = self.stale_if_error if stale_if_error is None else stale_if_error
        self.misses += 1
        until = time.monotonic() + bounded_wait(self.lock_timeout)  # one bound for both waits
        with (
            self._flight.hold(key, _left(until)) as held,
            file_lock(disk.locks_dir, key, _left(until)) as locked,
        ):
            if held or locked:
                entry = self._file_entry(key, bound)
                if entry is not None:
                    return entry.value  # type: ignore[no-any-return]
            return self._fetch_file(disk, key, fetch, ttl, sie, bound)

    def _file_entry(self, key: str, bound: float) -> Entry | None:
        now = self._clock()
        entry = self._memory.get(key)
        if self._fresh(entry, now, bound) and _exists(entry.value):  # type: ignore[union-attr]
            self.memory_hits += 1
            return entry
        return self._from_disk(key, bound, now)

    def _fetch_file(
        self,
        disk: DiskTier,
        key: str,
        fetch: Callable[[IO[bytes], str | None], str | None],
        ttl: float,
        stale_if_error: float,
        bound: float,
    ) -> str:
        previous = self._stale(key, True)
        if previous is not None and not _exists(previous.value):
            previous = None
        version = previous.version if previous is not None else None
        try:
            temp_path, dest = disk.temp_file()
        except Exception as exc:  # the disk's own error never reaches the caller raw
            raise _disk_error(key, disk, exc) from exc
        # The temp file stays open, and so flock-held, until it has left tmp/: a sweep by
        # another process never removes a download that is still being committed.
        try:
            self.loads += 1
            started = self._clock()
            try:
                new_version = fetch(dest, version)
                dest.flush()
            except Exception as exc:
                _discard(temp_path)
                self.load_errors += 1
                stale = self._serve_stale(key, True, bound, stale_if_error)
                if stale is None or not _exists(stale.value):
                    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise _disk_error(
                            key, disk, exc
                        ) from exc  # the disk filled up, not the origin
                    raise
                return stale.value  # type: ignore[no-any-return]
            if new_version == NOT_MODIFIED:
                _discard(temp_path)
                if previous is None:
                    raise TieredCacheError(
                        "tiered-cache: fetch answered NOT_MODIFIED to no version"
                    )
                path: str = previous.value
                renewed = self._new_entry(path, ttl, stale_if_error, version, now=started)
                renewed.flags, renewed.size = previous.flags, len(path)
                payload = file_payload(path)
                self._memory.set(key, renewed)
                disk.set(key, renewed, payload, previous.flags)
                return path
            try:
                size = _file_size(temp_path)
            except OSError as exc:  # the finished temp file is gone: a disk fault, never raw
                raise _disk_error(key, disk, exc) from exc
            if size > disk.budget:
                _discard(temp_path)
                raise TieredCacheError(
                    f"tiered-cache: the object for {key!r} is {size} bytes, larger than the "
                    f"whole disk budget of {disk.budget} bytes; raise TIERED_CACHE_DISK_BYTES "
                    "(and the function's ephemeral storage) to cache it"
                )
            fresh = self._new_entry(None, ttl, stale_if_error, new_version, now=started)
            stored = disk.commit_file(key, temp_path, fresh)
            if stored is None:
                raise TieredCacheError(
                    f"tiered-cache: could not store the object for {key!r} in {disk.root}; "
                    "the disk tier failed (see the warning logged)"
                )
            self._memory.set(key, stored)
            return stored.value  # type: ignore[no-any-return]
        finally:
            dest.close()

    # -- introspection -------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters since this cache was made (approximate under heavy threading)."""
        disk = self._disk
        return {
            "memory_hits": self.memory_hits,
            "disk_hits": self.disk_hits,
            "misses": self.misses,
            "loads": self.loads,
            "load_errors": self.load_errors,
            "stale_served": self.stale_served,
            "evictions": self._memory.evictions + (disk.evictions if disk else 0),
            "memory_items": len(self._memory),
            "memory_bytes": self._memory.bytes,
            "disk_errors": disk.errors if disk else 0,
            "disk_corrupt": disk.corrupt if disk else 0,
            "disk_lock_timeouts": disk.timeouts if disk else 0,
            "lock_timeouts": self._flight.timeouts,
            "shared_hits": self.shared_hits,
            **(self._shared.stats() if self._shared is not None else {}),
        }

    @overload
    def cache(self, func: Callable[P, R], /) -> CachedFunction[P, R]: ...

    @overload
    def cache(
        self,
        func: str | None = None,
        /,
        *,
        key: str | Callable[..., str] | None = None,
        ttl: float | None = None,
        stale_if_error: float | None = None,
        persist: bool = True,
    ) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...

    def cache(
        self,
        func: Any = None,
        /,
        *,
        key: Any = None,
        ttl: float | None = None,
        stale_if_error: float | None = None,
        persist: bool = True,
    ) -> Any:
        """The decorator bound to this cache; see :func:`tiered_cache.cache`."""
        from ._decorator import cache as decorate

        return decorate(
            func, key=key, ttl=ttl, stale_if_error=stale_if_error, persist=persist, _cache=self
        )

    def __repr__(self) -> str:
        return f"TieredCache(directory={self.directory!r}, ttl={self.ttl})"


_NOTHING: Final = Entry(None, -_INF, -_INF, -_INF)


def _differs(entry: Entry, seen: Entry) -> bool:
    """True if ``entry`` was stored by another load than ``seen`` (works across processes)."""
    return (entry.stored_at, entry.expires_at, entry.version) != (
        seen.stored_at,
        seen.expires_at,
        seen.version,
    )


def _check_seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise TypeError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return float(value)


def _disk_error(key: str, disk: DiskTier, exc: BaseException) -> TieredCacheError:
    return TieredCacheError(
        f"tiered-cache: could not write the object for {key!r} under {disk.root} ({exc}); "
        "the disk is full or unwritable: free /tmp, lower TIERED_CACHE_DISK_BYTES or raise "
        "the function's ephemeral storage"
    )


def _left(until: float) -> float:
    """Seconds of a lock-wait budget left before monotonic time ``until`` (never below 0)."""
    return max(0.0, until - time.monotonic())


def _exists(path: str) -> bool:
    return os.path.exists(path)


def _file_size(path: str) -> int:
    return os.stat(path).st_size


def _discard(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
