"""One simulated execution environment for the DynamoDB fleet test (run as a script).

    python _fleet_worker.py TABLE DIRECTORY KEY COUNT SYNC INDEX

Its own cache directory; the table on the moto server that ``AWS_ENDPOINT_URL`` names, chosen
with ``shared="dynamodb://TABLE"``. Every worker checks in (a file ``arrived-INDEX`` in SYNC) and
waits for all COUNT, then says it is asking (``asking-INDEX``) and asks for KEY. Its loader
counts itself (``load-INDEX``) and then holds until all COUNT workers are asking, so every
worker asks while the load is in flight: without the fleet lock each would find every tier
empty and load too. Prints the value it got and its counters.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tiered_cache import TieredCache


def _wait_for(sync: Path, pattern: str, count: int) -> None:
    deadline = time.monotonic() + 60.0
    while len(list(sync.glob(pattern))) < count:  # bounded: the test fails if one never comes
        if time.monotonic() > deadline:
            raise SystemExit(f"not every worker made {pattern}")
        time.sleep(0.005)


def main() -> None:
    table, directory, key, count_text, sync_text, index = sys.argv[1:7]
    count, sync = int(count_text), Path(sync_text)
    cache = TieredCache(
        directory=directory, shared=f"dynamodb://{table}?timeout=2", lock_timeout=60
    )

    def loader() -> str:
        (sync / f"load-{index}").touch()
        _wait_for(sync, "asking-*", count)
        return "the-value"

    cache.get("warm-up")  # makes the boto3 client and its connection before the race
    (sync / f"arrived-{index}").touch()
    _wait_for(sync, "arrived-*", count)
    (sync / f"asking-{index}").touch()
    value = cache.get_or_load(key, loader, ttl=300)
    stats = cache.stats()
    print(value, stats["loads"], stats["shared_hits"], stats["shared_lock_timeouts"], flush=True)


if __name__ == "__main__":
    main()
