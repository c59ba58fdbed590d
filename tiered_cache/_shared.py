"""The shared tier: envelopes in Redis or Valkey, for every execution environment of a fleet.

A dumb store, like the other tiers: it keeps envelopes (``_entry.encode``) and never decides
what is fresh. Each is written with a Redis expiry no later than the envelope's ``stale_until``
(the core passes the lifetime left), so Redis drops what no caller could use any more.

- Safe serializer only: an envelope whose payload was pickled, or that names a file, is refused
  on read (a miss); nothing read from Redis is ever unpickled.
- Keys never become Redis key names: a key is stored as ``<prefix>v1:<sha256(key)>``, its fleet
  lock as ``<prefix>lock:<sha256(key)>``. The prefix lets many functions share one cluster.
- A sick Redis costs little: a connect timeout of 50 ms by default, and one deadline of
  ``timeout`` (50 ms) over each whole command, every read and write of it together
  (``_deadline``: a per-read socket timeout alone let a server that drips one byte every 40 ms
  hold a call for seconds); no client retries, and a circuit breaker (``_breaker``): after
  ``failures`` consecutive errors the tier is skipped for ``cool_down`` seconds, then tried
  again. No Redis exception ever reaches the caller: a failed read is a miss, a failed write
  is skipped, a failed lock is not held.
- Fleet-wide single-flight: :meth:`SharedTier.lock` takes ``SET <lock> <token> NX PX <lease>``
  and waits a bounded time for it; the release deletes the lock only if it still holds this
  caller's token (a small Lua script), so an expired lease never frees another caller's lock.

Thread-safe and process-safe (each process makes its own connection pool, lazily). ``redis``
is imported when the first command is sent, never by ``import tiered_cache``.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from . import _remote
from ._breaker import Breaker
from ._deadline import bounded, deadline_connection_class
from ._entry import Entry, Guard, encode

__all__ = ["DEFAULT_PREFIX", "SharedTier", "connection_kwargs"]


DEFAULT_PREFIX: Final = "tiered-cache:"
DEFAULT_TIMEOUT: Final = 0.05  # seconds: the connect, and each whole command

# Delete the lock only while it still holds our token: an expired lease that another caller
# took since must stay theirs.
_RELEASE: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)

_BOOLS: Final = {"1": True, "true": True, "yes": True, "on": True}
_QUERY: Final[dict[str, Callable[[str], Any]]] = {
    "db": int,
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "ssl_cert_reqs": str,
    "ssl_ca_certs": str,
    "ssl_check_hostname": lambda raw: _BOOLS.get(raw.strip().lower(), False),
    "client_name": str,
}


def connection_kwargs(
    url: str, connect_timeout: float | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """``redis.Redis`` keyword arguments for a ``redis://`` or ``rediss://`` URL.

    ``socket_timeout`` is also the deadline of each whole command (see :class:`SharedTier`).

    ``rediss://`` turns on TLS (``ssl=True``); user name and password come from the URL
    (percent-decoded); the database from the path or ``?db=``. Timeouts: the arguments, else
    ``?socket_connect_timeout=`` / ``?socket_timeout=`` in the URL, else 50 ms. Raises
    ``ValueError`` for another scheme or an unknown query option.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(
            f"tiered-cache: the shared tier needs a redis:// or rediss:// URL, not {url!r} "
            "(check TIERED_CACHE_REDIS_URL)"
        )
    try:
        port = parts.port or 6379
    except ValueError:  # urllib's own message names neither the URL nor what is accepted
        raise ValueError(
            f"tiered-cache: the port in the Redis URL {url!r} must be a number in 1..65535, "
            "as in redis://host:6379/0"
        ) from None
    kwargs: dict[str, Any] = {
        "host": unquote(parts.hostname or "localhost"),
        "port": port,
        "db": 0,
        "ssl": parts.scheme == "rediss",
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    path = unquote(parts.path).strip("/")
    if path:
        try:
            kwargs["db"] = int(path)
        except ValueError as exc:
            raise ValueError(f"tiered-cache: the database in {url!r} is not a number") from exc
    for name, values in parse_qs(parts.query).items():
        parse = _QUERY.get(name)
        if parse is None:
            raise ValueError(
                f"tiered-cache: unknown option {name!r} in the Redis URL; known: "
                + ", ".join(sorted(_QUERY))
            )
        try:
            kwargs[name] = parse(values[-1])
        except ValueError as exc:
            raise ValueError(f"tiered-cache: bad value for {name!r} in the Redis URL") from exc
    if connect_timeout is not None:
        kwargs["socket_connect_timeout"] = connect_timeout
    kwargs.setdefault("socket_connect_timeout", DEFAULT_TIMEOUT)
    if timeout is not None:
        kwargs["socket_timeout"] = timeout
    kwargs.setdefault("socket_timeout", DEFAULT_TIMEOUT)
    return kwargs


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class SharedTier(_remote.RemoteTier):
    """Envelopes in Redis/Valkey shared by a fleet; see the module docstring.

    Give either ``url`` (``redis://`` or ``rediss://``) or a prebuilt ``client`` (for example
    a ``redis.RedisCluster``; its own timeouts and retries then apply, and its commands are
    not bounded as a whole). ``timeout`` bounds each whole command: all its reads and writes
    together, and each one (the socket timeout); opening a connection is bounded by
    ``connect_timeout`` and not charged to the command. ``clock`` times the breaker's cool-down
    (wall clock, injectable). ``lock_wait`` bounds a wait for another caller's fleet lock;
    ``lock_lease`` is how long a lock lives if its holder dies. Values whose envelope exceeds
    ``max_bytes`` are not shared (counted as ``shared_too_large``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = DEFAULT_PREFIX,
        connect_timeout: float | None = None,
        timeout: float | None = None,
        failures: int = 3,
        cool_down: float = 30.0,
        lock_wait: float = 2.0,
        lock_lease: float = 10.0,
        max_bytes: int = 2**20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("tiered-cache: give SharedTier either a Redis URL or a client")
        if failures < 1 or cool_down < 0 or lock_wait < 0 or lock_lease <= 0 or max_bytes < 1:
            raise ValueError(
                "tiered-cache: SharedTier needs failures >= 1, cool_down >= 0, lock_wait >= 0, "
                "lock_lease > 0 and max_bytes >= 1"
            )
        self.kwargs = connection_kwargs(url, connect_timeout, timeout) if url is not None else None
        #: The deadline of one whole command (None for a prebuilt client: its own timeouts).
        self.deadline: float | None = (
            float(self.kwargs["socket_timeout"]) if self.kwargs is not None else None
        )
        self.prefix = prefix
        self.lock_wait = float(lock_wait)
        self.lock_lease = float(lock_lease)
        self.max_bytes = max_bytes
        self.breaker = Breaker("the shared tier", failures, cool_down, clock)
        self._redis: Any = client
        self._make_lock = threading.Lock()
        self.corrupt = 0  # values refused: not an envelope, pickled, a file, damaged
        self.too_large = 0  # values not shared: their envelope exceeds max_bytes
        self.lock_timeouts = 0

    def __repr__(self) -> str:
        where = "client" if self.kwargs is None else f"{self.kwargs['host']}:{self.kwargs['port']}"
        return f"SharedTier({where}, prefix={self.prefix!r}, state={self.state!r})"

    @property
    def breaker_opens(self) -> int:
        return self.breaker.opens

    @property
    def clock(self) -> Callable[[], float]:
        """The wall clock timing the breaker's cool-down."""
        return self.breaker.clock

    @property
    def failures(self) -> int:
        return self.breaker.failures

    @property
    def cool_down(self) -> float:
        return self.breaker.cool_down

    def _client(self) -> Any:
        client = self._redis
        if client is not None:
            return client
        with self._make_lock:
            if self._redis is None:
                import redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry

                # No client retries: the breaker decides when to try again.
                client = redis.Redis(**(self.kwargs or {}), retry=Retry(NoBackoff(), 0))
                # Its sockets end each command by the command's deadline (see _deadline).
                pool = client.connection_pool
                pool.connection_class = deadline_connection_class(pool.connection_class)
                self._redis = client
            return self._redis

    def close(self) -> None:
        """Disconnect the idle connections of the client this tier made from its URL (one in
        use by another thread is left to it); a client you gave is yours to close. The next
        command connects again."""
        client = self._redis
        if self.kwargs is not None and client is not None:
            with contextlib.suppress(Exception):
                client.connection_pool.disconnect(inuse_connections=False)

    def _run(self, command: Callable[[Any], Any]) -> Any:
        """``command(client)``'s result within the deadline, or ``_remote.FAILED`` (breaker open, or
        any error, a deadline passed included)."""
        breaker = self.breaker
        if not breaker.allow():
            return _remote.FAILED
        try:
            with bounded(self.deadline):
                result = command(self._client())
        except Exception as exc:
            breaker.failure(exc)
            return _remote.FAILED
        breaker.success()
        return result

    # -- envelopes ----------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The stored entry for ``key``, or None (missing, refused, down)."""
        data = self._run(lambda r: r.get(self.data_key(key)))
        if data is _remote.FAILED or data is None:
            return None
        return self._envelope(key, data)

    def put(
        self,
        key: str,
        entry: Entry,
        payload: bytes | None,
        lifetime: float,
        guard: Guard | None = None,
    ) -> Entry | None:
        """Store an envelope (safe ``payload``) for ``lifetime`` seconds, rounded down; not
        written when the lifetime is under 1 ms, the envelope too large, or Redis unavailable.

        Always None: the shared tier writes unconditionally (``guard`` is not applied; a fleet
        peer's older load may replace a newer value here until its TTL, and the local tiers,
        which are guarded, keep what they have).
        """
        millis = int(lifetime * 1000.0)
        if millis < 1 or payload is None:
            return None
        data = encode(key, entry, payload, 0)
        if len(data) > self.max_bytes:
            self.too_large += 1
            return None
        self._run(lambda r: r.set(self.data_key(key), data, px=millis))
        return None

    def delete(self, key: str, tombstone: Entry | None = None) -> bool:
        """Drop ``key``'s envelope (no tombstone is kept here); True if Redis held it."""
        found = self._run(lambda r: r.delete(self.data_key(key)))
        return found is not _remote.FAILED and bool(found)

    def clear(self) -> None:
        """Drop every envelope under this tier's prefix (for every function sharing it).

        Each SCAN and DEL is a command of its own, with its own deadline; the first that fails
        ends the clear (what it had not reached stays, until its expiry)."""
        match = _glob_escape(self.prefix) + "v1:*"
        cursor: Any = 0
        names: list[Any] = []

        def scan(r: Any) -> Any:
            return r.scan(cursor, match=match, count=500)

        def delete(r: Any) -> Any:
            return r.delete(*names)

        while True:
            page = self._run(scan)
            if page is _remote.FAILED:
                return
            cursor, names = page
            if names and self._run(delete) is _remote.FAILED:
                return
            if not cursor or cursor == b"0":
                return

    # -- fleet-wide single-flight ---------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, key: str, wait: float) -> Iterator[bool]:
        """Hold ``key``'s fleet lock for the block; yields False after ``wait`` s (at most
        ``lock_wait``) or an error.

        The wait polls (2 ms, doubling up to 50 ms). The lock lives at most ``lock_lease`` s;
        the release removes it only if this caller still holds it.
        """
        name = self.lock_key(key)
        token = secrets.token_hex(16)
        lease = max(1, int(self.lock_lease * 1000.0))
        deadline = time.monotonic() + max(0.0, min(wait, self.lock_wait))
        delay = 0.002
        acquired = False
        while True:
            got = self._run(lambda r: r.set(name, token, nx=True, px=lease))
            if got is _remote.FAILED:
                break
            if got:
                acquired = True
                break
            left = deadline - time.monotonic()
            if left <= 0:
                self.lock_timeouts += 1
                break
            time.sleep(min(delay, left))
            delay = min(delay * 2.0, 0.05)
        try:
            yield acquired
        finally:
            if acquired:
                self._run(lambda r: r.eval(_RELEASE, 1, name, token))

    def stats(self) -> dict[str, int]:
        """Counters since this tier was made."""
        return {
            "shared_attempts": self.attempts,
            "shared_errors": self.errors,
            "shared_skipped": self.skipped,
            "shared_breaker_opens": self.breaker_opens,
            "shared_corrupt": self.corrupt,
            "shared_too_large": self.too_large,
            "shared_lock_timeouts": self.lock_timeouts,
        }
