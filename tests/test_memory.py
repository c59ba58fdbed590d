"""The memory tier: bounded by items and by bytes; eviction is CLOCK (LRU's close cousin: an
entry hit since eviction last looked at it gets a second chance)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tiered_cache._entry import Entry
from tiered_cache._memory import _ENTRY_OVERHEAD, MemoryTier, approximate_size


def _entry(value: Any = "v", size: int = 10) -> Entry:
    return Entry(value, 0.0, 1.0, 1.0, size=size)


def _hit(tier: MemoryTier, key: str) -> None:
    """What the one hit rule (``_hit``) does to an entry it serves from memory."""
    entry = tier.get(key)
    assert entry is not None
    entry.hits += 1


def test_item_bound_evicts_the_entry_not_hit_since_it_was_last_looked_at() -> None:
    tier = MemoryTier(max_items=3, max_bytes=10**9)
    for key in "abc":
        tier.put(key, _entry(key))
    _hit(tier, "a")  # a is now the most recent
    tier.put("d", _entry("d"))
    assert list(tier.data) == ["c", "d", "a"]  # b went; a was moved behind the newcomer
    assert tier.get("b") is None
    assert len(tier) == 3
    assert tier.evictions == 1


def test_byte_bound_evicts_until_under_budget() -> None:
    per = 1000 + _ENTRY_OVERHEAD + 1
    tier = MemoryTier(max_items=100, max_bytes=3 * per)
    for key in "abc":
        tier.put(key, _entry(size=1000))
    assert tier.bytes == 3 * per
    _hit(tier, "a")
    tier.put("d", _entry(size=1000))
    assert set(tier.data) == {"a", "c", "d"}
    tier.put("e", _entry(size=2000))  # needs two slots: c, then d (a had its second chance
    assert set(tier.data) == {"a", "e"}  # after d was stored, so it is the more recent)
    assert tier.bytes <= tier.max_bytes
    assert tier.evictions == 3


def test_entry_larger_than_byte_bound_is_not_kept_and_drops_old_value() -> None:
    tier = MemoryTier(max_items=10, max_bytes=500)
    tier.put("k", _entry(size=10))
    tier.put("k", _entry(size=10_000))
    assert tier.get("k") is None
    assert tier.bytes == 0


def test_replacing_a_key_keeps_byte_count_exact() -> None:
    tier = MemoryTier(max_items=10, max_bytes=10**6)
    tier.put("k", _entry(size=100))
    tier.put("k", _entry(size=300))
    assert tier.bytes == 300 + _ENTRY_OVERHEAD + 1
    assert tier.delete("k") is True
    assert tier.delete("k") is False
    assert tier.bytes == 0
    tier.put("x", _entry())
    tier.clear()
    assert len(tier) == 0
    assert tier.bytes == 0


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MemoryTier(0, 10)
    with pytest.raises(ValueError, match="at least 1"):
        MemoryTier(10, 0)


def test_approximate_size_grows_with_content() -> None:
    assert approximate_size("x" * 1000) > approximate_size("x")
    assert approximate_size(b"x" * 1000) >= 1000
    assert approximate_size(["x" * 500, "y" * 500]) > 1000
    assert approximate_size({"k": "v" * 1000}) > 1000
    assert approximate_size((1, 2, 3)) > approximate_size(())
    assert approximate_size(12345) > 0


def test_concurrent_writers_keep_bounds() -> None:
    tier = MemoryTier(max_items=50, max_bytes=50 * (100 + _ENTRY_OVERHEAD + 8))
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(500):
            key = f"{n}-{i}"
            tier.put(key, _entry(size=100))
            previous = tier.get(f"{n}-{i - 1}")
            if previous is not None:
                previous.hits += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(tier) <= 50
    assert tier.bytes <= tier.max_bytes
    assert tier.bytes == sum(e.size + _ENTRY_OVERHEAD + len(k) for k, e in tier.data.items())


def test_cache_memory_bounds_by_items(make_cache: Any) -> None:
    cache = make_cache(disk=False, memory_items=3)
    for key in "abcd":
        cache.set(key, key)
    assert cache.get("a") is None
    assert [cache.get(k) for k in "bcd"] == ["b", "c", "d"]
    assert cache.stats()["evictions"] == 1
    assert cache.stats()["memory_items"] == 3


def test_cache_memory_bounds_by_bytes(make_cache: Any) -> None:
    cache = make_cache(disk=False, memory_bytes=5000)
    for i in range(10):
        cache.set(f"k{i}", "x" * 1000)
    stats = cache.stats()
    assert stats["memory_bytes"] <= 5000
    assert stats["memory_items"] < 10
    assert cache.get("k9") == "x" * 1000
    assert cache.get("k0") is None


def test_memory_hit_refreshes_recency_through_the_cache(make_cache: Any) -> None:
    cache = make_cache(disk=False, memory_items=2)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1  # a becomes most recent
    cache.set("c", 3)
    assert cache.get("b") is None
    assert cache.get("a") == 1
    assert cache.get_or_load("a", lambda: 99) == 1  # the get_or_load hit path also refreshes
    cache.set("d", 4)
    assert cache.get("c") is None
    assert cache.get("a") == 1
