"""A loader's value the serializer cannot store is kept in memory for its TTL, with one warning
per key naming both ways out; ``cache.set`` of such a value still raises (the caller asked for
disk), before anything is stored."""

from __future__ import annotations

import logging
from typing import Any

import pytest

UNSTORABLE = complex(1, 2)  # not one of the safe serializer's types


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_decorated_function_returning_an_unstorable_value_runs_once_per_ttl(
    make_cache: Any, fake_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(ttl=60)
    calls: list[int] = []

    @cache.cache(key="point:{n}")
    def point(n: int) -> complex:
        calls.append(n)
        return UNSTORABLE * n

    with caplog.at_level(logging.DEBUG, logger="tiered_cache"):
        assert point(1) == UNSTORABLE
        assert point(1) == UNSTORABLE
        assert calls == [1]  # kept in memory: not run again within the TTL
        fake_clock.advance(61)
        assert point(1) == UNSTORABLE
        assert calls == [1, 1]  # once per TTL
    warned = _warnings(caplog)
    assert len(warned) == 1, warned  # one warning per key, not one per load
    assert "'point:1'" in warned[0]
    assert "TIERED_CACHE_SERIALIZER=pickle" in warned[0]
    assert "persist=False" in warned[0]
    assert make_cache().get("point:1") is None  # nothing reached the disk


def test_get_or_load_keeps_an_unstorable_value_in_memory_and_warns_per_key(
    make_cache: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache()
    with caplog.at_level(logging.WARNING, logger="tiered_cache"):
        assert cache.get_or_load("a", lambda: UNSTORABLE) == UNSTORABLE
        assert cache.get_or_load("b", lambda: UNSTORABLE) == UNSTORABLE
        assert cache.get_or_load("a", lambda: pytest.fail("loaded again")) == UNSTORABLE
    assert len(_warnings(caplog)) == 2  # one for each key


def test_persist_false_keeps_it_in_memory_without_a_warning(
    make_cache: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache()
    with caplog.at_level(logging.WARNING, logger="tiered_cache"):
        assert cache.get_or_load("a", lambda: UNSTORABLE, persist=False) == UNSTORABLE
        assert cache.get("a") == UNSTORABLE
    assert _warnings(caplog) == []


def test_the_pickle_serializer_stores_it_on_disk(make_cache: Any) -> None:
    cache = make_cache(serializer="pickle")
    assert cache.get_or_load("a", lambda: UNSTORABLE) == UNSTORABLE
    assert make_cache(serializer="pickle").get("a") == UNSTORABLE


def test_set_of_an_unstorable_value_raises_and_stores_nothing(make_cache: Any) -> None:
    cache = make_cache()
    with pytest.raises(TypeError, match="serializer='pickle'"):
        cache.set("k", UNSTORABLE)
    assert cache.get("k") is None  # not even in memory
    assert make_cache().get("k") is None
    cache.set("k", UNSTORABLE, persist=False)  # memory only: nothing to serialize
    assert cache.get("k") == UNSTORABLE
