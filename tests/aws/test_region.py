"""Issue 15, friction 1: the region. boto3 reads ``AWS_DEFAULT_REGION`` (and the config file);
Lambda also sets ``AWS_REGION``, which the library reads when boto3 finds no region. With
none at all, the error names both variables, in plain English (S3 needs no region: boto3
makes its client for us-east-1)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from _awshelp import Calls

from tiered_cache import dynamodb, secrets_manager, ssm
from tiered_cache.exceptions import SourceError


@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """No region anywhere boto3 looks: no variables, no config file."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # made again: reads the environment


def _parameter(region: str, value: str) -> None:
    boto3.client("ssm", region_name=region).put_parameter(
        Name="/app/where", Value=value, Type="String", Overwrite=True
    )


def test_aws_region_alone_is_enough(
    default: Any, no_region: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _parameter("eu-west-1", "west")
    _parameter("us-east-1", "east")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert ssm.get_entry(parameter="/app/where") == "west"


def test_aws_default_region_wins_as_boto3_reads_it_first(
    default: Any, no_region: None, monkeypatch: pytest.MonkeyPatch, calls: Calls
) -> None:
    _parameter("eu-west-1", "west")
    _parameter("ap-south-1", "south")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert ssm.get_entry(parameter="/app/where") == "south"
    # The cache key names the region the call went to: asking for that region explicitly
    # is the same entry (no second call); asking for the other is not.
    assert ssm.get_entry(parameter="/app/where", region_name="ap-south-1") == "south"
    assert calls.count("GetParameter") == 1
    assert ssm.get_entry(parameter="/app/where", region_name="eu-west-1") == "west"
    assert calls.count("GetParameter") == 2


def test_an_explicit_region_is_never_replaced(
    default: Any, no_region: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _parameter("eu-west-1", "west")
    _parameter("us-west-2", "oregon")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert ssm.get_entry(parameter="/app/where", region_name="us-west-2") == "oregon"


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: ssm.get_entry(parameter="/app/where"), "cannot make an ssm client"),
        (lambda: secrets_manager.get_entry(name="db"), "cannot make a secretsmanager client"),
        (
            lambda: dynamodb.get_entry(table="t", key={"id": "x"}),
            "cannot make a dynamodb client",
        ),
    ],
)
def test_no_region_at_all_names_both_variables(
    default: Any, no_region: None, call: Any, words: str
) -> None:
    with pytest.raises(SourceError) as info:
        call()
    message = str(info.value)
    assert words in message
    assert "AWS_REGION" in message
    assert "AWS_DEFAULT_REGION" in message
    assert "region_name=" in message
    assert ".;" not in message
    assert "a ssm" not in message
    assert "You must specify a region" not in message  # botocore's words: ours say what to do
