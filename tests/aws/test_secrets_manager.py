"""tiered_cache.secrets_manager under moto: values, transform, versions, memory-only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _awshelp import Calls, bytes_under

import tiered_cache as tiered
from tiered_cache import secrets_manager, ssm
from tiered_cache.exceptions import ArgumentTypeNotSupportedError, NoEntryNameError, NotFoundError

SECRET = "hunter2-very-secret"


@pytest.fixture
def secrets(secrets_client: Any) -> Any:
    secrets_client.create_secret(Name="prod/db", SecretString=SECRET)
    secrets_client.create_secret(Name="prod/blob", SecretBinary=b"\x00\x01secret-bytes")
    secrets_client.create_secret(Name="prod/json", SecretString=json.dumps({"user": "u"}))
    return secrets_client


def test_string_binary_and_json(default: Any, secrets: Any, calls: Calls) -> None:
    assert secrets_manager.get_entry(name="prod/db") == SECRET
    assert secrets_manager.get_entry(name="prod/blob") == b"\x00\x01secret-bytes"
    assert secrets_manager.get_entry(name="prod/json", transform="json") == {"user": "u"}
    assert secrets_manager.get_entry(name="prod/json") == '{"user": "u"}'
    assert calls.count("GetSecretValue") == 4  # transform is part of the key
    assert secrets_manager.get_entry(name="prod/db") == SECRET
    assert calls.count() == 4


def test_not_json_is_a_clear_error_that_never_quotes_the_secret(default: Any, secrets: Any) -> None:
    with pytest.raises(ValueError, match="not valid JSON") as info:
        secrets_manager.get_entry(name="prod/db", transform="json")
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None
    assert "prod/db" in str(info.value)
    with pytest.raises(ValueError, match="transform"):
        secrets_manager.get_entry(name="prod/db", transform="yaml")  # type: ignore[typeddict-item]


def test_binary_json(default: Any, secrets_client: Any) -> None:
    secrets_client.create_secret(Name="bin/json", SecretBinary=b'{"a": 1}')
    secrets_client.create_secret(Name="bin/bad", SecretBinary=b"\xff\xfe")
    assert secrets_manager.get_entry(name="bin/json", transform="json") == {"a": 1}
    with pytest.raises(ValueError, match="not valid JSON"):
        secrets_manager.get_entry(name="bin/bad", transform="json")


def test_version_stage_and_version_id(default: Any, secrets: Any, calls: Calls) -> None:
    first = secrets.describe_secret(SecretId="prod/db")
    first_id = next(iter(first["VersionIdsToStages"]))
    secrets.put_secret_value(SecretId="prod/db", SecretString="rotated")
    assert secrets_manager.get_entry(name="prod/db") == "rotated"
    assert secrets_manager.get_entry(name="prod/db", version_stage="AWSPREVIOUS") == SECRET
    assert secrets_manager.get_entry(name="prod/db", version_id=first_id) == SECRET
    assert secrets_manager.get_entry(name="prod/db", version_stage="AWSCURRENT") == "rotated"
    assert calls.count() == 4
    assert calls.requests("GetSecretValue")[1] == {
        "SecretId": "prod/db",
        "VersionStage": "AWSPREVIOUS",
    }
    with pytest.raises(TypeError, match="version_stage"):
        secrets_manager.get_entry(name="prod/db", version_stage="")


def test_missing_secret_and_version_are_not_found(default: Any, secrets: Any) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(NotFoundError) as info:
        secrets_manager.get_entry(name="prod/none")
    assert isinstance(info.value.__cause__, ClientError)
    with pytest.raises(NotFoundError):
        secrets_manager.get_entry(name="prod/db", version_stage="NOPE")


def test_secrets_never_touch_the_disk(
    default: Any,
    secrets: Any,
    ssm_client: Any,
    calls: Calls,
    make_cache: Any,
) -> None:
    ssm_client.put_parameter(Name="/plain/p", Value="plain-value-on-disk", Type="String")
    ssm.get_entry("/plain/p")  # something that does go to disk, to prove the grep finds it
    secrets_manager.get_entry(name="prod/db")
    secrets_manager.get_entry(name="prod/blob")
    secrets_manager.get_entry(name="prod/json", transform="json")

    @secrets_manager.cache(name="prod/db", entry_name="db")
    def handler(event: Any, context: Any) -> str:
        return str(context.db)

    from _awshelp import Context

    assert handler({}, Context()) == SECRET
    everything = bytes_under(default.directory)
    assert b"plain-value-on-disk" in everything
    for secret in (SECRET.encode(), b"secret-bytes", b'"user"'):
        assert secret not in everything
    tiered.set_default_cache(make_cache())
    secrets_manager.get_entry(name="prod/db")
    assert calls.count("GetSecretValue") == 4  # nothing to share through /tmp


def test_persist_true_opts_in_to_disk(
    default: Any, secrets: Any, calls: Calls, make_cache: Any
) -> None:
    secrets_manager.get_entry(name="prod/db", persist=True)
    tiered.set_default_cache(make_cache())
    assert secrets_manager.get_entry(name="prod/db", persist=True) == SECRET
    assert calls.count() == 1


def test_a_secret_and_a_parameter_with_the_same_name_do_not_collide(
    default: Any, secrets: Any, ssm_client: Any
) -> None:
    ssm_client.put_parameter(Name="/prod/db", Value="the-parameter", Type="String")
    assert ssm.get_entry("/prod/db") == "the-parameter"
    assert secrets_manager.get_entry("prod/db") == SECRET
    assert ssm.get_entry("/prod/db") == "the-parameter"


@pytest.mark.parametrize(
    ("name", "entry_name", "error"),
    [
        (["a"], False, NoEntryNameError),
        (["a", 2], "x", ArgumentTypeNotSupportedError),  # a list takes names only
        ({"a": 1}, "x", ArgumentTypeNotSupportedError),
        (None, "x", ArgumentTypeNotSupportedError),
        (b"prod/db", False, ArgumentTypeNotSupportedError),
    ],
)
def test_argument_errors(default: Any, name: Any, entry_name: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        secrets_manager.get_entry(name, entry_name=entry_name)


def test_empty_name(default: Any) -> None:
    with pytest.raises(ValueError, match="empty"):
        secrets_manager.get_entry("")
