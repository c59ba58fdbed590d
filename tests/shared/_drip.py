"""A slow-drip server: a TCP server on loopback that answers every request one byte at a time.

A per-read socket timeout never fires against it (every read gets a byte well within it), so
only a deadline over the whole command bounds a client. Used by the Redis slow-drip test and,
with HTTP framing, by the DynamoDB tier's (``tests/dynamo``).

Bounded by construction: it listens on 127.0.0.1 only, each reply is at most ``len(reply)``
bytes, and ``close()`` stops every drip at the next byte and joins its threads.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
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
    """Answers each request on each connection with ``reply``, one byte every ``interval`` s
    (``interval=0``: all at once, a healthy server). With ``tls`` (a server-side SSL context)
    it speaks TLS.

    ``requests`` counts complete requests seen, ``sent`` the bytes sent so far.
    """

    def __init__(
        self,
        split: Split,
        reply: bytes,
        interval: float = 0.04,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.split = split
        self.reply = reply
        self.interval = interval
        self.tls = tls
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
        if self.tls is not None:
            conn.settimeout(5.0)
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:
                conn.close()
                return
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
                if not self.interval:
                    try:
                        conn.sendall(self.reply)
                    except OSError:
                        return
                    self.sent += len(self.reply)
                    continue
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


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and localhost), signed by itself, and its key: the paths
    of ``cert.pem`` (also the CA a client trusts) and ``key.pem`` in ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
