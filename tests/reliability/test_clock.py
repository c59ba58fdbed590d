"""Issue 5, item 9: clock faults, with an injected wall clock.

Stepped back 10 minutes: an entry stamped in the future is not fresh, in memory or on disk,
and what is loaded meanwhile expires by the stepped-back clock, so nothing stays fresh
forever. Stepped forward an hour: every entry is expired, and stale-if-error does not stretch
past its window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

TTL = 60.0


class Origin:
    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    def __call__(self) -> str:
        if self.fail:
            raise ConnectionError("origin down")
        self.calls += 1
        return f"v{self.calls}"


@pytest.mark.parametrize("tier", ["memory", "disk"])
def test_clock_steps_back_ten_minutes(
    make_cache: Callable[..., Any], fake_clock: Any, tier: str
) -> None:
    origin = Origin()
    writer = make_cache(ttl=TTL)
    assert writer.get_or_load("k", origin) == "v1"
    reader = writer if tier == "memory" else make_cache(ttl=TTL)  # disk: empty memory
    assert reader.get("k") == "v1"

    fake_clock.advance(-600)  # NTP steps the clock back 10 minutes
    assert reader.get("k") is None, "an entry stamped in the future was served as fresh"
    assert reader.get_or_load("k", origin) == "v2"
    # What was loaded at the stepped-back time expires on that clock: walk the clock forward
    # in steps; the value changes at least once per TTL, never stays fresh forever.
    seen = {"v2"}
    for _ in range(int(3 * 600 / TTL)):
        fake_clock.advance(TTL / 2)
        seen.add(reader.get_or_load("k", origin))
    assert origin.calls >= 2 + int(3 * 600 / TTL) // 2 - 1
    assert len(seen) == origin.calls - 1


def test_no_entry_outlives_its_ttl_across_a_step_back(
    make_cache: Callable[..., Any], fake_clock: Any
) -> None:
    """However the clock moves, an entry is served only while stored_at <= now < expiry."""
    cache = make_cache(ttl=TTL)
    cache.set("k", "v")
    stored = fake_clock()
    for step in (-600, 30, 500, 69, 1, 0.5, 29.4, 0.1, 0.1):
        fake_clock.advance(step)
        now = fake_clock()
        fresh = stored <= now < stored + TTL
        assert (cache.get("k") == "v") is fresh, f"at {now - stored:+.1f} s from the store"
        assert (make_cache(ttl=TTL).get("k") == "v") is fresh


@pytest.mark.parametrize("tier", ["memory", "disk"])
def test_clock_steps_forward_an_hour(
    make_cache: Callable[..., Any], fake_clock: Any, tier: str
) -> None:
    origin = Origin()
    cache = make_cache(ttl=TTL, stale_if_error=300)
    for i in range(10):
        cache.set(f"k{i}", i)
    assert cache.get_or_load("loaded", origin) == "v1"
    reader = cache if tier == "memory" else make_cache(ttl=TTL, stale_if_error=300)

    fake_clock.advance(3600)
    assert [reader.get(f"k{i}") for i in range(10)] == [None] * 10
    origin.fail = True
    with pytest.raises(ConnectionError):  # an hour is past expiry + stale_if_error
        reader.get_or_load("loaded", origin)
    origin.fail = False
    assert reader.get_or_load("loaded", origin) == "v2"


def test_jitter_only_shortens(make_cache: Callable[..., Any], fake_clock: Any) -> None:
    cache = make_cache(ttl=TTL, jitter=0.5)
    for i in range(200):
        cache.set(f"k{i}", i)
    lifetimes = [cache._memory.get(f"k{i}").expires_at - fake_clock() for i in range(200)]
    assert max(lifetimes) <= TTL
    assert min(lifetimes) >= TTL * 0.5
    assert len(set(lifetimes)) > 100, "no jitter was applied"
