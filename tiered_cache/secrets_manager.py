"""Secrets Manager, cached in memory, in lambda-cache's call style.

::

    from tiered_cache import secrets_manager

    @secrets_manager.cache(name="prod/db", max_age_in_seconds=300, entry_name="db")
    def handler(event, context): ...                        # context.db

    secrets_manager.get_entry(name="prod/db")                   # str (SecretBinary: bytes)
    secrets_manager.get_entry(name="prod/db", transform="json") # the parsed JSON

Secrets stay in this process's memory only: nothing secret lands in /tmp unless the caller
passes ``persist=True``. ``version_stage`` (e.g. ``"AWSPREVIOUS"``) and ``version_id`` select a
version; they and ``transform`` are part of the cache key.

Options (keywords, every call): ``max_age_in_seconds`` or ``ttl`` (the same setting; default:
the cache's ttl, 60 s unless ``TIERED_CACHE_TTL``), ``stale_if_error``, ``transform``
(``"json"`` or None), ``version_stage``, ``version_id``, ``persist`` (default False),
``client``, ``session``, ``region_name``.

IAM: ``secretsmanager:GetSecretValue``, and ``kms:Decrypt`` for a customer-managed key.

Thread-safe; one origin call per key at a time within a process (memory-only entries are not
single-flight across processes). Errors: ``NotFoundError`` for a missing secret or version
(``__cause__``: the ``ClientError``; remembered for up to 10 s), ``SourceError`` for other
failures, ``ValueError`` for ``transform="json"`` on a secret that is not JSON (the message
never quotes the secret).

Moving from lambda-cache
------------------------
Change ``from lambda_cache import secrets_manager`` to ``from tiered_cache import
secrets_manager``; ``name``, ``max_age_in_seconds`` (60 s), ``entry_name`` and the context
attribute names are the same. Differences: a missing secret raises ``NotFoundError`` instead
of a bare ``ClientError``; the cache key is the region, full name and options, never the
entry name (an SSM parameter and a secret with the same leaf name no longer collide); new
options ``transform``, ``version_stage``, ``version_id``, ``stale_if_error``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from . import _aws
from .exceptions import ArgumentTypeNotSupportedError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SecretsManagerOptions", "cache", "get_entry"]

F = TypeVar("F", bound=Callable[..., Any])


class SecretsManagerOptions(_aws.Options, total=False):
    """Keyword options of the Secrets Manager helpers."""

    transform: Literal["json"] | None  #: "json": return the parsed secret
    version_stage: str  #: VersionStage, e.g. "AWSCURRENT" or "AWSPREVIOUS"
    version_id: str  #: VersionId


_ALLOWED: Final = frozenset({"transform", "version_stage", "version_id"})
_specs: dict[Any, _aws.Spec] = _aws.memo_table()
_fast: dict[Any, _aws.Hit] = _aws.memo_table()


_GET_ENTRY_DOC: Final = """The secret's value: ``str`` (SecretString), ``bytes`` (SecretBinary) or, with
``transform="json"``, the parsed object. Kept in memory only unless ``persist=True``."""


def _get_entry(name: Any, max_age_in_seconds: Any, entry_name: Any, options: dict[str, Any]) -> Any:
    """``get_entry``'s miss path: validate (memoized), bind its hit path, load."""
    memo_key = (name, max_age_in_seconds, entry_name, tuple(sorted(options.items())))
    plan = _aws.resolve(
        _specs,
        memo_key,
        _spec,
        name,
        max_age_in_seconds,
        entry_name,
        options,
        "secrets_manager.get_entry",
    )
    if type(name) is str and not options:
        _aws.remember_hit(get_entry, _fast, name, plan)
    return _aws.value_of(plan)


if TYPE_CHECKING:

    def get_entry(
        name: str,
        max_age_in_seconds: float | None = None,
        entry_name: str | bool | None = False,
        **options: Unpack[SecretsManagerOptions],
    ) -> Any:
        """The secret's value, cached (see the module docstring)."""

else:
    get_entry = _aws.hit_path(
        "get_entry",
        "name, max_age_in_seconds=None, entry_name=False, **options",
        "name, max_age_in_seconds, entry_name, options",
        _fast,
        _get_entry,
        doc=_GET_ENTRY_DOC,
    )


def cache(
    name: str,
    max_age_in_seconds: float | None = None,
    entry_name: str | bool | None = False,
    **options: Unpack[SecretsManagerOptions],
) -> Callable[[F], F]:
    """Decorate ``handler(event, context)`` to set ``context.<entry_name>`` to the secret.

    ``entry_name`` defaults to the last segment of the name (``prod/db`` -> ``db``).
    Arguments are checked when the handler is called, not when it is decorated.
    """
    return _aws.handler_decorator(
        lambda: _spec(name, max_age_in_seconds, entry_name, options, "secrets_manager.cache")
    )


def _spec(
    name: Any, max_age_in_seconds: Any, entry_name: Any, options: Any, owner: str
) -> _aws.Spec:
    attr = _aws.entry_name_for(name, entry_name)
    if not isinstance(name, str):
        raise ArgumentTypeNotSupportedError(
            f"tiered-cache: {owner}: Secrets Manager takes one secret name (or ARN) as a str, "
            f"not {type(name).__name__}"
        )
    if not name:
        raise ValueError(f"tiered-cache: {owner}: the secret name is empty")
    ttl, stale_if_error = _aws.check_options(options, _ALLOWED, owner)
    age = _aws.max_age_of(max_age_in_seconds, ttl, owner)
    transform = options.get("transform")
    if transform not in (None, "json"):
        raise ValueError(
            f"tiered-cache: {owner}: transform must be 'json' or None, not {transform!r}"
        )
    request: dict[str, str] = {"SecretId": name}
    for option, field in (("version_stage", "VersionStage"), ("version_id", "VersionId")):
        value = options.get(option)
        if value is not None:
            if not isinstance(value, str) or not value:
                raise TypeError(f"tiered-cache: {owner}: {option} must be a non-empty str")
            request[field] = value
    region = _aws.region_for("secretsmanager", options)
    key = (
        f"aws:secretsmanager:{region}:stage={request.get('VersionStage', '')}"
        f":id={request.get('VersionId', '')}:transform={transform or ''}:{name}"
    )
    fetch = functools.partial(_fetch, request, transform, dict(options), region)
    persist = options.get("persist") is True
    shared = options.get("shared") is True  # a secret reaches the fleet only when asked to
    return _aws.Spec(
        key, attr, age, max_age_in_seconds, stale_if_error, persist, fetch, shared=shared
    )


def _fetch(
    request: Mapping[str, str], transform: str | None, options: Any, region: str
) -> str | bytes | Any:
    client = _aws.client_for("secretsmanager", options)
    name = request["SecretId"]
    version = "".join(f", {k} {v!r}" for k, v in request.items() if k != "SecretId")
    what = f"secret {name!r}{version} in {region or 'the default region'}"
    response = _aws.call(client.get_secret_value, what, **request)
    value = response.get("SecretString")
    if value is None:
        value = response["SecretBinary"]
    if transform == "json":
        try:
            return json.loads(value)
        except ValueError as exc:  # JSONDecodeError or bad UTF-8; exc.doc holds the secret
            detail = getattr(exc, "msg", "not UTF-8 text")
            raise ValueError(
                f"tiered-cache: {what} is not valid JSON ({detail}), so transform='json' "
                "cannot parse it; store JSON in the secret, or drop transform= to get the raw "
                "value"
            ) from None
    return value
