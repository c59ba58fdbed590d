"""Items 3 and 4: TTL with jitter that only shortens, exact expiry at ``ttl``, entries stamped in
the future, and stale-if-error. All on an injected clock: nothing here sleeps.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest


class Boom(Exception):
    pass


def _failing(exc: BaseException) -> Any:
    def loader() -> Any:
        raise exc

    return loader


def test_jitter_only_shortens_and_spreads_lifetimes(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(jitter=0.1, ttl=100, memory_items=1000)
    start = fake_clock()
    for i in range(300):
        cache.set(f"k{i}", i)
    lifetimes = [e.expires_at - e.stored_at for e in cache._memory.data.values()]
    assert len(lifetimes) == 300
    assert all(90.0 < life <= 100.0 for life in lifetimes)
    assert max(lifetimes) - min(lifetimes) > 5.0  # jitter actually spreads them
    fake_clock.set(start + 89.999)
    assert all(cache.get(f"k{i}") == i for i in range(300))
    fake_clock.set(start + 100)
    assert all(cache.get(f"k{i}", "MISS") == "MISS" for i in range(300))


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999999999])
def test_lifetime_at_the_extremes_of_the_random_draw(
    make_cache: Any, fake_clock: Any, draw: float
) -> None:
    cache = make_cache(jitter=0.2, ttl=50)
    cache._random = lambda: draw
    start = fake_clock()
    cache.set("k", "v")
    lifetime = 50 * (1 - 0.2 * draw)
    assert cache._memory.data["k"].expires_at == start + lifetime
    fake_clock.set(start + lifetime - 0.001)
    assert cache.get("k") == "v"
    fake_clock.set(start + lifetime)
    assert cache.get("k", "MISS") == "MISS"


def test_at_exactly_ttl_an_entry_is_expired_in_every_path(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(jitter=0.1, ttl=8)
    cache._random = lambda: 0.0  # the longest possible lifetime: exactly ttl
    start = fake_clock()
    cache.set("k", "old")
    calls: list[int] = []

    def loader() -> str:
        calls.append(1)
        return "new"

    fake_clock.set(start + 8)
    assert cache.get("k", "MISS") == "MISS"
    assert make_cache().get("k", "MISS") == "MISS"  # disk path
    assert cache.get_or_load("k", loader) == "new"
    assert calls == [1]


def test_ttl_zero_is_never_fresh(make_cache: Any) -> None:
    cache = make_cache()
    calls: list[int] = []

    def loader() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get_or_load("k", loader, ttl=0) == 1
    assert cache.get_or_load("k", loader, ttl=0) == 2


def test_default_ttl_is_the_caches(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=5)
    start = fake_clock()
    cache.set("k", "v")
    assert cache._memory.data["k"].expires_at == start + 5
    cache.set("j", "v", ttl=7)
    assert cache._memory.data["j"].expires_at == start + 7


def test_entry_stamped_in_the_future_counts_as_expired(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=100)
    start = fake_clock()
    cache.set("k", "from the future")
    fake_clock.set(start - 10)  # the clock stepped back
    assert cache.get("k", "MISS") == "MISS"
    assert make_cache().get("k", "MISS") == "MISS"  # the disk copy too
    assert cache.get_or_load("k", lambda: "reloaded") == "reloaded"
    assert cache._memory.data["k"].stored_at == start - 10


def test_future_stamped_entry_is_not_served_as_stale(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=10)
    start = fake_clock()
    cache.set("k", "future")
    fake_clock.set(start - 5)
    with pytest.raises(Boom):
        cache.get_or_load("k", _failing(Boom()), stale_if_error=1000)


# -- stale-if-error ----


def test_stale_value_served_inside_the_window_and_counted(
    make_cache: Any, fake_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(ttl=10)
    start = fake_clock()
    cache.get_or_load("k", lambda: "good", stale_if_error=30)
    fake_clock.set(start + 25)
    with caplog.at_level(logging.WARNING, logger="tiered_cache"):
        assert cache.get_or_load("k", _failing(Boom("down")), stale_if_error=30) == "good"
    stats = cache.stats()
    assert stats["stale_served"] == 1
    assert stats["load_errors"] == 1
    assert any("stale" in r.getMessage() for r in caplog.records)
    # A plain read never serves stale values.
    assert cache.get("k", "MISS") == "MISS"


def test_an_outage_is_logged_once_per_key_until_a_load_succeeds(
    make_cache: Any, fake_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(ttl=10)
    start = fake_clock()
    cache.get_or_load("k", lambda: "good", stale_if_error=60)
    fake_clock.set(start + 15)

    def warnings() -> int:
        return sum(
            r.levelno >= logging.WARNING and "stale" in r.getMessage() for r in caplog.records
        )

    with caplog.at_level(logging.WARNING, logger="tiered_cache"):
        for _ in range(5):
            assert cache.get_or_load("k", _failing(Boom("down")), stale_if_error=60) == "good"
        assert warnings() == 1
        assert cache.get_or_load("k", lambda: "back") == "back"  # the outage ends
        fake_clock.set(start + 30)
        assert cache.get_or_load("k", _failing(Boom("down")), stale_if_error=60) == "back"
        assert warnings() == 2  # a new outage is logged again
    assert cache.stats()["stale_served"] == 6


def test_past_the_window_the_loaders_own_exception_propagates_unchanged(
    make_cache: Any, fake_clock: Any
) -> None:
    cache = make_cache(ttl=10)
    start = fake_clock()
    cache.get_or_load("k", lambda: "good", stale_if_error=30)
    fake_clock.set(start + 40)  # expiry 10 + window 30: exactly the end
    error = Boom("down")
    with pytest.raises(Boom) as info:
        cache.get_or_load("k", _failing(error), stale_if_error=30)
    assert info.value is error
    assert cache.stats()["stale_served"] == 0
    fake_clock.set(start + 39.999)
    assert cache.get_or_load("k", _failing(Boom()), stale_if_error=30) == "good"


def test_no_window_by_default_means_the_exception_propagates(
    make_cache: Any, fake_clock: Any
) -> None:
    cache = make_cache(ttl=10)
    cache.set("k", "good")
    fake_clock.advance(10.5)
    with pytest.raises(Boom):
        cache.get_or_load("k", _failing(Boom()))
    assert cache.stats()["load_errors"] == 1


def test_caches_default_window_applies(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=10, stale_if_error=20)
    cache.set("k", "good")
    fake_clock.advance(25)
    assert cache.get_or_load("k", _failing(Boom())) == "good"
    fake_clock.advance(10)
    with pytest.raises(Boom):
        cache.get_or_load("k", _failing(Boom()))


def test_the_failing_calls_own_argument_decides(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=10)
    start = fake_clock()
    cache.get_or_load("k", lambda: "good", stale_if_error=0)  # stored with no window
    fake_clock.set(start + 15)
    assert cache.get_or_load("k", _failing(Boom()), stale_if_error=10) == "good"
    cache.get_or_load("j", lambda: "good", stale_if_error=1000)  # stored with a big window
    fake_clock.set(start + 15 + 11)
    with pytest.raises(Boom):
        cache.get_or_load("j", _failing(Boom()), stale_if_error=0)


def test_window_is_measured_from_the_callers_bound_when_shorter(
    make_cache: Any, fake_clock: Any
) -> None:
    cache = make_cache(ttl=100)
    start = fake_clock()
    cache.set("k", "good")  # expires at +100
    fake_clock.set(start + 25)
    # This caller's ttl=10 makes the entry expired for it at +10; window 10 ends at +20.
    with pytest.raises(Boom):
        cache.get_or_load("k", _failing(Boom()), ttl=10, stale_if_error=10)
    assert cache.get_or_load("k", _failing(Boom()), ttl=10, stale_if_error=20) == "good"


def test_stale_value_from_disk_is_served_by_a_new_process(make_cache: Any, fake_clock: Any) -> None:
    make_cache(ttl=10).set("k", ["good"])
    fake_clock.advance(15)
    fresh = make_cache(ttl=10)
    assert fresh.get_or_load("k", _failing(Boom()), stale_if_error=10) == ["good"]
    assert fresh.stats()["stale_served"] == 1


def test_stale_with_nothing_cached_propagates(make_cache: Any) -> None:
    cache = make_cache()
    with pytest.raises(Boom):
        cache.get_or_load("never", _failing(Boom()), stale_if_error=100)


def test_base_exceptions_are_never_swallowed(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=10)
    cache.set("k", "good")
    fake_clock.advance(11)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_load("k", _failing(KeyboardInterrupt()), stale_if_error=100)


def test_failed_load_stores_nothing(make_cache: Any) -> None:
    cache = make_cache()
    with pytest.raises(Boom):
        cache.get_or_load("k", _failing(Boom()))
    assert cache.get("k", "MISS") == "MISS"
    assert make_cache().get("k", "MISS") == "MISS"
