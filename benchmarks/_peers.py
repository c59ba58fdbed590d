"""One adapter per library: the calls a Lambda user would write with it, behind one shape.

Each ``build_*`` imports its library inside the function (peers never load each other) and
returns a :class:`Peer` whose attributes are zero-argument callables (``None`` where the
library has no such feature). With a simulated ``clock``, libraries that accept a timer get it;
the two that read the wall clock themselves are patched (see ``TIME_HANDLING``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from _harness import REGION, fake_datetime, tiered_aws_status

TIME_HANDLING = {
    "nocache": "no clock: fetches on every call",
    "lambda-cache": (
        "no injectable clock: the harness replaces lambda_cache.caching_logic.time with an "
        "object whose time() reads the simulated clock (ages are still whole seconds, as in "
        "the library), and lambda_cache.s3.datetime with a datetime whose now() reads it"
    ),
    "powertools": (
        "no injectable clock: the harness replaces "
        "aws_lambda_powertools.utilities.parameters.base.datetime with a datetime subclass "
        "whose now() reads the simulated clock"
    ),
    "cachetools": "TTLCache(timer=clock): injected",
    "tiered-core": "TieredCache(clock=clock): injected",
    "tiered-core-nojitter": "TieredCache(clock=clock, jitter=0): injected",
    "tiered-aws": (
        "the helpers use tiered_cache.default_cache(); the harness installs a "
        "TieredCache(clock=clock) as that default (tiered_cache.set_default_cache)"
    ),
}

PARAM_VALUE_LEN = 30


class Context:
    """A stand-in for the Lambda context object."""

    function_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class Peer:
    def __init__(self, lib: str) -> None:
        self.lib = lib
        self.ssm: Callable[[], Any] | None = None
        self.secret: Callable[[], Any] | None = None
        self.s3: Callable[[], Any] | None = None  # small object: a path or bytes
        self.big: Callable[[], Any] | None = None  # large object: a path
        self.static: Callable[[], Any] | None = None  # a decorated zero-argument function
        self.handler: Callable[[Any, Any], Any] | None = None  # @ssm.cache-style handler
        self.ns: dict[str, Any] = {}  # names for timeit statements
        self.stmts: dict[str, str] = {}  # path label -> timeit statement
        self.note = ""


def _bare_handler(event: Any, context: Any) -> Any:
    return context.param


def _timed_like_lambda_cache(
    p: Peer, ssm: Any, secrets_manager: Any, param: str, secret: str, age: float
) -> None:
    """The handler and timed statements of a lambda-cache-style API (lambda-cache itself and
    tiered-cache's helpers): the same code with one import changed, timed alike."""
    p.handler = ssm.cache(parameter=param, max_age_in_seconds=age, entry_name="param")(
        _bare_handler
    )
    p.ns = {"ssm": ssm, "secrets_manager": secrets_manager, "P": param, "S": secret, "A": age}
    p.stmts = {
        "ssm.get_entry": "ssm.get_entry(parameter=P, max_age_in_seconds=A)",
        "secrets_manager.get_entry": "secrets_manager.get_entry(name=S, max_age_in_seconds=A)",
    }


class _Clients:
    """boto3 clients made once, lazily (the good practice every peer is compared with)."""

    def __init__(self) -> None:
        self._c: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        client = self._c.get(service)
        if client is None:
            import boto3

            client = self._c[service] = boto3.client(service, region_name=REGION)
        return client


def _fetchers(names: dict[str, str], directory: str) -> dict[str, Callable[[], Any]]:
    clients = _Clients()

    def ssm() -> str:
        return clients("ssm").get_parameter(Name=names["param"], WithDecryption=True)["Parameter"][
            "Value"
        ]

    def secret() -> str:
        return clients("secretsmanager").get_secret_value(SecretId=names["secret"])["SecretString"]

    def s3_bytes() -> bytes:
        return clients("s3").get_object(Bucket=names["bucket"], Key=names["key"])["Body"].read()

    def to_file(key: str) -> str:
        path = os.path.join(directory, names[key].replace("/", "_"))
        body = clients("s3").get_object(Bucket=names["bucket"], Key=names[key])["Body"]
        with open(path, "wb") as fh:
            for chunk in iter(lambda: body.read(1 << 20), b""):
                fh.write(chunk)
        return path

    return {
        "ssm": ssm,
        "secret": secret,
        "s3_bytes": s3_bytes,
        "s3_file": lambda: to_file("key"),
        "big_file": lambda: to_file("big_key"),
    }


def build(
    lib: str,
    names: dict[str, str],
    ttl: float,
    directory: str,
    clock: Callable[[], float] | None = None,
) -> Peer:
    os.makedirs(directory, exist_ok=True)
    return BUILDERS[lib](names, ttl, directory, clock)


def build_nocache(names: dict[str, str], ttl: float, directory: str, clock: Any) -> Peer:
    p = Peer("nocache")
    f = _fetchers(names, directory)
    p.ssm, p.secret, p.s3, p.big = f["ssm"], f["secret"], f["s3_file"], f["big_file"]
    return p


def build_lambda_cache(names: dict[str, str], ttl: float, directory: str, clock: Any) -> Peer:
    import lambda_cache.caching_logic as logic
    import lambda_cache.s3 as lc_s3
    from lambda_cache import s3, secrets_manager, ssm

    if clock is not None:

        class _Time:
            time = staticmethod(clock)

        logic.time = _Time  # type: ignore[assignment]
        lc_s3.datetime = fake_datetime(clock)  # type: ignore[misc]
    param, secret, age = names["param"], names["secret"], int(ttl)
    p = Peer("lambda-cache")
    p.ssm = lambda: ssm.get_entry(parameter=param, max_age_in_seconds=age)
    p.secret = lambda: secrets_manager.get_entry(name=secret, max_age_in_seconds=age)
    p.s3 = lambda: s3.get_entry(
        s3Uri=names["uri"], max_age_in_seconds=age, entry_name=names["s3_entry"]
    )
    p.big = lambda: s3.get_entry(
        s3Uri=names["big_uri"], max_age_in_seconds=age, entry_name=names["big_entry"]
    )
    _timed_like_lambda_cache(p, ssm, secrets_manager, param, secret, age)
    p.note = "S3 files at /tmp/<entry_name> (not configurable); a new boto3 client per miss"
    return p


def build_powertools(names: dict[str, str], ttl: float, directory: str, clock: Any) -> Peer:
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import base

    if clock is not None:
        base.datetime = fake_datetime(clock)  # type: ignore[misc]
    param, secret, age = names["param"], names["secret"], int(ttl)
    p = Peer("powertools")
    p.ssm = lambda: parameters.get_parameter(param, max_age=age)
    p.secret = lambda: parameters.get_secret(secret, max_age=age)
    items = parameters.DynamoDBProvider(table_name=names["table"])  # key "id", value "value"
    p.ns = {"parameters": parameters, "P": param, "S": secret, "A": age}
    p.ns.update({"items": items, "I": names["item"]})
    p.stmts = {
        "get_parameter": "parameters.get_parameter(P, max_age=A)",
        "get_secret": "parameters.get_secret(S, max_age=A)",
        "DynamoDBProvider.get": "items.get(I, max_age=A)",
    }
    p.note = "no S3 provider and no generic function decorator in Powertools parameters"
    return p


def build_cachetools(names: dict[str, str], ttl: float, directory: str, clock: Any) -> Peer:
    import time

    from cachetools import TTLCache, cached

    timer = clock or time.time
    f = _fetchers(names, directory)
    p = Peer("cachetools")
    p.ssm = cached(TTLCache(16, ttl, timer=timer))(f["ssm"])
    p.secret = cached(TTLCache(16, ttl, timer=timer))(f["secret"])
    p.s3 = cached(TTLCache(16, ttl, timer=timer))(f["s3_bytes"])

    @cached(TTLCache(16, ttl, timer=timer))
    def static() -> str:
        return "value"

    p.static = static
    p.ns = {"ssm_fn": p.ssm, "secret_fn": p.secret, "static": static}
    p.stmts = {
        "@cached SSM fetch": "ssm_fn()",
        "@cached secret fetch": "secret_fn()",
        "@cached static function": "static()",
    }
    p.note = "memory only: nothing survives a restart or is shared between processes"
    return p


def build_tiered_core(
    names: dict[str, str], ttl: float, directory: str, clock: Any, jitter: float = 0.1
) -> Peer:
    import time

    from tiered_cache import TieredCache

    cache = TieredCache(
        directory=os.path.join(directory, "tiered"), clock=clock or time.time, jitter=jitter
    )
    f = _fetchers(names, directory)
    p = Peer("tiered-core")
    p.ssm = cache.cache(key="bench:ssm:" + names["param"], ttl=ttl)(f["ssm"])
    p.secret = cache.cache(key="bench:secret:" + names["secret"], ttl=ttl, persist=False)(
        f["secret"]
    )
    p.s3 = cache.cache(key="bench:s3:" + names["uri"], ttl=ttl)(f["s3_bytes"])

    @cache.cache(key="bench:static", ttl=ttl)
    def static() -> str:
        return "value"

    @cache.cache(key="bench:param:{name}", ttl=ttl)
    def by_name(name: str) -> str:
        return "value:" + name

    p.static = static
    cache.set("bench:get", "value", ttl=ttl)
    p.ns = {
        "cache": cache,
        "ssm_fn": p.ssm,
        "secret_fn": p.secret,
        "static": static,
        "by_name": by_name,
        "K": "bench:get",
        "N": "db_url",
        "loader": lambda: "value",
    }
    p.stmts = {
        "TieredCache.get": "cache.get(K)",
        "TieredCache.get_or_load": "cache.get_or_load(K, loader)",
        "@cache SSM fetch": "ssm_fn()",
        "@cache secret fetch (persist=False)": "secret_fn()",
        "@cache static key": "static()",
        "@cache key='bench:param:{name}'": "by_name(N)",
    }
    p.note = "generic engine around a boto3 fetch; secret kept memory-only like the helpers"
    return p


def build_tiered_aws(names: dict[str, str], ttl: float, directory: str, clock: Any) -> Peer:
    p = Peer("tiered-aws")
    missing = tiered_aws_status()
    if missing:
        p.note = missing
        return p
    from tiered_cache import s3, secrets_manager, ssm

    if clock is not None or "TIERED_CACHE_DIR" not in os.environ:
        import tiered_cache as tiered
        from tiered_cache import TieredCache

        tiered.set_default_cache(
            TieredCache(
                directory=os.path.join(directory, "tiered"),
                **({"clock": clock} if clock is not None else {}),
            )
        )
    param, secret, age = names["param"], names["secret"], ttl
    p.ssm = lambda: ssm.get_entry(parameter=param, max_age_in_seconds=age)
    p.secret = lambda: secrets_manager.get_entry(name=secret, max_age_in_seconds=age)
    p.s3 = lambda: s3.get_entry(s3Uri=names["uri"], max_age_in_seconds=age)
    p.big = lambda: s3.get_entry(s3Uri=names["big_uri"], max_age_in_seconds=age)
    _timed_like_lambda_cache(p, ssm, secrets_manager, param, secret, age)
    try:
        from tiered_cache import dynamodb
    except ImportError:  # a tree from before the DynamoDB source (A/B runs)
        pass
    else:
        # the same item as Powertools' DynamoDBProvider.get(I): key {"id": I}, its "value"
        p.ns.update({"dynamodb": dynamodb, "T": names["table"], "K": {"id": names["item"]}})
        p.stmts["dynamodb.get_entry"] = (
            "dynamodb.get_entry(table=T, key=K, attribute='value', max_age_in_seconds=A)"
        )
    p.note = "secrets memory-only by default; S3 revalidated with If-None-Match"
    return p


BUILDERS: dict[str, Callable[..., Peer]] = {
    "nocache": build_nocache,
    "lambda-cache": build_lambda_cache,
    "powertools": build_powertools,
    "cachetools": build_cachetools,
    "tiered-core": build_tiered_core,
    "tiered-core-nojitter": lambda *a: build_tiered_core(*a, jitter=0.0),
    "tiered-aws": build_tiered_aws,
}
