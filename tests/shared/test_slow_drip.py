"""A Redis that answers one byte every 40 ms: each whole command is bounded, not each read.

Before the deadline, a 50 ms socket timeout never fired against such a server (each read got its
byte in 40 ms) and one ``get_or_load`` was held for seconds. Now every command of the shared
tier has one deadline over all its reads and writes.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

redis = pytest.importorskip("redis", reason="the shared-tier tests need redis-py (the test extra)")

import tiered_cache as tiered  # noqa: E402
from tiered_cache._shared import SharedTier  # noqa: E402

from ._drip import DripServer, redis_request, self_signed, server_context  # noqa: E402

#: A bulk string of 50 bytes: 57 bytes on the wire, 2.3 s at one byte every 40 ms.
REPLY = b"$50\r\n" + b"x" * 50 + b"\r\n"


@pytest.fixture
def drip() -> Iterator[DripServer]:
    with DripServer(redis_request, REPLY, interval=0.04) as server:
        yield server


def test_the_drip_defeats_a_per_read_timeout() -> None:
    """Control: a plain client with a 50 ms socket timeout reads a dripped reply in full, taking
    far longer than its timeout. This is what the deadline has to stop."""
    with DripServer(redis_request, b"$3\r\nabc\r\n", interval=0.04) as server:
        client = redis.Redis(
            host="127.0.0.1",
            port=server.port,
            socket_timeout=0.05,
            socket_connect_timeout=0.05,
            protocol=2,  # no HELLO and no CLIENT SETINFO on connect: the GET alone
            driver_info=None,
        )
        started = time.monotonic()
        assert client.get("k") == b"abc"
        elapsed = time.monotonic() - started
        client.close()
    assert elapsed >= 0.3  # 9 bytes, 40 ms apart, each read well within 50 ms


def test_one_get_or_load_ends_before_one_dripped_reply_would_with_the_origins_value(
    drip: DripServer, tmp_path: Path
) -> None:
    cache = tiered.TieredCache(
        directory=str(tmp_path / "c"), shared=f"redis://127.0.0.1:{drip.port}/0"
    )
    calls: list[int] = []

    def origin() -> str:
        calls.append(1)
        return "from-origin"

    started = time.monotonic()
    value = cache.get_or_load("k", origin)
    elapsed = time.monotonic() - started
    stats = cache.stats()
    assert value == "from-origin"
    assert calls == [1]
    # About 0.2 s here (every command cut by its 50 ms deadline). The bound is what ONE whole
    # dripped reply takes (~2.3 s): a GET read to its end, as a per-read timeout allows, fails
    # this, and the first edition took 24.2 s. (A 0.6 s bound is too tight for a loaded CI.)
    whole_reply = len(REPLY) * drip.interval
    assert elapsed < whole_reply, (
        f"one get_or_load took {elapsed:.2f} s against a dripping Redis, "
        f"as long as a whole reply ({whole_reply:.1f} s)"
    )
    assert drip.requests >= 1
    assert drip.sent >= 1  # it did answer, slowly: the commands were cut by their deadline
    assert stats["shared_errors"] >= 1
    assert stats["shared_hits"] == 0
    # the next call is a memory hit: the drip costs nothing more (no request reaches it)
    asked = drip.requests
    assert cache.get_or_load("k", origin) == "from-origin"
    assert cache.stats()["memory_hits"] == 1
    assert drip.requests == asked
    assert calls == [1]


def test_the_deadline_is_the_timeout_over_the_whole_command(drip: DripServer) -> None:
    tier = SharedTier(f"redis://127.0.0.1:{drip.port}/0", timeout=0.3, failures=10)
    assert tier.deadline == 0.3
    times: list[float] = []
    for _ in range(3):
        started = time.monotonic()
        assert tier.get("k") is None
        times.append(time.monotonic() - started)
    assert tier.errors == 3
    assert tier.state == "closed"  # three of ten failures: still in use
    # each command ran until its 0.3 s deadline (not one 0.3 s read: 57 bytes take 2.3 s)
    assert all(0.25 <= t < 1.0 for t in times), times


def test_a_prebuilt_client_keeps_its_own_timeouts(drip: DripServer) -> None:
    """A client passed in is not wrapped (its own settings apply): no deadline is set."""
    client: Any = redis.Redis(host="127.0.0.1", port=drip.port, socket_timeout=0.05)
    assert SharedTier(client=client).deadline is None


# -- the same sockets over TLS (rediss://, what ElastiCache in-transit encryption uses) -------


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path / "tls")


@pytest.fixture
def tls_redis(tmp_path: Path, tls_files: tuple[Path, Path]) -> Iterator[int]:
    """A real redis-server speaking only TLS on a free loopback port; yields the port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    cert, key = tls_files
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            *(binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"),
            *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            *("--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"),
            *("--save", "", "--appendonly", "no", "--dir", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(cert))
    deadline = time.monotonic() + 15.0
    while True:  # readiness poll of the server we just started, bounded
        try:
            if client.ping():
                break
        except redis.RedisError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.skip("this redis-server does not speak TLS")
        time.sleep(0.02)
    client.close()
    yield port
    proc.terminate()
    proc.wait(10)


def test_a_tls_redis_works_through_the_deadline_sockets(
    tls_redis: int, tls_files: tuple[Path, Path], tmp_path: Path
) -> None:
    url = f"rediss://127.0.0.1:{tls_redis}/0?ssl_ca_certs={tls_files[0]}"
    tier = SharedTier(url, timeout=2.0)
    writer = tiered.TieredCache(directory=str(tmp_path / "a"), shared=tier)
    reader = tiered.TieredCache(directory=str(tmp_path / "b"), shared=SharedTier(url, timeout=2.0))
    assert writer.get_or_load("k", lambda: {"tls": [1, 2]}) == {"tls": [1, 2]}

    def never() -> Any:
        raise AssertionError("the value was in Redis")

    assert reader.get_or_load("k", never) == {"tls": [1, 2]}
    with tier.lock("k", 0.0) as held:
        assert held is True
    assert tier.errors == 0
    assert reader.stats()["shared_hits"] == 1


def test_a_dripping_tls_server_is_bounded_too(tls_files: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = tls_files
    with DripServer(redis_request, REPLY, tls=server_context(cert, key)) as server:
        url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={cert}&socket_timeout=0.1"
        cache = tiered.TieredCache(directory=str(tmp_path / "c"), shared=url)
        started = time.monotonic()
        assert cache.get_or_load("k", lambda: "from-origin") == "from-origin"
        elapsed = time.monotonic() - started
        assert server.sent >= 1  # the handshake passed and the reply began: TLS worked
    assert elapsed < 1.0, f"{elapsed:.2f} s"
