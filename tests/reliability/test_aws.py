"""Issue 5, items 8, 10 and 11 through the AWS helpers, on moto with injected botocore faults.

Faults are injected at botocore's ``before-send`` event, so every HTTP attempt (retries by
botocore's standard mode included) is counted and answered; the library is never patched.
Botocore's retry back-off sleep is set to zero so that counting attempts costs no time.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tiered_cache as tiered

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

from botocore.awsrequest import AWSResponse  # noqa: E402

from tiered_cache import s3, secrets_manager, ssm  # noqa: E402
from tiered_cache.exceptions import SourceError  # noqa: E402

from .conftest import Runs, Workers  # noqa: E402


class Origin:
    """Counts HTTP attempts per operation; ``throttle`` answers them with ThrottlingException."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}
        self.throttle: set[str] = set()
        self.hooks: dict[str, Callable[[], None]] = {}
        self._lock = threading.Lock()

    def before_send(self, request: Any, **_: Any) -> Any:
        operation = request.context.get("operation_name") or "?"
        if operation == "?":
            target = request.headers.get("X-Amz-Target", b"")
            operation = (target.decode() if isinstance(target, bytes) else target).split(".")[-1]
        with self._lock:
            self.attempts[operation] = self.attempts.get(operation, 0) + 1
        hook = self.hooks.get(operation)
        if hook is not None:
            hook()
        if operation in self.throttle:
            body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
            return AWSResponse(
                request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body)
            )
        return None

    def count(self, operation: str) -> int:
        return self.attempts.get(operation, 0)


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


@pytest.fixture
def origin(
    moto_aws: None, monkeypatch: pytest.MonkeyPatch, make_cache: Callable[..., Any]
) -> Origin:
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    fake = Origin()
    # First in line: moto answers at before-send too, and the first answer wins.
    boto3._get_default_session().events.register_first("before-send", fake.before_send)
    return fake


# -- item 8: throttling ------------------------------------------------------------------------


def test_throttled_cold_calls_make_bounded_origin_calls(
    origin: Origin, default: Any, runs: Runs
) -> None:
    boto3.client("ssm").put_parameter(Name="/app/var", Value="v1", Type="String")
    origin.throttle.add("GetParameter")
    cold = runs(200, 1000)
    for i in range(cold):
        default.clear()  # a cold start: nothing in memory or on disk
        with pytest.raises(SourceError) as caught:
            ssm.get_entry(parameter="/app/var", max_age_in_seconds=60)
        assert "ThrottlingException" in str(caught.value)
        assert caught.value.__cause__ is not None
        runs.progress("cold calls", i + 1, cold)
    attempts = origin.count("GetParameter")
    # botocore's standard mode: at most 3 attempts a call, fewer once its retry quota is spent;
    # the library adds no retries of its own.
    assert cold <= attempts <= 3 * cold, attempts
    assert attempts < 2 * cold, f"{attempts} attempts for {cold} calls: a retry storm"

    origin.throttle.clear()
    default.clear()
    assert ssm.get_entry(parameter="/app/var", max_age_in_seconds=60) == "v1"


def test_throttling_serves_stale_inside_the_window_and_a_typed_error_outside(
    origin: Origin, default: Any, fake_clock: Any
) -> None:
    boto3.client("ssm").put_parameter(Name="/app/var", Value="v1", Type="String")
    assert ssm.get_entry(parameter="/app/var", max_age_in_seconds=60, stale_if_error=120) == "v1"
    origin.throttle.add("GetParameter")

    fake_clock.advance(61)  # expired, inside stale_if_error
    for _ in range(20):
        assert (
            ssm.get_entry(parameter="/app/var", max_age_in_seconds=60, stale_if_error=120) == "v1"
        )
    fake_clock.advance(200)  # past expiry + stale_if_error
    with pytest.raises(SourceError, match="ThrottlingException"):
        ssm.get_entry(parameter="/app/var", max_age_in_seconds=60, stale_if_error=120)

    origin.throttle.clear()
    assert ssm.get_entry(parameter="/app/var", max_age_in_seconds=60, stale_if_error=120) == "v1"


def test_concurrent_callers_during_throttling_do_not_storm_the_origin(
    origin: Origin, default: Any, fake_clock: Any
) -> None:
    """50 threads find the value expired while the origin throttles: stale for all, and the
    origin is not asked once per waiting thread."""
    boto3.client("ssm").put_parameter(Name="/app/var", Value="v1", Type="String")
    assert ssm.get_entry(parameter="/app/var", max_age_in_seconds=60, stale_if_error=120) == "v1"
    origin.throttle.add("GetParameter")
    fake_clock.advance(61)
    before = origin.count("GetParameter")

    gate = threading.Event()
    origin.hooks["GetParameter"] = lambda: gate.wait(0.3)  # a slow, throttled origin
    barrier = threading.Barrier(50)
    results: list[Any] = []

    def call() -> None:
        barrier.wait()
        results.append(
            ssm.get_entry(parameter="/app/var", max_age_in_seconds=60, stale_if_error=120)
        )

    pool = [threading.Thread(target=call) for _ in range(50)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert results == ["v1"] * 50
    calls = origin.count("GetParameter") - before
    assert calls <= 3 * 3, f"50 waiting callers made {calls} throttled attempts"


def in_threads(count: int, call: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = []

    def run() -> None:
        barrier.wait()
        results.append(call())

    pool = [threading.Thread(target=run) for _ in range(count)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return results


# -- item 10: secret rotation ----------------------------------------------------------------


def test_rotated_secret_refreshed_from_20_threads_shares_the_loads(
    origin: Origin, make_cache: Callable[..., Any], runs: Runs
) -> None:
    """lambda-cache's forced refresh (max_age_in_seconds=0) from 20 threads at once, on a real
    clock: a refresh never takes a load that began before it for its own, so the threads share
    at most two GetSecretValue calls (the first, and one for all that arrived while it ran),
    and every one of them gets the rotated secret."""
    cache = make_cache(clock=time.time)
    tiered.set_default_cache(cache)
    client = boto3.client("secretsmanager")
    client.create_secret(Name="prod/db", SecretString="password-1")
    assert secrets_manager.get_entry(name="prod/db") == "password-1"
    rounds = runs(3, 20)
    for round_ in range(rounds):
        new = f"password-{round_ + 2}"
        client.put_secret_value(SecretId="prod/db", SecretString=new)  # rotation
        assert secrets_manager.get_entry(name="prod/db") != new  # the cached one is rejected
        before = origin.count("GetSecretValue")
        misses = cache.stats()["misses"]

        def round_trip(misses: int = misses) -> None:  # lasts until all 20 have asked (bounded)
            deadline = time.monotonic() + 10
            while cache.stats()["misses"] - misses < 20 and time.monotonic() < deadline:
                time.sleep(0.001)

        origin.hooks["GetSecretValue"] = round_trip
        results = in_threads(20, lambda: secrets_manager.get_entry("prod/db", max_age_in_seconds=0))
        origin.hooks.clear()
        calls = origin.count("GetSecretValue") - before
        assert 1 <= calls <= 2, f"20 concurrent refreshes made {calls} GetSecretValue calls"
        assert results == [new] * 20
        assert secrets_manager.get_entry(name="prod/db") == new
        runs.progress("rotations", round_ + 1, rounds)


def test_a_refresh_begun_after_a_rotation_never_returns_the_reply_in_flight(
    origin: Origin, make_cache: Callable[..., Any]
) -> None:
    """One thread forces a refresh and the secret rotates while its reply is in flight. A
    second thread's forced refresh, begun after the rotation, must get the new secret, and the
    cache must keep it: not the older reply, which lands later."""
    cache = make_cache(clock=time.time)
    tiered.set_default_cache(cache)
    in_flight, rotated = threading.Event(), threading.Event()
    replies: list[int] = []

    def hold_the_first_reply(**_: Any) -> None:  # runs once moto has answered
        replies.append(1)
        if len(replies) == 2:  # the first forced refresh (after the priming call)
            in_flight.set()
            assert rotated.wait(10)

    boto3._get_default_session().events.register(
        "after-call.secrets-manager.GetSecretValue", hold_the_first_reply
    )
    client = boto3.client("secretsmanager")
    client.create_secret(Name="prod/db", SecretString="password-1")
    assert secrets_manager.get_entry(name="prod/db") == "password-1"
    first: list[Any] = []
    second: list[Any] = []
    a = threading.Thread(
        target=lambda: first.append(secrets_manager.get_entry("prod/db", max_age_in_seconds=0))
    )
    a.start()
    assert in_flight.wait(10)  # its reply, password-1, is on its way
    client.put_secret_value(SecretId="prod/db", SecretString="password-2")  # rotation
    misses = cache.stats()["misses"]
    b = threading.Thread(
        target=lambda: second.append(secrets_manager.get_entry("prod/db", max_age_in_seconds=0))
    )
    b.start()
    deadline = time.monotonic() + 10
    while cache.stats()["misses"] == misses and time.monotonic() < deadline:
        time.sleep(0.001)  # until the second refresh is waiting for the first one's load
    rotated.set()
    a.join(10)
    b.join(10)
    assert first == ["password-1"]  # it began before the rotation
    assert second == ["password-2"]
    assert secrets_manager.get_entry(name="prod/db") == "password-2"
    assert origin.count("GetSecretValue") == 3


# -- item 11: S3 object replaced while it downloads ----------------------------------------


def test_object_replaced_while_it_downloads_is_cached_as_one_whole_version(
    origin: Origin, default: Any, fake_clock: Any
) -> None:
    client = boto3.client("s3")
    client.create_bucket(Bucket="bucket")
    v1, v2 = os.urandom(3 * 2**20), os.urandom(3 * 2**20)
    client.put_object(Bucket="bucket", Key="model.bin", Body=v1)
    replaced = []

    def replace_after_headers(parsed: Any, **_: Any) -> None:
        if not replaced:  # the response is in flight; the object changes under it
            replaced.append(1)
            client.put_object(Bucket="bucket", Key="model.bin", Body=v2)

    boto3._get_default_session().events.register("after-call.s3.GetObject", replace_after_headers)
    path = s3.get_entry(s3Uri="s3://bucket/model.bin", max_age_in_seconds=60)
    assert replaced
    with open(path, "rb") as f:
        first = f.read()
    assert first in (v1, v2), "the cached file mixes two versions"
    fake_clock.advance(61)  # revalidate: the ETag must describe what was cached
    path2 = s3.get_entry(s3Uri="s3://bucket/model.bin", max_age_in_seconds=60)
    with open(path2, "rb") as f:
        assert f.read() == v2, "a stale ETag kept the wrong version"


def test_object_replaced_while_its_ranged_parts_download_fails_cleanly_and_never_mixes(
    origin: Origin, default: Any, fake_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same fault on the ranged path (parts of 1 MiB, each pinned with IfMatch)."""
    monkeypatch.setenv("TIERED_CACHE_S3_PART_BYTES", str(2**20))
    client = boto3.client("s3")
    client.create_bucket(Bucket="bucket")
    v1, v2 = os.urandom(3 * 2**20), os.urandom(3 * 2**20)
    client.put_object(Bucket="bucket", Key="model.bin", Body=v1)
    replaced = []

    def replace_after_headers(parsed: Any, **_: Any) -> None:
        if not replaced:  # the first GET's headers are in; the object changes before the parts
            replaced.append(1)
            client.put_object(Bucket="bucket", Key="model.bin", Body=v2)

    gets: list[str] = []
    events = boto3._get_default_session().events
    events.register("after-call.s3.GetObject", replace_after_headers)
    events.register("before-call.s3.GetObject", lambda **_: gets.append("GetObject"))
    with pytest.raises(SourceError, match="changed while it downloaded"):
        s3.get_entry(s3Uri="s3://bucket/model.bin", max_age_in_seconds=60)
    assert replaced
    root = default.directory
    assert os.listdir(os.path.join(root, "tmp")) == []
    assert os.listdir(os.path.join(root, "objects")) == []
    before = len(gets)
    path = s3.get_entry(s3Uri="s3://bucket/model.bin", max_age_in_seconds=60)
    assert len(gets) == before + 1 + 3  # nothing was kept: one GET + 3 parts
    with open(path, "rb") as f:
        assert f.read() == v2
    fake_clock.advance(61)  # revalidate: the ETag stored is the one the parts were pinned to
    assert s3.get_entry(s3Uri="s3://bucket/model.bin", max_age_in_seconds=60) == path
    assert len(gets) == before + 5


@pytest.mark.slow
def test_killed_s3_download_leaves_no_file_that_passes_for_complete(
    tmp_path: Any, workers: Workers
) -> None:
    directory = str(tmp_path / "c")
    proc = workers.start("s3_kill_download", directory)
    report = workers.line(proc)
    assert report["half"] is True
    assert len(report["parts"]) == 1, "the download was not streaming into tmp/"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)

    fresh = workers.finish(workers.start("s3_fetch", directory))
    assert fresh["whole"] is True, "a fresh process was served a partial object"
    assert fresh["loads"] == 1, "the killed download was taken for complete"
    assert fresh["parts"] == [], "the killed download's temp file was not swept"
    assert len(fresh["objects"]) == 1
