"""tiered_cache.dynamodb under moto: items with their types, keys, attributes, freshness, errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
import pytest
from _awshelp import Calls, Context

import tiered_cache as tiered
from tiered_cache import dynamodb
from tiered_cache.exceptions import NotFoundError, SourceError

ITEM: dict[str, Any] = {
    "id": "flags",
    "limit": Decimal("1.50"),
    "count": Decimal(7),
    "tags": {"a", "b"},
    "sizes": {Decimal(1), Decimal("2.5")},
    "blob": b"\x00\x01raw",
    "blobs": {b"\x01", b"\x02"},
    "on": True,
    "nothing": None,
    "nested": {"list": [Decimal(1), "x", {"deep": b"\xff"}], "empty": {}},
}


def _table(name: str, region: str = "us-east-1", sort: str | None = None) -> Any:
    schema = [{"AttributeName": "id" if sort is None else "pk", "KeyType": "HASH"}]
    attributes = [{"AttributeName": schema[0]["AttributeName"], "AttributeType": "S"}]
    if sort is not None:
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "sk", "AttributeType": sort})
    resource = boto3.resource("dynamodb", region_name=region)
    return resource.create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def cfg() -> Any:
    """A table ``cfg`` keyed by ``id`` (made before ``calls``: not counted)."""
    table = _table("cfg")
    table.put_item(Item=ITEM)
    table.put_item(Item={"id": "plain", "value": "v1"})
    return table


def _assert_same_types(got: Any, expected: Any) -> None:
    assert type(got) is type(expected), (got, expected)
    if isinstance(expected, dict):
        assert got.keys() == expected.keys()
        for name in expected:
            _assert_same_types(got[name], expected[name])
    elif isinstance(expected, list):
        for a, b in zip(got, expected, strict=True):
            _assert_same_types(a, b)
    elif isinstance(expected, (set, frozenset)):
        assert {type(v) for v in got} == {type(v) for v in expected}
    if isinstance(expected, Decimal):
        assert str(got) == str(expected)  # the exponent too: 1.50 stays 1.50


def test_the_item_comes_with_its_own_types(default: Any, cfg: Any, calls: Calls) -> None:
    item = dynamodb.get_entry(table="cfg", key={"id": "flags"})
    assert item == ITEM
    _assert_same_types(item, ITEM)
    assert calls.count("GetItem") == 1
    assert calls.requests("GetItem")[0]["ConsistentRead"] is False


def test_a_warm_hit_makes_no_call(default: Any, cfg: Any, calls: Calls) -> None:
    dynamodb.get_entry(table="cfg", key={"id": "plain"})
    hits = default.memory_hits
    for _ in range(5):
        assert dynamodb.get_entry(table="cfg", key={"id": "plain"})["value"] == "v1"
    assert calls.count() == 1
    assert default.memory_hits == hits + 5


def test_expiry_brings_the_update(default: Any, cfg: Any, calls: Calls, fake_clock: Any) -> None:
    assert dynamodb.get_entry("cfg", {"id": "plain"}, max_age_in_seconds=30)["value"] == "v1"
    cfg.put_item(Item={"id": "plain", "value": "v2"})
    fake_clock.advance(29)
    assert dynamodb.get_entry("cfg", {"id": "plain"}, max_age_in_seconds=30)["value"] == "v1"
    fake_clock.advance(1.5)
    assert dynamodb.get_entry("cfg", {"id": "plain"}, max_age_in_seconds=30)["value"] == "v2"
    assert calls.count("GetItem") == 2


def test_a_restart_on_the_same_directory_makes_no_call_and_keeps_the_types(
    default: Any, cfg: Any, calls: Calls, make_cache: Any
) -> None:
    dynamodb.get_entry(table="cfg", key={"id": "flags"})
    with tiered.use_cache(make_cache()):  # a new process's cache on the same /tmp
        item = dynamodb.get_entry(table="cfg", key={"id": "flags"})
        assert tiered.default_cache().stats()["disk_hits"] == 1
    assert calls.count() == 1
    assert item == ITEM
    _assert_same_types(item, ITEM)


def test_attribute_returns_that_attribute_alone(default: Any, cfg: Any, calls: Calls) -> None:
    assert dynamodb.get_entry("cfg", {"id": "flags"}, attribute="limit") == Decimal("1.50")
    assert dynamodb.get_entry("cfg", {"id": "flags"}, attribute="tags") == {"a", "b"}
    assert dynamodb.get_entry("cfg", {"id": "flags"}, attribute="id") == "flags"
    assert dynamodb.get_entry("cfg", {"id": "flags"}, attribute="limit") == Decimal("1.50")
    requests = calls.requests("GetItem")
    assert len(requests) == 3  # each attribute its own entry
    assert all("ProjectionExpression" in r for r in requests)
    assert dynamodb.get_entry("cfg", {"id": "flags"}) == ITEM  # the item is another entry
    assert calls.count() == 4


def test_composite_keys_in_any_order_are_one_entry(default: Any, calls: Calls) -> None:
    table = _table("pairs", sort="N")
    table.put_item(Item={"pk": "a", "sk": 1, "v": "one"})
    table.put_item(Item={"pk": "a", "sk": 2, "v": "two"})
    assert dynamodb.get_entry("pairs", {"pk": "a", "sk": 1})["v"] == "one"
    assert dynamodb.get_entry("pairs", {"sk": 1, "pk": "a"})["v"] == "one"
    assert dynamodb.get_entry("pairs", {"pk": "a", "sk": Decimal(1)})["v"] == "one"
    assert dynamodb.get_entry("pairs", {"pk": "a", "sk": 2})["v"] == "two"
    assert calls.count("GetItem") == 2
    assert calls.requests("GetItem")[0]["Key"] == {"pk": {"S": "a"}, "sk": {"N": "1"}}


def test_the_key_types_are_part_of_the_cache_key(default: Any, cfg: Any, calls: Calls) -> None:
    cfg.put_item(Item={"id": "1", "value": "string key"})
    assert dynamodb.get_entry("cfg", {"id": "1"})["value"] == "string key"
    # a number is not the string's entry: asked for (DynamoDB refuses it, moto finds nothing)
    with pytest.raises((SourceError, NotFoundError), match=r"'N': '1'|ValidationException"):
        dynamodb.get_entry("cfg", {"id": 1})
    assert calls.count("GetItem") == 2


def test_consistent_read_is_asked_for_and_part_of_the_key(
    default: Any, cfg: Any, calls: Calls
) -> None:
    dynamodb.get_entry("cfg", {"id": "plain"})
    dynamodb.get_entry("cfg", {"id": "plain"}, consistent_read=True)
    dynamodb.get_entry("cfg", {"id": "plain"}, consistent_read=True)
    assert [r["ConsistentRead"] for r in calls.requests("GetItem")] == [False, True]


def test_region_is_part_of_the_key(default: Any, calls: Calls) -> None:
    _table("cfg").put_item(Item={"id": "r", "where": "east"})
    _table("cfg", region="eu-west-1").put_item(Item={"id": "r", "where": "west"})
    for _ in range(2):
        assert dynamodb.get_entry("cfg", {"id": "r"})["where"] == "east"
        assert dynamodb.get_entry("cfg", {"id": "r"}, region_name="eu-west-1")["where"] == "west"
    assert calls.count("GetItem") == 2


def test_a_missing_item_attribute_or_table_is_not_found_saying_which(
    default: Any, cfg: Any, calls: Calls, fake_clock: Any
) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(NotFoundError, match="no item with the key") as item:
        dynamodb.get_entry("cfg", {"id": "nope"})
    assert "{'id': {'S': 'nope'}}" in str(item.value)
    with pytest.raises(NotFoundError, match="no attribute 'missing'"):
        dynamodb.get_entry("cfg", {"id": "plain"}, attribute="missing")
    with pytest.raises(NotFoundError, match=r"table 'absent'.*does not exist") as table:
        dynamodb.get_entry("absent", {"id": "x"})
    assert isinstance(table.value.__cause__, ClientError)
    assert calls.count("GetItem") == 3
    with pytest.raises(NotFoundError):
        dynamodb.get_entry("cfg", {"id": "nope"})  # remembered: not asked again
    assert calls.count("GetItem") == 3
    cfg.put_item(Item={"id": "nope", "value": "here now"})
    fake_clock.advance(11)
    assert dynamodb.get_entry("cfg", {"id": "nope"})["value"] == "here now"


@pytest.mark.parametrize(
    "key",
    [{}, {"id": 1.5}, {"id": True}, {"a": "1", "b": "2", "c": "3"}, [("id", "x")], {1: "x"}, None],
)
def test_bad_keys_are_type_errors_before_any_call(default: Any, calls: Calls, key: Any) -> None:
    with pytest.raises(TypeError, match="key"):
        dynamodb.get_entry("cfg", key)
    assert calls.count() == 0


def test_the_handler_sets_the_item_on_the_context(default: Any, cfg: Any, calls: Calls) -> None:
    @dynamodb.cache(table="cfg", key={"id": "plain"})
    @dynamodb.cache(table="cfg", key={"id": "flags"}, attribute="limit", entry_name="limit")
    def handler(event: Any, context: Any) -> Any:
        return context.cfg, context.limit

    assert handler({}, Context()) == ({"id": "plain", "value": "v1"}, Decimal("1.50"))
    assert handler({}, Context()) == ({"id": "plain", "value": "v1"}, Decimal("1.50"))
    assert calls.count("GetItem") == 2


def test_persist_false_keeps_items_off_disk(
    default: Any, cfg: Any, calls: Calls, make_cache: Any
) -> None:
    dynamodb.get_entry("cfg", {"id": "plain"}, persist=False)
    with tiered.use_cache(make_cache()):
        dynamodb.get_entry("cfg", {"id": "plain"}, persist=False)
    assert calls.count("GetItem") == 2
