"""Items 1 and 6 (disk half): TTL metadata stored with each entry, keys hashed on disk, the byte
budget that counts every file the cache writes, and file-backed entries. Real diskcache, real
files under tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import pytest

from tiered_cache import _entry, _serial
from tiered_cache._core import NOT_MODIFIED
from tiered_cache._disk import GIB, DiskTier, default_budget, disk_key
from tiered_cache.exceptions import TieredCacheError


def _raw_row(db_dir: str, key: str) -> bytes | None:
    import diskcache

    plain = diskcache.Cache(db_dir)
    try:
        return plain.get(disk_key(key))  # type: ignore[no-any-return]
    finally:
        plain.close()


def _walk_bytes(root: str) -> int:
    """An independent count of what the directory holds (every file and directory)."""
    total = os.lstat(root).st_size
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total


def test_ttl_metadata_is_written_with_each_entry(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=60, stale_if_error=30)
    start = fake_clock()
    cache.set("k", {"v": 1})
    raw = _raw_row(cache._disk.db_dir, "k")
    assert raw is not None
    entry = _entry.decode("k", raw, _serial.SAFE)
    assert entry.value == {"v": 1}
    assert entry.stored_at == start
    assert entry.expires_at == start + 60
    assert entry.stale_until == start + 90
    assert entry.version is None


def test_version_is_written_with_a_file_entry(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=100)

    def fetch(dest: IO[bytes], version: str | None) -> str | None:
        dest.write(b"object body")
        return '"etag-1"'

    path = cache.load_file("s3://b/k", fetch)
    assert Path(path).read_bytes() == b"object body"
    raw = _raw_row(cache._disk.db_dir, "s3://b/k")
    assert raw is not None
    entry = _entry.decode("s3://b/k", raw, _serial.SAFE)
    assert entry.version == '"etag-1"'
    assert entry.stored_at == fake_clock()
    assert entry.expires_at == fake_clock() + 100


def test_keys_never_become_file_or_row_names(make_cache: Any) -> None:
    cache = make_cache()
    nasty = ["../../etc/passwd", "a/b\\c", "k" * 5000, "\x00nul", "CON", " spaced "]
    for key in nasty:
        cache.set(key, "v")
    names: list[str] = []
    for _dirpath, dirnames, filenames in os.walk(cache._disk.root):
        names += dirnames + filenames
    for key in nasty:
        assert all(key not in name for name in names if len(key) > 3)
    import diskcache

    plain = diskcache.Cache(cache._disk.db_dir)
    try:
        stored = set(plain)
    finally:
        plain.close()
    assert stored == {disk_key(k) for k in nasty}
    assert all(len(k) == 64 for k in stored)
    reader = make_cache()
    assert [reader.get(k) for k in nasty] == ["v"] * len(nasty)


def test_disk_budget_holds_after_every_write(make_cache: Any) -> None:
    budget = 512 * 1024
    cache = make_cache(disk_bytes=budget, memory_items=4)
    disk = cache._disk
    value = "x" * 8000
    item = len(_entry.encode(f"key-{0:04d}", _entry.Entry(value, 0, 0, 0), b"x" * 8005, 0))
    written = 0
    i = 0
    while written < 2 * budget:
        cache.set(f"key-{i:04d}", value)
        written += item
        i += 1
        assert disk.usage() <= budget + item, f"over budget after write {i}"
        assert _walk_bytes(disk.root) <= budget + item, f"walk over budget after write {i}"
    assert disk.evictions > 0
    assert cache.stats()["evictions"] >= disk.evictions
    # Least recently stored went first; the newest survives on disk.
    reader = make_cache()
    assert reader.get(f"key-{i - 1:04d}") == value
    assert reader.get("key-0000") is None


def test_value_larger_than_the_budget_is_not_stored_on_disk(make_cache: Any) -> None:
    cache = make_cache(disk_bytes=200 * 1024)
    cache.set("big", "x" * 300 * 1024)
    assert cache.get("big") == "x" * 300 * 1024  # memory still has it
    assert _raw_row(cache._disk.db_dir, "big") is None
    assert make_cache().get("big") is None
    cache.set("small", "y")
    assert cache._disk.usage() <= 200 * 1024 + 300 * 1024


def test_object_file_counts_in_budget_and_oversized_object_is_a_clear_error(
    make_cache: Any,
) -> None:
    cache = make_cache(disk_bytes=256 * 1024)

    def body(size: int) -> Any:
        def fetch(dest: IO[bytes], version: str | None) -> str | None:
            dest.write(b"z" * size)
            return "v1"

        return fetch

    for i in range(8):
        cache.load_file(f"obj{i}", body(60 * 1024))
        assert cache._disk.usage() <= 256 * 1024 + 60 * 1024 + 1024
        assert _walk_bytes(cache._disk.root) <= 256 * 1024 + 60 * 1024 + 1024
    with pytest.raises(TieredCacheError, match="TIERED_CACHE_DISK_BYTES") as info:
        cache.load_file("huge", body(300 * 1024))
    assert str(300 * 1024) in str(info.value)
    assert str(256 * 1024) in str(info.value)
    assert not os.listdir(cache._disk.tmp_dir)


def test_default_budget_fits_lambda_tmp(tmp_path: Path, tmpfs: Any) -> None:
    assert default_budget(str(tmp_path)) <= GIB
    assert default_budget(str(tmp_path / "does-not-exist")) == 256 * 2**20
    small = tmpfs(tmp_path / "small", size="8m")
    assert default_budget(str(small)) == 4 * 2**20  # half of the file system
    lambda_tmp = tmpfs(tmp_path / "lambda", size="512m")
    assert default_budget(str(lambda_tmp)) == 256 * 2**20
    disk = DiskTier(str(small / "c"))
    assert disk.budget == 4 * 2**20


def test_budget_must_be_positive(cache_dir: str) -> None:
    with pytest.raises(ValueError, match="disk_bytes"):
        DiskTier(cache_dir, budget=0)


def test_delete_and_clear_reach_the_disk(make_cache: Any) -> None:
    cache = make_cache()
    cache.set("a", 1)
    cache.set("b", 2)
    other = make_cache()
    assert other.delete("a") is True
    assert other.delete("a") is False
    assert make_cache().get("a") is None
    other.clear()
    assert make_cache().get("b") is None
    assert cache.get("b") == 2  # another cache's memory tier is its own


# -- file-backed entries (the core's side of S3 objects) ----


def test_file_entry_revalidates_with_version_and_not_modified(
    make_cache: Any, fake_clock: Any
) -> None:
    cache = make_cache(ttl=10)
    calls: list[str | None] = []

    def fetch(dest: IO[bytes], version: str | None) -> str | None:
        calls.append(version)
        if version == "e1":
            return NOT_MODIFIED
        dest.write(b"body")
        return "e1"

    first = cache.load_file("obj", fetch)
    assert cache.load_file("obj", fetch) == first  # fresh: no fetch
    assert calls == [None]
    fake_clock.advance(10)
    second = cache.load_file("obj", fetch)
    assert second == first
    assert calls == [None, "e1"]
    assert Path(second).read_bytes() == b"body"
    # Renewed: fresh again for another ttl, also for another process's cache.
    fake_clock.advance(9)
    assert make_cache(ttl=10).load_file("obj", fetch) == first
    assert calls == [None, "e1"]
    assert not os.listdir(cache._disk.tmp_dir)


def test_file_entry_replaced_when_changed_and_old_file_removed(
    make_cache: Any, fake_clock: Any
) -> None:
    cache = make_cache(ttl=10)
    bodies = iter([b"one", b"two"])

    def fetch(dest: IO[bytes], version: str | None) -> str | None:
        dest.write(next(bodies))
        return "e" + str(version)

    first = cache.load_file("obj", fetch)
    fake_clock.advance(11)
    second = cache.load_file("obj", fetch)
    assert second != first
    assert Path(second).read_bytes() == b"two"
    assert not os.path.exists(first)
    assert os.listdir(cache._disk.objects_dir) == [os.path.basename(second)]
    assert cache.delete("obj") is True
    assert not os.listdir(cache._disk.objects_dir)


def test_file_fetch_error_leaves_no_partial_file_and_serves_stale_in_window(
    make_cache: Any, fake_clock: Any
) -> None:
    cache = make_cache(ttl=10)

    def good(dest: IO[bytes], version: str | None) -> str | None:
        dest.write(b"good")
        return "e1"

    def broken(dest: IO[bytes], version: str | None) -> str | None:
        dest.write(b"half")
        raise ConnectionError("origin down")

    path = cache.load_file("obj", good)
    fake_clock.advance(12)
    assert cache.load_file("obj", broken, stale_if_error=5) == path
    assert cache.stats()["stale_served"] == 1
    with pytest.raises(ConnectionError, match="origin down"):
        cache.load_file("obj", broken)  # no stale window
    fake_clock.advance(10)
    with pytest.raises(ConnectionError, match="origin down"):
        cache.load_file("obj", broken, stale_if_error=5)  # past the window
    assert not os.listdir(cache._disk.tmp_dir)
    assert Path(path).read_bytes() == b"good"


def test_file_entry_whose_file_vanished_is_fetched_again(make_cache: Any) -> None:
    cache = make_cache(ttl=100)
    calls: list[str | None] = []

    def fetch(dest: IO[bytes], version: str | None) -> str | None:
        calls.append(version)
        dest.write(b"data")
        return "e1"

    path = cache.load_file("obj", fetch)
    os.remove(path)
    again = cache.load_file("obj", fetch)
    assert Path(again).read_bytes() == b"data"
    assert calls == [None, None]  # the vanished file's version is not offered


def test_not_modified_without_a_version_is_an_error(make_cache: Any) -> None:
    cache = make_cache()
    with pytest.raises(TieredCacheError, match="NOT_MODIFIED"):
        cache.load_file("obj", lambda dest, version: NOT_MODIFIED)


def test_file_entries_need_the_disk_tier(make_cache: Any) -> None:
    cache = make_cache(disk=False)
    with pytest.raises(TieredCacheError, match="TIERED_CACHE_DISABLE_DISK"):
        cache.load_file("obj", lambda dest, version: "e")


def test_killed_download_leaves_only_a_temp_file_that_is_swept(make_cache: Any) -> None:
    cache = make_cache()
    disk = cache._disk
    path, handle = disk.temp_file()
    handle.write(b"partial")
    disk._sweep(disk._db())
    assert os.path.exists(path)  # its writer still holds the flock
    handle.close()  # the writer is gone
    disk._sweep(disk._db())
    assert not os.path.exists(path)
    assert cache.get("anything") is None


def test_orphan_object_file_is_swept_and_referenced_one_kept(make_cache: Any) -> None:
    cache = make_cache()
    path = cache.load_file("obj", lambda dest, version: dest.write(b"x") and "e")
    disk = cache._disk
    orphan = os.path.join(disk.objects_dir, "0" * 64 + "-dead.obj")
    Path(orphan).write_bytes(b"orphan")
    old = 1_000_000.0
    os.utime(orphan, (old, old))
    os.utime(path, (old, old))
    disk._sweep(disk._db())
    assert not os.path.exists(orphan)
    assert os.path.exists(path)


def test_damaged_file_envelope_is_a_miss(make_cache: Any) -> None:
    cache = make_cache()
    disk = cache._disk
    path = cache.load_file("obj", lambda dest, version: dest.write(b"abc") and "e")
    with open(path, "ab") as f:
        f.write(b"grown")  # size no longer matches the envelope
    assert make_cache().get("obj") is None
    entry = _entry.Entry(["../escape.obj", 3], 0.0, 1e12, 1e12, flags=_entry.FLAG_FILE)
    disk.put("bad", entry, _serial.dumps(entry.value, _serial.SAFE), 60.0)
    assert make_cache().get("bad") is None


def test_payload_name_reads_object_names() -> None:
    from tiered_cache._disk import payload_name

    assert payload_name(_serial.dumps(["a.obj", 3], _serial.SAFE)) == "a.obj"
    assert payload_name(b"garbage") is None
    assert payload_name(_serial.dumps([], _serial.SAFE)) is None


def test_usage_counts_database_objects_and_locks(make_cache: Any) -> None:
    cache = make_cache()
    before = cache._disk.usage()
    cache.load_file("obj", lambda dest, version: dest.write(b"q" * 100_000) and "e")
    assert cache._disk.usage() >= before + 100_000
    assert cache._disk.usage() == _walk_bytes(cache._disk.root)


def test_download_whose_temp_file_vanished_is_a_clear_error(make_cache: Any) -> None:
    cache = make_cache()

    def fetch(dest: IO[bytes], version: str | None) -> str | None:
        dest.write(b"body")
        for part in Path(cache._disk.tmp_dir).iterdir():
            part.unlink()  # gone before the commit
        return "e"

    with pytest.raises(TieredCacheError, match="could not") as info:
        cache.load_file("obj", fetch)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert cache.load_file("obj", lambda dest, version: dest.write(b"ok") and "e")


def test_unusable_temp_directory_is_a_clear_error(make_cache: Any) -> None:
    cache = make_cache()
    cache.get("open")
    os.rmdir(cache._disk.tmp_dir)
    Path(cache._disk.tmp_dir).write_text("not a directory")
    with pytest.raises(TieredCacheError, match="could not write the object") as info:
        cache.load_file("obj", lambda dest, version: dest.write(b"x") and "e")
    assert isinstance(info.value.__cause__, OSError)


def test_download_keeps_its_lock_until_it_left_tmp(make_cache: Any) -> None:
    """Another process's sweep between the end of a download and its commit keeps the file."""
    cache = make_cache()
    disk = cache._disk
    commit = disk.commit_file

    def sweep_then_commit(key: str, temp_path: str, entry: Any, guard: Any = None) -> Any:
        disk._sweep(disk._db())  # what a concurrent process's sweep of tmp/ would do right now
        assert os.path.exists(temp_path), "a download still being committed was swept"
        return commit(key, temp_path, entry, guard)

    disk.commit_file = sweep_then_commit

    def fetch(dest: IO[bytes], version: str | None) -> str:
        dest.write(b"body")
        return "etag-1"

    path = cache.load_file("obj", fetch)
    with open(path, "rb") as f:
        assert f.read() == b"body"
    assert os.listdir(disk.tmp_dir) == []


# -- the tier protocol ----


def test_the_disk_tier_speaks_the_tier_protocol(cache_dir: str) -> None:
    disk = DiskTier(cache_dir)
    other = DiskTier(cache_dir)  # another store on the same directory: it stands for a process
    try:
        assert (disk.name, disk.remote, disk.available) == ("disk", False, True)
        assert set(disk.stats()) == {
            "disk_errors",
            "disk_corrupt",
            "disk_lock_timeouts",
            "disk_evictions",
        }
        value = _entry.Entry("v", 10.0, 70.0, 100.0, "e1")
        assert disk.put("k", value, _serial.dumps("v", _serial.SAFE), 60.0) is None
        got = other.get("k")
        assert got is not None
        assert (got.value, got.identity, got.is_tombstone) == ("v", value.identity, False)
        with disk.lock("k", 1.0) as held:
            assert held
            with other.lock("k", 0.0) as second:
                assert not second, "two holders of one key's lock"
        with other.lock("k", 0.0) as again:
            assert again, "the lock was not released"
        assert other.delete("k", _entry.tombstone(20.0)) is True
        mark = disk.get("k")
        assert mark is not None
        assert mark.is_tombstone
        assert mark.value is _entry.MISSING
        assert mark.stored_at == 20.0
        disk.clear()
        assert other.get("k") is None
    finally:
        disk._close()
        other._close()


def test_a_value_too_large_for_the_budget_replaces_the_old_row_by_nothing(cache_dir: str) -> None:
    disk = DiskTier(cache_dir, budget=64 * 1024)
    try:
        disk.put("k", _entry.Entry("small", 1.0, 2.0, 3.0), _serial.dumps("small", "safe"), 1.0)
        big = "x" * 100 * 1024
        too_big = _entry.Entry(big, 5.0, 6.0, 7.0)
        assert disk.put("k", too_big, _serial.dumps(big, "safe"), 1.0) is None
        assert disk.get("k") is None, "an older value stood while memory held the newer one"
    finally:
        disk._close()
