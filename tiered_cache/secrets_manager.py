"""Secrets Manager, cached in memory, in lambda-cache's call style.

::

    from tiered_cache import secrets_manager

    @secrets_manager.cache(name="prod/db", max_age_in_seconds=300, entry_name="db")
    def handler(event, context): ...                        # context.db

    secrets_manager.get_entry(name="prod/db")                   # str (SecretBinary: bytes)
    secrets_manager.get_entry(name="prod/db", transform="json") # the parsed JSON
    secrets_manager.get_entry(name=["prod/db", "prod/api"], entry_name="s")
    # -> {"prod/db": ..., "prod/api": ...}: BatchGetSecretValue, 20 names a call

Secrets stay in this process's memory only: nothing secret lands in /tmp unless the caller
passes ``persist=True``. ``version_stage`` (e.g. ``"AWSPREVIOUS"``) and ``version_id`` select a
version of one secret; they and ``transform`` are part of the cache key.

A list of names (or ARNs) gives a dict keyed by each name exactly as given (as Powertools'
``get_secrets_by_name`` does; not by leaf name, since secret names rarely have one), fetched with
``BatchGetSecretValue`` in calls of at most 20 names and cached as one entry; ``entry_name`` is
required, as for any list. Names that do not exist raise ``NotFoundError`` naming all of them.

Options (keywords, every call): ``max_age_in_seconds`` or ``ttl`` (the same setting; default:
the cache's ttl, 60 s unless ``TIERED_CACHE_TTL``), ``stale_if_error``, ``transform``
(``"json"``, ``"binary"`` (base64), ``"auto"`` (by the name's suffix, ``.json`` or ``.binary``)
or None; for a list, applied to each secret by its own name), ``version_stage``,
``version_id``, ``persist`` (default False), ``shared`` (default False), ``client``,
``session``, ``region_name``.

IAM: ``secretsmanager:GetSecretValue``; for a list also ``secretsmanager:BatchGetSecretValue``;
``kms:Decrypt`` for a customer-managed key.

Thread-safe; one origin call per key at a time within a process (memory-only entries are not
single-flight across processes). Errors: ``NotFoundError`` for a missing secret or version
(``__cause__``: the ``ClientError``; remembered for up to 10 s), ``SourceError`` for other
failures, ``ValueError`` for a secret that ``transform`` cannot parse (the message never quotes
the secret, and the parser's exception is neither its cause nor its context).

Moving from lambda-cache
------------------------
Change ``from lambda_cache import secrets_manager`` to ``from tiered_cache import
secrets_manager``; ``name``, ``max_age_in_seconds`` (60 s), ``entry_name`` and the context
attribute names are the same. Differences: a missing secret raises ``NotFoundError`` instead
of a bare ``ClientError``; the cache key is the region, full name and options, never the
entry name (an SSM parameter and a secret with the same leaf name no longer collide); new
options ``transform``, ``version_stage``, ``version_id``, ``stale_if_error``; lists of names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import _aws
from ._aws import _transform
from .exceptions import NotFoundError, SourceError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SecretsManagerOptions", "cache", "get_entry"]

F = TypeVar("F", bound=Callable[..., Any])

#: BatchGetSecretValue takes at most this many names per call.
BATCH: Final = 20


class SecretsManagerOptions(_aws.Options, total=False):
    """Keyword options of the Secrets Manager helpers."""

    transform: _transform.Transform  #: "json", "binary", "auto" or None
    version_stage: str  #: VersionStage, e.g. "AWSCURRENT" or "AWSPREVIOUS" (one name only)
    version_id: str  #: VersionId (one name only)


class _Secrets(_aws.Service):
    name = "secretsmanager"
    many = True
    secret = True
    options = (
        _aws.Option("transform", None, check=_transform.check),
        _aws.Option("version_stage", check=_aws.text),
        _aws.Option("version_id", check=_aws.text),
    )

    def check(self, request: _aws.Request) -> None:
        if request.names is not None and (request.version_stage or request.version_id):
            raise TypeError(
                f"tiered-cache: {request.owner}: version_stage and version_id select a version "
                "of one secret; a list of names gets each secret's current version"
            )

    def key(self, request: _aws.Request) -> str:
        return request.name or json.dumps(sorted(request.names or ()))

    def fetch(self, request: _aws.Request) -> Any:
        if request.name is None:
            return self._fetch_many(request, request.names or [])
        name, call = request.name, {"SecretId": request.name}
        for option, field in (("version_stage", "VersionStage"), ("version_id", "VersionId")):
            if getattr(request, option) is not None:
                call[field] = getattr(request, option)
        version = "".join(f", {k} {v!r}" for k, v in call.items() if k != "SecretId")
        what = f"secret {name!r}{version} in {request.where}"
        return _transform.apply(
            _secret(_aws.call(request.client().get_secret_value, what, **call)),
            request.transform,
            name,
            what,
        )

    def _fetch_many(self, request: _aws.Request, names: list[str]) -> dict[str, Any]:
        client, raw, missing = request.client(), {}, []
        for start in range(0, len(names), BATCH):
            batch = names[start : start + BATCH]
            what = f"secrets {batch!r} in {request.where}"
            call: dict[str, Any] = {"SecretIdList": batch}
            while True:
                response = _aws.call(client.batch_get_secret_value, what, **call)
                for found in response.get("SecretValues", ()):
                    raw[found["Name"]] = raw[found["ARN"]] = _secret(found)
                for error in response.get("Errors", ()):
                    if error.get("ErrorCode") != "ResourceNotFoundException":
                        raise SourceError(
                            f"tiered-cache: BatchGetSecretValue for secret "
                            f"{error.get('SecretId')!r} in {request.where} failed: "
                            f"{error.get('ErrorCode')}: {error.get('Message', '')}"
                        )
                    missing.append(error.get("SecretId", "?"))
                if not response.get("NextToken"):
                    break
                call["NextToken"] = response["NextToken"]
        missing += [name for name in names if name not in raw and name not in missing]
        if missing:
            raise NotFoundError(
                f"tiered-cache: secrets not found in {request.where}: {', '.join(missing)}; "
                "check the names and the region"
            )
        return {
            name: _transform.apply(
                raw[name], request.transform, name, f"secret {name!r} in {request.where}"
            )
            for name in names
        }


def _secret(response: Mapping[str, Any]) -> Any:
    value = response.get("SecretString")
    return response["SecretBinary"] if value is None else value


_SECRETS: Final = _Secrets()


@_SECRETS.entry
def get_entry(
    name: str | list[str],
    max_age_in_seconds: float | None = None,
    entry_name: str | bool | None = False,
    **options: Unpack[SecretsManagerOptions],
) -> Any:
    """The secret's value: ``str`` (SecretString), ``bytes`` (SecretBinary) or, with
    ``transform``, the parsed object; for a list of names, a dict by name as given. Kept in
    memory only unless ``persist=True``."""
    raise NotImplementedError  # never runs: the base generates the function


@_SECRETS.handler
def cache(
    name: str | list[str],
    max_age_in_seconds: float | None = None,
    entry_name: str | bool | None = False,
    **options: Unpack[SecretsManagerOptions],
) -> Callable[[F], F]:
    """Decorate ``handler(event, context)`` to set ``context.<entry_name>`` to the secret.

    ``entry_name`` defaults to the last segment of the name (``prod/db`` -> ``db``).
    Arguments are checked when the handler is called, not when it is decorated.
    """
    raise NotImplementedError  # never runs: the base generates the function
