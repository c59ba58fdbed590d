"""The object store: file-backed entries (S3 objects) as files inside the disk tier's directory.

Layout (both directories are made, with mode 0700, by the disk tier)::

    objects/   committed objects, named ``<sha256(key)>-<random>.obj``
    tmp/       downloads in flight, ``<random>.part``, each locked while it is written

A download is written into a temp file and moved into ``objects/`` whole (``os.replace``), so
no reader ever sees part of one. The database row that refers to an object holds its name, size
and modification time (:func:`file_payload`); an object whose file was changed after it was
stored (truncated, grown, zeroed, rewritten) reads as a miss (:meth:`ObjectStore.resolve`).

Liveness of a download is a POSIX record lock (``lockf``) on its temp file, held by the writer
as long as the file is open: the kernel drops it when the writer dies, even by ``kill -9``, and
a forked child never inherits it (unlike ``flock``, which belongs to the open file description
a child shares). A sweep removes temp files nobody holds, and object files that no row refers
to once they are older than a minute (a younger one may be a commit in flight in another
process). Within one process a POSIX lock does not exclude another descriptor of the same
process, so the process remembers the temp files it is writing (in every store of the process)
and never sweeps them.

Thread-safe and process-safe. Nothing here knows about time or freshness; errors are raised
to the disk tier, which counts them (see ``_disk``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import threading
import weakref
from collections.abc import Callable
from typing import IO, Any, Final

from . import _fork, _serial
from ._entry import Entry

__all__ = ["ObjectStore", "TempFile", "file_payload", "object_fields", "payload_name"]

#: Objects younger than this are never swept: their row may still be on its way.
ORPHAN_AGE: Final = 60.0
_BUSY: Final = (errno.EAGAIN, errno.EACCES)


class _Writing:
    """The temp files this process is writing, in every store: a POSIX lock of this process
    does not stop this process's own sweep, so the sweep must know them (by their open file)."""

    def __init__(self) -> None:
        self.files: dict[str, weakref.ref[IO[bytes]]] = {}
        self.guard = threading.Lock()

    def add(self, path: str, file: IO[bytes]) -> None:
        with self.guard:
            if len(self.files) > 64:
                self._prune()
            self.files[path] = weakref.ref(file)

    def discard(self, path: str) -> None:
        with self.guard:
            self.files.pop(path, None)

    def open_paths(self) -> set[str]:
        """Paths whose file is still open in this process."""
        with self.guard:
            self._prune()
            return set(self.files)

    def _prune(self) -> None:
        for path, ref in list(self.files.items()):
            file = ref()
            if file is None or file.closed:
                del self.files[path]

    def after_fork(self) -> None:
        # The parent's downloads are the parent's: a child's sweep judges them by their locks,
        # like any other process's (the child holds none of them).
        self.guard = threading.Lock()
        self.files = {}


class TempFile(io.BufferedWriter):
    """A download's temp file (binary, seekable) that also says how large an object may be.

    ``budget``: the disk budget of the store it belongs to, in bytes (None: not known), so a
    fetch can refuse an object that could never be stored before any of its body moves.
    """

    budget: int | None = None


_writing = _Writing()
_fork.after_fork_in_child(_writing.after_fork)


def file_payload(path: str) -> bytes:
    """The stored form of an object file: its name, size and modification time (ns)."""
    info = os.stat(path)
    return _serial.dumps([os.path.basename(path), info.st_size, info.st_mtime_ns], _serial.SAFE)


def object_fields(data: bytes | None) -> tuple[str, int] | None:
    """(name, size) of the object a file envelope's payload refers to; None if it is not one."""
    if data is None:
        return None
    with contextlib.suppress(ValueError):
        value = _serial.loads(data, _serial.SAFE)
        if type(value) is list and len(value) >= 2:
            name, size = value[0], value[1]
            if valid_name(name) and type(size) is int and size >= 0:
                return name, size
    return None


def payload_name(data: bytes) -> str | None:
    """The object name held by a file envelope's payload (or by the raw bytes), if any."""
    with contextlib.suppress(ValueError):
        value = _serial.loads(data, _serial.SAFE)
        if type(value) is list and value and type(value[0]) is str:
            return value[0]
    return None


def valid_name(name: Any) -> bool:
    """True for a name this store could have made: a plain file name ending in ``.obj``."""
    return (
        type(name) is str
        and name.endswith(".obj")
        and os.sep not in name
        and "\x00" not in name
        and not name.startswith(".")
    )


class ObjectStore:
    """Object files and downloads in flight; see the module docstring.

    ``clock`` is the wall clock the orphan age is measured with (the disk tier's); ``budget``
    (bytes, None: unknown) is what each temp file reports as its ``budget``.
    """

    def __init__(
        self,
        objects_dir: str,
        tmp_dir: str,
        clock: Callable[[], float],
        budget: int | None = None,
    ) -> None:
        self.objects_dir = objects_dir
        self.tmp_dir = tmp_dir
        self._clock = clock
        self.budget = budget

    # -- downloads ------------------------------------------------------------------------------

    def temp_file(self) -> tuple[str, IO[bytes]]:
        """A new private file in ``tmp/`` (a :class:`TempFile`), locked until it is closed.

        A download killed halfway leaves only this file, which no reader ever takes for an
        object; a later sweep sees its lock gone and removes it.
        """
        # Another process's sweep may find the file between its creation and the lock, take
        # it for a dead writer's and remove it (it removes while it holds the lock, so once the
        # lock is ours the file is either still linked or gone): then make another.
        for _ in range(8):
            path = os.path.join(self.tmp_dir, os.urandom(16).hex() + ".part")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_nlink == 0:  # swept before the lock was ours
                    os.close(fd)
                    continue
                file = TempFile(io.FileIO(fd, "wb"))
                file.budget = self.budget
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.remove(path)
                raise
            _writing.add(path, file)
            return path, file
        raise OSError(f"tiered-cache: no temporary file in {self.tmp_dir} outlived its sweeps")

    def place(self, dkey: str, temp_path: str) -> tuple[str, bytes, int]:
        """Move a finished download into ``objects/``: (final path, its payload, its size).

        Raises ``OSError`` (the temp file is removed then).
        """
        _writing.discard(temp_path)
        final = os.path.join(self.objects_dir, f"{dkey}-{os.urandom(8).hex()}.obj")
        try:
            os.replace(temp_path, final)
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(temp_path)
            raise
        try:
            info = os.stat(final)
        except OSError:
            self.remove(os.path.basename(final))
            raise
        payload = _serial.dumps(
            [os.path.basename(final), info.st_size, info.st_mtime_ns], _serial.SAFE
        )
        return final, payload, info.st_size

    def temp_bytes(self) -> int:
        """Bytes in ``tmp/`` now (downloads in flight anywhere, and what killed ones left)."""
        total = 0
        with contextlib.suppress(OSError), os.scandir(self.tmp_dir) as it:
            for item in it:
                with contextlib.suppress(OSError):
                    total += item.stat(follow_symlinks=False).st_size
        return total

    # -- objects ----------------------------------------------------------------------------------

    def resolve(self, entry: Entry) -> Entry:
        """``entry`` (a file envelope) with its object's absolute path as the value.

        Raises ``ValueError`` for a bad reference, a missing file, or a file changed since it
        was stored: anything that rewrote it changed its size or modification time (a content
        hash would read the whole object instead).
        """
        value = entry.value
        if type(value) is not list or len(value) != 3:
            raise ValueError("bad object reference")
        name, size, mtime_ns = value
        if not valid_name(name):
            raise ValueError("bad object name")
        path = os.path.join(self.objects_dir, name)
        try:
            info = os.stat(path)
        except OSError as exc:
            raise ValueError(f"object file missing: {exc}") from exc
        if info.st_size != size or info.st_mtime_ns != mtime_ns:
            raise ValueError("object file was changed after it was stored")
        result = entry.replace_value(path, entry.flags)
        result.size = len(path)
        return result

    def remove(self, name: str | None) -> None:
        """Remove the object called ``name`` (a name this store made; anything else is ignored)."""
        if valid_name(name):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(self.objects_dir, name))  # type: ignore[arg-type]

    def remove_prefix(self, prefix: str) -> None:
        """Remove every object whose name starts with ``prefix`` ("" for all): a directory scan,
        for rows that do not name their object (written by an older version) and for clear."""
        with contextlib.suppress(OSError), os.scandir(self.objects_dir) as it:
            for item in it:
                if item.name.startswith(prefix):
                    with contextlib.suppress(OSError):
                        os.remove(item.path)

    # -- sweeping -------------------------------------------------------------------------------

    def sweep(self, referenced: Callable[[str], bool]) -> int:
        """Remove temp files no live writer holds, and objects older than ``ORPHAN_AGE`` that
        ``referenced(name)`` says no row refers to. Returns the bytes removed."""
        freed = 0
        writing = _writing.open_paths()
        with contextlib.suppress(OSError), os.scandir(self.tmp_dir) as it:
            for item in it:
                if item.path not in writing:
                    freed += _remove_if_unlocked(item.path)
        now = self._clock()
        with contextlib.suppress(OSError), os.scandir(self.objects_dir) as it:
            for item in it:
                with contextlib.suppress(OSError):
                    info = item.stat(follow_symlinks=False)
                    if now - info.st_mtime > ORPHAN_AGE and not referenced(item.name):
                        os.remove(item.path)
                        freed += info.st_size
        return freed


def _remove_if_unlocked(path: str) -> int:
    """Remove a temp file unless a writer holds it (by ``lockf``, or ``flock`` as older versions
    of this library did); returns the bytes removed."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return 0
    try:
        size = os.fstat(fd).st_size
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in _BUSY:
                raise
            return 0  # a live writer holds it
        # Removed while the lock is held: a writer that made the file a moment ago and waits
        # for its lock then finds it unlinked, and makes another (see temp_file).
        os.remove(path)
    except OSError:
        return 0
    finally:
        os.close(fd)
    return size
