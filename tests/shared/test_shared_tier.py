"""The shared tier on its own, against a real redis-server: names, expiry, safety, breaker, lock."""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tiered_cache import _serial
from tiered_cache._entry import FLAG_PICKLE, Entry, encode
from tiered_cache._shared import SharedTier, connection_kwargs

from .conftest import RedisServer

T0 = 1_000_000.0


def _entry(value: Any, ttl: float = 60.0, stale: float = 0.0) -> tuple[Entry, bytes]:
    payload = _serial.dumps(value, _serial.SAFE)
    return Entry(value, T0, T0 + ttl, T0 + ttl + stale, size=len(payload)), payload


# -- URLs: parsed without a server (rediss needs no TLS server to be checked) ----------------


def test_rediss_url_turns_on_tls_and_takes_user_password_db_from_the_url() -> None:
    kwargs = connection_kwargs("rediss://alice:p%40ss%2Fw@cache.example.com:6380/2")
    assert kwargs["ssl"] is True
    assert kwargs["username"] == "alice"
    assert kwargs["password"] == "p@ss/w"
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.example.com", 6380, 2)
    assert kwargs["socket_connect_timeout"] == 0.05
    assert kwargs["socket_timeout"] == 0.05


def test_redis_url_defaults_no_tls_no_auth() -> None:
    kwargs = connection_kwargs("redis://cache.internal")
    assert kwargs["ssl"] is False
    assert kwargs["password"] is None
    assert kwargs["username"] is None
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.internal", 6379, 0)


def test_redis_url_password_only_and_query_options() -> None:
    url = "rediss://:s3cret@h:1/?socket_timeout=0.2&ssl_cert_reqs=none&db=3"
    kwargs = connection_kwargs(url)
    assert kwargs["password"] == "s3cret"
    assert kwargs["username"] is None
    assert kwargs["socket_timeout"] == 0.2
    assert kwargs["socket_connect_timeout"] == 0.05
    assert kwargs["ssl_cert_reqs"] == "none"
    assert kwargs["db"] == 3
    # explicit arguments win over the URL
    assert connection_kwargs(url, connect_timeout=0.01, timeout=0.02)["socket_timeout"] == 0.02


@pytest.mark.parametrize(
    "url", ["http://h:6379", "unix:///tmp/r.sock", "redis://h/notanumber", "redis://h/?bogus=1"]
)
def test_bad_urls_are_refused_when_the_tier_is_made(url: str) -> None:
    with pytest.raises(ValueError, match="tiered-cache"):
        SharedTier(url)


def test_rediss_client_is_an_ssl_connection_with_the_url_password_and_no_retries() -> None:
    import redis

    tier = SharedTier("rediss://bob:pw%21@tls.example.com:6390/1", timeout=0.03)
    client = tier._client()  # makes the client; connects only on the first command
    pool = client.connection_pool
    assert issubclass(pool.connection_class, redis.connection.SSLConnection)
    kwargs = pool.connection_kwargs
    assert kwargs["password"] == "pw!"
    assert kwargs["username"] == "bob"
    assert kwargs["host"] == "tls.example.com"
    assert kwargs["port"] == 6390
    assert kwargs["db"] == 1
    assert kwargs["socket_timeout"] == 0.03
    assert kwargs["socket_connect_timeout"] == 0.05
    retry = kwargs.get("retry") or client.get_retry()
    assert retry._retries == 0


def test_plain_redis_client_is_not_ssl() -> None:
    import redis

    client = SharedTier("redis://127.0.0.1:1/0")._client()
    assert not issubclass(client.connection_pool.connection_class, redis.connection.SSLConnection)


# -- names ----------------------------------------------------------------------------------


def test_keys_are_hashed_under_the_prefix_and_never_stored_verbatim(
    make_tier: Callable[..., SharedTier], rclient: Any
) -> None:
    tier = make_tier(prefix="fn-a:")
    key = "ssm:/prod/db/password*[weird]"
    entry, payload = _entry("v")
    tier.put(key, entry, payload, 60.0)
    names = [n.decode() for n in rclient.keys("*")]
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert names == [f"fn-a:v1:{digest}"]
    assert all("ssm" not in n and "prod" not in n for n in names)
    other = make_tier(prefix="fn-b:")
    assert other.get(key) is None  # another prefix is another namespace


def test_round_trip_keeps_value_types_and_entry_times(make_tier: Callable[..., SharedTier]) -> None:
    tier = make_tier()
    value = {"a": [1, 2.5, None, True, b"\x00\xff", "é"], "n": -(2**70)}
    entry, payload = _entry(value, ttl=30.0, stale=5.0)
    entry.version = "etag-1"
    tier.put("k", entry, payload, 35.0)
    got = tier.get("k")
    assert got is not None
    assert got.value == value
    assert type(got.value["n"]) is int
    assert (got.stored_at, got.expires_at, got.stale_until, got.version) == (
        T0,
        T0 + 30.0,
        T0 + 35.0,
        "etag-1",
    )


def test_redis_expiry_is_the_lifetime_given_rounded_down(
    make_tier: Callable[..., SharedTier], rclient: Any
) -> None:
    tier = make_tier()
    entry, payload = _entry("v", ttl=10.0, stale=5.0)
    tier.put("k", entry, payload, 14.9999)
    pttl = rclient.pttl(tier.data_key("k"))
    assert 0 < pttl <= 14_999
    tier.put("gone", entry, payload, 0.0009)  # under 1 ms: not written at all
    assert rclient.exists(tier.data_key("gone")) == 0


def test_values_too_large_are_not_shared(
    make_tier: Callable[..., SharedTier], rclient: Any
) -> None:
    tier = make_tier(max_bytes=1000)
    entry, payload = _entry("x" * 2000)
    tier.put("big", entry, payload, 60.0)
    assert rclient.dbsize() == 0


def test_delete_and_clear_touch_only_this_prefix(
    make_tier: Callable[..., SharedTier], rclient: Any
) -> None:
    mine, theirs = make_tier(prefix="a[1]*:"), make_tier(prefix="a[1]x:")
    entry, payload = _entry("v")
    for key in ("k1", "k2", "k3"):
        mine.put(key, entry, payload, 60.0)
        theirs.put(key, entry, payload, 60.0)
    rclient.set("unrelated", b"keep")
    assert mine.delete("k1") is True
    assert mine.delete("k1") is False
    mine.clear()
    assert mine.get("k2") is None
    assert theirs.get("k2") is not None
    assert rclient.get("unrelated") == b"keep"


# -- safety: nothing is ever unpickled -------------------------------------------------------


class _Boom:
    """Unpickling this creates ``marker``: proof that a payload was executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.marker,))


def _plants(key: str, marker: str) -> list[bytes]:
    bomb = pickle.dumps(_Boom(marker))
    entry = Entry(None, T0, T0 + 60, T0 + 60, size=len(bomb))
    return [
        bomb,  # a bare pickle
        encode(key, entry, bomb, FLAG_PICKLE),  # a whole envelope flagged as pickled
        encode(key, entry, bomb, 0),  # an envelope claiming "safe" with a pickle inside
        encode(key, entry, _serial.dumps(["x.obj", 1], _serial.SAFE), 2),  # a file reference
    ]


def test_planted_pickles_are_misses_and_never_execute(
    make_tier: Callable[..., SharedTier], rclient: Any, tmp_path: Path
) -> None:
    tier = make_tier()
    marker = str(tmp_path / "executed")
    for i, planted in enumerate(_plants("k", marker)):
        rclient.set(tier.data_key("k"), planted)
        assert tier.get("k") is None
        assert tier.corrupt == i + 1
    assert not os.path.exists(marker)
    # control: the same bomb does execute when unpickled, so the check above can fail
    pickle.loads(_plants("k", marker)[0])
    assert os.path.exists(marker)


def test_an_envelope_of_another_key_is_a_miss(
    make_tier: Callable[..., SharedTier], rclient: Any
) -> None:
    tier = make_tier()
    entry, payload = _entry("for-b")
    rclient.set(tier.data_key("a"), encode("b", entry, payload, 0))
    assert tier.get("a") is None


# -- the breaker ------------------------------------------------------------------------------


def test_breaker_opens_after_n_failures_skips_then_retries_after_cool_down(
    private_redis: RedisServer, fake_clock: Any
) -> None:
    tier = SharedTier(private_redis.url, failures=3, cool_down=30.0, clock=fake_clock)
    entry, payload = _entry("v")
    tier.put("k", entry, payload, 60.0)
    assert tier.get("k") is not None
    assert tier.state == "closed"
    private_redis.stop()
    for _ in range(50):
        assert tier.get("k") is None  # never raises
        tier.put("k", entry, payload, 60.0)  # never raises either
        with tier.lock("k", 1.0) as held:
            assert held is False
    assert tier.attempts == 2 + 3  # the working put and get, three failures; then skipped
    assert tier.errors == 3
    assert tier.skipped == 150 - 3
    assert tier.state == "open"
    private_redis.start()  # back, but the cool-down has not passed: still skipped
    fake_clock.advance(29.0)
    assert tier.get("k") is None
    assert tier.attempts == 5
    fake_clock.advance(1.0)
    assert tier.state == "half-open"
    tier.put("k", entry, payload, 60.0)  # the trial succeeds: closed again
    assert tier.attempts == 6
    assert tier.state == "closed"
    found = tier.get("k")
    assert found is not None
    assert found.value == "v"


def test_a_failed_trial_reopens_the_breaker_at_once(
    private_redis: RedisServer, fake_clock: Any
) -> None:
    tier = SharedTier(private_redis.url, failures=2, cool_down=10.0, clock=fake_clock)
    private_redis.stop()
    tier.get("a")
    tier.get("a")
    assert tier.state == "open"
    fake_clock.advance(10.0)
    assert tier.get("a") is None  # one trial
    assert tier.state == "open"
    assert (tier.attempts, tier.breaker_opens) == (3, 2)
    fake_clock.advance(-100.0)  # the clock stepped back: try again rather than wait forever
    assert tier.state == "half-open"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung Redis)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    sock.close()


def test_a_hung_server_costs_one_read_timeout_per_try_then_is_skipped(
    silent_server: int, fake_clock: Any
) -> None:
    tier = SharedTier(
        f"redis://127.0.0.1:{silent_server}/0", timeout=0.02, failures=2, clock=fake_clock
    )
    started = time.monotonic()
    for _ in range(20):
        assert tier.get("k") is None
    elapsed = time.monotonic() - started
    assert (tier.errors, tier.skipped, tier.state) == (2, 18, "open")
    # two 20 ms read timeouts; without them a read would hang until pytest's timeout
    assert elapsed < 5.0


# -- the fleet lock ---------------------------------------------------------------------------


def test_lock_is_exclusive_leased_and_released(
    make_tier: Callable[..., SharedTier], rclient: Any
) -> None:
    a, b = make_tier(lock_lease=7.0), make_tier()
    with a.lock("k", 0.0) as held:
        assert held
        assert 0 < rclient.pttl(a.lock_key("k")) <= 7000
        with b.lock("k", 0.0) as other:
            assert not other
        assert b.lock_timeouts == 1
    assert rclient.exists(a.lock_key("k")) == 0
    with b.lock("k", 0.0) as held:
        assert held


def test_release_never_deletes_a_lock_another_caller_took_after_our_lease_ran_out(
    make_tier: Callable[..., SharedTier], rclient: Any
) -> None:
    tier = make_tier()
    with tier.lock("k", 0.0) as held:
        assert held
        rclient.set(tier.lock_key("k"), b"someone-else")  # our lease expired; they took it
    assert rclient.get(tier.lock_key("k")) == b"someone-else"


def test_lock_wait_is_bounded(make_tier: Callable[..., SharedTier], rclient: Any) -> None:
    tier = make_tier()
    rclient.set(tier.lock_key("k"), b"holder", px=60_000)
    started = time.monotonic()
    with tier.lock("k", 0.15) as held:
        assert not held
    assert time.monotonic() - started < 5.0
    assert tier.lock_timeouts == 1
    assert tier.attempts >= 2  # it polled, then gave up
    assert rclient.get(tier.lock_key("k")) == b"holder"


def test_a_waiter_gets_the_lock_once_the_holder_releases(
    make_tier: Callable[..., SharedTier],
) -> None:
    holder, waiter = make_tier(), make_tier()
    got: list[bool] = []

    def wait_for_it() -> None:
        with waiter.lock("k", 30.0) as held:
            got.append(held)

    with holder.lock("k", 0.0) as held:
        assert held
        thread = threading.Thread(target=wait_for_it)
        thread.start()
    thread.join()
    assert got == [True]
    assert waiter.lock_timeouts == 0


def test_close_disconnects_the_connections_the_tier_made(
    private_redis: RedisServer, fake_clock: Any
) -> None:
    inspector = private_redis.client()  # a server of this test's own: only we connect to it
    tier = SharedTier(private_redis.url, clock=fake_clock)

    def others() -> int:  # the connections that are not the inspector's
        return len(inspector.client_list()) - 1

    assert tier.get("k") is None
    assert others() == 1
    tier.close()
    assert others() == 0
    entry, payload = _entry("after")
    assert tier.put("k", entry, payload, 60.0) is None  # it connects again
    got = tier.get("k")
    assert got is not None
    assert got.value == "after"
    tier.close()
    assert others() == 0


def test_close_leaves_a_client_you_gave_alone(rclient: Any, unique_prefix: str) -> None:
    tier = SharedTier(client=rclient, prefix=unique_prefix)
    assert tier.get("k") is None
    tier.close()
    assert rclient.ping() is True
