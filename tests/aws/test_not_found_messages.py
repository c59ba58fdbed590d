"""Not-found messages name a version selector only for the services that have one (issue 15,
friction 3): SSM (versions and labels: ``/name:3``, ``/name:prod``), Secrets Manager (version
stages and ids); DynamoDB, AppConfig and S3 have none to check."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tiered_cache import _aws, appconfig, dynamodb, s3, secrets_manager, ssm
from tiered_cache.exceptions import NotFoundError


def _message(call: Any) -> str:
    with pytest.raises(NotFoundError) as info:
        call()
    return str(info.value)


def test_ssm_names_its_versions_and_labels(default: Any) -> None:
    message = _message(lambda: ssm.get_entry("/prod/app/missing"))
    assert "'/prod/app/missing'" in message
    assert "check the name, the region and the version or label asked for" in message
    assert "stage" not in message


def test_secrets_manager_names_its_version_stages(default: Any) -> None:
    message = _message(lambda: secrets_manager.get_entry("prod/missing"))
    assert "'prod/missing'" in message
    assert "check the name, the region and the version or stage asked for" in message


def test_dynamodb_names_no_version(default: Any) -> None:
    message = _message(lambda: dynamodb.get_entry(table="no-such-table", key={"id": "x"}))
    assert "no-such-table" in message
    assert "ResourceNotFoundException" in message
    assert "version" not in message
    assert "stage" not in message
    assert message.endswith("check the name and the region")


def test_s3_names_no_stage(default: Any, s3_client: Any) -> None:
    message = _message(lambda: s3.get_entry(s3Uri="s3://bucket/missing.bin"))
    assert "stage" not in message
    assert "version" not in message


def test_appconfig_names_no_version(default: Any) -> None:
    client = _aws.get_client("appconfigdata")
    with Stubber(client) as stub:
        stub.add_client_error(
            "start_configuration_session", "ResourceNotFoundException", "no profile", 404
        )
        message = _message(lambda: appconfig.get_entry("app", "prod", "flags"))
        stub.assert_no_pending_responses()
    assert "'flags'" in message
    assert "version" not in message
    assert "stage" not in message


def test_translate_alone_follows_the_operation() -> None:
    from botocore.exceptions import ClientError

    def error(operation: str) -> ClientError:
        return ClientError({"Error": {"Code": "ResourceNotFoundException"}}, operation)

    assert "version or stage" in str(_aws.translate(error("GetSecretValue"), "x"))
    assert "version or label" in str(_aws.translate(error("GetParameter"), "x"))
    for operation in ("GetItem", "StartConfigurationSession", "GetObject"):
        assert "version" not in str(_aws.translate(error(operation), "x"))
    assert boto3  # moto's fixture is autouse here: no real AWS is asked
