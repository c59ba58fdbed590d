"""Key functions specialized at decoration; the cached-function wrapper behind ``@tiered.cache``.

At decoration the wrapper is *generated* by ``_hit.make`` (the one memory-hit rule) with the
decorated function's own parameters (names, defaults, positional-only, keyword-only, ``*args``,
``**kwargs``), so Python binds every call natively, and with its key computed inline:

- a template ``"r:{day}:{n}"`` becomes the f-string ``f"r:{day}:{n}"``; attributes
  (``{self.name}``), items (``{d[key]}``, ``{d[0]}``), conversions and format specs are kept,
  so the key is exactly ``template.format_map`` of the bound arguments, defaults applied;
- the default key renders each argument with :func:`stable_repr`, and for arguments whose type
  is exactly ``str``, ``int``, ``float``, ``bool``, ``bytes`` or ``None`` (where the two agree)
  with the f-string's own ``!r``;
- a callable key is called with the bound arguments and must return a ``str``.

A warm hit is then one call: the key, one dict lookup, one clock read and the rule. Templates
are checked when the function is decorated, and default keys are refused where nothing stable
tells two functions apart (lambdas, functions made inside functions, partials, callable
instances, bound methods, an interactive ``__main__``).

A function whose signature cannot be reproduced in source (no signature, or a parameter named
like one of the hit path's own names: ``cache``, ``clock``, ``entry``, ``now`` ...) gets the
generic wrapper, ``(*args, **kwargs)`` bound through ``inspect.Signature`` on every call: the
same keys, slower.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import keyword
import math
import os
import string
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    cast,
    overload,
)

from . import _config, _hit
from ._entry import MISSING

if TYPE_CHECKING:
    from ._core import TieredCache

__all__ = ["CachedFunction", "cache", "stable_repr"]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
Q = ParamSpec("Q")

_INF = float("inf")
_STABLE_SCALARS = (str, bytes, int, float, bool, type(None))
#: Exact types whose ``repr`` is their stable form: the default key's inline fast path.
_FAST_TYPES = frozenset(_STABLE_SCALARS)
#: str.format's own field-name parser (``"a.b[0]"`` -> ``"a"``, ``[(True, "b"), (False, 0)]``).
_split_field: Callable[[str], tuple[Any, Iterable[tuple[bool, Any]]]] = importlib.import_module(
    "_string"
).formatter_field_name_split
_UNBOUND = _hit.unbound()["cache"]
_OWN = "_tc_"  # the prefix of every name the generated code adds (builtins too: _tc_type)


def _hit_names() -> frozenset[str]:
    """The names the hit rule's own code binds or reads (its cells, its locals such as
    ``entry`` and ``now``): a parameter named so would shadow them, so it gets the generic
    wrapper. Read from a generated probe, so a change to the rule cannot slip past."""
    probe = _hit.make("probe", "", key="None", miss="return None").__code__
    return frozenset({*_hit.CELLS, *probe.co_varnames, *probe.co_freevars, "exists", "__make__"})


_RESERVED = _hit_names()
#: Characters of format specs written into the f-string as they are; a spec with any other
#: goes in as a constant.
_PLAIN_SPEC = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 <>=^+-#,._%:"
)


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


# -- names and signatures --------------------------------------------------------------------


def _describe(func: Any) -> str:
    """How messages name ``func``."""
    qualname = getattr(func, "__qualname__", None)
    if isinstance(qualname, str):
        return f"{getattr(func, '__module__', None)}.{qualname}"
    return repr(func)


def _owner(func: Any) -> str:
    """The prefix of ``func``'s default keys: its module and qualified name, or ``TypeError``
    (asking for ``key=``) when nothing stable tells it apart from another function."""
    what = _describe(func)
    qualname = getattr(func, "__qualname__", None)
    module = getattr(func, "__module__", None)
    if not isinstance(qualname, str) or not isinstance(module, str):
        why = "it has no stable name of its own (a functools.partial or a callable instance)"
    elif inspect.ismethod(func):
        why = "it is a bound method: the name is the same for every instance (or class)"
    elif "<lambda>" in qualname:
        why = "it is a lambda: every lambda is named <lambda>"
    elif "<locals>" in qualname:
        why = (
            "it is defined inside a function: every function that function makes has the same name"
        )
    elif module in ("__main__", "__mp_main__"):
        main_file = getattr(sys.modules.get(module), "__file__", None)
        if isinstance(main_file, str):
            # Two scripts on one cache directory each have a __main__.settings: the script's
            # path tells them apart (and a multiprocessing child, whose __main__ is named
            # __mp_main__, shares its parent's keys).
            return f"__main__[{os.path.abspath(main_file)}].{qualname}"
        why = (
            "it is defined in an interactive __main__ (a REPL, a notebook or python -c), "
            "which has no file to tell it from another program's function of the same name"
        )
    else:
        return f"{module}.{qualname}"
    raise TypeError(
        f"tiered-cache: cannot make a default cache key for {what}: {why}, so nothing stable "
        "tells two of them apart and they would share entries. Pass key= to the decorator: a "
        "template such as 'user:{user_id}' or a callable returning a str."
    )


def _signature(func: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (ValueError, TypeError):
        return None


class _Params:
    """A signature as source text: the generated functions' parameter list and how they call
    the function (and a key callable) with what was bound."""

    __slots__ = ("call", "defaults", "forward", "source", "variadic")

    def __init__(self, sig: inspect.Signature) -> None:
        kinds = inspect.Parameter
        source: list[str] = []
        call: list[str] = []
        positional: list[str] = []
        keywords: list[str] = []
        self.defaults: dict[str, Any] = {}
        self.variadic = False
        star = False
        params = list(sig.parameters.values())
        for i, p in enumerate(params):
            name = p.name
            if p.kind is kinds.KEYWORD_ONLY and not star:
                source.append("*")
                star = True
            text = name
            if p.kind is kinds.VAR_POSITIONAL:
                text, star, self.variadic = "*" + name, True, True
                positional.append(text)
                call.append(text)
            elif p.kind is kinds.VAR_KEYWORD:
                text, self.variadic = "**" + name, True
                keywords.append(text)
                call.append(text)
            elif p.kind is kinds.KEYWORD_ONLY:
                keywords.append(f"{name!r}: {name}")
                call.append(f"{name}={name}")
            else:
                positional.append(name)
                call.append(name)
            if p.default is not p.empty:
                default = f"{_OWN}d{i}"
                self.defaults[default] = p.default  # passed through, never re-evaluated
                text += "=" + default
            source.append(text)
            last_positional_only = p.kind is kinds.POSITIONAL_ONLY and (
                i + 1 == len(params) or params[i + 1].kind is not kinds.POSITIONAL_ONLY
            )
            if last_positional_only:
                source.append("/")
        self.source = ", ".join(source)
        self.call = ", ".join(call)
        args = ", ".join(positional) + ("," if len(positional) == 1 else "")
        self.forward = f"({args}), {{{', '.join(keywords)}}}"

    @staticmethod
    def of(func: Any, sig: inspect.Signature | None) -> _Params | None:
        """The signature as source, or None when it cannot be written as one, or when the
        callable is not Python code (a builtin's documented defaults may not behave as
        omitted arguments do: the generic wrapper passes the call's arguments on as given)."""
        if sig is None or not _python_level(func):
            return None
        try:
            inner = inspect.unwrap(func)  # what the signature was read from
        except ValueError:  # a __wrapped__ cycle
            return None
        if not _python_level(inner):
            return None
        for name in sig.parameters:
            if name in _RESERVED or name.startswith(_OWN) or not _source_name(name):
                return None
        return _Params(sig)


def _python_level(func: Any) -> bool:
    """True for Python functions, and methods, partials and callable instances made of them."""
    if isinstance(func, functools.partial):
        return _python_level(func.func)
    if inspect.ismethod(func):
        return _python_level(func.__func__)
    if inspect.isfunction(func):
        return True
    call = inspect.getattr_static(type(func), "__call__", None)
    return not isinstance(func, type) and inspect.isfunction(call)


def _source_name(name: str) -> bool:
    """True when ``name`` means itself in source (identifiers are NFKC-normalized)."""
    if name.isascii():
        return name.isidentifier() and not keyword.iskeyword(name)
    import unicodedata

    return name.isidentifier() and unicodedata.normalize("NFKC", name) == name


# -- keys ------------------------------------------------------------------------------------


class _Key:
    """How the generated functions compute ``_tc_key``: ``prologue`` (source lines) then
    ``_tc_key = expr``, reading ``names``."""

    __slots__ = ("expr", "names", "prologue")

    def __init__(self, expr: str, names: dict[str, Any] | None = None, prologue: str = "") -> None:
        self.expr = expr
        self.names = names or {}
        self.prologue = prologue

    @property
    def source(self) -> str:
        return f"{self.prologue}{_OWN}key = {self.expr}\n"


def _literal(text: str) -> str:
    """``text`` as the literal part of a double-quoted f-string."""
    escaped = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return escaped.replace("{", "{{").replace("}", "}}")


class _Fields:
    """A template parsed and checked at decoration: its pieces as (literal, field) pairs, a
    field being (root parameter, [(is_attribute, name or index)], conversion, spec)."""

    __slots__ = ("pieces", "template")

    def __init__(self, template: str) -> None:
        """Parse ``template``: ``ValueError`` when malformed, ``TypeError`` for a positional
        field or a field nested in a format spec."""
        self.template = template
        self.pieces: list[tuple[str, tuple[str, list[tuple[bool, Any]], str, str] | None]] = []
        try:
            parsed = list(string.Formatter().parse(template))
            for literal, field, spec, conversion in parsed:
                if field is None:
                    self.pieces.append((literal, None))
                    continue
                root, rest = _split_field(field)
                self.pieces.append((literal, (root, list(rest), conversion or "", spec or "")))
        except ValueError as exc:
            raise ValueError(
                f"tiered-cache: the key template {template!r} is malformed ({exc}); write "
                "literal braces as {{ and }}"
            ) from exc
        for _, parts in self.pieces:
            if parts is None:
                continue
            root, _, conversion, spec = parts
            if root == "" or isinstance(root, int):
                raise TypeError(
                    f"tiered-cache: the key template {template!r} has a positional field "
                    f"{{{root}}}, but its fields name parameters: write {{user_id}} for a "
                    "parameter user_id"
                )
            if conversion not in ("", "r", "s", "a"):
                raise ValueError(
                    f"tiered-cache: the key template {template!r} has the conversion "
                    f"!{conversion}; use !r, !s or !a"
                )
            if "{" in spec or "}" in spec:
                raise TypeError(
                    f"tiered-cache: the key template {template!r} has a replacement field "
                    f"inside a format spec ({{{root}:{spec}}}), which a key template does not "
                    f"fill; write the spec out (for example {{{root}:>10}}), or pass a callable "
                    f"that formats it: key=lambda {root}, ...: f'...'"
                )

    def check(self, names: Iterable[str], owner: str) -> None:
        """``TypeError`` unless every field names one of ``names`` (``owner``'s parameters)."""
        known = set(names)
        for _, parts in self.pieces:
            if parts is not None and parts[0] not in known:
                raise TypeError(
                    f"tiered-cache: the key template {self.template!r} names {{{parts[0]}...}}, "
                    f"but {owner} has no parameter {parts[0]!r}; use the parameter names "
                    f"{sorted(known)}"
                )

    @property
    def static(self) -> bool:
        return all(parts is None for _, parts in self.pieces)

    def fstring(self) -> tuple[str, dict[str, Any]]:
        """The template as one f-string over the parameters, and the constants it reads."""
        consts: dict[str, Any] = {}

        def const(value: Any) -> str:
            name = f"{_OWN}c{len(consts)}"
            consts[name] = value
            return name

        out: list[str] = []
        for literal, parts in self.pieces:
            out.append(_literal(literal))
            if parts is None:
                continue
            expr, rest, conversion, spec = parts
            for is_attribute, name in rest:
                if is_attribute and name.isascii() and _source_name(name):
                    expr += "." + name
                elif is_attribute:  # {a.0}, {a.class}: str.format reads any attribute name
                    expr = f"{const(getattr)}({expr}, {const(name)})"
                elif isinstance(name, int):
                    expr += f"[{name}]"
                else:
                    expr += f"[{const(name)}]"
            if conversion:
                expr += "!" + conversion
            if spec:
                expr += ":" + (spec if _PLAIN_SPEC.issuperset(spec) else "{" + const(spec) + "}")
            out.append("{" + expr + "}")
        return 'f"' + "".join(out) + '"', consts


def _key_plan(func: Any, key: Any, sig: inspect.Signature | None, params: _Params | None) -> _Key:
    """How the wrapper computes its key (checked here, at decoration)."""
    what = _describe(func)
    if key is None:
        owner = _owner(func)
        if sig is None:
            raise TypeError(
                f"tiered-cache: cannot read the signature of {what} to make a default key; "
                "pass key= (a template or a callable returning a str)"
            )
        if not sig.parameters:
            static = owner + "()"
            return _Key(repr(static))
        names = list(sig.parameters)

        def slow(*values: Any) -> str:
            inner = ", ".join(
                f"{n}={stable_repr(v, owner)}" for n, v in zip(names, values, strict=True)
            )
            return f"{owner}({inner})"

        if params is None:
            return _generic(sig, lambda arguments: slow(*arguments.values()))
        ref = {f"{_OWN}slow": slow, f"{_OWN}fast": _FAST_TYPES, f"{_OWN}type": type}
        call = f"{_OWN}slow({', '.join(names)})"
        if params.variadic:  # *args and **kwargs: stable_repr of the tuple and the dict
            return _Key(call, ref)
        test = " and ".join(f"{_OWN}type({n}) in {_OWN}fast" for n in names)
        inner = ", ".join(f"{n}={{{n}!r}}" for n in names)
        fast = f'f"{_literal(owner)}({inner})"'
        return _Key(f"{fast} if {test} else {call}", ref)
    if isinstance(key, str):
        fields = _Fields(key)
        if fields.static:
            return _Key(repr(key))  # as given: a template without fields is taken literally
        if sig is None:
            raise TypeError(
                f"tiered-cache: cannot read the signature of {what}, so the fields of the key "
                f"template {key!r} name nothing; pass a callable key= returning a str"
            )
        fields.check(sig.parameters, what)
        if params is None:
            return _generic(sig, key.format_map)
        expr, consts = fields.fstring()
        return _Key(expr, consts)
    if callable(key):

        def check(result: Any) -> str:
            if isinstance(result, str):
                return str.__str__(result)  # a str subclass: its plain str
            raise TypeError(
                f"tiered-cache: the key callable for {what} returned {type(result).__name__}, "
                "not str"
            )

        ref = {f"{_OWN}keyfn": key, f"{_OWN}check": check, f"{_OWN}type": type, f"{_OWN}str": str}
        call = params.call if params is not None else f"*{_OWN}args, **{_OWN}kwargs"
        prologue = (
            f"{_OWN}key = {_OWN}keyfn({call})\n"
            f"if {_OWN}type({_OWN}key) is not {_OWN}str:\n"
            f"    {_OWN}key = {_OWN}check({_OWN}key)\n"
        )
        return _Key(f"{_OWN}key", ref, prologue)
    raise TypeError(
        f"tiered-cache: key must be a str template, a callable or None, not {type(key).__name__}"
    )


def _generic(sig: inspect.Signature, build: Callable[[dict[str, Any]], str]) -> _Key:
    """A key from the arguments bound through ``sig`` (defaults applied), for the generic
    wrapper ``(*_tc_args, **_tc_kwargs)``."""

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        return build(dict(bound.arguments))

    return _Key(f"{_OWN}bind({_OWN}args, {_OWN}kwargs)", {f"{_OWN}bind": bind})


# -- the wrapper -----------------------------------------------------------------------------

#: ``cache_key`` with the function's own parameters, compiled on its first use (decoration
#: compiles only the hit path: a cold start pays for what it calls).
_KEY_OF = """\
def cache_key({params}):
{key}
    return {own}key
"""


def _indent(block: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else line for line in block.splitlines())


def _seconds(name: str, value: Any, what: str) -> float | None:
    """``value`` (None, or a number of seconds >= 0; ``inf``: no bound) as a float, or
    ``TypeError``/``ValueError`` naming the argument and what it accepts."""
    if value is None:
        return None
    accepted = f"None or a number of seconds >= 0 ({what})"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"tiered-cache: {name} must be {accepted}, not {value!r} ({type(value).__name__})"
        )
    if math.isnan(value) or value < 0:
        raise ValueError(f"tiered-cache: {name} must be {accepted}, not {value!r}")
    return float(value)


def _is_async(func: Any) -> bool:
    """True for an ``async def`` (also behind ``functools.partial`` or a method) and for a
    callable instance whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(func):
        return True
    if inspect.isfunction(func) or inspect.ismethod(func) or isinstance(func, type):
        return False
    call = inspect.getattr_static(type(func), "__call__", None)
    return inspect.iscoroutinefunction(call)


def _decorate(
    func: Callable[P, R],
    key: Any,
    ttl: float | None,
    stale_if_error: float | None,
    persist: bool,
    explicit: TieredCache | None,
) -> CachedFunction[P, R]:
    what = _describe(func)
    if inspect.isasyncgenfunction(func):
        raise TypeError(
            f"tiered-cache: {what} is an async generator function; @tiered.cache caches the "
            "value a function returns (or an async def awaits). Collect the items in an async "
            "def that returns a list, and decorate that."
        )
    ttl = _seconds("ttl", ttl, "float('inf'): no expiry")
    stale_if_error = _seconds("stale_if_error", stale_if_error, "float('inf'): no limit")
    is_async = _is_async(func)
    sig = _signature(func)
    params = _Params.of(func, sig)
    plan = _key_plan(func, key, sig, params)
    if params is None:  # the generic wrapper
        source = f"*{_OWN}args, **{_OWN}kwargs"
        forward, defaults = f"{_OWN}args, {_OWN}kwargs", {}
    else:
        source, forward, defaults = params.source, params.forward, params.defaults
    max_age = _INF if ttl is None else None

    def current() -> TieredCache:
        return explicit if explicit is not None else _config.default_cache()

    def bind() -> TieredCache:
        """Bind the wrapper's hit path to the cache it serves (first call, or first call
        after the default cache was replaced)."""
        cache = current()
        _hit.rebind(wrapper, **_hit.bound_to(cache))
        if explicit is None and _config._current is not cache:  # replaced meanwhile:
            _hit.rebind(wrapper, **_hit.unbound())  # the next call binds to the new one
        return cache

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The function's value (a plain function's: an awaitable it returns is refused)."""
        value = func(*args, **kwargs)
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()  # never awaited: no "never awaited" warning either
            raise TypeError(
                f"tiered-cache: {what} returned {type(value).__name__}, an awaitable, but it "
                "is not an async def, so @tiered.cache took it for a plain function and "
                "would cache the awaitable itself. Decorate the async def (or a callable "
                "whose __call__ is one) instead."
            )
        return value

    miss: Callable[..., Any]
    if is_async:
        from . import _aio  # asyncio loads with the first async function, not on import

        flights = _aio.Flights()
        coroutine_function = cast("Callable[..., Awaitable[Any]]", func)

        def load_async(
            cache: Any, k: str, args: tuple[Any, ...], kwargs: dict[str, Any], refresh: bool
        ) -> Coroutine[Any, Any, Any]:
            return _aio.load(
                cache,
                k,
                coroutine_function,
                args,
                kwargs,
                ttl,
                stale_if_error,
                persist,
                max_age,
                refresh=refresh,
            )

        async def miss_async(
            cache: Any, k: str, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            if cache is _UNBOUND:
                cache = bind()
            return await flights.join(
                cache,
                k,
                lambda: load_async(cache, k, args, kwargs, False),
                # the disk (and shared) tier read inline: cheaper than a thread's round trip
                (lambda: cache.get(k, MISSING, ttl)) if persist else None,
            )

        miss, on_miss = miss_async, f"return await {_OWN}miss(cache, {_OWN}key, {forward})"
    else:

        def miss_sync(cache: Any, k: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if cache is _UNBOUND:
                cache = bind()
            return cache.load(k, lambda: call(args, kwargs), ttl, stale_if_error, persist, max_age)

        miss, on_miss = miss_sync, f"return {_OWN}miss(cache, {_OWN}key, {forward})"

    cells: dict[str, Any] = {**plan.names, f"{_OWN}miss": miss}
    age: str | None = None
    if ttl is not None:  # the caller's own bound on an entry's age
        age = repr(ttl) if math.isfinite(ttl) else f"{_OWN}age"
        cells[f"{_OWN}age"] = ttl
    name = getattr(func, "__name__", None)
    if not (
        isinstance(name, str)
        and _source_name(name)
        and name not in _RESERVED
        and not name.startswith(_OWN)
    ):
        name = "wrapper"
    wrapper = _hit.make(
        name,
        source,
        key=f"{_OWN}key",
        prologue=plan.source,
        miss=on_miss,
        age=age,
        cells=cells,
        namespace=defaults,
        is_async=is_async,
    )
    functools.update_wrapper(wrapper, func)
    qualname = getattr(wrapper, "__qualname__", name)
    key_of: Callable[..., str] | None = None

    def cache_key(*args: Any, **kwargs: Any) -> str:
        """The key this call would use (the call's arguments bound as the function binds
        them)."""
        nonlocal key_of
        if key_of is None:
            scope: dict[str, Any] = {"__builtins__": __builtins__, **plan.names, **defaults}
            text = _KEY_OF.format(params=source, key=_indent(plan.source, 4), own=_OWN)
            exec(compile(text, f"<tiered_cache key {name}>", "exec"), scope)  # noqa: S102
            key_of = scope["cache_key"]
            key_of.__qualname__ = f"{qualname}.cache_key"
        return key_of(*args, **kwargs)

    def invalidate(*args: Any, **kwargs: Any) -> bool:
        """Drop this call's entry from every tier (of the current default cache, for
        ``tiered.cache``); True if one was there. Synchronous, also for an async function:
        the disk delete runs in the calling thread."""
        return current().delete(cache_key(*args, **kwargs))

    refresh: Callable[..., Any]
    if is_async:

        async def refresh(*args: Any, **kwargs: Any) -> Any:
            """Await the function anew, store its result and return it (the cache's work off
            the event loop, as on a miss; concurrent refreshes of one key coalesce into one
            call, across threads and processes)."""
            return await load_async(current(), cache_key(*args, **kwargs), args, kwargs, True)

    else:

        def refresh(*args: Any, **kwargs: Any) -> Any:
            """Call the function anew, store its result and return it (concurrent refreshes
            of one key coalesce into one call)."""
            return current().load(
                cache_key(*args, **kwargs),
                lambda: call(args, kwargs),
                ttl,
                stale_if_error,
                persist,
                max_age,
                refresh=True,
            )

    controls: tuple[tuple[Callable[..., Any], Any], ...] = (
        (cache_key, str),
        (invalidate, bool),
        (refresh, sig.return_annotation if sig is not None else inspect.Signature.empty),
    )
    for control, returns in controls:
        control.__qualname__ = f"{qualname}.{control.__name__}"
        if sig is not None:  # what help() and inspect show: the function's own parameters
            control.__signature__ = sig.replace(  # type: ignore[attr-defined]
                return_annotation=returns
            )
        setattr(wrapper, control.__name__, control)
    if explicit is not None:
        _hit.rebind(wrapper, **_hit.bound_to(explicit))
    else:
        _config.follow_default(wrapper)  # unbound whenever the default cache is replaced
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
    name (defaults applied; fields may read attributes and items, ``{self.name}``,
    ``{user[id]}``, and keep conversions and format specs), a callable called with the bound
    arguments (positional parameters positionally, keyword-only ones by name) returning a
    ``str``, or None for a stable key made from the module, qualified name and arguments.
    Templates are checked at decoration: every field names a parameter, and a malformed
    template or a field nested in a format spec is refused there. A default key is refused
    (``TypeError`` asking for ``key=``) for lambdas, functions defined inside functions,
    ``functools.partial`` objects, callable instances, bound methods and functions of an
    interactive ``__main__``: nothing stable tells two of them apart. A function of a script's
    ``__main__`` has the script's absolute path in its key.

    ``ttl`` is in seconds (None: the cache's default) and also bounds the age of an entry
    another call site stored under the same key. ``stale_if_error`` lets an expired value
    stand in for a failing call for that many seconds past its expiry. ``persist=False`` keeps
    results in memory only.

    ``@tiered.cache`` follows the default cache: a call after ``set_default_cache`` or inside
    ``use_cache`` uses the new default, whenever the function was decorated. ``cache.cache``
    is bound to that cache for good.

    Thread-safe and process-safe; the function runs at most once per key at a time.
    Async functions are refused with ``TypeError``.
    """
    if isinstance(func, str):
        if key is not None:
            raise TypeError("tiered-cache: give the key once, positionally or as key=")
        key, func = func, None
    if func is not None:
        if not callable(func):
            raise TypeError(f"tiered-cache: cannot decorate {func!r}: it is not callable")
        return _decorate(func, key, ttl, stale_if_error, persist, _cache)

    def decorator(f: Callable[P, R]) -> CachedFunction[P, R]:
        return _decorate(f, key, ttl, stale_if_error, persist, _cache)

    return decorator
