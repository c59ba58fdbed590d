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
True), ``persist`` (default: True for String/StringList, False for a decrypted SecureString,
which stays in memory only), ``client``, ``session``, ``region_name``.

IAM: ``ssm:GetParameter`` (one name), ``ssm:GetParameters`` (a list),
``ssm:GetParametersByPath`` (a path), and ``kms:Decrypt`` on the key of SecureStrings.

Thread-safe and process-safe: one origin call per key at a time across threads, and across
processes for values that go to disk. Errors: ``NotFoundError`` for a missing name (its
``__cause__`` is the botocore ``ClientError``; remembered for up to 10 s), ``SourceError``
for any other failure of the service, unless ``stale_if_error`` lets a stale value stand in.

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

import functools
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import _aws
from ._tier import LOCAL, MEMORY, SHARED, Placed
from .exceptions import ArgumentTypeNotSupportedError, NotFoundError

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


_ALLOWED: Final = frozenset({"decrypt"})
_specs: dict[Any, _aws.Spec] = _aws.memo_table()
_fast: dict[Any, _aws.Hit] = _aws.memo_table()
_path_specs: dict[Any, _aws.Spec] = _aws.memo_table()


_GET_ENTRY_DOC: Final = """The value of an SSM parameter (``str``, or ``list[str]`` for a StringList), cached.

With a list of names, a dict keyed by leaf name (``entry_name`` is required, as in
lambda-cache). A warm hit is a memo lookup, a dict lookup and a clock read."""


def _get_entry(
    parameter: Any, max_age_in_seconds: Any, entry_name: Any, options: dict[str, Any]
) -> Any:
    """``get_entry``'s miss path: validate (memoized), bind its hit path, load."""
    memo_key = (_aws.freeze(parameter), max_age_in_seconds, entry_name, _items(options))
    plan = _aws.resolve(
        _specs,
        memo_key,
        _spec,
        parameter,
        max_age_in_seconds,
        entry_name,
        options,
        "ssm.get_entry",
    )
    if type(parameter) is str and not options:
        _aws.remember_hit(get_entry, _fast, parameter, plan)
    return _aws.value_of(plan)


if TYPE_CHECKING:

    def get_entry(
        parameter: str | list[str],
        max_age_in_seconds: float | None = None,
        entry_name: str | bool | None = False,
        **options: Unpack[SSMOptions],
    ) -> Any:
        """The value of an SSM parameter, cached (see the module docstring)."""

else:
    get_entry = _aws.hit_path(
        "get_entry",
        "parameter, max_age_in_seconds=None, entry_name=False, **options",
        "parameter, max_age_in_seconds, entry_name, options",
        _fast,
        _get_entry,
        doc=_GET_ENTRY_DOC,
    )


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
    return _aws.handler_decorator(
        lambda: _spec(parameter, max_age_in_seconds, entry_name, options, "ssm.cache")
    )


def get_parameters_by_path(
    path: str,
    recursive: bool = False,
    max_age_in_seconds: float | None = None,
    **options: Unpack[SSMOptions],
) -> dict[str, str | list[str]]:
    """Every parameter under ``path`` (one level, or all with ``recursive``), by full name.

    Fetched page by page (GetParametersByPath, 10 per page) and cached as one entry. An
    empty path gives an empty dict.
    """
    memo_key = (path, recursive, max_age_in_seconds, _items(options))
    plan = _aws.resolve(
        _path_specs,
        memo_key,
        _path_spec,
        path,
        recursive,
        max_age_in_seconds,
        options,
    )
    return _aws.value_of(plan)  # type: ignore[no-any-return]


# -- validation: the spec of one call ---------------------------------------------------------


def _items(options: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(options.items())) if options else ()


def _common(
    max_age_in_seconds: Any, options: Mapping[str, Any], owner: str
) -> tuple[float | None, float | None, bool, bool | None, str]:
    ttl, stale_if_error = _aws.check_options(options, _ALLOWED, owner)
    age = _aws.max_age_of(max_age_in_seconds, ttl, owner)
    decrypt = options.get("decrypt", True)
    if not isinstance(decrypt, bool):
        raise TypeError(f"tiered-cache: {owner}: decrypt must be True or False, not {decrypt!r}")
    return age, stale_if_error, decrypt, options.get("persist"), _aws.region_for("ssm", options)


def _spec(
    parameter: Any, max_age_in_seconds: Any, entry_name: Any, options: Any, owner: str
) -> _aws.Spec:
    attr = _aws.entry_name_for(parameter, entry_name)
    if not isinstance(parameter, str) and not (
        type(parameter) is list and all(isinstance(name, str) for name in parameter)
    ):
        raise ArgumentTypeNotSupportedError(
            f"tiered-cache: {owner}: parameter must be a str or a list of str, not "
            f"{type(parameter).__name__}"
        )
    age, stale_if_error, decrypt, persist, region = _common(max_age_in_seconds, options, owner)
    mode = "decrypt" if decrypt else "raw"
    fetch: Callable[[], Any]
    if isinstance(parameter, str):
        if not parameter:
            raise ValueError(f"tiered-cache: {owner}: the parameter name is empty")
        key = f"aws:ssm:{region}:{mode}:{parameter}"
        fetch = functools.partial(_fetch_one, parameter, decrypt, persist, dict(options), region)
    else:
        names = _check_names(parameter, owner)
        key = f"aws:ssm-list:{region}:{mode}:{json.dumps(sorted(names))}"
        fetch = functools.partial(_fetch_many, names, decrypt, persist, dict(options), region)
    return _aws.Spec(
        key, attr, age, max_age_in_seconds, stale_if_error, persist is not False, fetch
    )


def _leaf(name: str) -> str:
    """``/a/b/x:3`` -> ``x``: the last segment, without a version or label selector."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def _check_names(names: list[str], owner: str) -> list[str]:
    unique = list(dict.fromkeys(names))
    if not unique:
        raise ValueError(f"tiered-cache: {owner}: the list of parameter names is empty")
    by_leaf: dict[str, list[str]] = {}
    for name in unique:
        if not name:
            raise ValueError(f"tiered-cache: {owner}: a parameter name in the list is empty")
        by_leaf.setdefault(_leaf(name), []).append(name)
    clashes = {leaf: found for leaf, found in by_leaf.items() if len(found) > 1}
    if clashes:
        listed = "; ".join(f"{', '.join(map(repr, v))} -> {k!r}" for k, v in clashes.items())
        raise ValueError(
            f"tiered-cache: {owner}: these parameters share a leaf name, so a dict keyed by "
            f"leaf name would keep only one of each: {listed}. Ask for them separately, or "
            "use ssm.get_parameters_by_path(path), which keys by full name"
        )
    return unique


def _path_spec(path: Any, recursive: Any, max_age_in_seconds: Any, options: Any) -> _aws.Spec:
    owner = "ssm.get_parameters_by_path"
    if not isinstance(path, str):
        raise ArgumentTypeNotSupportedError(
            f"tiered-cache: {owner}: path must be a str, not {type(path).__name__}"
        )
    if not path.startswith("/"):
        raise ValueError(f"tiered-cache: {owner}: path must start with '/', not {path!r}")
    if not isinstance(recursive, bool):
        raise TypeError(f"tiered-cache: {owner}: recursive must be True or False")
    age, stale_if_error, decrypt, persist, region = _common(max_age_in_seconds, options, owner)
    depth = "recursive" if recursive else "one-level"
    key = f"aws:ssm-path:{region}:{'decrypt' if decrypt else 'raw'}:{depth}:{path}"
    fetch = functools.partial(_fetch_path, path, recursive, decrypt, persist, dict(options), region)
    return _aws.Spec(
        key, path, age, max_age_in_seconds, stale_if_error, persist is not False, fetch
    )


# -- fetching (the miss path) -------------------------------------------------------------------


def _value(parameter: Mapping[str, Any]) -> str | list[str]:
    value: str = parameter["Value"]
    return value.split(",") if parameter.get("Type") == "StringList" else value


def _secret(parameter: Mapping[str, Any], decrypt: bool) -> bool:
    return decrypt and parameter.get("Type") == "SecureString"


def _place(
    value: V, secret: bool, persist: bool | None, options: Mapping[str, Any]
) -> V | Placed:
    """Where a value goes once it is known to be secret: memory, plus this machine's disk only
    with ``persist=True`` and the shared tier only with ``shared=True`` (each opt-in alone)."""
    if not secret:
        return value
    where = (LOCAL if persist else MEMORY) | (SHARED if options.get("shared") is True else 0)
    return Placed(value, where)


def _fetch_one(
    name: str, decrypt: bool, persist: bool | None, options: Any, region: str
) -> str | list[str] | Placed:
    client = _aws.client_for("ssm", options)
    response = _aws.call(
        client.get_parameter,
        f"SSM parameter {name!r} in {region or 'the default region'}",
        Name=name,
        WithDecryption=decrypt,
    )
    parameter = response["Parameter"]
    value = _value(parameter)
    return _place(value, _secret(parameter, decrypt), persist, options)


def _fetch_many(
    names: list[str], decrypt: bool, persist: bool | None, options: Any, region: str
) -> dict[str, str | list[str]] | Placed:
    client = _aws.client_for("ssm", options)
    found: dict[str, str | list[str]] = {}
    missing: list[str] = []
    secret = False
    for start in range(0, len(names), BATCH):
        batch = names[start : start + BATCH]
        response = _aws.call(
            client.get_parameters,
            f"SSM parameters {batch!r} in {region or 'the default region'}",
            Names=batch,
            WithDecryption=decrypt,
        )
        for parameter in response.get("Parameters", ()):
            found[_leaf(parameter["Name"])] = _value(parameter)
            secret = secret or _secret(parameter, decrypt)
        missing.extend(response.get("InvalidParameters", ()))
    if missing:
        raise NotFoundError(
            f"tiered-cache: SSM parameters not found in {region or 'the default region'}: "
            f"{', '.join(missing)}; check the names and the region"
        )
    result = {_leaf(name): found[_leaf(name)] for name in names if _leaf(name) in found}
    return _place(result, secret, persist, options)


def _fetch_path(
    path: str, recursive: bool, decrypt: bool, persist: bool | None, options: Any, region: str
) -> dict[str, str | list[str]] | Placed:
    client = _aws.client_for("ssm", options)
    what = f"SSM parameters under {path!r} in {region or 'the default region'}"
    request: dict[str, Any] = {
        "Path": path,
        "Recursive": recursive,
        "WithDecryption": decrypt,
        "MaxResults": BATCH,
    }
    result: dict[str, str | list[str]] = {}
    secret = False
    while True:
        response = _aws.call(client.get_parameters_by_path, what, **request)
        for parameter in response.get("Parameters", ()):
            result[parameter["Name"]] = _value(parameter)
            secret = secret or _secret(parameter, decrypt)
        token = response.get("NextToken")
        if not token:
            break
        request["NextToken"] = token
    return _place(result, secret, persist, options)
