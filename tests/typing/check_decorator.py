"""Checked by ``mypy --strict`` (pyproject: files = ["tiered_cache", "tests/typing"]), never run.

Proves that ``@tiered.cache`` keeps the decorated function's signature (ParamSpec): the
positive lines must type-check, and each negative line must be an error that its
``type: ignore[...]`` silences. With ``warn_unused_ignores`` (on under --strict) a decorator
that lost the signature (for example one returning ``Callable[..., Any]``) makes those
ignores unused, and mypy fails.

On an ``async def`` the decorator returns ``CachedFunction[P, Coroutine[Any, Any, R]]``: a call
and ``refresh`` are awaitables of ``R``; ``cache_key`` and ``invalidate`` stay synchronous.
"""

from __future__ import annotations

import functools
from collections.abc import Coroutine
from typing import Any

import tiered_cache as tiered
from tiered_cache import CachedFunction, TieredCache


@tiered.cache(key="report:{day}", ttl=3600)
def build_report(day: str, copies: int = 1) -> bytes:
    return day.encode() * copies


@tiered.cache
def bare(x: int) -> list[int]:
    return [x]


cache = TieredCache(disk=False)


@cache.cache(key=lambda user_id: f"user:{user_id}")
def profile(user_id: int) -> dict[str, str]:
    return {"id": str(user_id)}


def fetch(region: str, user: int) -> str:
    return f"{region}/{user}"


regional = cache.cache(key="u:{user}")(functools.partial(fetch, "eu"))


class Service:
    @tiered.cache(key="svc:{self.name}:{item}")
    def lookup(self, item: str) -> str:
        return item

    name = "svc"


@tiered.cache(key="user:{user_id}", ttl=60)
async def fetch_user(user_id: int, *, fields: str = "all") -> dict[str, int]:
    return {"id": user_id}


class AsyncService:
    name = "svc"

    @cache.cache(key="asvc:{self.name}:{item}")
    async def lookup(self, item: str) -> bytes:
        return item.encode()


async def use_async() -> None:
    found_user: dict[str, int] = await fetch_user(1)
    found_user = await fetch_user(2, fields="id")
    found_user = await fetch_user.refresh(3)
    user_key: str = fetch_user.cache_key(1)
    user_dropped: bool = fetch_user.invalidate(1)
    pending: Coroutine[Any, Any, dict[str, int]] = fetch_user(4)
    found_user = await pending
    original_user: dict[str, int] = await fetch_user.__wrapped__(5)
    as_async_protocol: CachedFunction[[int], Coroutine[Any, Any, dict[str, int]]] = fetch_user
    method_value: bytes = await AsyncService().lookup("x")
    del user_key, user_dropped, original_user, as_async_protocol, method_value, found_user

    # negative: each must be an error
    not_awaited: dict[str, int] = fetch_user(1)  # type: ignore[assignment]
    wrong_value: str = await fetch_user(1)  # type: ignore[assignment]
    await fetch_user("1")  # type: ignore[arg-type]
    await fetch_user(1, field="id")  # type: ignore[call-arg]
    await fetch_user.refresh()  # type: ignore[call-arg]
    await fetch_user.cache_key(1)  # type: ignore[misc]
    wrong_method: str = await AsyncService().lookup("x")  # type: ignore[assignment]
    del not_awaited, wrong_value, wrong_method


# -- positive: the original signature and return type come through ------------------------------

report: bytes = build_report("2026-11-28")
report = build_report("2026-11-28", copies=2)
report = build_report.refresh(day="2026-11-28")
key: str = build_report.cache_key("2026-11-28", 3)
dropped: bool = build_report.invalidate("2026-11-28")
original_report: bytes = build_report.__wrapped__("2026-11-28")
numbers: list[int] = bare(3)
as_protocol: CachedFunction[[int], list[int]] = bare
user: dict[str, str] = profile(7)
found: str = Service().lookup("x")
fetched: str = regional(user=5)  # a partial keeps its return type

# -- negative: each must be an error (an unused ignore fails --strict) -----------------------------

build_report(42)  # type: ignore[arg-type]
build_report("d", copies="2")  # type: ignore[arg-type]
build_report("d", pages=3)  # type: ignore[call-arg]
build_report.cache_key()  # type: ignore[call-arg]
build_report.invalidate(day=1)  # type: ignore[arg-type]
wrong_return: str = build_report("d")  # type: ignore[assignment]
bare("three")  # type: ignore[arg-type]
profile()  # type: ignore[call-arg]
wrong_method: int = Service().lookup("x")  # type: ignore[assignment]
wrong_fetched: int = regional(user=5)  # type: ignore[assignment]
