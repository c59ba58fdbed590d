"""Item 9: a failing disk tier degrades to memory + loader with exactly one warning through
``logging``, and the caller never sees the disk's exception: sqlite errors, ENOSPC on a real
small tmpfs, a read-only directory (a read-only tmpfs: root ignores permission bits), and a
corrupt database file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import tiered_cache as tiered


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("tiered_cache") and r.levelno >= logging.WARNING
    ]


def _exercise(cache: Any, rounds: int = 10, size: int = 20_000) -> None:
    """Everything a caller does; any exception here fails the test."""
    for i in range(rounds):
        key = f"after-{i}"
        calls: list[int] = []

        def loader(i: int = i, calls: list[int] = calls) -> str:
            calls.append(1)
            return f"{i}:" + "x" * size

        assert cache.get_or_load(key, loader).startswith(f"{i}:")
        assert cache.get_or_load(key, loader).startswith(f"{i}:")  # memory still works
        assert calls == [1]
        cache.set(f"set-{i}", "y" * size)
        assert cache.get(f"set-{i}") == "y" * size
        cache.get(f"absent-{i}")
        cache.delete(f"set-{i}")
    cache.clear()


def test_sqlite_error_degrades_with_one_warning_and_recovers(
    make_cache: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache()
    cache._disk.retry_after = 0.0  # retry at once: the test sees a fault, then recovery
    cache.set("before", "v")
    cache._memory.clear()
    db = sqlite3.connect(os.path.join(cache._disk.db_dir, "cache.db"))
    db.execute("DROP TABLE Cache")  # an sqlite error for every statement the store runs
    db.commit()
    db.close()
    with caplog.at_level(logging.WARNING):
        assert cache.get("before", "MISS") == "MISS"
        _exercise(cache)
    warnings = _warnings(caplog)
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    assert "serving from memory" in warnings[0].getMessage()
    assert cache.stats()["disk_errors"] >= 1
    # The retry reopened the store (diskcache recreates its table): the disk works again.
    cache.set("later", "on disk")
    assert make_cache().get("later") == "on disk"


def _fill(path: Path) -> None:
    """Fill the file system holding ``path`` to the last byte."""
    with open(path / "filler", "wb", buffering=0) as f:
        for chunk in (b"\0" * 65536, b"\0" * 512, b"\0"):
            try:
                while True:
                    f.write(chunk)
            except OSError:
                pass


def test_disk_full_degrades_with_one_warning(
    tmpfs: Any, tmp_path: Path, fake_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mnt = tmpfs(tmp_path / "full", size="2m")
    cache = tiered.TieredCache(
        directory=str(mnt / "c"), disk_bytes=64 * 2**20, clock=fake_clock, jitter=0
    )
    cache.set("before", "kept")
    _fill(mnt)
    with pytest.raises(OSError, match="No space"):
        (mnt / "probe").write_bytes(b"x" * 4096)
    with caplog.at_level(logging.WARNING):
        _exercise(cache, rounds=20)
    warnings = _warnings(caplog)
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    assert "full" in warnings[0].getMessage() or "space" in warnings[0].getMessage()
    assert cache.stats()["disk_errors"] >= 1
    # Room again: a new cache on the same directory reads what was stored before the fault.
    os.remove(mnt / "filler")
    fresh = tiered.TieredCache(directory=str(mnt / "c"), clock=fake_clock)
    assert fresh.get("before") == "kept"
    fresh.set("after", "fits")
    assert tiered.TieredCache(directory=str(mnt / "c"), clock=fake_clock).get("after") == "fits"


def test_default_budget_on_a_small_file_system_prevents_enospc(
    tmpfs: Any, tmp_path: Path, fake_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mnt = tmpfs(tmp_path / "small", size="2m")
    cache = tiered.TieredCache(directory=str(mnt / "c"), clock=fake_clock)
    assert cache._disk.budget == 2**20
    with caplog.at_level(logging.WARNING):
        for i in range(60):  # ~3 MB through a 2 MB file system
            cache.set(f"k{i}", "z" * 50_000)
    assert _warnings(caplog) == []
    assert cache.stats()["disk_errors"] == 0
    assert cache._disk.usage() <= 2**20 + 60_000
    assert tiered.TieredCache(directory=str(mnt / "c"), clock=fake_clock).get("k59") == (
        "z" * 50_000
    )


def test_directory_turned_read_only_degrades_with_one_warning(
    tmpfs: Any, tmp_path: Path, fake_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mnt = tmpfs(tmp_path / "ro", size="8m")
    cache = tiered.TieredCache(directory=str(mnt / "c"), clock=fake_clock, jitter=0)
    cache.set("before", "kept")
    cache._disk._close()  # a busy mount cannot be remounted read-only; it reopens on use
    tmpfs.remount(mnt, "ro")
    with pytest.raises(OSError, match="Read-only"):
        (mnt / "probe").write_bytes(b"x")
    with caplog.at_level(logging.WARNING):
        assert cache.get("before") == "kept"  # memory
        _exercise(cache)
    warnings = _warnings(caplog)
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    assert cache.stats()["disk_errors"] >= 1


def test_cache_made_on_a_read_only_directory_degrades_with_one_warning(
    tmpfs: Any, tmp_path: Path, fake_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mnt = tmpfs(tmp_path / "ro", size="8m")
    writer = tiered.TieredCache(directory=str(mnt / "c"), clock=fake_clock, jitter=0)
    writer.set("before", "kept")
    writer._disk._close()
    tmpfs.remount(mnt, "ro")
    with caplog.at_level(logging.WARNING):
        cache = tiered.TieredCache(directory=str(mnt / "c"), clock=fake_clock)
        value = cache.get("before", "MISS")
        assert value in ("kept", "MISS")  # reading a read-only store may work or not
        _exercise(cache)
    assert len(_warnings(caplog)) == 1
    assert cache.stats()["disk_errors"] >= 1


def test_default_cache_on_an_uncreatable_read_only_directory_runs_memory_only(
    tmpfs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mnt = tmpfs(tmp_path / "ro", size="1m", options="ro")
    monkeypatch.setenv("TIERED_CACHE_DIR", str(mnt / "tiered-cache"))
    with caplog.at_level(logging.WARNING):
        cache = tiered.default_cache()
        _exercise(cache)
    assert cache.directory is None
    assert len(_warnings(caplog)) == 1
    assert "memory-only" in _warnings(caplog)[0].getMessage()


def _garbage(path: str) -> None:
    size = max(os.path.getsize(path), 8192)
    with open(path, "r+b") as f:
        f.write(os.urandom(size))


def test_corrupt_database_file_is_rebuilt_with_one_warning(
    make_cache: Any, caplog: pytest.LogCaptureFixture
) -> None:
    first = make_cache()
    first.set("before", "v")
    first._disk._close()
    db = os.path.join(first._disk.db_dir, "cache.db")
    _garbage(db)
    cache = make_cache()
    with caplog.at_level(logging.WARNING):
        assert cache.get("before", "MISS") == "MISS"
        _exercise(cache)
    warnings = _warnings(caplog)
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    assert "corrupt" in warnings[0].getMessage()
    assert cache.stats()["disk_corrupt"] >= 1
    # Rebuilt: the disk tier works again for everyone.
    cache.set("after", "rebuilt")
    assert make_cache().get("after") == "rebuilt"


def test_database_corrupted_under_an_open_store_never_raises(
    make_cache: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache()
    for i in range(50):
        cache.set(f"k{i}", f"v{i}" * 100)
    cache._memory.clear()
    db = os.path.join(cache._disk.db_dir, "cache.db")
    # The rows into the database file first: garbage over pages that live only in the WAL
    # damages nothing (SQLite reads them from the WAL, and a checkpoint rewrites them).
    with contextlib.closing(sqlite3.connect(db)) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    _garbage(db)
    with caplog.at_level(logging.WARNING):
        for i in range(50):
            assert cache.get(f"k{i}", "MISS") in (f"v{i}" * 100, "MISS")  # old or a miss
        _exercise(cache)
        other = make_cache()  # a new process opens the damaged file
        for i in range(50):
            assert other.get(f"k{i}", "MISS") in (f"v{i}" * 100, "MISS")
        _exercise(other)
    # Each cache warns at most once (the open store may still serve its cached pages).
    assert 1 <= len(_warnings(caplog)) <= 2


def test_vanished_directory_degrades_with_one_warning(
    make_cache: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    cache = make_cache()
    cache.set("before", "v")
    shutil.rmtree(cache._disk.root)
    with caplog.at_level(logging.WARNING):
        _exercise(cache)
    assert len(_warnings(caplog)) == 1


def test_vanished_directory_is_made_again_private_on_retry(make_cache: Any) -> None:
    import shutil
    import stat

    cache = make_cache()
    cache._disk.retry_after = 0.0  # retry at once
    cache.set("before", "v")
    shutil.rmtree(cache._disk.root)
    cache.set("during", "v")  # the fault: the tier closes itself
    cache.set("after", "v2")  # the retry opens the store again
    cache._memory.clear()
    assert cache.get("after") == "v2"  # served from disk again
    assert stat.S_IMODE(os.stat(cache._disk.root).st_mode) == 0o700


def test_disk_filling_up_during_a_download_is_a_clear_error(
    tmpfs: Any, tmp_path: Path, fake_clock: Any
) -> None:
    from tiered_cache.exceptions import TieredCacheError

    mnt = tmpfs(tmp_path / "dl", size="1m")
    cache = tiered.TieredCache(directory=str(mnt / "c"), disk_bytes=64 * 2**20, clock=fake_clock)

    def fetch(dest: Any, version: str | None) -> str:
        for _ in range(64):
            dest.write(b"x" * 65536)
            dest.flush()
        return "e"

    with pytest.raises(TieredCacheError, match="could not write the object") as info:
        cache.load_file("big", fetch)
    assert isinstance(info.value.__cause__, OSError)
    assert os.listdir(mnt / "c" / "tmp") == []  # nothing partial left
    assert cache.load_file("small", lambda dest, version: dest.write(b"ok") and "e")
