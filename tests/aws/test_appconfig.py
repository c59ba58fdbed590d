"""tiered_cache.appconfig through botocore's Stubber (moto serves no AppConfigData): sessions,
poll tokens, "unchanged" answers, transforms, freshness, restarts, forks and errors.

The Stubber checks every request and response against the service model, and fails a call
that was not expected: a test that queues nothing proves that no call is made.
"""

from __future__ import annotations

import gc
import io
import json
import os
import types
import weakref
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from _awshelp import Context, bytes_under
from botocore.response import StreamingBody
from botocore.stub import Stubber

import tiered_cache as tiered
from tiered_cache import _aws, appconfig
from tiered_cache.exceptions import NotFoundError, SourceError

FLAGS = {"beta": True, "limit": 3}
START = {
    "ApplicationIdentifier": "app",
    "EnvironmentIdentifier": "prod",
    "ConfigurationProfileIdentifier": "flags",
    "RequiredMinimumPollIntervalInSeconds": 15,
}


class Origin:
    """A stubbed AppConfigData client: ``start(token)`` and ``poll(token, next, body)``."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.stub = Stubber(client)

    def start(self, token: str, **expected: Any) -> None:
        params = {**START, **expected}
        self.stub.add_response(
            "start_configuration_session", {"InitialConfigurationToken": token}, params
        )

    def poll(self, token: str, following: str, body: bytes) -> None:
        response = {
            "NextPollConfigurationToken": following,
            "NextPollIntervalInSeconds": 15,
            "ContentType": "application/json",
            "Configuration": StreamingBody(io.BytesIO(body), len(body)),
        }
        self.stub.add_response("get_latest_configuration", response, {"ConfigurationToken": token})

    def refuse(self, operation: str, code: str, status: int) -> None:
        self.stub.add_client_error(operation, code, f"injected {code}", status)

    def done(self) -> None:
        self.stub.assert_no_pending_responses()


@pytest.fixture
def origin() -> Iterator[Origin]:
    """The client the library makes lazily (so calls take the generated hit path), stubbed."""
    made = Origin(_aws.get_client("appconfigdata"))
    with made.stub:
        yield made
    made.done()


@pytest.fixture
def injected() -> Iterator[Origin]:
    """A client of the test's own, passed as ``client=``."""
    made = Origin(boto3.client("appconfigdata", region_name="eu-west-1"))
    with made.stub:
        yield made
    made.done()


def get(**kwargs: Any) -> Any:
    return appconfig.get_entry("app", "prod", "flags", **kwargs)


def test_first_call_starts_a_session_and_a_hit_makes_no_call(default: Any, origin: Origin) -> None:
    origin.start("t0")
    origin.poll("t0", "t1", b'{"beta": true, "limit": 3}')
    assert get() == b'{"beta": true, "limit": 3}'
    origin.done()
    hits = default.memory_hits
    for _ in range(3):
        assert get() == b'{"beta": true, "limit": 3}'  # the Stubber refuses any call now
    assert default.memory_hits == hits + 3


def test_transform_json_and_auto(default: Any, origin: Origin) -> None:
    origin.start("j0")
    origin.poll("j0", "j1", json.dumps(FLAGS).encode())
    assert get(transform="json") == FLAGS
    origin.start("a0", ConfigurationProfileIdentifier="flags.json")
    origin.poll("a0", "a1", json.dumps(FLAGS).encode())
    assert appconfig.get_entry("app", "prod", "flags.json", transform="auto") == FLAGS
    origin.start("r0", ConfigurationProfileIdentifier="raw")
    origin.poll("r0", "r1", b"not json")
    assert appconfig.get_entry("app", "prod", "raw", transform="auto") == b"not json"


def test_an_empty_body_renews_the_entry_with_the_last_value(
    default: Any, origin: Origin, fake_clock: Any
) -> None:
    origin.start("t0")
    origin.poll("t0", "t1", json.dumps(FLAGS).encode())
    assert get(transform="json", max_age_in_seconds=30) == FLAGS
    fake_clock.advance(31)
    origin.poll("t1", "t2", b"")  # unchanged: no bytes, the next token
    assert get(transform="json", max_age_in_seconds=30) == FLAGS
    fake_clock.advance(29)
    assert get(transform="json", max_age_in_seconds=30) == FLAGS  # renewed: fresh, no call
    origin.done()
    fake_clock.advance(2)
    origin.poll("t2", "t3", b'{"beta": false}')  # the update arrives within the max age
    assert get(transform="json", max_age_in_seconds=30) == {"beta": False}


def test_a_refused_token_starts_a_new_session_once(
    default: Any, origin: Origin, fake_clock: Any
) -> None:
    origin.start("t0")
    origin.poll("t0", "t1", b"v1")
    assert get() == b"v1"
    fake_clock.advance(61)
    origin.refuse("get_latest_configuration", "BadRequestException", 400)  # expired token
    origin.start("n0")
    origin.poll("n0", "n1", b"")  # a new session's first answer is the configuration itself
    assert get() == b""
    fake_clock.advance(61)
    origin.refuse("get_latest_configuration", "BadRequestException", 400)
    origin.start("m0")
    origin.refuse("get_latest_configuration", "BadRequestException", 400)
    with pytest.raises(SourceError, match="BadRequestException"):  # only once more
        get()


def test_missing_application_is_not_found_and_remembered(default: Any, origin: Origin) -> None:
    origin.refuse("start_configuration_session", "ResourceNotFoundException", 404)
    with pytest.raises(NotFoundError, match="'flags' of 'app'/'prod'"):
        get()
    with pytest.raises(NotFoundError):
        get()  # remembered: the Stubber has nothing more queued


def test_other_failures_are_source_errors_and_drop_the_token(
    default: Any, origin: Origin, fake_clock: Any
) -> None:
    origin.start("t0")
    origin.poll("t0", "t1", b"v1")
    get()
    fake_clock.advance(61)
    origin.refuse("get_latest_configuration", "ThrottlingException", 429)
    with pytest.raises(SourceError, match="ThrottlingException"):
        get()
    origin.start("s0")  # the token may have been spent: a new session
    origin.poll("s0", "s1", b"v2")
    assert get() == b"v2"


def test_a_restart_on_the_same_directory_makes_no_call_and_keeps_no_token(
    default: Any, origin: Origin, make_cache: Any
) -> None:
    origin.start("token-0-secret-ish")
    origin.poll("token-0-secret-ish", "token-1-secret-ish", json.dumps(FLAGS).encode())
    assert get(transform="json") == FLAGS
    with tiered.use_cache(make_cache()):  # another process's cache on the same /tmp
        assert get(transform="json") == FLAGS  # from disk, with its types; no call
        assert tiered.default_cache().stats()["disk_hits"] == 1
    on_disk = bytes_under(default.directory)
    assert b'"limit"' in on_disk or b"limit" in on_disk  # the value is shared on disk ...
    assert b"token-" not in on_disk  # ... the poll token never is


def test_a_fresh_process_serves_the_disk_value_with_no_call(
    default: Any, origin: Origin, python_subprocess: Any
) -> None:
    origin.start("t0")
    origin.poll("t0", "t1", json.dumps(FLAGS).encode())
    assert get(transform="json") == FLAGS
    result = python_subprocess(
        f"""
        import json, boto3
        from botocore.stub import Stubber
        import tiered_cache as tiered
        from tiered_cache import appconfig
        clock = lambda: {default.clock()}
        tiered.set_default_cache(tiered.TieredCache(directory={default.directory!r}, clock=clock))
        client = boto3.client("appconfigdata", region_name="us-east-1")
        with Stubber(client):  # nothing queued: any call fails
            value = appconfig.get_entry("app", "prod", "flags", transform="json", client=client)
        print(json.dumps(value))
        """,
        env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
    )
    assert json.loads(result.stdout) == FLAGS


def test_a_forked_child_starts_its_own_session(
    default: Any, origin: Origin, fake_clock: Any
) -> None:
    origin.start("parent-0")
    origin.poll("parent-0", "parent-1", b"v1")
    assert get() == b"v1"
    origin.done()
    fake_clock.advance(61)
    pid = os.fork()
    if pid == 0:  # the child: it must not spend the parent's token
        status = 1
        try:
            origin.start("child-0")
            origin.poll("child-0", "child-1", b"v2")
            status = 0 if get() == b"v2" else 2
            origin.done()
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert get() == b"v2"  # what the child stored on the shared disk, with no call
    fake_clock.advance(61)
    origin.poll("parent-1", "parent-2", b"v3")  # the parent's session goes on with its token
    assert get() == b"v3"


class Minimal:
    """A client of the least shape (its own tokens, named after it): CPython reuses a freed
    one's address for the next one made, which a memo keyed by ``id(client)`` mistakes for it."""

    meta = types.SimpleNamespace(region_name="us-east-1")

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[str] = []

    def start_configuration_session(self, **params: Any) -> dict[str, str]:
        self.calls.append("start")
        return {"InitialConfigurationToken": f"{self.name}-0"}

    def get_latest_configuration(self, ConfigurationToken: str) -> dict[str, Any]:
        self.calls.append(ConfigurationToken)
        assert ConfigurationToken.startswith(self.name), "a token of another client"
        body = self.name.encode()
        return {
            "NextPollConfigurationToken": f"{self.name}-{len(self.calls)}",
            "Configuration": StreamingBody(io.BytesIO(body), len(body)),
        }


def test_a_new_client_never_spends_a_freed_clients_token(default: Any, fake_clock: Any) -> None:
    first = Minimal("first")
    value = get(client=first)
    assert value == b"first"
    address, gone = id(first), weakref.ref(first)
    del first
    gc.collect()
    assert gone() is None  # nothing the library keeps holds the client
    kept = []  # try for a new client at the freed one's address (CPython often gives it)
    second = Minimal("second")
    while id(second) != address and len(kept) < 1000:
        kept.append(second)
        second = Minimal("second")
    fake_clock.advance(61)
    assert get(client=second) == b"second"
    assert second.calls == ["start", "second-0"]  # a session of its own


def test_the_handler_sets_the_configuration_on_the_context(default: Any, origin: Origin) -> None:
    @appconfig.cache(application="app", environment="prod", profile="flags", transform="json")
    def handler(event: Any, context: Any) -> Any:
        return context.flags

    origin.start("t0")
    origin.poll("t0", "t1", json.dumps(FLAGS).encode())
    assert handler({}, Context()) == FLAGS
    assert handler({}, Context()) == FLAGS


def test_an_injected_client(default: Any, injected: Origin) -> None:
    injected.start("i0")
    injected.poll("i0", "i1", b"west")
    assert get(client=injected.client) == b"west"
    assert get(client=injected.client) == b"west"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("app", "prod", ""), TypeError),
        (("app", None, "flags"), TypeError),
        (("", "prod", "flags"), ValueError),
        ((["app"], "prod", "flags"), TypeError),
    ],
)
def test_argument_errors(default: Any, args: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        appconfig.get_entry(*args)
    with pytest.raises(ValueError, match="transform"):
        appconfig.get_entry("app", "prod", "flags", transform="yaml")  # type: ignore[arg-type]
