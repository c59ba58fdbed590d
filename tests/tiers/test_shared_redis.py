"""The shared tier runs the conformance suite against a real redis-server on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

redis = pytest.importorskip("redis", reason="the shared-tier tests need redis-py (the test extra)")

from shared.conftest import RedisServer, _free_port  # noqa: E402

from tiered_cache._shared import SharedTier  # noqa: E402

from .suite import TierSuite  # noqa: E402

#: Glob characters in the prefix: an unescaped SCAN pattern would clear the neighbour's keys.
_GLOBBY = "*[ab]?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this module's own (tests/shared's helper); each test has a prefix."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


class TestSharedRedisTier(TierSuite):
    tier_class = SharedTier
    keeps_bytes = True
    guards = False  # put writes unconditionally and returns None
    keeps_tombstones = False
    process_lock = True  # SET NX PX, for every instance and process on the server
    honours_lifetime = True  # Redis expiry
    shared_between_processes = True  # every instance with the same URL and prefix
    remote = True
    fault_counter = "shared_errors"

    @pytest.fixture
    def tier_kwargs(self, server: RedisServer) -> dict[str, Any]:
        return {"url": server.url, "prefix": f"tc-{uuid.uuid4().hex[:8]}{_GLOBBY}:"}

    @pytest.fixture
    def neighbour_kwargs(self, tier_kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**tier_kwargs, "prefix": tier_kwargs["prefix"].replace(_GLOBBY, "Xa!")}

    @pytest.fixture
    def broken_kwargs(self) -> dict[str, Any]:
        """Nothing listens on the port."""
        return {"url": f"redis://127.0.0.1:{_free_port()}/0"}

    def stored_names(self, kwargs: dict[str, Any]) -> set[str]:
        client = redis.Redis.from_url(kwargs["url"])
        return {name.decode() for name in client.keys("*")}
