"""The DynamoDB shared tier runs the conformance suite against one moto server over HTTP."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest

pytest.importorskip("boto3", reason="the DynamoDB-tier tests need boto3 (the test extra)")
pytest.importorskip("moto.server", reason="the DynamoDB-tier tests need moto[server]")

from dynamo import conftest as dynamo
from dynamo.conftest import REGION, MotoServer, items

from tiered_cache._dynamo import DynamoDBTier

from .suite import TierSuite

# The DynamoDB suite's fixtures, here under their own names: one moto server for the session.
moto_server = dynamo.moto_server
aws_env = dynamo.aws_env


class TestDynamoDBTier(TierSuite):
    tier_class = DynamoDBTier
    keeps_bytes = True
    guards = False  # put writes unconditionally and returns None, like the Redis tier
    keeps_tombstones = False
    process_lock = True  # a conditional put on the lock item, seen by the whole fleet
    honours_lifetime = True  # an item past its ttl (whole seconds) is a miss
    shared_between_processes = True  # every instance on the same table and prefix
    remote = True
    fault_counter = "shared_errors"

    @pytest.fixture
    def tier_kwargs(self, moto_server: MotoServer, aws_env: dict[str, str]) -> dict[str, Any]:
        return {
            "table": moto_server.create_table(),
            "prefix": f"tc-{uuid.uuid4().hex[:8]}:",
            "endpoint_url": moto_server.url,
            "region_name": REGION,
            "timeout": 2.0,  # moto answers in milliseconds, but the machine is shared
        }

    @pytest.fixture
    def neighbour_kwargs(self, tier_kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**tier_kwargs, "prefix": tier_kwargs["prefix"] + "v1:"}  # starts like ours

    @pytest.fixture
    def broken_kwargs(self, aws_env: dict[str, str]) -> dict[str, Any]:
        """Nothing listens on the port."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return {"table": "t", "endpoint_url": f"http://127.0.0.1:{port}", "region_name": REGION}

    def stored_names(self, kwargs: dict[str, Any]) -> set[str]:
        client = MotoServer.client_for(kwargs["endpoint_url"])
        return {item["pk"]["S"] for item in items(client, kwargs["table"])}
