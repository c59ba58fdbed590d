"""Issue 5, item 3: a full disk (a real 4 MB tmpfs) -> memory-only, no partial files, no raise.

Needs root to mount (CI runs as root); skipped with the reason otherwise.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from tiered_cache.exceptions import TieredCacheError

pytestmark = pytest.mark.slow

MB = 2**20


def fill(path: Path) -> None:
    """Write to ``path`` until the file system holding it is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\xff" * 65536)
                f.flush()
        except OSError:
            pass


def no_partial_files(cache: Any) -> None:
    disk = cache._disk
    assert os.listdir(disk.tmp_dir) == [], "a partial download stayed in tmp/"
    for name in os.listdir(disk.objects_dir):
        assert disk._referenced(disk._db(), name), f"object {name} is not any entry's file"


def blob(i: int, size: int) -> dict[str, Any]:
    return {"i": i, "blob": bytes([i % 256]) * size}


def test_writes_past_a_full_disk_degrade_to_memory(
    tmp_path: Path,
    tmpfs: Any,
    make_cache: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fs = tmpfs(tmp_path / "fs", size="4m")
    caplog.set_level(logging.WARNING, logger="tiered_cache")
    cache = make_cache(directory=str(fs / "c"), disk_bytes=64 * MB, ttl=600)
    calls: list[int] = []
    for i in range(40):  # 40 x 200 KB: twice the file system
        value = blob(i, 200_000)
        cache.set(f"set{i}", value)
        assert cache.get(f"set{i}") == value

        def load(i: int = i) -> Any:
            calls.append(i)
            return blob(i, 100_000)

        assert cache.get_or_load(f"load{i}", load) == blob(i, 100_000)
    assert len(calls) == 40
    stats = cache.stats()
    assert stats["disk_errors"] >= 1, "the disk never filled up: the test proves nothing"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "serving from memory" in warnings[0]
    no_partial_files(cache)


def test_a_disk_filled_by_someone_else(
    tmp_path: Path, tmpfs: Any, make_cache: Callable[..., Any]
) -> None:
    fs = tmpfs(tmp_path / "fs", size="4m")
    cache = make_cache(directory=str(fs / "c"), disk_bytes=64 * MB, ttl=600)
    cache.set("before", "kept")
    fill(fs / "filler")

    for i in range(20):
        cache.set(f"k{i}", blob(i, 50_000))
        assert cache.get(f"k{i}") == blob(i, 50_000)
        assert cache.get_or_load(f"l{i}", lambda i=i: [i, "x" * 1000]) == [i, "x" * 1000]
    assert cache.get("before") == "kept"

    def fetch(dest: IO[bytes], _version: str | None) -> str:
        for _ in range(64):
            dest.write(b"\x01" * 65536)
        return "etag"

    # File-backed entries need the disk: a documented TieredCacheError, never an OSError.
    with pytest.raises(TieredCacheError):
        cache.load_file("obj", fetch)
    no_partial_files(cache)

    # A fresh cache on the full disk starts and serves from memory.
    fresh = make_cache(directory=str(fs / "c"), disk_bytes=64 * MB, ttl=600)
    fresh.set("x", [1, 2])
    assert fresh.get("x") == [1, 2]


def test_default_budget_keeps_a_small_disk_from_filling(
    tmp_path: Path, tmpfs: Any, make_cache: Callable[..., Any]
) -> None:
    fs = tmpfs(tmp_path / "fs", size="4m")
    cache = make_cache(directory=str(fs / "c"), ttl=600)  # budget: half of 4 MB
    disk = cache._disk
    assert disk.budget == 2 * MB
    for i in range(60):
        cache.set(f"k{i}", blob(i, 150_000))
        assert disk.usage() <= disk.budget + 160_000
    assert cache.stats()["disk_errors"] == 0
    assert make_cache(directory=str(fs / "c"), ttl=600).get("k59") == blob(59, 150_000)


def test_disk_fills_up_during_a_download(
    tmp_path: Path, tmpfs: Any, make_cache: Callable[..., Any]
) -> None:
    fs = tmpfs(tmp_path / "fs", size="4m")
    cache = make_cache(directory=str(fs / "c"), disk_bytes=64 * MB, ttl=600)
    cache.set("before", "kept")  # the tier is open and healthy
    calls: list[str | None] = []

    def fetch(dest: IO[bytes], version: str | None) -> str:
        calls.append(version)
        for _ in range(128):  # 8 MB into a 4 MB file system
            dest.write(b"\x01" * 65536)
        return "etag"

    with pytest.raises(TieredCacheError) as caught:
        cache.load_file("obj", fetch)
    assert calls == [None]
    assert isinstance(caught.value.__cause__, OSError), "the disk's error should be chained"
    no_partial_files(cache)
    assert cache.get("before") == "kept"
    assert cache.get_or_load("after", lambda: "loaded") == "loaded"
