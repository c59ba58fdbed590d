"""A sweep that finds a download's temp file between its creation and its lock.

Another process's sweep removes temp files no live writer holds. A writer creates its file and
then locks it: a sweep that looks in between takes the file for a dead writer's. No public
seam can put a sweep between those two system calls, so this test wraps ``fcntl.lockf`` in the
object store's module to run a real sweep (the module's own) at exactly that moment, as a
second process would. Without the fix, the download went on into an unlinked file and the
load then failed on a file that no longer existed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tiered_cache import _objects


def test_a_temp_file_swept_before_its_lock_is_replaced_by_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects_dir, tmp_dir = tmp_path / "objects", tmp_path / "tmp"
    objects_dir.mkdir()
    tmp_dir.mkdir()
    store = _objects.ObjectStore(str(objects_dir), str(tmp_dir), time.time)
    real_lockf = _objects.fcntl.lockf
    swept: list[str] = []

    def lockf_after_a_sweep(fd: int, operation: int, *args: Any) -> Any:
        if operation == _objects.fcntl.LOCK_EX and not swept:  # the writer's blocking lock
            for name in os.listdir(tmp_dir):
                swept.append(name)
                _objects._remove_if_unlocked(str(tmp_dir / name))  # the sweep, in between
        return real_lockf(fd, operation, *args)

    monkeypatch.setattr(_objects.fcntl, "lockf", lockf_after_a_sweep)
    path, file = store.temp_file()
    try:
        assert len(swept) == 1
        assert not (tmp_dir / swept[0]).exists()  # the first one was swept
        assert os.path.basename(path) != swept[0]  # so the writer made another
        file.write(b"payload")
        file.flush()
        assert Path(path).read_bytes() == b"payload"  # the download lands in a linked file
    finally:
        file.close()
