"""The DynamoDB shared tier: envelopes in one DynamoDB table, for every environment of a fleet.

A dumb store, like the other tiers (``_tier``): it keeps envelopes (``_entry.encode``) and
never decides what is fresh. Reached from any Lambda function without a VPC. The table::

    pk        S  partition key: "<prefix>v1:<sha256(key)>" (an entry), "<prefix>lock:<sha256>"
                 (a fleet lock). The plain key never appears.
    ttl       N  epoch seconds, at or after the entry's stale_until (the lifetime the core gives,
                 rounded up to the second): turn on DynamoDB's TTL on it to delete old items.
                 Until DynamoDB does (it may take a day or two), a read treats an item whose ttl
                 has passed as a miss.
    envelope  B  the envelope, its value in the safe serializer's form. Nothing is pickled.
    lease, owner  (lock items only) N lease end in epoch seconds, S the holder's random token.

- Safe serializer only: an envelope whose payload was pickled, or that names a file, is refused
  on read (a miss); nothing read from the table is ever unpickled.
- Items are at most 400 KB: a larger value is not shared (a debug log, ``shared_too_large``).
- Reads are eventually consistent (half the price), except the re-check made while holding the
  key's fleet lock, which is strongly consistent: the value the previous holder wrote is seen.
- A sick table costs little: one deadline (``timeout``, 100 ms) over each whole call, every
  attempt, read and write of it together (``_deadline``), a connect timeout of 250 ms, at most 2
  attempts (botocore's standard mode, never after throttling, never past the deadline), and the
  Redis tier's circuit breaker (``_breaker``). Throttling, a missing table, AccessDenied or an
  unreachable endpoint never raise to the caller: a failed read is a miss, a failed write is
  skipped, a failed lock is not held. A missing table, a wrong key schema, denied access or
  missing credentials log ONE warning that says what to fix, and switch the tier off for
  ``cool_down`` seconds at a time.
- Fleet-wide single-flight: :meth:`DynamoDBTier.lock` writes the lock item with a conditional
  put (``attribute_not_exists(pk) OR lease < :now``), polls it by reading within the wait it is
  given (a read unit where a put is a write unit), and releases with a conditional delete that
  removes the item only while it holds this caller's token. Leases use the wall clock: the
  fleet's clocks are assumed to agree to well within a lease (10 s).

Thread-safe and process-safe: one client per tier and process, made lazily (boto3 is imported
on the first call, never by ``import tiered_cache``), dropped in a forked child. It uses boto3's
normal configuration: credentials, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` and the rest.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

from . import _remote
from ._breaker import Breaker
from ._deadline import bound_botocore, bounded, stop_retrying_late
from ._entry import Entry, Guard, encode
from ._fork import after_fork_in_child
from ._log import log

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["DEFAULT_PREFIX", "MAX_ITEM_BYTES", "DynamoDBTier", "parse_url"]

DEFAULT_PREFIX: Final = "tiered-cache:"
DEFAULT_TIMEOUT: Final = 0.1  # seconds: one whole call (all attempts, reads and writes)
DEFAULT_CONNECT_TIMEOUT: Final = 0.25  # seconds: opening a connection (TCP and TLS)
#: DynamoDB's item size limit, "400 KB" of attribute names and values together, taken as
#: 400,000 bytes (the service accepts 409,600; moto 405,000): a value near it is not shared.
MAX_ITEM_BYTES: Final = 400_000
_NUMBER_BYTES: Final = 21  # the most a DynamoDB number takes in an item
_SCHEMA: Final = (
    "create it with a string partition key named 'pk' and no sort key, and turn on TTL on the "
    "number attribute 'ttl' (the README has a CloudFormation snippet)"
)
_ACCESS: Final = (
    "grant the function's role dynamodb:GetItem, dynamodb:PutItem and dynamodb:DeleteItem on "
    "the table (and dynamodb:Scan for clear())"
)
_URL_OPTIONS: Final = ("prefix", "region", "timeout")


def parse_url(url: str) -> dict[str, Any]:
    """``DynamoDBTier`` keyword arguments for ``dynamodb://TABLE`` (``?region=``, ``?prefix=``
    and ``?timeout=`` seconds accepted). Raises ``ValueError`` for another scheme, no table, an
    unknown option or a timeout that is not a number."""
    parts = urlsplit(url)
    table = (parts.netloc + parts.path).strip("/")
    if parts.scheme != "dynamodb" or not table:
        raise ValueError(
            f"tiered-cache: the DynamoDB tier needs a dynamodb://TABLE URL, not {url!r}"
        )
    kwargs: dict[str, Any] = {"table": table}
    for name, values in parse_qs(parts.query).items():
        if name not in _URL_OPTIONS:
            raise ValueError(
                f"tiered-cache: unknown option {name!r} in {url!r}; known: "
                + ", ".join(_URL_OPTIONS)
            )
        if name == "timeout":
            try:
                kwargs["timeout"] = float(values[-1])
            except ValueError as exc:
                raise ValueError(f"tiered-cache: the timeout in {url!r} is not a number") from exc
        else:
            kwargs["region_name" if name == "region" else name] = values[-1]
    return kwargs


def _code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def _number(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}"}


class _Held(threading.local):
    """The lock items this thread holds (its reads of those keys are strongly consistent)."""

    def __init__(self) -> None:
        self.names: set[str] = set()


class DynamoDBTier(_remote.RemoteTier):
    """Envelopes in a DynamoDB table shared by a fleet; see the module docstring.

    ``table`` is the table's name (or ARN). Give a prebuilt boto3 ``client`` to use your own
    (its own timeouts and retries then apply, and its calls are not bounded as a whole);
    otherwise one is made on first use from boto3's default configuration, with ``region_name``
    and ``endpoint_url`` when given. ``timeout`` bounds each whole call (and each socket read);
    ``connect_timeout`` opening a connection. ``consistent_read`` makes every read strongly
    consistent. ``failures`` and ``cool_down`` set the breaker, ``clock`` (wall clock,
    injectable) its cool-down, the ``ttl`` attribute and the lock leases. ``lock_wait`` bounds a
    wait for another caller's fleet lock; ``lock_lease`` is how long a lock lives if its holder
    dies. Values whose item would exceed ``max_bytes`` (at most 400 KB) are not shared.
    """

    def __init__(
        self,
        table: str,
        client: Any = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        consistent_read: bool = False,
        failures: int = 3,
        cool_down: float = 30.0,
        lock_wait: float = 2.0,
        lock_lease: float = 10.0,
        max_bytes: int = MAX_ITEM_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if type(table) is not str or not table.strip():
            raise ValueError(f"tiered-cache: DynamoDBTier needs a table name, not {table!r}")
        if timeout <= 0 or connect_timeout <= 0 or lock_wait < 0 or lock_lease <= 0:
            raise ValueError(
                "tiered-cache: DynamoDBTier needs timeout > 0, connect_timeout > 0, "
                "lock_wait >= 0 and lock_lease > 0"
            )
        if not 1 <= max_bytes <= MAX_ITEM_BYTES:
            raise ValueError(f"tiered-cache: max_bytes must be in 1..{MAX_ITEM_BYTES}")
        self.table = table.strip()
        self.prefix = prefix
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self.consistent_read = bool(consistent_read)
        self.lock_wait = float(lock_wait)
        self.lock_lease = float(lock_lease)
        self.max_bytes = max_bytes
        self.clock = clock
        self.breaker = Breaker(
            f"the shared tier (DynamoDB table {self.table!r})", failures, cool_down, clock
        )
        self._given = client is not None
        #: The deadline of one whole call (None for a prebuilt client: its own timeouts).
        self.deadline: float | None = None if self._given else self.timeout
        self._dynamodb: Any = client
        self._make_lock = threading.Lock()
        self._held = _Held()
        self.corrupt = 0  # items refused: not an envelope, pickled, a file, damaged
        self.too_large = 0  # values not shared: their item would exceed max_bytes
        self.lock_timeouts = 0
        if not self._given:
            after_fork_in_child(self._forget_client)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> DynamoDBTier:
        """The tier for ``dynamodb://TABLE`` (see :func:`parse_url`); ``kwargs`` add to it."""
        return cls(**{**parse_url(url), **kwargs})

    def __repr__(self) -> str:
        return f"DynamoDBTier({self.table!r}, prefix={self.prefix!r}, state={self.state!r})"

    def _client(self) -> DynamoDBClient:
        client = self._dynamodb
        if client is not None:
            return client  # type: ignore[no-any-return]
        with self._make_lock:
            if self._dynamodb is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.timeout,
                    # two attempts in all ("max_attempts" would count retries only)
                    retries={"total_max_attempts": 2, "mode": "standard"},
                    user_agent_extra="tiered-cache",
                )
                made = boto3.client(
                    "dynamodb",
                    region_name=self.region_name,
                    endpoint_url=self.endpoint_url,
                    config=config,
                )
                bound_botocore(made)  # each call ends by its deadline, not each read
                stop_retrying_late(made)
                self._dynamodb = made
            return self._dynamodb  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the client this tier made (its idle connections; the next call makes another);
        a client you gave is yours to close."""
        if self._given:
            return
        with self._make_lock:
            client, self._dynamodb = self._dynamodb, None
        close = getattr(client, "close", None)  # botocore 1.29 and later
        if close is not None:
            with contextlib.suppress(Exception):
                close()

    def _forget_client(self) -> None:
        """In a forked child: make a client of its own (sockets must not be shared)."""
        self._make_lock = threading.Lock()
        self._dynamodb = None

    def _run(self, command: Callable[[DynamoDBClient], Any]) -> Any:
        """``command(client)``'s result within the deadline, or ``_remote.FAILED`` (breaker open, or
        any error, a deadline passed included)."""
        breaker = self.breaker
        if not breaker.allow():
            return _remote.FAILED
        try:
            client = self._client()
            with bounded(self.deadline):
                result = command(client)
        except Exception as exc:
            breaker.failure(exc, self._fix(exc))
            return _remote.FAILED
        breaker.success()
        return result

    def _fix(self, exc: Exception) -> str | None:
        """What the user must do about ``exc``, when it will not cure itself (else None)."""
        code = _code(exc)
        if code == "ResourceNotFoundException":
            return f"the table {self.table!r} does not exist in this region: {_SCHEMA}"
        if code in ("AccessDeniedException", "AccessDenied"):
            return _ACCESS
        if code in ("UnrecognizedClientException", "InvalidSignatureException"):
            return "the AWS credentials were refused: check the function's role or keys"
        if code == "ValidationException" and "key" in str(exc).lower():
            return f"the table {self.table!r} has another key schema: {_SCHEMA}"
        kind = type(exc).__name__
        if kind == "NoRegionError":
            return "no AWS region is set: set AWS_REGION, or pass region_name="
        if kind in ("NoCredentialsError", "PartialCredentialsError"):
            return "no AWS credentials were found for the function"
        return None

    # -- envelopes ----------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The stored entry for ``key``, or None (missing, expired, refused, down)."""
        pk = self.data_key(key)
        consistent = self.consistent_read or self.lock_key(key) in self._held.names
        item = self._run(
            lambda c: c.get_item(
                TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=consistent
            ).get("Item")
        )
        if item is _remote.FAILED or item is None:
            return None
        try:
            ttl = float(item["ttl"]["N"])
            data = item["envelope"]["B"]
            if type(data) is not bytes:
                raise ValueError("not bytes")
        except (KeyError, TypeError, ValueError):
            self.corrupt += 1
            return None
        if ttl <= self.clock():  # expired: DynamoDB's TTL has not deleted it yet
            return None
        return self._envelope(key, data)

    def put(
        self,
        key: str,
        entry: Entry,
        payload: bytes | None,
        lifetime: float,
        guard: Guard | None = None,
    ) -> Entry | None:
        """Store an envelope (safe ``payload``) until ``lifetime`` seconds from now, rounded up
        to the second (the ``ttl`` attribute); not written when the lifetime is under 1 ms, the
        item too large, or the table unavailable.

        Always None: like the Redis tier, this one writes unconditionally (``guard`` is not
        applied; the local tiers, which are guarded, keep what they have).
        """
        if lifetime < 0.001 or payload is None:
            return None
        data = encode(key, entry, payload, 0)
        pk = self.data_key(key)
        size = len("pk") + len(pk) + len("ttl") + _NUMBER_BYTES + len("envelope") + len(data)
        if size > self.max_bytes:
            self.too_large += 1
            log.debug(
                "tiered-cache: %r not shared: its DynamoDB item would be %d bytes, over the "
                "%d-byte limit",
                key,
                size,
                self.max_bytes,
            )
            return None
        expiry = math.ceil(self.clock() + lifetime)
        self._run(
            lambda c: c.put_item(
                TableName=self.table,
                Item={"pk": {"S": pk}, "ttl": {"N": str(expiry)}, "envelope": {"B": data}},
            )
        )
        return None

    def delete(self, key: str, tombstone: Entry | None = None) -> bool:
        """Drop ``key``'s item (no tombstone is kept here); True if it held a live entry."""
        pk = self.data_key(key)
        old = self._run(
            lambda c: c.delete_item(
                TableName=self.table, Key={"pk": {"S": pk}}, ReturnValues="ALL_OLD"
            ).get("Attributes")
        )
        if old is _remote.FAILED or not old:
            return False
        try:
            return float(old["ttl"]["N"]) > self.clock()
        except (KeyError, TypeError, ValueError):
            return True

    def clear(self) -> None:
        """Drop every entry under this tier's prefix (for every function sharing it).

        A Scan of the whole table (``dynamodb:Scan``; it reads every item, so it costs what the
        table holds) and one DeleteItem per entry, each a call with its own deadline; the first
        that fails ends the clear (what it had not reached stays, until its ttl)."""
        start = self.prefix + "v1:"
        length = len(start) + 64
        scan: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "#pk",
            "FilterExpression": "begins_with(#pk, :start)",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ExpressionAttributeValues": {":start": {"S": start}},
        }
        pk = ""

        def delete(c: DynamoDBClient) -> Any:
            return c.delete_item(TableName=self.table, Key={"pk": {"S": pk}})

        while True:
            page = self._run(lambda c: c.scan(**scan))
            if page is _remote.FAILED:
                return
            for item in page.get("Items", []):
                pk = item.get("pk", {}).get("S", "")
                if len(pk) != length:  # another prefix that starts with this one
                    continue
                if self._run(delete) is _remote.FAILED:
                    return
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            scan["ExclusiveStartKey"] = last

    # -- fleet-wide single-flight ---------------------------------------------------------------

    def _take(self, client: DynamoDBClient, name: str, token: str) -> bool:
        now = self.clock()
        until = now + self.lock_lease
        try:
            client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": name},
                    "owner": {"S": token},
                    "lease": _number(until),
                    "ttl": {"N": str(math.ceil(until) + 3600)},  # TTL removes dead holders' locks
                },
                ConditionExpression="attribute_not_exists(#pk) OR #lease < :now",
                ExpressionAttributeNames={"#pk": "pk", "#lease": "lease"},
                ExpressionAttributeValues={":now": _number(now)},
            )
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False  # held by another caller: an answer, not a fault
            raise
        return True

    def _free(self, client: DynamoDBClient, name: str) -> bool:
        """Is the lock ``name`` gone, or its lease run out? (One strongly consistent read.)"""
        item = client.get_item(
            TableName=self.table,
            Key={"pk": {"S": name}},
            ConsistentRead=True,
            ProjectionExpression="#lease",
            ExpressionAttributeNames={"#lease": "lease"},
        ).get("Item")
        if item is None:
            return True
        lease = item.get("lease", {}).get("N")
        return lease is None or float(lease) < self.clock()

    def _release(self, client: DynamoDBClient, name: str, token: str) -> None:
        try:
            client.delete_item(
                TableName=self.table,
                Key={"pk": {"S": name}},
                ConditionExpression="#owner = :token",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except Exception as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise  # else: our lease ran out and another caller holds it now: theirs

    @contextlib.contextmanager
    def lock(self, key: str, wait: float) -> Iterator[bool]:
        """Hold ``key``'s fleet lock for the block; yields False after ``wait`` s (at most
        ``lock_wait``) or an error.

        A conditional put takes it. While another caller holds it, the wait polls by reading
        the lock (strongly consistent, 10 ms doubling up to 100 ms apart: a read unit, where a
        failed put is a write unit, five times the price), and puts again only once it is gone
        or its lease has run out. The lock lives at most ``lock_lease`` s; the release removes
        it only if this caller still holds it. While held, this thread's reads of ``key`` are
        strongly consistent.
        """
        name = self.lock_key(key)
        token = secrets.token_hex(16)
        deadline = time.monotonic() + max(0.0, min(wait, self.lock_wait))
        delay = 0.01
        acquired = False
        free: Any = True  # worth a put: not seen held since the last one
        while True:
            if free:
                got = self._run(lambda c: self._take(c, name, token))
                if got is _remote.FAILED:
                    break
                if got:
                    acquired = True
                    break
            left = deadline - time.monotonic()
            if left <= 0:
                self.lock_timeouts += 1
                break
            time.sleep(min(delay, left))
            delay = min(delay * 2.0, 0.1)
            free = self._run(lambda c: self._free(c, name))
            if free is _remote.FAILED:
                break
        held = self._held.names
        if acquired:
            held.add(name)
        try:
            yield acquired
        finally:
            if acquired:
                held.discard(name)
                self._run(lambda c: self._release(c, name, token))

    def stats(self) -> dict[str, int]:
        """Counters since this tier was made (the same keys as the Redis tier's)."""
        breaker = self.breaker
        return {
            "shared_attempts": breaker.attempts,
            "shared_errors": breaker.errors,
            "shared_skipped": breaker.skipped,
            "shared_breaker_opens": breaker.opens,
            "shared_corrupt": self.corrupt,
            "shared_too_large": self.too_large,
            "shared_lock_timeouts": self.lock_timeouts,
        }
