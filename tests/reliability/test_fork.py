"""DESIGN.md guarantee 10: after ``os.fork()`` a child has fresh thread locks, holds none of the
parent's file locks, and opens its own database connection.

Real forks (``os.fork``, no ``multiprocessing``) and pipes. Every wait is bounded: a child that
does not answer within ``HANG`` seconds is killed and counted as a hang. The races are real (a
parent thread keeps writing while the main thread forks); nothing sleeps to make them go away.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tiered_cache import _flight

from .conftest import Runs, worker_env

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

HANG = 10.0  # seconds a child may take before it counts as hung


def fork_child(work: Callable[[], Any], *pipes: int) -> tuple[int, int]:
    """Fork; the child runs ``work()`` and writes its JSON result (or error) to a pipe.

    Returns (pid, read end). ``pipes``: more descriptors the child keeps (the parent's ends of
    them are the caller's). The child always leaves by ``os._exit``.
    """
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about fork with threads running
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child
        code = 0
        try:
            os.close(read_end)
            try:
                result: Any = {"ok": work()}
            except BaseException as exc:  # reported, never raised in a forked pytest
                result = {"error": f"{type(exc).__name__}: {exc}"}
                code = 1
            os.write(write_end, json.dumps(result).encode() + b"\n")
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def answer(pid: int, read_end: int, timeout: float = HANG) -> dict[str, Any] | None:
    """The child's result, or None after killing a child that gave none within ``timeout``."""
    try:
        ready, _, _ = select.select([read_end], [], [], timeout)
        data = b""
        if ready:
            while not data.endswith(b"\n"):
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                data += chunk
        if not data.endswith(b"\n"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return None
        result: dict[str, Any] = json.loads(data)
        return result
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


@contextlib.contextmanager
def writing_in_a_thread(cache: Any) -> Iterator[list[int]]:
    """A parent thread writing to the cache (and its disk tier) until the block ends."""
    stop = threading.Event()
    done = [0]
    errors: list[BaseException] = []

    def write() -> None:
        i = 0
        try:
            while not stop.is_set():
                cache.set(f"w{i % 50}", {"i": i, "pad": "x" * 300})
                cache.get_or_load(f"l{i}", lambda i=i: i)  # a miss: a load and a guarded write
                cache.get(f"w{(i * 7) % 50}")
                if i % 10 == 0:
                    cache.delete(f"l{i - 5}")
                i += 1
                done[0] = i
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    assert not thread.is_alive()


def test_forks_under_a_writing_thread_never_hang(
    make_cache: Callable[..., Any], runs: Runs
) -> None:
    cache = make_cache(ttl=600)
    cache.set("before", "forked")
    forks = runs(100, 500)
    hangs: list[int] = []
    failures: list[Any] = []
    with writing_in_a_thread(cache) as written:
        while written[0] < 20:  # the writer is under way before the first fork
            time.sleep(0.001)
        start = written[0]
        for n in range(forks):

            def child(n: int = n) -> list[Any]:
                cache.set(f"c{n}", n)
                return [cache.get(f"c{n}"), cache.get_or_load(f"g{n}", lambda: n)]

            result = answer(*fork_child(child))
            if result is None:
                hangs.append(n)
            elif result != {"ok": [n, n]}:
                failures.append((n, result))
            runs.progress("forks", n + 1, forks)
        writes_during_forks = written[0] - start
    assert hangs == [], f"{len(hangs)} of {forks} children hung: {hangs}"
    assert failures == []
    assert writes_during_forks >= forks, "the parent thread was not writing while it forked"
    reader = make_cache(ttl=600)  # an empty memory tier: what the children stored is on disk
    missing = [n for n in range(forks) if (reader.get(f"c{n}"), reader.get(f"g{n}")) != (n, n)]
    assert missing == [], f"children whose writes did not reach the disk: {missing}"
    assert reader.get("before") == "forked"


def same_stripe(locks_dir: str, key: str, count: int) -> list[str]:
    """``count`` other keys whose lock stripe is the one of ``key``."""
    target = _flight.stripe_path(locks_dir, key)
    found = []
    i = 0
    while len(found) < count:
        candidate = f"other-{i}"
        if _flight.stripe_path(locks_dir, candidate) == target:
            found.append(candidate)
        i += 1
    return found


_FRESH = """
import sys, time
from tiered_cache import TieredCache
cache = TieredCache(directory=sys.argv[1], lock_timeout=3)
start = time.monotonic()
cache.get_or_load(sys.argv[2], lambda: "fresh process")
print(time.monotonic() - start)
"""


def test_a_child_keeps_none_of_the_parents_lock_stripes(make_cache: Callable[..., Any]) -> None:
    """A child forked while a parent thread held key A's stripe does not keep it: once the
    parent lets go, neither the child nor a fresh process waits for an unrelated key on it."""
    cache = make_cache(ttl=600, lock_timeout=3)
    cache.get("open")  # the store and its locks directory exist
    locks_dir = cache._disk.locks_dir
    key_b, key_c = same_stripe(locks_dir, "A", 2)
    entered, release = threading.Event(), threading.Event()

    def slow() -> str:
        entered.set()
        release.wait(30)
        return "a"

    holder = threading.Thread(target=lambda: cache.get_or_load("A", slow))
    holder.start()
    assert entered.wait(10)
    go_read, go_write = os.pipe()
    report_read, report_write = os.pipe()
    exit_read, exit_write = os.pipe()

    def child() -> float:
        for fd in (go_write, report_read, exit_write):
            os.close(fd)
        select.select([go_read], [], [], HANG)  # until the parent let go of A
        started = time.monotonic()
        assert cache.get_or_load(key_b, lambda: "child") == "child"
        waited = time.monotonic() - started
        os.write(report_write, f"{waited}\n".encode())
        select.select([exit_read], [], [], 60)  # alive until the parent is done checking
        return waited

    pid, result_read = fork_child(child)
    for fd in (go_read, report_write, exit_read):
        os.close(fd)
    try:
        release.set()
        holder.join(10)
        assert not holder.is_alive()
        os.write(go_write, b"go")
        ready, _, _ = select.select([report_read], [], [], HANG)
        assert ready, "the child hung"
        waited = float(os.read(report_read, 100))
        assert waited < 0.5, f"the child waited {waited:.2f} s for key B's stripe"
        # The child is alive (waiting for exit_read): a fresh process must not wait either.
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)
        fresh = subprocess.run(
            [sys.executable, "-c", _FRESH, cache.directory, key_c],
            capture_output=True,
            text=True,
            timeout=30,
            env=worker_env(),
            check=True,
        )
        assert float(fresh.stdout) < 0.5, f"a fresh process waited {fresh.stdout.strip()} s"
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the child exited before the check"
    finally:
        for fd in (go_write, report_read, exit_write):
            os.close(fd)  # the child sees EOF on exit_read and ends
        result = answer(pid, result_read)
    assert result is not None, "the child hung"
    assert "ok" in result, result
    assert cache.get("A") == "a"


def test_the_end_of_a_stripe_block_in_a_child_closes_nothing_else(tmp_path: Any) -> None:
    """The forking thread was inside a stripe block: in the child, the block's end must not
    close the descriptor number the stripe had, which the child has reused since."""
    read_end, write_end = os.pipe()
    path = _flight.stripe_path(str(tmp_path), "k")
    pid = -1
    mine = -1
    try:
        with _flight.file_lock(str(tmp_path), "k", 1) as held:
            assert held
            stripe_fd = _flight._stripes.table[path].fd  # to show the number is reused below
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # the child: its copy of the stripe descriptor was closed at the fork
                mine = os.open(str(tmp_path / "mine"), os.O_WRONLY | os.O_CREAT, 0o600)
        if pid == 0:  # the block ended in the child too
            try:
                os.write(mine, b"still mine")
                report = {"reused": mine == stripe_fd, "open": True}
            except OSError as exc:
                report = {"reused": mine == stripe_fd, "open": False, "error": str(exc)}
            os.write(write_end, json.dumps(report).encode() + b"\n")
            os._exit(0)
    except BaseException:
        if pid == 0:
            os._exit(1)
        raise
    os.close(write_end)
    result = answer(pid, read_end)
    assert result is not None, "the child hung"
    assert result["reused"], "the child's new file did not take the stripe's number"
    assert result["open"], f"the end of the block closed the child's file: {result}"


def test_a_child_does_not_wait_for_a_thread_lock_its_parent_held(
    make_cache: Callable[..., Any],
) -> None:
    cache = make_cache(ttl=600, lock_timeout=3)
    entered, release = threading.Event(), threading.Event()

    def slow() -> str:
        entered.set()
        release.wait(30)
        return "parent"

    holder = threading.Thread(target=lambda: cache.get_or_load("X", slow, persist=False))
    holder.start()
    try:
        assert entered.wait(10)

        def child() -> list[Any]:
            started = time.monotonic()
            value = cache.get_or_load("X", lambda: "child", persist=False)
            return [value, time.monotonic() - started]

        result = answer(*fork_child(child))
    finally:
        release.set()
        holder.join(10)
    assert result is not None, "the child hung"
    value, waited = result["ok"]
    assert value == "child"
    assert waited < 0.5, f"the child waited {waited:.2f} s for a lock of a thread it does not have"


def _database_descriptors(db_dir: str) -> int:
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}").startswith(os.path.join(db_dir, "cache.db")):
                count += 1
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_child_never_closes_the_connections_it_inherited(
    make_cache: Callable[..., Any],
) -> None:
    """SQLite forbids closing, in a child, a connection opened in the parent. The parent's other
    threads do not exist in the child, and their thread-local connections are dropped there:
    the child must keep them (and their descriptors) open, and open its own."""
    cache = make_cache(ttl=600, memory_items=1)
    cache.set("k", 1)
    ready = threading.Barrier(4)
    release = threading.Event()

    def reader(i: int) -> None:
        cache.get_or_load(f"t{i}", lambda: i)  # this thread's own connection
        ready.wait(10)
        release.wait(30)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        ready.wait(10)
        db_dir = cache._disk.db_dir
        before = _database_descriptors(db_dir)

        def child() -> list[int]:
            import gc

            gc.collect()
            inherited = _database_descriptors(db_dir)
            cache.set("from the child", 2)  # its own connection
            return [inherited, _database_descriptors(db_dir)]

        result = answer(*fork_child(child))
    finally:
        release.set()
        for t in threads:
            t.join(10)
    assert result is not None, "the child hung"
    inherited, after = result["ok"]
    assert before >= 6, f"the parent's threads held {before} database descriptors"
    assert inherited == before, f"the child closed inherited connections ({before} -> {inherited})"
    assert after > inherited, "the child did not open a connection of its own"
    assert make_cache(ttl=600).get("from the child") == 2
