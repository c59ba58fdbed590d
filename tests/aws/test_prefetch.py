"""tiered.prefetch() under moto: what the handler decorators declared (and extra getter calls)
is loaded before the first invocation, SSM names in GetParameters batches, concurrently; a
failure is logged once and never raised; fresh values cost no origin call; no secret is loaded
before a SnapStart snapshot. Origin calls are counted on botocore's event system."""

from __future__ import annotations

import functools
import logging
import threading
import types
from typing import Any

import boto3
import pytest
from _awshelp import Calls

import tiered_cache as tiered
from tiered_cache import dynamodb, s3, secrets_manager, ssm
from tiered_cache.exceptions import NotFoundError

PARAMS = [f"/prod/app/p{i}" for i in range(5)]


@pytest.fixture
def origin(ssm_client: Any, secrets_client: Any) -> None:
    for i, name in enumerate(PARAMS):
        ssm_client.put_parameter(Name=name, Value=f"value-{i}", Type="String")
    ssm_client.put_parameter(Name="/prod/app/token", Value="secure-token", Type="SecureString")
    secrets_client.create_secret(Name="prod/db", SecretString="db-password")
    secrets_client.create_secret(Name="prod/api", SecretString="api-key")


def _handler() -> Any:
    """A handler declaring 5 parameters and 2 secrets, as a Lambda module would."""

    def handler(event: Any, context: Any) -> dict[str, Any]:
        names = [f"p{i}" for i in range(5)] + ["db", "api"]
        return {name: getattr(context, name) for name in names}

    for name in PARAMS:
        handler = ssm.cache(parameter=name, max_age_in_seconds=300)(handler)
    handler = secrets_manager.cache(name="prod/db", entry_name="db")(handler)
    return secrets_manager.cache(name="prod/api", entry_name="api")(handler)


EXPECTED = {**{f"p{i}": f"value-{i}" for i in range(5)}, "db": "db-password", "api": "api-key"}


def test_declared_values_are_loaded_before_the_first_invocation(
    default: Any, origin: None, calls: Calls
) -> None:
    handler = _handler()
    assert calls.count() == 0  # decorating loads nothing
    done = tiered.prefetch()
    assert calls.count("GetParameters") == 1  # five names, one batch
    assert [sorted(r["Names"]) for r in calls.requests("GetParameters")] == [sorted(PARAMS)]
    assert calls.count("GetSecretValue") == 2
    assert calls.count() == 3
    assert (done.loaded, done.fresh, done.failed, done.calls) == (7, 0, 0, 3)
    assert handler({}, types.SimpleNamespace()) == EXPECTED
    assert calls.count() == 3  # the first invocation made no origin call


def test_loads_run_concurrently(default: Any, origin: None, calls: Calls) -> None:
    """Both secrets' calls must be in flight at once for the barrier to open: run one after the
    other, the first would wait alone until the barrier breaks, and both loads would fail."""
    handler = _handler()
    barrier = threading.Barrier(2, timeout=10)

    def meet(model: Any, **_: Any) -> None:
        if model.name == "GetSecretValue":
            barrier.wait()

    boto3._get_default_session().events.register("before-call", meet)
    done = tiered.prefetch()
    assert done.failed == 0
    assert not barrier.broken
    assert calls.count("GetSecretValue") == 2
    assert handler({}, types.SimpleNamespace()) == EXPECTED


def test_values_fresh_in_memory_or_on_disk_cost_nothing(
    default: Any, origin: None, calls: Calls, make_cache: Any, fake_clock: Any
) -> None:
    handler = _handler()  # kept, as a Lambda module keeps its handler (they are held weakly)
    tiered.prefetch()
    assert calls.count() == 3
    again = tiered.prefetch()  # everything fresh in memory
    assert calls.count() == 3
    assert (again.loaded, again.fresh) == (0, 7)
    with tiered.use_cache(make_cache()):  # a new process on the same /tmp
        on_disk = tiered.prefetch()
        assert calls.count("GetParameters") == 1  # the parameters come from disk
        assert calls.count("GetSecretValue") == 4  # secrets are memory-only: loaded again
        assert (on_disk.loaded, on_disk.fresh) == (2, 5)
    fake_clock.advance(301)  # past every max age (the secrets': the cache's 60 s)
    tiered.prefetch()
    assert calls.count("GetParameters") == 2
    assert calls.count("GetSecretValue") == 6
    assert handler({}, types.SimpleNamespace()) == EXPECTED
    assert calls.count() == 8  # the invocation after it: no origin call


def test_a_failure_is_logged_once_and_never_raised(
    default: Any, origin: None, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    @ssm.cache(parameter="/prod/app/missing")
    @secrets_manager.cache(name="prod/missing", entry_name="gone")
    @ssm.cache(parameter=123)  # a bad argument: raised when called, never at import
    @ssm.cache(parameter=PARAMS[0])
    def handler(event: Any, context: Any) -> str:
        return str(context.p0)

    with caplog.at_level(logging.WARNING, logger="tiered_cache"):
        done = tiered.prefetch()
    assert (done.loaded, done.failed) == (1, 3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert sum("/prod/app/missing" in w for w in warnings) == 1
    assert sum("prod/missing" in w and "NotFoundError" in w for w in warnings) == 1
    assert sum("entry_name" in w for w in warnings) == 1  # the int without entry_name
    made = calls.count()
    with pytest.raises(NotFoundError):  # the first invocation loads as usual...
        handler({}, types.SimpleNamespace())
    assert calls.count() == made  # ...and the missing name is remembered: no second call


def test_extra_specs_are_loaded_and_batched_with_the_declared(
    default: Any, origin: None, calls: Calls
) -> None:
    handler = _handler()
    built = []
    done = tiered.prefetch(
        functools.partial(ssm.get_entry, "/prod/app/token"),
        functools.partial(secrets_manager.get_entry, name="prod/db", entry_name="db"),  # dup
        lambda: built.append("report"),
    )
    assert built == ["report"]
    assert calls.count("GetParameters") == 1
    assert sorted(calls.requests("GetParameters")[0]["Names"]) == sorted(
        [*PARAMS, "/prod/app/token"]
    )
    assert calls.count("GetSecretValue") == 2  # the extra one is the declared one
    assert done.loaded == 9
    assert ssm.get_entry("/prod/app/token") == "secure-token"
    assert handler({}, types.SimpleNamespace()) == EXPECTED
    assert calls.count() == 3


def test_more_than_ten_names_take_more_batches(default: Any, ssm_client: Any, calls: Calls) -> None:
    names = [f"/many/n{i:02d}" for i in range(23)]
    for name in names:
        ssm_client.put_parameter(Name=name, Value=name.upper(), Type="String")
    done = tiered.prefetch(*(functools.partial(ssm.get_entry, name) for name in names))
    assert sorted(len(r["Names"]) for r in calls.requests("GetParameters")) == [3, 10, 10]
    assert done.loaded == 23
    assert [ssm.get_entry(name) for name in names] == [name.upper() for name in names]
    assert calls.count() == 3


def test_a_denied_batch_call_falls_back_to_one_call_per_name(
    default: Any, origin: None, calls: Calls
) -> None:
    calls.fail["GetParameters"] = (400, "AccessDeniedException")
    done = tiered.prefetch(*(functools.partial(ssm.get_entry, name) for name in PARAMS))
    assert calls.count("GetParameters") == 1
    assert calls.count("GetParameter") == 5
    assert (done.loaded, done.failed) == (5, 0)


def test_no_secret_is_loaded_before_a_snapstart_snapshot(
    default: Any, origin: None, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")

    @ssm.cache(parameter="/prod/app/token")
    @ssm.cache(parameter=PARAMS[0])
    @secrets_manager.cache(name="prod/db", entry_name="db")
    def handler(event: Any, context: Any) -> tuple[str, str, str]:
        return context.token, context.p0, context.db

    done = tiered.prefetch()
    assert calls.count("GetSecretValue") == 0
    assert [r["WithDecryption"] for r in calls.requests("GetParameters")] == [False]
    assert (done.loaded, done.skipped) == (1, 2)
    assert calls.count() == 1
    assert handler({}, types.SimpleNamespace()) == ("secure-token", "value-0", "db-password")
    assert calls.count("GetParameter") == 1  # the SecureString, first decrypted after INIT
    assert calls.count("GetSecretValue") == 1
    assert calls.count("GetParameters") == 1  # the String came from the prefetch


def test_after_a_restore_what_was_prefetched_is_loaded_again(
    default: Any, origin: None, calls: Calls, monkeypatch: pytest.MonkeyPatch, fake_clock: Any
) -> None:
    from awslambdaric.lambda_runtime_hooks_runner import run_after_restore

    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")

    @ssm.cache(parameter=PARAMS[0])
    def handler(event: Any, context: Any) -> str:
        return str(context.p0)

    assert tiered.prefetch().loaded == 1
    fake_clock.advance(1)  # restored a second later: the value is fresh by its max age
    run_after_restore()
    assert handler({}, types.SimpleNamespace()) == "value-0"
    assert calls.count("GetParameter") == 1  # not served from snapshot time


def test_s3_objects_and_dynamodb_items_are_prefetched_too(
    default: Any, s3_client: Any, calls: Calls, make_cache: Any
) -> None:
    s3_client.put_object(Bucket="bucket", Key="models/model.bin", Body=b"weights")
    table = boto3.client("dynamodb", region_name="us-east-1")
    table.create_table(
        TableName="cfg",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    table.put_item(TableName="cfg", Item={"id": {"S": "flags"}, "beta": {"BOOL": True}})

    @s3.cache(s3Uri="s3://bucket/models/model.bin", entry_name="model")
    @dynamodb.cache(table="cfg", key={"id": "flags"}, entry_name="flags")
    def handler(event: Any, context: Any) -> tuple[bytes, Any]:
        with open(context.model, "rb") as f:
            return f.read(), context.flags

    assert tiered.prefetch().loaded == 2
    assert (calls.count("GetObject"), calls.count("GetItem")) == (1, 1)
    assert handler({}, types.SimpleNamespace()) == (b"weights", {"id": "flags", "beta": True})
    assert (calls.count("GetObject"), calls.count("GetItem")) == (1, 1)  # none more
    with tiered.use_cache(make_cache()):  # a new process on the same /tmp: both on disk
        done = tiered.prefetch()
        assert (done.loaded, done.fresh) == (0, 2)
        assert (calls.count("GetObject"), calls.count("GetItem")) == (1, 1)


def test_a_spec_must_be_callable(default: Any) -> None:
    with pytest.raises(TypeError, match=r"functools.partial\(ssm.get_entry"):
        tiered.prefetch("/prod/app/p0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_workers"):
        tiered.prefetch(max_workers=0)


def test_prefetch_with_nothing_declared_imports_no_boto3(python_subprocess: Any) -> None:
    out = python_subprocess(
        """
        import sys
        import tiered_cache as tiered
        print(tiered.prefetch(lambda: None).loaded, "boto3" in sys.modules)
        """
    )
    assert out.stdout.split() == ["1", "False"]
