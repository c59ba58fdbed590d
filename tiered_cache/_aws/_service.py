"""The Service base: a source declares what it fetches, the base does everything else.

A source (``ssm``, ``secrets_manager``, ``s3``, ``dynamodb``, ``appconfig``) is a subclass of
:class:`Service` that declares four things:

- ``name``: the boto3 service (also the cache key's prefix, unless ``kind`` says otherwise);
- ``options``: its own :class:`Option` s, each marked as part of the cache key or not (a
  parameter of the signature, or a keyword in ``**options``);
- ``key(request)``: the part of the cache key that names the thing asked for;
- ``fetch(request)`` (or ``fetch_file(request, dest, version)`` for file-backed values): the
  origin call, returning the value or ``Placed(value, where)``.

Its public functions are plain signatures decorated with :meth:`Service.entry` (``get_entry``:
a generated hit path) and :meth:`Service.handler` (``cache``: the handler decorator). The base
does, once for every source:

- validation at call time, never at decoration, in lambda-cache's order (the entry name, the
  name's type, the common options, the max age, the source's options), into a slotted
  :class:`Request` with named fields;
- the cache key: ``aws:<kind>:<region>:<each key option>=<value>:...:<key(request)>``, so every
  option that changes the value is in it and the entry name never is;
- the memos: a validated call is memoized per argument tuple, so a warm hit is a memo lookup,
  a dict lookup and a clock read; every memo is dropped when the default cache is replaced
  (``_config._set_default``);
- the miss path through the cache (single-flight, stale-if-error, tiers), and the negative
  cache: a ``NotFoundError`` is remembered for ``min(10 s, max age)``, so a hot path asking
  for a missing name does not hammer the service;
- the hit paths, generated from the engine's one rule (``_hit.make``).

Thread-safe: memo tables are plain dicts (a lost race builds the same value twice).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping
from typing import IO, TYPE_CHECKING, Any, ClassVar, Final, TypeVar, cast

from .. import _config, _hit
from ..exceptions import ArgumentTypeNotSupportedError
from ._checks import check_options, entry_name_for, max_age_of
from ._clients import client_for, connections, region_for
from ._handler import handler_decorator
from ._plan import Plan, Spec, freeze, memo_table, remember_hit, resolve, value_of

F = TypeVar("F", bound=Callable[..., Any])

#: Parameters every signature may have that are not options of the source.
_SPECIAL: Final = ("max_age_in_seconds", "entry_name")
#: Names the generated hit paths use for themselves: no parameter may take them.
_RESERVED: Final = frozenset(
    {*_hit.CELLS, "memo", "slow", "plan", "entry", "stored_at", "now", "exists", "freeze", "tuple"}
)


# -- what a source declares ------------------------------------------------------------------------


class Option:
    """One option of a source: a parameter of its signature, or a keyword in ``**options``.

    ``key``: the option changes the value, so it is part of the cache key (and of the hit
    path's memo key when it is a parameter). ``check(name, value, owner)`` validates the given
    value (``default`` when not given) and returns it normalized. ``hashable=False``: the
    parameter is a dict, whose items (in the caller's order) go into the hit path's memo key.
    """

    __slots__ = ("check", "default", "hashable", "key", "name")

    def __init__(
        self,
        name: str,
        default: Any = None,
        *,
        key: bool = True,
        check: Callable[[str, Any, str], Any] | None = None,
        hashable: bool = True,
    ) -> None:
        self.name = name
        self.default = default
        self.key = key
        self.check = check
        self.hashable = hashable


class Request:
    """One validated call, normalized once: every field named.

    ``name`` is the thing asked for (None when a list was given: ``names``); ``attr`` the
    context attribute; ``age`` the max age (None: the cache's ttl) and ``age_arg`` the argument
    it came from; ``persist`` and ``shared`` as given (None: not given); ``options`` the keyword
    options as given (for the client; an injected client or session held weakly, so read them
    through :meth:`client`). A source's own options are fields of the request type
    the base makes for it (``request.decrypt``, ``request.transform``, ...).
    """

    __slots__ = (
        "age",
        "age_arg",
        "attr",
        "name",
        "names",
        "options",
        "owner",
        "persist",
        "region",
        "service",
        "shared",
        "stale_if_error",
    )

    name: str | None
    names: list[str] | None
    attr: str
    age: float | None
    age_arg: Any
    stale_if_error: float | None
    persist: bool | None
    shared: bool | None
    region: str
    options: dict[str, Any]
    owner: str
    service: Service

    if TYPE_CHECKING:

        def __getattr__(self, option: str) -> Any: ...  # a source's own options

    def client(self) -> Any:
        """The injected client, else the process's one for the request's region and session."""
        return client_for(self.service.name, self.options)

    @property
    def where(self) -> str:
        """The region for messages."""
        return self.region or "the default region"


class _Signature:
    """A public function's parameters, read from its code object (no ``inspect`` import)."""

    __slots__ = ("args", "defaults", "names", "params", "positional")

    def __init__(self, stub: Callable[..., Any], options: Mapping[str, Option]) -> None:
        code = stub.__code__
        names = code.co_varnames[: code.co_argcount]
        defaults = stub.__defaults__ or ()
        if code.co_kwonlyargcount or code.co_varnames[code.co_argcount] != "options":
            raise TypeError(f"{stub.__name__}: positional parameters, then **options")
        required = len(names) - len(defaults)
        params = list(names[:required])
        for name, default in zip(names[required:], defaults, strict=True):
            if type(default) not in (type(None), bool, int, float, str):
                raise TypeError(f"{stub.__name__}: the default of {name} must be a literal")
            params.append(f"{name}={default!r}")
        if _RESERVED & set(names) or not set(names[1:]) <= set(_SPECIAL) | set(options):
            raise TypeError(f"{stub.__name__}: parameters must be declared options")
        self.names = names
        self.defaults = dict(zip(names[required:], defaults, strict=True))
        self.params = ", ".join([*params, "**options"])
        self.args = ", ".join([*names, "options"])
        self.positional = frozenset(names)


# -- the base -----------------------------------------------------------------------------------


class Service:
    """A source. Subclasses set ``name`` and ``options`` and write ``key`` and ``fetch``; the
    base gives them ``get_entry`` (:meth:`entry`), ``cache`` (:meth:`handler`) and the rest.

    Also declarable: ``kind`` (the cache key's kind, default ``name``), ``many`` (the name may
    be a list of str), ``secret`` (values stay in memory unless ``persist=True``, and off the
    shared tier unless ``shared=True``), ``file`` (values are local files: ``fetch_file``),
    ``entry_from`` (the parameter whose last ``/`` segment is the default entry name), and the
    hooks ``check_name(name, owner)`` (right after the name's type) and ``check(request)``
    (after every option).
    """

    name: ClassVar[str]
    kind: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    many: ClassVar[bool] = False
    secret: ClassVar[bool] = False
    file: ClassVar[bool] = False
    entry_from: ClassVar[str] = ""

    def __init__(self) -> None:
        cls = type(self)
        self._options = {option.name: option for option in cls.options}
        fields = tuple(self._options)
        self._request = type(f"{cls.__name__}Request", (Request,), {"__slots__": fields})
        self._specs: dict[Any, Spec] = memo_table()
        self._fast: dict[Any, Plan] = memo_table()
        self._signature: _Signature | None = None
        self._hit_key: Callable[..., Any] = _unhashable
        self._entry: Callable[..., Any] = _unhashable

    # -- what a subclass writes

    def key(self, request: Request) -> str:
        """The part of the cache key that names what ``request`` asks for."""
        raise NotImplementedError

    def fetch(self, request: Request) -> Any:
        """The value from the origin (or ``Placed(value, where)``); raises ``SourceError``."""
        raise NotImplementedError

    def fetch_file(self, request: Request, dest: IO[bytes], version: str | None) -> str | None:
        """Stream the object into ``dest``; its version, or ``NOT_MODIFIED`` (``file`` only)."""
        raise NotImplementedError

    def check_name(self, name: str | list[str], owner: str) -> None:
        """Further checks of the name (or names), before the options are."""

    def check(self, request: Request) -> None:
        """Further checks of the whole request."""

    def placement(self, request: Request) -> tuple[bool, bool | None]:
        """``(persist, shared)`` for the request: may its values go to disk, to the shared tier
        (None: as ``persist``)? A ``secret`` source's reach the disk and the fleet only when
        asked to; a fetch may narrow it further once the value is known (``Placed``)."""
        if self.secret:
            return request.persist is True, request.shared is True
        return request.persist is not False, request.shared

    # -- what a subclass may write for ``tiered.prefetch``

    #: ``fetch_batch`` takes at most this many requests (0: the source has no batch call).
    batch: ClassVar[int] = 0

    def batch_key(self, request: Request) -> Hashable | None:
        """Requests with the same key may share one ``fetch_batch`` call (None: never)."""
        return None

    def fetch_batch(self, requests: list[Request], snapshot: bool) -> list[Any]:
        """One origin call for ``requests`` (one ``batch_key``): for each, its value (as
        ``fetch`` gives it), the exception its own ``fetch`` would raise, or :data:`SKIP` (a
        secret, when ``snapshot``: it is not fetched before a SnapStart snapshot). Raises
        ``SourceError`` when the call itself fails."""
        raise NotImplementedError

    def at_snapshot(self, request: Request) -> bool:
        """May ``request`` be loaded before a SnapStart snapshot? Not when its value may be
        secret (a batch of it may still be, leaving its secrets out: ``fetch_batch``)."""
        return not self.secret

    # -- what the base makes

    def entry(self, stub: F) -> F:
        """``get_entry`` (or any getter) with ``stub``'s signature and docstring: its hit path
        generated from the one rule, its miss path validating (memoized), binding the hit
        path to the default cache and loading. A hit needs no keyword options, the same
        ``max_age_in_seconds`` as the call that made it, and the same key parameters."""
        sig = _Signature(stub, self._options)
        owner = f"{stub.__module__.rsplit('.', 1)[-1]}.{stub.__name__}"
        hit = [
            name if self._options.get(name, _PLAIN).hashable else f"tuple({name}.items())"
            for name in sig.names
            if name not in _SPECIAL and self._options.get(name, _PLAIN).key
        ]
        memo = hit[0] if len(hit) == 1 else f"({', '.join(hit)},)"
        self._signature = sig
        scope = {"freeze": freeze}
        self._hit_key = eval(f"lambda {', '.join(sig.names)}: {memo}", scope)  # noqa: S307
        slow = functools.partial(self._miss, owner)
        # The miss is called outside the except block: its errors have no KeyError context.
        prologue = (
            f"try:\n    plan = memo[{memo}]\n"
            "except (KeyError, TypeError, AttributeError):\n    plan = None\n"
            "if plan is None or options or (plan.age_arg is not max_age_in_seconds "
            f"and plan.age_arg != max_age_in_seconds):\n    return slow({sig.args})"
        )
        function = _hit.make(
            stub.__name__,
            sig.params,
            key="plan.key",
            prologue=prologue,
            age="plan.age",
            file=self.file,
            miss=f"return slow({sig.args})",
            cells={"memo": self._fast, "slow": slow},
            namespace=scope,
            qualname=stub.__qualname__,
        )
        functools.update_wrapper(function, stub)
        _config.follow_default(function)
        self._entry = function
        getters[function] = functools.partial(self._spec_of_call, owner, sig)
        return cast("F", function)

    def _spec_of_call(
        self, owner: str, sig: _Signature, args: tuple[Any, ...], keywords: Mapping[str, Any]
    ) -> Spec:
        """The spec of ``getter(*args, **keywords)``, validated as the call would be."""
        given = dict(sig.defaults)
        if len(args) > len(sig.names):
            raise TypeError(f"tiered-cache: {owner}() takes at most {len(sig.names)} arguments")
        given.update(zip(sig.names, args, strict=False))
        options = {}
        for name, value in keywords.items():
            if name in sig.positional:
                given[name] = value
            else:
                options[name] = value
        missing = [name for name in sig.names if name not in given]
        if missing:
            raise TypeError(f"tiered-cache: {owner}() is missing {', '.join(missing)}")
        return self.spec(owner, given, options)

    def handler(self, stub: F) -> F:
        """``cache(...)`` with ``stub``'s signature: a decorator for ``handler(event,
        context)`` setting ``context.<entry name>``; its arguments are checked when the
        handler is called, never at decoration."""
        sig = _Signature(stub, self._options)
        owner = f"{stub.__module__.rsplit('.', 1)[-1]}.{stub.__name__}"
        scope = {"make": functools.partial(self._decorate, owner, sig.names)}
        source = f"def {stub.__name__}({sig.params}):\n    return make({sig.args})\n"
        exec(compile(source, f"<tiered_cache {owner}>", "exec"), scope)  # noqa: S102
        stub.__doc__ = (stub.__doc__ or "").rstrip() + "\n" + _HANDLER_OPTIONS
        return cast("F", functools.update_wrapper(scope[stub.__name__], stub))

    def _decorate(self, owner: str, names: tuple[str, ...], *args: Any) -> Callable[[F], F]:
        given = dict(zip(names, args, strict=False))
        options = dict(args[-1])
        refresh_on = options.pop("refresh_on", None)  # the decorator's own: not the source's
        metrics = options.pop("metrics", None)  # the decorator's own too
        build = functools.partial(self.spec, owner, given, options)
        return handler_decorator(
            build, file=self.file, owner=owner, refresh_on=refresh_on, metrics=metrics
        )

    def _miss(self, owner: str, *args: Any) -> Any:
        """A generated getter's miss path: validate (memoized), bind its hit path, load."""
        options: dict[str, Any] = args[-1]
        values = args[:-1]
        # An injected client or session is in the key by a weak reference, as in the request.
        memo_key = (
            *map(freeze, values),
            tuple(sorted(connections(options).items())) if options else (),
        )
        sig = cast("_Signature", self._signature)
        plan = resolve(self._specs, memo_key, self._build, owner, sig.names, values, options)
        if not options:
            try:
                remember_hit(self._entry, self._fast, self._hit_key(*values), plan)
            except TypeError:  # an unhashable name (a list): no hit path of its own
                pass
        return value_of(plan)

    def _build(
        self, owner: str, names: tuple[str, ...], values: tuple[Any, ...], options: Any
    ) -> Spec:
        return self.spec(owner, dict(zip(names, values, strict=True)), options)

    def spec(self, owner: str, args: Mapping[str, Any], options: Mapping[str, Any]) -> Spec:
        """Validate one call (``args``: its parameters by name, ``options``: its keywords) in
        lambda-cache's order, and say what it asks for. Raises ``TypeError``/``ValueError``
        (and their subclasses in ``tiered_cache.exceptions``) for bad arguments."""
        sig = cast("_Signature", self._signature)
        first = sig.names[0]
        value = args[first]
        if "entry_name" in args:
            attr = entry_name_for(args[self.entry_from or first], args["entry_name"])
        else:
            attr = value if isinstance(value, str) else ""
        request = self._request()
        request.name, request.names = self._name(first, value, owner)
        self.check_name(value, owner)
        keywords = frozenset(self._options) - sig.positional
        ttl, request.stale_if_error = check_options(options, keywords, owner)
        request.age = max_age_of(args["max_age_in_seconds"], ttl, owner)
        for option in self.options:
            given = args[option.name] if option.name in args else options.get(option.name)
            given = option.default if given is None else given
            if option.check is not None:
                given = option.check(option.name, given, owner)
            setattr(request, option.name, given)
        request.attr, request.age_arg, request.owner, request.service = (
            attr,
            args["max_age_in_seconds"],
            owner,
            self,
        )
        request.persist, request.shared = options.get("persist"), options.get("shared")
        request.options = connections(options)  # a memoized request keeps no client alive
        request.region = region_for(self.name, options)
        self.check(request)
        parts = [f"aws:{self.kind or self.name}{'' if request.names is None else '-list'}"]
        parts.append(request.region)
        parts += [f"{o.name}={getattr(request, o.name)!r}" for o in self.options if o.key]
        parts.append(self.key(request))
        persist, shared = self.placement(request)
        if self.file:
            fetch_file = functools.partial(self.fetch_file, request)
            return Spec(":".join(parts), request, True, shared, fetch_file=fetch_file)
        return Spec(
            ":".join(parts), request, persist, shared, functools.partial(self.fetch, request)
        )

    def _name(self, param: str, value: Any, owner: str) -> tuple[str | None, list[str] | None]:
        if isinstance(value, str):
            if not value:
                raise ValueError(f"tiered-cache: {owner}: the {param} is empty")
            return value, None
        if self.many and type(value) is list and all(isinstance(n, str) for n in value):
            names = list(dict.fromkeys(value))
            if not names or not all(names):
                raise ValueError(f"tiered-cache: {owner}: a {param} in the list is empty")
            return None, names
        raise ArgumentTypeNotSupportedError(
            f"tiered-cache: {owner}: {param} must be a str{' or a list of str' * self.many}, "
            f"not {type(value).__name__}"
        )


_PLAIN: Final = Option("")

#: What every handler decorator's docstring ends with (its own options, written once).
_HANDLER_OPTIONS: Final = """
    ``refresh_on=(SomeError, ...)``: when the handler raises one of these, the value is
    refreshed once and the handler called once more (one retry per invocation, for a whole
    stack of decorators; the handler must be safe to run twice for those errors).
    ``metrics=``: a Powertools ``Metrics`` to add the caches' metrics to after each invocation
    (see ``TIERED_CACHE_METRICS``). A handler that cannot be called as
    ``handler(event, context)`` is a ``TypeError`` on its first call.
    """

#: In ``fetch_batch``'s answer: a secret left out (it is not loaded before a snapshot).
SKIP: Final = object()

#: Every generated getter (``get_entry``, ...) -> the spec of a call of it, from its positional
#: and keyword arguments (``tiered.prefetch`` reads ``functools.partial(getter, ...)`` with it).
getters: dict[Callable[..., Any], Callable[[tuple[Any, ...], Mapping[str, Any]], Spec]] = {}


def _unhashable(*_: Any) -> Any:
    raise TypeError("not made yet")
