"""Item 7: the safe serializer, the opt-in pickle, and the envelope that carries TTL metadata.

A planted pickle is never executed: see test_planted_* below (real diskcache, real files).
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest

from tiered_cache import _entry, _serial
from tiered_cache._disk import disk_key
from tiered_cache._entry import FLAG_PICKLE, MISSING, Entry, Missing

SAFE_VALUES: list[Any] = [
    "",
    "héllo \U0001f600",
    "\udc80 lone surrogate",
    b"",
    b"\x00\xff raw",
    0,
    -(2**100),
    2**64 + 1,
    0.0,
    -1.5,
    float("inf"),
    True,
    False,
    None,
    [],
    {},
    [1, "a", b"b", None, [True, 2.5], {"k": [False]}],
    {"nested": {"list": [1, 2, {"deep": None}]}, "": b""},
]


@pytest.mark.parametrize("value", SAFE_VALUES, ids=repr)
def test_safe_round_trip_keeps_value_and_types(value: Any) -> None:
    back = _serial.loads(_serial.dumps(value, _serial.SAFE), _serial.SAFE)
    assert back == value
    assert _types(back) == _types(value)


def _types(value: Any) -> Any:
    if isinstance(value, list):
        return ["list", [_types(v) for v in value]]
    if isinstance(value, dict):
        return ["dict", {k: _types(v) for k, v in value.items()}]
    return type(value).__name__


def test_safe_keeps_bool_apart_from_int_and_nan_survives() -> None:
    back = _serial.loads(_serial.dumps([True, 1, False, 0], _serial.SAFE), _serial.SAFE)
    assert [type(v) for v in back] == [bool, int, bool, int]
    nan = _serial.loads(_serial.dumps(float("nan"), _serial.SAFE), _serial.SAFE)
    assert nan != nan


class Custom:
    pass


@pytest.mark.parametrize(
    "value",
    [1j, Custom(), {1: "int key"}, [b"ok", (3, 1j)], {"k": frozenset({Custom()})}, bytearray(b"x")],
    ids=lambda v: type(v).__name__,
)
def test_safe_refuses_other_types_naming_pickle(value: Any) -> None:
    with pytest.raises(TypeError, match="serializer='pickle'"):
        _serial.dumps(value, _serial.SAFE)


def test_safe_refuses_subclasses_of_supported_types() -> None:
    class MyStr(str):
        pass

    with pytest.raises(TypeError, match="MyStr"):
        _serial.dumps(MyStr("x"), _serial.SAFE)


def test_safe_refuses_values_nested_too_deep() -> None:
    deep: Any = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(TypeError, match="deeper"):
        _serial.dumps(deep, _serial.SAFE)
    deep_dict: Any = {}
    for _ in range(100):
        deep_dict = {"k": deep_dict}
    with pytest.raises(TypeError, match="deeper"):
        _serial.dumps(deep_dict, _serial.SAFE)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"Z",
        b"s\x00\x00\x00\x09abc",  # length beyond the data
        b"s\x00\x00",  # truncated length
        b"l\xff\xff\xff\xff",  # impossible count
        b"d\x00\x00\x00\x01i\x00\x00\x00\x011N",  # int dict key
        b"NN",  # trailing bytes
        b"s\x00\x00\x00\x01\xff",  # invalid utf-8... ("surrogatepass" still rejects 0xff)
        b"f\x00\x00",  # truncated float
        b"i\x00\x00\x00\x01x",  # not digits
        b"l" * 300,  # too deep
    ],
)
def test_safe_loads_rejects_malformed_bytes_with_valueerror(data: bytes) -> None:
    with pytest.raises(ValueError):
        _serial.loads(data, _serial.SAFE)


def test_pickle_serializer_stores_any_object_and_reports_bad_pickles() -> None:
    value = {"tuple": (1, 2), "set": {3}, 4: Custom.__name__}
    assert _serial.loads(_serial.dumps(value, _serial.PICKLE), _serial.PICKLE) == value
    with pytest.raises(ValueError, match="malformed pickle"):
        _serial.loads(b"not a pickle", _serial.PICKLE)


# -- the envelope ----


def _envelope(key: str = "k", value: Any = "v", version: str | None = "etag-1") -> bytes:
    entry = Entry(value, 10.0, 70.0, 100.0, version)
    return _entry.encode(key, entry, _serial.dumps(value, _serial.SAFE), 0)


def test_envelope_round_trips_value_and_ttl_metadata() -> None:
    back = _entry.decode("k", _envelope(), _serial.SAFE)
    assert (back.value, back.stored_at, back.expires_at, back.stale_until, back.version) == (
        "v",
        10.0,
        70.0,
        100.0,
        "etag-1",
    )
    assert back.size == len(_serial.dumps("v", _serial.SAFE))
    assert _entry.decode("k", _envelope(version=None), _serial.SAFE).version is None
    assert "etag-1" in repr(back)


def test_envelope_of_another_key_is_refused() -> None:
    with pytest.raises(ValueError, match="another key"):
        _entry.decode("other", _envelope("k"), _serial.SAFE)


def test_every_truncation_and_every_flipped_byte_is_refused() -> None:
    data = _envelope(value={"a": [1, 2, 3], "b": "x" * 40})
    for cut in range(len(data)):
        with pytest.raises(ValueError):
            _entry.decode("k", data[:cut], _serial.SAFE)
    head = struct.calcsize("!3sBdddI")
    for pos in [0, 1, 2, head, head + 1, len(data) - 1, len(data) // 2 + 10]:
        damaged = bytearray(data)
        damaged[pos] ^= 0x5A
        with pytest.raises(ValueError):
            _entry.decode("k", bytes(damaged), _serial.SAFE)


def test_pickled_envelope_refused_by_safe_and_read_by_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = pickle.dumps(_Planted(str(marker)))
    data = _entry.encode("k", Entry(None, 1.0, 2.0, 2.0), payload, FLAG_PICKLE)
    with pytest.raises(ValueError, match="refused"):
        _entry.decode("k", data, _serial.SAFE)
    assert not marker.exists()
    # The opt-in serializer does unpickle (which is why it is opt-in).
    _entry.decode("k", data, _serial.PICKLE)
    assert marker.exists()


def test_missing_sentinel_is_a_typed_enum_member_not_none() -> None:
    assert isinstance(MISSING, Missing)
    assert MISSING is not None
    assert MISSING is Missing.MISSING


class _Planted:
    """Unpickling this creates ``path``: proof that a payload ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


# -- planted pickles in the real store ----


def test_planted_diskcache_pickle_is_a_miss_never_runs_and_is_removed(
    make_cache: Any, tmp_path: Path
) -> None:
    import diskcache

    cache = make_cache()
    cache.set("warm", "up")  # the store exists
    disk = cache._disk
    marker = tmp_path / "planted-ran"
    plain = diskcache.Cache(disk.db_dir)  # the default Disk pickles objects
    try:
        plain.set(disk_key("victim"), _Planted(str(marker)))
        assert disk_key("victim") in plain
    finally:
        plain.close()

    fresh = make_cache()  # nothing in memory: the read goes to disk
    assert fresh.get("victim", "MISS") == "MISS"
    assert fresh.get_or_load("victim", lambda: "loaded") == "loaded"
    assert not marker.exists()
    assert fresh.stats()["disk_corrupt"] >= 1

    check = diskcache.Cache(disk.db_dir)
    try:
        raw = check.get(disk_key("victim"), read=True)
    finally:
        check.close()
    # The planted row is gone; what is there now is our own envelope of "loaded".
    assert raw is not None
    assert b"loaded" in (raw.read() if hasattr(raw, "read") else raw)
    assert not marker.exists()


def test_planted_pickle_envelope_row_is_a_miss_and_removed(make_cache: Any, tmp_path: Path) -> None:
    import diskcache

    cache = make_cache()
    cache.set("warm", "up")
    marker = tmp_path / "planted-ran"
    payload = pickle.dumps(_Planted(str(marker)))
    data = _entry.encode("victim", Entry(None, 0.0, 2e12, 2e12), payload, FLAG_PICKLE)
    plain = diskcache.Cache(cache._disk.db_dir)
    try:
        plain.set(disk_key("victim"), data)
    finally:
        plain.close()
    fresh = make_cache()
    assert fresh.get("victim", "MISS") == "MISS"
    assert not marker.exists()
    check = diskcache.Cache(cache._disk.db_dir)
    try:
        assert disk_key("victim") not in check
    finally:
        check.close()


def test_planted_file_reference_row_is_refused(make_cache: Any, tmp_path: Path) -> None:
    import diskcache

    cache = make_cache()
    cache.set("warm", "up")
    plain = diskcache.Cache(cache._disk.db_dir, disk_min_file_size=0)
    try:
        plain.set(disk_key("victim"), b"x" * 100)  # stored as a file by diskcache
        assert os.listdir(cache._disk.db_dir)
    finally:
        plain.close()
    fresh = make_cache()
    assert fresh.get("victim", "MISS") == "MISS"
    check = diskcache.Cache(cache._disk.db_dir)
    try:
        assert disk_key("victim") not in check
    finally:
        check.close()


def test_pickle_opt_in_stores_any_object_on_disk(make_cache: Any) -> None:
    cache = make_cache(serializer="pickle")
    cache.set("k", {"tuple": (1, 2), "set": frozenset({3})})
    other = make_cache(serializer="pickle")
    assert other.get("k") == {"tuple": (1, 2), "set": frozenset({3})}
    assert other.stats()["disk_hits"] == 1
    # A safe reader of the same directory refuses those rows instead of unpickling them.
    safe = make_cache()
    assert safe.get("k", "MISS") == "MISS"


def test_safe_cache_refuses_unsupported_value_with_typeerror_and_stores_nothing(
    make_cache: Any,
) -> None:
    cache = make_cache()
    with pytest.raises(TypeError, match="serializer='pickle'"):
        cache.set("k", (1, 2j))
    assert cache.get("k", "MISS") == "MISS"
    with pytest.raises(TypeError, match="serializer='pickle'"):
        cache.set("k", {"nested": [{"bad": Custom()}]})
    assert cache.get("k", "MISS") == "MISS"
    # Memory-only values may be anything.
    custom = Custom()
    cache.set("m", (1, custom), persist=False)
    assert cache.get("m") == (1, custom)
