"""``transform=``: the value as stored at the origin, parsed (as Powertools' parameters do).

``"json"`` parses JSON (from ``str`` or UTF-8 ``bytes``), ``"binary"`` decodes base64 into
``bytes``, ``"auto"`` picks by the name's suffix (``.json``, ``.binary``; anything else is
returned as it is), None returns the value unchanged.

A value that does not parse raises ``ValueError`` with a message that names the thing asked for
and never quotes the value; the parser's own exception (a ``JSONDecodeError`` holds the whole
document in ``.doc``) is neither its ``__cause__`` nor its ``__context__``: an error reporter
that walks the chain finds no byte of a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn

if TYPE_CHECKING:
    from typing import TypeAlias

__all__ = ["TRANSFORMS", "Transform", "apply", "check", "method"]

#: The type of ``transform=``.
Transform: TypeAlias = Literal["json", "binary", "auto"] | None

#: What ``transform=`` takes.
TRANSFORMS: Final = (None, "json", "binary", "auto")
_SUFFIXES: Final = {".json": "json", ".binary": "binary"}


def check(name: str, value: Any, owner: str) -> str | None:
    """An option's check: one of :data:`TRANSFORMS`, else ``ValueError``."""
    if value not in TRANSFORMS:
        raise ValueError(
            f"tiered-cache: {owner}: {name} must be 'json', 'binary', 'auto' or None, not {value!r}"
        )
    return value  # type: ignore[no-any-return]


def method(transform: str | None, name: str) -> str | None:
    """The transform for ``name``: ``"auto"`` resolved by its suffix (None: as it is)."""
    if transform != "auto":
        return transform
    for suffix, how in _SUFFIXES.items():
        if name.endswith(suffix):
            return how
    return None


def apply(value: Any, transform: str | None, name: str, what: str) -> Any:  # noqa: RET503
    """``value`` (``str`` or ``bytes``) through ``transform`` for ``name``; ``ValueError`` that
    quotes nothing of the value when it does not parse (see the module docstring)."""
    how = method(transform, name)
    if how is None:
        return value
    if not isinstance(value, (str, bytes)):
        kind = type(value).__name__
        del value
        _raise_alone(
            ValueError(
                f"tiered-cache: {what} is a {kind}, which transform={transform!r} cannot "
                "parse; drop transform= to get it as it is"
            )
        )
    try:
        if how == "json":
            import json

            return json.loads(value)
        import base64

        return base64.b64decode(value)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError or binascii.Error
        detail = getattr(exc, "msg", None) if how == "json" else None
        if not isinstance(detail, str):  # only JSONDecodeError's msg is free of the value
            detail = "not UTF-8 text" if isinstance(exc, UnicodeError) else "does not parse"
    del value
    kind = "JSON" if how == "json" else "base64"
    _raise_alone(
        ValueError(
            f"tiered-cache: {what} is not valid {kind} ({detail}), so transform={transform!r} "
            f"cannot parse it; store {kind} in it, or drop transform= to get the raw value"
        )
    )


def _raise_alone(error: BaseException) -> NoReturn:
    """Raise ``error`` with neither a cause nor a context, even when called while another
    exception is being handled (raised here, outside the parser's except block; a context
    set from the caller's is cleared before the bare re-raise, which sets none)."""
    try:
        raise error from None
    except BaseException:
        error.__context__ = None
        raise
