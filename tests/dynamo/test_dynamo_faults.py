"""A sick table costs little: faults never raise, fixable ones say what to fix (once), throttled
calls are not retried, and one deadline bounds each whole call (a slow-drip endpoint).

The fake endpoints are loopback HTTP servers (``shared._drip.DripServer``) that answer every
request with a fixed DynamoDB response, all at once or one byte at a time.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from shared._drip import DripServer, http_request, self_signed, server_context

import tiered_cache as tiered
from tiered_cache import _serial
from tiered_cache._dynamo import DynamoDBTier
from tiered_cache._entry import Entry

from .conftest import MotoServer


def _response(status: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.0\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def _error(code: str, status: str = "400 Bad Request") -> bytes:
    return _response(
        status, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code}
    )


OK_EMPTY = _response("200 OK", {})  # GetItem: no item; PutItem/DeleteItem: done


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def endpoint(aws_env: dict[str, str]) -> Iterator[Callable[..., DripServer]]:
    """``endpoint(reply, interval=0, tls=None)``: a fake DynamoDB on loopback."""
    servers: list[DripServer] = []

    def make(reply: bytes, interval: float = 0.0, tls: Any = None) -> DripServer:
        server = DripServer(http_request, reply, interval=interval, tls=tls)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def _entry() -> tuple[Entry, bytes]:
    payload = _serial.dumps("v", _serial.SAFE)
    return Entry("v", 1e9, 1e9 + 60, 1e9 + 60, size=len(payload)), payload


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "tiered_cache" and r.levelno >= logging.WARNING
    ]


def _exercise(tier: DynamoDBTier, rounds: int = 10) -> None:
    """Every operation, ``rounds`` times: none may raise."""
    entry, payload = _entry()
    for _ in range(rounds):
        assert tier.get("k") is None
        assert tier.put("k", entry, payload, 60.0) is None
        assert tier.delete("k") is False
        with tier.lock("k", 0.2) as held:
            assert held is False
        tier.clear()


# -- faults that need the user: one warning that says what to fix -----------------------------


def test_a_missing_table_logs_one_warning_naming_the_schema_and_is_skipped(
    moto_server: MotoServer,
    aws_env: dict[str, str],
    fake_clock: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tier = DynamoDBTier(
        "no-such-table", endpoint_url=moto_server.url, timeout=2.0, clock=fake_clock
    )
    with caplog.at_level(logging.DEBUG, logger="tiered_cache"):
        _exercise(tier)
        fake_clock.advance(30.0)  # the cool-down passes: one trial, which fails again
        _exercise(tier, rounds=1)
    (warning,) = _warnings(caplog)
    assert "'no-such-table' does not exist" in warning
    assert "partition key named 'pk'" in warning
    assert "'ttl'" in warning
    assert tier.attempts == 2  # the breaker opened at the first failure, and after the trial
    assert tier.state == "open"


def test_access_denied_logs_one_warning_naming_the_iam_actions(
    endpoint: Callable[..., DripServer], fake_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = endpoint(_error("AccessDeniedException"))
    tier = DynamoDBTier("t", endpoint_url=f"http://127.0.0.1:{server.port}", clock=fake_clock)
    with caplog.at_level(logging.WARNING, logger="tiered_cache"):
        _exercise(tier)
    (warning,) = _warnings(caplog)
    assert "dynamodb:GetItem, dynamodb:PutItem and dynamodb:DeleteItem" in warning
    assert server.requests == 1  # not retried, and skipped from then on
    assert tier.skipped >= 40


def test_a_wrong_key_schema_says_so(
    moto_server: MotoServer, aws_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    client = moto_server.client()
    client.create_table(
        TableName="keyed-by-id",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    tier = DynamoDBTier("keyed-by-id", endpoint_url=moto_server.url)
    with caplog.at_level(logging.WARNING, logger="tiered_cache"):
        assert tier.get("k") is None
    (warning,) = _warnings(caplog)
    assert "another key schema" in warning


def test_no_region_says_to_set_one(
    monkeypatch: pytest.MonkeyPatch, aws_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name)
    tier = DynamoDBTier("t")
    with caplog.at_level(logging.WARNING, logger="tiered_cache"):
        _exercise(tier, rounds=2)
    (warning,) = _warnings(caplog)
    assert "set AWS_REGION" in warning


# -- faults that pass: counted, the breaker decides ---------------------------------------------


def test_throttling_is_never_retried_and_opens_the_breaker_after_three(
    endpoint: Callable[..., DripServer], fake_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = endpoint(_error("ProvisionedThroughputExceededException"))
    url = f"http://127.0.0.1:{server.port}"
    tier = DynamoDBTier("t", endpoint_url=url, timeout=2.0, clock=fake_clock)
    with caplog.at_level(logging.WARNING, logger="tiered_cache"):
        for _ in range(10):
            assert tier.get("k") is None
    assert server.requests == 3  # one request per call, then the breaker skips the rest
    assert (tier.errors, tier.skipped, tier.state) == (3, 7, "open")
    (warning,) = _warnings(caplog)
    assert "failed 3 times in a row" in warning


def test_a_server_error_is_retried_once(
    endpoint: Callable[..., DripServer], fake_clock: Any
) -> None:
    server = endpoint(_error("InternalServerError", "500 Internal Server Error"))
    tier = DynamoDBTier("t", endpoint_url=f"http://127.0.0.1:{server.port}", timeout=2.0)
    assert tier.get("k") is None
    assert server.requests == 2  # two attempts in all: botocore's standard mode retried once
    assert tier.errors == 1


def test_an_unreachable_endpoint_never_raises_and_costs_little(
    aws_env: dict[str, str], fake_clock: Any
) -> None:
    tier = DynamoDBTier("t", endpoint_url=f"http://127.0.0.1:{_free_port()}", clock=fake_clock)
    started = time.monotonic()
    _exercise(tier)
    assert time.monotonic() - started < 5.0
    assert (tier.errors, tier.state) == (3, "open")


# -- the deadline: one per whole call -------------------------------------------------------------


def test_the_drip_defeats_botocores_per_read_timeout(
    endpoint: Callable[..., DripServer],
) -> None:
    """Control: a plain client whose read timeout is 50 ms reads a dripped response in full,
    taking far longer than that. This is what the tier's deadline has to stop."""
    from botocore.config import Config

    server = endpoint(OK_EMPTY, interval=0.02)
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{server.port}",
        config=Config(read_timeout=0.05, connect_timeout=0.05, retries={"max_attempts": 1}),
    )
    started = time.monotonic()
    assert "Item" not in client.get_item(TableName="t", Key={"pk": {"S": "x"}})
    assert time.monotonic() - started >= 0.5  # ~100 bytes, 20 ms apart


def test_one_get_or_load_ends_before_one_dripped_response_would_with_the_origins_value(
    endpoint: Callable[..., DripServer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    server = endpoint(OK_EMPTY, interval=0.04)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.port}")
    cache = tiered.TieredCache(directory=str(tmp_path / "c"), shared="dynamodb://cache")
    calls: list[int] = []

    def origin() -> str:
        calls.append(1)
        return "from-origin"

    started = time.monotonic()
    value = cache.get_or_load("k", origin)
    elapsed = time.monotonic() - started
    stats = cache.stats()
    assert value == "from-origin"
    assert calls == [1]
    # Three calls (get, lock, put) of 100 ms each: about 0.4 s here, client made included, and
    # 1.5 s with the machine loaded (CI). Without the deadline each call would read one whole
    # dripped reply (~3.3 s), 10 s for the three: the bound is two whole replies. Each call's
    # own deadline is checked in the test after this one.
    whole_reply = len(OK_EMPTY) * server.interval
    assert elapsed < 2 * whole_reply, (
        f"one get_or_load took {elapsed:.2f} s against a dripping endpoint, "
        f"longer than two whole replies ({2 * whole_reply:.1f} s)"
    )
    assert server.sent >= 1  # it answered, slowly: each call was cut by its deadline
    assert stats["shared_errors"] == 3  # get, lock, put: 100 ms each, then the breaker opened
    assert stats["shared_breaker_opens"] == 1


def test_the_deadline_is_the_timeout_over_the_whole_call(
    endpoint: Callable[..., DripServer], fake_clock: Any
) -> None:
    server = endpoint(OK_EMPTY, interval=0.04)
    url = f"http://127.0.0.1:{server.port}"
    tier = DynamoDBTier("t", endpoint_url=url, timeout=0.3, failures=10, clock=fake_clock)
    times = []
    for _ in range(3):
        started = time.monotonic()
        assert tier.get("k") is None
        times.append(time.monotonic() - started)
    assert tier.errors == 3
    assert server.requests == 3  # no retry once the deadline had passed
    # each ran until its 0.3 s deadline (not one 0.3 s read: the response takes 4 s)
    assert all(0.25 <= t < 1.0 for t in times), times


def test_a_prebuilt_client_keeps_its_own_timeouts(endpoint: Callable[..., DripServer]) -> None:
    server = endpoint(OK_EMPTY)
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{server.port}")
    tier = DynamoDBTier("t", client)
    assert tier.deadline is None
    assert tier.get("k") is None
    assert tier.errors == 0


# -- HTTPS: the same sockets over TLS -------------------------------------------------------------


def test_https_works_through_the_deadline_sockets_and_is_bounded_too(
    endpoint: Callable[..., DripServer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_clock: Any,
) -> None:
    cert, key = self_signed(tmp_path / "tls")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
    healthy = endpoint(OK_EMPTY, tls=server_context(cert, key))
    tier = DynamoDBTier("t", endpoint_url=f"https://127.0.0.1:{healthy.port}", timeout=2.0)
    entry, payload = _entry()
    assert tier.get("k") is None
    assert tier.put("k", entry, payload, 60.0) is None
    assert tier.delete("k") is False
    assert tier.errors == 0
    assert healthy.requests == 3
    dripping = endpoint(OK_EMPTY, interval=0.04, tls=server_context(cert, key))
    url = f"https://127.0.0.1:{dripping.port}"
    slow = DynamoDBTier("t", endpoint_url=url, timeout=0.2, clock=fake_clock)
    slow.get("warm-up")  # makes the client and the TLS connection
    started = time.monotonic()
    assert slow.get("k") is None
    elapsed = time.monotonic() - started
    assert dripping.sent >= 1
    assert slow.errors == 2
    assert elapsed < 1.0, f"{elapsed:.2f} s"
