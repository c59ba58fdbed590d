"""Issue 5, item 14: property tests (hypothesis).

Any value the safe serializer accepts comes back equal, with the same types (bool stays bool,
int stays int, -0.0 keeps its sign, NaN stays NaN), from a fresh cache and from a fresh
process; any key string round-trips and no two keys share an entry.
"""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
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
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(alphabet=st.characters(exclude_categories=())), inner, max_size=5)
    ),
    max_leaves=25,
)
KEYS = st.text(alphabet=st.characters(exclude_categories=()), max_size=300)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (NaN equals NaN, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def test_same_rejects_what_it_must() -> None:
    assert not same(1, True)
    assert not same(1, 1.0)
    assert not same(0.0, -0.0)
    assert not same(b"a", "a")
    assert not same([1], (1,))
    assert same(float("nan"), float("nan"))
    assert same({"a": [1, None]}, {"a": [1, None]})


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


@settings(max_examples=300, deadline=None, database=None)
@given(value=st.one_of(st.sets(st.integers()), st.tuples(st.integers()), st.complex_numbers()))
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
