"""The event-loop side of ``@tiered.cache`` on ``async def`` functions: the miss path.

A memory hit never reaches this module: the generated ``async def`` wrapper answers it inline
with the one rule of ``_hit`` (a dict lookup and a clock read; it returns without suspending).
A miss comes here, and goes through three steps:

1. :class:`Flights`: the awaiters of one cold key on one event loop share one load, a task per
   (loop, cache, key). Each awaiter awaits it through ``asyncio.shield``: a cancelled awaiter
   never cancels the load the others wait for (nor one that nobody waits for any more: its
   value is stored all the same). The load's exception reaches every awaiter.
2. :func:`off_loop`: the load is ``TieredCache.load`` (the disk and shared reads, promotion,
   the thread lock and the disk tier's file lock within one wait budget, ``stale_if_error``,
   the store), run in a worker thread made for it. The event loop never waits on SQLite, a
   file lock or the network: it only awaits a future the thread settles.
3. :func:`on_loop`: ``TieredCache.load``'s loader, called in that worker thread with the
   locks held, schedules the coroutine on the caller's own event loop (where its sockets and
   sessions live) and waits for it. So the file lock is held while the function runs, and
   single-flight spans processes exactly as for a plain function.

One thread per load in flight, gone when its load ends: no pool, because a pool of N threads
deadlocks when N cached coroutines each await another cached coroutine's cold key, and a pool
inherited through ``os.fork`` hands work to threads the child does not have. No thread
outlives the call that needed it (nothing runs while a Lambda environment is frozen).
"""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ._entry import MISSING

if TYPE_CHECKING:
    from ._core import TieredCache

__all__ = ["Flights", "load", "off_loop", "on_loop"]

T = TypeVar("T")


class Flights:
    """The loads in flight on event loops, by (loop, cache, key).

    Thread-safe: several event loops (one per thread) may share one instance; each touches
    only its own slots, with single dict operations. A slot lives while its load runs.
    """

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: dict[tuple[asyncio.AbstractEventLoop, Any, str], asyncio.Task[Any]] = {}

    async def join(
        self,
        cache: Any,
        key: str,
        start: Callable[[], Coroutine[Any, Any, T]],
        probe: Callable[[], Any] | None = None,
    ) -> T:
        """The result of the load of ``key`` in flight on this loop; else ``probe()``'s value
        when it is not ``MISSING`` (the inline read of the lower tiers); else the result of
        ``start()``, begun now. Cancelling this await leaves the load running."""
        loop = asyncio.get_running_loop()
        slot = (loop, cache, key)
        task = self._tasks.get(slot)
        if task is None:
            if probe is not None:
                found = probe()
                if found is not MISSING:
                    return found  # type: ignore[no-any-return]
            task = loop.create_task(start())
            self._tasks[slot] = task
            task.add_done_callback(functools.partial(self._landed, slot))
        result: T = await asyncio.shield(task)
        return result

    def _landed(self, slot: tuple[asyncio.AbstractEventLoop, Any, str], task: Any) -> None:
        if self._tasks.get(slot) is task:
            del self._tasks[slot]
        if not task.cancelled():
            task.exception()  # retrieved here: every awaiter may have been cancelled


async def off_loop(call: Callable[[], T]) -> T:
    """``call()`` in a new worker thread, with the caller's context variables; the event loop
    awaits its outcome without blocking. Cancelling the await does not stop the thread (its
    outcome is then dropped)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: Callable[[], None]) -> None:
        try:
            loop.call_soon_threadsafe(outcome)
        except RuntimeError:  # the loop closed meanwhile: nobody awaits the outcome
            pass

    def run() -> None:
        try:
            result = context.run(call)
        except BaseException as exc:  # every outcome goes to the awaiter
            settle(functools.partial(_fail, future, exc))
        else:
            settle(functools.partial(_succeed, future, result))

    # Not threading.Thread.start(), which blocks the loop until the new thread has run
    _thread.start_new_thread(run, ())
    return await future


def _succeed(future: asyncio.Future[T], result: T) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)


def on_loop(loop: asyncio.AbstractEventLoop, make: Callable[[], Awaitable[T]]) -> T:
    """From a worker thread: await ``make()`` on ``loop`` and wait for its result (its
    exception is raised here unchanged). A loop that closed, or cancelled the coroutine, ends
    the wait with ``asyncio.CancelledError``, which ``TieredCache.load`` does not count as a
    failed load."""
    awaitable = make()
    coroutine = awaitable if inspect.iscoroutine(awaitable) else _await(awaitable)
    try:
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    except RuntimeError:  # the loop is closed: whoever awaited this is gone
        coroutine.close()
        raise asyncio.CancelledError("tiered-cache: the event loop closed") from None
    try:
        result: T = future.result()
    except concurrent.futures.CancelledError:
        raise asyncio.CancelledError("tiered-cache: the load was cancelled") from None
    return result


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def load(
    cache: TieredCache,
    key: str,
    function: Callable[..., Awaitable[T]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    ttl: float | None,
    stale_if_error: float | None,
    persist: bool,
    max_age: float | None,
    refresh: bool = False,
) -> T:
    """``cache.load`` of ``key`` off the event loop, its loader awaiting ``function(*args,
    **kwargs)`` on this loop (see the module docstring)."""
    loop = asyncio.get_running_loop()

    def loader() -> T:
        return on_loop(loop, lambda: function(*args, **kwargs))

    def run() -> T:
        return cache.load(key, loader, ttl, stale_if_error, persist, max_age, refresh=refresh)

    return await off_loop(run)
