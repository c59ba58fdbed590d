"""No write goes back in time: a load never replaces an entry written after it began.

A load's value is stamped with the time the load started. Storing it must not replace what a
later ``set``, load or ``delete`` wrote, in memory or on disk (a guarded write: in the memory
tier's lock, in the disk tier's SQLite transaction); the later entry stands and the load
returns it. A refresh never takes a load that began before it for its own.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Runs


class BlockingLoader:
    """A loader that reads the origin, then blocks until told to return what it read."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.reading = threading.Event()
        self.go = threading.Event()

    def __call__(self) -> Any:
        self.reading.set()
        assert self.go.wait(10)
        return self.value


def _load_in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()))
    thread.start()
    return thread, out


@pytest.mark.parametrize("tick", [0.0, 1.0], ids=["same-instant", "clock-moved"])
@pytest.mark.parametrize("persist", [True, False], ids=["disk", "memory"])
def test_a_load_never_stores_over_a_set_that_completed_while_it_ran(
    make_cache: Callable[..., Any], fake_clock: Any, tick: float, persist: bool
) -> None:
    cache = make_cache()
    loader = BlockingLoader("old")
    thread, out = _load_in_thread(lambda: cache.get_or_load("k", loader, persist=persist))
    assert loader.reading.wait(10)  # the load has read "old" from the origin
    fake_clock.advance(tick)
    cache.set("k", "new", persist=persist)  # an update completes
    loader.go.set()
    thread.join(10)
    assert out == ["new"]  # the later entry stands, and the load returns it
    assert cache.get("k") == "new"
    if persist:
        assert make_cache().get("k") == "new"  # on disk too, for every other process


def test_a_refresh_begun_after_the_set_never_returns_the_older_load(
    make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    cache = make_cache()
    loader = BlockingLoader("old")
    thread, out = _load_in_thread(lambda: cache.get_or_load("k", loader))
    assert loader.reading.wait(10)
    fake_clock.advance(1)
    cache.set("k", "new")
    refreshed, got = _load_in_thread(lambda: cache.load("k", lambda: "newest", refresh=True))
    loader.go.set()
    thread.join(10)
    refreshed.join(10)
    assert out == ["new"]
    assert got == ["newest"]  # it loaded anew: it did not take the older load for its own
    assert cache.get("k") == "newest"


def test_a_load_never_resurrects_a_key_deleted_while_it_ran(
    make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    cache = make_cache()
    cache.set("k", "before")
    fake_clock.advance(61)  # expired: the next call loads
    loader = BlockingLoader("old")
    thread, out = _load_in_thread(lambda: cache.get_or_load("k", loader))
    assert loader.reading.wait(10)
    assert cache.delete("k") is True
    loader.go.set()
    thread.join(10)
    assert out == ["old"]  # the caller gets what it loaded...
    assert cache.get("k") is None  # ...but the delete stands, in memory and on disk
    assert make_cache().get("k") is None
    assert cache.get_or_load("k", lambda: "after") == "after"  # a later load stores again


def test_a_load_that_began_after_an_entry_replaces_it(
    make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    cache = make_cache()
    cache.set("k", "v1", ttl=10)
    fake_clock.advance(11)
    assert cache.get_or_load("k", lambda: "v2") == "v2"
    assert cache.load("k", lambda: "v3", refresh=True) == "v3"  # same instant as v2's load
    assert make_cache().get("k") == "v3"


# -- under stress ------------------------------------------------------------------------------


class Ledger:
    """The origin and what the test knows: every write takes the next version of its key;
    ``completed[k]`` is the newest version whose ``set`` has returned. Writes of one key are
    serialized (two concurrent sets are last-writer-wins, which is not what this tests)."""

    def __init__(self, keys: int) -> None:
        self.locks = [threading.Lock() for _ in range(keys)]
        self.origin = [0] * keys
        self.completed = [0] * keys
        self.version = 0

    def write(self, cache: Any, k: int) -> None:
        with self.locks[k]:
            self.version += 1
            version = self.version
            self.origin[k] = version
            cache.set(f"k{k}", version)
            self.completed[k] = version


def test_threads_mixing_set_refresh_and_get_or_load_never_see_an_older_value(
    make_cache: Callable[..., Any], runs: Runs
) -> None:
    """32 threads x mixed operations on 4 keys, disk tier on: nothing a read returns is older
    than a write that completed before the read began."""
    cache = make_cache(clock=time.time, ttl=0.05)
    ledger = Ledger(4)
    ops = runs(150, 1000)
    errors: list[str] = []
    barrier = threading.Barrier(32)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(ops):
            k = rng.randrange(4)
            floor = ledger.completed[k]
            kind = rng.random()
            if kind < 0.3:
                ledger.write(cache, k)
                continue

            def loader(k: int = k) -> int:  # the origin as of the load
                return ledger.origin[k]

            if kind < 0.6:
                got = cache.load(f"k{k}", loader, refresh=True)
            else:
                got = cache.get_or_load(f"k{k}", loader)
            if got < floor:
                errors.append(f"k{k}: got version {got} after version {floor} was written")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"{len(errors)} reads went back in time, e.g. {errors[:3]}"
    assert cache.stats()["loads"] > 0


def _process_worker(
    directory: str,
    origin: Any,
    completed: Any,
    lock: Any,
    seed: int,
    ops: int,
    found: Any,
) -> None:
    import tiered_cache as tiered

    # One item in memory: reads of the other keys go to the disk entry the processes share.
    cache = tiered.TieredCache(directory=directory, ttl=0.05, jitter=0.0, memory_items=1)
    rng = random.Random(seed)
    mine = [0] * len(completed)  # what this process's own writes completed
    for _ in range(ops):
        k = rng.randrange(len(completed))
        global_floor = completed[k]
        kind = rng.random()
        if kind < 0.3:
            with lock:  # writes are serialized: concurrent sets are last-writer-wins
                origin[len(completed)] += 1  # the version counter
                version = origin[len(completed)]
                origin[k] = version
                cache.set(f"k{k}", version)
                completed[k] = version
            mine[k] = version
            continue
        local_floor = mine[k]

        def loader(k: int = k) -> int:
            value = int(origin[k])
            time.sleep(0.001)  # the origin's round trip: other processes write meanwhile
            return value

        if kind < 0.6:  # a refresh reads the origin: newer than any write done anywhere
            got = cache.load(f"k{k}", loader, refresh=True)
            if got < global_floor:
                with found.get_lock():
                    found.value += 1
        else:  # another process's memory may still hold its own fresh copy; ours may not go back
            got = cache.get_or_load(f"k{k}", loader)
            if got < local_floor:
                with found.get_lock():
                    found.value += 1


def test_processes_mixing_set_refresh_and_get_or_load_never_go_back(
    cache_dir: str, runs: Runs
) -> None:
    """4 real processes on one directory: a refresh anywhere never returns a version older
    than a write completed anywhere, and a read never returns one older than its own
    process's completed writes (the disk entry is guarded across processes)."""
    context = multiprocessing.get_context("fork")
    keys = 3
    origin = context.Array("q", keys + 1, lock=False)  # versions per key, then the counter
    completed = context.Array("q", keys, lock=False)
    lock = context.Lock()
    found = context.Value("q", 0)
    ops = runs(300, 1500)
    procs = [
        context.Process(
            target=_process_worker,
            args=(cache_dir, origin, completed, lock, seed, ops, found),
        )
        for seed in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert found.value == 0, f"{found.value} reads went back in time"
