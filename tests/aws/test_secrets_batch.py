"""secrets_manager.get_entry with a list of names under moto: BatchGetSecretValue in calls of
at most 20, a dict by name, missing names, memory only, transforms per name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _awshelp import Calls, Context, bytes_under

import tiered_cache as tiered
from tiered_cache import secrets_manager
from tiered_cache.exceptions import NoEntryNameError, NotFoundError

NAMES = [f"batch/s{i:02d}" for i in range(25)]


@pytest.fixture
def many(secrets_client: Any) -> Any:
    for i, name in enumerate(NAMES):
        secrets_client.create_secret(Name=name, SecretString=f"secret-value-{i:02d}")
    secrets_client.create_secret(Name="batch/blob", SecretBinary=b"\x00secret-bytes")
    secrets_client.create_secret(Name="batch/cfg.json", SecretString=json.dumps({"user": "u"}))
    secrets_client.create_secret(Name="batch/key.binary", SecretString="aGVsbG8=")
    return secrets_client


def test_25_names_take_two_batch_calls_and_give_a_dict_by_name(
    default: Any, many: Any, calls: Calls
) -> None:
    got = secrets_manager.get_entry(name=NAMES, entry_name="all")
    assert got == {name: f"secret-value-{i:02d}" for i, name in enumerate(NAMES)}
    assert list(got) == NAMES  # in the order asked for
    assert [len(r["SecretIdList"]) for r in calls.requests("BatchGetSecretValue")] == [20, 5]
    assert secrets_manager.get_entry(name=NAMES, entry_name="all") == got  # a hit
    assert calls.count() == 2


def test_binary_and_transforms_apply_per_name(default: Any, many: Any) -> None:
    names = ["batch/blob", "batch/cfg.json", "batch/key.binary", "batch/s00"]
    raw = secrets_manager.get_entry(name=names, entry_name="s")
    assert raw["batch/blob"] == b"\x00secret-bytes"
    assert raw["batch/cfg.json"] == '{"user": "u"}'
    auto = secrets_manager.get_entry(name=names, entry_name="s", transform="auto")
    assert auto == {
        "batch/blob": b"\x00secret-bytes",
        "batch/cfg.json": {"user": "u"},
        "batch/key.binary": b"hello",
        "batch/s00": "secret-value-00",
    }
    with pytest.raises(ValueError, match="not valid JSON"):
        secrets_manager.get_entry(name=names, entry_name="s", transform="json")


def test_missing_names_are_all_named(default: Any, many: Any, calls: Calls) -> None:
    with pytest.raises(NotFoundError) as info:
        secrets_manager.get_entry(name=["batch/s01", "nope/a", "nope/b"], entry_name="x")
    assert "nope/a" in str(info.value)
    assert "nope/b" in str(info.value)
    assert "batch/s01" not in str(info.value)
    with pytest.raises(NotFoundError):  # remembered
        secrets_manager.get_entry(name=["batch/s01", "nope/a", "nope/b"], entry_name="x")
    assert calls.count("BatchGetSecretValue") == 1


def test_an_arn_is_a_name(default: Any, many: Any) -> None:
    arn = many.describe_secret(SecretId="batch/s03")["ARN"]
    assert secrets_manager.get_entry(name=[arn, "batch/s04"], entry_name="x") == {
        arn: "secret-value-03",
        "batch/s04": "secret-value-04",
    }


def test_a_list_stays_in_memory(default: Any, many: Any, calls: Calls, make_cache: Any) -> None:
    secrets_manager.get_entry(name=NAMES[:3], entry_name="x")
    assert b"secret-value-0" not in bytes_under(default.directory)
    with tiered.use_cache(make_cache()):  # a new process on the same /tmp: nothing to share
        secrets_manager.get_entry(name=NAMES[:3], entry_name="x")
    assert calls.count("BatchGetSecretValue") == 2


def test_expiry_brings_updates(default: Any, many: Any, calls: Calls, fake_clock: Any) -> None:
    assert secrets_manager.get_entry(name=NAMES[:2], entry_name="x")[NAMES[0]] == "secret-value-00"
    many.put_secret_value(SecretId=NAMES[0], SecretString="rotated")
    fake_clock.advance(61)
    assert secrets_manager.get_entry(name=NAMES[:2], entry_name="x")[NAMES[0]] == "rotated"
    assert calls.count("BatchGetSecretValue") == 2


def test_the_handler_sets_the_dict(default: Any, many: Any) -> None:
    @secrets_manager.cache(name=["batch/s05", "batch/s06"], entry_name="creds")
    def handler(event: Any, context: Any) -> Any:
        return context.creds

    assert handler({}, Context()) == {
        "batch/s05": "secret-value-05",
        "batch/s06": "secret-value-06",
    }


def test_list_argument_errors(default: Any, calls: Calls) -> None:
    with pytest.raises(NoEntryNameError):
        secrets_manager.get_entry(name=["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        secrets_manager.get_entry(name=[], entry_name="x")
    with pytest.raises(TypeError, match="one secret"):
        secrets_manager.get_entry(name=["a"], entry_name="x", version_stage="AWSPREVIOUS")
    assert calls.count() == 0
