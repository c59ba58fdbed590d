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
budget (least recently used evicted first); an object larger than the whole budget raises
``TieredCacheError`` naming both sizes. A warm hit costs the same for 1 KB and 100 MB.

Options (keywords, every call): ``max_age_in_seconds`` or ``ttl`` (the same setting; default:
the cache's ttl, 60 s unless ``TIERED_CACHE_TTL``), ``stale_if_error``, ``client``,
``session``, ``region_name``; ``get_bytes`` also takes ``persist`` (default True).

IAM: ``s3:GetObject`` on the objects (and ``s3:ListBucket`` on the bucket, so that a missing
key is answered with ``NoSuchKey`` rather than ``AccessDenied``).

Errors: ``InvalidS3UriError`` (also a ``ValueError``) for a URI not of the form
``s3://bucket/key``; ``NotFoundError`` for a missing bucket or key (``__cause__``: the
``ClientError``; remembered for up to 10 s); ``SourceError`` for other failures.

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

from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from . import _aws
from ._core import NOT_MODIFIED
from .exceptions import ArgumentTypeNotSupportedError, InvalidS3UriError, SourceError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["cache", "get_bytes", "get_entry", "parse_s3_uri"]

F = TypeVar("F", bound=Callable[..., Any])

#: Bytes read from the response stream and written to the file per step.
CHUNK: Final = 1024 * 1024


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
        bucket, key = parse_s3_uri(str(request.name))
        return _fetch_file(
            bucket, key, request.check_before_download, request.options, dest, version
        )


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


def _fetch_file(
    bucket: str, key: str, check: bool, options: Any, dest: IO[bytes], version: str | None
) -> str | None:
    """Stream the object into ``dest``; NOT_MODIFIED when ``version`` (an ETag) is current."""
    from botocore.exceptions import ClientError

    client = _aws.client_for("s3", options)
    request = {"Bucket": bucket, "Key": key}
    if check and version:
        request["IfNoneMatch"] = version
    try:
        response = _aws.call(client.get_object, _what(bucket, key), **request)
    except SourceError as exc:
        cause = exc.__cause__
        if isinstance(cause, ClientError) and _aws.error_code(cause) in ("304", "NotModified"):
            return NOT_MODIFIED
        raise
    body = response["Body"]
    try:
        _aws.call(_copy, _what(bucket, key), body=body, dest=dest)
    finally:
        body.close()
    etag: str | None = response.get("ETag")
    return etag


def _copy(body: Any, dest: IO[bytes]) -> None:
    for chunk in body.iter_chunks(CHUNK):
        dest.write(chunk)


def _fetch_bytes(bucket: str, key: str, options: Any) -> bytes:
    client = _aws.client_for("s3", options)
    response = _aws.call(client.get_object, _what(bucket, key), Bucket=bucket, Key=key)
    body = response["Body"]
    try:
        data: bytes = _aws.call(body.read, _what(bucket, key))
    finally:
        body.close()
    return data
