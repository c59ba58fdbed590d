"""Testing a handler's caching without sleeping: an injected clock, through tiered.use_cache."""

import types

import boto3
import handler
import pytest
from moto import mock_aws

import tiered_cache as tiered


class Clock:
    """A wall clock the test moves by hand: expiry without sleeping."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(tmp_path):
    clock = Clock()
    cache = tiered.TieredCache(directory=str(tmp_path / "cache"), clock=clock, jitter=0)
    with cache, tiered.use_cache(cache):  # the helpers and every @tiered.cache function use it
        yield clock  # (and the cache is closed after the test)


def test_values_expire_without_sleeping(clock, monkeypatch):
    calls = []
    monkeypatch.setattr(handler, "load_rate", lambda c: calls.append(c) or 1.25)
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(Name="/prod/app/greeting", Value="hello", Type="String")
        event, context = {"currency": "EUR"}, types.SimpleNamespace()

        assert handler.handler(event, context) == "hello: 1.25"
        ssm.put_parameter(Name="/prod/app/greeting", Value="hi", Overwrite=True)
        assert handler.handler(event, context) == "hello: 1.25"  # cached
        clock.now += 61  # past the parameter's 60 s
        assert handler.handler(event, context) == "hi: 1.25"  # refetched
        assert calls == ["EUR"]  # the rates are still fresh (300 s)
        clock.now += 300
        handler.handler(event, context)
        assert calls == ["EUR", "EUR"]
