"""Scenario 4b: the first fetch of a large S3 object under a per-connection bandwidth model.

    python3 benchmarks/_large.py --quick          # 128 MB, 3 repetitions (~15 s)
    python3 benchmarks/_large.py                  # 1 GiB, 3 repetitions (~1 min)
    python3 benchmarks/_large.py --size-mb 512 --reps 5

The model (printed next to the figures): each HTTP request to the origin waits ``LATENCY_S``
(40 ms) before its headers, then its body is paced at ``BANDWIDTH`` (90 MB/s) on its own
connection, so concurrent requests overlap as they do against S3. The origin is a minimal S3
GetObject/HeadObject endpoint in a separate process (:func:`serve`): path-style
``/bucket/key``, ``Range``, ``If-Match`` (412), ``If-None-Match`` (304), and an ``ETag``; it
serves the object from a file. (moto's server copies the whole object for every ranged GET, so
at 1 GiB it would measure moto, not the transfer.)

Two ways, each in a fresh interpreter, interleaved, median of the repetitions:

- one stream: ``TIERED_CACHE_S3_PART_BYTES`` above the object's size, so ``s3.get_entry``
  streams the one GET (what every release before this one did);
- ranged: the default part size (``s3.PART_BYTES``, 8 MiB) and concurrency
  (``s3.MAX_CONCURRENCY``, 10): one GET, then s3transfer's ranged GETs pinned with IfMatch.

Each child reports the wall time of ``s3.get_entry`` (its first fetch), the origin's request
count, whether the file's bytes are the object's (SHA-256), and its peak RSS above its
baseline: the baseline is VmRSS after the imports, the client and a small warm-up GET; the peak
is VmHWM after the fetch, with the high-water mark reset (``/proc/self/clear_refs``) at the
baseline. The harness reports; it never asserts on a timing.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, ClassVar

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h

LATENCY_S = 0.040
BANDWIDTH = 90 * 10**6  # bytes per second per connection
PACE_CHUNK = 256 * 1024
BUCKET, KEY, SMALL = "bench", "big.bin", "small.bin"
GOAL_SPEEDUP = 4.0
GOAL_RSS_MB = 64.0

MODEL = (
    f"Model: every request to the origin waits {LATENCY_S * 1000:.0f} ms, then its body is "
    f"paced at {BANDWIDTH / 10**6:.0f} MB/s on its own connection (concurrent requests "
    "overlap); the origin is a minimal S3 endpoint in another process, serving from a file."
)


# -- the origin ------------------------------------------------------------------------------------


class _Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    files: ClassVar[dict[str, tuple[str, int, str]]] = {}  # key -> (path, size, etag)
    count_lock = threading.Lock()
    counts: ClassVar[dict[str, int]] = {"requests": 0, "ranged": 0, "body_bytes": 0}

    def log_message(self, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        if self.path == "/__counts":
            body = json.dumps(self.counts).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        time.sleep(LATENCY_S)  # per request, in this request's own thread: requests overlap
        key = self.path.split("?", 1)[0].lstrip("/").split("/", 1)[-1]
        found = self.files.get(key)
        with self.count_lock:
            self.counts["requests"] += 1
            self.counts["ranged"] += "Range" in self.headers
        if found is None:
            self._error(404, "NoSuchKey")
            return
        path, size, etag = found
        if_match = self.headers.get("If-Match")
        if if_match is not None and if_match != etag:
            self._error(412, "PreconditionFailed")
            return
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = 0, size - 1
        ranged = self.headers.get("Range")
        if ranged:
            first, _, last = ranged.split("=", 1)[1].partition("-")
            start, end = int(first), min(size - 1, int(last) if last else size - 1)
        self.send_response(206 if ranged else 200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "application/octet-stream")
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not head:
            self._send_paced(path, start, end + 1)

    def _send_paced(self, path: str, start: int, stop: int) -> None:
        """The body, ``PACE_CHUNK`` at a time by ``sendfile`` (no copy through Python, so the
        origin's CPU is not what is measured), each chunk no earlier than the bandwidth
        allows."""
        self.wfile.flush()
        out = self.connection.fileno()
        began = time.perf_counter()
        sent = 0
        fd = os.open(path, os.O_RDONLY)
        try:
            while start + sent < stop:
                n = os.sendfile(out, fd, start + sent, min(PACE_CHUNK, stop - start - sent))
                if n == 0:
                    break
                sent += n
                ahead = began + sent / BANDWIDTH - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left the stream (it may, after headers)
        finally:
            os.close(fd)
            with self.count_lock:
                self.counts["body_bytes"] += sent

    def _error(self, status: int, code: str) -> None:
        body = f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(directory: str, port_file: str) -> None:
    """Serve every file in ``directory`` as ``/bench/<name>`` (ETag: its SHA-256, quoted)."""
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        _Origin.files[name] = (path, os.path.getsize(path), f'"{_sha256(path)[:32]}"')
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 * h.MB):
            digest.update(block)
    return digest.hexdigest()


def _write_object(path: str, size: int) -> None:
    """``size`` bytes that differ in every MiB (a part at the wrong offset changes the hash)."""
    seed = os.urandom(h.MB)
    with open(path, "wb") as f:
        for i in range(0, size, h.MB):
            block = i.to_bytes(8, "big") + seed[8:]
            f.write(block[: min(h.MB, size - i)])


# -- the child: one first fetch --------------------------------------------------------------------


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])  # kB
    return 0


def fetch(endpoint: str, directory: str, expected_sha: str) -> None:
    """One first fetch of s3://bench/big.bin through ``s3.get_entry``; one JSON line.

    The library makes its own client, as in a function (``AWS_ENDPOINT_URL_S3`` points it at
    the origin: botocore reads that variable).
    """
    import tiered_cache as tiered
    from tiered_cache import s3
    from tiered_cache.exceptions import TieredCacheError

    os.environ["AWS_ENDPOINT_URL_S3"] = endpoint
    budget = int(os.environ["TIERED_CACHE_DISK_BYTES"])  # room for the whole object
    cache = tiered.TieredCache(directory=directory, ttl=600, disk_bytes=budget)
    tiered.set_default_cache(cache)
    s3.get_bytes(s3Uri=f"s3://{BUCKET}/{SMALL}")  # warm: boto3, the client, the cache
    base_kb = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    began = time.perf_counter()
    try:
        path: str | None = s3.get_entry(s3Uri=f"s3://{BUCKET}/{KEY}")
    except TieredCacheError as exc:  # the oversize way: a budget below the object
        if "larger than the whole disk budget" not in str(exc):
            raise
        path = None
    wall = time.perf_counter() - began
    peak_kb = _status("VmHWM")
    result = {
        "wall_s": wall,
        "rss_base_mb": base_kb / 1024,
        "rss_peak_above_mb": (peak_kb - base_kb) / 1024,
        "right": path is not None and _sha256(path) == expected_sha,
        "refused": path is None,
    }
    if path is None:  # a hot handler asks again at once: the refusal is remembered
        began = time.perf_counter()
        try:
            s3.get_entry(s3Uri=f"s3://{BUCKET}/{KEY}")
        except TieredCacheError:
            result["again_s"] = time.perf_counter() - began
        result["cache_dir_mb"] = _tree_bytes(directory) / h.MB
    print(json.dumps(result), flush=True)


def _tree_bytes(root: str) -> int:
    return sum(
        os.lstat(os.path.join(base, name)).st_size
        for base, dirs, files in os.walk(root)
        for name in dirs + files
    )


# -- the harness -----------------------------------------------------------------------------------


def _counts(endpoint: str) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(endpoint + "/__counts", timeout=10) as r:  # noqa: S310
        counts: dict[str, int] = json.loads(r.read())
    return counts


def run(size: int, reps: int, progress: Any = print) -> dict[str, Any]:
    """Measure both ways ``reps`` times, interleaved; the raw runs and their medians."""
    work = tempfile.mkdtemp(prefix="tcbench-large-")
    origin_dir = os.path.join(work, "origin")
    os.makedirs(origin_dir)
    try:
        _write_object(os.path.join(origin_dir, KEY), size)
        with open(os.path.join(origin_dir, SMALL), "wb") as f:
            f.write(b"warm-up")
        expected = _sha256(os.path.join(origin_dir, KEY))
        port_file = os.path.join(work, "port")
        server = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", origin_dir, port_file]
        )
        try:
            for _ in range(600):
                if os.path.exists(port_file) or server.poll() is not None:
                    break
                time.sleep(0.05)
            with open(port_file) as f:
                endpoint = f"http://127.0.0.1:{f.read().strip()}"
            runs: dict[str, list[dict[str, Any]]] = {"stream": [], "ranged": []}
            for rep in range(reps):
                for way in ("stream", "ranged", "oversize"):
                    progress(f"{way} rep {rep + 1}/{reps} ({size // h.MB} MB)")
                    runs.setdefault(way, []).append(_one(endpoint, work, way, size, expected))
        finally:
            server.terminate()
            server.wait(10)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"size": size, "reps": reps, "runs": runs, "summary": summarize(runs)}


def _one(endpoint: str, work: str, way: str, size: int, expected: str) -> dict[str, Any]:
    directory = os.path.join(work, f"cache-{way}")
    env = h.child_env(
        {
            # oversize: a budget of half the object, which is refused from the headers
            "TIERED_CACHE_DISK_BYTES": str(
                size // 2 if way == "oversize" else 2 * size + 64 * h.MB
            ),
            # one stream: a part size above the object, so the one GET is streamed whole
            **({"TIERED_CACHE_S3_PART_BYTES": str(2 * size)} if way == "stream" else {}),
        }
    )
    if way != "stream":
        env.pop("TIERED_CACHE_S3_PART_BYTES", None)
    before = _counts(endpoint)
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--fetch", endpoint, directory, expected],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    shutil.rmtree(directory, ignore_errors=True)
    time.sleep(0.2)  # the origin counts an abandoned stream's bytes when its send fails
    after = _counts(endpoint)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-4:]
        return {"error": f"exit {proc.returncode}: " + " / ".join(tail)}
    result: dict[str, Any] = json.loads(lines[-1])
    result["requests"] = after["requests"] - before["requests"] - 1  # minus the warm-up GET
    result["ranged"] = after["ranged"] - before["ranged"]
    result["body_mb"] = (after["body_bytes"] - before["body_bytes"]) / h.MB
    return result


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for way, reps in runs.items():
        ok = [r for r in reps if "error" not in r]
        if not ok:
            continue
        keys = ["wall_s", "rss_peak_above_mb", "requests", "body_mb"]
        if way == "oversize":
            keys += ["again_s", "cache_dir_mb"]
        med = summary[way] = {k: h.median([r.get(k, float("nan")) for r in ok]) for k in keys}
        med["rss_peak_above_max_mb"] = max(r["rss_peak_above_mb"] for r in ok)
        if way == "oversize":  # right: refused both times
            med["right"] = all(r["refused"] and "again_s" in r for r in ok)
        else:
            med["right"] = all(r["right"] for r in ok)
        med["n"] = len(ok)
    if "stream" in summary and "ranged" in summary:
        summary["speedup"] = summary["stream"]["wall_s"] / summary["ranged"]["wall_s"]
    return summary


def ideal_s(size: int, ranged: bool) -> float:
    """What the model alone predicts (no CPU cost): one stream, or one GET then the parts."""
    from tiered_cache.s3 import MAX_CONCURRENCY as concurrency
    from tiered_cache.s3 import PART_BYTES as part

    if not ranged:
        return LATENCY_S + size / BANDWIDTH
    parts = -(-size // part)
    rounds = -(-parts // concurrency)
    return LATENCY_S + rounds * (LATENCY_S + min(part, size) / BANDWIDTH)


def report(out: dict[str, Any]) -> tuple[str, str]:
    """(Markdown for the report file, a terminal table within 100 columns)."""
    size, summary = out["size"], out["summary"]
    rows, short = [], []
    from tiered_cache.s3 import MAX_CONCURRENCY, PART_BYTES

    labels = {
        "stream": "one stream (one GET)",
        "ranged": f"ranged ({PART_BYTES // h.MB} MiB parts, {MAX_CONCURRENCY} at once)",
        "oversize": f"oversize (budget {size // 2 // h.MB} MB): refused",
    }
    for way in labels:
        med = summary.get(way)
        if med is None:
            why = next((r.get("error", "") for r in out["runs"].get(way, ())), "no result")
            rows.append([labels[way], "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", why])
            short.append([labels[way], "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"])
            continue
        model = h.fmt_ms(ideal_s(size, way == "ranged") * 1000) if way != "oversize" else "-"
        cells = [
            h.fmt_ms(med["wall_s"] * 1000),
            model,
            f"{med['requests']:g}",
            f"{med['body_mb']:.2f}" if way == "oversize" else f"{med['body_mb']:.0f}",
            f"{med['rss_peak_above_mb']:.1f}",
        ]
        rows.append([labels[way], *cells, f"{med['rss_peak_above_max_mb']:.1f}", _yes(med)])
        short.append([labels[way], *cells, _yes(med)])
    speedup = summary.get("speedup")
    verdict = (
        f"ranged is {speedup:.1f}x faster than one stream (goal: at least {GOAL_SPEEDUP:g}x); "
        if speedup
        else ""
    )
    ranged = summary.get("ranged")
    if ranged:
        verdict += (
            f"peak RSS above the baseline, ranged: {ranged['rss_peak_above_max_mb']:.1f} MB "
            f"at most (goal: under {GOAL_RSS_MB:g} MB)."
        )
    oversize = summary.get("oversize")
    if oversize:
        verdict += (
            f" Oversize: refused from the first GET's headers in "
            f"{h.fmt_ms(oversize['wall_s'] * 1000)} ms, the cache directory at "
            f"{oversize['cache_dir_mb']:.2f} MB; asked again at once, refused in "
            f"{h.fmt_ms(oversize['again_s'] * 1000)} ms with no request (requests counts both "
            "calls)."
        )
    title = (
        f"4b. First fetch of a {size // h.MB} MB S3 object: one stream, ranged parts, and "
        f"a budget too small (median of {out['reps']}); lower is better"
    )
    notes = (
        f"{MODEL} model ms: what the model alone predicts (no CPU time). requests: to the "
        "origin for the fetch (ranged: the first GET, whose stream is left after its headers, "
        "then the parts). body MB: sent by the origin (the first GET's abandoned stream counts "
        "what was in flight). RSS: peak above the child's baseline (VmHWM reset after imports, "
        f"the client and a warm-up GET). {verdict}"
    )
    md = h.table(
        title,
        ["way", "ms", "model ms", "requests", "body MB", "RSS MB", "RSS MB max", "right bytes"],
        rows,
        notes=notes,
    )
    term = h.text_table(
        title,
        ["way", "ms", "model ms", "requests", "body MB", "peak RSS MB", "right"],
        short,
        notes=notes,
    )
    return md, term


def _yes(med: dict[str, Any]) -> str:
    return "yes" if med["right"] else "NO"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="128 MB instead of 1 GiB")
    parser.add_argument("--size-mb", type=int, default=None)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--fetch", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    if args.fetch:
        fetch(*args.fetch)
        return 0
    size = (args.size_mb or (128 if args.quick else 1024)) * h.MB
    out = run(size, args.reps, progress=lambda m: print(f"4b: {m}", flush=True))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    print(report(out)[1])
    return 0 if all("error" not in r for reps in out["runs"].values() for r in reps) else 1


if __name__ == "__main__":
    sys.exit(main())
