"""TieredCache with the DynamoDB tier: selected by URL, fills, secrets kept off it unless asked,
fleet-wide single-flight across processes on one moto server over HTTP, import cost."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

import tiered_cache as tiered
from tiered_cache import secrets_manager, ssm
from tiered_cache._dynamo import DEFAULT_PREFIX, DynamoDBTier

from .conftest import MotoServer, items

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
SECRET = "s3cr3t-value-8f2c"


class Counting:
    """A loader that counts its calls."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.value


@pytest.fixture
def fleet(
    make_cache: Callable[..., Any], make_tier: Callable[..., DynamoDBTier], tmp_path: Path
) -> Callable[..., tuple[Any, DynamoDBTier]]:
    """``fleet(name)`` -> (cache, tier): one environment with its own directory, all on the same
    table and the same fake clock."""

    def make(name: str, **options: Any) -> tuple[Any, DynamoDBTier]:
        tier = options.pop("tier", None) or make_tier()
        return make_cache(directory=str(tmp_path / name), shared=tier, **options), tier

    return make


# -- selection ------------------------------------------------------------------------------------


def test_shared_takes_a_dynamodb_url(
    make_cache: Callable[..., Any], table: str, dclient: Any
) -> None:
    """``AWS_ENDPOINT_URL`` (set by ``aws_env``) reaches the moto server, as boto3 does."""
    cache = make_cache(shared=f"dynamodb://{table}?timeout=2")
    assert cache.get_or_load("k", lambda: "v") == "v"
    names = [item["pk"]["S"] for item in items(dclient, table)]
    assert names == [DynamoDBTier(table).data_key("k")]
    assert names[0].startswith(DEFAULT_PREFIX + "v1:")
    assert cache.stats()["shared_attempts"] >= 3  # the read, the lock, the write


def test_a_tier_instance_is_taken_as_it_is(
    make_cache: Callable[..., Any], make_tier: Callable[..., DynamoDBTier], dclient: Any, table: str
) -> None:
    tier = make_tier(prefix="fn-orders:")
    cache = make_cache(shared=tier)
    cache.set("k", 1)
    assert [item["pk"]["S"] for item in items(dclient, table)] == [tier.data_key("k")]


# -- order and fills --------------------------------------------------------------------------


def test_a_shared_hit_fills_memory_and_disk_with_the_remaining_lifetime(
    fleet: Callable[..., tuple[Any, DynamoDBTier]], fake_clock: Any
) -> None:
    a, _ = fleet("env-a")
    b, b_tier = fleet("env-b")
    t0 = fake_clock()
    assert a.get_or_load("k", Counting({"v": 1}), ttl=100) == {"v": 1}
    fake_clock.advance(40)
    b_loader = Counting("never")
    assert b.get_or_load("k", b_loader, ttl=100) == {"v": 1}
    assert b_loader.calls == 0
    assert b.stats()["shared_hits"] == 1
    sent = b_tier.attempts
    assert b.get_or_load("k", b_loader, ttl=100) == {"v": 1}  # memory
    # a process of its own on the same directory: the disk holds it, DynamoDB is not asked
    c, c_tier = fleet("env-b", tier=DynamoDBTier(b_tier.table, endpoint_url=b_tier.endpoint_url))
    assert c.get_or_load("k", b_loader, ttl=100) == {"v": 1}
    assert c.stats()["disk_hits"] == 1
    assert (b_tier.attempts, c_tier.attempts) == (sent, 0)
    # the remaining lifetime ends where A's entry ends: B loads again at t0 + 100, not t0 + 140
    fake_clock.set(t0 + 99.9)
    assert b.get_or_load("k", b_loader, ttl=100) == {"v": 1}
    fake_clock.set(t0 + 100)
    assert b.get_or_load("k", Counting("new")) == "new"


def test_get_reads_the_shared_tier_and_never_loads(
    fleet: Callable[..., tuple[Any, DynamoDBTier]],
) -> None:
    a, _ = fleet("env-a")
    b, _ = fleet("env-b")
    a.set("k", [1, "two"])
    assert b.get("k") == [1, "two"]
    assert b.get("missing", "default") == "default"


def test_delete_and_clear_reach_the_table(
    fleet: Callable[..., tuple[Any, DynamoDBTier]], dclient: Any, table: str
) -> None:
    a, _ = fleet("env-a")
    b, _ = fleet("env-b")
    a.set("x", 1)
    a.set("y", 2)
    assert a.delete("x") is True
    assert b.get("x") is None
    a.clear()
    assert b.get("y") is None
    assert items(dclient, table) == []


def test_the_fleet_lock_wait_is_bounded_then_the_caller_loads_by_itself(
    fleet: Callable[..., tuple[Any, DynamoDBTier]],
    make_tier: Callable[..., DynamoDBTier],
    dclient: Any,
    table: str,
    fake_clock: Any,
) -> None:
    tier = make_tier(lock_wait=0.1)
    cache, _ = fleet("env", tier=tier)
    dead = {"pk": {"S": tier.lock_key("k")}, "owner": {"S": "dead"}, "lease": {"N": "9e12"}}
    dclient.put_item(TableName=table, Item=dead)
    loader = Counting("mine")
    assert cache.get_or_load("k", loader) == "mine"
    assert loader.calls == 1
    assert cache.stats()["shared_lock_timeouts"] == 1
    assert dclient.get_item(TableName=table, Key={"pk": dead["pk"]})["Item"] == dead  # not ours
    assert tier.get("k") is not None  # and the fleet gets the value


# -- secrets never reach the table unless the caller opts in ---------------------------------


@pytest.fixture
def in_process_table(moto_aws: None) -> str:
    """A table in moto's in-process mock (with SSM and Secrets Manager beside it)."""
    boto3.client("dynamodb").create_table(
        TableName="cache",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("ssm").put_parameter(Name="/app/token", Value=SECRET, Type="SecureString")
    boto3.client("ssm").put_parameter(Name="/app/plain", Value="plain-value", Type="String")
    boto3.client("secretsmanager").create_secret(Name="prod/db", SecretString=SECRET)
    return "cache"


def _stored(table: str) -> list[bytes]:
    return [item["envelope"]["B"] for item in items(boto3.client("dynamodb"), table)]


def test_persisted_secrets_stay_off_the_table(
    in_process_table: str, make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    with tiered.use_cache(make_cache(shared=DynamoDBTier(in_process_table, clock=fake_clock))):
        assert ssm.get_entry(parameter="/app/plain") == "plain-value"
        assert ssm.get_entry(parameter="/app/token", persist=True) == SECRET
        assert secrets_manager.get_entry(name="prod/db", persist=True) == SECRET
    stored = _stored(in_process_table)
    assert any(b"plain-value" in v for v in stored)  # the plain String is shared: the scan works
    assert not any(SECRET.encode() in v for v in stored)


@pytest.mark.parametrize("helper", ["ssm", "secrets_manager"])
def test_secrets_reach_the_table_when_asked(
    in_process_table: str, make_cache: Callable[..., Any], fake_clock: Any, helper: str
) -> None:
    with tiered.use_cache(make_cache(shared=DynamoDBTier(in_process_table, clock=fake_clock))):
        if helper == "ssm":
            assert ssm.get_entry(parameter="/app/token", persist=True, shared=True) == SECRET
        else:
            assert secrets_manager.get_entry(name="prod/db", shared=True) == SECRET
    assert any(SECRET.encode() in v for v in _stored(in_process_table))


def test_memory_only_loads_stay_off_the_table_unless_shared(
    in_process_table: str, make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    cache = make_cache(shared=DynamoDBTier(in_process_table, clock=fake_clock))
    assert cache.load("secret:a", lambda: "hunter2-A", persist=False) == "hunter2-A"
    assert cache.get_or_load("secret:b", lambda: "hunter2-B", persist=False) == "hunter2-B"
    assert _stored(in_process_table) == []
    assert cache.load("secret:c", lambda: "hunter2-C", persist=False, shared=True) == "hunter2-C"
    assert [b"hunter2-C" in v for v in _stored(in_process_table)] == [True]


# -- fleet-wide single-flight, across processes ------------------------------------------------


def test_one_load_across_processes_on_one_moto_server(
    moto_server: MotoServer, aws_env: dict[str, str], table: str, tmp_path: Path
) -> None:
    """Six environments (processes, each its own directory) ask for one key while its load is
    in flight: one origin call between them. Each waits for the fleet lock (2 s at most, the
    tier's lock_wait), then reads the holder's value. A worker whose wait ran out would load
    by itself and say so in its lock-timeout count; the barrier makes the load last only until
    every worker is asking, so none does."""
    count = 6
    sync = tmp_path / "sync"
    sync.mkdir()
    env = {**os.environ, **aws_env}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_fleet_worker.py"),
                table,
                str(tmp_path / f"env-{i}"),
                "ssm:/prod/app/var",
                str(count),
                str(sync),
                str(i),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(count)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.split())
    assert [o[0] for o in outputs] == ["the-value"] * count
    timeouts = sum(int(o[3]) for o in outputs)
    assert timeouts == 0, "a worker gave up waiting for the fleet lock"
    assert len(list(sync.glob("load-*"))) == 1  # one origin call between six processes
    assert sum(int(o[1]) for o in outputs) == 1
    assert sum(int(o[2]) for o in outputs) == count - 1  # the others hit the shared tier


# -- import cost --------------------------------------------------------------------------------


def test_import_and_configuration_do_not_import_boto3(
    python_subprocess: Callable[..., Any], aws_env: dict[str, str], table: str
) -> None:
    result = python_subprocess(
        """
        import sys
        import tiered_cache
        assert "boto3" not in sys.modules, "import tiered_cache imported boto3"
        cache = tiered_cache.default_cache()
        assert "boto3" not in sys.modules, "configuring the DynamoDB tier imported boto3"
        assert cache.get_or_load("k", lambda: "v") == "v"
        assert "boto3" in sys.modules
        assert cache.stats()["shared_errors"] == 0
        print("ok")
        """,
        env={**aws_env, "TIERED_CACHE_DYNAMODB_TABLE": table, "TIERED_CACHE_DYNAMODB_TIMEOUT": "2"},
    )
    assert result.stdout.strip() == "ok"
