"""Environment configuration and ``tiered.default_cache()``: read once when the default cache is
made, bad values logged (never fatal), disk disabled on request, one instance per process.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

import tiered_cache as tiered
from tiered_cache import _config
from tiered_cache._config import settings_from_env


def test_settings_from_env_parses_every_variable(tmp_path: Path) -> None:
    env = {
        "TIERED_CACHE_DIR": str(tmp_path / "c"),
        "TIERED_CACHE_TTL": "300",
        "TIERED_CACHE_JITTER": "0.05",
        "TIERED_CACHE_STALE_IF_ERROR": "30",
        "TIERED_CACHE_MEMORY_ITEMS": "10",
        "TIERED_CACHE_MEMORY_BYTES": "4096",
        "TIERED_CACHE_DISK_BYTES": "1048576",
        "TIERED_CACHE_LOCK_TIMEOUT": "2.5",
        "TIERED_CACHE_SERIALIZER": "pickle",
        "UNRELATED": "x",
    }
    assert settings_from_env(env) == {
        "directory": str(tmp_path / "c"),
        "ttl": 300.0,
        "jitter": 0.05,
        "stale_if_error": 30.0,
        "memory_items": 10,
        "memory_bytes": 4096,
        "disk_bytes": 1048576,
        "lock_timeout": 2.5,
        "serializer": "pickle",
    }


def test_empty_environment_means_built_in_defaults() -> None:
    assert settings_from_env({}) == {}
    assert settings_from_env({"TIERED_CACHE_TTL": "  "}) == {}


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_disable_disk(value: str) -> None:
    assert settings_from_env({"TIERED_CACHE_DISABLE_DISK": value}) == {"disk": False}


@pytest.mark.parametrize("value", ["0", "false", "", "no"])
def test_disable_disk_off(value: str) -> None:
    assert settings_from_env({"TIERED_CACHE_DISABLE_DISK": value}) == {}


def test_unparsable_values_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="tiered_cache"):
        settings = settings_from_env(
            {"TIERED_CACHE_TTL": "an hour", "TIERED_CACHE_MEMORY_ITEMS": "1.5"}
        )
    assert settings == {}
    messages = [r.getMessage() for r in caplog.records]
    assert any("TIERED_CACHE_TTL" in m and "a number" in m for m in messages)
    assert any("TIERED_CACHE_MEMORY_ITEMS" in m and "an integer" in m for m in messages)


def test_default_cache_reads_the_environment_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERED_CACHE_DIR", str(tmp_path / "env-dir"))
    monkeypatch.setenv("TIERED_CACHE_TTL", "123")
    monkeypatch.setenv("TIERED_CACHE_MEMORY_ITEMS", "7")
    cache = tiered.default_cache()
    assert cache.directory == str(tmp_path / "env-dir")
    assert cache.ttl == 123.0
    assert cache._memory.max_items == 7
    monkeypatch.setenv("TIERED_CACHE_TTL", "5")
    assert tiered.default_cache() is cache  # read once
    assert tiered.default_cache().ttl == 123.0
    _config._reset_default_cache()
    assert tiered.default_cache().ttl == 5.0


def test_default_ttl_is_60_seconds_and_directory_from_env() -> None:
    cache = tiered.default_cache()
    assert cache.ttl == 60.0
    assert cache.directory is not None  # the conftest points it at a private tmp dir


def test_disable_disk_gives_a_memory_only_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERED_CACHE_DISABLE_DISK", "1")
    assert tiered.default_cache().directory is None


def test_invalid_values_fall_back_without_aborting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TIERED_CACHE_JITTER", "5")  # parses, but TieredCache refuses it
    with caplog.at_level(logging.ERROR, logger="tiered_cache"):
        cache = tiered.default_cache()
    assert cache.jitter == 0.1
    assert any("jitter" in r.getMessage() for r in caplog.records)
    assert cache.get_or_load("k", lambda: 1) == 1


def test_bad_disk_budget_keeps_the_disk_tier_with_the_default_budget(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TIERED_CACHE_DISK_BYTES", "0")
    with caplog.at_level(logging.ERROR, logger="tiered_cache"):
        cache = tiered.default_cache()
    assert cache.directory is not None  # one bad variable no longer costs the disk tier
    assert cache._disk.budget > 0
    assert any("TIERED_CACHE_DISK_BYTES" in r.getMessage() for r in caplog.records)


def test_default_cache_is_one_instance_across_threads() -> None:
    barrier = threading.Barrier(16)
    seen: list[Any] = []

    def get() -> None:
        barrier.wait()
        seen.append(tiered.default_cache())

    threads = [threading.Thread(target=get) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1


def test_env_configured_default_cache_in_a_fresh_process(
    tmp_path: Path, python_subprocess: Any
) -> None:
    out = python_subprocess(
        """
        import tiered_cache as tiered
        c = tiered.default_cache()
        print(c.directory, c.ttl, c._disk.budget)
        """,
        env={
            "TIERED_CACHE_DIR": str(tmp_path / "proc"),
            "TIERED_CACHE_TTL": "42",
            "TIERED_CACHE_DISK_BYTES": "2097152",
        },
    )
    assert out.stdout.split() == [str(tmp_path / "proc"), "42.0", "2097152"]
