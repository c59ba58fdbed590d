"""The envelope: a value with its TTL metadata, and its byte form on disk.

Tiers store envelopes and never interpret the times in them; only ``_core`` decides what is
fresh. On disk an envelope is::

    b"TC" | format (1 byte) | flags (1 byte) | stored_at, expires_at, stale_until (3 x f64)
    | len(key) u32 | key (utf-8) | len(version) u32 | version (utf-8)
    | crc32(payload) u32 | payload

The key is kept so that a hash collision or a row copied under another name reads as a miss,
and the CRC turns truncated, zeroed or garbage bytes into a miss instead of a wrong value.
"""

from __future__ import annotations

import enum
import struct
import zlib
from typing import Any, Final

from . import _serial

__all__ = ["MISSING", "Entry", "Guard", "Missing", "decode", "encode", "tombstone"]


class Missing(enum.Enum):
    """Type of the ``MISSING`` sentinel (``None`` can be a cached value)."""

    MISSING = enum.auto()


MISSING: Final = Missing.MISSING

FLAG_PICKLE: Final = 1  # payload was written by the pickle serializer
FLAG_FILE: Final = 2  # value is the name of a file in the disk tier's objects directory
FLAG_TOMBSTONE: Final = 4  # a deletion: no value, never fresh, newer than what it replaced

_MAGIC: Final = b"TC\x01"
_HEAD = struct.Struct("!3sBdddI")
_U32 = struct.Struct("!I")


class Entry:
    """A cached value and the times that govern it (wall-clock seconds since the epoch).

    ``version`` is an origin validator such as an S3 ETag. ``size`` is the value's
    approximate size in bytes, used by the memory tier's byte bound. ``hits`` counts memory
    hits (the one hit rule in ``_hit`` adds to it) and ``seen`` is what the memory tier's
    eviction last saw of it (an entry hit since then gets a second chance).
    """

    __slots__ = (
        "expires_at",
        "flags",
        "hits",
        "seen",
        "size",
        "stale_until",
        "stored_at",
        "value",
        "version",
    )

    def __init__(
        self,
        value: Any,
        stored_at: float,
        expires_at: float,
        stale_until: float,
        version: str | None = None,
        size: int = 0,
        flags: int = 0,
    ) -> None:
        self.value = value
        self.stored_at = stored_at
        self.expires_at = expires_at
        self.stale_until = stale_until
        self.version = version
        self.size = size
        self.flags = flags
        self.hits = 0
        self.seen = 0

    @property
    def identity(self) -> tuple[float, float, str | None]:
        """What tells this stored entry from any other write of the key, in any process."""
        return (self.stored_at, self.expires_at, self.version)

    @property
    def is_tombstone(self) -> bool:
        return bool(self.flags & FLAG_TOMBSTONE)

    def replace_value(self, value: Any, flags: int) -> Entry:
        """A copy of this entry holding ``value`` instead (same times and version)."""
        return Entry(
            value,
            self.stored_at,
            self.expires_at,
            self.stale_until,
            self.version,
            self.size,
            flags,
        )

    def __repr__(self) -> str:
        return (
            f"Entry(value={self.value!r:.60}, stored_at={self.stored_at}, "
            f"expires_at={self.expires_at}, stale_until={self.stale_until}, "
            f"version={self.version!r})"
        )


def tombstone(now: float) -> Entry:
    """The entry a ``delete`` leaves at ``now``: no value, never fresh, never served stale.

    It stays so that a load that started before the delete cannot store its value over it
    (see :class:`Guard`).
    """
    return Entry(MISSING, now, now, now, None, 0, FLAG_TOMBSTONE)


class Guard:
    """The condition of a load's write: no write goes back in time.

    A load's value is stamped ``stamp``, the time the load started, after it saw ``seen`` (the
    identity of the entry it found, fresh or not, or None). Its write may replace the current
    entry only if that entry is the one it saw, or is older than the load: an entry that a
    ``set``, another load or a ``delete`` wrote after the load began stands, and the load
    returns it instead. Each tier applies the guard atomically with its write (under the
    memory tier's lock; in the disk tier's SQLite transaction).
    """

    __slots__ = ("seen", "stamp")

    def __init__(self, stamp: float, seen: tuple[float, float, str | None] | None) -> None:
        self.stamp = stamp
        self.seen = seen

    def allows(self, current: Entry | None) -> bool:
        """May a write guarded by this replace ``current`` (None: the key holds nothing)?"""
        return (
            current is None
            or current.stored_at < self.stamp
            or (self.seen is not None and current.identity == self.seen)
        )

    def __repr__(self) -> str:
        return f"Guard(stamp={self.stamp}, seen={self.seen})"


def encode(key: str, entry: Entry, payload: bytes, flags: int) -> bytes:
    """The byte form of ``entry`` whose value was already serialized to ``payload``."""
    key_bytes = key.encode("utf-8", "surrogatepass")
    version = (entry.version or "").encode("utf-8", "surrogatepass")
    return b"".join(
        (
            _HEAD.pack(
                _MAGIC,
                flags,
                entry.stored_at,
                entry.expires_at,
                entry.stale_until,
                len(key_bytes),
            ),
            key_bytes,
            _U32.pack(len(version)),
            version,
            _U32.pack(zlib.crc32(payload)),
            payload,
        )
    )


def decode(key: str, data: bytes, serializer: str) -> Entry:
    """Parse and verify an envelope; raises ``ValueError`` when it is not a whole, valid one.

    An envelope whose payload was pickled is refused unless ``serializer`` is "pickle": with the
    safe serializer nothing read from disk is ever unpickled.
    """
    try:
        magic, flags, stored_at, expires_at, stale_until, key_len = _HEAD.unpack_from(data, 0)
        if magic != _MAGIC:
            raise ValueError("not a tiered-cache envelope")
        pos = _HEAD.size
        stored_key = data[pos : pos + key_len]
        pos += key_len
        if stored_key != key.encode("utf-8", "surrogatepass"):
            raise ValueError("envelope belongs to another key")
        (version_len,) = _U32.unpack_from(data, pos)
        pos += 4
        version = data[pos : pos + version_len].decode("utf-8", "surrogatepass") or None
        pos += version_len
        (crc,) = _U32.unpack_from(data, pos)
        pos += 4
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"truncated envelope: {exc}") from exc
    payload = data[pos:]
    if zlib.crc32(payload) != crc:
        raise ValueError("checksum mismatch: the stored bytes are damaged")
    if flags & FLAG_TOMBSTONE:
        return Entry(MISSING, stored_at, expires_at, stale_until, version, 0, flags)
    if flags & FLAG_PICKLE and serializer != _serial.PICKLE:
        raise ValueError("pickled payload refused by the safe serializer")
    value = _serial.loads(payload, _serial.PICKLE if flags & FLAG_PICKLE else _serial.SAFE)
    return Entry(value, stored_at, expires_at, stale_until, version, len(payload), flags)
