"""S3 objects, cached as local files (and small ones as bytes), in lambda-cache's call style.

::

    from tiered_cache import s3

    @s3.cache(s3Uri="s3://bucket/models/model.bin", max_age_in_seconds=3600)
    def handler(event, context): ...                    # context.model.bin: a local path

    s3.get_entry(s3Uri="s3://bucket/key")                   # str: path of a local file
    s3.get_bytes(s3Uri="s3://bucket/small.json")            # bytes

``get_entry`` and ``@s3.cache`` give the path of a complete file inside the cache directory,
under a hashed name. The object is streamed to a temporary file in that directory in chunks
(never held whole in memory) and moved into place atomically: a download that fails or is
killed leaves nothing a later call could take for complete. After the max age the object is
revalidated with a conditional GET (``IfNoneMatch`` with the stored ETag): an unchanged object
costs one round trip and no body; a changed one lands at a new path. With
``check_before_download=False`` it is downloaded again instead. Files count toward the disk
budget (least recently used evicted first). A warm hit costs the same for 1 KB and 100 MB.

Large objects: every miss starts with one GET (conditional when revalidating). An object of
at most ``TIERED_CACHE_S3_PART_BYTES`` (8 MiB by default) is streamed from that GET, as
above. A larger one leaves that stream after its headers and is downloaded by boto3's
transfer manager (s3transfer) in parallel ranged GETs of that many bytes, at most
``MAX_CONCURRENCY`` (10) at a time, each written at its offset in the temporary file (never
held whole in memory) and each pinned with ``IfMatch`` to the ETag of the first GET: an object
replaced while it downloads fails that download with ``SourceError`` (nothing is stored; ask
again) and the file never mixes two versions. (An older s3transfer, without
``TransferMeta.provide_object_etag``, cannot pin parts: large objects are then streamed from
the one GET instead.) The part size is read from the environment at each download (an integer
of at least 64 KiB; anything else is logged and the default used). The transfer's threads live
only inside the call that downloads: none is left running.

An object larger than the whole disk budget is refused from the first GET's headers, before
its body moves: ``TieredCacheError`` naming both sizes and ``TIERED_CACHE_DISK_BYTES``. The
refusal is remembered per object and ETag for the negative-cache window (``min(10 s, max
age)``, on the cache's clock): within it the same error is raised with no request; after it,
one conditional GET (``IfNoneMatch`` with the refused ETag) answers 304 for the same object
and refuses it again with no body.

Options (keywords, every call): ``max_age_in_seconds`` or ``ttl`` (the same setting; default:
the cache's ttl, 60 s unless ``TIERED_CACHE_TTL``), ``stale_if_error``, ``client``,
``session``, ``region_name``; ``get_bytes`` also takes ``persist`` (default True).

IAM: ``s3:GetObject`` on the objects (and ``s3:ListBucket`` on the bucket, so that a missing
key is answered with ``NoSuchKey`` rather than ``AccessDenied``).

Errors: ``InvalidS3UriError`` (also a ``ValueError``) for a URI not of the form
``s3://bucket/key``; ``NotFoundError`` for a missing key or bucket (a missing bucket's message
names the bucket and ``NoSuchBucket``; ``__cause__``: the ``ClientError``; remembered for up to
10 s); ``SourceError`` for other failures; ``TieredCacheError`` for an object larger than the
disk budget.

Thread-safe and process-safe (single-flight per object across both, by the cache's locks).

Moving from lambda-cache
------------------------
Change ``from lambda_cache import s3`` to ``from tiered_cache import s3``; ``s3Uri``,
``max_age_in_seconds`` (60 s), ``entry_name``, ``check_before_download`` and the context
attribute names are the same. Differences: the file is not ``/tmp/<entry_name>`` but a hashed
name inside the cache directory (use the path you are given); revalidation compares ETags
(exact) instead of LastModified at one-second precision; two URIs with the same file name no
longer overwrite each other's file; a missing object raises ``NotFoundError`` instead of a
bare ``ClientError``; the file is never seen half-written.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from . import _aws, _config
from ._core import NOT_MODIFIED
from ._log import log
from .exceptions import (
    ArgumentTypeNotSupportedError,
    InvalidS3UriError,
    NotFoundError,
    SourceError,
    TieredCacheError,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._core import TieredCache

__all__ = ["cache", "get_bytes", "get_entry", "parse_s3_uri"]

F = TypeVar("F", bound=Callable[..., Any])

#: Bytes read from the response stream and written to the file per step.
CHUNK: Final = 1024 * 1024
#: Objects larger than this are downloaded in ranged parts of this size (and streamed whole
#: otherwise); ``TIERED_CACHE_S3_PART_BYTES`` overrides it, read on each download.
PART_BYTES: Final = 8 * 2**20
#: The smallest part size the variable may set (smaller values are logged and ignored).
MIN_PART_BYTES: Final = 64 * 1024
#: Ranged GETs in flight at once per download (one S3 connection carries about 90 MB/s): the
#: size of the client's connection pool (botocore's default ``max_pool_connections``). The
#: memory held is one 256 KiB chunk per part in flight plus ``_IO_QUEUE`` chunks, whatever the
#: object's size (benchmarks/_large.py measures the peak RSS), so it suits small Lambdas too.
MAX_CONCURRENCY: Final = 10
#: s3transfer's queue of chunks waiting to be written (each 256 KiB): at most 8 MiB held.
_IO_QUEUE: Final = 32


class _Objects(_aws.Service):
    """Objects as local files in the cache directory (ETag-revalidated)."""

    name = "s3"
    kind = "s3-file"
    file = True
    #: not part of the key: it changes how a miss fetches, never the value
    options: ClassVar[tuple[_aws.Option, ...]] = (
        _aws.Option("check_before_download", True, key=False, check=_aws.boolean),
    )

    def check_name(self, name: str | list[str], owner: str) -> None:
        parse_s3_uri(str(name))

    def check(self, request: _aws.Request) -> None:
        if request.persist is not None:
            raise TypeError(
                f"tiered-cache: {request.owner}: objects are always files in the cache "
                "directory; persist= is not taken (use s3.get_bytes for a value kept in memory)"
            )

    def key(self, request: _aws.Request) -> str:
        return "/".join(parse_s3_uri(str(request.name)))

    def fetch_file(self, request: _aws.Request, dest: IO[bytes], version: str | None) -> str | None:
        return _fetch_file(request, dest, version)


class _Bytes(_Objects):
    """Small objects as ``bytes`` values (memory and disk, like any value)."""

    kind = "s3-bytes"
    file = False
    options = ()

    def check(self, request: _aws.Request) -> None:
        pass

    def fetch(self, request: _aws.Request) -> bytes:
        return _fetch_bytes(*parse_s3_uri(str(request.name)), request.options)


_OBJECTS: Final = _Objects()
_BYTES: Final = _Bytes()


@_OBJECTS.entry
def get_entry(
    s3Uri: str,
    max_age_in_seconds: float | None = None,
    entry_name: str | bool | None = False,
    check_before_download: bool = True,
    **options: Unpack[_aws.Options],
) -> str:
    """The path of a local file holding the object at ``s3Uri`` (fresh within the max age)."""
    raise NotImplementedError  # never runs: the base generates the function


@_OBJECTS.handler
def cache(
    s3Uri: str,
    max_age_in_seconds: float | None = None,
    entry_name: str | bool | None = False,
    check_before_download: bool = True,
    **options: Unpack[_aws.Options],
) -> Callable[[F], F]:
    """Decorate ``handler(event, context)`` to set ``context.<entry_name>`` to the file's path.

    ``entry_name`` defaults to the last segment of the URI (``.../model.bin`` ->
    ``model.bin``, read with ``getattr``). Arguments are checked when the handler is called.
    """
    raise NotImplementedError  # never runs: the base generates the function


@_BYTES.entry
def get_bytes(
    s3Uri: str,
    max_age_in_seconds: float | None = None,
    **options: Unpack[_aws.Options],
) -> bytes:
    """The object at ``s3Uri`` as ``bytes``, cached as a value (for small objects: it is read
    whole into memory; use :func:`get_entry` for large ones)."""
    raise NotImplementedError  # never runs: the base generates the function


def parse_s3_uri(s3Uri: str) -> tuple[str, str]:
    """``s3://bucket/path/to/key`` -> ``("bucket", "path/to/key")``; else InvalidS3UriError."""
    if not isinstance(s3Uri, str):
        raise ArgumentTypeNotSupportedError(
            f"tiered-cache: s3Uri must be a str such as 's3://bucket/key', not "
            f"{type(s3Uri).__name__}"
        )
    elements = s3Uri.split("/")
    if len(elements) < 4 or elements[0] != "s3:" or elements[1] != "" or not elements[2]:
        raise InvalidS3UriError(
            f"tiered-cache: expected an S3 URI of the form 's3://bucket-name/path/to/file', "
            f"given: {s3Uri!r}"
        )
    key = "/".join(elements[3:])
    if not key:
        raise InvalidS3UriError(
            f"tiered-cache: the S3 URI {s3Uri!r} names a bucket but no object key; expected "
            "'s3://bucket-name/path/to/file'"
        )
    return elements[2], key


def _what(bucket: str, key: str) -> str:
    return f"S3 object 's3://{bucket}/{key}'"


def _call(operation: Callable[..., Any], bucket: str, key: str, **kwargs: Any) -> Any:
    """``_aws.call`` for an object, with a missing bucket named as the bucket."""
    try:
        return _aws.call(operation, _what(bucket, key), **kwargs)
    except NotFoundError as exc:
        cause = exc.__cause__
        if _aws.error_code(cause) != "NoSuchBucket":
            raise
        raise NotFoundError(
            f"tiered-cache: the S3 bucket {bucket!r} does not exist (NoSuchBucket from "
            f"{getattr(cause, 'operation_name', 'GetObject')}), so 's3://{bucket}/{key}' cannot "
            "be read; check the bucket name and the region"
        ) from cause


def part_bytes() -> int:
    """The part size (and threshold) for ranged downloads: ``TIERED_CACHE_S3_PART_BYTES``,
    else :data:`PART_BYTES`. A value that is not an integer of at least
    :data:`MIN_PART_BYTES` is logged and the default used."""
    raw = os.environ.get("TIERED_CACHE_S3_PART_BYTES", "").strip()
    if not raw:
        return PART_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < MIN_PART_BYTES:
        log.error(
            "tiered-cache: ignoring TIERED_CACHE_S3_PART_BYTES=%r (expected an integer of at "
            "least %d); using %d",
            raw,
            MIN_PART_BYTES,
            PART_BYTES,
        )
        return PART_BYTES
    return value


# cache -> {object: (stored_at, until, etag, size)}: objects refused as larger than the budget.
_refused: weakref.WeakKeyDictionary[TieredCache, dict[str, tuple[float, float, str, int]]]
_refused = weakref.WeakKeyDictionary()


def _fetch_file(request: _aws.Request, dest: IO[bytes], version: str | None) -> str | None:
    """Write the object into ``dest``; NOT_MODIFIED when ``version`` (an ETag) is current.

    ``dest`` is the cache's temporary file (its ``budget`` says how large an object may be).
    Raises ``SourceError`` (or ``NotFoundError``) when the origin fails or the object changes
    during a ranged download, and ``TieredCacheError`` when it is larger than the budget.
    """
    bucket, key = parse_s3_uri(str(request.name))
    client = request.client()
    budget: int | None = getattr(dest, "budget", None)
    refused, window, now = _refusals(request, budget)
    uri = f"s3://{bucket}/{key}"
    known = refused.get(uri) if refused is not None else None
    check = request.check_before_download
    condition = version if check else None
    if known is not None and budget is not None:
        stored_at, until, refused_etag, refused_size = known
        if stored_at <= now < until and refused_size > budget:
            raise _too_big(bucket, key, refused_size, budget)
        if condition is None and check:
            condition = refused_etag  # a 304 says it is still the object refused: no body
    params = {"Bucket": bucket, "Key": key}
    if condition:
        params["IfNoneMatch"] = condition
    try:
        response = _call(client.get_object, bucket, key, **params)
    except SourceError as exc:
        if _aws.error_code(exc.__cause__) not in ("304", "NotModified"):
            raise
        if condition == version or known is None or budget is None:
            return NOT_MODIFIED
        # the condition was the refused ETag: the object is still the one refused
        _remember(refused, uri, now, window, known[2], known[3])
        raise _too_big(bucket, key, known[3], budget) from None
    body = response["Body"]
    try:
        size = _size(response)
        etag: str | None = response.get("ETag")
        if budget is not None and size is not None and size > budget:
            if etag:
                _remember(refused, uri, now, window, etag, size)
            raise _too_big(bucket, key, size, budget)
        part = part_bytes()
        if size is not None and size > part and etag and _can_pin():
            body.close()  # leave this stream after its headers: the parts come pinned to etag
            _download_parts(client, bucket, key, etag, size, part, dest)
        else:
            _aws.call(_copy, _what(bucket, key), body=body, dest=dest)
    finally:
        body.close()
    return etag


def _refusals(
    request: _aws.Request, budget: int | None
) -> tuple[dict[str, tuple[float, float, str, int]] | None, float, float]:
    """(the refusals of the cache loading, the window, now) when the budget is known."""
    if budget is None:
        return None, 0.0, 0.0
    cache = _config.default_cache()  # the cache the plan being loaded is bound to
    age = cache.ttl if request.age is None else request.age
    window = min(_aws.NEGATIVE_TTL, age)
    return _refused.setdefault(cache, {}), window, cache.clock()


def _remember(
    refused: dict[str, tuple[float, float, str, int]] | None,
    uri: str,
    now: float,
    window: float,
    etag: str,
    size: int,
) -> None:
    if refused is not None and window > 0:
        if len(refused) > 256:
            refused.clear()  # names built dynamically never grow memory without bound
        refused[uri] = (now, now + window, etag, size)


def _size(response: Any) -> int | None:
    """The whole object's size from a GetObject response (``ContentRange``, else length)."""
    content_range = response.get("ContentRange")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    length = response.get("ContentLength")
    return length if type(length) is int else None


def _too_big(bucket: str, key: str, size: int, budget: int) -> TieredCacheError:
    return TieredCacheError(
        f"tiered-cache: the {_what(bucket, key)} is {size} bytes, larger than the whole disk "
        f"budget of {budget} bytes; raise TIERED_CACHE_DISK_BYTES (and the function's "
        "ephemeral storage) to cache it. Refused before its body was downloaded; asked again "
        "after the negative-cache window (up to 10 s)"
    )


def _can_pin() -> bool:
    """Can s3transfer pin every part to a given ETag? (``TransferMeta.provide_object_etag``
    puts ``IfMatch`` on each ranged GET; older releases lack it.) Without it the parts could
    mix versions, so objects are then streamed from the one GET instead, as before."""
    from s3transfer.futures import TransferMeta

    return hasattr(TransferMeta, "provide_object_etag")


def _download_parts(
    client: Any, bucket: str, key: str, etag: str, size: int, part: int, dest: IO[bytes]
) -> None:
    """Download the object into ``dest`` with s3transfer: ranged GETs of ``part`` bytes, at
    most ``MAX_CONCURRENCY`` at once, each pinned with ``IfMatch`` to ``etag``.

    The size and ETag of the first GET are handed to s3transfer (so it makes no HeadObject,
    and puts ``IfMatch: etag`` on every part). Its threads end before this returns or raises.
    """
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError
    from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError
    from s3transfer.manager import TransferManager
    from s3transfer.subscribers import BaseSubscriber

    class Pinned(BaseSubscriber):
        def on_queued(self, future: Any, **kwargs: Any) -> None:
            future.meta.provide_transfer_size(size)
            future.meta.provide_object_etag(etag)

    config = TransferConfig(
        multipart_threshold=part,
        multipart_chunksize=part,
        max_concurrency=MAX_CONCURRENCY,
        max_io_queue=_IO_QUEUE,
        use_threads=True,
    )
    what = _what(bucket, key)
    try:
        with TransferManager(client, config) as manager:
            manager.download(bucket, key, dest, subscribers=[Pinned()]).result()
    except (ClientError, BotoCoreError, RetriesExceededError, S3DownloadFailedError) as exc:
        cause = exc if isinstance(exc, ClientError) else exc.__cause__ or exc.__context__
        if _aws.error_code(cause) in ("PreconditionFailed", "412"):
            # s3transfer raises S3DownloadFailedError for it, the ClientError as its context
            raise SourceError(
                f"tiered-cache: the {what} changed while it downloaded (a part no longer "
                f"matched the ETag {etag} of the first GET); nothing was stored, ask again"
            ) from cause
        if isinstance(exc, ClientError):
            raise _aws.translate(exc, what) from exc
        raise SourceError(f"tiered-cache: downloading the {what} in parts failed: {exc}") from exc


def _copy(body: Any, dest: IO[bytes]) -> None:
    for chunk in body.iter_chunks(CHUNK):
        dest.write(chunk)


def _fetch_bytes(bucket: str, key: str, options: Any) -> bytes:
    client = _aws.client_for("s3", options)
    response = _call(client.get_object, bucket, key, Bucket=bucket, Key=key)
    body = response["Body"]
    try:
        data: bytes = _aws.call(body.read, _what(bucket, key))
    finally:
        body.close()
    return data
