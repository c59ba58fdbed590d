"""Issue 5, item 12: a hostile /tmp.

A symlinked, foreign or world-writable cache root is refused; planted pickles never run;
keys such as ``../../x``, keys with NUL bytes and 10 KB keys round-trip, and no file appears
outside the cache root (every name under it is a hash, never a key).
"""

from __future__ import annotations

import os
import pickle
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

import tiered_cache as tiered
from tiered_cache import _config
from tiered_cache._disk import disk_key
from tiered_cache._entry import FLAG_PICKLE, Entry, encode
from tiered_cache.exceptions import UnsafeCacheDirectoryError

from .conftest import files_under

HOSTILE_KEYS = [
    "../../x",
    "../../../../../../../../etc/passwd",
    "/tmp/absolute",
    "a/../../b",
    "..",
    ".",
    "",
    "nul\x00byte",
    "\x00",
    "k" * 10_240,
    "é" * 5_000,
    "line\nbreak\r\t",
    "lone surrogate \udc80 \ud800",
    "*?[]{}$(rm -rf /)`;|&",
    "CON",
    "objects",
    "tmp/../db/cache.db",
]

HEX_NAME = re.compile(r"^[0-9a-f]{64}-[0-9a-f]{16}\.obj$")
ALLOWED = {
    "db",
    "objects",
    "tmp",
    "locks",
    "db/cache.db",
    "db/cache.db-wal",
    "db/cache.db-shm",
}


class Payload:
    """Unpickling this creates ``marker``: proof that a planted pickle ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


# -- the cache root ------------------------------------------------------------------------


def test_symlinked_root_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "attacker"
    target.mkdir(mode=0o700)
    link = tmp_path / "cache"
    link.symlink_to(target)
    with pytest.raises(UnsafeCacheDirectoryError, match="symlink"):
        tiered.TieredCache(directory=str(link))
    assert list(target.iterdir()) == [], "something was written through the symlink"


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o722])
def test_group_or_world_writable_root_is_refused(tmp_path: Path, mode: int) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    os.chmod(root, mode)
    with pytest.raises(UnsafeCacheDirectoryError, match="writable by group or others"):
        tiered.TieredCache(directory=str(root))
    assert list(root.iterdir()) == []


def test_root_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a directory owned by another user needs root")
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    os.chown(root, 65534, 65534)
    with pytest.raises(UnsafeCacheDirectoryError, match="owned by uid 65534"):
        tiered.TieredCache(directory=str(root))


def test_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.write_text("not a directory")
    with pytest.raises(UnsafeCacheDirectoryError):
        tiered.TieredCache(directory=str(root))


def test_default_cache_runs_memory_only_on_a_hostile_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "attacker"
    target.mkdir(mode=0o700)
    (tmp_path / "cache").symlink_to(target)
    monkeypatch.setenv("TIERED_CACHE_DIR", str(tmp_path / "cache"))
    _config._reset_default_cache()
    cache = tiered.default_cache()  # a cold start never aborts
    assert cache.directory is None
    assert cache.get_or_load("k", lambda: "v") == "v"
    assert list(target.iterdir()) == []
    assert any("symlink" in r.getMessage() for r in caplog.records)


def test_created_root_is_private(tmp_path: Path) -> None:
    cache = tiered.TieredCache(directory=str(tmp_path / "a" / "cache"))
    cache.set("k", "v")
    root = cache.directory
    assert root is not None
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o700
    for rel in files_under(root):  # files inside may be 0644: nobody else can traverse 0700
        info = os.lstat(os.path.join(root, rel))
        if stat.S_ISDIR(info.st_mode):
            assert stat.S_IMODE(info.st_mode) == 0o700, f"{rel} is mode {info.st_mode:o}"


def test_symlinked_subdirectory_is_not_followed(
    tmp_path: Path, make_cache: Callable[..., Any]
) -> None:
    """A same-user attacker swaps objects/ for a symlink: nothing outside is touched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / f"{'0' * 64}-precious.obj"
    victim.write_bytes(b"keep me")
    os.utime(victim, (1, 1))  # looks like an ancient orphan to the sweep
    root = tmp_path / "c"
    first = make_cache(directory=str(root))
    first.set("k", "v")
    first._disk._close()
    os.rmdir(root / "objects")
    (root / "objects").symlink_to(outside)

    cache = make_cache(directory=str(root))
    cache.get("k")
    try:
        cache.load_file("obj", lambda dest, _v: dest.write(b"x") and "e")
    except tiered.exceptions.TieredCacheError:
        pass  # refusing the subdirectory is fine
    assert victim.read_bytes() == b"keep me", "the sweep deleted a file outside the cache root"
    assert sorted(p.name for p in outside.iterdir()) == [victim.name], "a file escaped the root"


# -- planted pickles -----------------------------------------------------------------------


def test_planted_pickles_never_run(tmp_path: Path, make_cache: Callable[..., Any]) -> None:
    import diskcache

    marker = str(tmp_path / "PWNED")
    cache = make_cache()
    cache.set("seed", "v")  # creates the store
    disk = cache._disk
    disk._close()
    evil = Payload(marker)

    planted = diskcache.Cache(disk.db_dir)  # diskcache's own Disk pickles what it stores
    planted.set(disk_key("pickled-row"), evil)
    planted.set(disk_key("pickled-file"), [evil, "x" * 100_000])  # large: a pickle file
    planted.set(disk_key("raw-pickle"), pickle.dumps(evil))  # bytes: stored raw
    envelope = encode("flagged", Entry(None, 0.0, 1e12, 1e12), pickle.dumps(evil), FLAG_PICKLE)
    planted.set(disk_key("flagged"), envelope)  # a well-formed envelope flagged as pickle
    planted.close()
    with open(os.path.join(disk.objects_dir, f"{disk_key('obj')}-{'0' * 16}.obj"), "wb") as f:
        f.write(pickle.dumps(evil))

    reader = make_cache()
    for key in ("pickled-row", "pickled-file", "raw-pickle", "flagged", "obj"):
        assert reader.get(key) is None, key
        assert reader.get_or_load(key, lambda: "clean") == "clean"
        assert make_cache().get(key) == "clean"
    assert not os.path.exists(marker), "a planted pickle was unpickled"
    assert reader.stats()["disk_corrupt"] >= 4


# -- hostile keys --------------------------------------------------------------------------


def test_hostile_keys_round_trip_and_stay_inside_the_root(
    tmp_path: Path, make_cache: Callable[..., Any]
) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    root = sandbox / "deep" / "cache"
    cache = make_cache(directory=str(root))
    outside_before = files_under(str(tmp_path))

    def fetch(dest: IO[bytes], _v: str | None) -> str:
        dest.write(b"object")
        return "etag"

    for i, key in enumerate(HOSTILE_KEYS):
        cache.set(key, {"i": i})
        assert cache.get(key) == {"i": i}
        assert make_cache(directory=str(root)).get(key) == {"i": i}, repr(key[:40])
        assert cache.get_or_load(key + "/load", lambda i=i: [i]) == [i]
        path = cache.load_file(key + "/file", fetch)
        assert os.path.dirname(path) == os.path.join(str(root), "objects")
    for i, key in enumerate(HOSTILE_KEYS):  # no two keys collide
        assert make_cache(directory=str(root)).get(key) == {"i": i}
    assert cache.delete("../../x")
    assert make_cache(directory=str(root)).get("../../x") is None

    outside_after = files_under(str(tmp_path))
    new = {p for p in outside_after - outside_before if not p.startswith("sandbox/deep")}
    assert new == set(), f"files appeared outside the cache root: {sorted(new)}"
    for rel in files_under(str(root)):
        assert (
            rel in ALLOWED
            or HEX_NAME.match(os.path.basename(rel))
            or (re.match(r"^locks/\d\d\.lock$", rel))
        ), f"unexpected name under the cache root: {rel!r}"
