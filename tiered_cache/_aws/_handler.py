"""The handler decorator: sets ``context.<entry name>``, bounds lock waits by the Lambda deadline,
retries once with fresh values (``refresh_on=``), and records what it declares (``prefetch``).

One attribute on ``context`` per stacked decorator; the handler's return value is kept; for the
length of the handler, lock waits are bounded by ``context.get_remaining_time_in_millis`` (read
only if a wait happens).

``refresh_on=(SomeError, ...)``: when the handler raises one of these, the decorator's value is
refreshed once (concurrent refreshes coalesce into one origin call, as with
``max_age_in_seconds=0``) and the handler is called once more with it; if it raises again, that
error propagates (its ``__context__`` is the first one). With stacked decorators, every decorator
whose ``refresh_on`` matches the error refreshes its own value, and the *outermost* decorator of
the stack calls the handler once more: never more than one retry per invocation, whatever the
depth of the stack. The handler must be safe to run twice for those errors (a failed connection
is). A refresh that itself fails raises its own error (a ``SourceError``; the handler's error
is in its ``__context__`` chain), and the handler is not called again. A decorator without
``refresh_on`` has no retry code on its hit path, unless a decorator below it has one.

Thread-safe: the state of a retry in progress is per thread.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final, TypeVar

from .. import _config, _flight, _hit, _metrics
from ._plan import Spec, load, plan_for

F = TypeVar("F", bound=Callable[..., Any])

# The generated handler: ``_hit.make`` writes the hit block between this prologue and epilogue.
_HANDLER_PROLOGUE: Final = """\
previous = current[0]
current[0] = context  # the deadline, read only if a wait happens
try:"""
_SET_ATTRIBUTE: Final = """\
    try:
        setattr(context, attr, value)
    except (AttributeError, TypeError) as exc:
        raise TypeError(no_context(func, attr, context)) from exc
"""
_HANDLER_EPILOGUE: Final = (
    _SET_ATTRIBUTE
    + """\
    return func(event, context)
finally:
    current[0] = previous"""
)
# With a retry (this decorator's refresh_on, or one below it): the except clause costs nothing
# until the handler raises.
_RETRY_EPILOGUE: Final = (
    _SET_ATTRIBUTE
    + """\
    try:
        return func(event, context)
    except Exception as error:
        result = failed(error, event, context, previous is context)
        if result is RAISE:
            raise
        return result
finally:
    current[0] = previous"""
)

# With metrics on (TIERED_CACHE_METRICS=emf, or metrics= given): after the handler, whether it
# returned or raised, the counts since the last line are written (or added to ``metrics``).
_REPORT: Final = "\n    report(metrics)"

#: ``failed`` returns this when the error is to propagate unchanged.
RAISE: Final = object()


class _Declared:
    """What one decorated handler declares: its spec factory, and how it retries."""

    __slots__ = ("catch", "delegated", "file", "make_spec", "owner", "retries")

    def __init__(
        self, make_spec: Callable[[], Spec], file: bool, owner: str, retries: bool
    ) -> None:
        self.make_spec = make_spec
        self.file = file
        self.owner = owner
        self.retries = retries  # this decorator or one below it has refresh_on
        self.catch: tuple[type[BaseException], ...] = ()  # refresh_on, once checked
        self.delegated = False  # a decorator above it calls the handler again (nested calls)


#: Every decorated handler, in decoration order (held weakly): what ``tiered.prefetch`` loads.
declared: weakref.WeakKeyDictionary[Callable[..., Any], _Declared] = weakref.WeakKeyDictionary()


class _Retry(threading.local):
    """This thread's retry in progress (no handler is retried twice in one invocation), and
    the context of the invocation whose values a decorator inside the stack refreshed."""

    active = False
    refreshed: Any = None


_retry: Final = _Retry()


def handler_decorator(
    make_spec: Callable[[], Spec],
    file: bool = False,
    owner: str = "cache",
    refresh_on: Any = None,
    metrics: Any = None,
) -> Callable[[F], F]:
    """A decorator for ``handler(event, context)`` setting ``context.<entry name>``.

    ``make_spec`` validates the decorator's arguments; it runs when the handler is first
    called (and again on every call while it raises), never at decoration, so importing a
    handler module cannot fail. ``refresh_on`` (None: no retry) and ``metrics`` (a Powertools
    ``Metrics``, or None) are checked then too, and so is the handler's signature. With
    ``metrics`` or ``TIERED_CACHE_METRICS=emf`` (read when the handler is decorated), each
    invocation ends with ``_metrics.after_invocation``; otherwise no metrics code is generated.
    ``file``: the value is a path that must still exist (S3).
    ``owner`` names the decorator in messages (``ssm.cache``). The wrapper's hit path is
    generated from the one rule; its miss binds it (key, age, attribute and cache, in its
    closure cells) to the current default cache.
    """

    def decorator(func: F) -> F:
        inner = _declared_below(func)
        retries = refresh_on is not None or any(below.retries for _, below in inner)
        report = metrics is not None or _metrics.enabled()
        checked: list[bool] = []

        def miss(context: Any) -> Any:
            if not checked:
                _check_signature(func, owner)
                catch = _check_refresh_on(refresh_on, owner)
                _metrics.check_metrics(metrics, owner)
                checked.append(True)
                own.catch = catch
            plan = plan_for(make_spec())
            if context is None:  # refused before the origin is asked
                raise TypeError(_no_context(func, plan.spec.attr, context))
            _hit.rebind(wrapper, key=plan.key, age=plan.age, attr=plan.spec.attr)
            _hit.rebind(wrapper, **_hit.bound_to(plan.cache))
            if plan.cache is not _config._current:  # replaced meanwhile (see remember_hit)
                _hit.rebind(wrapper, **_hit.unbound())
            return load(plan)

        def failed(error: Exception, event: Any, context: Any, nested: bool) -> Any:
            """The handler raised ``error``: refresh and retry (once), or RAISE."""
            state = _retry
            if state.active:  # the retry itself failed: it propagates
                return RAISE
            if own.catch and isinstance(error, own.catch):
                plan = plan_for(make_spec())
                try:
                    value = load(plan, refresh=True)
                except BaseException:  # the refresh failed: its error, and no retry
                    state.refreshed = None
                    raise
                setattr(context, plan.spec.attr, value)
                state.refreshed = context
            if nested and own.delegated:
                return RAISE  # the outermost decorator retries, once for the whole stack
            refreshed, state.refreshed = state.refreshed, None
            if refreshed is not context:  # nothing refreshed in this invocation
                return RAISE
            state.active = True
            try:
                return func(event, context)
            finally:
                state.active = False

        wrapper = _hit.make(
            "handler",
            "event, context",
            prologue=_HANDLER_PROLOGUE,
            depth=1,
            age="age",
            file=file,
            hit="value = entry.value",
            miss="else:\n    value = miss(context)",
            epilogue=(_RETRY_EPILOGUE if retries else _HANDLER_EPILOGUE)
            + (_REPORT if report else ""),
            cells={
                "key": "",
                "age": 0.0,
                "attr": "",
                "miss": miss,
                "func": func,
                "failed": failed,
                "metrics": metrics,
            },
            namespace={
                "report": _metrics.after_invocation,
                "current": _flight.handler_context,
                "no_context": _no_context,
                "RAISE": RAISE,
            },
        )
        _config.follow_default(wrapper)
        functools.wraps(func)(wrapper)
        if retries:
            for _, below in inner:  # they leave the retry to this one when called inside it
                below.delegated = True
        own = declared[wrapper] = _Declared(make_spec, file, owner, retries)
        return wrapper  # type: ignore[return-value]

    return decorator


def _declared_below(func: Callable[..., Any]) -> list[tuple[Callable[..., Any], _Declared]]:
    """The handler decorators already applied to ``func`` (followed through ``__wrapped__``)."""
    found: list[tuple[Callable[..., Any], _Declared]] = []
    seen: set[int] = set()
    while func is not None and id(func) not in seen:
        seen.add(id(func))
        try:
            below = declared.get(func)
        except TypeError:  # not weakly referenceable: not ours
            below = None
        if below is not None:
            found.append((func, below))
        func = getattr(func, "__wrapped__", None)  # type: ignore[assignment]
    return found


def _check_refresh_on(refresh_on: Any, owner: str) -> tuple[type[BaseException], ...]:
    """``refresh_on`` as a tuple of exception classes (None: empty), else ``TypeError``."""
    if refresh_on is None:
        return ()
    found = refresh_on if isinstance(refresh_on, tuple) else (refresh_on,)
    if not found or not all(
        isinstance(kind, type) and issubclass(kind, Exception) for kind in found
    ):
        raise TypeError(
            f"tiered-cache: {owner}: refresh_on must be an exception class or a non-empty tuple "
            f"of them (subclasses of Exception), such as refresh_on=(AuthError,), not "
            f"{refresh_on!r}"
        )
    return found


def _check_signature(func: Callable[..., Any], owner: str) -> None:
    """``TypeError`` naming the decorator when ``func`` cannot be called as (event, context)."""
    code = getattr(func, "__code__", None)
    if code is not None and not hasattr(func, "__self__"):
        positional = code.co_argcount
        varargs = bool(code.co_flags & 0x04)  # CO_VARARGS
        defaults = len(getattr(func, "__defaults__", None) or ())
        kwonly = code.co_kwonlyargcount - len(getattr(func, "__kwdefaults__", None) or {})
        if (varargs or positional >= 2) and positional - defaults <= 2 and kwonly == 0:
            return
    else:
        import inspect

        try:
            inspect.signature(func).bind(None, None)
        except TypeError:
            pass
        except ValueError:  # no signature to read (a builtin): let the call decide
            return
        else:
            return
    name = getattr(func, "__qualname__", None) or repr(func)
    raise TypeError(
        f"tiered-cache: @{owner} decorates a Lambda handler, which is called as "
        f"handler(event, context), but {name}() cannot take those two arguments; "
        f"define it as def {getattr(func, '__name__', 'handler')}(event, context): ... "
        "(context is where the decorator sets the value)"
    )


def _no_context(func: Callable[..., Any], attr: str, context: Any) -> str:
    return (
        f"tiered-cache: {getattr(func, '__qualname__', func)!s} was called with context="
        f"{type(context).__name__}, which cannot hold the attribute {attr!r}; call the handler "
        "as handler(event, context) with the Lambda context (or any object that takes "
        "attributes, such as types.SimpleNamespace() in tests)"
    )
