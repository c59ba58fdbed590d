"""Item 8: the cache directory is made with mode 0700; a symlink, a directory owned by another
user, one writable by group or others, or a non-directory raises UnsafeCacheDirectoryError with
a message that says what to fix. The default cache logs it and runs memory-only.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import tiered_cache as tiered
from tiered_cache.exceptions import TieredCacheError, UnsafeCacheDirectoryError


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_directory_and_subdirectories_are_made_0700(tmp_path: Path) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        cache = tiered.TieredCache(directory=str(tmp_path / "parent" / "c"))
        cache.set("k", "v")
    finally:
        os.umask(old)
    root = tmp_path / "parent" / "c"
    assert _mode(root) == 0o700
    for sub in ("db", "objects", "tmp", "locks"):
        assert _mode(root / sub) == 0o700, sub
    assert cache.get("k") == "v"


def test_existing_private_directory_is_accepted(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir(mode=0o700)
    os.chmod(root, 0o700)
    tiered.TieredCache(directory=str(root)).set("k", "v")
    assert tiered.TieredCache(directory=str(root)).get("k") == "v"


def _assert_refused(path: Path, problem: str) -> None:
    with pytest.raises(UnsafeCacheDirectoryError) as info:
        tiered.TieredCache(directory=str(path))
    message = str(info.value)
    assert problem in message
    assert str(path) in message
    assert "TIERED_CACHE_DIR" in message  # says what to do
    assert isinstance(info.value, TieredCacheError)


def test_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    link = tmp_path / "c"
    link.symlink_to(target)
    _assert_refused(link, "is a symlink")
    assert not os.listdir(target)  # nothing was written through the link


def test_directory_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir(mode=0o700)
    other = 65534 if os.geteuid() != 65534 else 65533
    try:
        os.chown(root, other, -1)
    except PermissionError:
        pytest.skip("changing a directory's owner needs root (CI runs as root)")
    _assert_refused(root, "is owned by uid")


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702, 0o720, 0o1777])
def test_directory_writable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    root = tmp_path / "c"
    root.mkdir()
    os.chmod(root, mode)
    _assert_refused(root, "writable by group or others")


def test_readable_by_others_but_not_writable_is_accepted(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    os.chmod(root, 0o755)  # noqa: S103 - on purpose
    tiered.TieredCache(directory=str(root)).set("k", "v")


def test_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c"
    path.write_text("not a directory")
    _assert_refused(path, "is not a directory")


def test_uncreatable_directory_is_refused_with_advice(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    advice = r"cannot (create|use) the cache directory.*TIERED_CACHE_DIR"
    with pytest.raises(UnsafeCacheDirectoryError, match=advice):
        tiered.TieredCache(directory=str(blocker / "c"))


def test_disk_false_never_touches_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "c"
    path.mkdir()
    os.chmod(path, 0o777)  # noqa: S103 - on purpose
    cache = tiered.TieredCache(directory=str(path), disk=False)
    cache.set("k", "v")
    assert not os.listdir(path)


def test_default_cache_with_unsafe_directory_logs_and_runs_memory_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    unsafe = tmp_path / "shared"
    unsafe.mkdir()
    os.chmod(unsafe, 0o777)  # noqa: S103 - on purpose
    monkeypatch.setenv("TIERED_CACHE_DIR", str(unsafe))
    with caplog.at_level(logging.ERROR, logger="tiered_cache"):
        cache = tiered.default_cache()
    assert cache.directory is None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "memory-only" in errors[0].getMessage()
    assert "writable by group or others" in errors[0].getMessage()

    calls: list[int] = []

    @tiered.cache(key="k")
    def f() -> int:
        calls.append(1)
        return 1

    assert f() == f() == 1
    assert calls == [1]
    assert not os.listdir(unsafe)


def test_symlinked_default_directory_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "attacker"
    target.mkdir(mode=0o700)
    link = tmp_path / "tiered-cache"
    link.symlink_to(target)
    monkeypatch.setenv("TIERED_CACHE_DIR", str(link))
    cache: Any = tiered.default_cache()
    cache.set("k", "v")
    assert cache.get("k") == "v"
    assert not os.listdir(target)
