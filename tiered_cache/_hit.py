"""The one memory-hit rule, and every entry point's hit path generated from it.

An entry is *fresh* for a caller when::

    not_before <= stored_at <= now < expires_at      (stored expiry, jittered TTL; nothing
                                                       stored before a SnapStart restore;
                                                       nothing stamped in the future)
    and now - stored_at < age                         (the caller's own bound, when it has one)
    and the entry's file still exists                 (file-backed entries only)

A memory hit on a fresh entry also adds one to the entry's ``hits``: that single attribute write
is both the hit counter of ``stats()`` (the memory tier sums it) and the reference mark of the
memory tier's eviction (CLOCK, a close approximation of LRU: an entry hit since the last pass is
given a second chance), so a hit costs no lock, no ``move_to_end`` and no shared counter.

That is the whole rule, and it is written once, here, as :data:`RULE` and :data:`_TEMPLATE`.
Every entry point's hit path (``TieredCache.get`` and ``get_or_load``, the ``@tiered.cache``
wrappers, the handler decorators and each service's ``get_entry``) is *generated* from that
text by :func:`make`, the way ``dataclasses`` and ``namedtuple`` build their methods: a
generated path costs nothing at run time and cannot drift from its template. :func:`fresh` is
the same rule as a plain function, for the miss paths.

Names a generated function reads (the cache, its memory dict's ``get``, the clock) are closure
cells, read as fast as locals. :func:`rebind` swaps them in place, so a function bound to the
default cache follows ``set_default_cache`` without a per-call check.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["RULE", "fresh", "make", "rebind", "unbound"]

#: The freshness test as source text. ``{nb}``: where the cache's not-before time is read;
#: ``{now}``: the expression giving the current time (it binds ``now`` for the age test).
RULE: Final = (
    "entry is not None and {nb} <= (stored_at := entry.stored_at) <= {now} < entry.expires_at"
)
#: Appended to :data:`RULE` for a caller with its own age bound ``{age}``.
AGE: Final = " and now - stored_at < {age}"
#: The same, for a bound that may be None (no bound): one ``is None`` test on the common path.
OPTIONAL_AGE: Final = " and ({age} is None or now - stored_at < {age})"
#: Appended to :data:`RULE` for file-backed entries: the file must still be there.
FILE: Final = " and exists(entry.value)"

#: The hit block every generated path is made of: look the entry up, test the rule, count the
#: hit, then the caller's ``{hit}`` code (a fresh ``entry`` is bound) and ``{miss}`` code (which
#: follows at the block's own indentation, so it may start with ``else:``).
_CORE: Final = """\
entry = mem_get({key})
if {rule}:
    entry.hits += 1
{hit}
{miss}"""

_TEMPLATE: Final = """\
def __make__({cells}):
    {kind}def {name}({params}):
{body}
    return {name}
"""

#: The cells every generated hit path reads; :func:`rebind` may replace any of them.
CELLS: Final = ("cache", "mem_get", "clock")


def _indent(block: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else line for line in block.splitlines())


def rule(
    age: str | None = None,
    file: bool = False,
    now: str = "(now := clock())",
    optional_age: bool = False,
) -> str:
    """The freshness test as a Python expression over ``entry`` (see the module docstring)."""
    text = RULE.format(nb="cache._not_before", now=now)
    if age is not None:
        text += (OPTIONAL_AGE if optional_age else AGE).format(age=age)
    if file:
        text += FILE
    return text


def make(
    name: str,
    params: str,
    *,
    key: str = "key",
    hit: str = "return entry.value",
    miss: str,
    prologue: str = "",
    epilogue: str = "",
    depth: int = 0,
    age: str | None = None,
    optional_age: bool = False,
    file: bool = False,
    cells: Mapping[str, Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
    qualname: str | None = None,
    is_async: bool = False,
) -> Callable[..., Any]:
    """A function ``name(params)`` whose hit path is the one rule.

    ``prologue`` runs first (it may compute ``key`` or return early); ``key`` is the expression
    naming the entry; ``hit`` runs on a fresh entry (``entry`` is bound; by default it returns
    the value); ``miss`` follows the hit block at its own indentation (so it may start with
    ``else:``). The hit block is indented ``depth`` levels below the prologue (a prologue that
    ends in ``try:`` needs 1) and ``epilogue`` follows it at the prologue's level. ``age``: the
    expression of the caller's age bound, or None for the stored expiry alone (with
    ``optional_age``, the expression may be None at run time: no bound). ``file``: the
    value is a path that must still exist. ``cells`` gives the initial ``cache``, ``mem_get``
    and ``clock`` (default: :func:`unbound`, so every call misses until :func:`rebind`) and any
    other names to hold in cells; ``namespace`` the globals the code sees. ``is_async``
    makes it an ``async def`` (its ``miss`` and ``epilogue`` may then ``await``; a hit still
    returns without suspending).
    """
    values = dict(unbound())
    values.update(cells or {})
    test = rule(age, file, optional_age=optional_age)
    core = _CORE.format(key=key, rule=test, hit=_indent(hit, 4), miss=miss)
    body = "\n".join(
        part
        for part in (_indent(prologue, 8), _indent(core, 8 + 4 * depth), _indent(epilogue, 8))
        if part
    )
    kind = "async " if is_async else ""
    source = _TEMPLATE.format(
        cells=", ".join(values), kind=kind, name=name, params=params, body=body
    )
    scope: dict[str, Any] = {"exists": os.path.exists, "__builtins__": __builtins__}
    scope.update(namespace or {})
    exec(_compiled(source, name), scope)  # noqa: S102
    function: Callable[..., Any] = scope["__make__"](**values)
    if qualname is not None:
        function.__qualname__ = qualname
    return function


@functools.lru_cache(maxsize=256)
def _compiled(source: str, name: str) -> Any:
    """The code of a generated path, compiled once per source text: every cache's ``get`` is
    the same text (only its cells differ), so a new cache costs an ``exec``, not a compile."""
    return compile(source, f"<tiered_cache hit path {name}>", "exec")


def rebind(function: Callable[..., Any], **values: Any) -> None:
    """Replace the named cells of a function made by :func:`make` (no call sees half of it:
    a call in flight on another thread may read old and new cells, and every mix is a valid
    binding that at worst misses)."""
    cells = dict(zip(function.__code__.co_freevars, function.__closure__ or (), strict=True))
    for cell_name, value in values.items():
        cells[cell_name].cell_contents = value


class _Unbound:
    """Stands in for a cache until a hit path is bound: every lookup misses."""

    _not_before = float("inf")


_UNBOUND: Final = _Unbound()
_EMPTY: Final[dict[str, Any]] = {}


def unbound() -> dict[str, Any]:
    """Cell values that make every call of a generated hit path miss."""
    return {
        "cache": _UNBOUND,
        "mem_get": _EMPTY.get,
        "clock": _zero,
    }


def bound_to(cache: Any) -> dict[str, Any]:
    """Cell values binding a generated hit path to ``cache`` (a ``TieredCache``)."""
    return {
        "cache": cache,
        "mem_get": cache._mem.get,
        "clock": cache.clock,
    }


def _zero() -> float:
    return 0.0


def _rule_function() -> Callable[[Any, float, float, float], bool]:
    """The rule's own text, made into the plain function :func:`fresh`."""
    scope: dict[str, Any] = {}
    source = (
        "def fresh(entry, now, age, not_before):\n"
        '    """Is ``entry`` fresh at ``now`` for a caller\'s ``age`` (the one rule)?"""\n'
        f"    return {RULE.format(nb='not_before', now='now')}{AGE.format(age='age')}\n"
    )
    exec(compile(source, "<tiered_cache rule>", "exec"), scope)  # noqa: S102 - our own text
    function: Callable[[Any, float, float, float], bool] = scope["fresh"]
    return function


fresh: Final = _rule_function()
