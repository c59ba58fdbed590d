"""SnapStart: after a restore, every live cache expires what it holds (memory and disk) and
reseeds its jitter, through the hook the runtime runs (``snapshot_restore_py``, as
``awslambdaric`` calls it); the hook is registered by the first cache, whichever it is."""

from __future__ import annotations

import json
import os
from typing import Any

from awslambdaric.lambda_runtime_hooks_runner import run_after_restore

import tiered_cache as tiered


def test_a_function_with_only_tiered_cache_is_refetched_after_a_restore(
    python_subprocess: Any, tmp_path: Any
) -> None:
    out = python_subprocess(
        """
        import sys
        import tiered_cache as tiered
        from awslambdaric.lambda_runtime_hooks_runner import run_after_restore

        origin = {"report": "report-v1"}

        @tiered.cache(key="report", ttl=600)
        def report():
            return origin["report"]

        assert report() == "report-v1"          # INIT: the snapshot holds this value
        origin["report"] = "report-v2"
        assert report() == "report-v1"          # cached
        run_after_restore()                     # what the runtime does after a restore
        print(report(), "tiered_cache._aws" in sys.modules)
        """,
        env={"TIERED_CACHE_DIR": str(tmp_path / "c")},
    )
    assert out.stdout.split() == ["report-v2", "False"]


def test_every_live_cache_is_expired_in_memory_and_on_disk(
    make_cache: Any, fake_clock: Any, tmp_path: Any
) -> None:
    own = make_cache(ttl=86400, directory=str(tmp_path / "own"))  # the application's own cache
    own.set("k", "snapshot-time")
    other = make_cache(disk=False, ttl=86400)
    other.set("k", "snapshot-time")
    with tiered.use_cache(make_cache(ttl=86400, directory=str(tmp_path / "default"))):
        tiered.default_cache().set("k", "snapshot-time")
        fake_clock.advance(3600)  # restored an hour later: still fresh by the TTL of a day
        run_after_restore()
        for cache in (own, other, tiered.default_cache()):
            assert cache.get("k") is None  # nothing from snapshot time is served
            assert cache.get_or_load("k", lambda: "after") == "after"
    assert make_cache(directory=str(tmp_path / "own")).get("k") == "after"  # on disk too


def _expiry(cache: Any, clock: Any, key: str, low: float, high: float) -> float:
    """When ``key`` stops being served, found by bisecting the injected clock."""
    start = clock.now
    for _ in range(40):
        clock.now = (low + high) / 2
        if cache.get(key) is None:
            high = clock.now
        else:
            low = clock.now
    clock.now = start
    return high


def test_clones_restored_from_one_snapshot_draw_different_jitter(fake_clock: Any) -> None:
    """Real forks stand in for environments restored from one snapshot: each child starts with
    the parent's generator state; after the hook, their jitter sequences differ."""
    cache = tiered.TieredCache(disk=False, ttl=100, jitter=0.5, clock=fake_clock)
    cache.set("warm", 1)  # the generator has been used before the snapshot

    def lifetimes(restore: bool) -> list[float]:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the clone
            os.close(read)
            if restore:
                run_after_restore()
            start = fake_clock.now
            drawn = []
            for i in range(4):
                cache.set(f"k{i}", i)
                drawn.append(_expiry(cache, fake_clock, f"k{i}", start, start + 100) - start)
            os.write(write, json.dumps(drawn).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
        return [float(x) for x in json.loads(data)]

    first, second = lifetimes(False), lifetimes(False)
    assert first == second  # without a restore, clones are in step...
    assert all(50 <= t <= 100 for t in first)  # (jitter only shortens the 100 s TTL)
    assert lifetimes(True) != lifetimes(True)  # ...after it, each draws its own
