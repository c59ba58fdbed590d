"""Argument checks shared by the sources, in lambda-cache's order and wording.

Every check raises ``TypeError`` or ``ValueError`` (or their subclasses in
``tiered_cache.exceptions``) with a message naming the function and the argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, TypedDict

from ..exceptions import ArgumentTypeNotSupportedError, NoEntryNameError

if TYPE_CHECKING:
    import boto3

__all__ = [
    "Options",
    "boolean",
    "check_options",
    "entry_name_for",
    "max_age_of",
    "name",
    "seconds",
    "text",
]


class Options(TypedDict, total=False):
    """Keyword options every helper accepts (checked on a miss, never on the hit path)."""

    ttl: float  #: the same as max_age_in_seconds; give one, or both with the same value
    stale_if_error: float  #: seconds past expiry a stale value may stand in for a failure
    persist: bool  #: write to the disk tier (secrets default to False)
    shared: bool  #: write to the shared tier (default: as persist; secrets: only when True)
    client: Any  #: a boto3 client to use instead of the lazily made shared one
    session: boto3.Session  #: a boto3 Session to make the client from
    region_name: str  #: the region to make the client for (part of the cache key)
    #: handler decorators only: on these errors, refresh the value and call the handler again
    refresh_on: type[Exception] | tuple[type[Exception], ...]
    #: handler decorators only: a Powertools ``Metrics`` object to add the cache's metrics to
    metrics: Any


#: Options every getter takes (``refresh_on`` and ``metrics`` are the handler decorators' own).
_COMMON: Final = frozenset(Options.__annotations__) - {"refresh_on", "metrics"}
# -- validation -----------------------------------------------------------------------------------


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


def seconds(name: str, value: Any, owner: str) -> float:
    """``value`` as a number of seconds >= 0, else ``TypeError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise TypeError(
            f"tiered-cache: {owner}: {name} must be a number of seconds >= 0, not {value!r}"
        )
    return float(value)


def boolean(name: str, value: Any, owner: str) -> bool:
    """An option's check: True or False, else ``TypeError``."""
    if not isinstance(value, bool):
        raise TypeError(f"tiered-cache: {owner}: {name} must be True or False, not {value!r}")
    return value


def text(name: str, value: Any, owner: str) -> str | None:
    """An option's check: None (not given) or a non-empty ``str``, else ``TypeError``."""
    if value is not None and (not isinstance(value, str) or not value):
        raise TypeError(f"tiered-cache: {owner}: {name} must be a non-empty str")
    return value


def name(option: str, value: Any, owner: str) -> str:
    """An option's check: a non-empty ``str`` (a required name), else ``TypeError``."""
    if not isinstance(value, str) or not value:
        raise TypeError(f"tiered-cache: {owner}: {option} must be a non-empty str, not {value!r}")
    return value


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
        if value is not None:
            boolean(flag, value, owner)
    return (
        None if ttl is None else seconds("ttl", ttl, owner),
        None if sie is None else seconds("stale_if_error", sie, owner),
    )


def max_age_of(max_age_in_seconds: Any, ttl: float | None, owner: str) -> float | None:
    """The call's age bound: ``max_age_in_seconds`` or ``ttl`` (None: the cache's ttl)."""
    if max_age_in_seconds is None:
        return ttl
    age = seconds("max_age_in_seconds", max_age_in_seconds, owner)
    if ttl is not None and ttl != age:
        raise TypeError(
            f"tiered-cache: {owner}: ttl={ttl:g} and max_age_in_seconds={age:g} are the same "
            "setting with different values; give one of them"
        )
    return age
