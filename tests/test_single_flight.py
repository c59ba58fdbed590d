"""Item 5: single-flight across threads and real processes, and bounded waits after which the
waiter loads by itself.

The loaders here sleep briefly on purpose: that holds the race window open so that a broken
lock would show up as extra loader calls (the sleep makes the race likelier, never hides it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tiered_cache._flight import Flight, bounded_wait, deadline_scope, file_lock


class SlowLoader:
    def __init__(self, value: Any = "loaded", hold: float = 0.2) -> None:
        self.value = value
        self.hold = hold
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
        time.sleep(self.hold)
        return self.value


def _run_threads(count: int, target: Any) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


@pytest.mark.parametrize("persist", [True, False], ids=["disk", "memory-only"])
def test_32_threads_on_a_cold_key_run_the_loader_once(make_cache: Any, persist: bool) -> None:
    cache = make_cache()
    loader = SlowLoader({"v": 1})
    results = _run_threads(32, lambda: cache.get_or_load("cold", loader, persist=persist))
    assert loader.calls == 1
    assert results == [{"v": 1}] * 32
    assert cache.stats()["loads"] == 1


def test_threads_on_different_keys_do_not_wait_for_each_other(make_cache: Any) -> None:
    cache = make_cache(lock_timeout=10)
    loader = SlowLoader(hold=0.3)
    started = time.monotonic()
    _run_threads(6, lambda: cache.get_or_load(f"k{threading.get_ident()}", loader))
    assert loader.calls == 6
    assert time.monotonic() - started < 6 * 0.3  # they overlapped


_CHILD = """
import os, sys, time, json
import tiered_cache as tiered

directory, calls_file, ready_file, start_file = sys.argv[1:5]
cache = tiered.TieredCache(directory=directory, lock_timeout=20)
cache.get("warm-up")  # open the store, as a warm worker would have

def loader():
    with open(calls_file, "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(0.3)
    return {"loaded_by": os.getpid()}

open(ready_file, "w").close()
while not os.path.exists(start_file):
    time.sleep(0.001)
print(json.dumps(cache.get_or_load("cold", loader)))
"""


@pytest.mark.slow
def test_8_processes_started_together_run_the_loader_once(cache_dir: str, tmp_path: Path) -> None:
    import tiered_cache as tiered

    tiered.TieredCache(directory=cache_dir).get("create")  # the directory exists, as on a host
    calls = tmp_path / "calls"
    start = tmp_path / "start"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    procs = []
    for n in range(8):
        ready = tmp_path / f"ready-{n}"
        procs.append(
            (
                ready,
                subprocess.Popen(
                    [sys.executable, "-c", _CHILD, cache_dir, str(calls), str(ready), str(start)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                ),
            )
        )
    try:
        deadline = time.monotonic() + 60
        while not all(ready.exists() for ready, _ in procs):
            assert time.monotonic() < deadline, "children did not get ready"
            assert all(p.poll() is None for _, p in procs), [p.communicate() for _, p in procs]
            time.sleep(0.01)
        start.touch()  # every child is waiting: go
        outputs = [p.communicate(timeout=60) for _, p in procs]
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for _, p in procs), outputs
    loaders = calls.read_text().split()
    assert len(loaders) == 1, f"loader ran in {loaders}"
    values = {out for out, _ in outputs}
    assert values == {f'{{"loaded_by": {loaders[0]}}}\n'}


def test_a_file_lock_held_elsewhere_bounds_the_wait(make_cache: Any) -> None:
    cache = make_cache(lock_timeout=0.3)
    cache.get("open")  # the store (and its locks directory) exists
    loader = SlowLoader(hold=0)
    with file_lock(cache._disk.locks_dir, "stuck", 5) as held:
        assert held
        started = time.monotonic()
        assert cache.get_or_load("stuck", loader) == "loaded"
        waited = time.monotonic() - started
    assert loader.calls == 1
    assert 0.25 <= waited < 3.0
    assert cache.get("stuck") == "loaded"  # stored as usual


_HOLDER = """
import sys
from tiered_cache._flight import file_lock
with file_lock(sys.argv[1], "stuck", 5) as held:
    print("held" if held else "failed", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


def test_a_file_lock_held_by_another_process_bounds_the_wait(
    make_cache: Any, python_subprocess: Any
) -> None:
    cache = make_cache(lock_timeout=0.3)
    cache.get("open")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, cache._disk.locks_dir],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        loader = SlowLoader(hold=0)
        started = time.monotonic()
        assert cache.get_or_load("stuck", loader) == "loaded"
        assert 0.25 <= time.monotonic() - started < 3.0
        assert loader.calls == 1
    finally:
        holder.kill()
        holder.wait()


def test_a_thread_lock_held_forever_bounds_the_wait(make_cache: Any) -> None:
    cache = make_cache(lock_timeout=0.3)
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:  # a load of "stuck" holds its thread lock until released
        cache.get_or_load("stuck", lambda: holding.set() or release.wait(30), persist=False)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(5)
        loader = SlowLoader(hold=0)
        started = time.monotonic()
        assert cache.get_or_load("stuck", loader, persist=False) == "loaded"
        assert 0.25 <= time.monotonic() - started < 3.0
        assert loader.calls == 1
        assert cache.stats()["lock_timeouts"] == 1
    finally:
        release.set()
        holder.join()


def test_a_known_deadline_shortens_the_wait(make_cache: Any) -> None:
    cache = make_cache(lock_timeout=30)
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:  # a load of "stuck" holds its thread lock until released
        cache.get_or_load("stuck", lambda: holding.set() or release.wait(30), persist=False)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(5)
        started = time.monotonic()
        with deadline_scope(time.time() + 1.3):  # 1 s is kept back as a margin
            assert cache.get_or_load("stuck", lambda: "mine", persist=False) == "mine"
        assert time.monotonic() - started < 2.0
    finally:
        release.set()
        holder.join()


def test_bounded_wait_arithmetic() -> None:
    assert bounded_wait(5.0) == 5.0
    with deadline_scope(time.time() + 3.0):
        assert 1.5 < bounded_wait(5.0) <= 2.0
        assert bounded_wait(0.5) == 0.5
    with deadline_scope(time.time() - 10):
        assert bounded_wait(5.0) == 0.0
    assert bounded_wait(5.0) == 5.0  # the scope ended


def test_zero_timeout_does_not_block_and_locks_are_dropped_when_unused() -> None:
    flight = Flight()
    with flight.hold("k", 0) as first:
        assert first
        with flight.hold("k", 0) as second:
            assert not second
    assert flight.timeouts == 1
    assert flight._locks == {}


def test_file_lock_that_cannot_be_made_counts_as_not_acquired(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with file_lock(str(not_a_dir), "k", 0.1) as held:
        assert held is False


def test_file_lock_stripes_are_bounded(tmp_path: Path) -> None:
    for i in range(500):
        with file_lock(str(tmp_path), f"key-{i}", 1) as held:
            assert held
    assert len(os.listdir(tmp_path)) <= 64


def test_a_failing_loader_lets_the_next_waiter_load(make_cache: Any) -> None:
    cache = make_cache()
    calls: list[int] = []
    lock = threading.Lock()

    def flaky() -> str:
        with lock:
            calls.append(1)
            first = len(calls) == 1
        time.sleep(0.1)
        if first:
            raise RuntimeError("first call fails")
        return "ok"

    def call() -> Any:
        try:
            return cache.get_or_load("k", flaky)
        except RuntimeError as exc:
            return exc

    results = _run_threads(8, call)
    assert sum(isinstance(r, RuntimeError) for r in results) == 1
    assert results.count("ok") == 7
    assert len(calls) == 2


def test_concurrent_refreshes_coalesce(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache()
    cache.set("k", "old")
    fake_clock.advance(1)
    loader = SlowLoader("new")
    results = _run_threads(16, lambda: cache.load("k", loader, refresh=True))
    assert results == ["new"] * 16
    assert loader.calls == 1


def _wait_in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(target()))
    thread.start()
    return thread, out


def test_a_waiter_on_the_file_lock_takes_what_the_holder_stored(make_cache: Any) -> None:
    """The cross-process path, deterministically: another "process" (a second cache on the
    same directory) holds the key's lock stripe, stores the value and releases; the waiter
    then finds it on disk instead of calling its own loader."""
    waiter = make_cache(lock_timeout=20)
    other = make_cache()
    waiter.get("open")
    loader = SlowLoader("waiter's own", hold=0)
    with file_lock(other._disk.locks_dir, "k", 5) as held:
        assert held
        thread, out = _wait_in_thread(lambda: waiter.get_or_load("k", loader))
        deadline = time.monotonic() + 5
        while waiter.stats()["misses"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)  # until the waiter is past its own memory and disk checks
        other.set("k", "holder's")
    thread.join(10)
    assert out == ["holder's"]
    assert loader.calls == 0


def test_a_file_waiter_takes_the_file_the_holder_stored(make_cache: Any) -> None:
    waiter = make_cache(lock_timeout=20)
    other = make_cache(lock_timeout=0)  # stands for the holder: it must not wait on itself
    waiter.get("open")
    fetches: list[str] = []

    def fetch(dest: Any, version: str | None) -> str:
        fetches.append("waiter")
        dest.write(b"waiter's")
        return "w"

    with file_lock(other._disk.locks_dir, "obj", 5) as held:
        assert held
        thread, out = _wait_in_thread(lambda: waiter.load_file("obj", fetch))
        deadline = time.monotonic() + 5
        while waiter.stats()["misses"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        holder_path = other.load_file("obj", lambda dest, version: dest.write(b"holder's") and "h")
    thread.join(10)
    assert out == [holder_path]
    assert Path(holder_path).read_bytes() == b"holder's"
    assert fetches == []
