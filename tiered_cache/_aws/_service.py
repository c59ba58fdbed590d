"""Validation, specs and plans, memos, the generated hit paths and the miss path (negative
cache) shared by the AWS helpers.

Arguments are validated at call time, never at decoration, in lambda-cache's order; the result
of validation (the cache key and options) is memoized per argument tuple, so a warm hit is a
memo lookup, a dict lookup and a clock read. Memos and hit-path bindings hold the default cache
they were made for and are dropped when it is replaced (``_config._set_default``).

Thread-safe: memo tables are plain dicts (a lost race builds the same value twice).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any, Final, TypedDict, cast

from .. import _config, _hit
from .._entry import MISSING
from ..exceptions import ArgumentTypeNotSupportedError, NoEntryNameError, NotFoundError

if TYPE_CHECKING:
    import boto3

    from .._core import TieredCache

#: A name the origin said does not exist is not asked for again for this long (at most).
NEGATIVE_TTL: Final = 10.0
#: Memo tables are cleared when they reach this many argument tuples (callers that build
#: names dynamically must not grow memory without bound).
MEMO_LIMIT: Final = 4096


class Options(TypedDict, total=False):
    """Keyword options every helper accepts (checked on a miss, never on the hit path)."""

    ttl: float  #: the same as max_age_in_seconds; give one, or both with the same value
    stale_if_error: float  #: seconds past expiry a stale value may stand in for a failure
    persist: bool  #: write to the disk tier (secrets default to False)
    shared: bool  #: write to the shared tier (default: as persist; secrets: only when True)
    client: Any  #: a boto3 client to use instead of the lazily made shared one
    session: boto3.Session  #: a boto3 Session to make the client from
    region_name: str  #: the region to make the client for (part of the cache key)


_COMMON: Final = frozenset(Options.__annotations__)


# -- validation --------------------------------------------------------------------------------


def entry_name_for(argument: Any, entry_name: Any) -> str:
    """The context attribute name, validated as lambda-cache does (and in its order).

    A ``str`` argument names itself by its last ``/`` segment unless ``entry_name`` is given;
    an ``int``, ``list`` or ``dict`` without ``entry_name`` raises ``NoEntryNameError``; any
    other type raises ``ArgumentTypeNotSupportedError``.
    """
    if isinstance(argument, str):
        name = entry_name or argument.split("/")[-1]
    elif type(argument) in (int, list, dict):
        if not entry_name:
            raise NoEntryNameError(
                f"tiered-cache: a {type(argument).__name__} argument needs entry_name=, the "
                "name of the context attribute (and of the entry in get_entry's result) to set"
            )
        name = entry_name
    else:
        raise ArgumentTypeNotSupportedError(
            f"tiered-cache: the argument can only be a str (or a list of str where the helper "
            f"takes several names), not {type(argument).__name__}"
        )
    if not isinstance(name, str):
        raise ArgumentTypeNotSupportedError(
            f"tiered-cache: entry_name must be a str, not {type(name).__name__}"
        )
    return name


def _seconds(name: str, value: Any, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise TypeError(
            f"tiered-cache: {owner}: {name} must be a number of seconds >= 0, not {value!r}"
        )
    return float(value)


def check_options(
    options: Mapping[str, Any], allowed: frozenset[str], owner: str
) -> tuple[float | None, float | None]:
    """Reject unknown options; return (ttl from ``ttl=``, stale_if_error), both checked."""
    unknown = sorted(set(options) - allowed - _COMMON)
    if unknown:
        raise TypeError(
            f"tiered-cache: {owner}() got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(allowed | _COMMON))}"
        )
    ttl = options.get("ttl")
    sie = options.get("stale_if_error")
    for flag in ("persist", "shared"):
        value = options.get(flag)
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"tiered-cache: {owner}: {flag} must be True or False, not {value!r}")
    return (
        None if ttl is None else _seconds("ttl", ttl, owner),
        None if sie is None else _seconds("stale_if_error", sie, owner),
    )


def max_age_of(max_age_in_seconds: Any, ttl: float | None, owner: str) -> float | None:
    """The call's age bound: ``max_age_in_seconds`` or ``ttl`` (None: the cache's ttl)."""
    if max_age_in_seconds is None:
        return ttl
    age = _seconds("max_age_in_seconds", max_age_in_seconds, owner)
    if ttl is not None and ttl != age:
        raise TypeError(
            f"tiered-cache: {owner}: ttl={ttl:g} and max_age_in_seconds={age:g} are the same "
            "setting with different values; give one of them"
        )
    return age


# -- specs and plans -----------------------------------------------------------------------------


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
        "shared",
        "stale_if_error",
    )

    def __init__(
        self,
        key: str,
        attr: str,
        age: float | None,
        age_arg: Any,
        stale_if_error: float | None,
        persist: bool,
        fetch: Callable[[], Any] | None = None,
        fetch_file: Callable[[IO[bytes], str | None], str | None] | None = None,
        shared: bool | None = None,
    ) -> None:
        self.key = key
        self.attr = attr
        self.age = age
        self.age_arg = age_arg
        self.stale_if_error = stale_if_error
        self.persist = persist
        self.fetch = fetch
        self.fetch_file = fetch_file
        self.shared = shared
        self.plan: Plan | None = None


class Plan:
    """A spec bound to one cache: what the miss path needs, by name.

    ``age``: an entry older than this is stale for the call; ``store_ttl``: the ttl the value
    is stored with (a max age of 0 stores the cache's); ``file``: the value is a path that must
    still exist; ``age_arg``: the ``max_age_in_seconds`` argument it was made for.
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


#: What a service's get_entry keeps per name for its generated hit: (key, age, age_arg).
#: Kept only while its cache is the default: replacing the default clears every hit table.
Hit = tuple[str, float, Any]


def remember_hit(
    function: Callable[..., Any], table: dict[Any, Hit], name: str, plan: Plan
) -> None:
    """Keep ``plan``'s hit under ``name`` for ``function`` (made by :func:`hit_path`), and bind
    ``function`` to the plan's cache, if that cache is still the default.

    The check follows the store: a default replaced in between (which clears the tables and
    unbinds the functions after it changes ``_config._current``) either is seen here or undoes
    this itself.
    """
    remember(table, name, (plan.key, plan.age, plan.age_arg))
    _hit.rebind(function, **_hit.bound_to(plan.cache))
    if plan.cache is not _config._current:
        table.pop(name, None)
        _hit.rebind(function, **_hit.unbound())


def hit_path(
    name: str,
    params: str,
    args: str,
    table: dict[Any, Hit],
    slow: Callable[..., Any],
    extra: str = "",
    file: bool = False,
    doc: str | None = None,
) -> Callable[..., Any]:
    """A service's ``get_entry``, generated from the one hit rule (``_hit``).

    ``params`` is its signature and ``args`` how it passes them to ``slow`` (the validating
    miss path, which ends with :func:`remember_hit`). The first parameter names the thing asked
    for; a hit needs it remembered in ``table`` for the same ``max_age_in_seconds``, no other
    options, and ``extra`` (a condition on the other parameters that must be False).
    """
    first = params.split(",", 1)[0].strip()
    prologue = (
        f"try:\n    key, age, age_arg = table[{first}]\n"
        f"except (KeyError, TypeError):\n    return slow({args})\n"
        f"if options{extra} or (age_arg is not max_age_in_seconds "
        f"and age_arg != max_age_in_seconds):\n    return slow({args})"
    )
    function = _hit.make(
        name,
        params,
        prologue=prologue,
        age="age",
        file=file,
        miss=f"return slow({args})",
        cells={"table": table, "slow": slow},
        qualname=name,
    )
    function.__module__ = slow.__module__
    function.__doc__ = doc
    _config.follow_default(function)
    return function


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
    """A new memo table, cleared with the others by ``_reset`` (tests)."""
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
    """A hashable stand-in for an argument (lists become tuples)."""
    return tuple(value) if type(value) is list else value


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


# The one hit rule over a plan's cache, for the paths that have no generated function of their
# own (lists of names, paths): the same template, with the cache passed in.
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


def load(plan: Plan) -> Any:
    """Load ``plan``'s value through the cache (single-flight, stale-if-error, both tiers).

    A ``NotFoundError`` is remembered for ``min(NEGATIVE_TTL, age)`` seconds: asking again
    within that time raises it again without calling the origin.
    """
    key, age, cache, store_ttl, spec = plan.key, plan.age, plan.cache, plan.store_ttl, plan.spec
    clock = cache.clock
    known = _missing.get(cache)
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
            return cache.load_file(key, spec.fetch_file, store_ttl, spec.stale_if_error, age)
        fetch = cast("Callable[[], Any]", spec.fetch)  # a Spec has fetch or fetch_file
        return cache.load(
            key, fetch, store_ttl, spec.stale_if_error, spec.persist, age, shared=spec.shared
        )
    except NotFoundError as exc:
        window = min(NEGATIVE_TTL, age, store_ttl)
        if window > 0:
            now = clock()
            _missing.setdefault(cache, {})[key] = (now, now + window, exc)
        raise


_config.on_replace.append(_unbind)
