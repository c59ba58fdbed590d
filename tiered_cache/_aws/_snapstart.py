"""SnapStart, for the AWS helpers: the state of theirs a restore must also undo.

There is one after-restore mechanism, the engine's (:mod:`tiered_cache._restore`): it expires
every live cache (memory and disk) and reseeds each one's jitter. The helpers keep state outside
any cache, and :func:`register` (run when ``tiered_cache._aws`` is imported) adds it to that
mechanism with ``_restore.on_restore``:

- the remembered misses (the negative cache): a name missing at snapshot time may exist by the
  time the snapshot is restored, and must be asked for again.

Sources with state of their own (AppConfig's session tokens) register their own hooks the same
way. Thread-safe: the hook runs once per restore, before the first invocation.
"""

from __future__ import annotations

from .. import _restore
from ._plan import _missing

_registered: list[bool] = []


def forget_misses() -> None:
    """After a restore: forget every remembered miss."""
    _missing.clear()


def register() -> None:
    """Add :func:`forget_misses` to the engine's after-restore hooks (once per process)."""
    if not _registered:
        _registered.append(True)
        _restore.on_restore(forget_misses)
