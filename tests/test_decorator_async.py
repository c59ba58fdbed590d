"""``@tiered.cache`` on ``async def`` functions: the awaited value is cached.

Hit, miss and expiry on an injected clock; the key rules of plain functions (templates, default
keys, callable keys, refusals); one load for 50 concurrent awaiters, for two event loops in two
threads and for two real processes on one directory; a cancelled awaiter never cancels the load
the others wait for; a load's exception reaches every awaiter; ``stale_if_error``; the controls
(``cache_key``, ``invalidate``, an awaitable ``refresh``); methods; following the default cache.
The event loop keeps running while a call waits for another process's load (the cache's locks
are taken in a worker thread), and nested cached coroutines never starve each other.

Loaders that must overlap wait on events (or, across processes, sleep briefly to hold the race
window open, as in test_single_flight.py: the sleep makes a broken lock likelier to show, never
hides one).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import tiered_cache as tiered

REPO_ROOT = Path(__file__).resolve().parent.parent

LOADS: list[Any] = []


# -- module-level functions for default keys (functions made inside a test are refused) -------


@tiered.cache
async def double(x: int, *, label: str = "d") -> tuple[int, int]:
    LOADS.append(x)
    await asyncio.sleep(0)
    return 2 * x, len(LOADS)


@tiered.cache(key="shared:{x}")
async def shared_async(x: int) -> tuple[str, int]:
    LOADS.append(x)
    return "async", x


@tiered.cache(key="shared:{x}")
def shared_sync(x: int) -> tuple[str, int]:
    return "sync", x


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def until(condition: Any, timeout: float = 30.0) -> None:
    """Let the loop (and the load's worker thread) run until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.001)


class Counter:
    """An async loader that counts its calls; ``gate`` (an asyncio.Event made inside the loop)
    holds every call until set."""

    def __init__(self, value: Any = "loaded") -> None:
        self.value = value
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.error: BaseException | None = None

    async def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.value if not args else (self.value, *args)


# -- hit, miss, expiry -----------------------------------------------------------------------


def test_the_awaited_value_is_cached_and_expires_with_the_ttl(
    make_cache: Any, fake_clock: Any
) -> None:
    cache = make_cache()
    load = Counter()

    @cache.cache(key="r:{day}", ttl=10)
    async def report(day: str) -> tuple[Any, int]:
        await asyncio.sleep(0)
        return await load(day), load.calls

    async def main() -> None:
        first = await report("mon")
        assert first == (("loaded", "mon"), 1)
        assert await report("mon") == first  # a memory hit: no second call
        assert await report(day="mon") == first
        assert cache.get("r:mon") == first  # the awaited value is what is stored
        assert make_cache().get("r:mon") == first  # and on disk
        fake_clock.advance(9.9)
        assert await report("mon") == first
        fake_clock.advance(0.1)  # expired at exactly ttl
        assert await report("mon") == (("loaded", "mon"), 2)
        assert await report("tue") == (("loaded", "tue"), 3)

    run(main())
    assert load.calls == 3
    stats = cache.stats()
    assert stats["loads"] == 3
    assert stats["memory_hits"] >= 3


def test_a_disk_hit_needs_no_load(make_cache: Any) -> None:
    writer = make_cache()
    writer.set("k:1", {"from": "disk"})
    cache = make_cache()  # a new process's view: empty memory, the same directory
    load = Counter()

    @cache.cache(key="k:{x}")
    async def f(x: int) -> Any:
        return await load()

    assert run(f(1)) == {"from": "disk"}
    assert load.calls == 0
    assert cache.stats()["disk_hits"] == 1
    assert run(f(1)) == {"from": "disk"}  # promoted: a memory hit now
    assert cache.stats()["disk_hits"] == 1


def test_the_wrapper_is_a_coroutine_function_with_the_originals_metadata(cache: Any) -> None:
    async def original(a: int, b: str = "x") -> str:
        """The docstring."""
        return b * a

    wrapped = cache.cache(key="k:{a}:{b}")(original)
    assert inspect.iscoroutinefunction(wrapped)
    assert inspect.iscoroutinefunction(wrapped.refresh)
    assert not inspect.iscoroutinefunction(wrapped.cache_key)
    assert not inspect.iscoroutinefunction(wrapped.invalidate)
    assert wrapped.__wrapped__ is original
    assert wrapped.__name__ == "original"
    assert wrapped.__doc__ == "The docstring."
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert inspect.signature(wrapped.refresh).return_annotation == "str"
    assert run(wrapped(2)) == "xx"
    with pytest.raises(TypeError):
        wrapped()  # the usual binding error, raised on the call as for any coroutine function


def test_persist_false_keeps_the_value_in_memory_only(make_cache: Any) -> None:
    cache = make_cache()
    load = Counter()

    @cache.cache(key="m", persist=False)
    async def f() -> Any:
        return await load()

    async def main() -> None:
        assert await f() == "loaded"
        assert await f() == "loaded"

    run(main())
    assert load.calls == 1
    assert cache.get("m") == "loaded"
    assert make_cache().get("m") is None  # nothing on disk


# -- key rules: the same as for plain functions ------------------------------------------------


def test_default_key_is_module_qualname_and_arguments(default: Any) -> None:
    assert double.cache_key(3) == f"{__name__}.double(x=3, label='d')"
    assert double.cache_key(x=3, label="d") == double.cache_key(3)
    first = run(double(3))
    assert run(double(x=3)) == first
    assert default.get(double.cache_key(3)) == first


def test_an_async_and_a_plain_function_with_one_template_share_entries(default: Any) -> None:
    assert shared_async.cache_key(1) == shared_sync.cache_key(1) == "shared:1"
    assert shared_sync(1) == ("sync", 1)
    before = len(LOADS)
    assert run(shared_async(1)) == ("sync", 1)  # the entry the plain function stored
    assert len(LOADS) == before
    assert run(shared_async(2)) == ("async", 2)
    assert shared_sync(2) == ("async", 2)


def test_template_callable_and_generic_keys(cache: Any) -> None:
    @cache.cache(key="t:{user[id]}:{n:03d}:{tag!r}")
    async def templated(user: dict[str, int], n: int = 7, *, tag: str = "x") -> str:
        return f"{user['id']}/{n}/{tag}"

    @cache.cache(key=lambda a, b=2: f"c:{a}:{b}")
    async def keyed(a: int, b: int = 2) -> int:
        return a + b

    @cache.cache(key="g:{cache}:{now}")  # parameters named like the hit path's own names
    async def generic(cache: str, now: int = 0) -> str:
        return f"{cache}{now}"

    assert templated.cache_key({"id": 5}) == "t:5:007:'x'"
    assert keyed.cache_key(1) == "c:1:2"
    assert generic.cache_key("a") == "g:a:0"

    async def main() -> None:
        assert await templated({"id": 5}, tag="y") == "5/7/y"
        assert await keyed(1) == 3
        assert await generic("a", now=1) == "a1"

    run(main())
    assert cache.get("t:5:007:'y'") == "5/7/y"
    assert cache.get("c:1:2") == 3
    assert cache.get("g:a:1") == "a1"


def test_refusals_are_those_of_plain_functions(cache: Any) -> None:
    async def inner(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="inside a function"):
        tiered.cache(inner)  # a default key for a function made in a function
    with pytest.raises(TypeError, match="no parameter 'y'"):
        cache.cache(key="k:{y}")(inner)
    with pytest.raises(TypeError, match="key="):
        run(double(object()))  # type: ignore[arg-type]  # an unstable argument, as for sync

    async def agen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="async generator"):
        cache.cache(key="k")(agen)


def test_a_partial_and_a_callable_instance_of_async_code(cache: Any) -> None:
    async def fetch(region: str, user: int) -> str:
        return f"{region}/{user}"

    class Fetcher:
        async def __call__(self, user: int) -> str:
            return f"instance/{user}"

    regional = cache.cache(key="p:{user}")(functools.partial(fetch, "eu"))
    instance = cache.cache(key="i:{user}")(Fetcher())
    assert inspect.iscoroutinefunction(regional)
    assert inspect.iscoroutinefunction(instance)
    assert run(regional(user=5)) == "eu/5"
    assert run(instance(5)) == "instance/5"
    assert cache.get("p:5") == "eu/5"
    assert cache.get("i:5") == "instance/5"


def test_a_plain_function_returning_a_coroutine_is_refused_on_its_call(cache: Any) -> None:
    async def work() -> int:
        return 1

    @cache.cache(key="sneaky")
    def sneaky() -> Any:  # not an async def: it returns the coroutine unawaited
        return work()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited" either
        with pytest.raises(TypeError, match="awaitable"):
            sneaky()
    assert cache.get("sneaky") is None


# -- single flight ---------------------------------------------------------------------------


def test_50_concurrent_awaiters_of_a_cold_key_share_one_load(make_cache: Any) -> None:
    cache = make_cache()
    load = Counter()

    @cache.cache(key="cold")
    async def f() -> Any:
        return await load()

    async def main() -> list[Any]:
        load.gate = asyncio.Event()
        awaiters = [asyncio.ensure_future(f()) for _ in range(50)]
        await until(lambda: load.calls)  # the load is under way, every awaiter waiting on it
        for _ in range(10):
            await asyncio.sleep(0)
        load.gate.set()
        return await asyncio.gather(*awaiters)

    assert run(main()) == ["loaded"] * 50
    assert load.calls == 1
    assert cache.stats()["loads"] == 1
    assert make_cache().get("cold") == "loaded"


def test_a_cancelled_awaiter_does_not_cancel_the_load_others_wait_on(make_cache: Any) -> None:
    cache = make_cache()
    load = Counter()

    @cache.cache(key="slow")
    async def f() -> Any:
        return await load()

    async def main() -> None:
        load.gate = asyncio.Event()
        first, second, third = (asyncio.ensure_future(f()) for _ in range(3))
        await until(lambda: load.calls)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.sleep(0)
        assert not second.done()
        load.gate.set()
        assert await second == "loaded"
        assert await third == "loaded"

    run(main())
    assert load.calls == 1
    assert cache.stats()["load_errors"] == 0


def test_a_load_whose_every_awaiter_was_cancelled_still_stores(make_cache: Any) -> None:
    cache = make_cache()
    load = Counter()

    @cache.cache(key="orphan")
    async def f() -> Any:
        return await load()

    async def main() -> None:
        load.gate = asyncio.Event()
        only = asyncio.ensure_future(f())
        await until(lambda: load.calls)
        only.cancel()  # the only awaiter gives up
        with pytest.raises(asyncio.CancelledError):
            await only
        load.gate.set()
        assert await f() == "loaded"  # joins the load still in flight, or hits what it stored

    run(main())
    assert load.calls == 1
    assert make_cache().get("orphan") == "loaded"


def test_the_loads_exception_reaches_every_awaiter(make_cache: Any) -> None:
    cache = make_cache()
    load = Counter()

    @cache.cache(key="boom")
    async def f() -> Any:
        return await load()

    async def main() -> list[Any]:
        load.gate = asyncio.Event()
        load.error = ConnectionError("origin down")
        awaiters = [asyncio.ensure_future(f()) for _ in range(10)]
        await until(lambda: load.calls)
        load.gate.set()
        return await asyncio.gather(*awaiters, return_exceptions=True)

    results = run(main())
    assert all(isinstance(r, ConnectionError) and str(r) == "origin down" for r in results)
    assert load.calls == 1
    assert cache.stats()["load_errors"] == 1
    load.error, load.gate = None, None
    assert run(f()) == "loaded"  # a failure is not cached: the next call loads
    assert load.calls == 2


def test_stale_if_error_serves_the_expired_value_within_its_window(
    make_cache: Any, fake_clock: Any
) -> None:
    cache = make_cache()
    load = Counter("good")

    @cache.cache(key="s", ttl=10, stale_if_error=30)
    async def f() -> Any:
        return await load()

    assert run(f()) == "good"
    fake_clock.advance(20)
    load.error = ConnectionError("down")
    assert run(f()) == "good"  # stale, 10 s past its expiry
    assert cache.stats()["stale_served"] == 1
    fake_clock.advance(30)
    with pytest.raises(ConnectionError, match="down"):
        run(f())  # past the window: the function's own exception


def test_two_event_loops_in_two_threads_share_one_load(make_cache: Any) -> None:
    cache = make_cache()
    calls: list[int] = []
    barrier = threading.Barrier(2)

    @cache.cache(key="two-loops")
    async def f() -> str:
        calls.append(1)
        await asyncio.sleep(0.2)  # holds the window open: a second load would show
        return "once"

    results: list[Any] = []

    def work() -> None:
        barrier.wait()
        results.append(asyncio.run(f()))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == ["once", "once"]
    assert len(calls) == 1


_CHILD = """
import asyncio, json, os, sys, time
import tiered_cache as tiered

directory, calls, ready, go = sys.argv[1:5]
cache = tiered.TieredCache(directory=directory, ttl=60)

@cache.cache(key="fleet")
async def fleet():
    with open(calls, "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    await asyncio.sleep(0.5)  # holds the window open: a second load would show
    return {"loaded_by": os.getpid()}

async def main():
    return await asyncio.gather(*(fleet() for _ in range(20)))

open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.001)
values = asyncio.run(main())
print(json.dumps(values[0]) if all(v == values[0] for v in values) else "differ")
"""


@pytest.mark.slow
def test_two_processes_with_20_awaiters_each_share_one_load(cache_dir: str, tmp_path: Path) -> None:
    tiered.TieredCache(directory=cache_dir).get("create")  # the directory exists, as on a host
    calls, go = tmp_path / "calls", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    procs = []
    for n in range(2):
        ready = tmp_path / f"ready-{n}"
        args = [sys.executable, "-c", _CHILD, cache_dir, str(calls), str(ready), str(go)]
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        procs.append((ready, proc))
    try:
        deadline = time.monotonic() + 60
        while not all(ready.exists() for ready, _ in procs):
            assert time.monotonic() < deadline, "children did not get ready"
            assert all(p.poll() is None for _, p in procs), [p.communicate() for _, p in procs]
            time.sleep(0.01)
        go.touch()
        outputs = [p.communicate(timeout=60) for _, p in procs]
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for _, p in procs), outputs
    loaders = calls.read_text().split()
    assert len(loaders) == 1, f"the function ran in {loaders}"
    assert {out for out, _ in outputs} == {f'{{"loaded_by": {loaders[0]}}}\n'}


_HOLDER = """
import sys
import tiered_cache as tiered

cache = tiered.TieredCache(directory=sys.argv[1], ttl=60)

@cache.cache(key="held")
def held():
    print("loading", flush=True)
    sys.stdin.read()  # holds its load (and the disk tier's lock) until the test closes stdin
    return "from the holder"

held()
"""


@pytest.mark.slow
def test_the_loop_runs_while_a_call_waits_for_another_processs_load(
    make_cache: Any,
) -> None:
    cache = make_cache(clock=time.time, lock_timeout=30)
    cache.get("create")
    load = Counter("mine")

    @cache.cache(key="held")
    async def f() -> Any:
        return await load()

    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, cache.directory],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
    )

    async def main() -> tuple[Any, int]:
        call = asyncio.ensure_future(f())
        ticks = 0
        for _ in range(30):  # the loop keeps serving other coroutines meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        assert not call.done()  # still waiting for the holder's load, not loading itself
        assert holder.stdin is not None
        holder.stdin.close()  # the holder's function returns; it stores and unlocks
        return await call, ticks

    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "loading"
        value, ticks = run(main())
        assert holder.wait(30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert (value, ticks) == ("from the holder", 30)
    assert load.calls == 0


def test_nested_cached_coroutines_on_many_cold_keys_do_not_starve(cache: Any) -> None:
    inner_calls: list[int] = []

    @cache.cache(key="token")
    async def token() -> str:
        inner_calls.append(1)
        await asyncio.sleep(0.01)
        return "t"

    @cache.cache(key="user:{uid}")
    async def user(uid: int) -> str:
        return f"{uid}:{await token()}"

    async def main() -> list[str]:  # more cold outer keys than any default thread pool
        return await asyncio.wait_for(asyncio.gather(*(user(i) for i in range(40))), 30)

    assert run(main()) == [f"{i}:t" for i in range(40)]
    assert len(inner_calls) == 1


def test_context_variables_reach_the_function(cache: Any) -> None:
    request: contextvars.ContextVar[str] = contextvars.ContextVar("request")

    @cache.cache(key="ctx")
    async def f() -> str:
        return request.get("unset")

    async def main() -> str:
        request.set("req-1")
        return await f()

    assert run(main()) == "req-1"


def test_a_loop_closed_under_a_load_leaves_no_lock_and_no_error(make_cache: Any) -> None:
    cache = make_cache(lock_timeout=30)
    load = Counter()

    @cache.cache(key="abandoned")
    async def f() -> Any:
        return await load()

    async def abandon() -> None:
        load.gate = asyncio.Event()  # never set: asyncio.run cancels the load on exit
        pending = asyncio.ensure_future(f())
        await until(lambda: load.calls)
        assert not pending.done()

    run(abandon())
    load.gate = None
    assert run(f()) == "loaded"  # the abandoned load's locks were released
    stats = cache.stats()
    assert (stats["load_errors"], stats["lock_timeouts"], stats["disk_lock_timeouts"]) == (0, 0, 0)


# -- controls --------------------------------------------------------------------------------


def test_refresh_is_awaitable_and_invalidate_drops_the_entry(
    make_cache: Any, fake_clock: Any
) -> None:
    cache = make_cache()
    load = Counter()

    @cache.cache(key="report:{day}")
    async def build_report(day: str) -> str:
        await load()
        return f"{day}#{load.calls}"

    async def main() -> None:
        assert await build_report("d") == "d#1"
        assert await build_report("d") == "d#1"
        fake_clock.advance(1)
        refreshed = build_report.refresh("d")
        assert inspect.isawaitable(refreshed)
        assert await refreshed == "d#2"
        assert await build_report("d") == "d#2"
        assert make_cache().get("report:d") == "d#2"
        assert build_report.invalidate("d") is True  # synchronous, like cache_key
        assert build_report.invalidate("d") is False
        assert make_cache().get("report:d") is None
        assert await build_report("d") == "d#3"

    run(main())
    assert build_report.cache_key("d") == "report:d"
    assert load.calls == 3


def test_methods_with_a_template_on_self(cache: Any) -> None:
    class Api:
        def __init__(self, name: str) -> None:
            self.name = name
            self.calls = 0

        @cache.cache(key="svc:{self.name}:{item}")
        async def lookup(self, item: str) -> str:
            self.calls += 1
            await asyncio.sleep(0)
            return f"{self.name}/{item}"

    a, b = Api("a"), Api("b")

    async def main() -> None:
        assert await a.lookup("x") == "a/x"
        assert await a.lookup(item="x") == "a/x"
        assert await b.lookup("x") == "b/x"
        assert await Api.lookup.refresh(b, "x") == "b/x"

    run(main())
    assert (a.calls, b.calls) == (1, 2)
    assert Api.lookup.cache_key(a, "x") == "svc:a:x"
    assert cache.get("svc:b:x") == "b/x"
    assert Api.lookup.invalidate(a, "x") is True


# -- following the default cache -------------------------------------------------------------


def test_an_async_function_follows_the_default_cache(make_cache: Any, tmp_path: Path) -> None:
    first = make_cache(directory=str(tmp_path / "first"))
    other = make_cache(directory=str(tmp_path / "other"))
    tiered.set_default_cache(first)
    key = double.cache_key(21)  # decorated at import, long before either cache existed
    outside = run(double(21))
    assert first.get(key) == outside
    with tiered.use_cache(other):
        inside = run(double(21))
        assert inside != outside  # a miss in `other`: the function ran again
        assert other.get(key) == inside
        assert run(double(21)) == inside
        refreshed = run(double.refresh(21))
        assert refreshed != inside  # the controls use the current default too
        assert double.invalidate(21) is True
        assert other.get(key) is None
    assert first.get(key) == outside
    assert run(double(21)) == outside
