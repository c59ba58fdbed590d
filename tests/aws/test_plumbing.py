"""The shared AWS plumbing: handler decorators, clients, errors, SnapStart, cold import."""

from __future__ import annotations

import gc
import inspect
import types
import weakref
from typing import Any

import boto3
import pytest
from _awshelp import Calls, Context

import tiered_cache as tiered
from tiered_cache import _aws, _flight, appconfig, dynamodb, s3, secrets_manager, ssm
from tiered_cache._aws import _plan
from tiered_cache.exceptions import (
    ArgumentTypeNotSupportedError,
    NoEntryNameError,
    NotFoundError,
    SourceError,
)


@pytest.fixture
def origin(ssm_client: Any, secrets_client: Any, s3_client: Any) -> None:
    ssm_client.put_parameter(Name="/prod/app/var", Value="ssm-value", Type="String")
    ssm_client.put_parameter(Name="/prod/app/other", Value="o", Type="String")
    secrets_client.create_secret(Name="prod/db", SecretString="db-secret")
    s3_client.put_object(Bucket="bucket", Key="models/model.bin", Body=b"weights")


def test_stacked_decorators_set_every_attribute_and_keep_the_return_value(
    default: Any, origin: None, calls: Calls
) -> None:
    @ssm.cache(parameter="/prod/app/var", max_age_in_seconds=60)
    @secrets_manager.cache(name="prod/db", max_age_in_seconds=300, entry_name="db")
    @s3.cache(s3Uri="s3://bucket/models/model.bin", max_age_in_seconds=3600)
    def handler(event: Any, context: Any) -> dict[str, Any]:
        with open(getattr(context, "model.bin"), "rb") as handle:
            model = handle.read()
        return {"event": event, "var": context.var, "db": context.db, "model": model}

    expected = {"event": {"n": 1}, "var": "ssm-value", "db": "db-secret", "model": b"weights"}
    assert handler({"n": 1}, Context()) == expected
    assert handler({"n": 1}, Context()) == expected
    assert calls.count() == 3
    assert handler.__name__ == "handler"
    assert handler.__wrapped__.__wrapped__.__wrapped__.__name__ == "handler"  # type: ignore[attr-defined]


def test_list_decorator_sets_a_dict(default: Any, origin: None) -> None:
    @ssm.cache(parameter=["/prod/app/var", "/prod/app/other"], entry_name="cfg")
    def handler(event: Any, context: Any) -> Any:
        return context.cfg

    assert handler({}, types.SimpleNamespace()) == {"var": "ssm-value", "other": "o"}


def test_handler_expiry_and_refetch(
    default: Any, origin: None, calls: Calls, fake_clock: Any, ssm_client: Any
) -> None:
    @ssm.cache(parameter="/prod/app/var", max_age_in_seconds=10)
    def handler(event: Any, context: Any) -> Any:
        return context.var

    assert handler({}, Context()) == "ssm-value"
    ssm_client.put_parameter(Name="/prod/app/var", Value="new", Type="String", Overwrite=True)
    fake_clock.advance(9)
    assert handler({}, Context()) == "ssm-value"
    fake_clock.advance(2)
    assert handler({}, Context()) == "new"
    assert calls.count("GetParameter") == 2


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("context", [None, {}, "ctx", 5])
def test_a_context_that_cannot_hold_attributes_is_a_clear_type_error(
    default: Any, origin: None, calls: Calls, context: Any, warm: bool
) -> None:
    @ssm.cache(parameter="/prod/app/var")
    def handler(event: Any, context: Any) -> Any:
        return "ran"

    if warm:
        assert handler({}, Context()) == "ran"
    before = calls.count()
    with pytest.raises(TypeError, match="handler\\(event, context\\)"):
        handler({}, context)
    if context is None:
        assert calls.count() == before  # refused before the origin is asked
    assert _flight.handler_context == [None]


def test_argument_errors_are_raised_at_call_time_not_at_decoration(
    default: Any, calls: Calls
) -> None:
    @ssm.cache(parameter=["/a/x", "/b/y"])  # no entry_name
    def no_name(event: Any, context: Any) -> Any:
        return None

    @ssm.cache(parameter={"a": 1}, entry_name="cfg")  # type: ignore[arg-type]
    def bad_type(event: Any, context: Any) -> Any:
        return None

    @s3.cache(s3Uri="https://bucket/key")
    def bad_uri(event: Any, context: Any) -> Any:
        return None

    @secrets_manager.cache(name="prod/db", max_age_in_seconds=5, ttl=6)
    def both(event: Any, context: Any) -> Any:
        return None

    for _ in range(2):  # a failed validation is not remembered as a success
        with pytest.raises(NoEntryNameError):
            no_name({}, Context())
        with pytest.raises(ArgumentTypeNotSupportedError):
            bad_type({}, Context())
        with pytest.raises(ValueError, match="s3://"):
            bad_uri({}, Context())
        with pytest.raises(TypeError, match="give one of them"):
            both({}, Context())
    assert calls.count() == 0


class LambdaContext:
    """Like the runtime's context: the time left comes from a method of the class."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_lock_waits_inside_the_handler_end_before_the_lambda_deadline(
    default: Any, origin: None
) -> None:
    seen: list[float] = []

    @ssm.cache(parameter="/prod/app/var")
    def handler(event: Any, context: Any) -> Any:
        seen.append(_flight.bounded_wait(30.0))
        context.remaining_ms = 500  # the deadline is read when a wait happens, not before
        seen.append(_flight.bounded_wait(30.0))
        return "done"

    assert handler({}, LambdaContext(4_000)) == "done"
    assert 2.5 < seen[0] <= 3.0  # 4 s left, 1 s kept back as a margin
    assert seen[1] == 0.0
    assert _flight.handler_context == [None]  # restored when the handler returns
    assert _flight.bounded_wait(30.0) == 30.0


def test_a_context_without_a_deadline_leaves_waits_alone(default: Any, origin: None) -> None:
    @ssm.cache(parameter="/prod/app/var")
    def handler(event: Any, context: Any) -> float:
        return _flight.bounded_wait(7.0)

    assert handler({}, Context()) == 7.0

    class Odd(Context):
        def get_remaining_time_in_millis(self) -> int:
            raise RuntimeError("no deadline here")

    assert handler({}, Odd()) == 7.0


def test_the_deadline_is_restored_when_the_handler_raises(default: Any, origin: None) -> None:
    @ssm.cache(parameter="/prod/app/var")
    def handler(event: Any, context: Any) -> Any:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        handler({}, LambdaContext(10_000))
    assert _flight.handler_context == [None]


def test_the_handler_follows_a_new_default_cache(
    default: Any, origin: None, calls: Calls, make_cache: Any
) -> None:
    @ssm.cache(parameter="/prod/app/var")
    def handler(event: Any, context: Any) -> Any:
        return context.var

    handler({}, Context())
    tiered.set_default_cache(make_cache(disk=False))
    handler({}, Context())
    handler({}, Context())
    assert calls.count() == 2


def test_a_hit_bound_to_a_replaced_default_cache_is_not_kept(
    default: Any, origin: None, make_cache: Any, calls: Calls
) -> None:
    args = {"parameter": "/prod/app/var", "max_age_in_seconds": None, "entry_name": False}
    spec = ssm._PARAMETERS.spec("test", args, {})
    old = _aws.plan_for(spec)
    new = make_cache(disk=False)
    with tiered.use_cache(new):  # replaced between binding and remembering
        table: dict[Any, Any] = {}
        _aws.remember_hit(ssm.get_entry, table, "/prod/app/var", old)
        assert table == {}
        ssm.get_entry("/prod/app/var")  # not served from the old cache's hit path
        assert calls.count() == 1
        assert new.stats()["loads"] == 1
        _aws.remember_hit(ssm.get_entry, table, "/prod/app/var", _aws.plan_for(spec))
        assert "/prod/app/var" in table


def test_replacing_the_default_cache_rebinds_every_hit_path(
    default: Any, origin: None, make_cache: Any, calls: Calls
) -> None:
    @ssm.cache(parameter="/prod/app/var")
    def handler(event: Any, context: Any) -> Any:
        return context.var

    def everything() -> None:
        handler({}, Context())
        ssm.get_entry("/prod/app/var")
        secrets_manager.get_entry("prod/db")

    everything()
    everything()
    assert calls.count() == 2  # the handler and get_entry share one SSM entry
    other = make_cache(disk=False)
    with tiered.use_cache(other):
        everything()
        everything()
        assert calls.count() == 4  # every hit path followed the new default
        # get_entry's first call reads the entry the handler loaded; the second round is 3 hits
        assert other.stats()["memory_hits"] == 4
    everything()
    assert calls.count() == 4  # and came back to the old one, which still holds the values
    assert default.stats()["memory_hits"] == 4 + 3


def test_clients_are_made_once_with_standard_retries(
    default: Any, origin: None, calls: Calls
) -> None:
    made: list[str] = []
    boto3._get_default_session().events.register(
        "creating-client-class", lambda class_attributes, **kw: made.append("client")
    )
    for name in ("/prod/app/var", "/prod/app/other"):
        ssm.get_entry(name, max_age_in_seconds=0)
        ssm.get_entry(name, max_age_in_seconds=0)
    assert made == ["client"]
    client = _aws.get_client("ssm")
    assert client.meta.config.retries["mode"] == "standard"
    assert _aws.get_client("ssm") is client


def test_botocore_errors_become_source_errors(default: Any, origin: None) -> None:
    from botocore.exceptions import EndpointConnectionError

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://ssm.invalid")

    _aws.get_client("ssm").meta.events.register("before-call.ssm.GetParameter", unreachable)
    with pytest.raises(SourceError) as info:
        ssm.get_entry("/prod/app/var")
    assert isinstance(info.value.__cause__, EndpointConnectionError)
    assert not isinstance(info.value, NotFoundError)


def test_error_translation() -> None:
    from botocore.exceptions import ClientError

    def error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"}}, "GetThing")

    for code in ("ParameterNotFound", "ResourceNotFoundException", "NoSuchKey", "404"):
        assert isinstance(_aws.translate(error(code), "x"), NotFoundError)
    other = _aws.translate(error("AccessDeniedException"), "the thing")
    assert type(other) is SourceError
    assert "AccessDeniedException" in str(other)
    assert "the thing" in str(other)


def test_snapstart_restore_expires_values_and_forgets_misses_through_one_hook(
    default: Any, origin: None, calls: Calls, fake_clock: Any
) -> None:
    """One after-restore mechanism, the engine's: the AWS helpers add their negative cache to
    it (``_restore.on_restore``) instead of registering a hook of their own."""
    import snapshot_restore_py
    from awslambdaric.lambda_runtime_hooks_runner import run_after_restore

    from tiered_cache import _restore

    registered = snapshot_restore_py.get_after_restore()
    assert [hook for hook, _, _ in registered if hook.__module__.startswith("tiered_cache")] == [
        _restore.after_restore
    ]
    assert ssm.get_entry("/prod/app/var") == "ssm-value"
    with pytest.raises(NotFoundError):
        ssm.get_entry("/prod/app/missing")
    with pytest.raises(NotFoundError):
        ssm.get_entry("/prod/app/missing")  # remembered: no second call
    assert calls.count("GetParameter") == 2
    fake_clock.advance(1)  # the snapshot is restored later
    run_after_restore()  # what the runtime does after restoring the snapshot
    assert ssm.get_entry("/prod/app/var") == "ssm-value"
    with pytest.raises(NotFoundError):
        ssm.get_entry("/prod/app/missing")
    assert calls.count("GetParameter") == 4


def test_memo_tables_are_bounded(
    default: Any, origin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_plan, "MEMO_LIMIT", 3)
    for i in range(10):
        with pytest.raises(NotFoundError):
            ssm.get_entry(f"/dyn/p{i}")
    assert all(len(table) <= 3 for table in _plan._memos)  # every memo of every source


def test_unhashable_options_still_work(default: Any, origin: None, calls: Calls) -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __init__(self, client: Any) -> None:
            self.meta = client.meta
            self.get_parameter = client.get_parameter

    client = Unhashable(_aws.get_client("ssm"))
    assert ssm.get_entry("/prod/app/var", client=client) == "ssm-value"
    assert ssm.get_entry("/prod/app/var", client=client) == "ssm-value"
    assert calls.count() == 1


@pytest.mark.parametrize("option", ["client", "session"])
def test_a_client_or_session_made_in_the_handler_is_not_kept_alive(
    default: Any, origin: None, calls: Calls, option: str
) -> None:
    """A handler that makes a new client (or session) on every invocation: each one used to
    stay alive in the memos, about 0.4 MB each, up to 4,096 of them."""
    gone = []
    for _ in range(5):
        session = boto3.Session(region_name="us-east-1")
        calls.register(session.events)  # the calls of every client made from it
        made = session.client("ssm") if option == "client" else session
        assert ssm.get_entry("/prod/app/var", **{option: made}) == "ssm-value"
        gone.append(weakref.ref(made))
        del made, session
    gc.collect()
    assert [ref() for ref in gone] == [None] * 5
    assert calls.count() == 1  # the value was cached all along: one client asked


def test_a_kept_client_or_session_hits_with_no_call(
    default: Any, origin: None, calls: Calls
) -> None:
    session = boto3.Session(region_name="us-east-1")
    calls.register(session.events)
    client = session.client("ssm")
    for _ in range(3):
        assert ssm.get_entry("/prod/app/other", client=client) == "o"
        assert ssm.get_entry("/prod/app/var", session=session) == "ssm-value"
    assert calls.count() == 2


def test_importing_the_helpers_does_not_import_boto3(python_subprocess: Any) -> None:
    result = python_subprocess(
        """
        import sys
        import tiered_cache
        from tiered_cache import appconfig, dynamodb, s3, secrets_manager, ssm
        assert tiered_cache.ssm is ssm and tiered_cache.dynamodb is dynamodb
        assert tiered_cache.appconfig is appconfig
        print(sorted(m for m in ("boto3", "botocore", "diskcache", "filelock") if m in sys.modules))
        """
    )
    assert result.stdout.strip() == "[]"


def test_region_comes_from_the_client_when_the_environment_has_none(
    default: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    session = boto3.Session(region_name="ap-south-1")
    assert _aws.region_for("ssm", {"session": session}) == "ap-south-1"
    client = session.client("ssm")
    assert _aws.region_for("ssm", {"client": client}) == "ap-south-1"
    assert _aws.region_for("ssm", {}) == ""
    with pytest.raises(SourceError, match="region_name"):
        ssm.get_entry("/prod/app/var")


@pytest.mark.parametrize(
    "function",
    [
        ssm.get_entry,
        ssm.cache,
        ssm.get_parameters_by_path,
        secrets_manager.get_entry,
        secrets_manager.cache,
        s3.get_entry,
        s3.cache,
        s3.get_bytes,
        dynamodb.get_entry,
        dynamodb.cache,
        appconfig.get_entry,
        appconfig.cache,
    ],
    ids=lambda f: f"{f.__module__.rsplit('.', 1)[-1]}.{f.__name__}",
)
def test_generated_functions_have_the_declared_signature(function: Any) -> None:
    """get_entry and cache are generated from the typed signature each source declares: the
    same parameters, defaults and docstring."""
    declared = function.__wrapped__
    assert function is not declared
    code, stub = function.__code__, declared.__code__
    assert code.co_varnames[: code.co_argcount + 1] == stub.co_varnames[: stub.co_argcount + 1]
    assert function.__defaults__ == declared.__defaults__
    assert function.__doc__ == declared.__doc__
    assert function.__name__ == declared.__name__
    assert inspect.signature(function) == inspect.signature(declared)
