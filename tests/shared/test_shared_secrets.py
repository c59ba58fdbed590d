"""Secrets reach the shared tier only when the caller opts in per call (issue 6), even when the
caller persists them to this machine's disk: Secrets Manager values and SSM SecureStrings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

import tiered_cache as tiered
from tiered_cache import secrets_manager, ssm
from tiered_cache._shared import SharedTier

SECRET = "s3cr3t-value-8f2c"


@pytest.fixture
def shared_default(
    moto_aws: None,
    make_cache: Callable[..., Any],
    make_tier: Callable[..., SharedTier],
    rclient: Any,
    unique_prefix: str,
) -> Callable[[], list[bytes]]:
    """The helpers' default cache with a shared tier; returns a reader of its Redis values."""
    cache = make_cache(shared=make_tier(prefix=unique_prefix))
    tiered.set_default_cache(cache)
    boto3.client("ssm").put_parameter(Name="/app/token", Value=SECRET, Type="SecureString")
    boto3.client("ssm").put_parameter(Name="/app/plain", Value="plain-value", Type="String")
    boto3.client("secretsmanager").create_secret(Name="prod/db", SecretString=SECRET)

    def values() -> list[bytes]:
        return [rclient.get(k) or b"" for k in rclient.keys(unique_prefix + "v1:*")]

    return values


def test_persisted_secrets_stay_off_the_shared_tier(shared_default: Any) -> None:
    assert ssm.get_entry(parameter="/app/plain") == "plain-value"
    assert ssm.get_entry(parameter="/app/token", persist=True) == SECRET
    assert secrets_manager.get_entry(name="prod/db", persist=True) == SECRET
    stored = shared_default()
    assert any(b"plain-value" in v for v in stored)  # the plain String is shared: the scan works
    assert not any(SECRET.encode() in v for v in stored)


@pytest.mark.parametrize("helper", ["ssm", "secrets_manager"])
def test_secrets_reach_the_shared_tier_when_asked(shared_default: Any, helper: str) -> None:
    if helper == "ssm":
        assert ssm.get_entry(parameter="/app/token", persist=True, shared=True) == SECRET
    else:
        assert secrets_manager.get_entry(name="prod/db", shared=True) == SECRET
    assert any(SECRET.encode() in v for v in shared_default())


def test_shared_must_be_a_bool(shared_default: Any) -> None:
    with pytest.raises(TypeError, match="shared must be True or False"):
        ssm.get_entry(parameter="/app/plain", shared="yes")
