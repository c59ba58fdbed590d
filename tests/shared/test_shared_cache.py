"""TieredCache with the shared tier, against a real redis-server: order, fills, secrets,
fleet-wide single-flight, a Redis that dies and comes back, configuration from the environment.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tiered_cache as tiered
from tiered_cache import _config
from tiered_cache._entry import FLAG_PICKLE, Entry, encode
from tiered_cache._shared import SharedTier

from .conftest import RedisServer

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent


class Counting:
    """A loader that counts its calls."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.value


def _fail() -> Any:
    raise RuntimeError("origin down")


@pytest.fixture
def fleet(
    make_cache: Callable[..., Any], make_tier: Callable[..., SharedTier], tmp_path: Path
) -> Callable[..., tuple[Any, SharedTier]]:
    """``fleet(name, **cache_options)`` -> (cache, tier): one environment with its own directory,
    all on the same Redis and the same fake clock."""

    def make(name: str, **options: Any) -> tuple[Any, SharedTier]:
        tier = options.pop("tier", None) or make_tier()
        cache = make_cache(directory=str(tmp_path / name), shared=tier, **options)
        return cache, tier

    return make


def _everything(rclient: Any) -> list[tuple[bytes, bytes]]:
    return [(k, rclient.dump(k) or b"") for k in rclient.scan_iter("*")]


# -- order and fills --------------------------------------------------------------------------


def test_a_shared_hit_fills_memory_and_disk_with_the_remaining_lifetime(
    fleet: Callable[..., tuple[Any, SharedTier]], fake_clock: Any
) -> None:
    a, _ = fleet("env-a")
    b, b_tier = fleet("env-b")
    t0 = fake_clock()
    assert a.get_or_load("k", Counting({"v": 1}), ttl=100) == {"v": 1}
    fake_clock.advance(40)
    b_loader = Counting("never")
    assert b.get_or_load("k", b_loader, ttl=100) == {"v": 1}
    assert b_loader.calls == 0
    assert b.stats()["shared_hits"] == 1
    for entry in (b._memory.get("k"), b._disk.get("k")):  # same times, not a new 100 s
        assert (entry.stored_at, entry.expires_at, entry.stale_until) == (t0, t0 + 100, t0 + 100)
    # memory, then disk, before Redis: no command while a lower tier holds it
    sent = b_tier.attempts
    assert b.get_or_load("k", b_loader, ttl=100) == {"v": 1}
    b._memory.clear()
    assert b.get_or_load("k", b_loader, ttl=100) == {"v": 1}
    assert b.stats()["disk_hits"] == 1
    assert b_tier.attempts == sent
    # the remaining lifetime ends where A's entry ends: B loads again at t0 + 100
    fake_clock.set(t0 + 100)
    assert b.get_or_load("k", Counting("new")) == "new"


def test_get_reads_the_shared_tier_and_never_loads(
    fleet: Callable[..., tuple[Any, SharedTier]],
) -> None:
    a, _ = fleet("env-a")
    b, _ = fleet("env-b")
    a.set("k", [1, "two"])
    assert b.get("k") == [1, "two"]
    assert b.get("missing", "default") == "default"


def test_an_expired_shared_entry_is_a_miss_and_is_replaced(
    fleet: Callable[..., tuple[Any, SharedTier]], fake_clock: Any
) -> None:
    a, _ = fleet("env-a")
    b, _ = fleet("env-b")
    a.get_or_load("k", Counting("old"), ttl=10)
    fake_clock.advance(11)  # Redis still holds it (real time has not passed), but not fresh
    b_loader = Counting("new")
    assert b.get_or_load("k", b_loader, ttl=10) == "new"
    assert b_loader.calls == 1
    c, _ = fleet("env-c")
    assert c.get_or_load("k", Counting("never"), ttl=10) == "new"


def test_a_callers_own_ttl_bounds_the_age_of_a_shared_entry(
    fleet: Callable[..., tuple[Any, SharedTier]], fake_clock: Any
) -> None:
    a, _ = fleet("env-a")
    b, _ = fleet("env-b")
    a.get_or_load("k", Counting("v1"), ttl=300)
    fake_clock.advance(61)
    assert b.get_or_load("k", Counting("v2"), ttl=60) == "v2"


def test_redis_expiry_is_no_later_than_stale_until(
    fleet: Callable[..., tuple[Any, SharedTier]], rclient: Any
) -> None:
    a, tier = fleet("env-a")
    a.get_or_load("k", Counting("v"), ttl=10, stale_if_error=5)
    assert 14_000 < rclient.pttl(tier.data_key("k")) <= 15_000
    a.set("s", "v", ttl=7)
    assert 6_000 < rclient.pttl(tier.data_key("s")) <= 7_000


def test_stale_if_error_can_serve_a_value_another_environment_stored(
    fleet: Callable[..., tuple[Any, SharedTier]], fake_clock: Any
) -> None:
    a, _ = fleet("env-a")
    a.get_or_load("k", Counting("last-good"), ttl=10, stale_if_error=100)
    fake_clock.advance(50)
    cold, _ = fleet("env-cold")  # a new environment whose origin fails
    assert cold.get_or_load("k", _fail, ttl=10, stale_if_error=100) == "last-good"
    fake_clock.advance(100)
    with pytest.raises(RuntimeError, match="origin down"):
        cold.get_or_load("k2", _fail, ttl=10, stale_if_error=100)


def test_delete_and_clear_reach_the_shared_tier(
    fleet: Callable[..., tuple[Any, SharedTier]], rclient: Any
) -> None:
    a, _ = fleet("env-a")
    b, _ = fleet("env-b")
    a.set("k", "v")
    a.set("j", "w")
    assert b.delete("k") is True
    assert a.get("k") == "v"  # A's own memory keeps it (other processes' memory excepted)
    a._memory.clear()
    a._disk.clear()
    assert a.get("k") is None
    b.clear()
    assert rclient.dbsize() == 0


def test_a_refresh_loads_anew_even_with_a_shared_entry(
    fleet: Callable[..., tuple[Any, SharedTier]],
) -> None:
    a, _ = fleet("env-a")
    b, _ = fleet("env-b")
    a.get_or_load("k", Counting("v1"))
    loader = Counting("v2")
    assert b.load("k", loader, refresh=True) == "v2"
    assert loader.calls == 1
    c, _ = fleet("env-c")
    assert c.get("k") == "v2"  # the refresh was written for the fleet


# -- only the safe serializer ------------------------------------------------------------------


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("serializer", ["safe", "pickle"])
def test_a_planted_pickle_in_redis_is_a_miss_and_never_executes(
    fleet: Callable[..., tuple[Any, SharedTier]],
    rclient: Any,
    tmp_path: Path,
    fake_clock: Any,
    serializer: str,
) -> None:
    cache, tier = fleet("env", serializer=serializer)
    marker = str(tmp_path / "executed")
    bomb = pickle.dumps(_Boom(marker))
    now = fake_clock()
    envelope = encode("k", Entry(None, now, now + 60, now + 60), bomb, FLAG_PICKLE)
    rclient.set(tier.data_key("k"), envelope)
    loader = Counting("from-origin")
    assert cache.get_or_load("k", loader) == "from-origin"
    assert loader.calls == 1
    assert tier.corrupt >= 1
    assert not os.path.exists(marker)
    found = tier.get("k")  # the load replaced the plant with a safe envelope
    assert found is not None
    assert found.value == "from-origin"


def test_with_the_pickle_serializer_only_safe_values_are_shared(
    fleet: Callable[..., tuple[Any, SharedTier]], rclient: Any
) -> None:
    a, tier = fleet("env-a", serializer="pickle")
    a.set("plain", {"x": [1, 2]})
    a.set("object", complex(1, 2))  # not a safe type: pickled on disk, not shared
    assert tier.get("plain") is not None
    assert rclient.exists(tier.data_key("object")) == 0
    b, _ = fleet("env-b", serializer="pickle")
    assert b.get("plain") == {"x": [1, 2]}


# -- secrets never reach Redis unless the caller opts in ---------------------------------------


def test_memory_only_values_never_reach_redis(
    fleet: Callable[..., tuple[Any, SharedTier]], rclient: Any
) -> None:
    cache, tier = fleet("env")
    secret = "hunter2-SECRET"
    cache.get_or_load("secret:a", lambda: secret, persist=False)
    cache.load("secret:b", lambda: secret, persist=False, refresh=True)
    cache.load("secret:c", lambda: secret, persist=False, stale_if_error=60)
    cache.set("secret:d", {"password": secret}, persist=False)

    @cache.cache(key="secret:e", persist=False)
    def fetch() -> str:
        return secret

    assert fetch() == secret
    assert cache.get("secret:a") == secret
    assert rclient.dbsize() == 0  # not a value, not a lock
    assert tier.attempts <= 1  # at most get()'s own read of "secret:a" (a miss in Redis)
    cache.set("public", "v")  # the control: a persisted value does reach Redis
    assert rclient.dbsize() == 1
    assert all(secret.encode() not in dumped for _, dumped in _everything(rclient))


def test_a_caller_may_opt_a_memory_only_value_in_and_a_persisted_one_out(
    fleet: Callable[..., tuple[Any, SharedTier]], rclient: Any
) -> None:
    a, tier = fleet("env-a")
    assert a.load("secret", lambda: "s3cr3t", persist=False, shared=True) == "s3cr3t"
    assert tier.get("secret") is not None
    assert a._disk.get("secret") is None  # still not on disk
    b, _ = fleet("env-b")
    loader = Counting("never")
    assert b.load("secret", loader, persist=False, shared=True) == "s3cr3t"
    assert loader.calls == 0
    assert b._disk.get("secret") is None  # the fill respects persist=False
    a.load("local", lambda: "v", shared=False)
    assert rclient.exists(tier.data_key("local")) == 0
    assert a._disk.get("local") is not None


# -- fleet-wide single-flight -------------------------------------------------------------------


def test_one_load_across_processes_with_separate_cache_directories(
    redis_server: RedisServer, rclient: Any, tmp_path: Path, unique_prefix: str
) -> None:
    count = 6
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_fleet_worker.py"),
                redis_server.url,
                unique_prefix,
                str(tmp_path / f"env-{i}"),
                "ssm:/prod/app/var",
                str(count),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(count)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.split())
    assert int(rclient.get(unique_prefix + "loads")) == 1
    assert [o[0] for o in outputs] == ["the-value"] * count
    assert sum(int(o[1]) for o in outputs) == 1  # one process loaded
    assert sum(int(o[2]) for o in outputs) == count - 1  # the others hit the shared tier
    assert sum(int(o[3]) for o in outputs) == 0  # nobody gave up waiting


def test_the_fleet_lock_wait_is_bounded_then_the_caller_loads_by_itself(
    fleet: Callable[..., tuple[Any, SharedTier]], make_tier: Callable[..., SharedTier], rclient: Any
) -> None:
    tier = make_tier(lock_wait=0.1)
    cache, _ = fleet("env", tier=tier)
    rclient.set(tier.lock_key("k"), b"a-holder-that-died", px=60_000)
    loader = Counting("mine")
    started = time.monotonic()
    assert cache.get_or_load("k", loader) == "mine"
    assert time.monotonic() - started < 5.0
    assert loader.calls == 1
    assert cache.stats()["shared_lock_timeouts"] == 1
    assert rclient.get(tier.lock_key("k")) == b"a-holder-that-died"  # never released by us
    assert tier.get("k") is not None  # and the fleet gets the value


def test_the_fleet_lock_is_taken_and_released_around_a_load(
    fleet: Callable[..., tuple[Any, SharedTier]], rclient: Any
) -> None:
    cache, tier = fleet("env")
    seen: list[bool] = []

    def loader() -> str:
        seen.append(bool(rclient.exists(tier.lock_key("k"))))
        return "v"

    cache.get_or_load("k", loader)
    assert seen == [True]
    assert rclient.exists(tier.lock_key("k")) == 0


# -- a sick Redis --------------------------------------------------------------------------------


def test_redis_stopped_mid_run_never_raises_is_skipped_and_is_used_again_after_the_cool_down(
    private_redis: RedisServer, make_cache: Callable[..., Any], fake_clock: Any, tmp_path: Path
) -> None:
    tier = SharedTier(private_redis.url, failures=3, cool_down=30.0, clock=fake_clock)
    cache = make_cache(directory=str(tmp_path / "env"), shared=tier)
    assert cache.get_or_load("before", Counting(0)) == 0
    private_redis.stop()
    attempts = tier.attempts
    for i in range(100):
        assert cache.get_or_load(f"k{i}", Counting(i)) == i
    assert cache.get_or_load("before", Counting("never")) == 0  # memory still serves
    assert tier.state == "open"
    assert tier.attempts - attempts == 3  # three failed commands, then none: no added latency
    assert tier.skipped >= 97  # every write after the breaker opened was skipped, not sent
    assert cache.stats()["loads"] == 101
    private_redis.start()
    fake_clock.advance(29)
    assert cache.get_or_load("during", Counting("d")) == "d"
    assert tier.attempts - attempts == 3  # still cooling down
    fake_clock.advance(1)
    assert cache.get_or_load("after", Counting("a")) == "a"
    assert tier.state == "closed"
    check = private_redis.client()
    assert check.exists(tier.data_key("after")) == 1
    other = make_cache(directory=str(tmp_path / "env-2"), shared=tier)
    assert other.get_or_load("after", Counting("never")) == "a"


def test_a_redis_that_never_answered_costs_nothing_more_than_the_breaker_allows(
    make_cache: Callable[..., Any], fake_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    tier = SharedTier("redis://127.0.0.1:1/0", failures=2, clock=fake_clock)  # refused
    cache = make_cache(shared=tier)
    with caplog.at_level(logging.WARNING, logger="tiered_cache"):
        for i in range(20):
            assert cache.get_or_load(f"k{i}", Counting(i)) == i
            cache.set(f"s{i}", i)
            assert cache.get(f"s{i}") == i
            cache.delete(f"s{i}")
    assert tier.attempts == 2
    assert sum("shared tier failed" in r.getMessage() for r in caplog.records) == 1


# -- configuration ------------------------------------------------------------------------------


def test_shared_accepts_a_url(make_cache: Callable[..., Any], redis_server: RedisServer) -> None:
    cache = make_cache(shared=redis_server.url)
    assert isinstance(cache._shared, SharedTier)
    assert cache._shared.clock is cache.clock  # the breaker runs on the cache's clock
    cache.set("k", "v")
    assert cache._shared.get("k") is not None


def test_environment_configures_the_default_cache(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, rclient: Any
) -> None:
    monkeypatch.setenv("TIERED_CACHE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("TIERED_CACHE_REDIS_PREFIX", "fn-orders:")
    monkeypatch.setenv("TIERED_CACHE_REDIS_TIMEOUT", "0.25")
    _config._reset_default_cache()
    cache = tiered.default_cache()
    tier = cache._shared
    assert isinstance(tier, SharedTier)
    assert tier.prefix == "fn-orders:"
    assert tier.kwargs is not None
    assert tier.kwargs["socket_timeout"] == tier.kwargs["socket_connect_timeout"] == 0.25
    cache.get_or_load("k", lambda: "v")
    assert [k.decode() for k in rclient.keys("*")] == [tier.data_key("k")]


@pytest.mark.parametrize("url", ["http://nope", "redis://h/?nonsense=1"])
def test_a_bad_redis_url_is_logged_and_the_default_cache_runs_without_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, url: str
) -> None:
    monkeypatch.setenv("TIERED_CACHE_REDIS_URL", url)
    _config._reset_default_cache()
    with caplog.at_level(logging.ERROR, logger="tiered_cache"):
        cache = tiered.default_cache()
    assert cache._shared is None
    assert "TIERED_CACHE_REDIS" in caplog.text
    assert cache.get_or_load("k", lambda: 1) == 1


def test_import_and_configuration_do_not_import_redis(
    python_subprocess: Callable[..., Any], redis_server: RedisServer
) -> None:
    result = python_subprocess(
        """
        import sys
        import tiered_cache
        assert "redis" not in sys.modules, "import tiered_cache imported redis"
        cache = tiered_cache.default_cache()
        assert cache._shared is not None
        assert "redis" not in sys.modules, "configuring the shared tier imported redis"
        assert cache.get_or_load("k", lambda: "v") == "v"
        assert "redis" in sys.modules
        print("ok")
        """,
        env={"TIERED_CACHE_REDIS_URL": redis_server.url},
    )
    assert result.stdout.strip() == "ok"


def test_a_waiter_rechecks_after_the_fleet_lock_and_takes_the_holders_value(
    fleet: Callable[..., tuple[Any, SharedTier]], make_tier: Callable[..., SharedTier]
) -> None:
    holder_cache, holder = fleet("env-holder")
    waiter_cache, waiter = fleet("env-waiter", tier=make_tier(lock_wait=30.0))
    loader = Counting("never")
    results: list[Any] = []
    with holder.lock("k", 0.0) as held:
        assert held
        thread = threading.Thread(
            target=lambda: results.append(waiter_cache.get_or_load("k", loader))
        )
        thread.start()
        deadline = time.monotonic() + 30.0
        while waiter.attempts < 3:  # its GET, then SET NX twice: it is waiting on our lock
            assert time.monotonic() < deadline, "the waiter never reached the fleet lock"
            time.sleep(0.001)
        holder_cache.set("k", "holders-value")
    thread.join(30.0)
    assert results == ["holders-value"]
    assert loader.calls == 0
    assert waiter.lock_timeouts == 0
    assert waiter_cache.stats()["shared_hits"] == 1


def test_shared_tier_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="either a Redis URL or a client"):
        SharedTier()
    with pytest.raises(ValueError, match="failures >= 1"):
        SharedTier("redis://h", failures=0)
    assert "prefix='p:'" in repr(SharedTier("redis://h:1", prefix="p:"))
    assert "client" in repr(SharedTier(client=object()))
