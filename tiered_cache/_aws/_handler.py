"""The handler decorator: sets ``context.<entry name>``, bounds lock waits by the Lambda deadline.

One attribute on ``context`` per stacked decorator; the handler's return value is kept; for the
length of the handler, lock waits are bounded by ``context.get_remaining_time_in_millis`` (read
only if a wait happens).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final, TypeVar

from .. import _config, _flight, _hit
from ._plan import Spec, load, plan_for

F = TypeVar("F", bound=Callable[..., Any])

# The generated handler: ``_hit.make`` writes the hit block between this prologue and epilogue.
_HANDLER_PROLOGUE: Final = """\
previous = current[0]
current[0] = context  # the deadline, read only if a wait happens
try:"""
_HANDLER_EPILOGUE: Final = """\
    try:
        setattr(context, attr, value)
    except (AttributeError, TypeError) as exc:
        raise TypeError(no_context(func, attr, context)) from exc
    return func(event, context)
finally:
    current[0] = previous"""


def handler_decorator(make_spec: Callable[[], Spec], file: bool = False) -> Callable[[F], F]:
    """A decorator for ``handler(event, context)`` setting ``context.<entry name>``.

    ``make_spec`` validates the decorator's arguments; it runs when the handler is first
    called (and again on every call while it raises), never at decoration, so importing a
    handler module cannot fail. ``file``: the value is a path that must still exist (S3).
    The wrapper's hit path is generated from the one rule; its miss binds it (key, age,
    attribute and cache, in its closure cells) to the current default cache.
    """

    def decorator(func: F) -> F:
        def miss(context: Any) -> Any:
            plan = plan_for(make_spec())
            if context is None:  # refused before the origin is asked
                raise TypeError(_no_context(func, plan.spec.attr, context))
            _hit.rebind(wrapper, key=plan.key, age=plan.age, attr=plan.spec.attr)
            _hit.rebind(wrapper, **_hit.bound_to(plan.cache))
            if plan.cache is not _config._current:  # replaced meanwhile (see remember_hit)
                _hit.rebind(wrapper, **_hit.unbound())
            return load(plan)

        wrapper = _hit.make(
            "handler",
            "event, context",
            prologue=_HANDLER_PROLOGUE,
            depth=1,
            age="age",
            file=file,
            hit="value = entry.value",
            miss="else:\n    value = miss(context)",
            epilogue=_HANDLER_EPILOGUE,
            cells={"key": "", "age": 0.0, "attr": "", "miss": miss, "func": func},
            namespace={"current": _flight.handler_context, "no_context": _no_context},
        )
        _config.follow_default(wrapper)
        return functools.wraps(func)(wrapper)  # type: ignore[return-value]

    return decorator


def _no_context(func: Callable[..., Any], attr: str, context: Any) -> str:
    return (
        f"tiered-cache: {getattr(func, '__qualname__', func)!s} was called with context="
        f"{type(context).__name__}, which cannot hold the attribute {attr!r}; call the handler "
        "as handler(event, context) with the Lambda context (or any object that takes "
        "attributes, such as types.SimpleNamespace() in tests)"
    )
