"""Items 1 and 2: lookup order memory ▶ disk ▶ loader, promotion with the remaining lifetime,
and a second real process reading what the first stored without calling its loader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tiered_cache as tiered
from tiered_cache._disk import disk_key


class Loader:
    """A loader that counts its calls and returns successive values."""

    def __init__(self, *values: Any) -> None:
        self.values = list(values) or ["value"]
        self.calls = 0

    def __call__(self) -> Any:
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        return value


def _delete_disk_row(cache: Any, key: str) -> None:
    import diskcache

    plain = diskcache.Cache(cache._disk.db_dir)
    try:
        assert plain.delete(disk_key(key))
    finally:
        plain.close()


def test_memory_is_read_before_disk(make_cache: Any) -> None:
    cache = make_cache()
    cache.set("k", "v")
    _delete_disk_row(cache, "k")  # only memory has it now
    loader = Loader("other")
    assert cache.get("k") == "v"
    assert cache.get_or_load("k", loader) == "v"
    assert loader.calls == 0
    stats = cache.stats()
    assert stats["memory_hits"] == 2
    assert stats["disk_hits"] == 0


def test_disk_is_read_before_the_loader_and_promoted(make_cache: Any) -> None:
    make_cache().set("k", [1, "two"])
    cache = make_cache()  # a new process: empty memory, same directory
    loader = Loader("from origin")
    assert cache.get_or_load("k", loader) == [1, "two"]
    assert loader.calls == 0
    assert cache.stats()["disk_hits"] == 1
    assert "k" in cache._memory.data  # promoted
    _delete_disk_row(cache, "k")
    assert cache.get_or_load("k", loader) == [1, "two"]  # now served from memory
    assert cache.stats()["memory_hits"] == 1
    assert loader.calls == 0


def test_loader_runs_when_both_tiers_miss_and_result_lands_in_both(make_cache: Any) -> None:
    cache = make_cache()
    loader = Loader({"a": 1})
    assert cache.get_or_load("k", loader) == {"a": 1}
    assert loader.calls == 1
    stats = cache.stats()
    assert (stats["misses"], stats["loads"]) == (1, 1)
    assert cache.get_or_load("k", loader) == {"a": 1}
    assert loader.calls == 1
    assert make_cache().get("k") == {"a": 1}  # on disk too


def test_disk_hit_is_promoted_with_remaining_lifetime_not_a_fresh_ttl(
    make_cache: Any, fake_clock: Any
) -> None:
    start = fake_clock()
    make_cache(ttl=100).set("k", "v")
    fake_clock.advance(60)
    reader = make_cache(ttl=100)
    assert reader.get("k") == "v"
    assert reader._memory.data["k"].expires_at == start + 100
    fake_clock.advance(39.5)
    assert reader.get("k") == "v"  # still inside the original lifetime
    fake_clock.advance(0.5)  # start + 100: expired, though promoted only 40 s ago
    assert reader.get("k", "MISS") == "MISS"
    loader = Loader("new")
    assert reader.get_or_load("k", loader) == "new"
    assert loader.calls == 1


def test_none_is_a_value_not_a_miss(make_cache: Any) -> None:
    cache = make_cache()
    loader = Loader(None)
    assert cache.get_or_load("k", loader) is None
    assert cache.get_or_load("k", loader) is None
    assert loader.calls == 1
    assert cache.get("k", "default") is None
    assert make_cache().get("k", "default") is None  # from disk too
    assert cache.get("absent", "default") == "default"


def test_persist_false_keeps_values_out_of_the_disk(make_cache: Any) -> None:
    cache = make_cache()
    cache.get_or_load("secret", Loader("s3cr3t"), persist=False)
    cache.set("also", "hidden", persist=False)
    assert cache.get("secret") == "s3cr3t"
    assert make_cache().get("secret") is None
    assert make_cache().get("also") is None
    data = b"".join(p.read_bytes() for p in Path(cache._disk.root).rglob("*") if p.is_file())
    assert b"s3cr3t" not in data
    assert b"hidden" not in data


def test_memory_only_cache(make_cache: Any) -> None:
    cache = make_cache(disk=False)
    assert cache.directory is None
    loader = Loader(1)
    assert cache.get_or_load("k", loader) == 1
    assert cache.get_or_load("k", loader) == 1
    assert loader.calls == 1
    cache.set("t", (1, 2))  # no disk: any value
    assert cache.get("t") == (1, 2)
    assert cache.delete("t") is True
    cache.clear()
    assert cache.get("k") is None
    assert cache.stats()["disk_errors"] == 0


def test_caller_ttl_bounds_the_age_of_an_entry(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=100)
    cache.set("k", "v")
    fake_clock.advance(30)
    assert cache.get("k") == "v"  # stored expiry alone
    assert cache.get("k", ttl=31) == "v"
    assert cache.get("k", "stale", ttl=30) == "stale"  # older than this caller's bound
    loader = Loader("new")
    assert cache.get_or_load("k", loader, ttl=60) == "v"
    assert cache.get_or_load("k", loader, ttl=20) == "new"
    assert loader.calls == 1


def test_load_max_age_and_refresh(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=100)
    cache.set("k", "old")
    loader = Loader("new", "newer")
    assert cache.load("k", loader, max_age=0) == "new"  # always loads
    assert cache.get("k") == "new"
    assert cache.load("k", loader, refresh=True) == "newer"
    assert loader.calls == 2
    assert make_cache().get("k") == "newer"


def test_expire_all_makes_earlier_entries_expired_in_every_tier(
    make_cache: Any, fake_clock: Any
) -> None:
    cache = make_cache(ttl=100)
    cache.set("k", "snapshot")
    fake_clock.advance(1)
    cache.expire_all()
    assert cache.get("k") is None  # memory cleared
    loader = Loader("restored")
    assert cache.get_or_load("k", loader) == "restored"  # disk copy not served either
    assert loader.calls == 1


def test_delete_and_clear(make_cache: Any) -> None:
    cache = make_cache()
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert cache.get("a") is None
    cache.clear()
    assert cache.get("b") is None
    assert make_cache().get("b") is None


def test_stats_has_the_documented_counters(make_cache: Any) -> None:
    stats = make_cache().stats()
    for name in (
        "memory_hits",
        "disk_hits",
        "misses",
        "loads",
        "load_errors",
        "stale_served",
        "evictions",
    ):
        assert stats[name] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl": -1}, "ttl"),
        ({"stale_if_error": -1}, "stale_if_error"),
        ({"lock_timeout": -1}, "lock_timeout"),
        ({"jitter": 1.0}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"serializer": "json"}, "serializer"),
        ({"memory_items": 0}, "memory_items"),
    ],
)
def test_bad_arguments_are_refused(make_cache: Any, kwargs: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_cache(**kwargs)


@pytest.mark.parametrize("ttl", [-1, "60", True, [60]])
def test_bad_ttl_per_call_is_a_typeerror(make_cache: Any, ttl: Any) -> None:
    cache = make_cache()
    with pytest.raises(TypeError, match="ttl must be a number"):
        cache.set("k", "v", ttl=ttl)
    with pytest.raises(TypeError, match="ttl must be a number"):
        cache.get_or_load("k", Loader(), ttl=ttl)


def test_introspection(make_cache: Any, cache_dir: str, fake_clock: Any) -> None:
    cache = make_cache(ttl=12)
    assert cache.directory == cache_dir
    assert cache.clock is fake_clock
    assert repr(cache) == f"TieredCache(directory={cache_dir!r}, ttl=12.0)"


# -- item 2: a second real process ----

_CHILD = """
import json, sys
import tiered_cache as tiered

directory, calls_file, mode = sys.argv[1:4]
cache = tiered.TieredCache(directory=directory)

def loader():
    with open(calls_file, "a") as f:
        f.write("call\\n")
    return {"from": "child"}

if mode == "read":
    value = cache.get_or_load("shared", loader)
else:
    cache.set("from-child", ["child", 2])
    value = None
print(json.dumps({"value": value, "stats": cache.stats()}))
"""


def test_second_process_reads_without_calling_its_loader(
    cache_dir: str, tmp_path: Path, python_subprocess: Any
) -> None:
    calls = tmp_path / "calls"
    cache = tiered.TieredCache(directory=cache_dir, ttl=600)  # real clock, as the child's
    cache.set("shared", {"from": "parent", "n": [1, 2.5, None]})
    out = python_subprocess(_CHILD, cache_dir, str(calls), "read")
    result = json.loads(out.stdout)
    assert result["value"] == {"from": "parent", "n": [1, 2.5, None]}
    assert result["stats"]["disk_hits"] == 1
    assert result["stats"]["loads"] == 0
    assert not calls.exists()


def test_value_stored_by_another_process_is_read_here(
    cache_dir: str, tmp_path: Path, python_subprocess: Any
) -> None:
    cache = tiered.TieredCache(directory=cache_dir, ttl=600)
    assert cache.get("from-child") is None
    python_subprocess(_CHILD, cache_dir, str(tmp_path / "calls"), "write")
    loader = Loader("parent loaded")
    assert cache.get_or_load("from-child", loader) == ["child", 2]
    assert loader.calls == 0


def test_memory_only_loader_result_stays_out_of_the_disk(make_cache: Any) -> None:
    from tiered_cache._tier import MEMORY, Placed

    cache = make_cache()
    assert cache.get_or_load("secret", lambda: Placed("s3cr3t", MEMORY)) == "s3cr3t"
    assert cache.get_or_load("secret", Loader("again")) == "s3cr3t"
    assert make_cache().get("secret") is None


def test_database_lock_timeout_is_a_skipped_write_without_warning(
    make_cache: Any, caplog: Any
) -> None:
    import logging
    import sqlite3

    cache = make_cache()
    cache._disk.timeout = 0.05  # diskcache's busy timeout, read when the store opens
    cache.set("before", "v")
    blocker = sqlite3.connect(Path(cache._disk.db_dir) / "cache.db", timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="tiered_cache"):
            cache.set("during", "memory only")
            assert cache.get("during") == "memory only"
            cache._memory.clear()
            assert cache.get("before", "MISS") in ("v", "MISS")
    finally:
        blocker.rollback()
        blocker.close()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert cache.stats()["disk_lock_timeouts"] >= 1
    assert cache.stats()["disk_errors"] == 0
    cache.set("after", "v")  # the tier was never disabled
    assert make_cache().get("after") == "v"


def test_disk_fault_in_delete_and_clear_never_raises(make_cache: Any) -> None:
    import sqlite3

    for action in ("delete", "clear"):
        cache = make_cache()
        cache.set("k", "v")
        db = sqlite3.connect(Path(cache._disk.db_dir) / "cache.db")
        db.execute("DROP TABLE Cache")
        db.commit()
        db.close()
        if action == "delete":
            assert cache.delete("k") is True  # memory held it
        else:
            cache.clear()
        assert cache.get("k") is None
        assert cache.stats()["disk_errors"] == 1
        cache._disk._broken_until = 0.0  # as if retry_after had passed: the store reopens
        cache.set("k", "again")
        assert make_cache().get("k") == "again"
