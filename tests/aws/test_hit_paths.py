"""One rule, every hit path: each entry point's memory hit is generated from ``_hit``'s rule,
and this one parametrized test holds them all to it.

Each entry point is driven through its public API by an adapter: ``call(name, age)`` asks for
``name`` with the caller's age bound ``age`` (the first call of a name loads it). A memory hit
is what the cache's ``stats()["memory_hits"]`` counts; anything else (a load, a disk read, a
default) is not one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from _awshelp import Context

import tiered_cache as tiered
from tiered_cache import s3, secrets_manager, ssm

TTL = 600.0


class EntryPoint:
    """How one entry point asks for a name with an age bound; ``file``: its values are paths."""

    file = False

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self.path = ""  # file-backed entry points: the path the last call gave

    def call(self, name: str, age: float) -> Any:
        raise NotImplementedError

    def expected(self, name: str) -> Any:
        return f"value-of-{name}"


class Get(EntryPoint):
    def call(self, name: str, age: float) -> Any:
        found = self.cache.get(name, ttl=age)
        if found is None:  # get never loads: store the value for the next call, as a loader
            found = self.expected(name)
            self.cache.set(name, found, ttl=age)
        return found


class GetOrLoad(EntryPoint):
    def call(self, name: str, age: float) -> Any:
        return self.cache.get_or_load(name, lambda: self.expected(name), ttl=age)


class Decorated(EntryPoint):
    """``@cache.cache`` on an explicit cache, and ``@tiered.cache`` on the default one."""

    def __init__(self, cache: Any, explicit: bool) -> None:
        super().__init__(cache)
        self.explicit = explicit
        self.functions: dict[float, Any] = {}

    def call(self, name: str, age: float) -> Any:
        function = self.functions.get(age)
        if function is None:
            decorate = self.cache.cache if self.explicit else tiered.cache
            function = decorate(key="{name}", ttl=age)(self.expected)
            self.functions[age] = function
        return function(name)


class SSMGetEntry(EntryPoint):
    def call(self, name: str, age: float) -> Any:
        return ssm.get_entry(f"/hp/{name}", max_age_in_seconds=age)


class SSMHandler(EntryPoint):
    def __init__(self, cache: Any) -> None:
        super().__init__(cache)
        self.handlers: dict[tuple[str, float], Any] = {}

    def call(self, name: str, age: float) -> Any:
        handler = self.handlers.get((name, age))
        if handler is None:

            @ssm.cache(parameter=f"/hp/{name}", max_age_in_seconds=age, entry_name="v")
            def handler(event: Any, context: Any) -> Any:
                return context.v

            self.handlers[(name, age)] = handler
        return handler({}, Context())


class SecretHandlerWithRetry(SSMHandler):
    """A handler decorator with ``refresh_on``: its generated path has the retry epilogue."""

    def call(self, name: str, age: float) -> Any:
        handler = self.handlers.get((name, age))
        if handler is None:

            @secrets_manager.cache(
                name=f"hp/{name}", max_age_in_seconds=age, entry_name="v", refresh_on=KeyError
            )
            def handler(event: Any, context: Any) -> Any:
                return context.v

            self.handlers[(name, age)] = handler
        return handler({}, Context())


class SecretGetEntry(EntryPoint):
    def call(self, name: str, age: float) -> Any:
        return secrets_manager.get_entry(f"hp/{name}", max_age_in_seconds=age)


class S3GetEntry(EntryPoint):
    file = True

    def call(self, name: str, age: float) -> Any:
        path = self.path = s3.get_entry(f"s3://bucket/hp/{name}", max_age_in_seconds=age)
        with open(path) as f:
            return f.read()


class S3Handler(SSMHandler):
    file = True

    def call(self, name: str, age: float) -> Any:
        handler = self.handlers.get((name, age))
        if handler is None:

            @s3.cache(s3Uri=f"s3://bucket/hp/{name}", max_age_in_seconds=age, entry_name="path")
            def handler(event: Any, context: Any) -> Any:
                self.path = context.path
                with open(context.path) as f:
                    return f.read()

            self.handlers[(name, age)] = handler
        return handler({}, Context())


ENTRY_POINTS: dict[str, Callable[[Any], EntryPoint]] = {
    "TieredCache.get": Get,
    "TieredCache.get_or_load": GetOrLoad,
    "cache.cache": lambda cache: Decorated(cache, explicit=True),
    "tiered.cache": lambda cache: Decorated(cache, explicit=False),
    "ssm.get_entry": SSMGetEntry,
    "@ssm.cache": SSMHandler,
    "secrets_manager.get_entry": SecretGetEntry,
    "@secrets_manager.cache(refresh_on=...)": SecretHandlerWithRetry,
    "s3.get_entry": S3GetEntry,
    "@s3.cache": S3Handler,
}
NAMES = ("main", "b", "c")


@pytest.fixture(params=sorted(ENTRY_POINTS))
def point(request: Any, make_cache: Callable[..., Any]) -> Iterator[EntryPoint]:
    ssm_client = boto3.client("ssm", region_name="us-east-1")
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    bucket = boto3.client("s3", region_name="us-east-1")
    bucket.create_bucket(Bucket="bucket")
    for name in NAMES:
        value = f"value-of-{name}"
        ssm_client.put_parameter(Name=f"/hp/{name}", Value=value, Type="String")
        secrets.create_secret(Name=f"hp/{name}", SecretString=value)
        bucket.put_object(Bucket="bucket", Key=f"hp/{name}", Body=value.encode())
    cache = make_cache(memory_items=2, ttl=TTL)
    with tiered.use_cache(cache):
        yield ENTRY_POINTS[request.param](cache)


def _memory_hits(point: EntryPoint) -> int:
    return int(point.cache.stats()["memory_hits"])


def _is_memory_hit(point: EntryPoint, name: str = "main", age: float = TTL) -> bool:
    before = _memory_hits(point)
    assert point.call(name, age) == point.expected(name)
    return _memory_hits(point) == before + 1


def test_fresh_is_a_memory_hit_and_counted(point: EntryPoint) -> None:
    point.call("main", TTL)
    assert _is_memory_hit(point)
    assert _is_memory_hit(point)


def test_expired_is_not_a_hit(point: EntryPoint, fake_clock: Any) -> None:
    point.call("main", TTL)
    fake_clock.advance(TTL + 1)
    assert not _is_memory_hit(point)
    assert _is_memory_hit(point)  # loaded anew, then served


def test_an_entry_stamped_in_the_future_is_not_a_hit(point: EntryPoint, fake_clock: Any) -> None:
    point.call("main", TTL)
    fake_clock.advance(-10)  # the clock stepped back: the entry is stamped 10 s ahead
    assert not _is_memory_hit(point)


def test_an_entry_older_than_the_callers_age_is_not_a_hit_for_that_caller(
    point: EntryPoint, fake_clock: Any
) -> None:
    point.call("main", TTL)  # stored for 600 s
    fake_clock.advance(11)
    assert _is_memory_hit(point, age=TTL)  # fresh for a caller that accepts 600 s
    assert not _is_memory_hit(point, age=10)  # stale for one that accepts 10 s


def test_nothing_stored_before_expire_all_is_a_hit(point: EntryPoint, fake_clock: Any) -> None:
    point.call("main", TTL)
    assert _is_memory_hit(point)
    point.cache.expire_all()  # a SnapStart restore
    assert not _is_memory_hit(point)
    # An entry stamped before the restore that lands in memory afterwards (a load that was in
    # flight; here: the clock stepped back) is not served either.
    point.cache.expire_all()
    fake_clock.advance(-5)
    point.call("b", TTL)
    fake_clock.advance(6)
    assert not _is_memory_hit(point, "b")


def test_a_hit_marks_the_entry_recently_used(point: EntryPoint) -> None:
    """memory_items=2: ask for main, b, main again, then c: main stays in memory (b goes)."""
    point.call("main", TTL)
    point.call("b", TTL)
    assert _is_memory_hit(point, "main")
    point.call("c", TTL)
    assert _is_memory_hit(point, "main")
    assert not _is_memory_hit(point, "b")


def test_a_file_backed_entry_whose_file_vanished_is_not_a_hit(point: EntryPoint) -> None:
    if not point.file:
        pytest.skip("this entry point's values are not files")
    point.call("main", TTL)
    os.remove(point.path)
    assert not _is_memory_hit(point)  # fetched again, into a file that exists
    assert _is_memory_hit(point)
