"""Issue 5, items 6, 7 and 10: single-flight under load, a killed loader, a lock that is never
released, and concurrent refreshes (engine level; the AWS-helper variants are in test_aws.py).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tiered_cache import _flight

from .conftest import Runs, Workers

pytestmark = pytest.mark.slow


def start_together(procs: list[Any], workers: Workers) -> None:
    for proc in procs:
        assert workers.line(proc) == {"ready": True}
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()


def test_8_processes_x_8_threads_one_missing_key_one_load(
    tmp_path: Path, workers: Workers, runs: Runs
) -> None:
    rounds = runs(1, 5)
    for round_ in range(rounds):
        directory = str(tmp_path / f"c{round_}")
        log = tmp_path / f"loads{round_}.log"
        procs = [workers.start("flight", directory, log, 8, 0.2) for _ in range(8)]
        start_together(procs, workers)
        reports = [workers.finish(p) for p in procs]
        loads = log.read_text().split()
        assert len(loads) == 1, f"{len(loads)} loads for one key across 8 x 8 callers"
        values = [v for r in reports for v in r["results"]]
        assert len(values) == 64
        assert values == [{"by": int(loads[0])}] * 64
        runs.progress("8x8 rounds", round_ + 1, rounds)


def test_killing_the_loading_process_hands_the_load_to_a_waiter(
    tmp_path: Path, workers: Workers, runs: Runs
) -> None:
    rounds = runs(1, 10)
    for round_ in range(rounds):
        kill_the_loader(tmp_path / f"r{round_}", workers)
        runs.progress("kill-the-loader rounds", round_ + 1, rounds)


def kill_the_loader(base: Path, workers: Workers) -> None:
    base.mkdir()
    directory = str(base / "c")
    log = base / "loads.log"
    marker = base / "first-loader"
    procs = [workers.start("flight_kill", directory, log, marker, 8) for _ in range(8)]
    start_together(procs, workers)
    deadline = time.monotonic() + 30
    while not marker.exists() or not marker.read_text():  # wait for the first loader to start
        assert time.monotonic() < deadline, "no loader started"
        time.sleep(0.01)
    victim_pid = int(marker.read_text())
    victim = next(p for p in procs if p.pid == victim_pid)
    os.kill(victim_pid, signal.SIGKILL)
    victim.wait(10)

    survivors = [p for p in procs if p is not victim]
    reports = [workers.finish(p) for p in survivors]
    loads = log.read_text().split()
    assert len(loads) == 1, f"after the kill, {len(loads)} waiters loaded (expected one)"
    values = [v for r in reports for v in r["results"]]
    assert values == [{"by": int(loads[0])}] * 56


def timed_loads(
    cache: Any, key: str, threads: int, loader_seconds: float, deadline: float | None = None
) -> tuple[list[float], list[Any], int]:
    """``threads`` threads call get_or_load at once; their wall times, results, loader calls.

    ``deadline`` is set in each thread, as a Lambda handler's own thread would have it.
    """
    calls = []
    barrier = threading.Barrier(threads)
    times: list[float] = []
    results: list[Any] = []

    def loader() -> str:
        calls.append(1)
        time.sleep(loader_seconds)
        return "loaded"

    def run() -> None:
        barrier.wait()
        start = time.monotonic()
        with _flight.deadline_scope(deadline):
            results.append(cache.get_or_load(key, loader))
        times.append(time.monotonic() - start)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return times, results, len(calls)


def test_a_lock_holder_that_never_lets_go(
    tmp_path: Path, workers: Workers, make_cache: Callable[..., Any]
) -> None:
    directory = str(tmp_path / "c")
    holder = workers.start("hold_lock", directory, "stuck")
    assert workers.line(holder) == {"held": True}
    cache = make_cache(directory=directory, lock_timeout=0.5)

    times, results, calls = timed_loads(cache, "stuck", threads=4, loader_seconds=0.1)
    assert results == ["loaded"] * 4
    assert calls >= 1
    # Each caller waits at most its lock_timeout in all, then loads by itself (0.1 s).
    assert max(times) < 0.5 + 0.1 + 0.35, f"waits {sorted(times)} exceed lock_timeout=0.5 s"


def test_a_lock_holder_that_never_lets_go_within_the_lambda_deadline(
    tmp_path: Path, workers: Workers, make_cache: Callable[..., Any]
) -> None:
    directory = str(tmp_path / "c")
    holder = workers.start("hold_lock", directory, "stuck")
    assert workers.line(holder) == {"held": True}
    cache = make_cache(directory=directory, lock_timeout=60)  # only the deadline bounds it

    remaining = 1.0 + _flight.DEADLINE_MARGIN  # a second to wait, then the margin
    times, results, _calls = timed_loads(
        cache, "stuck", threads=4, loader_seconds=0.1, deadline=time.time() + remaining
    )
    assert results == ["loaded"] * 4
    assert max(times) < 1.0 + 0.1 + 0.35, f"waits {sorted(times)} ran past the deadline"


def test_past_the_deadline_nobody_waits(
    tmp_path: Path, workers: Workers, make_cache: Callable[..., Any]
) -> None:
    directory = str(tmp_path / "c")
    holder = workers.start("hold_lock", directory, "stuck")
    assert workers.line(holder) == {"held": True}
    cache = make_cache(directory=directory, lock_timeout=60)
    times, results, _calls = timed_loads(  # less than the margin is left: no wait at all
        cache, "stuck", threads=2, loader_seconds=0.0, deadline=time.time() + 0.5
    )
    assert results == ["loaded"] * 2
    assert max(times) < 0.3


def refresh_from_threads(cache: Any, key: str, threads: int) -> tuple[list[Any], int]:
    """``threads`` concurrent refreshes of ``key``; the first load waits (bounded) until every
    refresh has begun, so all of them are in line before any load ends."""
    calls: list[int] = []
    barrier = threading.Barrier(threads)
    results: list[Any] = []
    misses = cache.stats()["misses"]

    def loader() -> str:
        calls.append(1)
        deadline = time.monotonic() + 10
        while cache.stats()["misses"] - misses < threads and time.monotonic() < deadline:
            time.sleep(0.001)  # a round trip that lasts until every caller has asked
        return "new"

    def run() -> None:
        barrier.wait()
        results.append(cache.load(key, loader, refresh=True, persist=False))

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return results, len(calls)


def test_20_threads_refresh_at_one_instant_make_one_origin_call(
    make_cache: Callable[..., Any], fake_clock: Any, runs: Runs
) -> None:
    """A rejected secret refreshed from 20 threads at once (one instant of the cache's clock):
    every refresh began before the load did, so all of them share it."""
    cache = make_cache(ttl=300)
    rounds = runs(3, 20)
    for round_ in range(rounds):
        key = f"secret-{round_}"
        cache.set(key, "old", persist=False)
        fake_clock.advance(1)
        results, calls = refresh_from_threads(cache, key, 20)
        assert calls == 1, f"20 concurrent refreshes made {calls} origin calls"
        assert results == ["new"] * 20
        assert cache.get(key) == "new"
        runs.progress("refresh rounds", round_ + 1, rounds)


def test_20_threads_refresh_on_a_real_clock_make_at_most_two_origin_calls(
    make_cache: Callable[..., Any], runs: Runs
) -> None:
    """On a real clock a refresh that begins after a load began never takes that load for its
    own (it may have read the origin before an update): those that arrive while it runs share
    one more."""
    cache = make_cache(ttl=300, clock=time.time)
    rounds = runs(3, 20)
    for round_ in range(rounds):
        key = f"secret-{round_}"
        cache.set(key, "old", persist=False)
        results, calls = refresh_from_threads(cache, key, 20)
        assert 1 <= calls <= 2, f"20 concurrent refreshes made {calls} origin calls"
        assert results == ["new"] * 20
        assert cache.get(key) == "new"
        runs.progress("refresh rounds", round_ + 1, rounds)


def test_waiters_on_a_failing_origin_share_the_stale_value(make_cache: Callable[..., Any]) -> None:
    """Item 8 at the engine level: 30 threads, an expired value, an origin that fails slowly."""
    clock = [1000.0]
    cache = make_cache(ttl=60, stale_if_error=300, clock=lambda: clock[0])
    cache.set("k", "stale")
    clock[0] += 61
    calls: list[int] = []

    def failing() -> str:
        calls.append(1)
        time.sleep(0.1)
        raise ConnectionError("throttled")

    _times, results, _ = timed_loads_with(cache, "k", 30, failing)
    assert results == ["stale"] * 30
    assert len(calls) <= 3, f"30 waiting callers made {len(calls)} calls to a failing origin"


def timed_loads_with(
    cache: Any, key: str, threads: int, loader: Callable[[], Any]
) -> tuple[list[float], list[Any], None]:
    barrier = threading.Barrier(threads)
    times: list[float] = []
    results: list[Any] = []

    def run() -> None:
        barrier.wait()
        start = time.monotonic()
        results.append(cache.get_or_load(key, loader))
        times.append(time.monotonic() - start)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return times, results, None
