"""refresh_on= on the handler decorators under moto: after a rotation, one retry with a fresh
secret; a second raise propagates; never more than one retry per invocation, however many
decorators are stacked. Also the handler's signature, checked on its first call (issue 15)."""

from __future__ import annotations

import types
from typing import Any

import pytest
from _awshelp import Calls

from tiered_cache import dynamodb, secrets_manager, ssm
from tiered_cache.exceptions import SourceError


class AuthError(Exception):
    """What a database driver raises for a wrong password."""


@pytest.fixture
def origin(ssm_client: Any, secrets_client: Any) -> dict[str, str]:
    """The secret and a parameter; returns the 'database', which accepts the current password."""
    secrets_client.create_secret(Name="prod/db", SecretString="password-1")
    ssm_client.put_parameter(Name="/prod/app/url", Value="url-1", Type="String")
    return {"password": "password-1"}


def _rotate(secrets_client: Any, database: dict[str, str], password: str) -> None:
    secrets_client.put_secret_value(SecretId="prod/db", SecretString=password)
    database["password"] = password


def test_a_rotated_secret_is_refreshed_and_the_handler_called_once_more(
    default: Any, origin: dict[str, str], secrets_client: Any, calls: Calls
) -> None:
    seen: list[str] = []

    @secrets_manager.cache(name="prod/db", entry_name="db", max_age_in_seconds=300,
                           refresh_on=(AuthError,))  # fmt: skip
    def handler(event: Any, context: Any) -> str:
        seen.append(context.db)
        if context.db != origin["password"]:
            raise AuthError("password authentication failed")
        return "connected"

    assert handler({}, types.SimpleNamespace()) == "connected"
    _rotate(secrets_client, origin, "password-2")  # the cached secret is now wrong
    assert handler({}, types.SimpleNamespace()) == "connected"
    assert seen == ["password-1", "password-1", "password-2"]
    assert calls.count("GetSecretValue") == 2
    assert handler({}, types.SimpleNamespace()) == "connected"  # the fresh value is cached
    assert calls.count("GetSecretValue") == 2


def test_a_second_raise_propagates_after_exactly_one_retry(
    default: Any, origin: dict[str, str], calls: Calls
) -> None:
    runs: list[int] = []

    @secrets_manager.cache(name="prod/db", entry_name="db", refresh_on=AuthError)
    def handler(event: Any, context: Any) -> None:
        runs.append(1)
        raise AuthError(f"attempt {len(runs)}")

    with pytest.raises(AuthError, match="attempt 2") as info:
        handler({}, types.SimpleNamespace())
    assert isinstance(info.value.__context__, AuthError)
    assert str(info.value.__context__) == "attempt 1"
    assert len(runs) == 2
    assert calls.count("GetSecretValue") == 2  # the load, and one refresh
    with pytest.raises(AuthError, match="attempt 4"):  # each invocation has its own retry
        handler({}, types.SimpleNamespace())
    assert len(runs) == 4


def test_other_errors_propagate_without_a_refresh(
    default: Any, origin: dict[str, str], calls: Calls
) -> None:
    runs: list[int] = []

    @secrets_manager.cache(name="prod/db", entry_name="db", refresh_on=(AuthError,))
    def handler(event: Any, context: Any) -> None:
        runs.append(1)
        raise KeyError("not an auth error")

    with pytest.raises(KeyError):
        handler({}, types.SimpleNamespace())
    assert len(runs) == 1
    assert calls.count("GetSecretValue") == 1


def test_stacked_decorators_each_refresh_their_own_value_and_retry_once(
    default: Any, origin: dict[str, str], calls: Calls
) -> None:
    runs: list[tuple[str, str]] = []

    @ssm.cache(parameter="/prod/app/url", refresh_on=(AuthError,))
    @secrets_manager.cache(name="prod/db", entry_name="db", refresh_on=(AuthError,))
    def handler(event: Any, context: Any) -> None:
        runs.append((context.url, context.db))
        raise AuthError("still failing")

    with pytest.raises(AuthError):
        handler({}, types.SimpleNamespace())
    assert len(runs) == 2  # not one retry per decorator
    assert calls.count("GetSecretValue") == 2
    assert calls.count("GetParameter") == 2


@pytest.mark.parametrize("where", ["outer", "inner"])
def test_with_one_refresh_on_in_a_stack_only_its_value_is_refreshed(
    default: Any, origin: dict[str, str], calls: Calls, where: str
) -> None:
    runs: list[int] = []
    outer = {"refresh_on": AuthError} if where == "outer" else {}
    inner = {"refresh_on": AuthError} if where == "inner" else {}

    @ssm.cache(parameter="/prod/app/url", **outer)
    @secrets_manager.cache(name="prod/db", entry_name="db", **inner)
    def handler(event: Any, context: Any) -> None:
        runs.append(1)
        raise AuthError("failing")

    with pytest.raises(AuthError):
        handler({}, types.SimpleNamespace())
    assert len(runs) == 2
    assert calls.count("GetParameter") == (2 if where == "outer" else 1)
    assert calls.count("GetSecretValue") == (2 if where == "inner" else 1)


def test_three_stacked_with_the_middle_one_refreshing_retry_once(
    default: Any, origin: dict[str, str], ssm_client: Any, calls: Calls
) -> None:
    ssm_client.put_parameter(Name="/prod/app/other", Value="o", Type="String")
    runs: list[int] = []

    @ssm.cache(parameter="/prod/app/other")
    @secrets_manager.cache(name="prod/db", entry_name="db", refresh_on=AuthError)
    @ssm.cache(parameter="/prod/app/url", refresh_on=AuthError)
    def handler(event: Any, context: Any) -> None:
        runs.append(1)
        raise AuthError("failing")

    with pytest.raises(AuthError):
        handler({}, types.SimpleNamespace())
    assert len(runs) == 2
    assert calls.count("GetSecretValue") == 2
    assert calls.count("GetParameter") == 3  # /prod/app/url twice, /prod/app/other once


def test_a_refresh_that_fails_raises_its_own_error(
    default: Any, origin: dict[str, str], calls: Calls
) -> None:
    runs: list[int] = []

    @secrets_manager.cache(name="prod/db", entry_name="db", refresh_on=(AuthError,))
    def handler(event: Any, context: Any) -> None:
        runs.append(1)
        raise AuthError("wrong password")

    with pytest.raises(AuthError):  # loaded, refreshed, and still refused
        handler({}, types.SimpleNamespace())
    calls.fail["GetSecretValue"] = (500, "InternalServiceError")
    with pytest.raises(SourceError) as info:
        handler({}, types.SimpleNamespace())
    chain, error = [], info.value.__context__
    while error is not None:
        chain.append(type(error).__name__)
        error = error.__context__
    assert chain[-1] == "AuthError"  # the handler's error is in the refresh error's context
    assert len(runs) == 3  # two runs, then one run whose refresh failed


def test_in_a_stack_a_failed_refresh_means_no_retry(
    default: Any, origin: dict[str, str], ssm_client: Any, calls: Calls
) -> None:
    ssm_client.put_parameter(Name="/prod/app/other", Value="o", Type="String")
    runs: list[int] = []

    @ssm.cache(parameter="/prod/app/other", refresh_on=AuthError)
    @secrets_manager.cache(name="prod/db", entry_name="db", refresh_on=AuthError)
    @ssm.cache(parameter="/prod/app/url", refresh_on=AuthError)
    def handler(event: Any, context: Any) -> None:
        runs.append(1)
        if len(runs) == 1:
            calls.fail["GetSecretValue"] = (500, "InternalServiceError")  # from now on
        raise AuthError("failing")

    with pytest.raises(SourceError):  # the secret's refresh failed: no retry with a stale one
        handler({}, types.SimpleNamespace())
    assert len(runs) == 1
    assert calls.count("GetParameter") == 3  # both loads, and the innermost one's refresh
    del calls.fail["GetSecretValue"]
    with pytest.raises(AuthError):  # the next invocation has its own retry
        handler({}, types.SimpleNamespace())
    assert len(runs) == 3


@pytest.mark.parametrize("bad", ["AuthError", (AuthError, 3), (), (BaseException,), [AuthError]])
def test_refresh_on_is_checked_on_the_first_call(
    default: Any, origin: dict[str, str], calls: Calls, bad: Any
) -> None:
    decorate = secrets_manager.cache(name="prod/db", entry_name="db", refresh_on=bad)

    @decorate  # decorating never raises
    def handler(event: Any, context: Any) -> None: ...

    with pytest.raises(TypeError, match="refresh_on must be an exception class"):
        handler({}, types.SimpleNamespace())
    assert calls.count() == 0


def test_get_entry_does_not_take_refresh_on(default: Any, origin: dict[str, str]) -> None:
    with pytest.raises(TypeError, match="refresh_on"):
        secrets_manager.get_entry("prod/db", refresh_on=AuthError)


# -- the handler's signature (issue 15, friction 2) ------------------------------------------


@pytest.mark.parametrize("decorate", [
    lambda: ssm.cache(parameter="/prod/app/url"),
    lambda: secrets_manager.cache(name="prod/db", entry_name="db"),
    lambda: dynamodb.cache(table="t", key={"id": "x"}),
])  # fmt: skip
def test_a_handler_without_context_is_refused_on_its_first_call(
    default: Any, origin: dict[str, str], calls: Calls, decorate: Any
) -> None:
    def handler(event: Any) -> str:
        return "never"

    wrapped = decorate()(handler)  # importing the module never fails
    with pytest.raises(TypeError) as info:
        wrapped({}, types.SimpleNamespace())
    message = str(info.value)
    assert "handler(event, context)" in message
    assert "def handler(event, context)" in message
    assert ".cache" in message
    assert calls.count() == 0  # refused before the origin is asked


def test_the_message_names_the_decorator(default: Any, origin: dict[str, str]) -> None:
    @ssm.cache(parameter="/prod/app/url")
    def handler(event: Any) -> None: ...

    with pytest.raises(TypeError, match=r"@ssm\.cache decorates a Lambda handler"):
        handler({}, types.SimpleNamespace())  # type: ignore[call-arg]


class _Callable:
    def __call__(self, event: Any, context: Any) -> str:
        return str(context.url)


def _ok_star(*args: Any) -> str:
    return str(args[1].url)


def _ok_default(event: Any, context: Any = None, extra: int = 1) -> str:
    return str(context.url)


def _ok_keyword(event: Any, context: Any, *, flag: bool = False) -> str:
    return str(context.url)


def _bad_extra(event: Any, context: Any, needed: Any) -> str:
    return "never"


def _bad_keyword(event: Any, context: Any, *, needed: Any) -> str:
    return "never"


@pytest.mark.parametrize("func", [_Callable(), _ok_star, _ok_default, _ok_keyword])
def test_handlers_that_take_event_and_context_are_accepted(
    default: Any, origin: dict[str, str], func: Any
) -> None:
    assert ssm.cache(parameter="/prod/app/url")(func)({}, types.SimpleNamespace()) == "url-1"


@pytest.mark.parametrize("func", [_bad_extra, _bad_keyword, lambda event: None])
def test_handlers_that_need_more_or_less_are_refused(
    default: Any, origin: dict[str, str], func: Any
) -> None:
    with pytest.raises(TypeError, match="cannot take those two arguments"):
        ssm.cache(parameter="/prod/app/url")(func)({}, types.SimpleNamespace())
