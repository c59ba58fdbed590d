"""Issue 5, item 4: writing twice the disk budget keeps every byte on disk within the budget
plus the largest single item (database, WAL, -shm, objects, temp and lock files, directories).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import IO, Any

import pytest

from tiered_cache import _serial
from tiered_cache.exceptions import TieredCacheError

from .conftest import Runs, files_under

KB = 1024
BUDGET = 1024 * KB


def all_bytes(root: str) -> int:
    """Every byte under ``root``, counted independently of the library's own ``usage()``."""
    return os.lstat(root).st_size + sum(
        os.lstat(os.path.join(root, rel)).st_size for rel in files_under(root)
    )


def test_writing_twice_the_budget_stays_within_it(
    make_cache: Callable[..., Any], runs: Runs
) -> None:
    rng = random.Random(4)
    cache = make_cache(disk_bytes=BUDGET, ttl=600)
    root = cache.directory
    written = 0
    largest = 0
    step = 0
    rounds = runs(1, 5)
    while written < 2 * BUDGET * rounds:
        step += 1
        size = rng.choice((100, 2 * KB, 20 * KB, 90 * KB))
        if step % 7 == 0:
            body = os.urandom(size)

            def fetch(dest: IO[bytes], _v: str | None, body: bytes = body) -> str:
                dest.write(body)
                return "e"

            cache.load_file(f"file{step % 13}", fetch, max_age=0)
            item = size
        else:
            value = {"step": step, "blob": os.urandom(size)}
            cache.set(f"key{step % 50}", value)
            item = len(_serial.dumps(value, "safe")) + 200  # envelope header and key
        written += size
        largest = max(largest, item)
        used = all_bytes(root)
        assert used <= BUDGET + largest, (
            f"step {step}: {used} bytes on disk > budget {BUDGET} + largest item {largest}"
        )
        runs.progress(
            "bytes written (KB)", min(written, 2 * BUDGET * rounds) // KB, 2 * BUDGET * rounds // KB
        )
    assert written >= 2 * BUDGET
    assert cache.stats()["evictions"] > 0, "nothing was evicted: the budget was never reached"
    assert cache._disk.usage() == all_bytes(root), "usage() does not count what is on disk"


def test_a_value_larger_than_the_whole_budget_is_not_stored_on_disk(
    make_cache: Callable[..., Any],
) -> None:
    cache = make_cache(disk_bytes=512 * KB, ttl=600)
    cache.set("small", "s")
    huge = os.urandom(600 * KB)
    cache.set("huge", huge)
    assert cache.get("huge") == huge  # memory keeps it
    reader = make_cache(disk_bytes=512 * KB, ttl=600)
    assert reader.get("huge") is None
    assert reader.get("small") == "s", "storing a too-large value evicted the rest"
    assert all_bytes(cache.directory) <= 512 * KB


def test_an_object_larger_than_the_whole_budget_is_a_clear_error(
    make_cache: Callable[..., Any],
) -> None:
    cache = make_cache(disk_bytes=64 * KB, ttl=600)

    def fetch(dest: IO[bytes], _v: str | None) -> str:
        dest.write(bytes(100 * KB))
        return "e"

    with pytest.raises(TieredCacheError) as caught:
        cache.load_file("obj", fetch)
    message = str(caught.value)
    assert str(100 * KB) in message
    assert str(64 * KB) in message
    assert "TIERED_CACHE_DISK_BYTES" in message
    assert os.listdir(cache._disk.tmp_dir) == []
    assert os.listdir(cache._disk.objects_dir) == []
