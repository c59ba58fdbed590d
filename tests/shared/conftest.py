"""Fixtures of the shared-tier suite: a real redis-server of our own, on a free loopback port.

The server runs as a subprocess in a temp directory (no persistence), so the suite never
touches a Redis it did not start. ``redis_server`` is one server for the session, flushed
before each test; ``private_redis`` is a server of the test's own, which it may ``stop()`` and
``start()`` again on the same port. Without the ``redis-server`` binary the suite is skipped.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

redis = pytest.importorskip("redis", reason="the shared-tier tests need redis-py (the test extra)")

from tiered_cache._shared import SharedTier  # noqa: E402

REDIS_SERVER = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A redis-server subprocess on 127.0.0.1:``port``; ``stop()`` and ``start()`` at will."""

    def __init__(self, directory: Path) -> None:
        if REDIS_SERVER is None:
            pytest.skip(
                "redis-server is not installed: the shared-tier tests run a real one "
                "(apt-get install redis-server; .ci/run does this)"
            )
        self.binary = REDIS_SERVER
        self.directory = directory
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        """Start (or start again, on the same port) and wait until it answers PING."""
        assert self.proc is None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 (kept by the child)
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + 15.0
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        while True:  # readiness poll of a process we just started, bounded
            try:
                if probe.ping():
                    break
            except redis.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                output = (self.directory / "redis.log").read_text(errors="replace")
                self.stop()
                pytest.fail(f"redis-server did not start on port {self.port}:\n{output}")
            time.sleep(0.01)
        probe.close()

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL); the port stays ours for a restart."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def _session_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(_session_redis: RedisServer) -> RedisServer:
    """The session's redis-server, emptied for this test (restarted if a test stopped it)."""
    if _session_redis.proc is None:
        _session_redis.start()
    _session_redis.client().flushall()
    return _session_redis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for this test alone, which it may stop and start again."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rclient(redis_server: RedisServer) -> Any:
    """A plain redis-py client on the session server (to inspect or plant keys)."""
    return redis_server.client()


@pytest.fixture
def make_tier(redis_server: RedisServer, fake_clock: Any) -> Callable[..., SharedTier]:
    """Factory: ``make_tier(**overrides)`` -> SharedTier on the session server, fake clock."""

    def make(**kwargs: Any) -> SharedTier:
        kwargs.setdefault("clock", fake_clock)
        url = kwargs.pop("url", redis_server.url)
        return SharedTier(url, **kwargs)

    return make


@pytest.fixture
def unique_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}:"
