"""The DynamoDB tier on its own, against moto over HTTP: schema, limits, safety, lock, faults."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tiered_cache import _serial
from tiered_cache._dynamo import MAX_ITEM_BYTES, DynamoDBTier, parse_url
from tiered_cache._entry import FLAG_PICKLE, Entry, decode, encode

from .conftest import MotoServer, items

T0 = 1_000_000.0


def _entry(value: Any, ttl: float = 60.0, stale: float = 0.0) -> tuple[Entry, bytes]:
    payload = _serial.dumps(value, _serial.SAFE)
    return Entry(value, T0, T0 + ttl, T0 + ttl + stale, size=len(payload)), payload


# -- schema -------------------------------------------------------------------------------------


def test_an_item_is_pk_ttl_and_the_envelope_and_never_holds_the_key(
    make_tier: Callable[..., DynamoDBTier], dclient: Any, table: str, fake_clock: Any
) -> None:
    tier = make_tier(prefix="fn-a:")
    key = "ssm:/prod/db/password"
    entry, payload = _entry({"user": "app"}, ttl=30.0, stale=10.0)
    tier.put(key, entry, payload, 40.25)
    (item,) = items(dclient, table)
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert set(item) == {"pk", "ttl", "envelope"}
    assert item["pk"] == {"S": f"fn-a:v1:{digest}"}
    # ttl: whole epoch seconds, at or after the end of the lifetime (for DynamoDB's TTL)
    assert item["ttl"] == {"N": str(int(fake_clock() + 41))}
    data = item["envelope"]["B"]
    assert decode(key, data, _serial.SAFE).value == {"user": "app"}
    assert data[3] == 0  # the envelope's flags: safe serializer, not a file
    assert b"ssm:/prod" not in item["pk"]["S"].encode()
    other = make_tier(prefix="fn-b:")
    assert other.get(key) is None  # another prefix is another namespace


def test_round_trip_keeps_value_types_and_entry_times(
    make_tier: Callable[..., DynamoDBTier],
) -> None:
    tier = make_tier()
    value = {"a": [1, 2.5, None, True, b"\x00\xff", "é"], "n": -(2**70), "t": (1, "x")}
    entry, payload = _entry(value, ttl=30.0, stale=5.0)
    entry.version = "etag-1"
    tier.put("k", entry, payload, 35.0)
    got = tier.get("k")
    assert got is not None
    assert got.value == value
    assert type(got.value["t"]) is tuple
    assert (got.stored_at, got.expires_at, got.stale_until, got.version) == (
        T0,
        T0 + 30.0,
        T0 + 35.0,
        "etag-1",
    )


def test_an_item_past_its_ttl_is_a_miss_before_dynamodb_deletes_it(
    make_tier: Callable[..., DynamoDBTier], dclient: Any, table: str, fake_clock: Any
) -> None:
    tier = make_tier()
    entry, payload = _entry("v")
    tier.put("k", entry, payload, 10.0)
    fake_clock.advance(9.0)
    assert tier.get("k") is not None
    fake_clock.advance(2.0)
    assert tier.get("k") is None
    assert len(items(dclient, table)) == 1  # still there: DynamoDB's TTL is lazy
    assert tier.delete("k") is False  # an expired item is not a live entry


def test_a_lifetime_under_a_millisecond_is_not_written(
    make_tier: Callable[..., DynamoDBTier], dclient: Any, table: str
) -> None:
    tier = make_tier()
    entry, payload = _entry("v")
    tier.put("gone", entry, payload, 0.0009)
    tier.put("none", entry, None, 60.0)  # no safe payload: nothing to share
    assert items(dclient, table) == []


def test_values_over_the_400_kb_item_limit_are_skipped_with_a_debug_log(
    make_tier: Callable[..., DynamoDBTier],
    dclient: Any,
    table: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tier = make_tier()
    near = MAX_ITEM_BYTES - 1024
    entry, payload = _entry(b"x" * near)
    tier.put("near", entry, payload, 60.0)  # just under: DynamoDB (moto) takes it
    assert tier.errors == 0
    got = tier.get("near")
    assert got is not None
    assert got.value == b"x" * near
    big, big_payload = _entry(b"x" * MAX_ITEM_BYTES)
    with caplog.at_level(logging.DEBUG, logger="tiered_cache"):
        tier.put("big", big, big_payload, 60.0)
    assert tier.stats()["shared_too_large"] == 1
    assert tier.get("big") is None
    assert len(items(dclient, table)) == 1
    assert any(
        "not shared" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records
    )


def test_delete_and_clear_touch_only_this_prefix(
    make_tier: Callable[..., DynamoDBTier], dclient: Any, table: str
) -> None:
    mine, theirs, longer = make_tier(prefix="a:"), make_tier(prefix="b:"), make_tier(prefix="a:v1:")
    entry, payload = _entry("v")
    for key in ("k1", "k2", "k3"):
        for tier in (mine, theirs, longer):
            tier.put(key, entry, payload, 60.0)
    dclient.put_item(TableName=table, Item={"pk": {"S": "unrelated"}, "x": {"S": "keep"}})
    with mine.lock("held", 0.0) as held:
        assert held
        assert mine.delete("k1") is True
        assert mine.delete("k1") is False
        mine.clear()
        names = {item["pk"]["S"] for item in items(dclient, table)}
    assert mine.get("k2") is None
    assert theirs.get("k2") is not None
    assert longer.get("k2") is not None  # a prefix that begins with "a:v1:" is not "a:"
    assert "unrelated" in names
    assert mine.lock_key("held") in names  # clear drops entries, never a lock in use


# -- safety: nothing is ever unpickled ------------------------------------------------------------


class _Boom:
    """Unpickling this creates ``marker``: proof that a payload was executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.marker,))


def test_planted_pickles_and_malformed_items_are_misses_and_never_execute(
    make_tier: Callable[..., DynamoDBTier], dclient: Any, table: str, tmp_path: Path
) -> None:
    tier = make_tier()
    marker = str(tmp_path / "executed")
    bomb = pickle.dumps(_Boom(marker))
    entry = Entry(None, T0, T0 + 60, T0 + 60, size=len(bomb))
    pk = {"S": tier.data_key("k")}
    ttl = {"N": str(int(T0 + 3600))}
    plants = [
        {"pk": pk, "ttl": ttl, "envelope": {"B": bomb}},  # a bare pickle
        {"pk": pk, "ttl": ttl, "envelope": {"B": encode("k", entry, bomb, FLAG_PICKLE)}},
        {"pk": pk, "ttl": ttl, "envelope": {"B": encode("k", entry, bomb, 0)}},  # "safe" lie
        {
            "pk": pk,
            "ttl": ttl,
            "envelope": {"B": encode("k", entry, _serial.dumps(["x.obj", 1], _serial.SAFE), 2)},
        },  # a file reference
        {"pk": pk, "ttl": ttl, "envelope": {"S": "not bytes"}},
        {"pk": pk, "envelope": {"B": encode("k", entry, _serial.dumps(1, "safe"), 0)}},  # no ttl
        {"pk": pk, "ttl": ttl},  # no envelope
    ]
    for i, planted in enumerate(plants):
        dclient.put_item(TableName=table, Item=planted)
        assert tier.get("k") is None
        assert tier.corrupt == i + 1
    assert not os.path.exists(marker)
    pickle.loads(bomb)  # control: the same bomb does execute when unpickled
    assert os.path.exists(marker)


def test_an_envelope_of_another_key_is_a_miss(
    make_tier: Callable[..., DynamoDBTier], dclient: Any, table: str
) -> None:
    tier = make_tier()
    entry, payload = _entry("for-b")
    dclient.put_item(
        TableName=table,
        Item={
            "pk": {"S": tier.data_key("a")},
            "ttl": {"N": str(int(T0 + 3600))},
            "envelope": {"B": encode("b", entry, payload, 0)},
        },
    )
    assert tier.get("a") is None


# -- the fleet lock -------------------------------------------------------------------------------


def test_lock_is_a_conditional_leased_item_released_only_by_its_owner(
    make_tier: Callable[..., DynamoDBTier], dclient: Any, table: str, fake_clock: Any
) -> None:
    a, b = make_tier(lock_lease=7.0), make_tier()
    key = {"pk": {"S": a.lock_key("k")}}
    with a.lock("k", 0.0) as held:
        assert held
        item = dclient.get_item(TableName=table, Key=key)["Item"]
        assert float(item["lease"]["N"]) == pytest.approx(fake_clock() + 7.0)
        assert int(item["ttl"]["N"]) >= fake_clock() + 7.0  # DynamoDB's TTL removes dead locks
        with b.lock("k", 0.0) as other:
            assert not other
        assert b.lock_timeouts == 1
        assert b.errors == 0  # "held by someone else" is an answer, not a fault
    assert "Item" not in dclient.get_item(TableName=table, Key=key)
    with b.lock("k", 0.0) as held:
        assert held
        # b's lease ran out and someone else took the lock: b's release must leave it theirs
        dclient.put_item(
            TableName=table,
            Item={**key, "owner": {"S": "someone-else"}, "lease": {"N": str(T0 + 999)}},
        )
    assert dclient.get_item(TableName=table, Key=key)["Item"]["owner"] == {"S": "someone-else"}
    assert b.errors == 0


def test_an_expired_lease_is_taken_over(
    make_tier: Callable[..., DynamoDBTier], dclient: Any, table: str, fake_clock: Any
) -> None:
    tier = make_tier()
    dclient.put_item(
        TableName=table,
        Item={
            "pk": {"S": tier.lock_key("k")},
            "owner": {"S": "a-holder-that-died"},
            "lease": {"N": str(fake_clock() - 0.5)},
        },
    )
    with tier.lock("k", 0.0) as held:
        assert held


def test_the_lock_wait_is_bounded_by_lock_wait(
    make_tier: Callable[..., DynamoDBTier], dclient: Any, table: str, fake_clock: Any
) -> None:
    tier = make_tier(lock_wait=0.2)
    dclient.put_item(
        TableName=table,
        Item={
            "pk": {"S": tier.lock_key("k")},
            "owner": {"S": "holder"},
            "lease": {"N": str(fake_clock() + 60)},
        },
    )
    started = time.monotonic()
    with tier.lock("k", 30.0) as held:  # the core offers 30 s; the tier waits 0.2 s at most
        assert not held
    assert time.monotonic() - started < 2.0
    assert tier.lock_timeouts == 1
    assert tier.stats()["shared_attempts"] >= 2  # it polled, then gave up


def test_a_waiter_polls_by_reading_and_puts_again_only_once_the_lock_is_gone(
    moto_server: MotoServer, table: str, fake_clock: Any
) -> None:
    """A poll is a read unit; a failed conditional put would be a write unit, five times it."""
    client = moto_server.client()
    ops: list[str] = []
    polled = threading.Event()

    def seen(model: Any, params: dict[str, Any], **_: Any) -> None:
        strong = model.name == "GetItem" and params.get("ConsistentRead")
        ops.append("read" if strong else model.name)
        if ops.count("read") == 2:
            polled.set()

    client.meta.events.register("provide-client-params.dynamodb", seen)
    waiter = DynamoDBTier(table, client, clock=fake_clock, lock_wait=10.0)
    holder = DynamoDBTier(table, moto_server.client(), clock=fake_clock)
    got: list[bool] = []

    def wait_for_the_lock() -> None:
        with waiter.lock("k", 10.0) as held:
            got.append(held)

    with holder.lock("k", 0.0) as held:
        assert held
        thread = threading.Thread(target=wait_for_the_lock)
        thread.start()
        assert polled.wait(10.0), f"the waiter did not poll by reading: {ops}"
    thread.join(10.0)
    assert got == [True]
    assert ops[0] == "PutItem"  # the first try, refused
    assert ops[-2:] == ["PutItem", "DeleteItem"]  # taken once the holder let go, then released
    assert set(ops[1:-2]) == {"read"}, ops  # every poll in between a read


def test_reads_are_eventually_consistent_except_under_the_fleet_lock(
    moto_server: MotoServer, table: str, fake_clock: Any
) -> None:
    client = moto_server.client()
    seen: list[bool] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.GetItem",
        lambda params, **kw: seen.append(params["ConsistentRead"]),
    )
    tier = DynamoDBTier(table, client, clock=fake_clock)
    tier.get("k")
    with tier.lock("k", 0.0) as held:
        assert held
        tier.get("k")  # the re-check under the lock sees what the last holder wrote
        tier.get("other")
    tier.get("k")
    assert seen == [False, True, False, False]
    assert DynamoDBTier(table, client, consistent_read=True).get("k") is None
    assert seen[-1] is True


# -- URLs and arguments -------------------------------------------------------------------------


def test_urls_name_the_table_and_take_region_prefix_and_timeout() -> None:
    assert parse_url("dynamodb://cache-table") == {"table": "cache-table"}
    assert parse_url("dynamodb://t?region=eu-west-1&prefix=fn:&timeout=0.5") == {
        "table": "t",
        "region_name": "eu-west-1",
        "prefix": "fn:",
        "timeout": 0.5,
    }


@pytest.mark.parametrize(
    "url", ["dynamodb://", "redis://t", "dynamodb://t?bogus=1", "dynamodb://t?timeout=soon"]
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="tiered-cache"):
        DynamoDBTier.from_url(url)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table": ""},
        {"table": "t", "timeout": 0},
        {"table": "t", "lock_lease": 0},
        {"table": "t", "max_bytes": MAX_ITEM_BYTES + 1},
        {"table": "t", "failures": 0},
    ],
)
def test_arguments_are_checked(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="tiered-cache"):
        DynamoDBTier(**kwargs)


# -- processes ----------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_makes_its_own_client(make_tier: Callable[..., DynamoDBTier]) -> None:
    """The parent's client (and its pooled connection) is never used by a forked child."""
    tier = make_tier()
    entry, payload = _entry("from-parent")
    tier.put("parent", entry, payload, 60.0)  # the parent's client and connection now exist
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if its own client works
        code = 1
        try:
            child_entry, child_payload = _entry("from-child")
            tier.put("child", child_entry, child_payload, 60.0)
            got = tier.get("parent")
            code = 0 if got is not None and tier.errors == 0 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    got = tier.get("child")
    assert got is not None
    assert got.value == "from-child"
    assert tier.errors == 0  # the parent's connection still works after the child's exit
