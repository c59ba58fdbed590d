"""Guarded writes on the disk tier (no write goes back in time), on ``DiskTier`` directly.

A guard and its write are one SQLite transaction, so they are atomic across processes: the
last test races two real processes and checks that the older write never stands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
import pytest

from tiered_cache import _serial
from tiered_cache._disk import DiskTier, disk_key
from tiered_cache._entry import MISSING, Entry, Guard, tombstone

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def disk(cache_dir: str) -> Iterator[DiskTier]:
    tier = DiskTier(cache_dir)
    yield tier
    tier._close()


def entry(value: Any, stored_at: float, version: str | None = None) -> Entry:
    return Entry(value, stored_at, stored_at + 60, stored_at + 90, version)


def put(disk: DiskTier, key: str, e: Entry, guard: Guard | None = None) -> Entry | None:
    return disk.put(key, e, _serial.dumps(e.value, _serial.SAFE), 60.0, guard)


def test_a_guarded_put_refused_by_a_newer_row_returns_that_row(disk: DiskTier) -> None:
    newer = entry("newer", 200.0, "v2")
    assert put(disk, "k", newer) is None
    older = entry("older", 100.0)
    standing = put(disk, "k", older, Guard(100.0, None))
    assert standing is not None
    assert standing.identity == newer.identity
    assert standing.value == "newer"
    stored = disk.get("k")
    assert stored is not None
    assert stored.value == "newer"


def test_a_tombstone_refuses_an_older_guarded_put(disk: DiskTier) -> None:
    first = entry("first", 100.0)
    put(disk, "k", first)
    guard = Guard(150.0, first.identity)  # a load that began at 150 and saw "first"
    assert disk.delete("k", tombstone(200.0)) is True
    standing = put(disk, "k", entry("loaded", 150.0), guard)
    assert standing is not None
    assert standing.is_tombstone
    assert standing.value is MISSING
    stored = disk.get("k")
    assert stored is not None
    assert stored.is_tombstone, "the load wrote over the delete"
    assert disk.delete("k", tombstone(300.0)) is False, "a tombstone is not a live entry"
    assert disk.delete("missing", tombstone(300.0)) is False


def test_a_put_whose_guard_saw_the_current_row_replaces_it(disk: DiskTier) -> None:
    current = entry("current", 100.0)
    put(disk, "k", current)
    # Same stamp as the row (one clock tick): allowed only because it saw that very row.
    assert put(disk, "k", entry("refreshed", 100.0, "v2"), Guard(100.0, current.identity)) is None
    stored = disk.get("k")
    assert stored is not None
    assert (stored.value, stored.version) == ("refreshed", "v2")
    # A guard that saw something else, and is not newer, is refused.
    other = put(disk, "k", entry("stale", 100.0), Guard(100.0, (1.0, 2.0, None)))
    assert other is not None
    assert other.value == "refreshed"
    # Older than the load: allowed whatever it saw.
    assert put(disk, "k", entry("later", 150.0), Guard(150.0, None)) is None
    assert disk.get("k").value == "later"  # type: ignore[union-attr]


def test_a_damaged_current_row_counts_as_none(disk: DiskTier) -> None:
    put(disk, "k", entry("v", 500.0))
    raw = diskcache.Cache(disk.db_dir)  # the store is diskcache's schema: plant with it
    raw.set(disk_key("k"), b"TC\x01garbage")  # an envelope no decoder accepts
    raw.close()
    assert put(disk, "k", entry("new", 100.0), Guard(100.0, None)) is None
    assert disk.get("k").value == "new"  # type: ignore[union-attr]


def test_delete_with_a_tombstone_removes_the_object_of_a_file_entry(disk: DiskTier) -> None:
    path, dest = disk.temp_file()
    dest.write(b"body")
    dest.close()
    stored = disk.commit_file("obj", path, entry(None, 100.0, "e1"))
    assert stored is not None
    assert os.path.exists(stored.value)
    assert disk.delete("obj", tombstone(200.0)) is True
    assert not os.path.exists(stored.value)
    assert os.listdir(disk.objects_dir) == []
    assert disk.get("obj").is_tombstone  # type: ignore[union-attr]


def test_a_guarded_commit_refused_returns_the_standing_file_and_removes_its_own(
    disk: DiskTier,
) -> None:
    path, dest = disk.temp_file()
    dest.write(b"newer body")
    dest.close()
    newer = disk.commit_file("obj", path, entry(None, 200.0, "e2"))
    assert newer is not None
    path, dest = disk.temp_file()
    dest.write(b"older body")
    dest.close()
    standing = disk.commit_file("obj", path, entry(None, 150.0, "e1"), Guard(150.0, None))
    assert standing is not None
    assert standing.value == newer.value, "the standing entry resolves to its file's path"
    assert standing.version == "e2"
    assert Path(standing.value).read_bytes() == b"newer body"
    assert os.listdir(disk.objects_dir) == [os.path.basename(newer.value)]
    assert os.listdir(disk.tmp_dir) == []


_RACER = """
import sys
from tiered_cache import _serial
from tiered_cache._disk import DiskTier
from tiered_cache._entry import Entry, Guard

disk = DiskTier(sys.argv[1])
offset = float(sys.argv[2])  # 1: the older writer of each round, 2: the newer one
print("ready", flush=True)
for line in sys.stdin:
    base = float(line)
    seen = (base, base + 60, None)  # what both loads of this round saw
    stamp = base + offset
    mine = Entry(f"by {offset:g} in {base:g}", stamp, stamp + 60, stamp + 90)
    payload = _serial.dumps(mine.value, _serial.SAFE)
    disk.put("k", mine, payload, 60.0, Guard(stamp, seen))
    print("done", flush=True)
"""


def test_two_processes_racing_guarded_puts_never_leave_the_older_standing(
    disk: DiskTier,
) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_RACER), disk.root, offset],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for offset in ("1", "2")
    ]
    rounds = 500
    wrong = []
    try:
        for racer in racers:
            assert racer.stdout is not None
            assert racer.stdout.readline().strip() == "ready"
        for r in range(rounds):
            base = 10.0 * (r + 1)
            put(disk, "k", entry("start", base))  # the entry both racers saw
            for racer in racers:  # both go at once
                assert racer.stdin is not None
                racer.stdin.write(f"{base}\n")
                racer.stdin.flush()
            for racer in racers:
                assert racer.stdout is not None
                assert racer.stdout.readline().strip() == "done"
            stored = disk.get("k")
            if stored is None or stored.stored_at != base + 2:
                wrong.append((r, None if stored is None else stored.value))
    finally:
        for racer in racers:
            if racer.stdin is not None:
                racer.stdin.close()
            racer.wait(30)
    assert wrong == [], f"{len(wrong)} of {rounds} rounds left the older write standing"
    assert [racer.returncode for racer in racers] == [0, 0]
