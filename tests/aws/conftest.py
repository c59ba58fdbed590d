"""Fixtures for the AWS helpers: moto's ``mock_aws`` with fake credentials, a default cache on
a fake clock in a private directory, and a counter of real API calls.

API calls are counted through botocore's event system (``before-call``), registered on
boto3's default session so that every client the library makes lazily carries it; an
injected client gets it with ``calls.watch(client)``. The library's own functions are never
patched.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from _awshelp import Calls


@pytest.fixture(autouse=True)
def aws(moto_aws: None) -> None:
    """moto for every test here (the root conftest's ``moto_aws``)."""


@pytest.fixture
def calls() -> Calls:
    """Counts the API calls of every client made from now on (boto3's default session)."""
    counter = Calls()
    counter.register(boto3._get_default_session().events)
    return counter


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
