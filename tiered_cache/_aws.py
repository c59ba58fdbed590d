"""Shared AWS plumbing for ``ssm``, ``secrets_manager`` and ``s3``.

A service module describes *what* to fetch as a :class:`Spec` (cache key, context attribute,
fetch function) and knows nothing about tiers. This module decides *how*:

- boto3 clients are made lazily, once per process and (service, region, session), with
  botocore's standard retry mode; ``client=`` and ``session=`` (a ``boto3.Session``) inject
  others. ``import tiered_cache.ssm`` does not import boto3: the first client does.
- Botocore errors become :class:`SourceError` (``__cause__`` is the botocore error), missing
  things :class:`NotFoundError`. A missing name is remembered for ``min(10 s, max age)``, so a
  hot path asking for it does not hammer the service (the SSM API limit is shared by the
  account).
- Arguments are validated at call time, never at decoration, in lambda-cache's order; the
  result of validation (the cache key and options) is memoized per argument tuple, so a warm
  hit is a memo lookup, a dict lookup and a clock read. Memos and handler bindings hold the
  default cache they were made for and are dropped when it is replaced
  (``_config._set_default``), so the hit path need not check which cache is the default.
- The handler decorator sets one attribute on ``context`` per stacked decorator, keeps the
  handler's return value, and for the length of the handler bounds lock waits by the Lambda
  deadline (``context.get_remaining_time_in_millis``, read only if a wait happens).
- SnapStart: when ``snapshot_restore_py`` is importable (Lambda, Python 3.12+), an
  after-restore hook makes every entry stored before the restore count as expired.

Thread-safe: clients are made under a lock; memo tables are plain dicts (a lost race builds
the same value twice).
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any, Final, TypedDict, TypeVar, cast

from . import _config, _flight
from .exceptions import (
    ArgumentTypeNotSupportedError,
    NoEntryNameError,
    NotFoundError,
    SourceError,
)

if TYPE_CHECKING:
    import boto3

    from ._core import TieredCache

__all__ = [
    "NEGATIVE_TTL",
    "Hit",
    "Options",
    "Plan",
    "Spec",
    "call",
    "entry_name_for",
    "get_client",
    "handler_decorator",
    "load",
    "plan_for",
    "region_for",
    "resolve",
    "value_of",
]

F = TypeVar("F", bound=Callable[..., Any])

#: A name the origin said does not exist is not asked for again for this long (at most).
NEGATIVE_TTL: Final = 10.0
#: Memo tables are cleared when they reach this many argument tuples (callers that build
#: names dynamically must not grow memory without bound).
MEMO_LIMIT: Final = 4096

_NOT_FOUND: Final = frozenset(
    {
        "ParameterNotFound",
        "ParameterVersionNotFound",
        "ResourceNotFoundException",
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchVersion",
        "NotFound",
        "404",
    }
)


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


# -- clients ---------------------------------------------------------------------------------

_clients: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}
_clients_lock = threading.Lock()


def get_client(service: str, region: str | None = None, session: Any = None) -> Any:
    """The process's client for ``service`` in ``region`` (made once, standard retries)."""
    key = (service, region, id(session))
    found = _clients.get(key)
    if found is not None:
        return found[1]
    with _clients_lock:
        found = _clients.get(key)
        if found is None:
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError

            config = Config(retries={"mode": "standard"})
            try:
                if session is None:
                    import boto3

                    client = boto3.client(service, region_name=region, config=config)  # type: ignore[call-overload]
                else:
                    client = session.client(service, region_name=region, config=config)
            except BotoCoreError as exc:
                raise SourceError(
                    f"tiered-cache: cannot make a {service} client: {exc}; set AWS_REGION, "
                    "or pass region_name=, session= or client="
                ) from exc
            found = _clients[key] = (session, client)  # the session is kept: its id stays unique
    return found[1]


def region_for(service: str, options: Mapping[str, Any]) -> str:
    """The region a call with ``options`` goes to, for the cache key (no boto3 import if the
    environment says, as it does in Lambda)."""
    region = options.get("region_name")
    if region:
        return str(region)
    client = options.get("client")
    if client is not None:
        return str(client.meta.region_name or "")
    session = options.get("session")
    if session is not None and session.region_name:
        return str(session.region_name)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    try:
        return str(get_client(service, None, session).meta.region_name or "")
    except SourceError:  # no region configured: the call itself will say so
        return ""


def client_for(service: str, options: Mapping[str, Any]) -> Any:
    """The injected client, else the shared one for the options' region and session."""
    client = options.get("client")
    if client is not None:
        return client
    return get_client(service, options.get("region_name"), options.get("session"))


# -- errors ----------------------------------------------------------------------------------


def call(operation: Callable[..., Any], what: str, **kwargs: Any) -> Any:
    """``operation(**kwargs)`` with botocore errors turned into ``SourceError``/``NotFoundError``.

    ``what`` names the thing asked for in the message, for example "SSM parameter '/a/x'".
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return operation(**kwargs)
    except ClientError as exc:
        raise translate(exc, what) from exc
    except BotoCoreError as exc:
        raise SourceError(f"tiered-cache: fetching {what} failed: {exc}") from exc


def error_code(exc: Any) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" if it has none)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def translate(exc: Any, what: str) -> SourceError:
    """The tiered-cache error for a botocore ``ClientError`` (not raised; chain it)."""
    code = error_code(exc)
    operation = getattr(exc, "operation_name", "the call")
    if code in _NOT_FOUND:
        return NotFoundError(
            f"tiered-cache: {what} does not exist ({code} from {operation}); check the name, "
            "the region and the version or stage asked for"
        )
    message = getattr(exc, "response", {}).get("Error", {}).get("Message", "")
    return SourceError(f"tiered-cache: {operation} for {what} failed: {code}: {message}")


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

    ``fetch()`` returns the value (it may return ``MemoryOnly(value)`` for a secret found at
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


#: A spec bound to one cache: everything the hit path reads, as a plain tuple (unpacking a
#: tuple subclass such as a NamedTuple is several times slower on the hit path):
#: (key, age: an entry older than this is stale for the call, cache, the memory tier's
#: dict.get, clock, store_ttl: the ttl the value is stored with (max age 0 stores the
#: cache's), spec, file: the value is a path that must still exist, age_arg: the
#: max_age_in_seconds argument it was made for).
Plan = tuple[
    str, float, "TieredCache", Callable[[str], Any], Callable[[], float], float, Spec, bool, Any
]
#: What a service's get_entry keeps per name for its inline hit: Plan's first five and age_arg.
#: Kept only while its cache is the default: replacing the default clears every hit table.
Hit = tuple[str, float, "TieredCache", Callable[[str], Any], Callable[[], float], Any]


def remember_hit(table: dict[Any, Hit], name: str, plan: Plan) -> None:
    """Keep ``plan``'s inline-hit tuple under ``name``, if its cache is still the default.

    The check follows the store: a default replaced in between (which clears the tables after
    it changes ``_config._current``) either is seen here or clears this entry itself.
    """
    remember(table, name, (plan[0], plan[1], plan[2], plan[3], plan[4], plan[8]))
    if plan[2] is not _config._current:
        table.pop(name, None)


def plan_for(spec: Spec) -> Plan:
    """``spec`` bound to the current default cache (remade when the default cache changes)."""
    cache = _config.default_cache()
    plan = spec.plan
    if plan is not None and plan[2] is cache:
        return plan
    age = cache.ttl if spec.age is None else spec.age
    plan = spec.plan = (
        spec.key,
        age,
        cache,
        cache._mem.get,
        cache.clock,
        age if age > 0 else cache.ttl,
        spec,
        spec.fetch_file is not None,
        spec.age_arg,
    )
    return plan


_memos: list[dict[Any, Any]] = []


def memo_table() -> dict[Any, Any]:
    """A new memo table, cleared with the others by ``_reset`` (tests)."""
    table: dict[Any, Any] = {}
    _memos.append(table)
    return table


def _unbind() -> None:
    """The default cache was replaced: drop every memo and handler binding made for the old."""
    for table in _memos:
        table.clear()
    for binding in list(_bindings):
        binding.hit = None


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


def value_of(plan: Plan) -> Any:
    """The value for ``plan``: from memory when fresh, else through :func:`load`."""
    key, age, cache, mem_get, clock, _, _, file, _ = plan
    entry = mem_get(key)
    if entry is not None:
        now = clock()
        if (
            entry.stored_at <= now < entry.expires_at
            and now - entry.stored_at < age
            and (not file or os.path.exists(entry.value))
        ):
            cache.memory_hits += 1
            return entry.value
    return load(plan)


# -- the miss path --------------------------------------------------------------------------------

# cache -> {key: (stored_at, until, error)}: names the origin said do not exist.
_missing: weakref.WeakKeyDictionary[TieredCache, dict[str, tuple[float, float, NotFoundError]]]
_missing = weakref.WeakKeyDictionary()


def load(plan: Plan) -> Any:
    """Load ``plan``'s value through the cache (single-flight, stale-if-error, both tiers).

    A ``NotFoundError`` is remembered for ``min(NEGATIVE_TTL, age)`` seconds: asking again
    within that time raises it again without calling the origin.
    """
    key, age, cache, _, clock, store_ttl, spec, _, _ = plan
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


# -- the handler decorator ------------------------------------------------------------------------


class _Binding:
    """A decorated handler's hit tuple for the current default cache (None: bind on next call):
    (key, age, cache, the memory dict's get, clock, context attribute, file, plan)."""

    __slots__ = ("__weakref__", "hit")

    def __init__(self) -> None:
        self.hit: tuple[Any, ...] | None = None


# Every live binding, so that replacing the default cache can unbind them (see _unbind).
_bindings: weakref.WeakSet[_Binding] = weakref.WeakSet()


def handler_decorator(make_spec: Callable[[], Spec]) -> Callable[[F], F]:
    """A decorator for ``handler(event, context)`` setting ``context.<entry name>``.

    ``make_spec`` validates the decorator's arguments; it runs when the handler is first
    called (and again on every call while it raises), never at decoration, so importing a
    handler module cannot fail.
    """

    def decorator(func: F) -> F:
        binding = _Binding()
        _bindings.add(binding)
        current = _flight.handler_context

        def bind() -> tuple[Any, ...]:
            plan = plan_for(make_spec())
            hit = binding.hit = (*plan[:5], plan[6].attr, plan[7], plan)
            if plan[2] is not _config._current:  # replaced meanwhile (see remember_hit)
                binding.hit = None
            return hit

        # The hit path is inlined on purpose; it must stay in step with TieredCache._fresh.
        @functools.wraps(func)
        def wrapper(event: Any, context: Any) -> Any:
            key, age, cache, mem_get, clock, attr, file, plan = binding.hit or bind()
            previous = current[0]
            current[0] = context  # the deadline, read only if a wait happens
            try:
                entry = mem_get(key)
                if entry is not None:
                    now = clock()
                    stored_at = entry.stored_at
                    if (
                        stored_at <= now
                        and now < entry.expires_at
                        and now - stored_at < age
                        and (not file or os.path.exists(entry.value))
                    ):
                        cache.memory_hits += 1
                        value = entry.value
                    else:
                        value = _load_for(plan, func, context)
                else:
                    value = _load_for(plan, func, context)
                try:
                    setattr(context, attr, value)
                except (AttributeError, TypeError) as exc:
                    raise TypeError(_no_context(func, attr, context)) from exc
                return func(event, context)
            finally:
                current[0] = previous

        return wrapper  # type: ignore[return-value]

    return decorator


def _load_for(plan: Plan, func: Callable[..., Any], context: Any) -> Any:
    """A handler's miss: refuse a ``None`` context before calling the origin."""
    if context is None:
        raise TypeError(_no_context(func, plan[6].attr, context))
    return load(plan)


def _no_context(func: Callable[..., Any], attr: str, context: Any) -> str:
    return (
        f"tiered-cache: {getattr(func, '__qualname__', func)!s} was called with context="
        f"{type(context).__name__}, which cannot hold the attribute {attr!r}; call the handler "
        "as handler(event, context) with the Lambda context (or any object that takes "
        "attributes, such as types.SimpleNamespace() in tests)"
    )


# -- SnapStart -----------------------------------------------------------------------------------

_snapstart_registered = False


def after_restore() -> None:
    """SnapStart after-restore hook: entries stored before now count as expired."""
    _missing.clear()
    _config.default_cache().expire_all()


def register_snapstart() -> bool:
    """Register :func:`after_restore` with ``snapshot_restore_py`` if it is importable (once).

    Returns True if the hook is registered. Called when this module is imported.
    """
    global _snapstart_registered
    if _snapstart_registered:
        return True
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found, unused-ignore]
            register_after_restore,
        )
    except ImportError:
        return False
    register_after_restore(after_restore)
    _snapstart_registered = True
    return True


register_snapstart()
_config.on_replace.append(_unbind)


def _reset() -> None:
    """Forget clients, memoized specs, handler bindings and remembered misses (tests)."""
    with _clients_lock:
        _clients.clear()
    _unbind()
    _missing.clear()
