"""Value codecs: the "safe" tag-length-value format and the opt-in pickle.

The safe codec stores ``str``, ``bytes``, ``int``, ``float``, ``bool``, ``None``, ``tuple``,
``set``, ``frozenset``, ``datetime.datetime``, ``datetime.date``, ``decimal.Decimal``,
``uuid.UUID``, and ``list``/``dict`` (``str`` keys only, as in JSON and DynamoDB) of them, nested
anywhere up to 64 levels, and gives them back with the same types. Types are matched exactly
(``type(x) is ...``): a subclass (a ``str`` subclass, an ``OrderedDict``, a ``defaultdict``, a
pandas ``Timestamp``) raises the same ``TypeError`` as any other unsupported type.

What comes back, exactly:

- ``float``: the same IEEE-754 double (``-0.0`` keeps its sign, NaN stays NaN).
- ``Decimal``: the same ``str()``: exponent, sign, NaN/sNaN payloads, infinities, ``-0``. Written
  as ``str(value)``, so a thread whose decimal context has ``capitals=0`` writes ``e`` instead
  of ``E``; both decode to the same value.
- ``datetime``: the same fields and ``fold``. A naive one comes back naive. An aware one comes
  back with a fixed ``datetime.timezone`` of the offset it had at that instant (to the
  microsecond; ``timezone.utc`` for a zero offset): the instant and the offset are kept, a
  named zone (``zoneinfo``, ``pytz``) or a ``timezone``'s name is not. A ``tzinfo`` whose
  ``utcoffset()`` is ``None`` makes a naive value, and comes back naive.
- ``UUID``: the same 128 bits (``is_safe`` is not kept).
- ``set``/``frozenset``: elements are written sorted by their encoded bytes, so equal sets give
  equal bytes.

Decoding never executes anything (no pickle, no ``eval``, no user class is called): a malformed
or hostile payload raises ``ValueError``, never another exception type; every item count is
checked against the bytes left and nesting is bounded, so a payload cannot make the decoder
allocate more than a small multiple of its own size. ``datetime``, ``decimal`` and ``uuid`` are
imported only when a value of theirs is first met, so ``import tiered_cache`` stays light.
The codec keeps no state besides those lazily filled caches: thread-safe and fork-safe.

Wire format (stable: entries on disk from earlier versions decode unchanged; new types only
add tags). Lengths and counts are big-endian ``u32``.

====  ===========================================================================
tag   payload
====  ===========================================================================
s     str: length, UTF-8 (``surrogatepass``)
b     bytes: length, raw
i     int: length, ASCII decimal digits
f     float: 8-byte IEEE-754 double
N T F None, True, False
l d   list: count, items; dict: count, then key (an ``s`` item) and value, in order
t     tuple: count, items
S Z   set, frozenset: count, items sorted by their encoded bytes
n     Decimal: length, ASCII ``str(value)``
D     datetime: u16 year, u8 month day hour minute second, u32 microsecond, u8 flags
      (1: fold, 2: aware), then, when aware, the UTC offset as an i64 of microseconds
y     date: u16 year, u8 month, u8 day
U     UUID: 16 bytes, big-endian
====  ===========================================================================
"""

from __future__ import annotations

import pickle
import struct
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable

    _Encoder = Callable[[Any, list[bytes]], None]
    _Decoder = Callable[[bytes, int], tuple[Any, int]]

__all__ = ["PICKLE", "SAFE", "dumps", "loads", "unsupported_type_error"]

SAFE: Final = "safe"
PICKLE: Final = "pickle"

_MAX_DEPTH: Final = 64
_U32 = struct.Struct("!I")
_F64 = struct.Struct("!d")
_DATETIME = struct.Struct("!HBBBBBIB")  # year month day hour minute second microsecond flags
_OFFSET = struct.Struct("!q")  # UTC offset in microseconds
_DATE = struct.Struct("!HBB")
_pack_u32 = _U32.pack
_unpack_u32 = _U32.unpack_from
_unpack_f64 = _F64.unpack_from
_FOLD: Final = 1
_AWARE: Final = 2

_STORED = (
    "str, bytes, int, float, bool, None, tuple, set, frozenset, datetime.datetime (naive or "
    "aware), datetime.date, decimal.Decimal and uuid.UUID, and lists and dicts (str keys) of "
    "them, nested anywhere; exact types only, not subclasses"
)


def unsupported_type_error(value: object) -> TypeError:
    """The error raised when the safe serializer meets a type it does not store."""
    kind = type(value)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    return TypeError(
        f"tiered-cache: cannot store a value of type {name!r} with the safe serializer, which "
        f"stores {_STORED}. Pass serializer='pickle' to TieredCache (or set "
        "TIERED_CACHE_SERIALIZER=pickle) to store any Python object on disk, or persist=False "
        "to keep this value in memory only."
    )


def _too_deep() -> TypeError:
    return TypeError(f"tiered-cache: value nested deeper than {_MAX_DEPTH} levels")


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
            raise _too_deep()
        out += (b"l", _pack_u32(len(value)))
        for item in value:
            _encode(item, out, depth + 1)
    elif kind is dict:
        if depth >= _MAX_DEPTH:
            raise _too_deep()
        out += (b"d", _pack_u32(len(value)))
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(
                    f"tiered-cache: dict key {key!r} is a {type(key).__name__}, not a str; the "
                    "safe serializer stores dicts with str keys only (as JSON and DynamoDB "
                    "do). Pass serializer='pickle' to store it on disk, or persist=False to keep "
                    "it in memory only."
                )
            _encode(key, out, depth + 1)
            _encode(item, out, depth + 1)
    elif kind is tuple:
        if depth >= _MAX_DEPTH:
            raise _too_deep()
        out += (b"t", _pack_u32(len(value)))
        for item in value:
            _encode(item, out, depth + 1)
    elif kind is set or kind is frozenset:
        if depth >= _MAX_DEPTH:
            raise _too_deep()
        parts = []
        for item in value:
            part: list[bytes] = []
            _encode(item, part, depth + 1)
            parts.append(b"".join(part))
        parts.sort()
        out += (b"S" if kind is set else b"Z", _pack_u32(len(parts)))
        out += parts
    else:
        encoder = _LAZY_ENCODERS.get(kind) or _lazy_encoder(value)
        encoder(value, out)


# -- the lazily imported types: datetime, date, Decimal, UUID ---------------------------------

#: type -> encoder, filled the first time a value of that exact type is met.
_LAZY_ENCODERS: dict[type, _Encoder] = {}


def _encode_decimal(value: Any, out: list[bytes]) -> None:
    text = str(value).encode("ascii")
    out += (b"n", _pack_u32(len(text)), text)


def _encode_datetime(value: Any, out: list[bytes]) -> None:
    offset = value.utcoffset()
    fields = (value.year, value.month, value.day, value.hour, value.minute, value.second)
    if offset is None:
        out += (b"D", _DATETIME.pack(*fields, value.microsecond, value.fold))
        return
    micros = (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds
    flags = value.fold | _AWARE
    out += (b"D", _DATETIME.pack(*fields, value.microsecond, flags), _OFFSET.pack(micros))


def _encode_date(value: Any, out: list[bytes]) -> None:
    out += (b"y", _DATE.pack(value.year, value.month, value.day))


def _encode_uuid(value: Any, out: list[bytes]) -> None:
    out += (b"U", value.bytes)


def _lazy_encoder(value: object) -> _Encoder:
    """The encoder for ``type(value)`` if it is one of the lazily imported types, else raise.

    The module is imported only when a value whose class claims to come from it is met, and
    the class must then be that module's own (``type(x) is``), not a subclass or a look-alike.
    """
    kind = type(value)
    module = getattr(kind, "__module__", None)
    encoder: _Encoder | None = None
    if module == "decimal":
        import decimal

        if kind is decimal.Decimal:
            encoder = _encode_decimal
    elif module == "datetime":
        import datetime

        if kind is datetime.datetime:
            encoder = _encode_datetime
        elif kind is datetime.date:
            encoder = _encode_date
    elif module == "uuid":
        import uuid

        if kind is uuid.UUID:
            encoder = _encode_uuid
    if encoder is None:
        raise unsupported_type_error(value)
    _LAZY_ENCODERS[kind] = encoder
    return encoder


#: name -> class or object for the decoder, filled on first use by :func:`_load`.
_LAZY: dict[str, Any] = {}


def _load(name: str) -> Any:
    if name in ("Decimal", "strict"):
        import decimal

        # Decimal(text, context) raises on a malformed string whatever the thread's context
        # traps; with a non-trapping context it would return NaN instead.
        _LAZY["strict"] = decimal.Context(traps=[decimal.InvalidOperation])
        _LAZY["Decimal"] = decimal.Decimal
    elif name == "UUID":
        import uuid

        _LAZY["UUID"] = uuid.UUID
    else:
        import datetime

        _LAZY.update(
            datetime=datetime.datetime,
            date=datetime.date,
            timezone=datetime.timezone,
            timedelta=datetime.timedelta,
        )
    return _LAZY[name]


def _decode_decimal(data: bytes, pos: int) -> tuple[Any, int]:
    (length,) = _unpack_u32(data, pos)
    pos += 4
    end = pos + length
    if end > len(data):
        raise ValueError("truncated value")
    decimal_class = _LAZY.get("Decimal") or _load("Decimal")
    return decimal_class(data[pos:end].decode("ascii"), _LAZY["strict"]), end


def _decode_datetime(data: bytes, pos: int) -> tuple[Any, int]:
    year, month, day, hour, minute, second, micro, flags = _DATETIME.unpack_from(data, pos)
    pos += _DATETIME.size
    if flags & ~(_FOLD | _AWARE):
        raise ValueError("unknown datetime flags")
    datetime_class = _LAZY.get("datetime") or _load("datetime")
    zone = None
    if flags & _AWARE:
        (offset,) = _OFFSET.unpack_from(data, pos)
        pos += _OFFSET.size
        zone = _LAZY["timezone"](_LAZY["timedelta"](microseconds=offset))
    value = datetime_class(year, month, day, hour, minute, second, micro, zone, fold=flags & _FOLD)
    return value, pos


def _decode_date(data: bytes, pos: int) -> tuple[Any, int]:
    year, month, day = _DATE.unpack_from(data, pos)
    date_class = _LAZY.get("date") or _load("date")
    return date_class(year, month, day), pos + _DATE.size


def _decode_uuid(data: bytes, pos: int) -> tuple[Any, int]:
    end = pos + 16
    if end > len(data):
        raise ValueError("truncated value")
    uuid_class = _LAZY.get("UUID") or _load("UUID")
    return uuid_class(bytes=data[pos:end]), end


_SCALAR_DECODERS: dict[bytes, _Decoder] = {
    b"n": _decode_decimal,
    b"D": _decode_datetime,
    b"y": _decode_date,
    b"U": _decode_uuid,
}


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
    scalar = _SCALAR_DECODERS.get(tag)
    if scalar is not None:
        return scalar(data, pos)
    if tag == b"t" or tag == b"S" or tag == b"Z":
        if depth >= _MAX_DEPTH:
            raise ValueError("value nested too deep")
        (count,) = _unpack_u32(data, pos)
        pos += 4
        if count > len(data) - pos:
            raise ValueError("impossible item count")
        members = []
        for _ in range(count):
            item, pos = _decode(data, pos, depth + 1)
            members.append(item)
        if tag == b"t":
            return tuple(members), pos
        try:
            return (set(members) if tag == b"S" else frozenset(members)), pos
        except TypeError as exc:  # a list (or a tuple holding one) planted in a set
            raise ValueError(f"unhashable set element: {exc}") from exc
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
    except (struct.error, UnicodeDecodeError, IndexError, ArithmeticError, TypeError) as exc:
        # ArithmeticError: decimal.InvalidOperation (a malformed Decimal) and OverflowError.
        raise ValueError(f"malformed value: {exc}") from exc
    if end != len(data):
        raise ValueError("trailing bytes after value")
    return value
