"""Checked by ``mypy --strict`` (pyproject: files = ["tiered_cache", "tests/typing"]), never run.

Proves that ``@tiered.cache`` keeps the decorated function's signature (ParamSpec): the
positive lines must type-check, and each negative line must be an error that its
``type: ignore[...]`` silences. With ``warn_unused_ignores`` (on under --strict) a decorator
that lost the signature (for example one returning ``Callable[..., Any]``) makes those
ignores unused, and mypy fails.
"""

from __future__ import annotations

import functools

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
