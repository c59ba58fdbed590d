"""Single-flight: at most one load per key, across threads and across processes.

Two locks, taken in order: a per-key ``threading.Lock`` (created on demand, dropped when no
thread holds or waits for it), then, for entries that go to disk, one of 64 lock stripes under
the cache directory (``filelock`` where there is no ``fcntl``). Every wait is bounded: by the
caller's timeout and, where a Lambda deadline is known (see :func:`deadline_scope`), by the
time left before it. A waiter that runs out of time goes on without the lock and loads by
itself: correctness never depends on a lock, only the number of origin calls does.

A stripe is held by one thread of one process at a time: a ``threading.Lock`` per stripe path
orders the threads of this process, and a POSIX record lock (``lockf``) on the stripe file
orders the processes. The kernel drops a record lock when its process dies (even by ``kill
-9``), and a forked child never inherits one: a ``flock`` would belong to the open file
description, which a child shares, so a child would keep a stripe its parent took for as long
as it kept the inherited descriptor.

Fork safety: in a child, :class:`Flight` gets fresh locks and the stripe table starts empty;
the child's copies of the parent's stripe descriptors are closed and marked closed, so the
``finally`` of a stripe block the forking thread was in cannot close an unrelated descriptor.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import threading
import time
from collections.abc import Iterator
from typing import Any, Final

from . import _fork

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

# The interpreter's own SHA-256: importing hashlib loads OpenSSL, about 2 ms of every cold start
# (diskcache does not import it). Same digests; hashlib where the module is not built in.
try:
    from _sha2 import sha256  # type: ignore[import-not-found, unused-ignore]  # 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # type: ignore[import-not-found, no-redef, unused-ignore]
    except ImportError:  # pragma: no cover
        from hashlib import sha256  # type: ignore[assignment, unused-ignore]

__all__ = ["Flight", "bounded_wait", "deadline_scope", "file_lock", "key_digest", "stripe_path"]

STRIPES: Final = 64
# Time kept back from a known deadline so the handler can still use what it waited for.
DEADLINE_MARGIN: Final = 1.0

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tiered_cache_deadline", default=None
)

#: ``handler_context[0]`` is the Lambda context of the handler call in progress, set by the
#: handler wrappers (``tiered_cache._aws``) and restored when the call returns (a list, so the
#: hit path stores it without a module attribute write). Read only when a wait needs the
#: deadline: ``context.get_remaining_time_in_millis()``. Process-wide, so threads the handler
#: starts see it too; a :func:`deadline_scope` overrides it.
handler_context: list[Any] = [None]


@contextlib.contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Within this block, lock waits end ``DEADLINE_MARGIN`` s before wall-clock ``deadline``."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def bounded_wait(timeout: float) -> float:
    """``timeout``, shortened to fit before the current deadline (never below zero)."""
    deadline = _deadline.get()
    if deadline is None:
        remaining = getattr(handler_context[0], "get_remaining_time_in_millis", None)
        if remaining is None:
            return timeout
        try:
            deadline = time.time() + float(remaining()) / 1000.0
        except Exception:  # a context that cannot tell: wait as if no deadline were known
            return timeout
    return max(0.0, min(timeout, deadline - time.time() - DEADLINE_MARGIN))


class Flight:
    """Per-key thread locks, created on demand and dropped when unused. Thread-safe; a forked
    child starts with fresh locks (a lock held by another thread of the parent would stay held
    forever in the child)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, list[Any]] = {}  # key -> [lock, users, last failure]
        self.timeouts = 0
        _fork.after_fork_in_child(self._after_fork)

    def _after_fork(self) -> None:
        self._guard = threading.Lock()
        self._locks = {}

    def failed(self, key: str) -> None:
        """Record that a load of ``key`` just failed, for the threads waiting on its lock."""
        slot = self._locks.get(key)
        if slot is not None:
            slot[2] = time.monotonic()

    def failed_since(self, key: str, since: float) -> bool:
        """True if a load of ``key`` failed after monotonic time ``since`` (while one waited)."""
        slot = self._locks.get(key)
        return slot is not None and slot[2] is not None and slot[2] >= since

    @contextlib.contextmanager
    def hold(self, key: str, timeout: float) -> Iterator[bool]:
        """Hold the key's lock for the block; yields False if ``timeout`` ran out first."""
        with self._guard:
            slot = self._locks.get(key)
            if slot is None:
                slot = self._locks[key] = [threading.Lock(), 0, None]
            slot[1] += 1
        lock: threading.Lock = slot[0]
        acquired = lock.acquire(timeout=timeout) if timeout > 0 else lock.acquire(False)
        if not acquired:
            self.timeouts += 1
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()
            with self._guard:
                slot[1] -= 1
                if slot[1] == 0 and self._locks.get(key) is slot:  # (not after a fork)
                    del self._locks[key]


def key_digest(key: str) -> str:
    """SHA-256 of ``key`` (UTF-8, lone surrogates kept), in hex: the name a key has on disk."""
    return str(sha256(key.encode("utf-8", "surrogatepass")).hexdigest())


def stripe_path(locks_dir: str, key: str) -> str:
    """The lock file guarding ``key``: one of ``STRIPES`` files, named by a hash."""
    stripe = int(key_digest(key)[:8], 16)
    return os.path.join(locks_dir, f"{stripe % STRIPES:02d}.lock")


class _Stripe:
    """One stripe file as this process uses it: its thread lock, users and open descriptor."""

    __slots__ = ("fd", "lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.fd = -1  # open while a thread of this process holds (or is taking) the stripe


class _Stripes:
    """This process's stripes by path (entries dropped when unused). Thread-safe."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.table: dict[str, _Stripe] = {}

    def enter(self, path: str) -> _Stripe:
        with self.guard:
            stripe = self.table.get(path)
            if stripe is None:
                stripe = self.table[path] = _Stripe()
            stripe.users += 1
        return stripe

    def leave(self, path: str, stripe: _Stripe) -> None:
        with self.guard:
            stripe.users -= 1
            if stripe.users == 0 and self.table.get(path) is stripe:
                del self.table[path]

    def after_fork(self) -> None:
        """In a child: forget the parent's stripes; close the child's copies of their files."""
        old = self.table
        self.guard = threading.Lock()
        self.table = {}
        for stripe in old.values():
            fd, stripe.fd = stripe.fd, -1  # marked first: the holder's finally skips it
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


_stripes = _Stripes()
_fork.after_fork_in_child(_stripes.after_fork)


@contextlib.contextmanager
def file_lock(locks_dir: str, key: str, timeout: float) -> Iterator[bool]:
    """Hold the lock stripe of ``key`` across threads and processes; yields False on timeout or
    any error.

    A lock file that cannot be made or locked (full or read-only disk) counts as not acquired:
    the caller goes on and loads, as it would after a timeout. On POSIX this is a thread lock
    plus ``lockf`` on the stripe file (see the module docstring); elsewhere it is
    ``filelock.FileLock``. ``fcntl`` is used directly because importing filelock costs
    20-60 ms, paid by the first miss of every cold start.
    """
    path = stripe_path(locks_dir, key)
    if fcntl is None:  # pragma: no cover - exercised on platforms without fcntl
        with _portable_lock(path, timeout) as acquired:
            yield acquired
        return
    deadline = time.monotonic() + timeout
    table = _stripes
    stripe = table.enter(path)
    try:
        lock = stripe.lock
        if not (lock.acquire(timeout=timeout) if timeout > 0 else lock.acquire(False)):
            yield False
            return
        try:
            try:
                stripe.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                yield False
                return
            yield _lockf(stripe.fd, max(0.0, deadline - time.monotonic()))
        finally:
            fd, stripe.fd = stripe.fd, -1  # -1 already if a fork's child hook closed it
            if fd >= 0:
                os.close(fd)  # closing the descriptor releases the record lock
            lock.release()
    finally:
        table.leave(path, stripe)


def _lockf(fd: int, timeout: float) -> bool:
    """Take an exclusive record lock on ``fd`` within ``timeout`` seconds, polling with backoff."""
    assert fcntl is not None
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.01)


@contextlib.contextmanager
def _portable_lock(path: str, timeout: float) -> Iterator[bool]:  # pragma: no cover
    import filelock

    lock = filelock.FileLock(path, timeout=timeout, thread_local=False, is_singleton=False)
    try:
        lock.acquire(timeout=timeout, poll_interval=0.005)
    except (filelock.Timeout, OSError):
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            lock.release()
