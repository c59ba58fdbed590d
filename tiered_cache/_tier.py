"""The tier protocol: what the memory, disk and shared tiers have in common.

Tiers are dumb stores of envelopes (``Entry``): they never decide what is fresh, and never see a
TTL except as the lifetime a write may keep its bytes for. Only ``_core`` knows time,
staleness, promotion and placement. A new tier is one module implementing :class:`Tier` that
passes the conformance suite in ``tests/tiers/``.

Placement is one setting, a set of tiers written as bits: where a value may go.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Final, Protocol

from ._entry import Entry, Guard

__all__ = ["DISK", "EVERYWHERE", "LOCAL", "MEMORY", "SHARED", "Placed", "Tier", "placement"]

#: Placement bits: the process's memory, this machine's disk, the fleet's shared tier.
MEMORY: Final = 1
DISK: Final = 2
SHARED: Final = 4
#: Common placements: every tier; this machine only (memory and disk); memory alone is MEMORY.
EVERYWHERE: Final = MEMORY | DISK | SHARED
LOCAL: Final = MEMORY | DISK


def placement(persist: bool, shared: bool | None = None) -> int:
    """The placement of the public flags: ``persist`` (disk) and ``shared`` (default: as
    ``persist``)."""
    where = MEMORY | (DISK if persist else 0)
    if persist if shared is None else shared:
        where |= SHARED
    return where


class Placed:
    """Returned by a loader to say where its value may go, when that is known only once the
    value is loaded (an SSM SecureString is secret: ``Placed(value, MEMORY)``). The cache stores
    ``value`` within ``where`` (never outside what the caller allowed) and returns ``value``."""

    __slots__ = ("value", "where")

    def __init__(self, value: Any, where: int) -> None:
        self.value = value
        self.where = where


class Tier(Protocol):
    """One tier. Every method is thread-safe and never raises for a fault of the store behind
    it (a read fault is a miss, a write fault is skipped); they are counted in ``stats``."""

    #: A short name ("memory", "disk", "shared"), used in stats and logs.
    name: str
    #: True for a tier across the network (its hits are not re-checked after every lock).
    remote: bool

    @property
    def available(self) -> bool:
        """False while the tier is switched off after a fault."""
        ...

    def get(self, key: str) -> Entry | None:
        """The stored entry (fresh or not; a tombstone is one), or None."""
        ...

    def put(
        self,
        key: str,
        entry: Entry,
        payload: bytes | None,
        lifetime: float,
        guard: Guard | None = None,
    ) -> Entry | None:
        """Store ``entry`` (``payload``: its value in the cache's serializer, for tiers that keep
        bytes) for at most ``lifetime`` more seconds. With ``guard``, atomically: write only if
        ``guard.allows(current)``; otherwise return the standing entry. None when written (or
        when the write was skipped after a fault)."""
        ...

    def delete(self, key: str, tombstone: Entry | None = None) -> bool:
        """Remove ``key`` (leaving ``tombstone`` in its place, where the tier keeps them);
        True if a live entry was there."""
        ...

    def clear(self) -> None: ...

    def stats(self) -> dict[str, int]: ...

    def lock(self, key: str, wait: float) -> AbstractContextManager[bool]:
        """The tier's single-flight lock for ``key``, waited for at most ``wait`` seconds;
        yields whether it is held. Correctness never depends on it."""
        ...

    def close(self) -> None:
        """Let go of what the tier holds open for the calling thread (its connections) and of
        clients it made itself; it stays usable and opens them again on next use."""
        ...
