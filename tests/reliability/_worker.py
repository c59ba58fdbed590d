"""Child-process entry points for the reliability suite: ``python _worker.py COMMAND ARGS``.

Each command is one real process of a fault scenario (a writer that is killed, one of many
concurrent workers, a lock holder that never lets go). Results go to stdout as JSON lines, so
the parent test can check them; anything unexpected exits non-zero with a traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import tiered_cache as tiered
from tiered_cache import _flight

BIG_KEY = "big"
OBJ_KEY = "obj"
SIG = 32  # bytes of sha256 at the end of every object file


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


class WarningLog(logging.Handler):
    """Collects what tiered-cache logs at WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def watch_warnings() -> WarningLog:
    handler = WarningLog()
    logging.getLogger("tiered_cache").addHandler(handler)
    return handler


def check_big(value: Any) -> str:
    """'miss', 'ok' or 'torn' for the large value under BIG_KEY."""
    if value is None:
        return "miss"
    blob = value.get("blob") if type(value) is dict else None
    if type(blob) is not bytes or hashlib.sha256(blob).hexdigest() != value.get("sha"):
        return "torn"
    return "ok"


def check_file(path: str | None) -> str:
    if path is None:
        return "miss"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return "miss"
    body, sig = data[:-SIG], data[-SIG:]
    return "ok" if len(data) > SIG and hashlib.sha256(body).digest() == sig else "torn"


def stored_file(cache: Any) -> str | None:
    """The path the disk tier would serve for OBJ_KEY (no fetch), or None."""
    entry = cache._disk.get(OBJ_KEY)
    return None if entry is None else str(entry.value)


def write_object(dest: IO[bytes], size: int, chunk: int = 64 * 1024) -> None:
    body = os.urandom(size)
    for start in range(0, size, chunk):
        dest.write(body[start : start + chunk])
        dest.flush()
    dest.write(hashlib.sha256(body).digest())


def kill_writer(directory: str, seed: str) -> None:
    """Report what a fresh process reads, then store large values in a loop until killed."""
    rng = random.Random(int(seed))
    cache = tiered.TieredCache(directory=directory, disk_bytes=64 * 2**20, ttl=3600, jitter=0)
    say(
        big=check_big(cache.get(BIG_KEY)),
        obj=check_file(stored_file(cache)),
        parts=len(os.listdir(cache._disk.tmp_dir)),
    )
    seq = 0
    while True:
        seq += 1
        if rng.random() < 0.5:
            blob = os.urandom(rng.randrange(64 * 1024, 1024 * 1024))
            value = {"seq": seq, "blob": blob, "sha": hashlib.sha256(blob).hexdigest()}
            cache.set(BIG_KEY, value)
        else:
            size = rng.randrange(64 * 1024, 1024 * 1024)
            cache.load_file(
                OBJ_KEY, lambda dest, _v, n=size: write_object(dest, n) or "v", max_age=0
            )
        if seq == 1:
            say(ready=True)


def settle(directory: str, size: str) -> None:
    """A clean process: verify, then store one value and one object of ``size`` bytes."""
    cache = tiered.TieredCache(directory=directory, disk_bytes=64 * 2**20, ttl=3600, jitter=0)
    disk = cache._disk
    before = (check_big(cache.get(BIG_KEY)), check_file(stored_file(cache)))
    n = int(size)
    blob = bytes(n)
    cache.set(BIG_KEY, {"seq": 0, "blob": blob, "sha": hashlib.sha256(blob).hexdigest()})
    cache.load_file(OBJ_KEY, lambda dest, _v: write_object(dest, n) or "v", max_age=0)
    after = (check_big(cache.get(BIG_KEY)), check_file(stored_file(cache)))
    disk._close()
    say(
        before=before,
        after=after,
        parts=sorted(os.listdir(disk.tmp_dir)),
        objects=sorted(os.listdir(disk.objects_dir)),
    )


def mixed(directory: str, worker: str, count: str, seed: str) -> None:
    """``count`` mixed operations on 20 shared keys; every read checked and reported."""
    rng = random.Random(int(seed))
    warnings = watch_warnings()
    cache = tiered.TieredCache(
        directory=directory, disk_bytes=256 * 2**20, memory_items=2, ttl=60, jitter=0.1
    )
    keys = [f"key-{i}" for i in range(20)]
    writes: list[list[Any]] = []
    reads: list[list[Any]] = []
    bad: list[str] = []

    def record(key: str, value: Any) -> None:
        if value is None:
            return
        if type(value) is not dict or value.get("key") != key:
            bad.append(f"{key!r} read {value!r:.200}")
            return
        reads.append([key, value["writer"], value["seq"]])

    sys.stdin.readline()  # start together
    for seq in range(int(count)):
        key = rng.choice(keys)
        value = {"key": key, "writer": int(worker), "seq": seq, "pad": "x" * rng.choice((10, 5000))}
        op = rng.random()
        if op < 0.40:
            record(key, cache.get(key))
        elif op < 0.65:
            writes.append([key, int(worker), seq])
            cache.set(key, value)
        elif op < 0.85:

            def loader(k: str = key, v: Any = value, s: int = seq) -> Any:
                writes.append([k, int(worker), s])
                return v

            record(key, cache.get_or_load(key, loader, ttl=rng.choice((0.05, 60))))
        else:
            cache.delete(key)
    say(
        worker=int(worker),
        writes=writes,
        reads=reads,
        bad=bad,
        warnings=warnings.messages,
        stats=cache.stats(),
    )


def _race(cache: Any, loader: Callable[[], Any], threads: int) -> list[Any]:
    """Say ready, wait for the start line, then ``threads`` threads ask for one key at once."""
    barrier = threading.Barrier(threads)
    results: list[Any] = []

    def run() -> None:
        barrier.wait()
        results.append(cache.get_or_load("shared", loader))

    say(ready=True)
    sys.stdin.readline()
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return results


def flight(directory: str, log_path: str, threads: str, delay: str) -> None:
    """``threads`` threads ask for one missing key at once; the loader logs each call."""
    cache = tiered.TieredCache(directory=directory, lock_timeout=30, ttl=600)
    cache._disk._db()  # open the store before the start line, as a warm process would

    def loader() -> Any:
        with open(log_path, "a") as log:
            log.write(f"{os.getpid()}\n")
        time.sleep(float(delay))
        return {"by": os.getpid()}

    say(results=_race(cache, loader, int(threads)), loads=cache.loads)


def flight_kill(directory: str, log_path: str, marker: str, threads: str) -> None:
    """Like ``flight``, but the first loader anywhere hangs (until its process is killed)."""
    cache = tiered.TieredCache(directory=directory, lock_timeout=30, ttl=600)
    cache._disk._db()

    def loader() -> Any:
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            with open(log_path, "a") as log:
                log.write(f"{os.getpid()}\n")
            time.sleep(0.2)
            return {"by": os.getpid()}
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(3600)  # hangs here until the test kills this process
        raise AssertionError("not killed")

    say(results=_race(cache, loader, int(threads)))


def hold_lock(directory: str, key: str) -> None:
    """Take the cross-process lock of ``key`` and never let go."""
    cache = tiered.TieredCache(directory=directory)
    cache._disk._db()
    with _flight.file_lock(cache._disk.locks_dir, key, 5.0) as locked:
        say(held=locked)
        time.sleep(3600)


def kill_download(directory: str, size: str) -> None:
    """Start a download of ``size`` bytes into the cache, report halfway, then hang."""
    cache = tiered.TieredCache(directory=directory, ttl=600)

    def fetch(dest: IO[bytes], _version: str | None) -> str:
        half = int(size) // 2
        dest.write(os.urandom(half))
        dest.flush()
        say(half=True, parts=os.listdir(cache._disk.tmp_dir))
        time.sleep(3600)
        raise AssertionError("not killed")

    cache.load_file(OBJ_KEY, fetch)


def _s3_object(directory: str) -> tuple[Any, Any, bytes]:
    """moto in this process, a default cache on ``directory``, and s3://bucket/model.bin."""
    import boto3
    from moto import mock_aws

    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="x"
    )
    mock = mock_aws()
    mock.start()
    boto3.setup_default_session()
    body = random.Random(11).randbytes(3 * 2**20)
    client = boto3.client("s3")
    client.create_bucket(Bucket="bucket")
    client.put_object(Bucket="bucket", Key="model.bin", Body=body)
    tiered.set_default_cache(tiered.TieredCache(directory=directory, ttl=600))
    return mock, boto3, body


class _HangingBody:
    """A GetObject body that delivers its first chunk, reports, then hangs (to be killed)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def iter_chunks(self, size: int) -> Any:
        yield self._body.read(size)
        say(half=True, parts=os.listdir(os.path.join(_config_dir(), "tmp")))
        time.sleep(3600)

    def close(self) -> None:
        self._body.close()


def _config_dir() -> str:
    from tiered_cache import _config

    return str(_config.default_cache().directory)


def s3_kill_download(directory: str) -> None:
    """s3.get_entry of a 3 MB object whose body hangs after its first chunk."""
    from tiered_cache import s3

    _mock, boto3, _body = _s3_object(directory)

    def hang(parsed: Any, **_: Any) -> None:
        parsed["Body"] = _HangingBody(parsed["Body"])

    boto3._get_default_session().events.register("after-call.s3.GetObject", hang)
    s3.get_entry(s3Uri="s3://bucket/model.bin")


def s3_fetch(directory: str) -> None:
    """A fresh process asks for the object: report what it got and what was left around."""
    from tiered_cache import s3

    _mock, _boto3, body = _s3_object(directory)
    cache = tiered.default_cache()
    path = s3.get_entry(s3Uri="s3://bucket/model.bin")
    with open(path, "rb") as f:
        whole = f.read() == body
    say(
        whole=whole,
        loads=cache.loads,
        parts=os.listdir(os.path.join(cache.directory or "", "tmp")),
        objects=os.listdir(os.path.join(cache.directory or "", "objects")),
    )


def read_values(directory: str, keys_file: str, serializer: str) -> None:
    """Read every key listed (pickled) in ``keys_file``; write the values as a pickle."""
    with open(keys_file, "rb") as f:
        keys = pickle.load(f)
    cache = tiered.TieredCache(directory=directory, serializer=serializer)  # type: ignore[arg-type]
    missing = object()
    out = [cache.get(k, missing) for k in keys]
    sys.stdout.buffer.write(pickle.dumps([None if v is missing else (v,) for v in out]))


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
