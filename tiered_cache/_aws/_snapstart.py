"""SnapStart: after a restore, every entry stored before it counts as expired.

When ``snapshot_restore_py`` is importable (Lambda, Python 3.12+), :func:`register_snapstart`
(called when ``tiered_cache._aws`` is imported) registers :func:`after_restore`.
"""

from __future__ import annotations

from .. import _config
from ._plan import _missing

_registered = False


def after_restore() -> None:
    """SnapStart after-restore hook: entries stored before now count as expired."""
    _missing.clear()
    _config.default_cache().expire_all()


def register_snapstart() -> bool:
    """Register :func:`after_restore` with ``snapshot_restore_py`` if it is importable (once).

    Returns True if the hook is registered. Called when this module is imported.
    """
    global _registered
    if _registered:
        return True
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found, unused-ignore]
            register_after_restore,
        )
    except ImportError:
        return False
    register_after_restore(after_restore)
    _registered = True
    return True
