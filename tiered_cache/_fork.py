"""Fork safety: what a child process must not inherit from its parent.

A lock held by another thread when ``os.fork()`` runs stays held forever in the child, a file
lock inherited through a shared open file description stays held as long as the child keeps
the descriptor, and an SQLite connection must never be used on both sides of a fork. Objects
that own such things register a method here; it runs in the child right after a fork (through
``os.register_at_fork``), before the child runs any other Python code. Nothing runs on a hit
path: the cost is paid once per fork.

Registrations are held weakly: an object that is garbage collected is forgotten.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["after_fork_in_child"]

_hooks: list[weakref.WeakMethod[Callable[[], Any]] | Callable[[], Any]] = []
_guard = threading.Lock()


def after_fork_in_child(hook: Callable[[], Any]) -> None:
    """Run ``hook()`` in every child forked from now on; a bound method is held weakly.

    A hook must not take a lock another thread of the parent could have held: it runs while
    the child has only the forking thread. Exceptions from a hook are swallowed (a fork must
    never fail over the cache); the hook's object then stays as the fork left it.
    """
    ref: weakref.WeakMethod[Callable[[], Any]] | Callable[[], Any]
    ref = weakref.WeakMethod(hook) if hasattr(hook, "__self__") else hook
    with _guard:
        _hooks.append(ref)
        if len(_hooks) > 64 and len(_hooks) & (len(_hooks) - 1) == 0:  # prune dead ones rarely
            _hooks[:] = [h for h in _hooks if not isinstance(h, weakref.WeakMethod) or h()]


def _in_child() -> None:
    global _guard
    _guard = threading.Lock()  # may have been held by another thread of the parent
    live = []
    for ref in _hooks:
        hook = ref() if isinstance(ref, weakref.WeakMethod) else ref
        if hook is None:
            continue
        live.append(ref)
        try:
            hook()
        except Exception:  # noqa: S110 - see the docstring: a fork never fails over the cache
            pass
    _hooks[:] = live


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)
