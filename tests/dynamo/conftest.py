"""Fixtures of the DynamoDB-tier suite: one moto server over HTTP on loopback for the session.

``moto.server.ThreadedMotoServer`` serves every process that is given its URL (moto's
in-process mock is per process), so the fleet test's workers and the conformance suite's
children share its tables. Each test gets a table of its own (``table``), with the schema the
README documents: a string partition key ``pk``.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("boto3", reason="the DynamoDB-tier tests need boto3 (the test extra)")
pytest.importorskip("moto.server", reason="the DynamoDB-tier tests need moto[server]")

import boto3

from tiered_cache._dynamo import DynamoDBTier

REGION = "us-east-1"
#: What a process needs to reach the moto server (and nothing else) with boto3's defaults.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


class MotoServer:
    """moto on 127.0.0.1, a free port, in a thread of this process."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.port = port
        self.url = f"http://{host}:{port}"
        self.client().list_tables()  # moto loads its DynamoDB backend on first use: slowly

    def client(self) -> Any:
        return self.client_for(self.url)

    @staticmethod
    def client_for(url: str) -> Any:
        """A plain boto3 DynamoDB client on the moto server at ``url``."""
        return boto3.client(
            "dynamodb",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def create_table(self, name: str | None = None) -> str:
        """A table with the documented schema (string partition key ``pk``); its name."""
        name = name or f"tc-{uuid.uuid4().hex[:12]}"
        self.client().create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        return name

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """This process (and the children it starts) reach the moto server with boto3's defaults:
    fake credentials, us-east-1, ``AWS_ENDPOINT_URL``. Returns those variables."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": moto_server.url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    boto3.DEFAULT_SESSION = None
    yield env
    boto3.DEFAULT_SESSION = None


@pytest.fixture
def table(moto_server: MotoServer, aws_env: dict[str, str]) -> str:
    """A fresh table of this test's own on the moto server."""
    return moto_server.create_table()


@pytest.fixture
def dclient(moto_server: MotoServer) -> Any:
    """A plain boto3 DynamoDB client on the moto server (to inspect or plant items)."""
    return moto_server.client()


@pytest.fixture
def make_tier(table: str, moto_server: MotoServer, fake_clock: Any) -> Callable[..., DynamoDBTier]:
    """Factory: ``make_tier(**overrides)`` -> DynamoDBTier on this test's table, fake clock.

    A generous deadline: moto answers in milliseconds, but the machine is shared."""

    def make(**kwargs: Any) -> DynamoDBTier:
        kwargs.setdefault("clock", fake_clock)
        kwargs.setdefault("timeout", 2.0)
        kwargs.setdefault("endpoint_url", moto_server.url)
        return DynamoDBTier(kwargs.pop("table", table), **kwargs)

    return make


def items(client: Any, table: str) -> list[dict[str, Any]]:
    """Every item of ``table`` (one scan, paginated)."""
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        found.extend(page["Items"])
    return found
