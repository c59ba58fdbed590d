"""Argument checks shared by ``TieredCache``, its methods and the environment settings.

One source for what each setting accepts, so the constructor, a per-call argument and a
``TIERED_CACHE_*`` variable refuse the same values with the same words. Each check returns the
normalized value or raises: ``TypeError`` for a value of the wrong type, ``ValueError`` for one
of the right type outside the accepted range (NaN included). Messages name the argument and
what is accepted.
"""

from __future__ import annotations

import math
import os
from typing import Any, Final

__all__ = ["count", "directory", "fraction", "seconds", "serializer"]

SERIALIZERS: Final = ("safe", "pickle")


def _number(name: str, value: Any, accepted: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"tiered-cache: {name} must be {accepted}, not {value!r} ({type(value).__name__})"
        )
    result = float(value)
    if math.isnan(result):
        raise ValueError(f"tiered-cache: {name} must be {accepted}, not NaN")
    return result


def seconds(name: str, value: Any) -> float:
    """A number of seconds >= 0; ``inf`` means no bound (no expiry, no limit)."""
    accepted = "a number of seconds >= 0 (float('inf'): no limit)"
    result = _number(name, value, accepted)
    if result < 0:
        raise ValueError(f"tiered-cache: {name} must be {accepted}, not {value!r}")
    return result


def fraction(name: str, value: Any) -> float:
    """A fraction in [0, 1), for example 0.1 for 10 %."""
    accepted = "a fraction in [0, 1), for example 0.1 for 10 %"
    result = _number(name, value, accepted)
    if not 0.0 <= result < 1.0:
        raise ValueError(f"tiered-cache: {name} must be {accepted}, not {value!r}")
    return result


def count(name: str, value: Any) -> int:
    """A whole number >= 1 (items, bytes)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"tiered-cache: {name} must be a whole number >= 1, not {value!r} "
            f"({type(value).__name__})"
        )
    if value < 1:
        raise ValueError(f"tiered-cache: {name} must be a whole number >= 1, not {value!r}")
    return value


def serializer(value: Any) -> str:
    if value not in SERIALIZERS:
        raise ValueError(f"tiered-cache: serializer must be 'safe' or 'pickle', not {value!r}")
    return str(value)


def directory(value: Any) -> str:
    """A directory path (``str`` or ``os.PathLike``), ``~`` expanded, never empty."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(
            f"tiered-cache: directory must be a str path such as '/tmp/tiered-cache', not "
            f"{value!r} ({type(value).__name__})"
        )
    if not value.strip():
        raise ValueError(
            "tiered-cache: directory is empty; give a path such as '/tmp/tiered-cache' (an "
            "empty path would put the cache in the working directory), or disk=False"
        )
    return os.path.expanduser(value)
