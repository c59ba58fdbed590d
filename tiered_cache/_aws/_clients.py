"""boto3 clients, made lazily once per process, and botocore errors translated.

Clients are made once per (service, region, session) with botocore's standard retry mode;
``client=`` and ``session=`` (a ``boto3.Session``) inject others. An injected client or session
is held weakly (:func:`connections`): a handler that makes a new one on every invocation must
not have each kept alive by the memos. Importing this module does not import boto3: the first
client does. Botocore errors become :class:`SourceError` (``__cause__`` is the botocore error),
missing things :class:`NotFoundError`.

Thread-safe: clients are made under a lock.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..exceptions import NotFoundError, SourceError

__all__ = [
    "call",
    "client_for",
    "connections",
    "error_code",
    "get_client",
    "region_for",
    "translate",
]

_NOT_FOUND: Final = frozenset(
    {
        "ParameterNotFound",
        "ParameterVersionNotFound",
        "ResourceNotFoundException",
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchVersion",
        "NotFound",
        "404",
    }
)
#: Operations whose service selects versions, and what it calls them (for not-found messages).
_SELECTORS: Final = {
    "GetParameter": "version or label",
    "GetParameters": "version or label",
    "GetParameterHistory": "version or label",
    "GetSecretValue": "version or stage",
    "BatchGetSecretValue": "version or stage",
}


# -- clients ---------------------------------------------------------------------------------

#: The default session's clients by (service, region), and an injected session's by the session
#: (weakly: they go with it; a client holds no reference to its boto3 Session).
_clients: dict[tuple[str, str | None], Any] = {}
_by_session: weakref.WeakKeyDictionary[Any, dict[tuple[str, str | None], Any]]
_by_session = weakref.WeakKeyDictionary()
_clients_lock = threading.Lock()

#: The options that hold connection objects (held weakly by a memoized call).
CONNECTIONS: Final = ("client", "session")


def get_client(service: str, region: str | None = None, session: Any = None) -> Any:
    """The process's client for ``service`` in ``region`` (made once, standard retries).

    Made as a bare ``boto3.client(service)`` is (the default session, boto3's region
    resolution), plus the standard retry mode. When boto3 finds no region (it reads
    ``AWS_DEFAULT_REGION`` and the config file), ``AWS_REGION`` is used: Lambda sets both, a
    shell often only the first. No region at all raises :class:`SourceError` naming both
    variables. Thread-safe.
    """
    key = (service, region)
    if session is None:
        found = _clients.get(key)
        if found is None:
            with _clients_lock:
                found = _clients.get(key)
                if found is None:
                    found = _clients[key] = _make_client(service, region, None)
        return found
    with _clients_lock:
        table = _by_session.get(session)
        if table is None:
            table = _by_session[session] = {}
        found = table.get(key)
        if found is None:
            found = table[key] = _make_client(service, region, session)
    return found


def _make_client(service: str, region: str | None, session: Any) -> Any:
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, NoRegionError

    config = Config(retries={"mode": "standard"})
    if session is None:
        import boto3

        make: Any = boto3.client
    else:
        make = session.client
    try:
        try:
            return make(service, region_name=region, config=config)
        except NoRegionError:
            fallback = os.environ.get("AWS_REGION", "").strip()
            if region or not fallback:
                raise
            return make(service, region_name=fallback, config=config)
    except NoRegionError as exc:
        raise SourceError(
            f"tiered-cache: cannot make {_article(service)} {service} client: no AWS region is "
            "configured; set AWS_REGION or AWS_DEFAULT_REGION, or pass region_name=, session= "
            "or client="
        ) from exc
    except BotoCoreError as exc:
        reason = str(exc).rstrip(". ")
        raise SourceError(
            f"tiered-cache: cannot make {_article(service)} {service} client: {reason}; pass "
            "region_name=, session= or client= to choose another"
        ) from exc


#: Service names read out letter by letter whose first letter sounds like a vowel ("an ssm").
_SPELLED: Final = frozenset({"ssm", "s3", "sqs", "sns", "ses", "sts", "rds", "ecs", "ecr", "emr"})


def _article(service: str) -> str:
    """ "an" before a vowel sound as the name is read out ("an ssm", "an appconfigdata"), else
    "a" ("a secretsmanager", "a dynamodb")."""
    return "an" if service in _SPELLED or service[:1] in "aeiou" else "a"


def region_for(service: str, options: Mapping[str, Any]) -> str:
    """The region a call with ``options`` goes to, for the cache key (no boto3 import if the
    environment says, as it does in Lambda)."""
    region = options.get("region_name")
    if region:
        return str(region)
    client = _live(options.get("client"), "client")
    if client is not None:
        return str(client.meta.region_name or "")
    session = _live(options.get("session"), "session")
    if session is not None and session.region_name:
        return str(session.region_name)
    # What boto3 reads first (AWS_DEFAULT_REGION), then get_client's fallback (AWS_REGION).
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if region:
        return region
    try:
        return str(get_client(service, None, session).meta.region_name or "")
    except SourceError:  # no region configured: the call itself will say so
        return ""


def client_for(service: str, options: Mapping[str, Any]) -> Any:
    """The injected client, else the shared one for the options' region and session."""
    client = _live(options.get("client"), "client")
    if client is not None:
        return client
    return get_client(service, options.get("region_name"), _live(options.get("session"), "session"))


def connections(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with an injected client or session replaced by a weak reference to it
    (objects that take none are kept as they are), for what outlives the call: a memoized
    request, a memo key. :func:`client_for` and :func:`region_for` read either form."""
    held = dict(options)
    for name in CONNECTIONS:
        value = held.get(name)
        if value is not None:
            try:
                held[name] = weakref.ref(value)
            except TypeError:  # no weak references to it: held as given
                pass
    return held


def _live(value: Any, name: str) -> Any:
    """An option's object, through its weak reference if it is held by one."""
    if type(value) is not weakref.ReferenceType:
        return value
    found = value()
    if found is None:  # only a request kept past its call could see this
        raise SourceError(f"tiered-cache: the {name}= this call was made with no longer exists")
    return found


# -- errors ----------------------------------------------------------------------------------


def call(operation: Callable[..., Any], what: str, **kwargs: Any) -> Any:
    """``operation(**kwargs)`` with botocore errors turned into ``SourceError``/``NotFoundError``.

    ``what`` names the thing asked for in the message, for example "SSM parameter '/a/x'".
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return operation(**kwargs)
    except ClientError as exc:
        raise translate(exc, what) from exc
    except BotoCoreError as exc:
        raise SourceError(f"tiered-cache: fetching {what} failed: {exc}") from exc


def error_code(exc: Any) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" if it has none)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def translate(exc: Any, what: str) -> SourceError:
    """The tiered-cache error for a botocore ``ClientError`` (not raised; chain it)."""
    code = error_code(exc)
    operation = getattr(exc, "operation_name", "the call")
    if code in _NOT_FOUND:
        selector = _SELECTORS.get(operation, "")  # only services that have them
        return NotFoundError(
            f"tiered-cache: {what} does not exist ({code} from {operation}); check the name"
            + (f", the region and the {selector} asked for" if selector else " and the region")
        )
    message = getattr(exc, "response", {}).get("Error", {}).get("Message", "")
    return SourceError(f"tiered-cache: {operation} for {what} failed: {code}: {message}")


def _reset() -> None:
    """Forget every client made (tests)."""
    with _clients_lock:
        _clients.clear()
        _by_session.clear()
