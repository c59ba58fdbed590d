"""The safe serializer's richer types: tuple, set, frozenset, datetime, date, Decimal, UUID.

Each comes back with its exact type, nested anywhere; the old types' bytes are pinned (entries
already on users' disks must still decode); hostile bytes raise ``ValueError`` and nothing
else; subclasses are refused like any unsupported type. Hypothesis versions of the round trip
live in tests/reliability/test_properties.py.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import math
import uuid
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tiered_cache import _serial

UTC = dt.timezone.utc


def dumps(value: Any) -> bytes:
    return _serial.dumps(value, _serial.SAFE)


def loads(data: bytes) -> Any:
    return _serial.loads(data, _serial.SAFE)


def same(a: Any, b: Any) -> bool:
    """Equal with exactly the same types all the way down.

    NaN equals NaN (float and Decimal), ``-0.0`` is not ``0.0``, a Decimal must have the same
    ``str()`` (so the same exponent), a datetime the same wall fields, fold and UTC offset.
    """
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if type(a) is Decimal:
        return str(a) == str(b)
    if type(a) is dt.datetime:
        return (
            a.replace(tzinfo=None) == b.replace(tzinfo=None)
            and a.fold == b.fold
            and a.utcoffset() == b.utcoffset()
        )
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if type(a) in (set, frozenset):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    return bool(a == b)


def round_trip(value: Any) -> Any:
    back = loads(dumps(value))
    assert same(back, value), f"{value!r} came back as {back!r}"
    return back


def test_same_rejects_what_it_must() -> None:
    assert not same((1,), [1])
    assert not same({1}, frozenset({1}))
    assert not same({True}, {1})
    assert not same(Decimal("1.0"), Decimal("1.00"))
    assert not same(dt.date(2020, 1, 1), dt.datetime(2020, 1, 1))
    assert not same(dt.datetime(2020, 1, 1, fold=1), dt.datetime(2020, 1, 1))
    assert not same(
        dt.datetime(2020, 1, 1, tzinfo=UTC), dt.datetime(2020, 1, 1, 1, tzinfo=_offset(hours=1))
    )  # the same instant, another offset
    assert same(Decimal("NaN"), Decimal("NaN"))
    assert same({float("nan"), 1.5}, {1.5, float("nan")})


def _offset(**kwargs: float) -> dt.timezone:
    return dt.timezone(dt.timedelta(**kwargs))


# -- the old types' bytes are unchanged ---------------------------------------------------------

# Computed with the codec as it was before these types were added (commit 115db4b): an entry
# written by that version must decode to the same value, and the same value must give the same
# bytes (a shared tier or a disk shared by two versions during a deploy sees both).
PINNED = [
    ("héllo", "730000000668c3a96c6c6f"),
    (b"\x00\xff", "620000000200ff"),
    (-(2**70), "69000000172d31313830353931363230373137343131333033343234"),
    (-0.0, "668000000000000000"),
    ([True, False, None], "6c0000000354464e"),
    (
        {"a": [1, "x", {"b": b"y"}], "": 2.5},
        "64000000027300000001616c0000000369000000013173000000017864000000017300000001626200000001"
        "797300000000664004000000000000",
    ),
]


@pytest.mark.parametrize(("value", "encoded"), PINNED, ids=[repr(v) for v, _ in PINNED])
def test_old_types_keep_their_bytes(value: Any, encoded: str) -> None:
    assert dumps(value).hex() == encoded
    assert same(loads(bytes.fromhex(encoded)), value)


# -- round trips --------------------------------------------------------------------------------

DECIMALS = [
    "12.3400",
    "0",
    "-0",
    "0E-7",
    "-0E+3",
    "0.000",
    "1.2340E-7",
    "1E+999999999999999999",
    "-1E-999999999999999999",
    "123456789012345678901234567890.123456789012345678901234567890",
    "NaN",
    "-NaN",
    "NaN123",
    "sNaN",
    "-sNaN42",
    "Infinity",
    "-Infinity",
]


@pytest.mark.parametrize("text", DECIMALS)
def test_decimal_keeps_its_exact_str(text: str) -> None:
    value = Decimal(text)
    back = round_trip(value)
    assert type(back) is Decimal
    assert str(back) == str(value)
    assert back.as_tuple() == value.as_tuple()  # sign, digits and exponent
    assert back.is_nan() == value.is_nan()
    assert back.is_snan() == value.is_snan()


DATETIMES = [
    dt.datetime(2024, 5, 6, 7, 8, 9),
    dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
    dt.datetime(1, 1, 1),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    dt.datetime(2024, 11, 3, 1, 30, fold=1),
    dt.datetime(2024, 5, 6, 7, 8, 9, 1, tzinfo=UTC),
    dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=_offset(hours=5, minutes=30)),
    dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=_offset(seconds=-30)),  # -00:00:30
    dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=_offset(seconds=-30, microseconds=-7)),
    dt.datetime(2024, 5, 6, tzinfo=_offset(hours=23, minutes=59, seconds=59, microseconds=999999)),
    dt.datetime(2024, 5, 6, tzinfo=_offset(hours=-23, minutes=-59, microseconds=-999999)),
    dt.datetime(1, 1, 1, tzinfo=_offset(hours=-12)),
    dt.datetime(2024, 5, 6, 7, 8, 9, fold=1, tzinfo=_offset(hours=-4)),
]


@pytest.mark.parametrize("value", DATETIMES, ids=repr)
def test_datetime_keeps_fields_fold_and_offset(value: dt.datetime) -> None:
    back = round_trip(value)
    assert type(back) is dt.datetime
    assert back == value
    assert back.fold == value.fold
    assert back.utcoffset() == value.utcoffset()
    assert (back.tzinfo is None) == (value.tzinfo is None)
    if value.tzinfo is not None:
        assert type(back.tzinfo) is dt.timezone


def test_utc_comes_back_as_the_utc_singleton() -> None:
    back = round_trip(dt.datetime(2024, 1, 1, tzinfo=UTC))
    assert back.tzinfo is UTC


def test_named_zone_is_kept_as_its_offset_at_that_instant_fold_included() -> None:
    zone = zoneinfo.ZoneInfo("America/New_York")
    # 01:30 on 2024-11-03 happens twice in New York: fold=0 is EDT (-4 h), fold=1 EST (-5 h).
    first = dt.datetime(2024, 11, 3, 1, 30, tzinfo=zone)
    second = first.replace(fold=1)
    for value, hours in [(first, -4), (second, -5)]:
        back = round_trip(value)
        assert back.tzinfo == _offset(hours=hours)
        assert back.fold == value.fold
        assert back.timestamp() == value.timestamp()  # the same instant
    summer = dt.datetime(2024, 7, 1, 12, tzinfo=zone)
    assert loads(dumps(summer)) == summer  # not in a fold: compares equal across zones


def test_tzinfo_without_an_offset_is_naive_and_comes_back_naive() -> None:
    class Floating(dt.tzinfo):
        def utcoffset(self, when: dt.datetime | None) -> None:
            return None

    value = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=Floating())
    back = loads(dumps(value))
    assert back.tzinfo is None
    assert back == value  # both naive: compared field by field


@pytest.mark.parametrize(
    "value", [dt.date(2024, 2, 29), dt.date(1, 1, 1), dt.date(9999, 12, 31)], ids=str
)
def test_date_stays_a_date(value: dt.date) -> None:
    back = round_trip(value)
    assert type(back) is dt.date


@pytest.mark.parametrize(
    "value",
    [
        uuid.UUID(int=0),
        uuid.UUID(int=2**128 - 1),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
    ],
    ids=str,
)
def test_uuid_round_trips(value: uuid.UUID) -> None:
    back = round_trip(value)
    assert type(back) is uuid.UUID
    assert back.int == value.int


@pytest.mark.parametrize(
    "value",
    [
        (),
        (1,),
        (1, "a", b"b", None, 2.5, True),
        ((), ((),)),
        set(),
        {1, 2, 3},
        {"a", b"a", 1.5, None, Decimal("1.10"), (1, "x"), frozenset({2})},
        frozenset(),
        frozenset({(1, 2), (3, (4, 5))}),
        {float("nan"), -0.0},
    ],
    ids=repr,
)
def test_containers_keep_their_types(value: Any) -> None:
    round_trip(value)


def test_everything_nested_anywhere_keeps_exact_types() -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=_offset(hours=5, minutes=30))
    value = [
        {
            "tuple": (1, [2, {"deep": (Decimal("12.3400"), dt.date(2024, 1, 1))}]),
            "set of tuples": {(1, "a"), (2, "b"), (Decimal("-0"), uuid.UUID(int=7))},
            "frozen": frozenset({when, dt.datetime(2024, 1, 1), frozenset({b"x"})}),
            "list in tuple": ([], [None], {"k": set()}),
        },
        (when, -0.0, float("inf"), Decimal("sNaN")),
    ]
    back = round_trip(value)
    record = back[0]
    assert type(record["tuple"]) is tuple
    assert type(record["tuple"][1]) is list
    assert type(record["tuple"][1][1]["deep"]) is tuple
    assert type(record["set of tuples"]) is set
    assert all(type(item) is tuple for item in record["set of tuples"])
    assert type(record["frozen"]) is frozenset
    assert frozenset({b"x"}) in record["frozen"]
    assert type(record["list in tuple"]) is tuple
    assert type(record["list in tuple"][2]["k"]) is set


def test_dynamodb_like_item_through_a_fresh_cache(make_cache: Any) -> None:
    item = {
        "pk": "user#1",
        "balance": Decimal("12.3400"),
        "count": Decimal("7"),
        "tags": {"a", "b"},
        "scores": {Decimal("1.5"), Decimal("2")},
        "blobs": {b"\x00", b"\x01"},
        "profile": {"created": dt.datetime(2024, 1, 2, tzinfo=UTC), "id": uuid.UUID(int=42)},
        "history": [(dt.date(2024, 1, 1), Decimal("-0.10"))],
    }
    make_cache().set("item", item)
    fresh = make_cache()  # empty memory: the value comes from disk
    back = fresh.get("item")
    assert fresh.stats()["disk_hits"] == 1
    assert same(back, item)


def test_equal_sets_give_equal_bytes_whatever_their_order_or_hash_seed(
    python_subprocess: Any,
) -> None:
    words = [f"word{i}" for i in range(50)]
    backward: set[str] = set()
    for word in reversed(words):  # another insertion order
        backward.add(word)
    assert dumps(set(words)) == dumps(backward) == dumps(set(words) | {"word0"})
    assert dumps(frozenset(words))[1:] == dumps(set(words))[1:]  # only the tag differs
    code = """
        import sys
        from tiered_cache import _serial
        words = {f"word{i}" for i in range(50)} | {b"x", (1, "t"), 2.5}
        sys.stdout.write(_serial.dumps(words, "safe").hex())
    """
    outputs = {
        python_subprocess(code, env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1  # str hashes (so set orders) differ between those seeds


def test_set_and_frozenset_have_their_own_tags() -> None:
    assert dumps({1}) != dumps(frozenset({1}))
    assert type(loads(dumps({1}))) is set
    assert type(loads(dumps(frozenset({1})))) is frozenset


# -- refused: subclasses, non-str keys, other types ---------------------------------------------


class Point(NamedTuple):
    x: int
    y: int


class Color(enum.IntEnum):
    RED = 1


class MyStr(str):
    pass


class MySet(set[int]):
    pass


class MyDatetime(dt.datetime):
    pass


class MyDate(dt.date):
    pass


class MyDecimal(Decimal):
    pass


class MyUUID(uuid.UUID):
    pass


class MyFloat(float):
    pass


SUBCLASSES = [
    MyStr("x"),
    collections.OrderedDict(a=1),
    collections.defaultdict(list),
    collections.Counter("ab"),
    Point(1, 2),
    Color.RED,
    MySet({1}),
    MyDatetime(2024, 1, 1),
    MyDate(2024, 1, 1),
    MyDecimal("1.0"),
    MyUUID(int=1),
    MyFloat(1.5),
]


@pytest.mark.parametrize("value", SUBCLASSES, ids=lambda v: type(v).__name__)
def test_subclasses_are_refused_with_the_usual_error(value: Any) -> None:
    with pytest.raises(TypeError, match=type(value).__qualname__) as info:
        dumps(value)
    _assert_names_the_ways_out(str(info.value))
    with pytest.raises(TypeError, match=type(value).__qualname__):
        dumps({"nested": [(value,)]})  # refused wherever it sits


def _assert_names_the_ways_out(message: str) -> None:
    for stored in ["tuple", "frozenset", "datetime.date", "decimal.Decimal", "uuid.UUID"]:
        assert stored in message
    assert "serializer='pickle'" in message
    assert "TIERED_CACHE_SERIALIZER=pickle" in message
    assert "persist=False" in message


@pytest.mark.parametrize(
    "value",
    [
        1j,
        bytearray(b"x"),
        memoryview(b"x"),
        object(),
        range(3),
        # Other classes of the lazily imported modules: the module is right, the class is not.
        dt.time(1),
        dt.timedelta(1),
        decimal.Context(),
        uuid.SafeUUID.safe,
    ],
    ids=lambda v: type(v).__name__,
)
def test_other_types_are_still_refused(value: Any) -> None:
    with pytest.raises(TypeError) as info:
        dumps(value)
    _assert_names_the_ways_out(str(info.value))


@pytest.mark.parametrize("key", [1, ("a",), b"k", None, Decimal(1), MyStr("k")], ids=repr)
def test_dict_keys_stay_str_only(key: Any) -> None:
    with pytest.raises(TypeError, match="str keys only") as info:
        dumps({key: 1})
    assert "serializer='pickle'" in str(info.value)
    assert "persist=False" in str(info.value)


def test_tuples_and_sets_count_towards_the_depth_limit() -> None:
    deep: Any = ()
    for _ in range(100):
        deep = (deep,)
    with pytest.raises(TypeError, match="deeper"):
        dumps(deep)
    frozen: Any = frozenset()
    for _ in range(100):
        frozen = frozenset({frozen})
    with pytest.raises(TypeError, match="deeper"):
        dumps(frozen)


# -- hostile and damaged bytes ------------------------------------------------------------------

RICH = {
    "t": (1, "a", (b"b", None)),
    "s": {1, "x", (2, 3)},
    "f": frozenset({Decimal("1.50")}),
    "n": [Decimal("12.3400"), Decimal("-sNaN7"), Decimal("-Infinity")],
    "D": [
        dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        dt.datetime(2024, 1, 2, tzinfo=_offset(seconds=-30)),
    ],
    "y": dt.date(2024, 2, 29),
    "U": uuid.UUID(int=12345),
}


def test_every_truncation_raises_valueerror_and_nothing_else() -> None:
    data = dumps(RICH)
    for cut in range(len(data)):
        with pytest.raises(ValueError):  # pytest.raises lets any other type through: a failure
            loads(data[:cut])


def test_every_damaged_byte_raises_valueerror_or_decodes() -> None:
    data = dumps(RICH)
    for pos in range(len(data)):
        for flip in (0x01, 0x20, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[pos] ^= flip
            try:
                loads(bytes(damaged))
            except ValueError:
                pass  # the only exception allowed


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _datetime_bytes(month: int = 1, flags: int = 0, offset: bytes = b"") -> bytes:
    return (
        b"D"
        + (2024).to_bytes(2, "big")
        + bytes([month, 1, 0, 0, 0])
        + _u32(0)
        + bytes([flags])
        + offset
    )


HOSTILE = {
    "unknown tag": b"?",
    "empty tag after a tuple": b"t" + _u32(1),
    "tuple count too large": b"t\xff\xff\xff\xff",
    "set count too large": b"S\xff\xff\xff\xff",
    "frozenset count too large": b"Z" + _u32(5) + b"N",
    "tuples nested too deep": b"t\x00\x00\x00\x01" * 300 + b"N",
    "sets nested too deep": b"Z\x00\x00\x00\x01" * 300 + b"N",
    "lists nested too deep": b"l\x00\x00\x00\x01" * 300 + b"N",
    "dicts nested too deep": b"d\x00\x00\x00\x01s\x00\x00\x00\x00" * 300 + b"N",
    "list in a set": b"S" + _u32(1) + b"l" + _u32(0),
    "list in a tuple in a frozenset": b"Z" + _u32(1) + b"t" + _u32(1) + b"l" + _u32(0),
    "dict in a set": b"S" + _u32(1) + b"d" + _u32(0),
    "tuple as a dict key": b"d" + _u32(1) + b"t" + _u32(0) + b"N",
    "Decimal that is not a number": b"n" + _u32(3) + b"abc",
    "Decimal with an impossible exponent": b"n" + _u32(24) + b"1e9999999999999999999999",
    "Decimal that is not ascii": b"n" + _u32(2) + "\u0661".encode(),
    "Decimal truncated": b"n" + _u32(9) + b"1.0",
    "datetime month 13": _datetime_bytes(month=13),
    "datetime unknown flags": _datetime_bytes(flags=4),
    "datetime fold 1 with unknown bits": _datetime_bytes(flags=0x81),
    "datetime offset of a whole day": _datetime_bytes(
        flags=2, offset=(86_400 * 10**6).to_bytes(8, "big", signed=True)
    ),
    "datetime offset of the most negative i64": _datetime_bytes(
        flags=2, offset=b"\x80" + b"\x00" * 7
    ),
    "datetime aware without its offset": _datetime_bytes(flags=2),
    "datetime truncated": b"D\x07\xe8\x01",
    "date year 0": b"y\x00\x00\x01\x01",
    "date February 30": b"y\x07\xe8\x02\x1e",
    "date truncated": b"y\x07",
    "UUID truncated": b"U" + bytes(15),
    "UUID then trailing bytes": b"U" + bytes(17),
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_bytes_raise_valueerror(data: bytes) -> None:
    with pytest.raises(ValueError):
        loads(data)


def test_malformed_decimal_raises_even_when_the_thread_context_does_not_trap() -> None:
    with decimal.localcontext() as context:
        context.traps[decimal.InvalidOperation] = False
        assert Decimal("abc").is_nan()  # what a plain Decimal(text) would have returned
        with pytest.raises(ValueError):
            loads(b"n" + _u32(3) + b"abc")
        assert str(loads(dumps(Decimal("-NaN12")))) == "-NaN12"


# -- import cost --------------------------------------------------------------------------------


def test_codec_imports_decimal_and_uuid_only_when_it_meets_them(
    python_subprocess: Any, tmp_path: Path
) -> None:
    code = """
        import sys
        from tiered_cache import _serial
        def loaded():
            return sorted(m for m in ("decimal", "uuid") if m in sys.modules)
        assert loaded() == [], loaded()
        data = _serial.dumps({"a": [1, 2.5, "x", b"y", None, (1,), {2}, frozenset()]}, "safe")
        _serial.loads(data, "safe")
        assert loaded() == [], loaded()
        with open(sys.argv[1], "rb") as f:
            value = _serial.loads(f.read(), "safe")
        print(type(value).__name__, value, loaded())
    """
    for value, expected in [
        (uuid.UUID(int=5), "UUID 00000000-0000-0000-0000-000000000005 ['uuid']"),
        (Decimal("1.50"), "Decimal 1.50 ['decimal']"),
    ]:
        path = tmp_path / "payload"
        path.write_bytes(dumps(value))
        assert python_subprocess(code, str(path)).stdout.strip() == expected
