"""Issue 5, item 14: property tests (hypothesis).

Any value the safe serializer accepts comes back equal, with the same types (bool stays bool,
int stays int, a tuple stays a tuple, a frozenset a frozenset, -0.0 keeps its sign, NaN stays
NaN, a Decimal keeps its exponent, a datetime its fields, fold and offset), from a fresh cache
and from a fresh process; equal sets give equal bytes; every truncated or damaged encoding
raises ValueError and nothing else; any key string round-trips and no two keys share an entry.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import pickle
import subprocess
import sys
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tiered_cache as tiered
from tiered_cache import _serial

from .conftest import WORKER, Runs, worker_env

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec=None, exclude_categories=()))  # surrogates too
    | st.binary()
)
#: Exponents of every size, signed zeros, NaN payloads, signalling NaNs, infinities.
DECIMALS = (
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.builds(
        lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
        st.integers(0, 1),
        st.lists(st.integers(0, 9), min_size=1, max_size=40),
        st.integers(-(10**17), 10**17) | st.integers(-12, 12),
    )
    | st.sampled_from(["-0", "0E-7", "-0E+3", "12.3400", "NaN12", "-sNaN7", "-Infinity"]).map(
        Decimal
    )
)
_DAY_US = 86_400 * 10**6
#: Fixed offsets to the microsecond (strictly within a day), and named zones when the system
#: has a zone database (stored as their offset at that instant).
ZONES = st.none() | st.builds(
    lambda us: dt.timezone(dt.timedelta(microseconds=us)),
    st.integers(-_DAY_US + 1, _DAY_US - 1) | st.sampled_from([0, 19_800 * 10**6, -30 * 10**6]),
)
if zoneinfo.available_timezones():
    ZONES = ZONES | st.timezones()
DATETIMES = st.builds(
    lambda when, fold: when.replace(fold=fold), st.datetimes(timezones=ZONES), st.integers(0, 1)
)
NEW_SCALARS = DECIMALS | DATETIMES | st.dates() | st.uuids()
#: What a set may hold: hashable safe values (a signalling NaN cannot be hashed).
HASHABLE = st.recursive(
    SCALARS | DECIMALS.filter(lambda d: not d.is_snan()) | DATETIMES | st.dates() | st.uuids(),
    lambda inner: st.lists(inner, max_size=4).map(tuple) | st.frozensets(inner, max_size=4),
    max_leaves=8,
)
VALUES = st.recursive(
    SCALARS | NEW_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(alphabet=st.characters(exclude_categories=())), inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.sets(HASHABLE, max_size=5)
        | st.frozensets(HASHABLE, max_size=5)
    ),
    max_leaves=25,
)
KEYS = st.text(alphabet=st.characters(exclude_categories=()), max_size=300)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (NaN equals NaN, -0.0 is not 0.0).

    A Decimal must have the same ``str()`` (so the same exponent; NaN payloads included), a
    datetime the same wall fields, fold and UTC offset (a named zone comes back as its offset).
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
    if type(a) is list or type(a) is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if type(a) is set or type(a) is frozenset:
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    return bool(a == b)


def test_same_rejects_what_it_must() -> None:
    assert not same(1, True)
    assert not same(1, 1.0)
    assert not same(0.0, -0.0)
    assert not same(b"a", "a")
    assert not same([1], (1,))
    assert not same({1}, frozenset({1}))
    assert not same({1}, {True})
    assert not same((1, [2]), (1, (2,)))
    assert not same(Decimal("1.0"), Decimal("1.00"))
    assert not same(Decimal("NaN1"), Decimal("NaN2"))
    assert not same(dt.date(2024, 1, 1), dt.datetime(2024, 1, 1))
    assert not same(dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, fold=1))
    utc = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert not same(utc, utc.astimezone(dt.timezone(dt.timedelta(hours=1))))  # same instant
    assert same(float("nan"), float("nan"))
    assert same(Decimal("-sNaN3"), Decimal("-sNaN3"))
    assert same({"a": [1, None]}, {"a": [1, None]})
    assert same({float("nan"), (1, "x")}, {(1, "x"), float("nan")})


def test_safe_values_round_trip_in_a_fresh_cache_and_a_fresh_process(
    tmp_path: Path, runs: Runs
) -> None:
    directory = str(tmp_path / "c")
    examples: list[Any] = []
    examples_count = runs(200, 2000)

    @settings(
        max_examples=examples_count,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(value=VALUES)
    def store_and_read(value: Any) -> None:
        assert same(_serial.loads(_serial.dumps(value, "safe"), "safe"), value)
        key = f"v{len(examples)}"
        writer = tiered.TieredCache(directory=directory, ttl=3600, jitter=0)
        writer.set(key, value)
        reader = tiered.TieredCache(directory=directory, ttl=3600, jitter=0)  # empty memory
        got = reader.get(key, KeyError)
        assert same(got, value), f"{value!r} came back as {got!r}"
        examples.append(value)
        runs.progress("examples", len(examples), examples_count)

    store_and_read()
    assert examples, "hypothesis generated nothing"
    got = read_in_fresh_process(tmp_path, directory, [f"v{i}" for i in range(len(examples))])
    for i, (value, result) in enumerate(zip(examples, got, strict=True)):
        assert result is not None, f"v{i} missing in a fresh process"
        assert same(result[0], value), f"v{i}: {value!r} came back as {result[0]!r}"


def read_in_fresh_process(tmp_path: Path, directory: str, keys: list[str]) -> list[Any]:
    keys_file = tmp_path / "keys.pickle"
    keys_file.write_bytes(pickle.dumps(keys))
    out = subprocess.run(
        [sys.executable, WORKER, "read_values", directory, str(keys_file), "safe"],
        capture_output=True,
        env=worker_env(),
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    result: list[Any] = pickle.loads(out.stdout)  # our own child's output, trusted
    return result


def test_safe_codec_round_trips_every_safe_type_with_exact_types(runs: Runs) -> None:
    count = runs(500, 5000)

    @settings(max_examples=count, deadline=None, database=None)
    @given(value=VALUES)
    def check(value: Any) -> None:
        data = _serial.dumps(value, "safe")
        back = _serial.loads(data, "safe")
        assert same(back, value), f"{value!r} came back as {back!r}"
        assert _serial.dumps(back, "safe") == data  # what comes back is stored the same way

    check()


@settings(max_examples=300, deadline=None, database=None)
@given(items=st.lists(HASHABLE, max_size=10), frozen=st.booleans())
def test_equal_sets_give_equal_bytes_whatever_the_insertion_order(
    items: list[Any], frozen: bool
) -> None:
    make = frozenset if frozen else set
    forward = make(items)
    backward = make(reversed(items))
    if not same(forward, backward):  # NaN or 1 == True == 1.0: the first one added is kept
        return
    assert _serial.dumps(forward, "safe") == _serial.dumps(backward, "safe")


@settings(max_examples=150, deadline=None, database=None)
@given(value=VALUES)
def test_every_truncation_raises_valueerror(value: Any) -> None:
    data = _serial.dumps(value, "safe")
    for cut in range(len(data)):
        with pytest.raises(ValueError):  # any other exception fails the test
            _serial.loads(data[:cut], "safe")


@settings(max_examples=300, deadline=None, database=None)
@given(value=VALUES, edits=st.lists(st.tuples(st.integers(0), st.integers(0, 255)), min_size=1))
def test_damaged_bytes_raise_valueerror_or_decode(value: Any, edits: list[tuple[int, int]]) -> None:
    damaged = bytearray(_serial.dumps(value, "safe"))
    for where, byte in edits:
        damaged[where % len(damaged)] = byte
    try:
        _serial.loads(bytes(damaged), "safe")
    except ValueError:
        pass  # the only exception allowed


UNSUPPORTED = st.one_of(
    st.complex_numbers(),
    st.lists(st.complex_numbers(), min_size=1, max_size=3),
    st.tuples(st.integers(), st.complex_numbers()),
    st.frozensets(st.complex_numbers(), min_size=1, max_size=3),
    st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=3),  # non-str keys
    st.timedeltas(),
    st.times(),
    st.builds(bytearray, st.binary()),
)


@settings(max_examples=300, deadline=None, database=None)
@given(value=UNSUPPORTED)
def test_unsupported_values_are_refused_and_nothing_is_stored(
    value: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = str(tmp_path_factory.getbasetemp() / "refused")
    cache = tiered.TieredCache(directory=directory)
    with pytest.raises(TypeError, match="serializer='pickle'"):
        cache.set("k", value)
    assert cache.get("k") is None


def test_any_key_round_trips(tmp_path: Path, runs: Runs) -> None:
    directory = str(tmp_path / "c")
    keys: list[str] = []
    count = runs(200, 2000)

    @settings(max_examples=count, deadline=None, database=None)
    @given(key=KEYS)
    def store(key: str) -> None:
        if key in keys:
            return
        cache = tiered.TieredCache(directory=directory, ttl=3600)
        cache.set(key, ["value of", key])
        assert tiered.TieredCache(directory=directory, ttl=3600).get(key) == ["value of", key]
        keys.append(key)

    store()
    fresh = tiered.TieredCache(directory=directory, ttl=3600)
    for key in keys:  # no two keys collide
        assert fresh.get(key) == ["value of", key]
    got = read_in_fresh_process(tmp_path, directory, keys)
    assert [r[0] if r else None for r in got] == [["value of", k] for k in keys]
    names = os.listdir(os.path.join(directory, "db"))
    assert set(names) <= {"cache.db", "cache.db-wal", "cache.db-shm"}


@pytest.mark.parametrize("make", [lambda: {"a": 1}, lambda: [b"x", 1.5, None]])
def test_pickle_serializer_is_opt_in(tmp_path: Path, make: Callable[[], Any]) -> None:
    directory = str(tmp_path / "c")
    tiered.TieredCache(directory=directory, serializer="pickle").set("k", make())
    assert tiered.TieredCache(directory=directory, serializer="pickle").get("k") == make()
    # A cache with the safe serializer never unpickles it: a miss (and the row is dropped).
    assert tiered.TieredCache(directory=directory).get("k") is None
