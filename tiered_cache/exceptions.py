"""The error tree of tiered-cache.

``TieredCacheError`` is the base of everything the library raises on purpose. Argument errors
also derive from the built-in ``TypeError`` or ``ValueError`` so that code catching those keeps
working.
"""

from __future__ import annotations

__all__ = [
    "ArgumentTypeNotSupportedError",
    "InvalidS3UriError",
    "NoEntryNameError",
    "NotFoundError",
    "SourceError",
    "TieredCacheError",
    "UnsafeCacheDirectoryError",
]


class TieredCacheError(Exception):
    """Base class of every error tiered-cache raises on purpose."""


class SourceError(TieredCacheError):
    """The origin (SSM, Secrets Manager, S3) failed; ``__cause__`` is the botocore error."""


class NotFoundError(SourceError):
    """The origin answered that the named thing does not exist."""


class ArgumentTypeNotSupportedError(TieredCacheError, TypeError):
    """An argument has a type the helper cannot cache (for example a dict as a name)."""


class NoEntryNameError(TieredCacheError, ValueError):
    """A list of names was given without ``entry_name`` to name the context attribute."""


class InvalidS3UriError(TieredCacheError, ValueError):
    """An S3 URI is not of the form ``s3://bucket/key``."""


class UnsafeCacheDirectoryError(TieredCacheError):
    """The cache directory is a symlink, owned by someone else, or writable by others."""
