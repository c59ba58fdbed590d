"""Fixtures for the AWS helpers: moto's ``mock_aws`` with fake credentials, a default cache on
a fake clock in a private directory, and a counter of real API calls.

API calls are counted through botocore's event system (``before-call``), registered on
boto3's default session so that every client the library makes lazily carries it; an
injected client gets it with ``calls.watch(client)``. The library's own functions are never
patched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from _awshelp import Calls
from moto import mock_aws

from tiered_cache import _aws, _config


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every test here, fake credentials, us-east-1, fresh clients and memo tables."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    _aws._reset()
    boto3.setup_default_session()
    with mock_aws():
        yield
    _aws._reset()
    boto3.DEFAULT_SESSION = None


@pytest.fixture
def calls() -> Calls:
    """Counts the API calls of every client made from now on (boto3's default session)."""
    counter = Calls()
    counter.register(boto3._get_default_session().events)
    return counter


@pytest.fixture
def default(make_cache: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The default cache the helpers use: a private directory, a fake clock, no jitter."""
    cache = make_cache()
    monkeypatch.setattr(_config, "_default", cache)
    return cache


@pytest.fixture
def ssm_client() -> Any:
    """A client for arranging SSM state (made before ``calls``: not counted)."""
    return boto3.client("ssm", region_name="us-east-1")


@pytest.fixture
def secrets_client() -> Any:
    return boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def s3_client() -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="bucket")
    return client
