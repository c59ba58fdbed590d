"""TieredCache: walks the tiers in order, and owns time, promotion, placement and single-flight.

The tiers (``_tier``: memory, then disk, then an optional shared tier) are dumb stores of
envelopes; this module is the only one that knows time. Freshness is the one rule of ``_hit``
(the hit paths of ``get`` and ``get_or_load`` are generated from it, per cache). On a miss the
core reads each lower tier in turn and promotes a fresh entry upward with its remaining
lifetime, never a new one; then it takes each tier's own single-flight lock in turn (thread
lock, file-lock stripe, fleet lock) within one wait budget, re-checking after each, and calls
the loader.

No write goes back in time: a load's value is stamped with the time the load started, and its
write is guarded (``Guard``): it never replaces an entry that a ``set``, another load or a
``delete`` (a tombstone) wrote after the load began. That later entry stands, and the load
returns it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Final, Literal, ParamSpec, TypeVar, overload

from . import _checks, _hit, _restore, _serial
from ._disk import DiskTier, file_payload
from ._entry import FLAG_PICKLE, Entry, Guard, tombstone
from ._flight import bounded_wait
from ._log import log
from ._memory import MemoryTier, approximate_size
from ._tier import DISK, EVERYWHERE, LOCAL, MEMORY, SHARED, Placed, Tier, placement
from .exceptions import TieredCacheError

if TYPE_CHECKING:
    from ._decorator import CachedFunction
    from ._dynamo import DynamoDBTier
    from ._shared import SharedTier

__all__ = ["NOT_MODIFIED", "TieredCache"]


T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: Returned by a file fetcher when the origin says the stored version is still current.
NOT_MODIFIED: Final = "tiered-cache:not-modified"

_INF: Final = float("inf")
_WAIT_MAX: Final = float(threading.TIMEOUT_MAX)  # the longest a lock's acquire accepts
#: The longest lifetime handed to a tier: an infinite TTL is no expiry, but Redis and DynamoDB
#: need a finite number (a century).
_LIFETIME_MAX: Final = 100 * 365.25 * 86400.0
_fresh = _hit.fresh


class TieredCache:
    """A tiered cache: this process's memory in front of a diskcache store on local disk, and
    optionally a shared tier (Redis/Valkey) for the fleet.

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
        shared: str | SharedTier | DynamoDBTier | None = None,
    ) -> None:
        # Every argument is checked before anything is made (nothing on disk for a bad one).
        self.ttl = _checks.seconds("ttl", ttl)
        self.jitter = _checks.fraction("jitter", jitter)
        self.stale_if_error = _checks.seconds("stale_if_error", stale_if_error)
        self.serializer: Literal["safe", "pickle"] = _checks.serializer(serializer)  # type: ignore[assignment]
        self.lock_timeout = _checks.seconds("lock_timeout", lock_timeout)
        memory_items = _checks.count("memory_items", memory_items)
        memory_bytes = _checks.count("memory_bytes", memory_bytes)
        if disk_bytes is not None:
            disk_bytes = _checks.count("disk_bytes", disk_bytes)
        if not isinstance(disk, bool):
            raise TypeError(f"tiered-cache: disk must be True or False, not {disk!r}")
        if not callable(clock):
            raise TypeError(
                f"tiered-cache: clock must be a callable returning wall-clock seconds, such as "
                f"time.time, not {clock!r}"
            )
        if disk:
            directory = _checks.directory(directory)
        self._clock = clock
        self._memory = MemoryTier(memory_items, memory_bytes)
        self._mem = self._memory.data  # the hit paths' dict, read without a lock
        # The shared tier's URL is checked before the disk tier makes its directory.
        if isinstance(shared, str) and shared.startswith("dynamodb:"):  # dynamodb://TABLE
            from ._dynamo import DynamoDBTier  # boto3 loads on first use

            shared = DynamoDBTier.from_url(shared, clock=clock)
        elif isinstance(shared, str):  # a redis:// or rediss:// URL; redis loads on first use
            from ._shared import SharedTier

            shared = SharedTier(shared, clock=clock)
        self._disk: DiskTier | None = DiskTier(directory, disk_bytes, serializer) if disk else None
        self._shared = shared  # the optional third tier (Redis/Valkey or DynamoDB), or None
        #: The tiers below memory, in reading order, each with its placement bit.
        self._lower: tuple[tuple[Tier, int], ...] = tuple(
            (tier, bit)
            for tier, bit in ((self._disk, DISK), (self._shared, SHARED))
            if tier is not None
        )
        self._not_before = -_INF  # entries stored earlier count as expired (SnapStart)
        self._rng = random.Random()  # this cache's own: reseeded after a SnapStart restore
        self._random = self._rng.random
        self.disk_hits = 0
        self.shared_hits = 0
        self.misses = 0
        self.loads = 0
        self.load_errors = 0
        self.stale_served = 0
        self.origin_ms = 0.0  # milliseconds spent in loaders and fetches (by this cache's clock)
        self._outages: set[str] = set()  # keys whose stale value is standing in (logged once)
        self._unstorable: set[str] = set()  # keys kept in memory only: warned once each
        # This cache's hit paths, generated from the one rule and bound to it (instance
        # attributes, so a call is a plain function call: no bound method is made per hit).
        # Assigned, not written into __dict__: touching __dict__ would cost every attribute read
        # of the instance (the hit paths read _not_before) its inline-values fast path.
        cells = _hit.bound_to(self)
        # The hit test runs inside a try (free when nothing is raised): a key or ttl of the
        # wrong type falls through to the miss path, whose checks say what is wrong. The miss
        # itself runs after it, so a loader's own TypeError is never caught here.
        self.get = _hit.make(  # type: ignore[method-assign]
            "get",
            "key, default=None, ttl=None",
            prologue="try:",
            depth=1,
            age="ttl",
            optional_age=True,
            miss="",
            epilogue="except TypeError:\n    pass\nreturn cache._get_lower(key, default, ttl)",
            cells=cells,
            qualname="TieredCache.get",
        )
        self.get_or_load = _hit.make(  # type: ignore[method-assign]
            "get_or_load",
            "key, loader, ttl=None, stale_if_error=None, persist=True",
            prologue="try:",
            depth=1,
            age="ttl",
            optional_age=True,
            miss="",
            epilogue=(
                "except TypeError:\n    pass\n"
                "return cache.load(key, loader, ttl, stale_if_error, persist)"
            ),
            cells=cells,
            qualname="TieredCache.get_or_load",
        )
        _restore.track(self)

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
        """A fresh value for ``key`` from any tier, else ``default``; never loads.

        With ``ttl``, an entry older than ``ttl`` seconds is also not fresh for this call.
        A hit in a lower tier is promoted to memory with its remaining lifetime.
        (The instance's own generated hit path answers; this is its documentation.)
        """
        return self.get(key, default, ttl)  # the instance's own, generated in __init__

    def _get_lower(self, key: str, default: Any, ttl: float | None) -> Any:
        _check_key(key)
        age = _INF if ttl is None else _check_seconds("ttl", ttl)
        # A shared hit fills memory only: where this key's values may go is not known here.
        entry = self._current(key, age, -_INF, EVERYWHERE, MEMORY)
        return default if entry is None else entry.value

    def _current(
        self,
        key: str,
        age: float,
        since: float,
        where: int,
        promote: int | None = None,
        seen: Identity | None = None,
    ) -> Entry | None:
        """A fresh entry from the first tier in ``where`` that has one, promoted into the tiers
        above it within ``promote`` (default: ``where``). A refresh passes ``since`` (its start)
        and ``seen`` (what it found then): only an entry another load started since wrote is
        taken for its own."""
        now = self._clock()
        not_before = self._not_before
        entry = memory = self._memory.get(key)
        if _fresh(entry, now, age, not_before) and _new(entry, since, seen):  # type: ignore[arg-type]
            entry.hits += 1  # type: ignore[union-attr]
            return entry
        for tier, bit in self._lower:
            if not where & bit or not tier.available:
                continue
            entry = tier.get(key)
            if _fresh(entry, now, age, not_before) and _new(entry, since, seen):  # type: ignore[arg-type]
                into = where if promote is None else promote
                self._promote(key, entry, bit, into, now, memory)  # type: ignore[arg-type]
                return entry
        return None

    @property
    def memory_hits(self) -> int:
        """Memory hits since this cache was made (also in :meth:`stats`)."""
        return self._memory.stats()["memory_hits"]

    def _promote(
        self,
        key: str,
        entry: Entry,
        found: int,
        into: int,
        now: float,
        replaces: Entry | None = None,
    ) -> None:
        """Copy a lower tier's fresh entry into the tiers above it, with its remaining lifetime.

        Guarded by the entry's own stamp: it replaces what the caller saw in memory
        (``replaces``) or anything older, never a newer entry (or tombstone).
        """
        if found == DISK:
            self.disk_hits += 1
        else:
            self.shared_hits += 1
        lifetime = _lifetime(entry, now)
        guard = Guard(entry.stored_at, None if replaces is None else replaces.identity)
        if found == SHARED and into & DISK and self._disk is not None:
            payload = _serial.dumps(entry.value, _serial.SAFE)  # it came from safe bytes
            self._disk.put(key, entry, payload, lifetime, guard)
        self._memory.put(key, entry, None, lifetime, guard)

    def _latest(self, key: str, where: int) -> Entry | None:
        """The entry that stands for ``key`` (fresh or not, tombstones included) in the first
        local tier in ``where`` that has one: what a load about to start has seen."""
        entry = self._memory.get(key)
        if entry is None and where & DISK and self._disk is not None:
            entry = self._disk.get(key)
        return entry

    def _stale(self, key: str, where: int) -> Entry | None:
        """The entry for ``key`` in the first tier in ``where`` that has one, fresh or not;
        None when that is a tombstone (a deleted key has no stale value)."""
        entry = self._memory.get(key)
        if entry is None:
            for tier, bit in self._lower:
                if where & bit and tier.available:
                    entry = tier.get(key)
                    if entry is not None:
                        break
        if entry is None or entry.is_tombstone:
            return None
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

    def _store(self, key: str, entry: Entry, where: int, guard: Guard | None) -> Entry:
        """Write ``entry`` to every tier in ``where``; returns the entry that stands.

        Without a guard (``set``) a value the serializer cannot store raises ``TypeError``
        before anything is written. With one (a load), it is kept in memory only, with one
        warning per key. A guarded write refused by a newer entry leaves that entry standing
        everywhere and returns it. The disk is written first: it is what other processes see.
        """
        payload = None
        if where & (DISK | SHARED) and self._lower:
            try:
                payload = _serial.dumps(entry.value, self.serializer)
            except TypeError as exc:
                if guard is None:
                    raise
                self._warn_unstorable(key, exc)
                where = MEMORY
        entry.size = len(payload) if payload is not None else approximate_size(entry.value)
        lifetime = _lifetime(entry, self._clock())
        disk = self._disk
        if payload is not None and where & DISK and disk is not None:
            entry.flags = FLAG_PICKLE if self.serializer == _serial.PICKLE else 0
            standing = disk.put(key, entry, payload, lifetime, guard)
            if standing is not None:  # a newer entry from another process stands
                self._memory.put(key, standing, None, lifetime, Guard(standing.stored_at, None))
                return standing
        standing = self._memory.put(key, entry, None, lifetime, guard)
        if standing is not None:
            return standing
        if where & SHARED and self._shared is not None:
            self._share(key, entry, payload if self.serializer == _serial.SAFE else None)
        return entry

    def _warn_unstorable(self, key: str, exc: TypeError) -> None:
        (log.debug if key in self._unstorable else log.warning)(
            "tiered-cache: the value loaded for %r is kept in this process's memory only, for "
            "its TTL: %s To store it on disk set TIERED_CACHE_SERIALIZER=pickle (or "
            "serializer='pickle'); to keep it in memory without this warning pass "
            "persist=False.",
            key,
            exc,
        )
        self._unstorable.add(key)

    def _share(self, key: str, entry: Entry, payload: bytes | None) -> None:
        """Write to the shared tier (safe serializer only) until the entry's ``stale_until``."""
        if payload is None:
            try:
                payload = _serial.dumps(entry.value, _serial.SAFE)
            except TypeError:
                log.debug("tiered-cache: %r not shared: the safe serializer cannot store it", key)
                return
        if self._shared is not None:
            self._shared.put(key, entry, payload, _lifetime(entry, self._clock()))

    def set(self, key: str, value: Any, ttl: float | None = None, persist: bool = True) -> None:
        """Store ``value`` in memory and (with ``persist``) on disk and shared, for ``ttl`` s.

        Raises ``TypeError`` for a value the safe serializer cannot store when it would go to
        disk; nothing is stored then.
        """
        _check_key(key)
        ttl = self.ttl if ttl is None else _check_seconds("ttl", ttl)
        entry = self._new_entry(value, ttl, self.stale_if_error)
        self._store(key, entry, placement(persist), None)

    def delete(self, key: str) -> bool:
        """Drop ``key`` from every tier; True if any tier held it.

        The memory and disk tiers keep a tombstone in its place: a load that started before the
        delete returns its value but does not store it.
        """
        _check_key(key)
        mark = tombstone(self._clock())
        found = self._memory.delete(key, mark)
        for tier, _ in self._lower:
            found = tier.delete(key, mark) or found
        return found

    def clear(self) -> None:
        """Drop every entry from every tier (other processes' memory tiers excepted)."""
        self._memory.clear()
        for tier, _ in self._lower:
            tier.clear()

    def close(self) -> None:
        """Close what the cache holds open for the calling thread: its database connection
        (other threads' close as their threads end) and the shared tier's idle connections. The
        entries stay, and the cache stays usable: the next use opens them again. A cache made
        per test should be closed (``with TieredCache(...) as cache:`` does it): Python 3.13
        warns about a database connection a dropped cache leaves open."""
        self._memory.close()
        for tier, _ in self._lower:
            close = getattr(tier, "close", None)  # a shared tier of your own may have none
            if close is not None:
                close()

    def __enter__(self) -> TieredCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def expire_all(self) -> None:
        """Make every entry stored until now count as expired, in every tier.

        Used after a SnapStart restore: values from snapshot time are never served.
        """
        self._not_before = self._clock()
        self._memory.clear()

    def _after_restore(self) -> None:
        """After a SnapStart restore (``_restore``): nothing from snapshot time is served, and
        this environment's jitter differs from every other clone's."""
        self.expire_all()
        self._rng.seed(os.urandom(32))

    # -- loading ----------------------------------------------------------------------------

    def get_or_load(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: float | None = None,
        stale_if_error: float | None = None,
        persist: bool = True,
    ) -> T:
        """A fresh value for ``key``, or ``loader()``'s result, stored in every tier.

        ``ttl`` also bounds the age of an entry another call site stored. The loader runs
        at most once per key at a time (threads, and processes when ``persist``). If it
        raises and an expired value is within ``stale_if_error`` seconds of its expiry, that
        value is returned; otherwise the loader's exception propagates unchanged. A value the
        serializer cannot store is kept in memory for its TTL, with one warning per key.
        (The instance's own generated hit path answers; this is its documentation.)
        """
        value: T = self.get_or_load(key, loader, ttl, stale_if_error, persist)  # the instance's
        return value

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
        else). ``refresh=True`` loads anew, unless a load that started after this call did
        (concurrent refreshes coalesce into one origin call; a load that was already under way
        when this call began is never taken for a fresh one). ``shared`` (default:
        ``persist``) writes the value to the shared tier and reads it there, with a
        fleet-wide lock around the load: ``persist=False, shared=True`` opts a memory-only
        value (a secret) in. A refresh writes the shared tier but never reads it.
        """
        _check_key(key)
        return self._load(
            key, loader, ttl, stale_if_error, placement(persist, shared), max_age, refresh
        )

    def _load(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: float | None,
        stale_if_error: float | None,
        where: int,
        max_age: float | None,
        refresh: bool,
    ) -> T:
        if max_age == 0:  # "always load" (lambda-cache's forced refresh) is a refresh:
            refresh = True  # concurrent ones coalesce into one origin call
        if max_age is None:  # the caller's own ttl bounds the age; none: stored expiry alone
            max_age = _INF if ttl is None else ttl
        ttl = self.ttl if ttl is None else _check_seconds("ttl", ttl)
        sie = (
            self.stale_if_error
            if stale_if_error is None
            else _check_seconds("stale_if_error", stale_if_error)
        )
        bound = _INF if refresh else max_age
        # A refresh takes another call's load for its own only if that load began after this
        # call did and wrote something else than what this call found: a load already under way
        # may have read the origin before an update this caller knows of.
        since, seen = -_INF, None
        if refresh:
            since = self._clock()
            latest = self._latest(key, where)
            seen = None if latest is None else latest.identity
        look = where & ~SHARED if refresh else where  # the tiers this call reads
        if not refresh:
            found = self._current(key, bound, since, look, where)
            if found is not None:
                return found.value  # type: ignore[no-any-return]
        self.misses += 1
        started = time.monotonic()
        until = started + bounded_wait(self.lock_timeout)  # one budget for every lock
        chain: list[tuple[Tier, int]] = [(self._memory, MEMORY)]
        chain += [(t, bit) for t, bit in self._lower if look & bit and t.available]
        local = look & LOCAL
        with contextlib.ExitStack() as held_locks:
            for tier, bit in chain:
                held = held_locks.enter_context(tier.lock(key, _left(until)))
                if not held:
                    continue
                # Re-check: a peer may have stored it while this call waited. Remote tiers are
                # read again only once their own lock is held.
                found = self._current(key, bound, since, local | bit, where, seen)
                if found is not None:
                    return found.value  # type: ignore[no-any-return]
                if bit == MEMORY and self._memory.flight.failed_since(key, started):
                    stale = self._serve_stale(key, where, bound, sie)  # the load it waited for
                    if stale is not None:  # failed: no second origin call for it
                        return stale.value  # type: ignore[no-any-return]
            return self._call_loader(key, loader, ttl, sie, where, bound)

    def _serve_stale(
        self, key: str, where: int, bound: float, stale_if_error: float
    ) -> Entry | None:
        """An expired entry still inside the failing call's ``stale_if_error`` window."""
        if stale_if_error <= 0:
            return None
        entry = self._stale(key, where)
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
        where: int,
        bound: float,
    ) -> T:
        seen = self._latest(key, where)
        guard = Guard(self._clock(), None if seen is None else seen.identity)
        self.loads += 1
        try:
            value = loader()
        except Exception:
            self.origin_ms += _ms_since(self._clock, guard.stamp)
            self.load_errors += 1
            self._memory.flight.failed(key)
            stale = self._serve_stale(key, where, bound, stale_if_error)
            if stale is None:
                raise
            # Once per key and outage: a hot key must not log on every invocation.
            (log.debug if key in self._outages else log.warning)(
                "tiered-cache: loading %r failed; serving the stale value", key, exc_info=True
            )
            self._outages.add(key)
            return stale.value  # type: ignore[no-any-return]
        self.origin_ms += _ms_since(self._clock, guard.stamp)
        self._outages.discard(key)
        if isinstance(value, Placed):  # the loader narrows where its value may go
            value, where = value.value, (where & value.where) | MEMORY
        entry = self._new_entry(value, ttl, stale_if_error, now=guard.stamp)
        standing = self._store(key, entry, where, guard)
        if standing is not entry and not standing.is_tombstone:
            return standing.value  # type: ignore[no-any-return]  # a later write stands
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
        _check_key(key)
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
        sie = (
            self.stale_if_error
            if stale_if_error is None
            else _check_seconds("stale_if_error", stale_if_error)
        )
        self.misses += 1
        until = time.monotonic() + bounded_wait(self.lock_timeout)  # one bound for both waits
        with (
            self._memory.lock(key, _left(until)) as held,
            disk.lock(key, _left(until)) as locked,
        ):
            if held or locked:
                entry = self._file_entry(key, bound)
                if entry is not None:
                    return entry.value  # type: ignore[no-any-return]
            return self._fetch_file(disk, key, fetch, ttl, sie, bound)

    def _file_entry(self, key: str, bound: float) -> Entry | None:
        """A fresh file-backed entry whose file still exists, from memory or disk."""
        now = self._clock()
        not_before = self._not_before
        entry = self._memory.get(key)
        if _fresh(entry, now, bound, not_before) and _exists(entry.value):  # type: ignore[union-attr]
            entry.hits += 1  # type: ignore[union-attr]
            return entry
        disk = self._disk
        memory = entry
        entry = disk.get(key) if disk is not None and disk.available else None
        if entry is not None and _fresh(entry, now, bound, not_before):  # the disk tier checks
            self._promote(key, entry, DISK, LOCAL, now, memory)  # that the file is still there
            return entry
        return None

    def _fetch_file(
        self,
        disk: DiskTier,
        key: str,
        fetch: Callable[[IO[bytes], str | None], str | None],
        ttl: float,
        stale_if_error: float,
        bound: float,
    ) -> str:
        previous = self._stale(key, LOCAL)
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
            seen = self._latest(key, LOCAL)
            guard = Guard(started, None if seen is None else seen.identity)
            try:
                new_version = fetch(dest, version)
                dest.flush()
            except Exception as exc:
                self.origin_ms += _ms_since(self._clock, started)
                _discard(temp_path)
                self.load_errors += 1
                stale = self._serve_stale(key, LOCAL, bound, stale_if_error)
                if stale is None or not _exists(stale.value):
                    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise _disk_error(key, disk, exc) from exc  # the disk filled up
                    raise
                return stale.value  # type: ignore[no-any-return]
            self.origin_ms += _ms_since(self._clock, started)
            if new_version == NOT_MODIFIED:
                _discard(temp_path)
                if previous is None:
                    raise TieredCacheError(
                        "tiered-cache: fetch answered NOT_MODIFIED to no version"
                    )
                path: str = previous.value
                renewed = self._new_entry(path, ttl, stale_if_error, version, now=started)
                renewed.flags, renewed.size = previous.flags, len(path)
                lifetime = _lifetime(renewed, self._clock())
                standing = disk.put(key, renewed, file_payload(path), lifetime, guard)
                if standing is not None and not standing.is_tombstone:
                    renewed = standing
                self._memory.put(key, renewed, None, lifetime, guard)
                return renewed.value  # type: ignore[no-any-return]
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
            stored = disk.commit_file(key, temp_path, fresh, guard)
            if stored is not None and stored.is_tombstone:  # deleted while it downloaded
                raise TieredCacheError(
                    f"tiered-cache: the object for {key!r} was deleted from the cache while it "
                    "downloaded (the delete stands); ask again"
                )
            if stored is None:
                raise TieredCacheError(
                    f"tiered-cache: could not store the object for {key!r} in {disk.root}; "
                    "the disk tier failed (see the warning logged)"
                )
            lifetime = _lifetime(stored, self._clock())
            self._memory.put(key, stored, None, lifetime, guard)
            return stored.value  # type: ignore[no-any-return]
        finally:
            # A full disk left bytes in the buffer: close flushes them again, fails again (the
            # fault is handled above), and still closes the file and its lock: never raw.
            with contextlib.suppress(OSError):
                dest.close()

    # -- introspection -------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters since this cache was made (approximate under heavy threading)."""
        memory = self._memory.stats()
        disk = self._disk.stats() if self._disk is not None else {}
        return {
            "memory_hits": memory["memory_hits"],
            "disk_hits": self.disk_hits,
            "misses": self.misses,
            "loads": self.loads,
            "load_errors": self.load_errors,
            "stale_served": self.stale_served,
            "evictions": memory["memory_evictions"] + disk.get("disk_evictions", 0),
            "memory_items": memory["memory_items"],
            "memory_bytes": memory["memory_bytes"],
            "disk_errors": disk.get("disk_errors", 0),
            "disk_corrupt": disk.get("disk_corrupt", 0),
            "disk_lock_timeouts": disk.get("disk_lock_timeouts", 0),
            "lock_timeouts": self._memory.flight.timeouts,
            "shared_hits": self.shared_hits,
            "origin_ms": round(self.origin_ms),
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


Identity = tuple[float, float, "str | None"]


def _new(entry: Entry, since: float, seen: Identity | None) -> bool:
    """Written by a load that began at or after ``since``, and not the entry ``seen``."""
    return entry.stored_at >= since and (seen is None or entry.identity != seen)


def _check_key(key: Any) -> None:
    if type(key) is not str:
        raise TypeError(
            f"tiered-cache: a cache key must be a str, not {type(key).__name__} ({key!r:.40}); "
            "build one with an f-string or str.format"
        )


def _check_seconds(name: str, value: float) -> float:
    """A per-call number of seconds (every refusal a ``TypeError``, as the per-call API has
    always raised)."""
    try:
        return _checks.seconds(name, value)
    except ValueError as exc:
        raise TypeError(str(exc)) from None


def _disk_error(key: str, disk: DiskTier, exc: BaseException) -> TieredCacheError:
    return TieredCacheError(
        f"tiered-cache: could not write the object for {key!r} under {disk.root} ({exc}); "
        "the disk is full or unwritable: free /tmp, lower TIERED_CACHE_DISK_BYTES or raise "
        "the function's ephemeral storage"
    )


def _lifetime(entry: Entry, now: float) -> float:
    """Seconds a tier may keep ``entry``'s bytes: until its ``stale_until``, at most a century."""
    return min(_LIFETIME_MAX, entry.stale_until - now)


def _ms_since(clock: Callable[[], float], start: float) -> float:
    """Milliseconds from ``start`` to now by ``clock`` (never negative: a clock stepped back
    counts as no time)."""
    return max(0.0, clock() - start) * 1000.0


def _left(until: float) -> float:
    """Seconds of a lock-wait budget left before monotonic time ``until``: never below 0, and
    at most what a lock can wait for (``lock_timeout=inf`` means no limit of our own)."""
    return min(_WAIT_MAX, max(0.0, until - time.monotonic()))


def _exists(path: str) -> bool:
    return os.path.exists(path)


def _file_size(path: str) -> int:
    return os.stat(path).st_size


def _discard(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
