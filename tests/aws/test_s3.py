"""tiered_cache.s3 under moto: local files, ETag revalidation, streaming, errors."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
from _awshelp import Calls, Context, files_under

import tiered_cache as tiered
from tiered_cache import s3
from tiered_cache.exceptions import (
    InvalidS3UriError,
    NoEntryNameError,
    NotFoundError,
    SourceError,
    TieredCacheError,
)

URI = "s3://bucket/models/model.bin"
BODY = b"model-bytes-" * 1000


@pytest.fixture
def bucket(s3_client: Any) -> Any:
    s3_client.put_object(Bucket="bucket", Key="models/model.bin", Body=BODY)
    return s3_client


def read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def test_get_entry_gives_a_complete_file_under_a_hashed_name(
    default: Any, bucket: Any, calls: Calls
) -> None:
    path = s3.get_entry(s3Uri=URI)
    assert read(path) == BODY
    assert os.path.realpath(path).startswith(os.path.realpath(default.directory) + os.sep)
    assert "model" not in os.path.basename(path)  # keys never become file names
    assert s3.get_entry(s3Uri=URI) == path
    assert calls.count("GetObject") == 1


def test_unchanged_object_is_revalidated_with_no_body(
    default: Any, bucket: Any, calls: Calls, fake_clock: Any
) -> None:
    path = s3.get_entry(URI, max_age_in_seconds=60)
    etag = bucket.head_object(Bucket="bucket", Key="models/model.bin")["ETag"]
    fake_clock.advance(61)
    assert s3.get_entry(URI, max_age_in_seconds=60) == path
    assert calls.count("GetObject") == 2
    assert "IfNoneMatch" not in calls.requests("GetObject")[0]
    assert calls.requests("GetObject")[1]["IfNoneMatch"] == etag
    assert read(path) == BODY
    fake_clock.advance(30)  # renewed by the 304: fresh again for a full max age
    assert s3.get_entry(URI, max_age_in_seconds=60) == path
    assert calls.count("GetObject") == 2


def test_changed_object_lands_at_a_new_path(
    default: Any, bucket: Any, calls: Calls, fake_clock: Any
) -> None:
    old = s3.get_entry(URI)
    bucket.put_object(Bucket="bucket", Key="models/model.bin", Body=b"version two")
    fake_clock.advance(61)
    new = s3.get_entry(URI)
    assert new != old
    assert read(new) == b"version two"
    assert not os.path.exists(old)


def test_check_before_download_false_downloads_again(
    default: Any, bucket: Any, calls: Calls, fake_clock: Any
) -> None:
    s3.get_entry(URI, check_before_download=False)
    fake_clock.advance(61)
    path = s3.get_entry(URI, check_before_download=False)
    assert read(path) == BODY
    assert [("IfNoneMatch" in r) for r in calls.requests("GetObject")] == [False, False]


def test_max_age_zero_revalidates_every_time(default: Any, bucket: Any, calls: Calls) -> None:
    for _ in range(3):
        assert read(s3.get_entry(URI, max_age_in_seconds=0)) == BODY
    assert calls.count("GetObject") == 3


def test_deleted_file_is_fetched_again(default: Any, bucket: Any, calls: Calls) -> None:
    path = s3.get_entry(URI)
    os.remove(path)
    again = s3.get_entry(URI)
    assert read(again) == BODY
    assert calls.count("GetObject") == 2


def test_the_object_is_streamed_in_chunks(
    default: Any, bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3, "CHUNK", 1000)
    writes: list[int] = []

    class Dest(io.BytesIO):
        def write(self, data: Any) -> int:
            writes.append(len(data))
            return super().write(data)

    dest = Dest()
    args = {"s3Uri": URI, "max_age_in_seconds": None, "entry_name": False}
    spec = s3._OBJECTS.spec("test", {**args, "check_before_download": True}, {})
    assert spec.fetch_file is not None
    etag = spec.fetch_file(dest, None)
    assert dest.getvalue() == BODY
    assert etag
    assert max(writes) <= 1000
    assert len(writes) >= len(BODY) // 1000


def test_a_broken_download_leaves_no_file(
    default: Any, bucket: Any, calls: Calls, s3_client: Any
) -> None:
    import boto3
    from botocore.exceptions import ReadTimeoutError

    class Broken:
        def iter_chunks(self, size: int) -> Any:
            yield b"partial"
            raise ReadTimeoutError(endpoint_url="s3://bucket")

        def close(self) -> None:
            pass

    broken = [True]

    def break_body(parsed: dict[str, Any], **_: Any) -> None:
        if broken[0] and "Body" in parsed:
            parsed["Body"] = Broken()

    events = boto3._get_default_session().events
    events.register("after-call.s3.GetObject", break_body)
    before = set(files_under(default.directory)) if os.path.isdir(default.directory) else set()
    with pytest.raises(SourceError):
        s3.get_entry(URI)
    after = set(files_under(default.directory)) - before
    assert not [p for p in after if b"partial" in read(p)]
    broken[0] = False
    assert read(s3.get_entry(URI)) == BODY


def test_get_bytes(default: Any, s3_client: Any, calls: Calls) -> None:
    s3_client.put_object(Bucket="bucket", Key="small.json", Body=b'{"a": 1}')
    assert s3.get_bytes(s3Uri="s3://bucket/small.json") == b'{"a": 1}'
    assert s3.get_bytes(s3Uri="s3://bucket/small.json") == b'{"a": 1}'
    assert calls.count("GetObject") == 1
    with pytest.raises(NotFoundError):
        s3.get_bytes("s3://bucket/none.json")


def test_get_bytes_and_get_entry_do_not_share_an_entry(default: Any, bucket: Any) -> None:
    assert s3.get_bytes(URI) == BODY
    assert read(s3.get_entry(URI)) == BODY
    assert s3.get_bytes(URI) == BODY


def test_missing_key_and_bucket_are_not_found(
    default: Any, s3_client: Any, calls: Calls, fake_clock: Any
) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(NotFoundError) as info:
        s3.get_entry("s3://bucket/no/such/key")
    assert isinstance(info.value.__cause__, ClientError)
    with pytest.raises(NotFoundError):
        s3.get_entry("s3://bucket/no/such/key")
    assert calls.count("GetObject") == 1  # remembered
    with pytest.raises(NotFoundError):
        s3.get_entry("s3://no-such-bucket/key")


def test_stale_if_error_serves_the_old_file(
    default: Any, bucket: Any, calls: Calls, fake_clock: Any
) -> None:
    path = s3.get_entry(URI, stale_if_error=300)
    fake_clock.advance(100)
    calls.fail["GetObject"] = (503, "SlowDown")
    assert s3.get_entry(URI, stale_if_error=300) == path
    with pytest.raises(SourceError, match="SlowDown"):
        s3.get_entry(URI)


def test_object_larger_than_the_disk_budget(make_cache: Any, s3_client: Any) -> None:

    cache = make_cache(disk_bytes=4 * 2**20)
    tiered.set_default_cache(cache)
    s3_client.put_object(Bucket="bucket", Key="big.bin", Body=b"x" * (5 * 2**20))
    with pytest.raises(TieredCacheError, match="TIERED_CACHE_DISK_BYTES"):
        s3.get_entry("s3://bucket/big.bin")


@pytest.mark.parametrize(
    "uri",
    ["http://bucket/key", "s3:/bucket/key", "s3://bucket", "s3://bucket/", "s3:///key", "bucket/k"],
)
def test_invalid_uris(default: Any, uri: str) -> None:
    with pytest.raises(InvalidS3UriError) as info:
        s3.get_entry(s3Uri=uri)
    assert isinstance(info.value, ValueError)
    assert "s3://bucket-name/path/to/file" in str(info.value)
    with pytest.raises(InvalidS3UriError):
        s3.get_bytes(uri)


def test_argument_errors(default: Any) -> None:
    with pytest.raises(NoEntryNameError):
        s3.get_entry(["s3://b/k"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        s3.get_entry(["s3://b/k"], entry_name="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="check_before_download"):
        s3.get_entry(URI, check_before_download="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="persist"):
        s3.get_entry(URI, persist=False)


def test_handler_gets_the_path_under_the_file_name(default: Any, bucket: Any, calls: Calls) -> None:
    @s3.cache(s3Uri=URI, max_age_in_seconds=3600)
    def handler(event: Any, context: Any) -> bytes:
        return read(getattr(context, "model.bin"))

    assert handler({}, Context()) == BODY
    assert handler({}, Context()) == BODY
    assert calls.count("GetObject") == 1
