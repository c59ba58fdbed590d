"""Specs and plans, the memos, and the miss path with its negative cache.

A :class:`Spec` is what one validated call asks for (the cache key, the fetch, the options); a
:class:`Plan` is a spec bound to one cache. Memo tables hold them per argument tuple and are
dropped whenever the default cache is replaced (``_config._set_default``), so a hit path never
checks which cache is the default. A ``NotFoundError`` is remembered for ``min(10 s, max age)``,
so a hot path asking for a missing name does not hammer the service.

Thread-safe: memo tables are plain dicts (a lost race builds the same value twice).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Final, cast

from .. import _config, _hit
from .._entry import MISSING
from ..exceptions import NotFoundError

if TYPE_CHECKING:
    from .._core import TieredCache
    from ._service import Request

#: A name the origin said does not exist is not asked for again for this long (at most).
NEGATIVE_TTL: Final = 10.0
#: Memo tables are cleared when they reach this many argument tuples (callers that build
#: names dynamically must not grow memory without bound).
MEMO_LIMIT: Final = 4096


class Spec:
    """What one validated call asks for: the cache key, how to fetch, and its options.

    ``fetch()`` returns the value (it may return ``Placed(value, MEMORY)`` for a secret found at
    load time); ``fetch_file(dest, version)`` streams an object for ``TieredCache.load_file``.
    """

    __slots__ = (
        "age",
        "age_arg",
        "attr",
        "fetch",
        "fetch_file",
        "key",
        "persist",
        "plan",
        "request",
        "shared",
        "stale_if_error",
    )

    def __init__(
        self,
        key: str,
        request: Request,
        persist: bool,
        shared: bool | None,
        fetch: Callable[[], Any] | None = None,
        fetch_file: Callable[[IO[bytes], str | None], str | None] | None = None,
    ) -> None:
        self.key = key
        self.request = request
        self.attr = request.attr
        self.age = request.age
        self.age_arg = request.age_arg
        self.stale_if_error = request.stale_if_error
        self.persist = persist
        self.shared = shared
        self.fetch = fetch
        self.fetch_file = fetch_file
        self.plan: Plan | None = None


class Plan:
    """A spec bound to one cache: what the hit and miss paths need, by name.

    ``age``: an entry older than this is stale for the call; ``store_ttl``: the ttl the value
    is stored with (a max age of 0 stores the cache's); ``file``: the value is a path that must
    still exist; ``age_arg``: the ``max_age_in_seconds`` argument it was made for. A generated
    ``get_entry`` keeps its plans in its memo, and reads ``key``, ``age`` and ``age_arg``.
    """

    __slots__ = ("age", "age_arg", "cache", "file", "key", "spec", "store_ttl")

    def __init__(self, spec: Spec, cache: TieredCache) -> None:
        age = cache.ttl if spec.age is None else spec.age
        self.key = spec.key
        self.age = age
        self.cache = cache
        self.store_ttl = age if age > 0 else cache.ttl
        self.spec = spec
        self.file = spec.fetch_file is not None
        self.age_arg = spec.age_arg


# -- memos and hit paths ---------------------------------------------------------------------------


def remember_hit(
    function: Callable[..., Any], table: dict[Any, Plan], name: Any, plan: Plan
) -> None:
    """Keep ``plan`` under ``name`` for ``function`` (a generated getter), and bind
    ``function`` to the plan's cache, if that cache is still the default.

    The check follows the store: a default replaced in between (which clears the tables and
    unbinds the functions after it changes ``_config._current``) either is seen here or undoes
    this itself.
    """
    remember(table, name, plan)
    _hit.rebind(function, **_hit.bound_to(plan.cache))
    if plan.cache is not _config._current:
        table.pop(name, None)
        _hit.rebind(function, **_hit.unbound())


def plan_for(spec: Spec) -> Plan:
    """``spec`` bound to the current default cache (remade when the default cache changes)."""
    cache = _config.default_cache()
    plan = spec.plan
    if plan is not None and plan.cache is cache:
        return plan
    plan = spec.plan = Plan(spec, cache)
    return plan


_memos: list[dict[Any, Any]] = []


def memo_table() -> dict[Any, Any]:
    """A new memo table, cleared with the others whenever the default cache is replaced."""
    table: dict[Any, Any] = {}
    _memos.append(table)
    return table


def _unbind() -> None:
    """The default cache was replaced: drop every memo made for the old one (the generated
    hit paths are unbound by ``_config`` itself)."""
    for table in _memos:
        table.clear()


def remember(table: dict[Any, Any], key: Any, value: Any) -> None:
    if len(table) >= MEMO_LIMIT:
        table.clear()
    table[key] = value


def freeze(value: Any) -> Any:
    """A hashable stand-in for an argument: a list or dict becomes a tuple tagged with its type
    (so that a tuple argument never shares a list's memo)."""
    kind = type(value)
    if kind is list:
        return (list, *value)
    if kind is dict:
        return (dict, *value.items())
    return value


def resolve(table: dict[Any, Spec], memo_key: Any, build: Callable[..., Spec], *args: Any) -> Plan:
    """The plan for a call: its spec from ``table`` by ``memo_key``, else ``build(*args)``
    (which validates and may raise), bound to the default cache.

    ``build`` takes its arguments here rather than as a closure: a closure in the caller
    would turn the caller's arguments into cells, allocated on every call, hits included.
    """
    try:
        spec = table.get(memo_key)
    except TypeError:  # an unhashable argument: validate every time
        return plan_for(build(*args))
    if spec is None:
        spec = build(*args)
        remember(table, memo_key, spec)
    return plan_for(spec)


# The one hit rule over a plan's cache, for the calls that have no hit path of their own (lists
# of names): the same template, with the cache passed in.
_lookup = _hit.make(
    "lookup",
    "cache, mem_get, clock, key, age",
    age="age",
    miss="return MISSING",
    namespace={"MISSING": MISSING},
)
_lookup_file = _hit.make(
    "lookup_file",
    "cache, mem_get, clock, key, age",
    age="age",
    file=True,
    miss="return MISSING",
    namespace={"MISSING": MISSING},
)


def value_of(plan: Plan) -> Any:
    """The value for ``plan``: from memory when fresh, else through :func:`load`."""
    cache = plan.cache
    value = (_lookup_file if plan.file else _lookup)(
        cache, cache._mem.get, cache.clock, plan.key, plan.age
    )
    return load(plan) if value is MISSING else value


# -- the miss path --------------------------------------------------------------------------------

# cache -> {key: (stored_at, until, error)}: names the origin said do not exist.
_missing: weakref.WeakKeyDictionary[TieredCache, dict[str, tuple[float, float, NotFoundError]]]
_missing = weakref.WeakKeyDictionary()


def remembered_miss(plan: Plan) -> bool:
    """Would :func:`load` raise a remembered ``NotFoundError`` for ``plan`` without a call?"""
    found = _missing.get(plan.cache, {}).get(plan.key)
    if found is None:
        return False
    stored_at, until, _ = found
    now = plan.cache.clock()
    return stored_at <= now < until and now - stored_at < plan.age


def load(plan: Plan, refresh: bool = False, fetch: Callable[..., Any] | None = None) -> Any:
    """Load ``plan``'s value through the cache (single-flight, stale-if-error, every tier).

    A ``NotFoundError`` is remembered for ``min(NEGATIVE_TTL, age)`` seconds: asking again
    within that time raises it again without calling the origin. ``refresh``: load anew even
    when a fresh value is cached (concurrent refreshes coalesce into one origin call, as with
    ``max_age_in_seconds=0``; a remembered miss is asked again). ``fetch``: the origin call to
    use instead of the spec's own ``fetch`` (or ``fetch_file``), such as a batch's answer or a
    counting wrapper (``tiered.prefetch``).
    """
    key, age, cache, store_ttl, spec = plan.key, plan.age, plan.cache, plan.store_ttl, plan.spec
    clock = cache.clock
    known = _missing.get(cache)
    if refresh:
        age = 0.0
        if known is not None:
            known.pop(key, None)
        known = None
    if known is not None:
        found = known.get(key)
        if found is not None:
            stored_at, until, error = found
            now = clock()
            if stored_at <= now < until and now - stored_at < age:
                raise NotFoundError(*error.args) from error.__cause__
            known.pop(key, None)
    try:
        if spec.fetch_file is not None:
            fetch_file = spec.fetch_file if fetch is None else fetch
            return cache.load_file(key, fetch_file, store_ttl, spec.stale_if_error, age)
        if fetch is None:
            fetch = cast("Callable[[], Any]", spec.fetch)  # a Spec has fetch or fetch_file
        return cache.load(
            key, fetch, store_ttl, spec.stale_if_error, spec.persist, age, shared=spec.shared
        )
    except NotFoundError as exc:
        window = min(NEGATIVE_TTL, plan.age, store_ttl)
        if window > 0:
            now = clock()
            _missing.setdefault(cache, {})[key] = (now, now + window, exc)
        raise


_config.on_replace.append(_unbind)
