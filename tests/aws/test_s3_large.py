"""tiered_cache.s3 for large objects under moto: ranged parts pinned to one ETag, the threshold,
revalidation, oversize objects refused before their body moves (and remembered), a part that
fails and a download killed with SIGKILL, and a missing bucket named as the bucket.

The part size is set small through ``TIERED_CACHE_S3_PART_BYTES`` so that objects of a few
hundred KiB take the ranged path; API calls are counted and their parameters recorded through
botocore's events (``Calls``), never by patching the library.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from _awshelp import Calls

import tiered_cache as tiered
from tiered_cache import s3
from tiered_cache.exceptions import NotFoundError, SourceError, TieredCacheError

PART = 64 * 1024
URI = "s3://bucket/big.bin"
WORKER = Path(__file__).with_name("_s3_worker.py")


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERED_CACHE_S3_PART_BYTES", str(PART))


def read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def leftovers(cache: Any) -> tuple[list[str], list[str]]:
    """What the cache directory holds in tmp/ and objects/."""
    root = cache.directory
    return sorted(os.listdir(os.path.join(root, "tmp"))), sorted(
        os.listdir(os.path.join(root, "objects"))
    )


def put(client: Any, body: bytes, key: str = "big.bin") -> str:
    etag: str = client.put_object(Bucket="bucket", Key=key, Body=body)["ETag"]
    return etag


def ranges(calls: Calls) -> list[dict[str, Any]]:
    return [r for r in calls.requests("GetObject") if "Range" in r]


def test_a_large_object_comes_in_ranged_parts_pinned_to_the_first_etag(
    default: Any, s3_client: Any, calls: Calls
) -> None:
    body = os.urandom(5 * PART + 123)
    etag = put(s3_client, body)
    threads = set(threading.enumerate())
    path = s3.get_entry(s3Uri=URI)
    assert read(path) == body
    assert set(threading.enumerate()) <= threads, "the transfer left threads running"
    first, *rest = calls.requests("GetObject")
    assert "Range" not in first
    assert "IfMatch" not in first
    parts = ranges(calls)
    assert len(parts) == math.ceil(len(body) / PART) == len(rest)
    assert {p["IfMatch"] for p in parts} == {etag}
    assert sorted(p["Range"] for p in parts) == sorted(
        f"bytes={i * PART}-{'' if i == 5 else (i + 1) * PART - 1}" for i in range(6)
    )
    assert calls.count("HeadObject") == 0
    assert s3.get_entry(s3Uri=URI) == path  # a warm hit: no call
    assert calls.count("GetObject") == 7
    assert leftovers(default)[0] == []


def test_an_object_at_the_threshold_is_one_plain_get(
    default: Any, s3_client: Any, calls: Calls
) -> None:
    body = os.urandom(PART)
    put(s3_client, body)
    assert read(s3.get_entry(s3Uri=URI)) == body
    assert calls.count("GetObject") == 1
    assert ranges(calls) == []


def test_the_threshold_follows_the_variable(
    default: Any, s3_client: Any, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = os.urandom(3 * PART)
    put(s3_client, body)
    monkeypatch.setenv("TIERED_CACHE_S3_PART_BYTES", str(4 * PART))
    assert read(s3.get_entry(s3Uri=URI)) == body
    assert calls.count("GetObject") == 1


def test_a_bad_part_size_is_logged_and_the_default_used(
    default: Any, s3_client: Any, calls: Calls, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    body = os.urandom(3 * PART)  # under the 8 MiB default: one GET
    put(s3_client, body)
    monkeypatch.setenv("TIERED_CACHE_S3_PART_BYTES", "1000")
    assert read(s3.get_entry(s3Uri=URI)) == body
    assert calls.count("GetObject") == 1
    assert "TIERED_CACHE_S3_PART_BYTES" in caplog.text


def test_an_unchanged_large_object_is_revalidated_with_one_request_and_no_body(
    default: Any, s3_client: Any, calls: Calls, fake_clock: Any
) -> None:
    body = os.urandom(4 * PART)
    etag = put(s3_client, body)
    path = s3.get_entry(URI, max_age_in_seconds=60)
    made = calls.count("GetObject")
    fake_clock.advance(61)
    assert s3.get_entry(URI, max_age_in_seconds=60) == path
    assert calls.count("GetObject") == made + 1
    last = calls.requests("GetObject")[-1]
    assert last["IfNoneMatch"] == etag
    assert "Range" not in last
    assert read(path) == body


def test_a_changed_large_object_lands_whole_at_a_new_path(
    default: Any, s3_client: Any, calls: Calls, fake_clock: Any
) -> None:
    put(s3_client, os.urandom(3 * PART))
    old = s3.get_entry(URI)
    body = os.urandom(5 * PART)
    etag = put(s3_client, body)
    fake_clock.advance(61)
    new = s3.get_entry(URI)
    assert new != old
    assert read(new) == body
    assert not os.path.exists(old)
    assert ranges(calls)[-1]["IfMatch"] == etag


def test_a_part_that_fails_stores_nothing_and_the_next_call_downloads_whole(
    default: Any, s3_client: Any, calls: Calls
) -> None:
    import boto3

    body = os.urandom(6 * PART)
    put(s3_client, body)
    failing = [True]

    def deny_the_third_part(params: dict[str, Any], **_: Any) -> Any:
        if failing[0] and params["headers"].get("Range", "").startswith(f"bytes={2 * PART}-"):
            failing[0] = False
            return _Http(403), {"Error": {"Code": "AccessDenied", "Message": "injected"}}
        return None

    boto3._get_default_session().events.register("before-call.s3.GetObject", deny_the_third_part)
    with pytest.raises(SourceError, match="AccessDenied"):
        s3.get_entry(URI)
    assert not failing[0]
    assert leftovers(default) == ([], [])
    made = calls.count("GetObject")
    path = s3.get_entry(URI)  # nothing of the failed download is served: it downloads again
    assert calls.count("GetObject") == made + 1 + 6
    assert read(path) == body
    assert len(leftovers(default)[1]) == 1


def test_an_object_replaced_between_parts_fails_cleanly_and_never_mixes(
    default: Any, s3_client: Any, calls: Calls
) -> None:
    import boto3

    v1, v2 = os.urandom(6 * PART), os.urandom(6 * PART)
    put(s3_client, v1)
    replaced: list[str] = []

    def replace_after_the_first_get(http_response: Any, parsed: Any, **_: Any) -> None:
        if not replaced:  # the first GET's headers are in: the object changes under it
            replaced.append(put(s3_client, v2))

    boto3._get_default_session().events.register(
        "after-call.s3.GetObject", replace_after_the_first_get
    )
    with pytest.raises(SourceError, match="changed while it downloaded"):
        s3.get_entry(URI)
    assert replaced
    assert leftovers(default) == ([], [])
    path = s3.get_entry(URI)
    assert read(path) == v2
    assert ranges(calls)[-1]["IfMatch"] == replaced[0]


# -- an object larger than the disk budget -----------------------------------------------------


class _Http:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}


class _CountingBody:
    """A GetObject body that counts the bytes read from it."""

    def __init__(self, body: Any, seen: list[int]) -> None:
        self._body = body
        self._seen = seen

    def read(self, amt: int | None = None) -> bytes:
        data: bytes = self._body.read(amt)
        self._seen.append(len(data))
        return data

    def iter_chunks(self, size: int) -> Any:
        while data := self.read(size):
            yield data

    def close(self) -> None:
        self._body.close()


def test_an_oversize_object_is_refused_before_its_body_moves_and_remembered(
    make_cache: Any, s3_client: Any, calls: Calls, fake_clock: Any
) -> None:
    import boto3

    cache = make_cache(disk_bytes=4 * 2**20)
    big = os.urandom(5 * 2**20)
    etag = put(s3_client, big)
    read_bytes: list[int] = []

    def count_body(parsed: dict[str, Any], **_: Any) -> None:
        if "Body" in parsed:
            parsed["Body"] = _CountingBody(parsed["Body"], read_bytes)

    boto3._get_default_session().events.register("after-call.s3.GetObject", count_body)
    with tiered.use_cache(cache):
        with pytest.raises(TieredCacheError, match="TIERED_CACHE_DISK_BYTES") as info:
            s3.get_entry(URI)
        assert not isinstance(info.value, SourceError)
        assert f"{len(big)} bytes" in str(info.value)
        assert str(4 * 2**20) in str(info.value)
        assert sum(read_bytes) == 0, "the body moved before the refusal"
        assert calls.count("GetObject") == 1
        assert leftovers(cache) == ([], [])

        for _ in range(5):  # a hot handler within the window: refused with no call
            fake_clock.advance(1)
            with pytest.raises(TieredCacheError, match="TIERED_CACHE_DISK_BYTES"):
                s3.get_entry(URI)
        assert calls.count("GetObject") == 1

        fake_clock.advance(6)  # past the window: one conditional GET, 304, still refused
        with pytest.raises(TieredCacheError, match="TIERED_CACHE_DISK_BYTES"):
            s3.get_entry(URI)
        assert calls.count("GetObject") == 2
        assert calls.requests("GetObject")[-1]["IfNoneMatch"] == etag
        assert sum(read_bytes) == 0
        with pytest.raises(TieredCacheError):  # and remembered again
            s3.get_entry(URI)
        assert calls.count("GetObject") == 2

        small = os.urandom(3 * PART)
        put(s3_client, small)  # the object changes: the next asking after the window gets it
        fake_clock.advance(11)
        assert read(s3.get_entry(URI)) == small


def test_a_larger_budget_is_not_refused_by_another_caches_memory(
    make_cache: Any, s3_client: Any, calls: Calls, tmp_path: Path
) -> None:
    body = os.urandom(5 * 2**20)
    put(s3_client, body)
    with tiered.use_cache(make_cache(disk_bytes=4 * 2**20)), pytest.raises(TieredCacheError):
        s3.get_entry(URI)
    with tiered.use_cache(make_cache(directory=str(tmp_path / "roomy"), disk_bytes=64 * 2**20)):
        assert read(s3.get_entry(URI)) == body


# -- a download killed midway -------------------------------------------------------------------


@pytest.mark.slow
def test_a_ranged_download_killed_with_sigkill_leaves_nothing_complete(tmp_path: Path) -> None:
    directory = str(tmp_path / "c")
    env = {**os.environ, "TIERED_CACHE_S3_PART_BYTES": str(PART)}
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "hang", directory],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        report = json.loads(proc.stdout.readline())
        assert report["parts_done"] >= 2, "no part was written before the kill"
        assert len(report["tmp"]) == 1, "the parts were not going into the cache's temp file"
        assert report["tmp_bytes"] > 0
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    fresh = subprocess.run(
        [sys.executable, str(WORKER), "fetch", directory],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    result = json.loads(fresh.stdout.splitlines()[-1])
    assert result["whole"] is True, "a fresh process was served a partial object"
    assert result["loads"] == 1, "the killed download was taken for complete"
    assert result["ranged"] >= 2
    assert result["tmp"] == [], "the killed download's temp file was not swept"
    assert len(result["objects"]) == 1


# -- issue 15, friction 3 -----------------------------------------------------------------------


def test_a_missing_bucket_says_the_bucket_is_missing(default: Any, calls: Calls) -> None:
    from botocore.exceptions import ClientError

    for getter in (s3.get_entry, s3.get_bytes):
        with pytest.raises(NotFoundError) as info:
            getter("s3://no-such-bucket/models/model.bin")
        message = str(info.value)
        assert "bucket 'no-such-bucket' does not exist" in message
        assert "NoSuchBucket" in message
        assert "S3 object" not in message
        assert isinstance(info.value.__cause__, ClientError)


def test_a_missing_key_still_names_the_object(default: Any, s3_client: Any) -> None:
    with pytest.raises(NotFoundError, match=r"S3 object 's3://bucket/none' does not exist"):
        s3.get_entry("s3://bucket/none")


def test_an_s3transfer_that_cannot_pin_parts_streams_the_one_get(
    default: Any, s3_client: Any, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """s3transfer before 0.11 has no TransferMeta.provide_object_etag (simulated here): its
    parts would carry no IfMatch, so the object comes whole from the first GET instead."""
    from s3transfer.futures import TransferMeta

    monkeypatch.delattr(TransferMeta, "provide_object_etag")
    body = os.urandom(5 * PART)
    put(s3_client, body)
    assert read(s3.get_entry(URI)) == body
    assert calls.count("GetObject") == 1
    assert ranges(calls) == []
