"""DynamoDB items (configuration, lookup tables), cached in memory and on local disk.

::

    from tiered_cache import dynamodb

    @dynamodb.cache(table="cfg", key={"id": "flags"}, entry_name="flags")
    def handler(event, context): ...                                   # context.flags

    dynamodb.get_entry(table="cfg", key={"id": "flags"})               # the item, a dict
    dynamodb.get_entry(table="cfg", key={"pk": "a", "sk": 3}, attribute="value")

Items have the types of boto3's resource layer (numbers ``Decimal``, sets ``set``, lists, maps,
``bool``, ``None``; binary as ``bytes``, which boto3's ``Binary`` equals), on disk too.
``attribute`` returns that one attribute (fetched alone, by projection). ``key``: the partition
key and the sort key of a composite one (``str``, ``int``, ``Decimal`` or ``bytes`` values). The
cache key holds the region, the table, the key's attributes sorted by name with their types,
``attribute`` and ``consistent_read``. Options (keywords): ``ttl``, ``stale_if_error``,
``persist`` (default True), ``shared``, ``client``, ``session``, ``region_name``. IAM:
``dynamodb:GetItem``. Thread- and process-safe like every helper. Errors: ``NotFoundError`` for
a missing item, attribute or table (the message says which; remembered for up to 10 s),
``SourceError`` for other failures (a key that does not fit the schema: ``ValidationException``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import _aws
from .exceptions import NotFoundError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["cache", "get_entry"]

F = TypeVar("F", bound=Callable[..., Any])


def _check_key(name: str, key: Any, owner: str) -> tuple[tuple[str, str, Any], ...]:
    """The key as ``((attribute, type, value), ...)`` sorted by attribute: a stable form."""
    if type(key) is not dict or not 1 <= len(key) <= 2:
        raise TypeError(
            f"tiered-cache: {owner}: {name} must be a dict of the partition key (and the sort "
            f"key) by attribute name, such as {{'id': 'x'}}, not {key!r}"
        )
    from decimal import Decimal  # here: not every import of this module needs it

    tags = {str: "S", int: "N", Decimal: "N", bytes: "B"}
    found = []
    for attribute, value in sorted(key.items(), key=lambda item: str(item[0])):
        tag = tags.get(type(value))
        if not isinstance(attribute, str) or not attribute or tag is None:
            raise TypeError(
                f"tiered-cache: {owner}: {name} {attribute!r}: a key attribute is named by a str "
                f"and is a str, int, Decimal or bytes (for a float, use Decimal), not {value!r}"
            )
        found.append((attribute, tag, value if tag != "N" else str(value)))
    return tuple(found)


class _Items(_aws.Service):
    name = "dynamodb"
    options = (
        _aws.Option("key", check=_check_key, hashable=False),
        _aws.Option("attribute", check=_aws.text),
        _aws.Option("consistent_read", False, check=_aws.boolean),
    )

    def key(self, request: _aws.Request) -> str:
        return str(request.name)

    def fetch(self, request: _aws.Request) -> Any:
        table, attribute = request.name, request.attribute
        what = f"DynamoDB table {table!r} in {request.where}"
        call: dict[str, Any] = {
            "TableName": table,
            "Key": {name: {tag: value} for name, tag, value in request.key},
            "ConsistentRead": request.consistent_read,
        }
        if attribute is not None:  # the key's attributes too: an item that exists has some
            names = list(dict.fromkeys([attribute, *(name for name, _, _ in request.key)]))
            call["ProjectionExpression"] = ", ".join(f"#a{i}" for i in range(len(names)))
            call["ExpressionAttributeNames"] = {f"#a{i}": n for i, n in enumerate(names)}
        item = _aws.call(request.client().get_item, what, **call).get("Item")
        shown = call["Key"]
        if item is None:
            raise NotFoundError(
                f"tiered-cache: {what} has no item with the key {shown!r}; check the key's "
                "values and types (the table exists)"
            )
        if attribute is not None and attribute not in item:
            raise NotFoundError(
                f"tiered-cache: the item {shown!r} in {what} has no attribute {attribute!r}"
            )
        deserialize = _deserializer().deserialize
        if attribute is not None:
            return deserialize(item[attribute])
        return {name: deserialize(value) for name, value in item.items()}


_made: list[Any] = []


def _deserializer() -> Any:
    """boto3's TypeDeserializer (made once, imported on the first fetch), giving bytes for B."""
    if not _made:
        from boto3.dynamodb.types import TypeDeserializer

        class Deserializer(TypeDeserializer):
            def _deserialize_b(self, value: bytes) -> bytes:
                return value

        _made.append(Deserializer())
    return _made[0]


_ITEMS: Final = _Items()


@_ITEMS.entry
def get_entry(
    table: str,
    key: dict[str, Any],
    attribute: str | None = None,
    consistent_read: bool = False,
    max_age_in_seconds: float | None = None,
    entry_name: str | bool | None = False,
    **options: Unpack[_aws.Options],
) -> Any:
    """The item at ``key`` in ``table`` as a dict (or its ``attribute``), types kept, cached."""
    raise NotImplementedError  # never runs: the base generates the function


@_ITEMS.handler
def cache(
    table: str,
    key: dict[str, Any],
    attribute: str | None = None,
    consistent_read: bool = False,
    max_age_in_seconds: float | None = None,
    entry_name: str | bool | None = False,
    **options: Unpack[_aws.Options],
) -> Callable[[F], F]:
    """Decorate ``handler(event, context)`` to set ``context.<entry_name>`` (default: the
    table's name) to the item; arguments are checked when the handler is called.
    """
    raise NotImplementedError  # never runs: the base generates the function
