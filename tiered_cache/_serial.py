"""Value codecs: the "safe" tag-length-value format and the opt-in pickle.

The safe codec stores exactly ``str``, ``bytes``, ``int``, ``float``, ``bool``, ``None`` and
``list``/``dict`` (``str`` keys) of them, and gives them back with the same types. It never
executes anything while decoding: a malformed or hostile payload raises ``ValueError``.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any, Final

__all__ = ["PICKLE", "SAFE", "dumps", "loads", "unsupported_type_error"]

SAFE: Final = "safe"
PICKLE: Final = "pickle"

_MAX_DEPTH: Final = 64
_U32 = struct.Struct("!I")
_F64 = struct.Struct("!d")
_pack_u32 = _U32.pack
_unpack_u32 = _U32.unpack_from
_unpack_f64 = _F64.unpack_from


def unsupported_type_error(value: object) -> TypeError:
    """The error raised when the safe serializer meets a type it does not store."""
    return TypeError(
        f"tiered-cache: cannot store a value of type {type(value).__name__!r} with the safe "
        "serializer, which stores str, bytes, int, float, bool, None and lists and dicts "
        "(str keys) of them. Pass serializer='pickle' to TieredCache to store any Python "
        "object on disk, or persist=False to keep this value in memory only."
    )


def _encode(value: Any, out: list[bytes], depth: int) -> None:
    kind = type(value)
    if kind is str:
        data = value.encode("utf-8", "surrogatepass")
        out += (b"s", _pack_u32(len(data)), data)
    elif kind is bytes:
        out += (b"b", _pack_u32(len(value)), value)
    elif value is None:
        out.append(b"N")
    elif kind is bool:
        out.append(b"T" if value else b"F")
    elif kind is int:
        digits = str(value).encode("ascii")
        out += (b"i", _pack_u32(len(digits)), digits)
    elif kind is float:
        out += (b"f", _F64.pack(value))
    elif kind is list:
        if depth >= _MAX_DEPTH:
            raise TypeError(f"tiered-cache: value nested deeper than {_MAX_DEPTH} levels")
        out += (b"l", _pack_u32(len(value)))
        for item in value:
            _encode(item, out, depth + 1)
    elif kind is dict:
        if depth >= _MAX_DEPTH:
            raise TypeError(f"tiered-cache: value nested deeper than {_MAX_DEPTH} levels")
        out += (b"d", _pack_u32(len(value)))
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(
                    f"tiered-cache: dict key {key!r} is not a str; the safe serializer "
                    "stores dicts with str keys only (or pass serializer='pickle')"
                )
            _encode(key, out, depth + 1)
            _encode(item, out, depth + 1)
    else:
        raise unsupported_type_error(value)


def _decode(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    tag = data[pos : pos + 1]
    pos += 1
    if tag == b"s" or tag == b"b" or tag == b"i":
        (length,) = _unpack_u32(data, pos)
        pos += 4
        end = pos + length
        if end > len(data):
            raise ValueError("truncated value")
        chunk = data[pos:end]
        if tag == b"s":
            return chunk.decode("utf-8", "surrogatepass"), end
        if tag == b"b":
            return chunk, end
        return int(chunk.decode("ascii")), end
    if tag == b"N":
        return None, pos
    if tag == b"T":
        return True, pos
    if tag == b"F":
        return False, pos
    if tag == b"f":
        return _unpack_f64(data, pos)[0], pos + 8
    if tag == b"l" or tag == b"d":
        if depth >= _MAX_DEPTH:
            raise ValueError("value nested too deep")
        (count,) = _unpack_u32(data, pos)
        pos += 4
        if count > len(data) - pos:
            raise ValueError("impossible item count")
        if tag == b"l":
            items = []
            for _ in range(count):
                item, pos = _decode(data, pos, depth + 1)
                items.append(item)
            return items, pos
        mapping = {}
        for _ in range(count):
            key, pos = _decode(data, pos, depth + 1)
            if type(key) is not str:
                raise ValueError("dict key is not a str")
            mapping[key], pos = _decode(data, pos, depth + 1)
        return mapping, pos
    raise ValueError(f"unknown tag {tag!r}")


def dumps(value: Any, serializer: str) -> bytes:
    """Encode ``value``; raises ``TypeError`` for what ``serializer`` does not store."""
    if serializer == PICKLE:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def loads(data: bytes, serializer: str) -> Any:
    """Decode what :func:`dumps` wrote; raises ``ValueError`` on anything malformed."""
    if serializer == PICKLE:
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise ValueError(f"malformed pickle: {exc}") from exc
    try:
        value, end = _decode(data, 0, 0)
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise ValueError(f"malformed value: {exc}") from exc
    if end != len(data):
        raise ValueError("trailing bytes after value")
    return value
