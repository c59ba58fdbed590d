"""CloudWatch metrics: one Embedded Metric Format (EMF) line per invocation, or a Powertools
``Metrics`` object filled with the same numbers.

The handler decorators call :func:`after_invocation` after the handler returns. It is off unless
``TIERED_CACHE_METRICS=emf`` is set or a Powertools ``Metrics`` object is passed; off, a call is
one global read. On, it sums what every live ``TieredCache`` of this process counted since the
previous line (the default cache and any cache the function made itself): memory, disk and
shared hits, loads, load errors, stale values served, and origin time in ms. When none of them
moved, nothing is written, so an idle warm function (or the outer decorator of a stack, after
the inner one wrote the line) costs no log line.

The line is written by hand, in the documented format: ``aws-embedded-metrics`` imports aiohttp,
about 200 ms of a cold start. Namespace ``TIERED_CACHE_METRICS_NAMESPACE`` (default
``TieredCache``); dimension ``function_name`` from ``AWS_LAMBDA_FUNCTION_NAME`` (none when it is
unset). The environment is read once, on the first call (or :func:`enabled`); a value that
cannot be used is logged once and ignored.

Thread-safe: one lock makes taking the counts and writing the line one step, so two threads
never report the same counts. Fork-safe: a forked child gets a fresh lock and counts from the
fork on (what the parent counted before is the parent's to report). After a SnapStart restore
the counts start again from the restore: what INIT counted before the snapshot is reported by
no environment (otherwise every environment restored from the snapshot would report it). An
ordinary cold start's INIT work (``tiered.prefetch``) is in the first invocation's line.
Never raises: a failed write is logged once, and the invocation goes on.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Final

from . import _fork, _restore
from ._log import log

if TYPE_CHECKING:
    from ._core import TieredCache

__all__ = ["METRICS", "after_invocation", "check_metrics", "enabled"]

#: (metric name, CloudWatch unit), in the order of the line; each name is also a key of
#: ``TieredCache.stats()`` and an attribute of the cache.
METRICS: Final = (
    ("memory_hits", "Count"),
    ("disk_hits", "Count"),
    ("shared_hits", "Count"),
    ("loads", "Count"),
    ("load_errors", "Count"),
    ("stale_served", "Count"),
    ("origin_ms", "Milliseconds"),
)
_COUNT: Final = len(METRICS)
_ORIGIN: Final = _COUNT - 1  # the one float

DEFAULT_NAMESPACE: Final = "TieredCache"
_OFF_VALUES: Final = frozenset({"off", "none", "0", "false", "no"})
# CloudWatch namespaces: ASCII letters and digits and these; at most 255; not "AWS/...".
_NAMESPACE_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_/#: "
)

#: None until the environment is read; then whether ``TIERED_CACHE_METRICS=emf``.
_emf: bool | None = None
_prefix = ""  # the line up to the first metric value, made once from the environment
_lock = threading.Lock()
#: Per live cache: the counts already reported (never lowered: see ``_take``).
_reported: weakref.WeakKeyDictionary[TieredCache, list[float]] = weakref.WeakKeyDictionary()
_write_failed = False


def after_invocation(metrics: object | None = None) -> None:
    """Report what the caches counted since the previous report; called after a handler returns.

    With ``metrics`` (a Powertools ``Metrics``), the counts are added to it with
    ``add_metric(name=, unit=, value=)`` and nothing is printed; otherwise, when
    ``TIERED_CACHE_METRICS=emf``, one EMF line goes to stdout. Nothing happens when nothing
    changed. Thread-safe and fork-safe; never raises (a failure is logged once).
    """
    if metrics is None and not (_emf if _emf is not None else _read_environment()):
        return
    with _lock:
        deltas = _take()
        if deltas is None:
            return
        if metrics is not None:
            _add_to(metrics, deltas)
        else:
            _write(deltas)


def enabled() -> bool:
    """Whether ``TIERED_CACHE_METRICS=emf`` is set (read once): a decorator given no
    ``metrics=`` may leave the call to :func:`after_invocation` out when this is False."""
    return _emf if _emf is not None else _read_environment()


def check_metrics(metrics: object, owner: str) -> None:
    """``TypeError`` naming ``owner`` (``ssm.cache``) unless ``metrics`` is None or has a
    Powertools-style ``add_metric``; for the decorators to call before the first invocation."""
    if metrics is not None and not callable(getattr(metrics, "add_metric", None)):
        raise TypeError(
            f"tiered-cache: {owner}: metrics= takes a Powertools Metrics object (anything with "
            f"add_metric(name=..., unit=..., value=...)), or None, not {type(metrics).__name__}"
        )


# -- counting ---------------------------------------------------------------------------------


def _counts(cache: TieredCache) -> tuple[float, ...]:
    return (
        cache.memory_hits,
        cache.disk_hits,
        cache.shared_hits,
        cache.loads,
        cache.load_errors,
        cache.stale_served,
        cache.origin_ms,
    )


def _take() -> list[float] | None:
    """The counts since the last report, summed over the live caches, or None if none moved.

    A cache seen for the first time reports everything it counted since it was made. What was
    reported is kept per cache and never lowered, so a count read low for a moment (a memory
    entry being replaced between its two halves) is never reported twice. Called under _lock.
    """
    totals = [0.0] * _COUNT
    moved = False
    for cache in _live_caches():
        now = _counts(cache)
        done = _reported.get(cache)
        if done is None:
            done = _reported[cache] = [0.0] * _COUNT
        for i in range(_COUNT):
            if now[i] > done[i]:
                totals[i] += now[i] - done[i]
                done[i] = now[i]
                moved = True
    return totals if moved else None


def _live_caches() -> list[TieredCache]:
    """Every live TieredCache of this process (``_restore`` tracks them all, weakly)."""
    caches = _restore._caches
    data: Any = getattr(caches, "data", None)  # the WeakSet's own set of references
    try:  # read directly: a fifth of the cost of iterating the WeakSet (~2 µs)
        refs: tuple[weakref.ref[TieredCache], ...] = tuple(data)
    except (TypeError, RuntimeError):  # no such set, or it changed size while copied
        return list(caches)
    return [cache for cache in (ref() for ref in refs) if cache is not None]


def _rebase() -> None:
    """Count from now on: what the caches counted until now counts as reported."""
    for cache in _live_caches():
        _reported[cache] = list(_counts(cache))


def _after_fork() -> None:
    """In a forked child (only the forking thread runs): a fresh lock, since another thread of
    the parent may have held it at the fork, and counts from the fork on."""
    global _lock
    _lock = threading.Lock()
    _rebase()


def _after_restore() -> None:
    """After a SnapStart restore: counts from the restore on."""
    with _lock:
        _rebase()


# -- writing ----------------------------------------------------------------------------------


def _value(i: int, value: float) -> float | int:
    return round(value, 3) if i == _ORIGIN else int(value)


def _add_to(metrics: Any, deltas: list[float]) -> None:
    global _write_failed
    try:
        for i, (name, unit) in enumerate(METRICS):
            metrics.add_metric(name=name, unit=unit, value=_value(i, deltas[i]))
    except Exception:
        (log.debug if _write_failed else log.warning)(
            "tiered-cache: could not add the cache metrics to %r", metrics, exc_info=True
        )
        _write_failed = True


def _write(deltas: list[float]) -> None:
    """One EMF line: the prefix made once, the timestamp, the values."""
    global _write_failed
    values = ",".join(f'"{name}":{_value(i, deltas[i])}' for i, (name, _) in enumerate(METRICS))
    line = f'{{"_aws":{{"Timestamp":{int(time.time() * 1000)},{_prefix},{values}}}\n'
    try:
        sys.stdout.write(line)  # one write: lines of concurrent threads never interleave
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):  # closed, or no stdout at all
        (log.debug if _write_failed else log.warning)(
            "tiered-cache: could not write the EMF metrics line to stdout", exc_info=True
        )
        _write_failed = True


# -- the environment --------------------------------------------------------------------------


def _read_environment() -> bool:
    """Read ``TIERED_CACHE_METRICS*`` and ``AWS_LAMBDA_FUNCTION_NAME`` once; bad values are
    logged once, and ignored (metrics off; the default namespace)."""
    global _emf, _prefix
    with _lock:
        if _emf is not None:
            return _emf
        import json
        import os

        raw = os.environ.get("TIERED_CACHE_METRICS", "").strip()
        on = raw.lower() == "emf"
        if raw and not on and raw.lower() not in _OFF_VALUES:
            log.error(
                "tiered-cache: ignoring TIERED_CACHE_METRICS=%r (expected 'emf' for one "
                "CloudWatch EMF line per invocation, or 'off'); metrics stay off",
                raw,
            )
        namespace = _namespace(os.environ.get("TIERED_CACHE_METRICS_NAMESPACE", "").strip())
        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "").strip()
        directive = {
            "Namespace": namespace,
            "Dimensions": [["function_name"] if function else []],
            "Metrics": [{"Name": name, "Unit": unit} for name, unit in METRICS],
        }
        prefix = '"CloudWatchMetrics":' + json.dumps([directive], separators=(",", ":")) + "}"
        if function:
            prefix += ',"function_name":' + json.dumps(function)
        _prefix = prefix
        _emf = on
        return on


def _namespace(raw: str) -> str:
    """``raw`` when CloudWatch accepts it as a namespace, else the default (logged)."""
    if not raw:
        return DEFAULT_NAMESPACE
    if (
        len(raw) <= 255
        and set(raw) <= _NAMESPACE_CHARS
        and not raw.startswith("AWS/")
        and raw.strip()
    ):
        return raw
    log.error(
        "tiered-cache: ignoring TIERED_CACHE_METRICS_NAMESPACE=%r (expected at most 255 of "
        "A-Z a-z 0-9 . - _ / # : and space, not starting with 'AWS/'); using %r",
        raw,
        DEFAULT_NAMESPACE,
    )
    return DEFAULT_NAMESPACE


def _reset() -> None:
    """Read the environment again on the next call, and count from now on (tests)."""
    global _emf, _prefix, _write_failed
    with _lock:
        _emf, _prefix, _write_failed = None, "", False
        _rebase()


_fork.after_fork_in_child(_after_fork)
_restore.on_restore(_after_restore)
