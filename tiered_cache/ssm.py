"""SSM Parameter Store, cached in memory and on local disk, in lambda-cache's call style.

::

    from tiered_cache import ssm

    @ssm.cache(parameter="/prod/app/var", max_age_in_seconds=60)   # sets context.var
    def handler(event, context): ...

    ssm.get_entry(parameter="/prod/app/var")                      # str (StringList: list)
    ssm.get_entry(parameter=["/a/x", "/b/y"], entry_name="cfg")   # {"x": ..., "y": ...}
    ssm.get_parameters_by_path("/prod/app/", recursive=True)      # {full name: value}

String and SecureString values are ``str`` (SecureString decrypted unless ``decrypt=False``),
StringList values ``list[str]``. Version and label selectors (``/name:3``, ``/name:prod``)
are part of the name and of the cache key. A list of names is fetched in batches of 10 (the
GetParameters limit); names that do not exist raise ``NotFoundError`` naming all of them.

Options (keywords, every call): ``max_age_in_seconds`` or ``ttl`` (the same setting; default:
the cache's ttl, 60 s unless ``TIERED_CACHE_TTL``), ``stale_if_error``, ``decrypt`` (default
True), ``transform`` (``"json"``, ``"binary"`` (base64), ``"auto"`` (by the name's suffix,
``.json`` or ``.binary``) or None; applied to each value of a list or path, and part of the
cache key), ``persist`` (default: True for String/StringList, False for a decrypted
SecureString, which stays in memory only), ``shared`` (default: as ``persist``; a decrypted
SecureString only with ``shared=True``, and then memory and the shared tier, no disk:
``shared=True`` without ``persist=True`` keeps any decrypted call's values off every disk,
since a machine that reads them from the shared tier cannot tell a SecureString from a String),
``client``, ``session``, ``region_name``.

IAM: ``ssm:GetParameter`` (one name), ``ssm:GetParameters`` (a list),
``ssm:GetParametersByPath`` (a path), and ``kms:Decrypt`` on the key of SecureStrings.

Thread-safe and process-safe: one origin call per key at a time across threads, and across
processes for values that go to disk. Errors: ``NotFoundError`` for a missing name (its
``__cause__`` is the botocore ``ClientError``; remembered for up to 10 s), ``SourceError``
for any other failure of the service, unless ``stale_if_error`` lets a stale value stand in;
``ValueError`` for a value that ``transform`` cannot parse (never quoting the value).

Moving from lambda-cache
------------------------
Change ``from lambda_cache import ssm`` to ``from tiered_cache import ssm``; the parameter
names, positions, the 60 s default and the context attribute names are the same. Differences:

- A missing name raises ``tiered_cache.exceptions.NotFoundError`` (``__cause__``: the
  ``ClientError``), not a bare ``ClientError``; a list with missing names raises it too, where
  lambda-cache silently left them out of the dict.
- The cache key is the service, region, decryption and full name, never the entry name:
  ``/a/x`` and ``/b/x`` no longer share (and overwrite) one entry. A list whose leaf names
  collide raises ``ValueError``; use ``get_parameters_by_path``, which keys by full name.
- Lists of more than 10 names work (batches of 10).
- Values also live in /tmp (decrypted SecureStrings excepted) and so survive a restart of the
  runtime and serve every process of the environment; freshness uses the wall clock to the
  sub-second, and the boto3 client is made once per process.
- Argument errors are raised when the handler is called, as in lambda-cache, in its order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from . import _aws
from ._aws import _transform
from ._tier import LOCAL, MEMORY, SHARED, Placed
from .exceptions import NotFoundError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SSMOptions", "cache", "get_entry", "get_parameters_by_path"]

F = TypeVar("F", bound=Callable[..., Any])
V = TypeVar("V")

#: GetParameters takes at most this many names per call.
BATCH: Final = 10


class SSMOptions(_aws.Options, total=False):
    """Keyword options of the SSM helpers."""

    decrypt: bool  #: WithDecryption (default True)
    transform: _transform.Transform  #: "json", "binary", "auto" or None


class _Parameters(_aws.Service):
    """One name (GetParameter) or a list (GetParameters, batches of 10), keyed by leaf name."""

    name = "ssm"
    many = True
    options: ClassVar[tuple[_aws.Option, ...]] = (
        _aws.Option("decrypt", True, check=_aws.boolean),
        _aws.Option("transform", None, check=_transform.check),
    )

    def check_name(self, name: str | list[str], owner: str) -> None:
        if isinstance(name, list):
            _check_leaves(name, owner)

    def placement(self, request: _aws.Request) -> tuple[bool, bool | None]:
        persist, shared = super().placement(request)
        if request.decrypt and request.shared is True and request.persist is None:
            # A machine that reads the value from the shared tier cannot tell a SecureString
            # from a String: shared=True alone keeps a decrypted call off every disk.
            persist = False
        return persist, shared

    def key(self, request: _aws.Request) -> str:
        return request.name or json.dumps(sorted(request.names or ()))

    # -- tiered.prefetch: single names of one client and decryption share GetParameters calls

    batch = BATCH

    def batch_key(self, request: _aws.Request) -> Hashable | None:
        name = request.name
        if name is None or ":" in name:  # a list, a version or label selector, an ARN
            return None
        return (  # by identity: the client= and session= given, or their weak references
            request.region,
            id(request.options.get("client")),
            id(request.options.get("session")),
            request.decrypt,
        )

    def at_snapshot(self, request: _aws.Request) -> bool:
        # A decrypted value may be a SecureString: only a batch can leave those out unread.
        return not request.decrypt or self.batch_key(request) is not None

    def fetch_batch(self, requests: list[_aws.Request], snapshot: bool) -> list[Any]:
        """One GetParameters call; before a SnapStart snapshot without decryption, so a
        SecureString is never decrypted then (it is left out: ``SKIP``)."""
        first = requests[0]
        names = list(dict.fromkeys(str(request.name) for request in requests))
        response = _aws.call(
            first.client().get_parameters,
            f"SSM parameters {names!r} in {first.where}",
            Names=names,
            WithDecryption=first.decrypt and not snapshot,
        )
        found = {parameter["Name"]: parameter for parameter in response.get("Parameters", ())}
        answers: list[Any] = []
        for request in requests:
            parameter = found.get(str(request.name))
            if parameter is None:
                answers.append(
                    NotFoundError(
                        f"tiered-cache: SSM parameter {request.name!r} in {request.where} does "
                        "not exist (InvalidParameters from GetParameters); check the name and "
                        "the region"
                    )
                )
            elif snapshot and request.decrypt and parameter.get("Type") == "SecureString":
                answers.append(_aws.SKIP)
            else:
                try:
                    value = _value(request, parameter)
                except ValueError as exc:  # a transform refused it: as its own fetch would
                    answers.append(exc)
                else:
                    answers.append(_place(request, value, _secret(parameter, request.decrypt)))
        return answers

    def fetch(self, request: _aws.Request) -> Any:
        client, decrypt = request.client(), request.decrypt
        if request.name is not None:
            name = request.name
            response = _aws.call(
                client.get_parameter,
                f"SSM parameter {name!r} in {request.where}",
                Name=name,
                WithDecryption=decrypt,
            )
            parameter = response["Parameter"]
            return _place(request, _value(request, parameter), _secret(parameter, decrypt))
        names = request.names or []
        found: dict[str, Any] = {}
        missing: list[str] = []
        secret = False
        for start in range(0, len(names), BATCH):
            batch = names[start : start + BATCH]
            response = _aws.call(
                client.get_parameters,
                f"SSM parameters {batch!r} in {request.where}",
                Names=batch,
                WithDecryption=decrypt,
            )
            for parameter in response.get("Parameters", ()):
                found[_leaf(parameter["Name"])] = _value(request, parameter)
                secret = secret or _secret(parameter, decrypt)
            missing.extend(response.get("InvalidParameters", ()))
        if missing:
            raise NotFoundError(
                f"tiered-cache: SSM parameters not found in {request.where}: "
                f"{', '.join(missing)}; check the names and the region"
            )
        result = {_leaf(name): found[_leaf(name)] for name in names if _leaf(name) in found}
        return _place(request, result, secret)


class _Path(_Parameters):
    """Every parameter under a path (GetParametersByPath, page by page), keyed by full name."""

    kind = "ssm-path"
    many = False
    options = (*_Parameters.options, _aws.Option("recursive", False, check=_aws.boolean))
    batch = 0

    def batch_key(self, request: _aws.Request) -> Hashable | None:
        return None

    def check_name(self, name: str | list[str], owner: str) -> None:
        if not str(name).startswith("/"):
            raise ValueError(f"tiered-cache: {owner}: path must start with '/', not {name!r}")

    def key(self, request: _aws.Request) -> str:
        return str(request.name)

    def fetch(self, request: _aws.Request) -> Any:
        client, decrypt = request.client(), request.decrypt
        what = f"SSM parameters under {request.name!r} in {request.where}"
        call: dict[str, Any] = {
            "Path": request.name,
            "Recursive": request.recursive,
            "WithDecryption": decrypt,
            "MaxResults": BATCH,
        }
        result: dict[str, Any] = {}
        secret = False
        while True:
            response = _aws.call(client.get_parameters_by_path, what, **call)
            for parameter in response.get("Parameters", ()):
                result[parameter["Name"]] = _value(request, parameter)
                secret = secret or _secret(parameter, decrypt)
            token = response.get("NextToken")
            if not token:
                break
            call["NextToken"] = token
        return _place(request, result, secret)


_PARAMETERS: Final = _Parameters()
_PATH: Final = _Path()


@_PARAMETERS.entry
def get_entry(
    parameter: str | list[str],
    max_age_in_seconds: float | None = None,
    entry_name: str | bool | None = False,
    **options: Unpack[SSMOptions],
) -> Any:
    """The value of an SSM parameter (``str``, or ``list[str]`` for a StringList), cached.

    With a list of names, a dict keyed by leaf name (``entry_name`` is required, as in
    lambda-cache). A warm hit is a memo lookup, a dict lookup and a clock read."""
    raise NotImplementedError  # never runs: the base generates the function


@_PARAMETERS.handler
def cache(
    parameter: str | list[str],
    max_age_in_seconds: float | None = None,
    entry_name: str | bool | None = False,
    **options: Unpack[SSMOptions],
) -> Callable[[F], F]:
    """Decorate ``handler(event, context)`` to set ``context.<entry_name>`` to the value.

    ``entry_name`` defaults to the last segment of the name (``/prod/app/var`` -> ``var``).
    Arguments are checked when the handler is called, not when it is decorated. Stacks with
    the other helpers' decorators; the handler's return value is returned unchanged.
    """
    raise NotImplementedError  # never runs: the base generates the function


@_PATH.entry
def get_parameters_by_path(
    path: str,
    recursive: bool = False,
    max_age_in_seconds: float | None = None,
    **options: Unpack[SSMOptions],
) -> dict[str, Any]:
    """Every parameter under ``path`` (one level, or all with ``recursive``), by full name.

    Fetched page by page (GetParametersByPath, 10 per page) and cached as one entry. An
    empty path gives an empty dict.
    """
    raise NotImplementedError  # never runs: the base generates the function


# -- validation and values ---------------------------------------------------------------------


def _leaf(name: str) -> str:
    """``/a/b/x:3`` -> ``x``: the last segment, without a version or label selector."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def _check_leaves(names: list[str], owner: str) -> None:
    by_leaf: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        by_leaf.setdefault(_leaf(name), []).append(name)
    clashes = {leaf: found for leaf, found in by_leaf.items() if len(found) > 1}
    if clashes:
        listed = "; ".join(f"{', '.join(map(repr, v))} -> {k!r}" for k, v in clashes.items())
        raise ValueError(
            f"tiered-cache: {owner}: these parameters share a leaf name, so a dict keyed by "
            f"leaf name would keep only one of each: {listed}. Ask for them separately, or "
            "use ssm.get_parameters_by_path(path), which keys by full name"
        )


def _value(request: _aws.Request, parameter: Mapping[str, Any]) -> Any:
    """The parameter's value (a StringList as ``list[str]``), through ``transform``."""
    value: str = parameter["Value"]
    name = parameter["Name"]
    raw = value.split(",") if parameter.get("Type") == "StringList" else value
    what = f"SSM parameter {name!r} in {request.where}"
    return _transform.apply(raw, request.transform, name.split(":", 1)[0], what)


def _secret(parameter: Mapping[str, Any], decrypt: bool) -> bool:
    return decrypt and parameter.get("Type") == "SecureString"


def _place(request: _aws.Request, value: V, secret: bool) -> V | Placed:
    """Where a value goes once it is known to be secret: memory, plus this machine's disk only
    with ``persist=True`` and the shared tier only with ``shared=True`` (each opt-in alone)."""
    if not secret:
        return value
    where = (LOCAL if request.persist else MEMORY) | (SHARED if request.shared is True else 0)
    return Placed(value, where)
