"""The pieces of a Lambda execution environment, run on loopback for the end-to-end tests.

- :class:`RuntimeAPI`: a stand-in for Lambda's Runtime API (version 2018-06-01), the HTTP
  service that AWS's runtime interface client (``awslambdaric``) polls for invocations. It
  hands out queued events on ``GET /2018-06-01/runtime/invocation/next`` with Lambda's headers
  (``Lambda-Runtime-Aws-Request-Id``, ``-Deadline-Ms``, ``-Invoked-Function-Arn``,
  ``-Trace-Id``), blocking until one is queued, and takes ``POST .../invocation/{id}/response``,
  ``POST .../invocation/{id}/error`` and ``POST /2018-06-01/runtime/init/error`` (each answered
  ``202 Accepted``, as Lambda does).
- :class:`MotoServer`: moto's HTTP server in a child process on a free loopback port (shared
  by every process of a test, unlike moto's in-process mock).
- :class:`CountingProxy`: a plain HTTP proxy in front of moto that records each AWS request
  (the ``X-Amz-Target`` operation and the name asked for, or the S3 method and path), so a
  test counts the origin calls that really left a runtime process.
- :class:`Runtime`: ``python -m awslambdaric handler.<function>`` started as Lambda starts it,
  in its own process group so ``kill -9`` takes its forked workers too.

Every server binds 127.0.0.1 and a port the kernel picks; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

API = "/2018-06-01/runtime"
REGION = "us-east-1"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:tiered-cache-e2e"


# -- the Runtime API stand-in -----------------------------------------------------------------


class Invocation:
    """One queued event and, once the runtime answers, its outcome. Thread-safe."""

    def __init__(self, event: Any, timeout: float) -> None:
        self.request_id = str(uuid.uuid4())
        self.trace_id = (
            f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
            f"Parent={uuid.uuid4().hex[:16]};Sampled=0"
        )
        self.body = json.dumps(event).encode()
        self.queued_at = time.time()
        self.deadline = self.queued_at + timeout  # wall clock, as Lambda-Runtime-Deadline-Ms
        self.deadline_ms = int(self.deadline * 1000)
        self.taken_at: float | None = None
        self.finished_at: float | None = None
        self.outcome: str | None = None  # "response" or "error"
        self.answer = b""
        self.answer_headers: dict[str, str] = {}
        self._done = threading.Event()

    def finish(self, outcome: str, answer: bytes, headers: Mapping[str, str]) -> None:
        self.finished_at = time.time()
        self.outcome = outcome
        self.answer = answer
        self.answer_headers = dict(headers)
        self._done.set()

    def wait(self, timeout: float) -> None:
        if not self._done.wait(timeout):
            raise AssertionError(
                f"invocation {self.request_id} got no answer within {timeout} s "
                f"(taken by a runtime: {self.taken_at is not None})"
            )

    def result(self, timeout: float = 30.0) -> Any:
        """The handler's return value (JSON-decoded); fails the test on an error or timeout."""
        self.wait(timeout)
        if self.outcome != "response":
            raise AssertionError(f"invocation failed: {self.answer.decode(errors='replace')}")
        return json.loads(self.answer)

    def error(self, timeout: float = 30.0) -> dict[str, Any]:
        """The error document posted to ``/error``; fails the test if the handler succeeded."""
        self.wait(timeout)
        if self.outcome != "error":
            raise AssertionError(f"expected an error, got: {self.answer.decode(errors='replace')}")
        document: dict[str, Any] = json.loads(self.answer)
        return document


class RuntimeAPI:
    """Lambda's Runtime API on 127.0.0.1, for any number of runtime processes at once.

    ``invoke(event)`` queues an event and returns its :class:`Invocation`; each ``/next``
    request takes one, in order. ``polling`` is the number of ``/next`` requests waiting now
    (a runtime that died while waiting stops counting within about 50 ms). Thread-safe.
    """

    def __init__(self) -> None:
        self._events: queue.Queue[Invocation] = queue.Queue()
        self._by_id: dict[str, Invocation] = {}
        self._lock = threading.Condition()
        self._polling = 0
        self._closed = False
        self.init_errors: list[tuple[dict[str, str], bytes]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_api_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def polling(self) -> int:
        with self._lock:
            return self._polling

    def invoke(self, event: Any, timeout: float = 30.0) -> Invocation:
        """Queue ``event`` with a deadline ``timeout`` seconds from now."""
        invocation = Invocation(event, timeout)
        with self._lock:
            self._by_id[invocation.request_id] = invocation
        self._events.put(invocation)
        return invocation

    def invoke_many(self, events: list[Any], timeout: float = 30.0) -> list[Invocation]:
        """Queue every event at once (released together to the runtimes already polling)."""
        invocations = [Invocation(event, timeout) for event in events]
        with self._lock:
            for invocation in invocations:
                self._by_id[invocation.request_id] = invocation
        for invocation in invocations:
            self._events.put(invocation)
        return invocations

    def wait_polling(self, count: int, timeout: float, runtime: Runtime | None = None) -> None:
        """Wait until exactly ``count`` requests are waiting on ``/next``.

        Fails at once, with the runtime's output, if it posted an init error or exited.
        """
        end = time.monotonic() + timeout
        with self._lock:
            while self._polling != count:
                if self.init_errors:
                    headers, body = self.init_errors[-1]
                    raise AssertionError(
                        f"init error {headers}: {body.decode(errors='replace')}"
                        + (runtime.describe() if runtime else "")
                    )
                if runtime is not None and count and runtime.exited():
                    raise AssertionError("the runtime exited" + runtime.describe())
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self._polling} runtimes polling /next, not {count}, after {timeout} s"
                        + (runtime.describe() if runtime else "")
                    )
                self._lock.wait(min(left, 0.05))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- called from the server's threads --

    def _next(self, connection: socket.socket) -> Invocation | None:
        """Block until an event is queued (None if the client went away or we closed)."""
        with self._lock:
            self._polling += 1
            self._lock.notify_all()
        try:
            while True:
                with self._lock:
                    if self._closed:
                        return None
                try:
                    invocation = self._events.get(timeout=0.05)
                except queue.Empty:
                    if _peer_gone(connection):
                        return None
                    continue
                if _peer_gone(connection):  # died while we waited: hand the event on
                    self._events.put(invocation)
                    return None
                invocation.taken_at = time.time()
                return invocation
        finally:
            with self._lock:
                self._polling -= 1
                self._lock.notify_all()

    def _finish(
        self, request_id: str, outcome: str, body: bytes, headers: Mapping[str, str]
    ) -> bool:
        with self._lock:
            invocation = self._by_id.get(request_id)
        if invocation is None or invocation.outcome is not None:
            return False
        invocation.finish(outcome, body, headers)
        return True

    def _init_error(self, headers: Mapping[str, str], body: bytes) -> None:
        with self._lock:
            self.init_errors.append((dict(headers), body))
            self._lock.notify_all()


def _peer_gone(connection: socket.socket) -> bool:
    """True if the client closed its end (a runtime killed while waiting on /next)."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        if not readable:
            return False
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _make_api_handler(api: RuntimeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _reply(self, status: int, document: Any) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            if self.path != f"{API}/invocation/next":
                self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})
                return
            invocation = api._next(self.connection)
            if invocation is None:
                self.close_connection = True
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
            self.send_header("Lambda-Runtime-Trace-Id", invocation.trace_id)
            self.send_header("Content-Length", str(len(invocation.body)))
            self.end_headers()
            self.wfile.write(invocation.body)

        def do_POST(self) -> None:
            body = self._body()
            headers = dict(self.headers.items())
            if self.path == f"{API}/init/error":
                api._init_error(headers, body)
                self._reply(202, {"status": "OK"})
                return
            parts = self.path.split("/")  # ['', '2018-06-01', 'runtime', 'invocation', id, x]
            if (
                len(parts) == 6
                and "/".join(parts[:4]) == f"{API}/invocation"
                and parts[5] in ("response", "error")
            ):
                if api._finish(parts[4], parts[5], body, headers):
                    self._reply(202, {"status": "OK"})
                else:
                    self._reply(
                        400,
                        {"errorType": "InvalidRequestID", "errorMessage": "unknown request id"},
                    )
                return
            self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})

    return Handler


# -- moto over HTTP, and a proxy that counts what reaches it ---------------------------------

_MOTO = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the test closes our stdin
server.stop()
"""


class MotoServer:
    """``moto.server.ThreadedMotoServer`` in a child process; ``url`` is its endpoint.

    Its request log goes to ``log``.
    """

    def __init__(self, log: Path) -> None:
        self.log = log
        with log.open("wb") as log_file:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _MOTO],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"moto server did not start (printed {line!r})")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client straight to ``endpoint`` (moto: not through the proxy, so seeding a
    test's data is not counted)."""
    import boto3

    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"}
)


class CountingProxy:
    """A reverse proxy to ``upstream`` on 127.0.0.1 that records every request. Thread-safe.

    A request with ``X-Amz-Target`` (SSM, Secrets Manager: the JSON protocol) is recorded as
    that target and the ``Name``/``Names``/``SecretId`` it names; any other (S3) as
    ``"S3 <METHOD>"`` and its path.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_proxy_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def record(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        target = headers.get("X-Amz-Target")
        if target:
            try:
                fields = json.loads(body or b"{}")
            except ValueError:
                fields = {}
            named = fields.get("Name") or fields.get("SecretId") or fields.get("Names") or ""
            entry = (target, named if isinstance(named, str) else ",".join(named))
        else:
            entry = (f"S3 {method}", path.split("?", 1)[0])
        with self._lock:
            self.requests.append(entry)

    def count(self, operation: str, name: str | None = None) -> int:
        """How many requests were ``operation`` (for ``name`` if given) so far."""
        with self._lock:
            return sum(
                1 for op, named in self.requests if op == operation and name in (None, named)
            )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _make_proxy_handler(proxy: CountingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            proxy.record(self.command, self.path, dict(self.headers.items()), body)
            upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                upstream.close()

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _forward

    return Handler


# -- runtime processes ------------------------------------------------------------------------


class Runtime:
    """``python -m awslambdaric <module>.<function>`` in ``task_root``, as Lambda starts it.

    Its output goes to a file (never a pipe that could fill); :meth:`describe` shows it.
    """

    def __init__(self, task_root: Path, handler: str, env: Mapping[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", handler],
            cwd=str(task_root),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 reaches forked workers
        )
        self.pid = self.process.pid

    def exited(self) -> bool:
        return self.process.poll() is not None

    def kill(self) -> None:
        """``kill -9`` the runtime and every worker it forked; wait for the parent to go."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(10)
        self._log_file.close()

    def describe(self) -> str:
        self._log_file.flush()
        text = self.log.read_text(errors="replace")[-4000:]
        return f"\n--- runtime pid {self.pid} output (last 4000 chars)\n{text}"


@contextlib.contextmanager
def background(code: str, env: Mapping[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``code`` in a fresh interpreter for the block; killed (-9) at the end."""
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(10)
