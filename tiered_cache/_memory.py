"""The memory tier: a bounded store of envelopes for this process.

Thread-safe. Reads take no lock: a hit is one ``dict.get`` and the hit rule's ``entry.hits +=
1`` (see ``_hit``). Writes, deletes and evictions serialize on one lock, which a forked child
replaces with a fresh one. Bounded by item count and by the approximate byte size of the values
(``Entry.size``). Eviction is CLOCK, a close approximation of LRU that costs a hit nothing: the
oldest-inserted entry goes first, unless it was hit since eviction last looked at it, in which
case it is moved to the back once (a second chance). It knows nothing about time: freshness is
the core's (``_hit``), and a guarded write (``Guard``) is how the core keeps an older load from
replacing a newer entry.

Its lock for single-flight is the per-key thread lock of :class:`~tiered_cache._flight.Flight`.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from contextlib import AbstractContextManager
from typing import Any

from . import _fork
from ._entry import Entry, Guard
from ._flight import Flight

__all__ = ["MemoryTier", "approximate_size"]

_ENTRY_OVERHEAD = 200  # the Entry object, its dict slot and key, roughly


def approximate_size(value: Any, depth: int = 0) -> int:
    """Approximate bytes held by ``value`` (containers counted to a bounded depth)."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value) + 50
    if depth < 8 and (kind is list or kind is tuple or kind is set or kind is frozenset):
        return 56 + sum(approximate_size(v, depth + 1) + 8 for v in value)
    if depth < 8 and kind is dict:
        return 64 + sum(
            approximate_size(k, depth + 1) + approximate_size(v, depth + 1) + 16
            for k, v in value.items()
        )
    return sys.getsizeof(value)


class MemoryTier:
    """A thread-safe, bounded store of envelopes (``max_items``, ``max_bytes``)."""

    name = "memory"
    remote = False
    available = True

    def __init__(self, max_items: int, max_bytes: int) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError("memory_items and memory_bytes must be at least 1")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.data: OrderedDict[str, Entry] = OrderedDict()
        self.bytes = 0
        self.evictions = 0
        self.flight = Flight()
        self._gone_hits = 0  # hits of entries no longer held (their counts live on the entry)
        self._lock = threading.Lock()
        _fork.after_fork_in_child(self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    # -- the tier protocol -------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The entry under ``key`` (fresh or not, tombstones included); lock-free."""
        return self.data.get(key)

    def put(
        self,
        key: str,
        entry: Entry,
        payload: bytes | None = None,
        lifetime: float = 0.0,
        guard: Guard | None = None,
    ) -> Entry | None:
        """Store ``entry``; None when stored, or the standing entry a ``guard`` kept.

        An entry larger than the whole byte bound is not kept (and drops the old one).
        """
        cost = entry.size + _ENTRY_OVERHEAD + len(key)
        with self._lock:
            data = self.data
            if guard is not None:
                current = data.get(key)
                if not guard.allows(current):
                    return current
            old = data.pop(key, None)
            if old is not None:
                self._forget(key, old)
            if cost > self.max_bytes:
                return None
            data[key] = entry
            self.bytes += cost
            if len(data) > self.max_items or self.bytes > self.max_bytes:
                self._evict()
        return None

    def _evict(self) -> None:
        """CLOCK: drop from the front, giving an entry hit since its last look one more round."""
        data = self.data
        chances = len(data)  # every entry gets at most one second chance per eviction
        while data and (len(data) > self.max_items or self.bytes > self.max_bytes):
            key, entry = data.popitem(last=False)
            if chances > 0 and entry.hits != entry.seen:
                chances -= 1
                entry.seen = entry.hits
                data[key] = entry
                continue
            self._forget(key, entry)
            self.evictions += 1

    def _forget(self, key: str, entry: Entry) -> None:
        self.bytes -= entry.size + _ENTRY_OVERHEAD + len(key)
        self._gone_hits += entry.hits

    def delete(self, key: str, tombstone: Entry | None = None) -> bool:
        """Drop ``key``; with ``tombstone``, leave it in its place (see ``Guard``). True if a
        live entry was there."""
        with self._lock:
            old = self.data.pop(key, None)
            if old is not None:
                self._forget(key, old)
            if tombstone is not None:
                self.data[key] = tombstone
                self.bytes += _ENTRY_OVERHEAD + len(key)
                if len(self.data) > self.max_items:
                    self._evict()
            return old is not None and not old.is_tombstone

    def clear(self) -> None:
        with self._lock:
            self._gone_hits += sum(entry.hits for entry in self.data.values())
            self.data.clear()
            self.bytes = 0

    def close(self) -> None:
        """Nothing is held open: the entries stay."""

    def stats(self) -> dict[str, int]:
        entries = list(self.data.values())
        return {
            "memory_hits": self._gone_hits + sum(entry.hits for entry in entries),
            "memory_items": len(entries),
            "memory_bytes": self.bytes,
            "memory_evictions": self.evictions,
        }

    def lock(self, key: str, wait: float) -> AbstractContextManager[bool]:
        """The per-key thread lock: single-flight among this process's threads."""
        return self.flight.hold(key, wait)

    def __len__(self) -> int:
        return len(self.data)
