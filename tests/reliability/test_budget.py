"""Issue 5, item 4: writing twice the disk budget keeps every byte on disk within the budget
plus the largest single item (database, WAL, -shm, objects, temp and lock files, directories).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from typing import IO, Any

import pytest

from tiered_cache import _serial
from tiered_cache.exceptions import TieredCacheError

from .conftest import Runs, files_under, worker_env

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


def test_bytes_the_running_total_does_not_know_are_found_and_kept_within_the_budget(
    make_cache: Callable[..., Any],
) -> None:
    """An orphan object (a killed writer's, old enough to be one) and a foreign file: the
    running total does not count them, the rare walk of the tree does. The orphan is swept, the
    foreign file is counted, and every write stays within the budget plus the largest item."""
    cache = make_cache(disk_bytes=BUDGET, ttl=600)
    cache.set("open", 1)
    root = cache.directory
    orphan = os.path.join(root, "objects", "0" * 64 + "-dead.obj")
    with open(orphan, "wb") as f:
        f.write(os.urandom(300 * KB))
    os.utime(orphan, (1_000_000.0, 1_000_000.0))  # long before any writer could still commit it
    foreign = os.path.join(root, "db", "foreign.bin")
    with open(foreign, "wb") as f:
        f.write(os.urandom(200 * KB))
    value = {"blob": os.urandom(20 * KB)}
    item = len(_serial.dumps(value, "safe")) + 200
    for i in range(400):  # well past the first walk (after 100 writes)
        cache.set(f"k{i % 60}", {"blob": value["blob"], "i": i})
        if i >= 200:  # from here on the walk has measured what the total does not know
            used = all_bytes(root)
            assert used <= BUDGET + item, f"write {i}: {used} bytes on disk"
    assert not os.path.exists(orphan), "the orphan object was never swept"
    assert os.path.exists(foreign), "a file the cache did not make was removed"
    assert cache.stats()["evictions"] > 0


_WRITER = """
import json, os, sys
from tiered_cache import TieredCache

root, budget, worker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cache = TieredCache(directory=root, disk_bytes=budget, ttl=600)
sys.stdin.readline()  # start together


def all_bytes():
    total = os.lstat(root).st_size
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except FileNotFoundError:
                pass
    return total


worst = 0
for i in range(60):
    body = os.urandom(40 * 1024)
    if i % 2:
        fetch = lambda dest, _v: dest.write(body) and "e"  # noqa: E731
        cache.load_file(f"obj{worker}-{i % 7}", fetch, max_age=0)
    else:
        cache.set(f"k{worker}-{i % 9}", body)
    worst = max(worst, all_bytes())
print(json.dumps({"worst": worst, "stats": cache.stats()}))
"""


def test_two_processes_writing_one_directory_keep_it_within_the_budget(
    make_cache: Callable[..., Any],
) -> None:
    """The running total lives in the database: each process's writes count the other's."""
    cache = make_cache(disk_bytes=512 * KB, ttl=600)
    cache.set("open", 1)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, cache.directory, str(512 * KB), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env(),
        )
        for n in range(2)
    ]
    reports = []
    try:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    largest = 40 * KB + 1024  # an object, or a value with its envelope
    for report in reports:
        # After each write the directory held at most the budget, the largest item, and the
        # other process's download in flight (another item).
        assert report["worst"] <= 512 * KB + 2 * largest, report
    assert sum(r["stats"]["evictions"] for r in reports) > 0
    assert all_bytes(cache.directory) <= 512 * KB + 2 * largest
