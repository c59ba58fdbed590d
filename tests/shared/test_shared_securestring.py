"""``ssm.get_entry(..., shared=True)`` on a SecureString, without ``persist``: the value reaches
memory and the shared tier (a real redis-server), never a disk: neither the disk of the machine
that loaded it nor the disk of another machine that reads it from the shared tier (issue 15)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import boto3
import pytest

import tiered_cache as tiered
from tiered_cache import ssm
from tiered_cache._shared import SharedTier

SECRET = "s3cure-string-5d1e"


def _disk_bytes(root: str) -> bytes:
    chunks = []
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:
                chunks.append(handle.read())
    return b"".join(chunks)


@pytest.fixture
def fleet(
    moto_aws: None,
    make_cache: Callable[..., Any],
    make_tier: Callable[..., SharedTier],
    unique_prefix: str,
    tmp_path: Any,
) -> tuple[Any, Any]:
    """Two machines (own directories) over one shared tier; the first is the default cache."""
    boto3.client("ssm").put_parameter(Name="/app/token", Value=SECRET, Type="SecureString")
    boto3.client("ssm").put_parameter(Name="/app/plain", Value="plain-value", Type="String")
    first = make_cache(shared=make_tier(prefix=unique_prefix), directory=str(tmp_path / "a"))
    second = make_cache(shared=make_tier(prefix=unique_prefix), directory=str(tmp_path / "b"))
    tiered.set_default_cache(first)
    return first, second


@pytest.fixture
def origin_calls() -> list[str]:
    made: list[str] = []
    boto3._get_default_session().events.register(
        "before-call", lambda model, **_: made.append(model.name)
    )
    return made


def _shared_values(rclient: Any, prefix: str) -> list[bytes]:
    return [rclient.get(k) or b"" for k in rclient.keys(prefix + "v1:*")]


def test_shared_true_reaches_memory_and_the_shared_tier_but_no_disk(
    fleet: tuple[Any, Any], rclient: Any, unique_prefix: str, origin_calls: list[str]
) -> None:
    first, second = fleet
    assert ssm.get_entry("/app/token", shared=True) == SECRET
    assert origin_calls == ["GetParameter"]
    assert any(SECRET.encode() in v for v in _shared_values(rclient, unique_prefix))
    assert SECRET.encode() not in _disk_bytes(str(first.directory))
    assert ssm.get_entry("/app/token", shared=True) == SECRET  # memory
    assert origin_calls == ["GetParameter"]

    with tiered.use_cache(second):  # another machine of the fleet
        assert ssm.get_entry("/app/token", shared=True) == SECRET
        assert origin_calls == ["GetParameter"]  # from the shared tier
        assert second.stats()["shared_hits"] == 1
    assert SECRET.encode() not in _disk_bytes(str(second.directory))


def test_without_shared_a_securestring_stays_in_memory(
    fleet: tuple[Any, Any], rclient: Any, unique_prefix: str, origin_calls: list[str]
) -> None:
    first, second = fleet
    assert ssm.get_entry("/app/token") == SECRET
    assert not any(SECRET.encode() in v for v in _shared_values(rclient, unique_prefix))
    assert SECRET.encode() not in _disk_bytes(str(first.directory))
    with tiered.use_cache(second):
        assert ssm.get_entry("/app/token") == SECRET
    assert origin_calls == ["GetParameter", "GetParameter"]


@pytest.mark.parametrize(
    ("options", "on_disk"),
    [({}, True), ({"shared": True}, False), ({"shared": True, "persist": True}, True)],
)
def test_a_plain_string_reaches_the_disk_unless_shared_true_comes_alone(
    fleet: tuple[Any, Any], rclient: Any, unique_prefix: str, options: Any, on_disk: bool
) -> None:
    """shared=True alone keeps a decrypted call off every disk, String or SecureString: the
    reader of a shared value cannot tell which it was."""
    first, _ = fleet
    assert ssm.get_entry("/app/plain", **options) == "plain-value"
    assert (b"plain-value" in _disk_bytes(str(first.directory))) is on_disk
    assert any(b"plain-value" in v for v in _shared_values(rclient, unique_prefix))
