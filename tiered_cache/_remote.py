"""What the fleet's shared tiers (Redis/Valkey, DynamoDB) have in common: hashed names under a
prefix, and a circuit breaker in front of every call.

A subclass sets ``prefix`` and ``breaker`` (a ``_breaker.Breaker``) and sends each call through
the breaker, returning :data:`FAILED` for one it did not complete.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final

from . import _serial
from ._entry import Entry, decode

if TYPE_CHECKING:
    from ._breaker import Breaker

__all__ = ["FAILED", "RemoteTier"]


class _Failed:
    """Marks a call the tier did not complete (skipped by the breaker, or failed)."""


FAILED: Final = _Failed()


class RemoteTier:
    """The names and health shared by every tier across the network."""

    name = "shared"
    remote = True
    prefix: str
    breaker: Breaker
    corrupt: int  # values refused: not an envelope, pickled, a file, damaged

    def _envelope(self, key: str, data: Any) -> Entry | None:
        """The entry in ``data`` as stored, or None (counted in ``corrupt``) for anything that
        is not a whole safe envelope of ``key``: nothing read from the fleet is unpickled."""
        try:
            if type(data) is not bytes:
                raise ValueError("not bytes")
            entry = decode(key, data, _serial.SAFE)  # a pickled payload raises ValueError
            if entry.flags:
                raise ValueError("pickled or file-backed envelope")
        except ValueError:
            self.corrupt += 1
            return None
        return entry

    def _hashed(self, key: str) -> str:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def data_key(self, key: str) -> str:
        """The stored name of ``key``'s envelope (the plain key never appears)."""
        return f"{self.prefix}v1:{self._hashed(key)}"

    def lock_key(self, key: str) -> str:
        """The stored name of ``key``'s fleet-wide lock."""
        return f"{self.prefix}lock:{self._hashed(key)}"

    @property
    def available(self) -> bool:
        """False while the breaker is open (the tier is skipped until the cool-down ends)."""
        return self.breaker.available

    @property
    def state(self) -> str:
        """The breaker: "closed" (in use), "open" (skipped), "half-open" (next try is a trial)."""
        return self.breaker.state

    @property
    def attempts(self) -> int:
        """Calls sent (or tried)."""
        return self.breaker.attempts

    @property
    def errors(self) -> int:
        """Calls that failed (an error, throttling, or past their deadline)."""
        return self.breaker.errors

    @property
    def skipped(self) -> int:
        """Calls not tried because the breaker was open."""
        return self.breaker.skipped
