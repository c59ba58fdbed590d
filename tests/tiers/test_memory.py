"""The memory tier runs the conformance suite."""

from __future__ import annotations

from typing import Any

import pytest

from tiered_cache._memory import MemoryTier

from .suite import TierSuite


class TestMemoryTier(TierSuite):
    tier_class = MemoryTier
    keeps_bytes = False  # the entry's object itself
    guards = True
    keeps_tombstones = True
    process_lock = False  # a per-key thread lock of this instance
    honours_lifetime = False
    shared_between_processes = False
    remote = False

    @pytest.fixture
    def tier_kwargs(self) -> dict[str, Any]:
        return {"max_items": 1000, "max_bytes": 2**24}
