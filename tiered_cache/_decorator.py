"""Key templates and the cached-function wrapper behind ``@tiered.cache``.

A warm hit runs inline in the wrapper: key, one dict lookup, one clock read, two comparisons.
Everything else (binding arguments for a template, loading, storing) happens only when needed.
"""

from __future__ import annotations

import functools
import inspect
import string
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from ._core import TieredCache

__all__ = ["CachedFunction", "cache", "stable_repr"]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
Q = ParamSpec("Q")

_INF = float("inf")
_STABLE_SCALARS = (str, bytes, int, float, bool, type(None))


class CachedFunction(Protocol, Generic[P, R]):
    """What ``@tiered.cache`` returns: the function, plus its cache controls."""

    __wrapped__: Callable[P, R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key this call would use."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Drop this call's entry from every tier; True if one was there."""
        ...

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function anew, store its result and return it."""
        ...

    # A decorated method read from an instance is a bound method: callable without ``self``.
    # Its controls stay on the class: ``Class.method.cache_key(obj, ...)``.
    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> CachedFunction[P, R]: ...

    @overload
    def __get__(
        self: CachedFunction[Concatenate[S, Q], R], instance: S, owner: type[Any] | None = None
    ) -> Callable[Q, R]: ...

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any: ...


def stable_repr(value: Any, owner: str) -> str:
    """A repr that is the same in every process, or ``TypeError`` asking for ``key=``."""
    kind = type(value)
    if kind in _STABLE_SCALARS:
        return repr(value)
    if kind is tuple or kind is list:
        inner = ",".join(stable_repr(v, owner) for v in value)
        return f"({inner})" if kind is tuple else f"[{inner}]"
    if kind is dict:
        items = sorted((stable_repr(k, owner), stable_repr(v, owner)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    raise TypeError(
        f"tiered-cache: cannot build a stable cache key for {owner} from an argument of type "
        f"{kind.__name__!r} (its repr may differ between processes). Pass key= to the "
        "decorator: a template such as 'user:{user_id}' or a callable returning a str."
    )


_Binder = Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]


def _binder(func: Callable[..., Any]) -> _Binder:
    """A function mapping (args, kwargs) to {parameter: value}, defaults applied."""
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)

    def slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    if not simple:
        return slow
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    # tails[n]: the defaults of every parameter after the first n, in signature order (so the
    # default key is the same as the slow path's), or None when one of them has no default.
    tails = [
        {p.name: p.default for p in params[n:]}
        if all(p.default is not p.empty for p in params[n:])
        else None
        for n in range(len(positional) + 1)
    ]

    def fast(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if kwargs or len(args) > len(positional):
            return slow(args, kwargs)
        tail = tails[len(args)]
        if tail is None:
            return slow(args, kwargs)  # raises the usual "missing argument" TypeError
        values = dict(zip(positional, args, strict=False))
        values.update(tail)
        return values

    return fast


def _key_builder(
    func: Callable[..., Any], key: Any
) -> tuple[str | None, Callable[[tuple[Any, ...], dict[str, Any]], str]]:
    """(static key or None, builder) for ``func`` and the decorator's ``key`` argument."""
    owner = f"{func.__module__}.{func.__qualname__}"
    if key is None:
        bind = _binder(func)
        if not inspect.signature(func).parameters:
            static = owner + "()"
            return static, lambda args, kwargs: static

        def default_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            values = bind(args, kwargs)
            inner = ", ".join(f"{k}={stable_repr(v, owner)}" for k, v in values.items())
            return f"{owner}({inner})"

        return None, default_key
    if isinstance(key, str):
        fields = [name for _, name, _, _ in string.Formatter().parse(key) if name is not None]
        if not fields:
            return key, lambda args, kwargs: key
        names = set(inspect.signature(func).parameters)
        for field in fields:
            root = field.split(".", 1)[0].split("[", 1)[0]
            if root not in names:
                raise TypeError(
                    f"tiered-cache: the key template {key!r} names {{{field}}}, but "
                    f"{owner} has no parameter {root!r}; use the parameter names "
                    f"{sorted(names)}"
                )
        bind = _binder(func)
        return None, lambda args, kwargs: key.format_map(bind(args, kwargs))
    if callable(key):

        def call_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            result = key(*args, **kwargs)
            if not isinstance(result, str):
                raise TypeError(
                    f"tiered-cache: the key callable for {owner} returned "
                    f"{type(result).__name__}, not str"
                )
            return result

        return None, call_key
    raise TypeError(
        f"tiered-cache: key must be a str template, a callable or None, not {type(key).__name__}"
    )


def _decorate(
    func: Callable[P, R],
    key: Any,
    ttl: float | None,
    stale_if_error: float | None,
    persist: bool,
    get_cache: Callable[[], TieredCache],
) -> CachedFunction[P, R]:
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        raise TypeError(
            f"tiered-cache: {func.__qualname__} is async; @tiered.cache caches plain "
            "functions only. Cache the awaited value instead: make a plain function for the "
            "blocking work, or call cache.get(key) / cache.set(key, value) around the await."
        )
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0):
        raise TypeError(f"tiered-cache: ttl must be a number of seconds >= 0, not {ttl!r}")
    static, build = _key_builder(func, key)
    age = _INF if ttl is None else float(ttl)
    max_age = _INF if ttl is None else None
    bound: TieredCache | None = None
    mem_get: Callable[[str], Any] | None = None
    move: Callable[[str], None] = lambda k: None  # noqa: E731
    clock: Callable[[], float] = lambda: 0.0  # noqa: E731

    def resolve() -> TieredCache:
        nonlocal bound, mem_get, move, clock
        if bound is None:
            cache = get_cache()
            clock, move, mem_get = cache.clock, cache._mem.move_to_end, cache._mem.get
            bound = cache
        return bound

    def miss(k: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        return resolve().load(
            k, lambda: func(*args, **kwargs), ttl, stale_if_error, persist, max_age
        )

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        k = static if static is not None else build(args, kwargs)
        if mem_get is not None:
            entry = mem_get(k)
            if entry is not None:
                now = clock()
                if entry.stored_at <= now < entry.expires_at and now - entry.stored_at < age:
                    bound.memory_hits += 1  # type: ignore[union-attr]
                    try:
                        move(k)
                    except KeyError:
                        pass
                    return entry.value
        return miss(k, args, kwargs)

    def cache_key(*args: Any, **kwargs: Any) -> str:
        return static if static is not None else build(args, kwargs)

    def invalidate(*args: Any, **kwargs: Any) -> bool:
        return resolve().delete(cache_key(*args, **kwargs))

    def refresh(*args: Any, **kwargs: Any) -> Any:
        return resolve().load(
            cache_key(*args, **kwargs),
            lambda: func(*args, **kwargs),
            ttl,
            stale_if_error,
            persist,
            max_age,
            refresh=True,
        )

    wrapper.cache_key = cache_key  # type: ignore[attr-defined]
    wrapper.invalidate = invalidate  # type: ignore[attr-defined]
    wrapper.refresh = refresh  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


@overload
def cache(func: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cache(
    func: str | None = None,
    /,
    *,
    key: str | Callable[..., str] | None = None,
    ttl: float | None = None,
    stale_if_error: float | None = None,
    persist: bool = True,
    _cache: TieredCache | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...


def cache(
    func: Any = None,
    /,
    *,
    key: str | Callable[..., str] | None = None,
    ttl: float | None = None,
    stale_if_error: float | None = None,
    persist: bool = True,
    _cache: TieredCache | None = None,
) -> Any:
    """Cache a function's results in memory and on disk.

    ``@cache``, ``@cache(key="report:{day}", ttl=3600)`` or ``@cache("report:{day}")``.
    ``key`` is a ``str.format`` template filled from the call's bound arguments by parameter
    name (defaults applied), a callable with the function's signature returning a ``str``, or
    None for a stable key made from the module, qualified name and arguments. ``ttl`` is in
    seconds (None: the cache's default) and also bounds the age of an entry another call
    site stored under the same key. ``stale_if_error`` lets an expired value stand in for a
    failing call for that many seconds past its expiry. ``persist=False`` keeps results in
    memory only.

    Thread-safe and process-safe; the function runs at most once per key at a time.
    Async functions are refused with ``TypeError``.
    """

    def get_cache() -> TieredCache:
        if _cache is not None:
            return _cache
        from ._config import default_cache

        return default_cache()

    if isinstance(func, str):
        if key is not None:
            raise TypeError("tiered-cache: give the key once, positionally or as key=")
        key, func = func, None
    if func is not None:
        if not callable(func):
            raise TypeError(f"tiered-cache: cannot decorate {func!r}: it is not callable")
        return _decorate(func, key, ttl, stale_if_error, persist, get_cache)

    def decorator(f: Callable[P, R]) -> CachedFunction[P, R]:
        return _decorate(f, key, ttl, stale_if_error, persist, get_cache)

    return decorator
