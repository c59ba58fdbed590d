"""Environment defaults and the process-wide ``default_cache()``.

The environment is read once, when the default cache is made. A setting that cannot be parsed
is logged and its default used; an unsafe or unusable directory is logged and the default
cache runs memory-only: a cold start never aborts over the cache.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import _checks
from ._log import log

if TYPE_CHECKING:
    from ._core import TieredCache

__all__ = [
    "default_cache",
    "follow_default",
    "set_default_cache",
    "settings_from_env",
    "use_cache",
]


def _number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("expected a number") from None


def _integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected an integer") from None


def _setting(parse: Callable[[str], Any], check: Callable[[str, Any], Any]) -> Any:
    """A variable's reader: its syntax (``parse``), then the very check ``TieredCache`` applies
    to the argument (``check``), so a value the constructor would refuse is refused here."""
    return lambda argument, raw: check(argument, parse(raw))


# name -> (TieredCache argument, reader(argument, raw) -> value or ValueError/TypeError)
_VARIABLES: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "TIERED_CACHE_DIR": ("directory", _setting(str, lambda _, v: _checks.directory(v))),
    "TIERED_CACHE_TTL": ("ttl", _setting(_number, _checks.seconds)),
    "TIERED_CACHE_JITTER": ("jitter", _setting(_number, _checks.fraction)),
    "TIERED_CACHE_STALE_IF_ERROR": ("stale_if_error", _setting(_number, _checks.seconds)),
    "TIERED_CACHE_MEMORY_ITEMS": ("memory_items", _setting(_integer, _checks.count)),
    "TIERED_CACHE_MEMORY_BYTES": ("memory_bytes", _setting(_integer, _checks.count)),
    "TIERED_CACHE_DISK_BYTES": ("disk_bytes", _setting(_integer, _checks.count)),
    "TIERED_CACHE_LOCK_TIMEOUT": ("lock_timeout", _setting(_number, _checks.seconds)),
    "TIERED_CACHE_SERIALIZER": ("serializer", _setting(str, lambda _, v: _checks.serializer(v))),
    # + the TIERED_CACHE_REDIS_* options below
    "TIERED_CACHE_REDIS_URL": ("shared", _setting(str, lambda _, v: v)),
}

_TRUE = {"1", "true", "yes", "on"}

_lock = threading.Lock()
#: The default cache, or None until first use. Replace it only through :func:`_set_default`:
#: the AWS helpers and ``@tiered.cache`` bind their hit paths to it and are told on replace.
_current: TieredCache | None = None
#: Called (with no arguments, under the lock) whenever the default cache is replaced.
on_replace: list[Callable[[], None]] = []
#: Generated hit paths (``_hit.make``) bound to the default cache: unbound when it is replaced,
#: so their next call misses and binds them to the new one.
_followers: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """TieredCache keyword arguments from ``TIERED_CACHE_*`` variables (bad ones logged)."""
    env = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    for name, (argument, read) in _VARIABLES.items():
        raw = env.get(name, "").strip()
        if not raw:
            continue
        try:
            settings[argument] = read(argument, raw)
        except (TypeError, ValueError) as exc:  # each variable alone: the others still apply
            reason = str(exc).removeprefix("tiered-cache: ")
            log.error("tiered-cache: ignoring %s=%r (%s); using its default", name, raw, reason)
    if env.get("TIERED_CACHE_DISABLE_DISK", "").strip().lower() in _TRUE:
        settings["disk"] = False
    table = env.get("TIERED_CACHE_DYNAMODB_TABLE", "").strip()
    if table and "shared" in settings:
        settings.pop("shared")
        log.error(
            "tiered-cache: both TIERED_CACHE_REDIS_URL and TIERED_CACHE_DYNAMODB_TABLE are set; "
            "a cache has one shared tier: unset one of them. Running without a shared tier."
        )
    elif table:
        tier = _dynamodb_tier(table, env)
        if tier is not None:
            settings["shared"] = tier
    elif "shared" in settings:
        tier = _shared_tier(settings.pop("shared"), env)
        if tier is not None:
            settings["shared"] = tier
    return settings


def _dynamodb_tier(table: str, env: Mapping[str, str]) -> Any:
    """The shared tier for ``TIERED_CACHE_DYNAMODB_TABLE``, or None (logged) when misconfigured.

    ``TIERED_CACHE_DYNAMODB_PREFIX`` sets the key prefix, ``TIERED_CACHE_DYNAMODB_TIMEOUT`` the
    deadline of each call in seconds. Nothing connects, and ``boto3`` is not imported, here.
    """
    from ._dynamo import DEFAULT_PREFIX, DEFAULT_TIMEOUT, DynamoDBTier

    prefix = env.get("TIERED_CACHE_DYNAMODB_PREFIX", "").strip() or DEFAULT_PREFIX
    try:
        raw = env.get("TIERED_CACHE_DYNAMODB_TIMEOUT", "").strip()
        timeout = float(raw) if raw else DEFAULT_TIMEOUT
        return DynamoDBTier(table, prefix=prefix, timeout=timeout)
    except ValueError as exc:
        log.error("tiered-cache: no shared tier: %s (TIERED_CACHE_DYNAMODB_*)", exc)
        return None


def _shared_tier(url: str, env: Mapping[str, str]) -> Any:
    """The shared tier for ``TIERED_CACHE_REDIS_URL``, or None (logged) when misconfigured.

    ``TIERED_CACHE_REDIS_PREFIX`` sets the key prefix, ``TIERED_CACHE_REDIS_TIMEOUT`` the
    connect and read timeouts in seconds. Nothing connects, and ``redis`` is not imported, here.
    """
    from ._shared import DEFAULT_PREFIX, SharedTier

    prefix = env.get("TIERED_CACHE_REDIS_PREFIX", "").strip() or DEFAULT_PREFIX
    try:
        raw = env.get("TIERED_CACHE_REDIS_TIMEOUT", "").strip()
        timeout = float(raw) if raw else None
        return SharedTier(url, prefix=prefix, connect_timeout=timeout, timeout=timeout)
    except ValueError as exc:
        log.error("tiered-cache: no shared tier: %s (TIERED_CACHE_REDIS_*)", exc)
        return None


def _make(settings: dict[str, Any]) -> TieredCache:
    from ._core import TieredCache
    from .exceptions import UnsafeCacheDirectoryError

    try:
        return TieredCache(**settings)
    except (UnsafeCacheDirectoryError, ValueError, OSError) as exc:
        log.error("%s; running memory-only", _prefixed(exc))
        settings = {k: v for k, v in settings.items() if k not in ("directory", "disk_bytes")}
        try:
            return TieredCache(**settings, disk=False)
        except ValueError as again:
            log.error("%s; using the built-in defaults", _prefixed(again))
            return TieredCache(disk=False)


def _prefixed(exc: BaseException) -> str:
    text = str(exc)
    return text if text.startswith("tiered-cache") else f"tiered-cache: {text}"


def default_cache() -> TieredCache:
    """The process-wide cache used by ``tiered.cache`` and the AWS helpers. Thread-safe."""
    global _current
    cache = _current
    if cache is None:
        with _lock:
            if _current is None:
                _current = _make(settings_from_env())
            cache = _current
    return cache


def follow_default(function: Callable[..., Any]) -> None:
    """Unbind ``function`` (made by ``_hit.make``) whenever the default cache is replaced."""
    _followers.add(function)


def _set_default(cache: TieredCache | None) -> TieredCache | None:
    """Make ``cache`` the default cache; None: make it again from the environment on next
    use. What was bound to the old default is dropped. Returns the previous default."""
    from . import _hit

    global _current
    with _lock:
        previous, _current = _current, cache
        for function in list(_followers):
            _hit.rebind(function, **_hit.unbound())
        for hook in on_replace:
            hook()
    return previous


def set_default_cache(cache: TieredCache) -> TieredCache | None:
    """Make ``cache`` the process-wide default; returns the previous one (None if none was
    made yet).

    It reaches the AWS helpers and every ``@tiered.cache`` function, decorated before or after
    this call. Thread-safe; a call in flight on another thread finishes with the cache it
    started with.
    """
    from ._core import TieredCache

    if not isinstance(cache, TieredCache):
        raise TypeError(
            f"tiered-cache: set_default_cache takes a TieredCache, not {type(cache).__name__}"
        )
    return _set_default(cache)


@contextlib.contextmanager
def use_cache(cache: TieredCache) -> Iterator[TieredCache]:
    """``with tiered.use_cache(cache):``: ``cache`` is the default inside the block, and the
    previous default is restored on exit (the seam for tests: ``TieredCache(clock=fake)``
    makes expiry testable without sleeping)."""
    previous = set_default_cache(cache)
    try:
        yield cache
    finally:
        _set_default(previous)


def _reset_default_cache() -> None:
    """Forget the default cache (tests, or after changing the environment)."""
    _set_default(None)
