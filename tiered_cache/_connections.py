"""The disk tier's SQLite connections: one per thread, closed when the thread ends, fork-safe.

SQLite forbids using a connection in a child process that inherited it, and even closing it
there (https://sqlite.org/howtocorrupt.html, section 2.6): the close may clean up files the
parent still uses. And a thread that is inside SQLite when another thread forks may hold
SQLite's own mutexes and leave the child's copy of SQLite's lock bookkeeping half changed: a
child that then opens a connection of its own can wait forever, or be refused the write lock
for good. So, around every fork (``os.register_at_fork``):

- before it, the fork closes every :class:`Gate` and waits (at most each gate's ``limit``
  seconds) until no thread of this process is inside the SQLite work a gate guards; work that
  starts meanwhile waits for the fork to return. A gate costs a thread two GIL-atomic list
  operations per block of work (about 60 ns);
- in the parent, the gates open again;
- in the child, the inherited connections are never used and never closed: each
  :class:`Connection` whose thread died with the fork (CPython drops those threads' locals in
  the child) hands its SQLite connection to :func:`keep_forever` instead of closing it, and
  the disk tier hands over the forking thread's. They hold an extra reference for the life of
  the process (not even interpreter shutdown deallocates them). The child opens its own.

What SQLite keeps per process (its lock counts on the database file) is inherited anyway: the
child relies, as every diskcache user after a fork does, on its parent keeping its own
connections open while the child runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import weakref
from typing import Any

from . import _fork

__all__ = ["Connection", "Gate", "keep_forever", "pin_inherited"]

#: What a forked child inherited and must never close: connections and what holds them.
_inherited: list[Any] = []
_pinned = 0  # how many of them hold an extra reference (interpreter shutdown frees the rest)
_gates: weakref.WeakSet[Gate] = weakref.WeakSet()


def keep_forever(obj: Any) -> None:
    """Keep ``obj`` (an inherited connection, or what holds one) alive for the process's life."""
    _inherited.append(obj)
    if "ctypes" in sys.modules:  # else pin_inherited does it, from an after-fork hook
        pin_inherited()


def pin_inherited() -> None:
    """An extra reference to every inherited object: never deallocated, so never closed, not
    even when the interpreter shuts down and clears this module."""
    global _pinned
    if _pinned >= len(_inherited):
        return
    try:
        import ctypes

        incref = ctypes.pythonapi.Py_IncRef
        incref.argtypes = [ctypes.py_object]
        incref.restype = None
    except Exception:  # not CPython: the list keeps them until shutdown
        return
    while _pinned < len(_inherited):
        incref(_inherited[_pinned])
        _pinned += 1


class Gate:
    """Lets a fork wait until no thread is inside the SQLite work this gate guards.

    A thread doing such work appends to ``active`` before it and pops after it (both atomic
    under the GIL), and calls :meth:`wait` if it then finds ``closed``. The fork waits at most
    ``limit`` seconds; ``quiet`` says whether it found no work in flight.
    """

    __slots__ = ("__weakref__", "active", "closed", "limit", "quiet", "resume")

    def __init__(self, limit: float) -> None:
        self.active: list[None] = []
        self.closed = False
        self.quiet = True
        self.limit = limit
        self.resume = threading.Event()
        self.resume.set()
        _gates.add(self)

    def wait(self) -> None:
        """Step out while a fork is under way (bounded: a fork that never returns)."""
        for _ in range(100):
            if not self.closed:
                return
            self.active.pop()
            self.resume.wait(0.1)
            self.active.append(None)


def _before_fork() -> None:
    gates = list(_gates)
    for gate in gates:
        gate.resume.clear()
        gate.closed = True
    until = time.monotonic() + max((g.limit for g in gates), default=0.0)
    for gate in gates:
        while gate.active and time.monotonic() < until:
            time.sleep(0.0002)
        gate.quiet = not gate.active


def _after_fork_in_parent() -> None:
    for gate in list(_gates):
        gate.closed = False
        gate.resume.set()


def _after_fork_in_child() -> None:
    global _gates
    _gates = weakref.WeakSet()  # the parent's gates: their owners make new ones in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent)
    _fork.after_fork_in_child(_after_fork_in_child)  # before any owner's hook: made first


class Connection:
    """A thread's SQLite connection to one store, closed explicitly when the thread ends.

    diskcache keeps one SQLite connection per thread and leaves it to be garbage collected
    when the thread dies; SQLite then keeps its file descriptor open while other connections
    of the process hold locks on the file (always, in WAL mode), so short-lived threads leaked
    descriptors without bound. An explicit close lets SQLite reuse them. In a forked child (the
    thread died with the fork) the connection is kept instead: never closed there.
    """

    __slots__ = ("cache", "con", "cursor", "gate", "pid")

    def __init__(self, cache: Any, con: Any, gate: Gate) -> None:
        self.cache = cache  # the store it belongs to (diskcache.Cache)
        self.con = con  # the sqlite3.Connection
        self.cursor = con.cursor()
        self.gate = gate
        self.pid = os.getpid()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if os.getpid() != self.pid:
                keep_forever(self.con)
                return
            gate = self.gate
            gate.active.append(None)
            try:
                if gate.closed:
                    gate.wait()
                self.con.close()
            finally:
                gate.active.pop()
