"""A slow-drip server: a TCP server on loopback that answers every request one byte at a time.

A per-read socket timeout never fires against it (every read gets a byte well within it), so
only a deadline over the whole command bounds a client. Used by the Redis slow-drip test and,
with HTTP framing, by the DynamoDB tier's (``tests/dynamo``).

Bounded by construction: it listens on 127.0.0.1 only, each reply is at most ``len(reply)``
bytes, and ``close()`` stops every drip at the next byte and joins its threads.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

#: ``split(buffer)``: the length of one complete request at the start of ``buffer``, or 0.
Split = Callable[[bytes], int]


def redis_request(buffer: bytes) -> int:
    """The length of one RESP command (``*N`` then N bulk strings) at the start, or 0."""
    end = buffer.find(b"\r\n")
    if not buffer.startswith(b"*") or end < 0:
        return 0
    pos = end + 2
    for _ in range(int(buffer[1:end])):
        line = buffer.find(b"\r\n", pos)
        if line < 0:
            return 0
        pos = line + 2 + int(buffer[pos + 1 : line]) + 2
        if pos > len(buffer):
            return 0
    return pos


def http_request(buffer: bytes) -> int:
    """The length of one HTTP/1.1 request (headers, then Content-Length bytes), or 0."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return 0
    length = 0
    for line in buffer[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    total = end + 4 + length
    return total if len(buffer) >= total else 0


class DripServer:
    """Answers each request on each connection with ``reply``, one byte every ``interval`` s.

    ``requests`` counts complete requests seen, ``sent`` the bytes dripped so far.
    """

    def __init__(self, split: Split, reply: bytes, interval: float = 0.04) -> None:
        self.split = split
        self.reply = reply
        self.interval = interval
        self.requests = 0
        self.sent = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        buffer = b""
        with conn:
            while not self._stop.is_set():
                length = self.split(buffer)
                if length == 0:
                    try:
                        data = conn.recv(65536)
                    except TimeoutError:
                        continue
                    except OSError:
                        return
                    if not data:
                        return
                    buffer += data
                    continue
                buffer = buffer[length:]
                self.requests += 1
                for i in range(len(self.reply)):
                    if self._stop.wait(self.interval):
                        return
                    try:
                        conn.sendall(self.reply[i : i + 1])
                    except OSError:
                        return
                    self.sent += 1

    def close(self) -> None:
        self._stop.set()
        self._accepter.join(5.0)
        with self._lock:
            threads, conns = list(self._threads), list(self._conns)
        for thread in threads:
            thread.join(5.0)
        for conn in conns:
            conn.close()
        self._sock.close()

    def __enter__(self) -> DripServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` (bounded) until it holds; whether it did."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
