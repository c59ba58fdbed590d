"""SnapStart: what a restore from a snapshot must undo, for every cache in the process.

A SnapStart snapshot holds the process's memory and ``/tmp`` as they were at INIT, and is
restored into many execution environments, perhaps long after. So after a restore:

- every live cache (held weakly) expires what it holds: entries stored before the restore count
  as expired in every tier (``TieredCache.expire_all``: memory is dropped, and disk entries,
  which the snapshot also holds, are not served), so no snapshot-time value is served;
- every cache reseeds its jitter generator from ``os.urandom``: clones of one snapshot would
  otherwise draw the same jitter sequence and refresh in step, which jitter exists to prevent;
- hooks registered with :func:`on_restore` run (the AWS helpers forget remembered misses).

The hook is registered with ``snapshot_restore_py`` (where it is importable: Lambda's Python
runtime ships it) when the first cache is made, whichever cache that is, so a function that
uses only ``@tiered.cache`` is covered too. Registration costs nothing where it is absent.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._core import TieredCache

__all__ = ["after_restore", "on_restore", "track"]

_caches: weakref.WeakSet[TieredCache] = weakref.WeakSet()
_hooks: list[Callable[[], Any]] = []
_lock = threading.Lock()
_registered = False


def track(cache: TieredCache) -> None:
    """Expire and reseed ``cache`` after a restore; registers the hook on first use."""
    global _registered
    _caches.add(cache)
    if _registered:
        return
    with _lock:
        if _registered:
            return
        try:
            from snapshot_restore_py import (  # type: ignore[import-not-found, unused-ignore]
                register_after_restore,
            )
        except ImportError:
            _registered = True  # nothing to register with in this process
            return
        register_after_restore(after_restore)
        _registered = True


def on_restore(hook: Callable[[], Any]) -> None:
    """Run ``hook()`` after a restore, after every cache has been expired."""
    _hooks.append(hook)


def after_restore() -> None:
    """The after-restore hook: expire and reseed every live cache, then run the hooks."""
    for cache in list(_caches):
        cache._after_restore()
    for hook in list(_hooks):
        hook()
