"""One simulated execution environment for the fleet single-flight test (run as a script).

    python _fleet_worker.py URL PREFIX DIRECTORY KEY COUNT

Its own cache directory, the shared Redis. It checks in (INCR ``<prefix>arrived``) and asks for
KEY. Its loader counts itself (INCR ``<prefix>loads``) and then holds until all COUNT workers
have checked in, so every worker asks while the load is in flight: without the fleet lock each
of them would find every tier empty and load too. Prints the value it got.
"""

from __future__ import annotations

import sys
import time

import redis

from tiered_cache import TieredCache
from tiered_cache._shared import SharedTier


def main() -> None:
    url, prefix, directory, key, count = sys.argv[1:6]
    client = redis.Redis.from_url(url)
    tier = SharedTier(url, prefix=prefix, lock_wait=60.0, timeout=5.0, connect_timeout=5.0)
    cache = TieredCache(directory=directory, shared=tier, lock_timeout=60.0)

    def loader() -> str:
        client.incr(prefix + "loads")
        deadline = time.monotonic() + 60.0
        while int(client.get(prefix + "arrived") or 0) < int(count):
            if time.monotonic() > deadline:
                raise RuntimeError("not every worker arrived")
            time.sleep(0.01)
        return "the-value"

    client.incr(prefix + "arrived")
    value = cache.get_or_load(key, loader, ttl=300)
    stats = cache.stats()
    print(value, stats["loads"], stats["shared_hits"], stats["shared_lock_timeouts"], flush=True)


if __name__ == "__main__":
    main()
