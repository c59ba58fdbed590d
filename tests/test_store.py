"""The disk tier's database, opened with sqlite3 alone (``_store``): the same schema, settings
and pragmas as ``diskcache.Cache`` makes for the tier's settings, readable by diskcache both
ways, made once when many processes open a new directory at the same moment, and completed
when it was left half made."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import diskcache
import pytest

import tiered_cache as tiered
from tiered_cache._disk import disk_key
from tiered_cache._store import SETTINGS, Store


def _describe(db: str) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return {
            "schema": sorted(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")),
            "settings": sorted(con.execute("SELECT key, value FROM Settings")),
            "auto_vacuum": con.execute("PRAGMA auto_vacuum").fetchone(),
            "journal_mode": con.execute("PRAGMA journal_mode").fetchone(),
        }


def test_the_store_makes_what_diskcache_makes(tmp_path: Path) -> None:
    os.mkdir(tmp_path / "ours")
    Store(str(tmp_path / "ours"), 2.0).close()
    theirs = diskcache.Cache(str(tmp_path / "theirs"), **SETTINGS)
    theirs.close()
    made = _describe(str(tmp_path / "ours" / "cache.db"))
    expected = _describe(str(tmp_path / "theirs" / "cache.db"))
    assert made == expected
    assert made["auto_vacuum"] == (1,)
    assert made["journal_mode"] == ("wal",)


def test_each_connection_gets_the_tiers_pragmas(tmp_path: Path) -> None:
    store = Store(str(tmp_path), 2.0)
    seen: dict[str, Any] = {}

    def pragmas() -> None:
        con = store._con  # this thread's own connection
        seen[threading.current_thread().name] = [
            con.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("mmap_size", "synchronous", "journal_size_limit", "journal_mode")
        ]
        store.close()

    pragmas()  # the connection that made the database
    other = threading.Thread(target=pragmas, name="other")
    other.start()
    other.join()
    # never mapped (see SETTINGS), fsync at checkpoints only, a bounded WAL, WAL mode
    expected = [0, 1, 2**20, "wal"]
    assert seen == {threading.current_thread().name: expected, "other": expected}


def test_diskcache_reads_what_the_tier_wrote_and_the_tier_reads_what_diskcache_wrote(
    make_cache: Any,
) -> None:
    cache = make_cache()
    cache.set("ours", "written by the tier")
    db_dir = cache._disk.db_dir
    plain = diskcache.Cache(db_dir)
    assert plain.get(disk_key("ours")) is not None  # the tier's row, under its hashed name
    assert len(plain) == 1  # diskcache's own triggers counted the tier's row
    plain.close()
    other = make_cache()
    cache.set("second", 2)
    other._memory.clear()
    assert other.get("second") == 2
    assert other.get("ours") == "written by the tier"


def test_a_half_made_database_is_completed(tmp_path: Path) -> None:
    db_dir = tmp_path / "c" / "db"
    db_dir.mkdir(parents=True, mode=0o700)
    os.chmod(tmp_path / "c", 0o700)
    with contextlib.closing(sqlite3.connect(db_dir / "cache.db")) as con:  # killed mid-way
        con.execute("CREATE TABLE Settings ( key TEXT NOT NULL UNIQUE, value)")
        con.commit()
    cache = tiered.TieredCache(directory=str(tmp_path / "c"))
    cache.set("k", "v")
    cache._memory.clear()
    assert cache.get("k") == "v"
    assert cache.stats()["disk_errors"] == 0
    names = {row[1] for row in _describe(str(db_dir / "cache.db"))["schema"]}
    assert {"Cache", "Settings_size_insert", "Settings_size_delete", "Cache_key_raw"} <= names


def _open_and_write(directory: str, index: int, barrier: Any, out: Any) -> None:
    barrier.wait()
    cache = tiered.TieredCache(directory=directory)
    cache.set(f"k{index}", index)
    out.put((index, cache.stats()["disk_errors"], cache.stats()["disk_lock_timeouts"]))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_many_processes_making_a_new_database_at_once(tmp_path: Path) -> None:
    directory = str(tmp_path / "crowd")
    ctx = multiprocessing.get_context("fork")
    n = 12
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_open_and_write, args=(directory, i, barrier, out)) for i in range(n)
    ]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert [r[0] for r in results] == list(range(n))
    assert all(errors == 0 and timeouts == 0 for _, errors, timeouts in results), results
    reader = tiered.TieredCache(directory=directory)
    assert [reader.get(f"k{i}") for i in range(n)] == list(range(n))  # every write landed
    with contextlib.closing(sqlite3.connect(os.path.join(directory, "db", "cache.db"))) as con:
        assert con.execute("SELECT value FROM Settings WHERE key = 'count'").fetchone() == (n,)
    alone = tmp_path / "alone"
    alone.mkdir()
    Store(str(alone), 2.0).close()
    made = _describe(os.path.join(directory, "db", "cache.db"))
    expected = _describe(str(alone / "cache.db"))
    assert made["schema"] == expected["schema"]  # made once, whoever made it
