"""``TieredCache.close()`` and ``with TieredCache(...) as cache:``: what the cache holds open for
the calling thread is let go of, the entries stay, and the cache stays usable.

Open files are read from ``/proc/self/fd`` (Linux): the database, its WAL and its shared-memory
file, all under the cache's own private directory.
"""

from __future__ import annotations

import gc
import os
import sys
import warnings
from typing import Any

import pytest

import tiered_cache as tiered

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)"
)


def open_under(directory: str) -> list[str]:
    """The files under ``directory`` this process holds open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(directory + os.sep):
            found.append(target)
    return found


def test_close_lets_go_of_the_database_and_keeps_the_entries(
    cache_dir: str, fake_clock: Any
) -> None:
    with tiered.TieredCache(directory=cache_dir, clock=fake_clock) as cache:
        cache.set("k", {"v": 1})
        assert open_under(cache_dir), "the database is not open: nothing to prove"
    assert open_under(cache_dir) == []
    other = tiered.TieredCache(directory=cache_dir, clock=fake_clock)
    assert other.get("k") == {"v": 1}  # on disk: the close lost nothing
    other.close()
    cache.set("j", 2)  # a closed cache opens its store again on next use
    cache.close()
    assert open_under(cache_dir) == []
    again = tiered.TieredCache(directory=cache_dir, clock=fake_clock)
    assert again.get("j") == 2
    again.close()


def test_close_twice_and_without_a_disk_tier(cache_dir: str) -> None:
    cache = tiered.TieredCache(directory=cache_dir)
    cache.close()  # never opened
    cache.close()
    memory_only = tiered.TieredCache(disk=False)
    memory_only.set("k", 1)
    memory_only.close()
    assert memory_only.get("k") == 1  # memory is not dropped by close


@pytest.mark.skipif(sys.version_info < (3, 13), reason="sqlite3 warns from Python 3.13")
def test_a_closed_cache_that_is_dropped_leaves_no_resource_warning(
    cache_dir: str, fake_clock: Any
) -> None:
    gc.collect()  # what earlier tests dropped warns now, not inside the block below
    gc.disable()  # and nothing else is collected until this test's own collection
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            with tiered.TieredCache(directory=cache_dir, clock=fake_clock) as cache:
                cache.set("k", 1)
            del cache
            gc.collect()
    finally:
        gc.enable()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
