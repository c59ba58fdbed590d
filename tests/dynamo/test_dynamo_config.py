"""The DynamoDB tier from the environment: ``TIERED_CACHE_DYNAMODB_*``, and one shared tier only
(setting it and ``TIERED_CACHE_REDIS_URL`` both is a logged error, and neither is used)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import tiered_cache as tiered
from tiered_cache import _config
from tiered_cache._config import settings_from_env
from tiered_cache._dynamo import DEFAULT_PREFIX, DEFAULT_TIMEOUT, DynamoDBTier

from .conftest import items


def test_the_table_variable_makes_a_dynamodb_tier() -> None:
    settings = settings_from_env({"TIERED_CACHE_DYNAMODB_TABLE": " cache-table "})
    tier = settings["shared"]
    assert isinstance(tier, DynamoDBTier)
    assert (tier.table, tier.prefix, tier.timeout) == (
        "cache-table",
        DEFAULT_PREFIX,
        DEFAULT_TIMEOUT,
    )


def test_prefix_and_timeout_variables() -> None:
    tier = settings_from_env(
        {
            "TIERED_CACHE_DYNAMODB_TABLE": "t",
            "TIERED_CACHE_DYNAMODB_PREFIX": "fn-orders:",
            "TIERED_CACHE_DYNAMODB_TIMEOUT": "0.25",
        }
    )["shared"]
    assert (tier.prefix, tier.timeout) == ("fn-orders:", 0.25)


@pytest.mark.parametrize("timeout", ["soon", "0", "-1"])
def test_a_bad_timeout_is_logged_and_no_shared_tier_is_used(
    caplog: pytest.LogCaptureFixture, timeout: str
) -> None:
    env = {"TIERED_CACHE_DYNAMODB_TABLE": "t", "TIERED_CACHE_DYNAMODB_TIMEOUT": timeout}
    with caplog.at_level(logging.ERROR, logger="tiered_cache"):
        assert "shared" not in settings_from_env(env)
    assert "TIERED_CACHE_DYNAMODB" in caplog.text


def test_both_shared_tiers_set_is_a_logged_error_and_neither_is_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"TIERED_CACHE_DYNAMODB_TABLE": "t", "TIERED_CACHE_REDIS_URL": "redis://127.0.0.1:1/0"}
    with caplog.at_level(logging.ERROR, logger="tiered_cache"):
        settings = settings_from_env(env)
    assert "shared" not in settings
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = record.getMessage()
    assert "TIERED_CACHE_REDIS_URL" in message
    assert "TIERED_CACHE_DYNAMODB_TABLE" in message
    assert "without a shared tier" in message


def test_redis_alone_is_still_the_redis_tier() -> None:
    pytest.importorskip("redis")
    from tiered_cache._shared import SharedTier

    settings = settings_from_env({"TIERED_CACHE_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert isinstance(settings["shared"], SharedTier)


def test_both_set_leaves_the_default_cache_working_without_a_shared_tier(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TIERED_CACHE_DYNAMODB_TABLE", "t")
    monkeypatch.setenv("TIERED_CACHE_REDIS_URL", "redis://127.0.0.1:1/0")
    _config._reset_default_cache()
    with caplog.at_level(logging.ERROR, logger="tiered_cache"):
        cache = tiered.default_cache()
    assert cache.get_or_load("k", lambda: 1) == 1
    assert "shared_attempts" not in cache.stats()  # no shared tier at all
    assert "both" in caplog.text


def test_the_default_cache_writes_to_the_table_under_the_prefix(
    monkeypatch: pytest.MonkeyPatch, table: str, dclient: Any
) -> None:
    """Through boto3's normal configuration: ``AWS_ENDPOINT_URL`` (``aws_env``) names moto."""
    monkeypatch.setenv("TIERED_CACHE_DYNAMODB_TABLE", table)
    monkeypatch.setenv("TIERED_CACHE_DYNAMODB_PREFIX", "fn-orders:")
    monkeypatch.setenv("TIERED_CACHE_DYNAMODB_TIMEOUT", "2")
    _config._reset_default_cache()
    cache = tiered.default_cache()
    assert cache.get_or_load("k", lambda: "v") == "v"
    expected = DynamoDBTier(table, prefix="fn-orders:").data_key("k")
    assert [item["pk"]["S"] for item in items(dclient, table)] == [expected]
