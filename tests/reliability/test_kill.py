"""Issue 5, item 1 (and 11's killed download): ``kill -9`` while a process stores large values.

A real child process stores large values (inline in SQLite) and large objects (files committed
from ``tmp/``) in a loop and is killed with SIGKILL at a random point. The next process, a fresh
interpreter, must read the old value, the new value or a miss, never a torn one (each value
carries its own SHA-256); temp files left by the killed writer are swept; and once the
writers are gone, disk use returns to the baseline of one clean write.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Runs, Workers

pytestmark = pytest.mark.slow

SETTLE_BYTES = 512 * 1024


def age_files(directory: str, seconds: float) -> None:
    """Make every file under ``directory`` look ``seconds`` older (time passing)."""
    for base, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(base, name)
            info = os.stat(path)
            os.utime(path, (info.st_atime - seconds, info.st_mtime - seconds))


def tree_bytes(root: str) -> int:
    return (
        sum(
            os.lstat(os.path.join(base, name)).st_size
            for base, dirs, files in os.walk(root)
            for name in dirs + files
        )
        + os.lstat(root).st_size
    )


def test_kill_9_while_storing_never_tears(tmp_path: Path, runs: Runs, workers: Workers) -> None:
    directory = str(tmp_path / "c")
    total = runs(50, 200)
    rng = random.Random(5)

    baseline_proc = workers.start("settle", directory, SETTLE_BYTES)
    workers.finish(baseline_proc)
    baseline = tree_bytes(directory)

    seen: dict[str, int] = {"ok": 0, "miss": 0, "torn": 0}
    for run in range(total):
        proc = workers.start("kill_writer", directory, run)
        report = workers.line(proc)
        assert report["big"] != "torn", f"run {run}: a fresh process read a torn value"
        assert report["obj"] != "torn", f"run {run}: a fresh process read a torn object file"
        assert report["parts"] == 0, f"run {run}: temp files of killed writers were not swept"
        seen[report["big"]] += 1
        seen[report["obj"]] += 1
        assert workers.line(proc) == {"ready": True}
        time.sleep(rng.uniform(0, 0.25))  # the random point of the kill
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        runs.progress("kill -9 runs", run + 1, total)

    assert seen["ok"] > 0, "no run ever read a stored value back: the test proves nothing"

    # Objects orphaned by a kill between rename and commit are swept once they are older than
    # any commit in flight could be; let that time pass, then one clean process settles.
    age_files(directory, 3600)
    final = workers.finish(workers.start("settle", directory, SETTLE_BYTES))
    assert final["before"][0] != "torn"
    assert final["before"][1] != "torn"
    assert final["after"] == ["ok", "ok"]
    assert final["parts"] == [], "temp files of killed writers survived a clean open"
    assert len(final["objects"]) == 1, f"orphaned object files left: {final['objects']}"
    used = tree_bytes(directory)
    assert used <= baseline * 1.1 + 64 * 1024, (
        f"disk use {used} B did not return to the baseline {baseline} B after {total} kills"
    )


def test_killed_download_leaves_nothing_that_passes_for_complete(
    tmp_path: Path, workers: Workers
) -> None:
    from tiered_cache import TieredCache

    directory = str(tmp_path / "c")
    proc = workers.start("kill_download", directory, 2 * 2**20)
    report = workers.line(proc)
    assert report["half"] is True
    assert len(report["parts"]) == 1
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)

    cache = TieredCache(directory=directory, ttl=600)
    assert cache._disk is not None
    assert cache._disk.get("obj") is None, "a killed download was taken for an entry"
    body = os.urandom(1000)
    calls = []

    def fetch(dest: object, version: str | None) -> str:
        calls.append(version)
        dest.write(body)  # type: ignore[attr-defined]
        return "etag-1"

    path = cache.load_file("obj", fetch)
    assert calls == [None], "the killed download's partial file was reused"
    with open(path, "rb") as f:
        assert f.read() == body
    assert os.listdir(cache._disk.tmp_dir) == [], "the killed download's temp file stayed"
    cache._disk._close()


def test_sweep_after_a_restart_keeps_objects_that_are_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep that removes what killed writers left must not remove live objects."""
    from tiered_cache import TieredCache, _disk

    directory = str(tmp_path / "c")
    first = TieredCache(directory=directory, ttl=3600)
    path = first.load_file("obj", lambda dest, _v: dest.write(b"whole object") and "etag-1")
    assert first._disk is not None
    first._disk._close()

    class AnHourLater:  # the process restarts an hour later, entry still fresh (the files'
        monotonic = staticmethod(time.monotonic)  # times are left alone: a rewrite of an
        # object is told by its modification time)

        @staticmethod
        def time() -> float:
            return time.time() + 3600

    monkeypatch.setattr(_disk, "time", AnHourLater)

    def must_not_fetch(dest: object, version: str | None) -> str:
        raise AssertionError(f"fetched again (version {version!r}): the object was swept")

    second = TieredCache(directory=directory, ttl=7200)
    assert second.load_file("obj", must_not_fetch, max_age=7200) == path
    with open(path, "rb") as f:
        assert f.read() == b"whole object"
    assert second._disk is not None
    second._disk._close()


def test_fetch_that_fails_mid_stream_commits_nothing(tmp_path: Path) -> None:
    """Item 11 at the engine level: the object changes mid-download and the fetch notices."""
    from tiered_cache import TieredCache

    cache = TieredCache(directory=str(tmp_path / "c"), ttl=600)
    assert cache._disk is not None

    def changing(dest: Any, _version: str | None) -> str:
        dest.write(b"A" * 100_000)  # half of version A, then the origin says it changed
        raise ConnectionError("object changed during download (ETag mismatch)")

    with pytest.raises(ConnectionError):
        cache.load_file("obj", changing)
    assert os.listdir(cache._disk.tmp_dir) == []
    assert os.listdir(cache._disk.objects_dir) == []
    assert cache._disk.get("obj") is None

    path = cache.load_file("obj", lambda dest, _v: dest.write(b"B" * 200_000) and "etag-b")
    with open(path, "rb") as f:
        assert f.read() == b"B" * 200_000
    cache._disk._close()
