"""CloudWatch metrics (``tiered_cache._metrics``): one Embedded Metric Format line per invocation,
validated against the format's JSON schema (``tests/fixtures/emf-schema.json``, written from
AWS's published specification) and against the references the schema cannot express.

What the handler decorators will call is ``after_invocation(metrics=None)``; these tests call it
as they would, after a handler's work, on real caches (a real diskcache, a fake clock). Counts
are deltas since the previous line; nothing is written when nothing moved; a stack of two
decorators (two calls) writes one line; a bad variable is logged once; a Powertools
``Metrics`` object (the real one) gets the same numbers instead of stdout.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import jsonschema
import pytest

import tiered_cache as tiered
from tiered_cache import _metrics

SCHEMA_PATH = Path(__file__).resolve().parent / "fixtures" / "emf-schema.json"
VALIDATOR = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
NAMES = [name for name, _ in _metrics.METRICS]


def emf_document(line: str) -> dict[str, Any]:
    """``line`` parsed, checked against the schema and against the specification's references:
    every dimension key is a root member holding a string, every metric name a root member
    holding a number (or at most 100 numbers)."""
    document = json.loads(line)
    VALIDATOR.validate(document)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for key in dimension_set:
                assert isinstance(document.get(key), str), key
        for definition in directive["Metrics"]:
            value = document.get(definition["Name"])
            values = value if isinstance(value, list) else [value]
            assert len(values) <= 100
            for number in values:
                assert isinstance(number, (int, float)), value
                assert not isinstance(number, bool), value
    return document


class Lines:
    """The EMF lines written to stdout since the last look."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self) -> list[dict[str, Any]]:
        out = self.capsys.readouterr().out
        return [emf_document(line) for line in out.splitlines() if line.strip()]

    def one(self) -> dict[str, Any]:
        lines = self()
        assert len(lines) == 1, lines
        return lines[0]


@pytest.fixture
def emf(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Lines]:
    """``TIERED_CACHE_METRICS=emf`` in a Lambda function named "orders", read afresh; counts
    from here on (caches of earlier tests are still alive in this process)."""
    monkeypatch.setenv("TIERED_CACHE_METRICS", "emf")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders")
    _metrics._reset()
    lines = Lines(capsys)
    yield lines
    _metrics._reset()


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """The environment is read again on the next call (the test sets it first)."""
    _metrics._reset()
    yield
    _metrics._reset()


def slow_loader(clock: Any, seconds: float, value: Any = "v") -> Callable[[], Any]:
    """A loader that takes ``seconds`` by the fake clock."""

    def load() -> Any:
        clock.advance(seconds)
        return value

    return load


def metrics_of(document: dict[str, Any]) -> dict[str, Any]:
    return {name: document[name] for name in NAMES}


def expected(**counts: float) -> dict[str, float]:
    return {name: counts.get(name, 0) for name in NAMES}


# -- the line ---------------------------------------------------------------------------------


def test_one_line_holds_the_counts_and_validates(
    emf: Lines, make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    cache = make_cache()
    before = time.time() * 1000
    assert cache.get_or_load("a", slow_loader(fake_clock, 0.25)) == "v"
    assert cache.get("a") == cache.get("a") == "v"
    other = make_cache()  # another process's view of the same disk
    assert other.get("a") == "v"
    _metrics.after_invocation()
    document = emf.one()
    assert metrics_of(document) == expected(memory_hits=2, disk_hits=1, loads=1, origin_ms=250.0)
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "TieredCache"
    assert directive["Dimensions"] == [["function_name"]]
    assert document["function_name"] == "orders"
    units = {d["Name"]: d["Unit"] for d in directive["Metrics"]}
    assert units == {**dict.fromkeys(NAMES, "Count"), "origin_ms": "Milliseconds"}
    assert before - 1 <= document["_aws"]["Timestamp"] <= time.time() * 1000 + 1


def test_counts_are_deltas_since_the_previous_line(
    emf: Lines, make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    cache = make_cache()
    cache.get_or_load("a", slow_loader(fake_clock, 0.1))
    cache.get("a")
    _metrics.after_invocation()
    assert metrics_of(emf.one()) == expected(memory_hits=1, loads=1, origin_ms=100.0)
    cache.get("a")
    cache.get("a")
    cache.get_or_load("b", slow_loader(fake_clock, 0.03))
    _metrics.after_invocation()
    assert metrics_of(emf.one()) == expected(memory_hits=2, loads=1, origin_ms=30.0)


def test_load_errors_and_stale_values_served(
    emf: Lines, make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    cache = make_cache()
    cache.get_or_load("a", lambda: "old", ttl=10, stale_if_error=100)
    _metrics.after_invocation()
    emf()
    fake_clock.advance(11)  # expired, within stale_if_error

    def failing() -> str:
        fake_clock.advance(0.5)
        raise ConnectionError("origin down")

    assert cache.get_or_load("a", failing, ttl=10, stale_if_error=100) == "old"
    with pytest.raises(ConnectionError):
        cache.get_or_load("b", failing)
    _metrics.after_invocation()
    assert metrics_of(emf.one()) == expected(
        loads=2, load_errors=2, stale_served=1, origin_ms=1000.0
    )


def test_a_file_fetch_counts_its_origin_time(
    emf: Lines, make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    cache = make_cache()

    def fetch(dest: IO[bytes], version: str | None) -> str:
        fake_clock.advance(0.4)
        dest.write(b"object body")
        return "etag-1"

    path = cache.load_file("s3:obj", fetch)
    assert Path(path).read_bytes() == b"object body"
    assert cache.stats()["origin_ms"] == 400
    _metrics.after_invocation()
    assert metrics_of(emf.one()) == expected(loads=1, origin_ms=400.0)


# -- nothing to say, nothing written ------------------------------------------------------------


def test_idle_writes_no_line(emf: Lines, make_cache: Callable[..., Any]) -> None:
    cache = make_cache()
    cache.set("a", 1)
    _metrics.after_invocation()  # a set is no hit, load or error
    _metrics.after_invocation()
    assert emf() == []
    cache.get("a")
    _metrics.after_invocation()
    assert metrics_of(emf.one()) == expected(memory_hits=1)
    _metrics.after_invocation()
    assert emf() == []


def test_two_stacked_decorators_write_one_line(
    emf: Lines, make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    """The inner decorator's call writes the invocation's line; the outer one, right after,
    finds nothing changed."""
    cache = make_cache()
    cache.get_or_load("db", slow_loader(fake_clock, 0.02))  # the outer decorator's value
    cache.get_or_load("cfg", slow_loader(fake_clock, 0.01))  # the inner decorator's value
    _metrics.after_invocation()  # inner
    _metrics.after_invocation()  # outer
    lines = emf()
    assert len(lines) == 1
    assert metrics_of(lines[0]) == expected(loads=2, origin_ms=30.0)


def test_off_without_the_variable(
    fresh_settings: None, capsys: pytest.CaptureFixture[str], make_cache: Callable[..., Any]
) -> None:
    cache = make_cache()
    cache.get_or_load("a", lambda: 1)
    cache.get("a")
    assert not _metrics.enabled()
    _metrics.after_invocation()
    assert capsys.readouterr().out == ""


def test_the_environment_is_read_once(
    emf: Lines, monkeypatch: pytest.MonkeyPatch, make_cache: Callable[..., Any]
) -> None:
    cache = make_cache()
    cache.get_or_load("a", lambda: 1)
    _metrics.after_invocation()
    assert emf.one()["function_name"] == "orders"
    monkeypatch.setenv("TIERED_CACHE_METRICS", "off")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "renamed")
    cache.get("a")
    _metrics.after_invocation()
    assert emf.one()["function_name"] == "orders"


# -- configuration ----------------------------------------------------------------------------


def test_namespace_and_no_dimension_outside_lambda(
    fresh_settings: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make_cache: Callable[..., Any],
) -> None:
    monkeypatch.setenv("TIERED_CACHE_METRICS", "EMF ")
    monkeypatch.setenv("TIERED_CACHE_METRICS_NAMESPACE", "Shop/Orders")
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    make_cache().get_or_load("a", lambda: 1)
    _metrics.after_invocation()
    document = Lines(capsys).one()
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Shop/Orders"
    assert directive["Dimensions"] == [[]]
    assert "function_name" not in document
    assert document["loads"] == 1


@pytest.mark.parametrize("value", ["emf2", "json", "1", "cloudwatch"])
def test_a_bad_metrics_variable_is_logged_once_and_ignored(
    fresh_settings: None,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    make_cache: Callable[..., Any],
) -> None:
    monkeypatch.setenv("TIERED_CACHE_METRICS", value)
    cache = make_cache()
    caplog.set_level(logging.WARNING, logger="tiered_cache")
    for _ in range(3):
        cache.get_or_load("a", lambda: 1)
        _metrics.after_invocation()
    records = [r for r in caplog.records if "TIERED_CACHE_METRICS" in r.getMessage()]
    assert len(records) == 1
    assert records[0].levelno >= logging.WARNING
    assert repr(value) in records[0].getMessage()
    assert "'emf'" in records[0].getMessage()  # what is accepted
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("value", ["AWS/Lambda", "x" * 256, "Shop\u00e9", "a\nb", "Shop?"])
def test_a_bad_namespace_is_logged_once_and_the_default_used(
    fresh_settings: None,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    make_cache: Callable[..., Any],
) -> None:
    monkeypatch.setenv("TIERED_CACHE_METRICS", "emf")
    monkeypatch.setenv("TIERED_CACHE_METRICS_NAMESPACE", value)
    caplog.set_level(logging.WARNING, logger="tiered_cache")
    cache = make_cache()
    for _ in range(2):
        cache.get_or_load("a", lambda: 1)
        cache.get("a")
        _metrics.after_invocation()
    documents = Lines(capsys)()
    assert len(documents) == 2
    namespaces = {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in documents}
    assert namespaces == {"TieredCache"}
    records = [r for r in caplog.records if "NAMESPACE" in r.getMessage()]
    assert len(records) == 1


def test_a_function_name_that_needs_escaping_stays_valid_json(
    fresh_settings: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make_cache: Callable[..., Any],
) -> None:
    monkeypatch.setenv("TIERED_CACHE_METRICS", "emf")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", 'odd"name\\x')
    make_cache().get_or_load("a", lambda: 1)
    _metrics.after_invocation()
    assert Lines(capsys).one()["function_name"] == 'odd"name\\x'


# -- Powertools -------------------------------------------------------------------------------


@pytest.fixture
def powertools(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real Powertools ``Metrics`` (its metric set is shared by every instance: cleared)."""
    from aws_lambda_powertools import Metrics

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    metrics = Metrics(namespace="ShopTest", service="orders")
    metrics.clear_metrics()
    yield metrics
    metrics.clear_metrics()


def test_a_powertools_metrics_object_gets_the_same_metrics_instead(
    emf: Lines, powertools: Any, make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    cache = make_cache()
    cache.get_or_load("a", slow_loader(fake_clock, 0.2))
    cache.get("a")
    _metrics.after_invocation(powertools)
    _metrics.after_invocation(powertools)  # the outer decorator: nothing changed
    assert emf() == []  # nothing printed by tiered-cache, although TIERED_CACHE_METRICS=emf
    powertools.flush_metrics()
    document = emf.one()  # Powertools' own line, in the same format
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ShopTest"
    units = {d["Name"]: d["Unit"] for d in directive["Metrics"]}
    assert units == {**dict.fromkeys(NAMES, "Count"), "origin_ms": "Milliseconds"}
    values = {name: document[name] for name in NAMES}
    assert values == {
        name: [value] for name, value in expected(memory_hits=1, loads=1, origin_ms=200.0).items()
    }


def test_powertools_without_the_variable(
    fresh_settings: None,
    powertools: Any,
    capsys: pytest.CaptureFixture[str],
    make_cache: Callable[..., Any],
) -> None:
    """Passing a Metrics object turns metrics on by itself."""
    make_cache().get_or_load("a", lambda: 1)
    _metrics.after_invocation(powertools)
    powertools.flush_metrics()
    document = Lines(capsys).one()
    assert document["loads"] == [1.0]


def test_a_failing_add_metric_is_logged_once_and_never_raised(
    emf: Lines, caplog: pytest.LogCaptureFixture, make_cache: Callable[..., Any]
) -> None:
    class Broken:
        def add_metric(self, name: str, unit: str, value: float, resolution: int = 60) -> None:
            raise ValueError("metric set full")

    cache = make_cache()
    caplog.set_level(logging.WARNING, logger="tiered_cache")
    for _ in range(3):
        cache.get_or_load("a", lambda: 1)
        cache.get("a")
        _metrics.after_invocation(Broken())
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1
    assert emf() == []


def test_check_metrics_names_the_decorator() -> None:
    _metrics.check_metrics(None, "ssm.cache")
    _metrics.check_metrics(type("M", (), {"add_metric": lambda self, **kw: None})(), "ssm.cache")
    with pytest.raises(TypeError, match=r"ssm\.cache: metrics= takes a Powertools Metrics"):
        _metrics.check_metrics(object(), "ssm.cache")


# -- threads and forks --------------------------------------------------------------------------


def test_lines_written_by_many_threads_add_up_to_the_loads(
    emf: Lines, make_cache: Callable[..., Any]
) -> None:
    """Eight threads load into eight caches and report after each round: every line parses
    (none interleaved) and the lines' loads add up to the caches' own counts, none reported
    twice or lost."""
    threads, rounds = 8, 50
    caches = [make_cache(disk=False) for _ in range(threads)]
    start = threading.Barrier(threads)

    def invocations(n: int) -> None:
        start.wait()
        for i in range(rounds):
            for cache in caches:  # every cache moves between any two lines
                cache.get_or_load(f"{n}:{i}", lambda: n)
            _metrics.after_invocation()

    workers = [threading.Thread(target=invocations, args=(n,)) for n in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can: races show
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(interval)
    _metrics.after_invocation()
    lines = emf()  # each one parses: no two lines interleaved
    assert 1 <= len(lines) <= threads * rounds + 1
    loaded = sum(cache.loads for cache in caches)
    assert sum(line["loads"] for line in lines) == loaded == threads * rounds * threads


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_reports_only_its_own_counts_even_with_the_lock_held(
    emf: Lines, make_cache: Callable[..., Any]
) -> None:
    cache = make_cache(disk=False)
    cache.get_or_load("parent", lambda: 1)  # counted, not yet reported
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # another thread is inside after_invocation when the fork happens
        with _metrics._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    read_end, write_end = os.pipe()
    try:
        with warnings.catch_warnings():  # Python 3.12+ warns about fork with threads running
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: its stdout is the pipe; a hang is killed by the alarm
            code = 1
            try:
                signal.alarm(10)
                os.close(read_end)
                sys.stdout = os.fdopen(write_end, "w")
                cache.get_or_load("child", lambda: 2)
                _metrics.after_invocation()
                sys.stdout.flush()
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], 15)
        assert ready, "the child hung: it inherited the held lock"
        out = b""
        while chunk := os.read(read_end, 65536):
            out += chunk
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status)
        assert os.WEXITSTATUS(status) == 0
    finally:
        release.set()
        holder.join()
        os.close(read_end)
    child_lines = [emf_document(line) for line in out.decode().splitlines()]
    assert [line["loads"] for line in child_lines] == [1]  # its own load, not the parent's
    _metrics.after_invocation()
    assert emf.one()["loads"] == 1  # the parent's own


# -- import cost ------------------------------------------------------------------------------


def test_import_tiered_cache_does_not_import_the_metrics(python_subprocess: Any) -> None:
    out = python_subprocess(
        """
        import sys
        import tiered_cache
        print("tiered_cache._metrics" in sys.modules, "json" in sys.modules)
        import tiered_cache._metrics
        print("json" in sys.modules)
        """
    )
    assert out.stdout.split() == ["False", "False", "False"]


def test_the_default_cache_is_counted_too(emf: Lines) -> None:
    """The AWS helpers' and ``@tiered.cache``'s cache is one of the live caches."""

    @tiered.cache(key="k", ttl=60)
    def compute() -> int:
        return 7

    assert compute() == compute() == 7
    _metrics.after_invocation()
    document = emf.one()
    assert document["loads"] == 1
    assert document["memory_hits"] == 1


# -- the Lambda lifecycle ---------------------------------------------------------------------

_LIFECYCLE = """
import sys
import tiered_cache as tiered
from tiered_cache import _metrics
from awslambdaric.lambda_runtime_hooks_runner import run_after_restore

@tiered.cache(key="config", ttl=600)
def config():
    return "v"

config()                           # INIT (a cold start, or the snapshot's INIT)
if sys.argv[1] == "snapstart":
    run_after_restore()            # what the runtime does in each restored environment
print("first-invocation")
config()
_metrics.after_invocation()
"""


@pytest.mark.parametrize(
    ("start", "first_line"),
    [("cold", {"loads": 1, "memory_hits": 1}), ("snapstart", {"loads": 1, "memory_hits": 0})],
)
def test_init_work_is_in_the_first_line_unless_restored_from_a_snapshot(
    python_subprocess: Any, tmp_path: Path, start: str, first_line: dict[str, int]
) -> None:
    """A cold start's INIT load is reported with the first invocation; after a SnapStart
    restore only the environment's own work is (every clone would report the INIT load)."""
    out = python_subprocess(
        _LIFECYCLE,
        start,
        env={"TIERED_CACHE_METRICS": "emf", "TIERED_CACHE_DIR": str(tmp_path / "c")},
    )
    before, after = out.stdout.split("first-invocation\n")
    assert before == ""
    (line,) = after.splitlines()
    document = emf_document(line)
    assert {name: document[name] for name in first_line} == first_line
