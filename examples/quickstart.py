"""A runnable tour: a miss, a memory hit, a disk hit from a fresh process, expiry, invalidate.

python3 examples/quickstart.py

Expiry is shown with an injected clock (``TieredCache(clock=...)``): the tour moves a fake clock
past the TTL instead of sleeping for it. Everything is written to a temporary directory that is
removed at the end, whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

import tiered_cache as tiered

TTL = 30.0

CHILD = """
import sys, time, tiered_cache as tiered
cache = tiered.TieredCache(directory=sys.argv[1], ttl=30)
start = time.perf_counter()
value = cache.get_or_load("report:2026-11-28", lambda: sys.exit("loader ran: not a disk hit"))
elapsed = (time.perf_counter() - start) * 1e3
hits = cache.stats()["disk_hits"]
print(f"   {value!r} in {elapsed:.2f} ms ({hits} disk hit, no load)")
"""


class FakeClock:
    """A wall clock that only moves when told to: expiry without waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tiered-quickstart-") as tmp:
        tour(f"{tmp}/cache")


def tour(directory: str) -> None:
    clock = FakeClock()
    cache = tiered.TieredCache(directory=directory, ttl=TTL, clock=clock)
    calls = 0

    @cache.cache(key="report:{day}", ttl=TTL)
    def build_report(day: str) -> str:
        nonlocal calls
        calls += 1
        time.sleep(0.2)  # a slow origin
        return f"report for {day}"

    def call(label: str) -> None:
        start = time.perf_counter()
        build_report("2026-11-28")
        elapsed = (time.perf_counter() - start) * 1e3
        print(f"{label:<52} {elapsed:9.3f} ms   the function has run {calls}x")

    key = build_report.cache_key("2026-11-28")
    print(f"build_report('2026-11-28'), cached under key {key!r} for {TTL:g} s:")
    call("1. first call: a miss, the function runs")
    call("2. second call: a memory hit")
    print("3. a new interpreter on the same directory (a runtime restart, or another worker):")
    subprocess.run([sys.executable, "-c", CHILD, directory], check=True)

    clock.advance(TTL + 1)
    print(f"   ... the injected clock moves on {TTL + 1:g} s, past the TTL")
    call("4. after expiry: the function runs again")
    call("5. then: a memory hit again")

    removed = build_report.invalidate("2026-11-28")
    print(f"   ... invalidate('2026-11-28') dropped the entry from memory and disk: {removed}")
    call("6. after invalidate: the function runs again")
    stats = cache.stats()
    print("stats of this process:", ", ".join(f"{k} {stats[k]}" for k in ("memory_hits", "misses")))


if __name__ == "__main__":
    main()
