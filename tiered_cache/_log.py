"""The ``tiered_cache`` logger, imported on first use.

Importing :mod:`logging` costs about 10 ms in a fresh interpreter, and this library logs only
when something goes wrong (a disk fault, a stale value standing in, a bad setting): a cold
start that never logs never pays for it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["log"]


class _LazyLogger:
    """Forwards ``debug``/``warning``/``error`` to ``logging.getLogger("tiered_cache")``."""

    __slots__ = ()

    def _emit(self, level: str, msg: str, *args: Any, **kwargs: Any) -> None:
        import logging

        kwargs.setdefault("stacklevel", 3)  # the caller of log.warning(...), not this module
        getattr(logging.getLogger("tiered_cache"), level)(msg, *args, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._emit("debug", msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._emit("warning", msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._emit("error", msg, *args, **kwargs)


log = _LazyLogger()
