"""AppConfig configurations (feature flags, settings), cached in memory and on local disk.

::

    from tiered_cache import appconfig

    @appconfig.cache(application="app", environment="prod", profile="flags", transform="json")
    def handler(event, context): ...                                   # context.flags

    appconfig.get_entry(application="app", environment="prod", profile="flags")    # bytes
    appconfig.get_entry("app", "prod", "flags", transform="json")                  # dict

Through AppConfigData: ``StartConfigurationSession`` once, then ``GetLatestConfiguration``
with the poll token whenever the entry is older than the max age. An empty body means
"unchanged": the entry is renewed with the body this session last received; no configuration
bytes move. The poll token belongs to the process holding the session (never on disk; a forked
child starts its own); the value on disk is shared as usual. A refused token (expired after
24 h, or used twice, as after a SnapStart restore) starts a new session once. Sessions ask for
the service's shortest poll interval, 15 s. ``transform``: ``"json"``, ``"binary"`` (base64),
``"auto"`` (by the profile's suffix, ``.json`` or ``.binary``) or None (bytes as stored).
Options (keywords): ``ttl``, ``stale_if_error``, ``persist`` (default True), ``shared``,
``client``, ``session``, ``region_name``. IAM: ``appconfig:StartConfigurationSession``,
``appconfig:GetLatestConfiguration``. Thread- and process-safe like every helper. Errors:
``NotFoundError`` for a missing application, environment or profile, ``SourceError`` for other
failures, ``ValueError`` for a body ``transform`` cannot parse (never quoting it).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import _aws, _fork, _restore
from ._aws import _transform
from .exceptions import SourceError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["cache", "get_entry"]

F = TypeVar("F", bound=Callable[..., Any])

POLL_SECONDS: Final = 15  #: RequiredMinimumPollIntervalInSeconds: the least the service takes


class _Session:
    """This process's session for one configuration: its next token, and the last body."""

    __slots__ = ("body", "lock", "token")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: str | None = None
        self.body: bytes | None = None


#: Sessions by the client that holds them (weakly: a token is that client's, and a new client
#: made at a freed one's address must not inherit it), then by what they configure.
_sessions: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], _Session]]
_sessions = weakref.WeakKeyDictionary()


def _forget() -> None:
    _sessions.clear()  # a child never uses its parent's tokens


_fork.after_fork_in_child(_forget)
_restore.on_restore(_forget)  # clones of one snapshot never share its tokens


class _Configurations(_aws.Service):
    name = "appconfigdata"
    kind = "appconfig"
    entry_from = "profile"
    options = (
        _aws.Option("environment", check=_aws.name),
        _aws.Option("profile", check=_aws.name),
        _aws.Option("transform", check=_transform.check),
    )

    def key(self, request: _aws.Request) -> str:
        return str(request.name)

    def fetch(self, request: _aws.Request) -> Any:
        app, env, profile = request.name, request.environment, request.profile
        what = f"AppConfig profile {profile!r} of {app!r}/{env!r} in {request.where}"
        client = request.client()
        found = (request.region, app, env, profile, request.transform)
        held = _sessions.get(client)
        if held is None:
            held = _sessions.setdefault(client, {})
        if len(held) >= _aws.MEMO_LIMIT:
            held.clear()
        session = held.get(found) or held.setdefault(found, _Session())
        with session.lock:  # one token, one call at a time
            for attempt in (1, 2):
                if session.token is None:
                    started = _aws.call(
                        client.start_configuration_session,
                        what,
                        ApplicationIdentifier=app,
                        EnvironmentIdentifier=env,
                        ConfigurationProfileIdentifier=profile,
                        RequiredMinimumPollIntervalInSeconds=POLL_SECONDS,
                    )
                    session.token, session.body = started["InitialConfigurationToken"], None
                try:
                    response = _aws.call(
                        client.get_latest_configuration, what, ConfigurationToken=session.token
                    )
                    body = response.get("Configuration")
                    data = b"" if body is None else _aws.call(body.read, what)
                except SourceError as exc:
                    session.token = None  # the next call starts a new session
                    if attempt == 1 and _aws.error_code(exc.__cause__) == "BadRequestException":
                        continue  # a refused token: once more with a new session
                    raise
                session.token = response.get("NextPollConfigurationToken")
                if data or session.body is None:  # empty: unchanged since this session's last
                    session.body = data
                break
            body = session.body
        return _transform.apply(body, request.transform, str(profile), what)


_CONFIGURATIONS: Final = _Configurations()


@_CONFIGURATIONS.entry
def get_entry(
    application: str,
    environment: str,
    profile: str,
    transform: _transform.Transform = None,
    max_age_in_seconds: float | None = None,
    entry_name: str | bool | None = False,
    **options: Unpack[_aws.Options],
) -> Any:
    """The configuration's body (``bytes``), or with ``transform`` the parsed value, cached."""
    raise NotImplementedError  # never runs: the base generates the function


@_CONFIGURATIONS.handler
def cache(
    application: str,
    environment: str,
    profile: str,
    transform: _transform.Transform = None,
    max_age_in_seconds: float | None = None,
    entry_name: str | bool | None = False,
    **options: Unpack[_aws.Options],
) -> Callable[[F], F]:
    """Decorate ``handler(event, context)`` to set ``context.<entry_name>`` (default: the
    profile's name) to the value; arguments are checked when the handler is called.
    """
    raise NotImplementedError  # never runs: the base generates the function
