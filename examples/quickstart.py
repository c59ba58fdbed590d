"""A runnable tour: a miss, a memory hit, a disk hit from a fresh process, and expiry.

python3 examples/quickstart.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

import tiered_cache as tiered

CHILD = """
import sys, time, tiered_cache as tiered
cache = tiered.TieredCache(directory=sys.argv[1], ttl=30)
start = time.perf_counter()
value = cache.get_or_load("report:2026-11-28", lambda: sys.exit("loader ran: not a disk hit"))
elapsed = (time.perf_counter() - start) * 1e3
hits = cache.stats()["disk_hits"]
print(f"  fresh process: {value!r} in {elapsed:.2f} ms ({hits} disk hit, no load)")
"""


def main() -> None:
    directory = tempfile.mkdtemp(prefix="tiered-quickstart-") + "/cache"
    cache = tiered.TieredCache(directory=directory, ttl=30)
    calls = 0

    @cache.cache(key="report:{day}", ttl=30)
    def build_report(day: str) -> str:
        nonlocal calls
        calls += 1
        time.sleep(0.2)  # a slow origin
        return f"report for {day}"

    for label in ("first call (miss, loads)", "second call (memory hit)"):
        start = time.perf_counter()
        value = build_report("2026-11-28")
        print(f"{label}: {value!r} in {(time.perf_counter() - start) * 1e3:.3f} ms")
    print(f"the function ran {calls} time(s); key {build_report.cache_key('2026-11-28')!r}")
    print("a new interpreter on the same directory (a runtime restart, or another worker):")
    subprocess.run([sys.executable, "-c", CHILD, directory], check=True)
    build_report.invalidate("2026-11-28")
    build_report("2026-11-28")
    print(f"after invalidate, the function ran {calls} time(s)")
    print("stats:", cache.stats())


if __name__ == "__main__":
    main()
