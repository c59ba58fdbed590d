"""The memory tier: a bounded LRU of envelopes for this process.

Thread-safe. Reads take no lock: a hit is one ``dict.get`` plus one ``move_to_end``, each
atomic under the GIL. Writes, deletes and evictions serialize on one lock. Bounded by item count
and by the approximate byte size of the values (``Entry.size``); the least recently used entry
is evicted first. It knows nothing about time.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any

from ._entry import Entry

__all__ = ["MemoryTier", "approximate_size"]

_ENTRY_OVERHEAD = 200  # the Entry object, its dict slot and key, roughly


def approximate_size(value: Any, depth: int = 0) -> int:
    """Approximate bytes held by ``value`` (containers counted to a bounded depth)."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value) + 50
    if depth < 8 and (kind is list or kind is tuple):
        return 56 + sum(approximate_size(v, depth + 1) + 8 for v in value)
    if depth < 8 and kind is dict:
        return 64 + sum(
            approximate_size(k, depth + 1) + approximate_size(v, depth + 1) + 16
            for k, v in value.items()
        )
    return sys.getsizeof(value)


class MemoryTier:
    """A thread-safe LRU of envelopes, bounded by ``max_items`` and ``max_bytes``."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError("memory_items and memory_bytes must be at least 1")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.data: OrderedDict[str, Entry] = OrderedDict()
        self.bytes = 0
        self.evictions = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        """The entry under ``key`` (fresh or not), marked most recently used; lock-free."""
        entry = self.data.get(key)
        if entry is not None:
            try:
                self.data.move_to_end(key)
            except KeyError:  # evicted by another thread in between
                pass
        return entry

    def set(self, key: str, entry: Entry) -> None:
        """Store ``entry``; an entry larger than the whole byte bound is not kept."""
        cost = entry.size + _ENTRY_OVERHEAD + len(key)
        with self._lock:
            old = self.data.pop(key, None)
            if old is not None:
                self.bytes -= old.size + _ENTRY_OVERHEAD + len(key)
            if cost > self.max_bytes:
                return
            self.data[key] = entry
            self.bytes += cost
            while len(self.data) > self.max_items or self.bytes > self.max_bytes:
                old_key, old_entry = self.data.popitem(last=False)
                self.bytes -= old_entry.size + _ENTRY_OVERHEAD + len(old_key)
                self.evictions += 1

    def delete(self, key: str) -> bool:
        with self._lock:
            old = self.data.pop(key, None)
            if old is None:
                return False
            self.bytes -= old.size + _ENTRY_OVERHEAD + len(key)
            return True

    def clear(self) -> None:
        with self._lock:
            self.data.clear()
            self.bytes = 0

    def __len__(self) -> int:
        return len(self.data)
