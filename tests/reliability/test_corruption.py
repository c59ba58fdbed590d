"""Issue 5, item 2: damaged bytes on disk are a miss and a clean reload, never an exception.

Values are stored inline in SQLite rows (one transaction per write), so "value files" are the
rows themselves and the object files of file-backed entries; both are damaged here, and the
database file itself is truncated, zeroed or overwritten, closed and while in use.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import IO, Any

import diskcache
import pytest

from tiered_cache._disk import disk_key

Damage = Callable[[bytes], bytes]

DAMAGES: dict[str, Damage] = {
    "truncated": lambda data: data[: len(data) // 2],
    "truncated-to-empty": lambda data: b"",
    "zeroed": lambda data: bytes(len(data)),
    "garbage": lambda data: os.urandom(len(data)),
    "one-bit-flipped": lambda data: data[:-1] + bytes([data[-1] ^ 1]),
    "garbage-appended": lambda data: data + os.urandom(100),
}

VALUE = {"name": "value", "blob": b"\x00\x01" * 5000, "n": [1, 2.5, None, True]}


def counting_loader(calls: list[int], value: Any) -> Callable[[], Any]:
    def load() -> Any:
        calls.append(1)
        return value

    return load


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_row_is_a_miss_and_a_clean_reload(
    make_cache: Callable[..., Any], damage: str
) -> None:
    writer = make_cache(ttl=600)
    writer.set("k", VALUE)
    raw = diskcache.Cache(writer._disk.db_dir)  # the store is diskcache's schema: damage with it
    raw.set(disk_key("k"), DAMAGES[damage](raw.get(disk_key("k"))))
    raw.close()

    reader = make_cache(ttl=600)  # empty memory: reads the damaged row
    assert reader.get("k") is None
    calls: list[int] = []
    assert reader.get_or_load("k", counting_loader(calls, VALUE)) == VALUE
    assert calls == [1]
    assert reader.stats()["disk_corrupt"] >= 1
    assert make_cache(ttl=600).get("k") == VALUE, "the reload was not stored on disk"


def file_fetch(body: bytes, calls: list[str | None]) -> Callable[[IO[bytes], str | None], str]:
    def fetch(dest: IO[bytes], version: str | None) -> str:
        calls.append(version)
        dest.write(body)
        return f"etag-{len(calls)}"

    return fetch


@pytest.mark.parametrize("damage", ["truncated", "truncated-to-empty", "garbage-appended"])
def test_damaged_object_file_is_a_miss_and_a_clean_refetch(
    make_cache: Callable[..., Any], damage: str
) -> None:
    body = os.urandom(50_000)
    calls: list[str | None] = []
    writer = make_cache(ttl=600)
    path = writer.load_file("obj", file_fetch(body, calls))
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(DAMAGES[damage](data))

    reader = make_cache(ttl=600)
    fresh = reader.load_file("obj", file_fetch(body, calls))
    assert calls == [None, None], "the damaged file was served, or revalidated by its ETag"
    with open(fresh, "rb") as f:
        assert f.read() == body


@pytest.mark.parametrize("damage", ["zeroed", "garbage"])
def test_same_size_damage_to_an_object_file_is_detected(
    make_cache: Callable[..., Any], damage: str
) -> None:
    body = os.urandom(50_000)
    calls: list[str | None] = []
    path = make_cache(ttl=600).load_file("obj", file_fetch(body, calls))
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(DAMAGES[damage](data))
    fresh = make_cache(ttl=600).load_file("obj", file_fetch(body, calls))
    with open(fresh, "rb") as f:
        served_whole = f.read() == body  # a bool: pytest's diff of 50 KB of bytes takes minutes
    assert served_whole


def damage_file(path: str, damage: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(DAMAGES[damage](data))


def exercise(cache: Any, expect_old: bool, files: bool = True) -> None:
    """Every public operation works (or misses) on a damaged store, then a clean cycle."""
    old = cache.get("k")
    assert old is None or (expect_old and old == VALUE)
    calls: list[int] = []
    assert cache.get_or_load("fresh", counting_loader(calls, [1, "x"])) == [1, "x"]
    cache.set("k2", "v2")
    cache.delete("gone")
    if files:
        path = cache.load_file("obj", lambda dest, _v: dest.write(b"body") and "e1")
        with open(path, "rb") as f:
            assert f.read() == b"body"
    assert cache.get("k2") == "v2"


@pytest.mark.parametrize("damage", ["truncated", "zeroed", "garbage"])
def test_corrupt_database_file_when_opened_is_rebuilt(
    make_cache: Callable[..., Any], damage: str
) -> None:
    writer = make_cache(ttl=600)
    for i in range(50):
        writer.set(f"k{i}", VALUE)
    writer.set("k", VALUE)
    disk = writer._disk
    disk._close()
    db = os.path.join(disk.db_dir, "cache.db")
    damage_file(db, damage)

    reader = make_cache(ttl=600)
    exercise(reader, expect_old=False)
    assert make_cache(ttl=600).get("k2") == "v2", "the rebuilt store does not persist"


@pytest.mark.parametrize("damage", ["zeroed", "garbage"])
def test_database_corrupted_while_in_use_degrades_then_rebuilds(
    make_cache: Callable[..., Any], damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Damage under a live connection: the next process to open it rebuilds; nobody raises."""
    live = make_cache(ttl=600, memory_items=1)
    for i in range(50):
        live.set(f"k{i}", VALUE)
    live.set("k", VALUE)
    live._disk._checkpoint(live._disk._db())
    damage_file(os.path.join(live._disk.db_dir, "cache.db"), damage)

    caplog.set_level("WARNING", logger="tiered_cache")
    newcomer = make_cache(ttl=600, memory_items=1)
    exercise(newcomer, expect_old=False)
    exercise(live, expect_old=True)  # its own consistent view; no exception
    stats = newcomer.stats()
    assert stats["disk_errors"] + stats["disk_corrupt"] >= 1, "the damage was never noticed"
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) <= 2, [r.getMessage() for r in warnings]
    exercise(newcomer, expect_old=False)
    assert make_cache(ttl=600).get("k2") == "v2", "the rebuilt store does not persist"


def test_foreign_sqlite_file_in_place_of_the_database(make_cache: Callable[..., Any]) -> None:
    """A valid SQLite file of another schema is an outage, not corruption: memory + origin.

    (File-backed entries then raise TieredCacheError, as documented for a disk tier down.)
    """
    cache = make_cache()
    cache.set("k", VALUE)
    disk = cache._disk
    disk._close()
    for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
        path = os.path.join(disk.db_dir, name)
        if os.path.exists(path):
            os.remove(path)
    con = sqlite3.connect(os.path.join(disk.db_dir, "cache.db"))
    con.execute("CREATE TABLE Cache (x)")
    con.commit()
    con.close()
    degraded = make_cache()
    exercise(degraded, expect_old=False, files=False)
    assert degraded.stats()["disk_errors"] == 1
