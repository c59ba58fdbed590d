"""Bad input to the engine gets a clear error naming the argument and what is accepted (or the
documented fallback), never a raw one, and never stores anything."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import pytest

import tiered_cache as tiered
from tiered_cache._config import settings_from_env

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"ttl": "60"}, TypeError, "ttl"),
        ({"ttl": None}, TypeError, "ttl"),
        ({"ttl": NAN}, ValueError, "ttl"),
        ({"ttl": -1}, ValueError, "ttl"),
        ({"stale_if_error": "x"}, TypeError, "stale_if_error"),
        ({"stale_if_error": NAN}, ValueError, "stale_if_error"),
        ({"lock_timeout": NAN}, ValueError, "lock_timeout"),
        ({"jitter": 2}, ValueError, "jitter"),
        ({"jitter": "0.1"}, TypeError, "jitter"),
        ({"memory_items": "10"}, TypeError, "memory_items"),
        ({"memory_items": 0}, ValueError, "memory_items"),
        ({"memory_bytes": 1.5}, TypeError, "memory_bytes"),
        ({"disk_bytes": -5}, ValueError, "disk_bytes"),
        ({"serializer": "json"}, ValueError, "serializer"),
        ({"directory": None}, TypeError, "directory"),
        ({"directory": b"/tmp/x"}, TypeError, "directory"),
        ({"directory": ""}, ValueError, "directory"),
        ({"clock": 5}, TypeError, "clock"),
        ({"disk": "yes"}, TypeError, "disk"),
        ({"shared": "redis://h:notaport"}, ValueError, "port"),
        ({"shared": "redis://h:99999/0"}, ValueError, "port"),
        ({"shared": "memcached://h:11211"}, ValueError, "redis://"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], names: str
) -> None:
    kwargs.setdefault("directory", str(tmp_path / "c"))
    with pytest.raises(error, match=names) as caught:
        tiered.TieredCache(**kwargs)
    assert str(caught.value).startswith("tiered-cache:")
    assert not os.path.exists(tmp_path / "c")  # nothing was made


def test_a_home_relative_directory_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = tiered.TieredCache(directory="~/tc")
    assert cache.directory == str(tmp_path / "tc")
    cache.set("k", "v")
    assert tiered.TieredCache(directory=str(tmp_path / "tc")).get("k") == "v"


@pytest.mark.parametrize("key", [None, b"x", 123, ("a",)])
def test_keys_that_are_not_str_are_refused_before_anything_is_stored(
    make_cache: Any, key: Any
) -> None:
    cache = make_cache()
    for call in (
        lambda: cache.get(key),
        lambda: cache.get_or_load(key, lambda: 1),
        lambda: cache.set(key, 1),
        lambda: cache.delete(key),
        lambda: cache.load(key, lambda: 1),
    ):
        with pytest.raises(TypeError, match="key must be a str"):
            call()
    assert cache.stats()["memory_items"] == 0
    assert cache.stats()["loads"] == 0


@pytest.mark.parametrize("value", ["x", NAN, -1])
def test_bad_per_call_seconds_are_refused(make_cache: Any, value: Any) -> None:
    cache = make_cache()
    cache.set("k", "v")
    with pytest.raises(TypeError, match="stale_if_error"):
        cache.get_or_load("missing", lambda: 1, stale_if_error=value)
    with pytest.raises(TypeError, match="ttl"):
        cache.set("k2", "v", ttl=value)
    with pytest.raises(TypeError, match="ttl"):
        cache.get("k", ttl=value)  # also on a warm key: never a raw comparison error
    with pytest.raises(TypeError, match="ttl"):
        cache.get_or_load("k", lambda: 1, ttl=value)
    assert cache.get("k2") is None


def test_a_bool_is_not_a_number_of_seconds(make_cache: Any) -> None:
    cache = make_cache()
    with pytest.raises(TypeError, match="ttl"):
        cache.set("k", "v", ttl=True)
    with pytest.raises(TypeError, match="stale_if_error"):
        cache.get_or_load("k", lambda: 1, stale_if_error=False)


def test_an_infinite_ttl_means_no_expiry(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=INF, lock_timeout=INF)
    assert cache.get_or_load("k", lambda: "v") == "v"
    fake_clock.advance(10 * 365 * 86400)
    assert cache.get_or_load("k", lambda: "reloaded") == "v"
    cache.set("j", "w", ttl=INF)
    assert make_cache().get("j") == "w"  # on disk too


def test_an_infinite_lock_timeout_loads_when_nothing_holds_the_lock(make_cache: Any) -> None:
    cache = make_cache(lock_timeout=INF)
    assert cache.get_or_load("k", lambda: "v") == "v"
    assert cache.load("k", lambda: "w", refresh=True) == "w"


# -- the environment: one bad variable is logged and its default used; the rest stay ------------


@pytest.mark.parametrize(
    ("variable", "raw", "argument"),
    [
        ("TIERED_CACHE_TTL", "-5", "ttl"),
        ("TIERED_CACHE_TTL", "nan", "ttl"),
        ("TIERED_CACHE_DISK_BYTES", "-5", "disk_bytes"),
        ("TIERED_CACHE_DISK_BYTES", "0", "disk_bytes"),
        ("TIERED_CACHE_MEMORY_ITEMS", "0", "memory_items"),
        ("TIERED_CACHE_JITTER", "2", "jitter"),
        ("TIERED_CACHE_SERIALIZER", "json", "serializer"),
        ("TIERED_CACHE_LOCK_TIMEOUT", "nan", "lock_timeout"),
        ("TIERED_CACHE_DIR", " ", None),
    ],
)
def test_one_bad_variable_falls_back_to_its_default_and_keeps_the_disk_tier(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    raw: str,
    argument: str | None,
) -> None:
    env = {"TIERED_CACHE_STALE_IF_ERROR": "7", variable: raw}
    with caplog.at_level(logging.ERROR, logger="tiered_cache"):
        settings = settings_from_env(env)
    assert settings == {"stale_if_error": 7.0}  # the good variable is kept
    if argument is not None:
        assert any(variable in r.getMessage() for r in caplog.records)
    monkeypatch.setenv(variable, raw)
    cache = tiered.default_cache()
    assert cache.directory is not None  # the disk tier stays
    assert cache.get_or_load("k", lambda: "v") == "v"


def test_an_infinite_lock_timeout_from_the_environment_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIERED_CACHE_LOCK_TIMEOUT", "inf")
    cache = tiered.default_cache()
    assert cache.lock_timeout == INF
    assert cache.get_or_load("k", lambda: "v") == "v"
