"""One deadline for a whole shared-tier operation, over every socket read and write it makes.

A socket timeout bounds one ``recv``: a server that answers one byte every 40 ms never trips a
50 ms timeout, and held one ``get_or_load`` for seconds. Here the tiers wrap the sockets of
the clients they make (:class:`DeadlineSocket`) and run each operation inside
:class:`bounded`: every read and write of that operation then gets the time left before the
operation's deadline (or the socket's own timeout, if shorter), and once none is left it raises
``TimeoutError`` (``socket.timeout``) as a timed-out read would. The client library handles it
as one (drops the connection, raises its own timeout error), and the tier counts a failure.

Opening a connection is not charged to the operation: a socket wrapped while an operation runs
(a new connection, made by that operation) restarts its budget, so a cold TCP/TLS connection
is bounded by the connect timeout and the exchange after it by the operation's budget. Without
an operation in progress (``bounded`` not entered) a wrapped socket behaves as a plain one.

- :func:`deadline_connection_class` makes a redis-py ``Connection`` class whose sockets are
  wrapped; :func:`bound_botocore` does the same for a botocore client's HTTP connections, and
  :func:`stop_retrying_late` keeps botocore from sleeping for a retry past the deadline.

Thread-safe: the deadline is per thread (each thread runs its own operation on its own pooled
connection); fork-safe (a thread-local holds no lock).
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar

from ._log import log

__all__ = [
    "DeadlineSocket",
    "bound_botocore",
    "bounded",
    "deadline_connection_class",
    "left",
    "stop_retrying_late",
]

_monotonic = time.monotonic


class _State(threading.local):
    at: float | None = None  # monotonic time the operation in progress must end by
    budget: float = 0.0  # its whole budget (to restart it after a new connection)


_state = _State()


class bounded:
    """``with bounded(seconds):`` every wrapped socket of this thread has ``seconds`` in all
    (None: no deadline). Nested blocks keep the earlier deadline."""

    __slots__ = ("_previous", "budget")

    def __init__(self, budget: float | None) -> None:
        self.budget = budget
        self._previous: tuple[float | None, float] = (None, 0.0)

    def __enter__(self) -> None:
        state = _state
        self._previous = (state.at, state.budget)
        if self.budget is not None:
            at = _monotonic() + self.budget
            if state.at is None or at < state.at:
                state.at, state.budget = at, self.budget

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _state.at, _state.budget = self._previous


def left() -> float | None:
    """Seconds left before this thread's deadline (may be negative), or None without one."""
    at = _state.at
    return None if at is None else at - _monotonic()


def _expired() -> TimeoutError:
    return TimeoutError("tiered-cache: the shared-tier operation ran out of time")


class DeadlineSocket:
    """A socket whose reads and writes end by the deadline of the operation in progress.

    Everything else (``fileno``, ``shutdown``, ``getpeercert``...) is the wrapped socket's.
    ``makefile`` and ``close`` follow ``socket.socket``'s own code, so a file made from it
    reads through the deadline and the socket closes once it and its files are closed.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._timeout: float | None = sock.gettimeout()
        self._armed = False
        self._io_refs = 0
        self._closed = False
        if _state.at is not None:  # a connection this operation opened: not charged to it
            _state.at = _monotonic() + _state.budget

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def _arm(self) -> None:
        at = _state.at
        if at is None:
            if self._armed:
                self._armed = False
                self._sock.settimeout(self._timeout)
            return
        remaining = at - _monotonic()
        if remaining <= 0.0:
            raise _expired()
        own = self._timeout
        self._sock.settimeout(remaining if own is None or own > remaining else own)
        self._armed = True

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._armed = False
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    # Arguments are passed on as given: an SSL socket has other defaults than a plain one.
    def recv(self, *args: Any) -> bytes:
        self._arm()
        data: bytes = self._sock.recv(*args)
        return data

    def recv_into(self, *args: Any) -> int:
        self._arm()
        count: int = self._sock.recv_into(*args)
        return count

    def send(self, *args: Any) -> int:
        self._arm()
        count: int = self._sock.send(*args)
        return count

    def sendall(self, data: Any, *flags: Any) -> None:
        view = memoryview(data).cast("B")
        while view:
            self._arm()  # each partial send gets only the time left
            sent: int = self._sock.send(view, *flags)
            view = view[sent:]

    makefile = socket.socket.makefile
    _decref_socketios = socket.socket._decref_socketios  # type: ignore[attr-defined]
    close = socket.socket.close

    def _real_close(self) -> None:
        self._sock.close()

    def detach(self) -> int:
        fd: int = self._sock.detach()
        return fd

    def __repr__(self) -> str:
        return f"DeadlineSocket({self._sock!r})"


# -- redis-py ---------------------------------------------------------------------------------


@functools.cache
def deadline_connection_class(base: type[Any]) -> type[Any]:
    """A subclass of the redis-py connection class ``base`` whose sockets are wrapped."""

    def _connect(self: Any) -> Any:
        return DeadlineSocket(base._connect(self))

    return type(f"Deadline{base.__name__}", (base,), {"_connect": _connect})


# -- botocore ---------------------------------------------------------------------------------


@functools.cache
def _deadline_pool(pool: type[Any]) -> type[Any]:
    """A urllib3 pool class (botocore's) whose connections wrap their sockets once connected."""
    connection: type[Any] = pool.ConnectionCls

    def connect(self: Any) -> None:
        connection.connect(self)
        self.sock = DeadlineSocket(self.sock)

    wrapped = type(f"Deadline{connection.__name__}", (connection,), {"connect": connect})
    return type(f"Deadline{pool.__name__}", (pool,), {"ConnectionCls": wrapped})


def bound_botocore(client: Any) -> bool:
    """Wrap the sockets of ``client``'s HTTP connections (a client this library made); True if
    done. Relies on botocore's URLLib3Session keeping its pool classes in a dict shared with its
    pool managers; if a botocore release changes that, nothing is wrapped (logged at debug
    level) and only the per-read timeouts apply."""
    try:
        classes = client._endpoint.http_session._pool_classes_by_scheme
        wrapped = {scheme: _deadline_pool(pool) for scheme, pool in classes.items()}
    except (AttributeError, TypeError) as exc:
        log.debug("tiered-cache: cannot bound whole DynamoDB calls with this botocore: %r", exc)
        return False
    classes.update(wrapped)
    return True


_THROTTLED = frozenset({"ProvisionedThroughputExceededException", "RequestLimitExceeded"})


class _LateRetry:
    """A ``needs-retry`` handler: no retry of a throttled call (a cache miss is cheaper than
    more load on a throttled table), nor one that could not end by the deadline."""

    #: The longest first-retry backoff botocore's standard mode sleeps for DynamoDB, non-throttled.
    backoff: ClassVar[float] = 0.025

    def __call__(self, response: Any = None, **kwargs: Any) -> bool | None:
        code = ""
        if response is not None:
            try:
                code = str(response[1].get("Error", {}).get("Code", ""))
            except (TypeError, IndexError, AttributeError):
                code = ""
        if "Throttl" in code or code in _THROTTLED:
            return False
        remaining = left()
        if remaining is not None and remaining < 2 * self.backoff:
            return False
        return None  # botocore's own retry rules decide


def stop_retrying_late(client: Any, service: str = "dynamodb") -> None:
    """Register :class:`_LateRetry` first on ``client``'s ``needs-retry`` events."""
    register: Callable[..., Any] = client.meta.events.register_first
    register(f"needs-retry.{service}", _LateRetry(), unique_id="tiered-cache-late-retry")
