"""Shared machinery of the benchmark harness: origin hook, moto fixtures, clocks, stats, I/O.

Nothing here imports boto3, moto or a peer library at module level: workers that measure cold
starts import this module first, and it must not warm anything for them.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
WORKER = os.path.join(HERE, "_worker.py")
REGION = "us-east-1"
MB = 2**20

# Injected origin latency: per API call, plus bandwidth for S3 bodies.
LATENCY_S = {"ssm": 0.020, "secretsmanager": 0.025, "s3": 0.040}
S3_BANDWIDTH = 100e6  # bytes per second

LIBS = ("nocache", "lambda-cache", "powertools", "cachetools", "tiered-core", "tiered-aws")
LABELS = {
    "floor": "floor (dict.get + time.time())",
    "handwritten": "hand-written TTL decorator",
    "nocache": "no cache (boto3 every call)",
    "lambda-cache": "lambda-cache 0.8.1",
    "powertools": "Powertools parameters",
    "cachetools": "cachetools TTLCache",
    "tiered-core": "tiered-cache (TieredCache / @cache)",
    "tiered-core-nojitter": "tiered-cache (TieredCache, jitter=0)",
    "tiered-aws": "tiered-cache (ssm / secrets_manager / s3)",
    "diskcache": "raw diskcache.Cache",
}
# The same, short enough for a terminal table column (the report file uses LABELS).
SHORT_LABELS = {
    "floor": "floor",
    "handwritten": "hand-written",
    "nocache": "no cache",
    "lambda-cache": "lambda-cache",
    "powertools": "Powertools",
    "cachetools": "cachetools",
    "tiered-core": "tiered engine",
    "tiered-core-nojitter": "tiered, jitter=0",
    "tiered-aws": "tiered helpers",
    "diskcache": "diskcache",
}
SHORT_KEY = (
    "Short names: tiered engine = tiered-cache's TieredCache and @cache around a boto3 fetch; "
    "tiered helpers = tiered-cache's ssm, secrets_manager and s3 modules; tiered, jitter=0 = "
    "the engine with jitter turned off; floor = dict.get plus a time.time() comparison."
)


# -- statistics ------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank on the sorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def fmt_ns(ns: float) -> str:
    if ns != ns:  # nan
        return "n/a"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def fmt_ms(ms: float | None) -> str:
    if ms is None or ms != ms:
        return "n/a"
    if ms < 1:
        return f"{ms:.3f}"
    return f"{ms:.1f}" if ms < 1000 else f"{ms:,.0f}"


WIDTH = 100  # terminal columns: every line the benchmarks print fits in this


def wrap(text: str, width: int = WIDTH, indent: str = "") -> str:
    """``text`` re-flowed at word boundaries into lines of at most ``width`` columns.

    Words are never cut: a single word longer than a line (a path, a URL) gets a line of its
    own. Blank lines separate paragraphs and are kept.
    """
    out = []
    for p in text.split("\n\n"):
        out.append(
            textwrap.fill(
                " ".join(p.split()),
                width=width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n\n".join(out)


def bullets(items: list[str], width: int = WIDTH) -> str:
    """A Markdown bullet list, each item wrapped at word boundaries with a hanging indent."""
    return "\n".join(
        textwrap.fill(
            " ".join(item.split()),
            width=width,
            initial_indent="- ",
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        for item in items
    )


def table(title: str, header: list[str], rows: list[list[Any]], notes: str = "") -> str:
    """A Markdown table for the report file: full labels, every column, the title as a heading
    and ``notes`` (prose, wrapped at word boundaries) below it."""
    cells = [[_md_cell(c) for c in header]] + [[_md_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [f"\n### {title}\n", line(cells[0]), rule]
    out += [line(r) for r in cells[1:]]
    if notes:
        out += ["", wrap(notes)]
    return "\n".join(out)


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


_NUMERIC = re.compile(r"^[-+]?[\d,.]+\s*(x|%|ms|s|µs|ns|MB)?$|^n/a$|^-$")


def text_table(
    title: str, header: list[str], rows: list[list[Any]], notes: str = "", width: int = WIDTH
) -> str:
    """A plain table for the terminal that fits in ``width`` columns.

    Columns are separated by two spaces; numeric columns are right-aligned. When the natural
    width is too wide, the widest text columns are narrowed and their cells wrapped at word
    boundaries onto extra lines (never cut mid-word). The title and ``notes`` are wrapped the
    same way. A line can exceed ``width`` only if a single word is wider than its column.
    """
    head = [str(c) for c in header]
    body = [[str(c) for c in row] for row in rows]
    n = len(head)
    numeric = [
        all(_NUMERIC.match(r[i].strip()) for r in body if r[i].strip()) and bool(body)
        for i in range(n)
    ]
    natural = [max(len(r[i]) for r in [head, *body]) for i in range(n)]
    # the narrowest a column can go without cutting a word (numbers never wrap)
    floor = [
        natural[i]
        if numeric[i]
        else max(len(w) + 2 for r in [head, *body] for w in (r[i].split() or [""]))
        for i in range(n)
    ]
    widths = list(natural)
    budget = width - 2 * (n - 1)
    while sum(widths) > budget:
        shrinkable = [i for i in range(n) if widths[i] > floor[i]]
        if not shrinkable:
            break
        i = max(shrinkable, key=lambda j: widths[j])
        widths[i] -= 1

    def cell_lines(text: str, i: int) -> list[str]:
        if len(text) <= widths[i]:
            return [text]
        # continuation lines are indented, so a wrapped cell does not read as a new row
        return textwrap.wrap(
            text,
            widths[i],
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        ) or [""]

    def render(r: list[str]) -> list[str]:
        wrapped = [cell_lines(c, i) for i, c in enumerate(r)]
        height = max(len(w) for w in wrapped)
        lines = []
        for k in range(height):
            parts = []
            for i, w in enumerate(wrapped):
                c = w[k] if k < len(w) else ""
                parts.append(c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]))
            lines.append("  ".join(parts).rstrip())
        return lines

    out = ["", wrap(title), ""]
    out += render(head)
    out.append("  ".join("-" * w for w in widths))
    for r in body:
        out += render(r)
    if notes:
        out += ["", wrap(notes)]
    return "\n".join(out)


# -- the origin hook -------------------------------------------------------------------------


class Origin:
    """Counts every AWS API call of every boto3 client in this process and injects latency.

    Installed by wrapping ``botocore.session.Session.create_client``, so every client made
    afterwards, by any library and any session (boto3.client, boto3.resource,
    boto3.session.Session().client, s3transfer), gets two handlers on its own event emitter:
    ``before-call`` counts the call, ``after-call`` (which botocore emits before it raises an
    error for a 304 or a 404) accrues ``LATENCY_S[service]`` plus, for S3 GetObject, the body
    bytes read at ``S3_BANDWIDTH`` (charged as the body is read). ``mode="sleep"`` sleeps for
    real; ``mode="virtual"`` only adds the time to ``self.injected`` so a caller can add it to
    the wall time it measured.
    """

    def __init__(self, mode: str = "virtual") -> None:
        self.mode = mode
        self.calls: Counter[str] = Counter()
        self.ops: Counter[str] = Counter()
        self.body_bytes = 0
        self.injected = 0.0  # seconds
        self.clients = 0
        self.paused = False  # the harness's own origin updates are not counted
        self._original: Any = None

    def install(self) -> Origin:
        import botocore.session

        original = botocore.session.Session.create_client
        origin = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-call", origin._before)
            client.meta.events.register("after-call", origin._after)
            origin.clients += 1
            return client

        self._original = original
        botocore.session.Session.create_client = create_client
        return self

    def _before(self, model: Any, **_: Any) -> None:
        if self.paused:
            return
        service = model.service_model.service_name
        self.calls[service] += 1
        self.ops[f"{service}.{model.name}"] += 1

    def _after(self, http_response: Any, model: Any, parsed: Any = None, **_: Any) -> None:
        if self.paused:
            return
        service = model.service_model.service_name
        delay = LATENCY_S.get(service, 0.0)
        if http_response.status_code == 304:
            self.ops[f"{service}.{model.name}: 304"] += 1
        if model.name == "GetObject" and http_response.status_code in (200, 206):
            body = parsed.get("Body") if isinstance(parsed, dict) else None
            if body is not None and hasattr(body, "read"):
                self._meter(body)  # bandwidth for the bytes read, as they are read
            else:
                size = int(http_response.headers.get("content-length", 0) or 0)
                self.body_bytes += size
                delay += size / S3_BANDWIDTH
        self._spend(delay)

    def _spend(self, delay: float) -> None:
        if self.mode == "sleep":
            time.sleep(delay)
        self.injected += delay

    def _meter(self, body: Any) -> None:
        """Charge ``S3_BANDWIDTH`` for the bytes of ``body`` as they are read: a library that
        closes a body after its headers (and fetches the object another way) pays for the
        bytes it read, not for the whole object. Every read path of botocore's StreamingBody
        (``read``, ``iter_chunks``, iteration) goes through its ``read``, or ``readinto``."""
        read = body.read
        origin = self

        def metered(*args: Any, **kwargs: Any) -> Any:
            data = read(*args, **kwargs)
            if not origin.paused:
                origin.body_bytes += len(data)
                origin._spend(len(data) / S3_BANDWIDTH)
            return data

        body.read = metered
        readinto = getattr(body, "readinto", None)
        if readinto is not None:

            def metered_into(buffer: Any) -> int:
                count: int = readinto(buffer)
                if not origin.paused:
                    origin.body_bytes += count
                    origin._spend(count / S3_BANDWIDTH)
                return count

            body.readinto = metered_into

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "ops": dict(self.ops),
            "total_calls": self.total,
            "body_bytes": self.body_bytes,
            "injected_ms": self.injected * 1e3,
            "clients_made": self.clients,
        }


# -- moto fixtures ---------------------------------------------------------------------------


def aws_env() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "MOTO_ALLOW_NONEXISTENT_REGION": "true",
    }


def names_for(lib: str, run_id: str) -> dict[str, str]:
    """Per-library origin names: no two peers ever share a name (or a lambda-cache /tmp file)."""
    tag = lib.replace("-nojitter", "").replace("-", "_")
    return {
        "param": f"/bench/{tag}/db_url",
        "secret": f"bench/{tag}/db_password",
        "bucket": "tiered-cache-bench",
        "key": f"{tag}/object.bin",
        "big_key": f"{tag}/big.bin",
        "uri": f"s3://tiered-cache-bench/{tag}/object.bin",
        "big_uri": f"s3://tiered-cache-bench/{tag}/big.bin",
        "s3_entry": f"tcbench-{run_id}-{tag}-object.bin",
        "big_entry": f"tcbench-{run_id}-{tag}-big.bin",
        "table": f"tcbench-{tag}",  # a DynamoDB table keyed by "id" (Powertools' default)
        "item": "db_url",
    }


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` bytes of incompressible-looking data, cheap to make (a repeated random MiB)."""
    import random

    block = random.Random(seed).randbytes(min(size, MB))
    reps, rest = divmod(size, len(block)) if block else (0, 0)
    return block * reps + block[:rest]


def start_moto(
    names: dict[str, str] | list[dict[str, str]],
    s3_size: int = 0,
    big_size: int = 0,
    clock: Callable[[], float] | None = None,
) -> Any:
    """Start moto's in-process ``mock_aws`` and create this library's origin objects.

    The setup clients are made before the Origin hook is installed, so they are not counted.
    With ``clock``, moto's S3 stamps LastModified from it, so libraries that compare
    LastModified with their own (simulated) clock see one consistent time line.
    """
    for k, v in aws_env().items():
        os.environ.setdefault(k, v)
    from moto import mock_aws

    if clock is not None:
        import moto.s3.models as s3_models

        s3_models.utcnow = lambda: datetime.fromtimestamp(clock(), timezone.utc).replace(
            tzinfo=None
        )

    mock = mock_aws()
    mock.start()
    import boto3

    # A private session: boto3's default session (which lambda-cache uses) stays unmade.
    session = boto3.session.Session(region_name=REGION)
    ssm = session.client("ssm")
    sm = session.client("secretsmanager")
    s3 = setup_s3_client()
    ddb = session.client("dynamodb")
    buckets: set[str] = set()
    tables: set[str] = set()
    for n in names if isinstance(names, list) else [names]:
        ssm.put_parameter(Name=n["param"], Value="postgres://db.example:5432/app", Type="String")
        sm.create_secret(Name=n["secret"], SecretString="hunter2-" + "x" * 24)
        if "table" in n and n["table"] not in tables:
            tables.add(n["table"])
            ddb.create_table(
                TableName=n["table"],
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            ddb.put_item(
                TableName=n["table"],
                Item={"id": {"S": n["item"]}, "value": {"S": "postgres://db.example:5432/app"}},
            )
        if s3_size or big_size:
            if n["bucket"] not in buckets:
                s3.create_bucket(Bucket=n["bucket"])
                buckets.add(n["bucket"])
            if s3_size:
                s3.put_object(Bucket=n["bucket"], Key=n["key"], Body=payload(s3_size))
            if big_size:
                s3.put_object(Bucket=n["bucket"], Key=n["big_key"], Body=payload(big_size))
    return mock


def setup_s3_client() -> Any:
    """The harness's own S3 client: no CRC32 of the body on upload (moto verifies it in pure
    Python: 256 MB took minutes). Peers' clients keep botocore's defaults."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session(region_name=REGION).client(
        "s3", config=Config(request_checksum_calculation="when_required")
    )


def update_object(origin: Origin, names: dict[str, str], key: str, size: int, seed: int) -> None:
    """Change an S3 object at the origin (not counted: the hook is paused meanwhile)."""

    origin.paused = True
    try:
        setup_s3_client().put_object(
            Bucket=names["bucket"], Key=names[key], Body=payload(size, seed)
        )
    finally:
        origin.paused = False


# -- simulated time --------------------------------------------------------------------------


class SimClock:
    """A wall clock the harness moves: ``real + offset`` (mode "real") or fixed ("fixed")."""

    def __init__(self, fixed: float | None = None) -> None:
        self.fixed = fixed
        self.offset = 0.0

    def __call__(self) -> float:
        if self.fixed is not None:
            return self.fixed + self.offset
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def set(self, t: float) -> None:
        self.fixed = t
        self.offset = 0.0


def fake_datetime(clock: Callable[[], float]) -> type:
    """A ``datetime`` subclass whose ``now()`` reads ``clock`` (for libraries without a timer)."""

    class SimDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return datetime.fromtimestamp(clock(), tz)

        @classmethod
        def utcnow(cls) -> datetime:  # type: ignore[override]
            return datetime.fromtimestamp(clock(), timezone.utc).replace(tzinfo=None)

    return SimDatetime


# -- processes and results -------------------------------------------------------------------


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(aws_env())
    env.pop("TIERED_CACHE_DIR", None)
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    env["PYTHONHASHSEED"] = "0"
    if extra:
        env.update(extra)
    return env


def run_worker(
    spec: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 600.0
) -> dict[str, Any]:
    """Run one ``_worker.py`` task in a fresh interpreter; its JSON result, or an error dict."""
    proc = subprocess.run(
        [sys.executable, WORKER, json.dumps(spec)],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT ")]
    if lines:  # a worker that kills itself (the restart scenario) still reports first
        result: dict[str, Any] = json.loads(lines[-1][len("@@RESULT ") :])
        result["returncode"] = proc.returncode
        return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
    return {"error": f"exit {proc.returncode}: " + " / ".join(tail)}


def emit(result: dict[str, Any]) -> None:
    """How a worker hands its result back (one line on stdout)."""
    print("@@RESULT " + json.dumps(result), flush=True)


def module_available(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "implementation": platform.python_implementation()}
    for dist in (
        "tiered-cache",
        "diskcache",
        "boto3",
        "botocore",
        "moto",
        "lambda-cache",
        "aws-lambda-powertools",
        "cachetools",
        "matplotlib",
    ):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "processor": platform.processor(),
    }
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        info["git_commit"] = commit
    return info


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def tiered_aws_status() -> str | None:
    """None when tiered_cache's AWS helpers are importable, else the reason they are not."""
    missing = [
        f"tiered_cache.{m}"
        for m in ("ssm", "secrets_manager", "s3")
        if not module_available(f"tiered_cache.{m}")
    ]
    return f"n/a (module missing: {', '.join(missing)})" if missing else None


# -- hit-path timing -------------------------------------------------------------------------

FLOOR_SRC = """
import time as _time_mod
_FLOOR_STORE = {"k": ("value", _time_mod.time() + 1e9)}

def floor(key):
    entry = _FLOOR_STORE.get(key)
    if entry is not None and _time_mod.time() < entry[1]:
        return entry[0]
    return None
"""

HANDWRITTEN_SRC = """
import functools as _functools
import time as _time_mod2

def ttl_decorator(ttl):
    def decorate(fn):
        store = {}

        @_functools.wraps(fn)
        def wrapper(*args, **kwargs):
            hit = store.get("k")
            now = _time_mod2.time()
            if hit is not None and now < hit[1]:
                return hit[0]
            value = fn(*args, **kwargs)
            store["k"] = (value, now + ttl)
            return value

        return wrapper

    return decorate

@ttl_decorator(3600)
def handwritten():
    return "value"
"""


def baseline_namespace() -> dict[str, Any]:
    """``floor(key)`` and ``handwritten()``, the baselines every hit path is compared with."""
    ns: dict[str, Any] = {}
    exec(FLOOR_SRC, ns)  # noqa: S102 - our own constant source
    exec(HANDWRITTEN_SRC, ns)  # noqa: S102
    ns["FK"] = "k"
    return ns


def time_paths(
    ns: dict[str, Any],
    stmts: dict[str, str],
    rounds: int,
    batch_s: float = 0.002,
    calls: int = 20000,
) -> dict[str, dict[str, Any]]:
    """Per-call cost of each statement: timeit-style batches, interleaved round by round.

    ``median_ns``: the median over ``rounds`` batches of the mean per-call time (each batch
    runs ~``batch_s`` seconds; all statements are timed once per round, so drift and noise hit
    them alike). ``p99_ns``: the 99th percentile of ``calls`` individually timed calls
    (perf_counter_ns around each, minus the median cost of timing an empty statement).
    """
    import random
    import timeit

    timers = {label: timeit.Timer(stmt, globals=ns) for label, stmt in stmts.items()}
    numbers: dict[str, int] = {}
    for label, t in timers.items():
        t.timeit(50)  # warm
        n = 1
        while True:
            dt = t.timeit(n)
            if dt >= batch_s / 4 or n >= 1 << 22:
                break
            n *= 4
        numbers[label] = max(1, int(n * batch_s / max(dt, 1e-9)))
    samples: dict[str, list[float]] = {label: [] for label in timers}
    order = list(timers)
    rng = random.Random(1)
    for _ in range(rounds):
        rng.shuffle(order)
        for label in order:
            n = numbers[label]
            samples[label].append(timers[label].timeit(n) / n * 1e9)
    out: dict[str, dict[str, Any]] = {}
    empty = _per_call(ns, "pass", calls)
    overhead = median(empty)
    for label, stmt in stmts.items():
        singles = [max(0.0, s - overhead) for s in _per_call(ns, stmt, calls)]
        out[label] = {
            "stmt": stmt,
            "median_ns": median(samples[label]),
            "p99_ns": pct(singles, 99),
            "per_call_median_ns": median(singles),
            "rounds": rounds,
            "batch_calls": numbers[label],
        }
    return out


def _per_call(ns: dict[str, Any], stmt: str, calls: int) -> list[float]:
    src = (
        "def _probe(_n, _pc):\n"
        "    out = [0] * _n\n"
        "    for _i in range(_n):\n"
        "        _t = _pc()\n"
        f"        {stmt}\n"
        "        out[_i] = _pc() - _t\n"
        "    return out\n"
    )
    local = dict(ns)
    exec(src, local)  # noqa: S102 - statements are the harness's own
    return [float(x) for x in local["_probe"](calls, time.perf_counter_ns)]


def merge_hits(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several processes: each path's median is the median over processes of
    its ratio to that process's floor, times the median floor (so ratios stay same-process)."""
    ok = [r for r in runs if r.get("paths")]
    if not ok:
        return runs[0]
    merged = dict(ok[0])
    floor = median([r["paths"]["floor"]["median_ns"] for r in ok])
    paths: dict[str, Any] = {}
    for label in ok[0]["paths"]:
        ratios = [r["paths"][label]["median_ns"] / r["paths"]["floor"]["median_ns"] for r in ok]
        paths[label] = {
            "median_ns": median(ratios) * floor,
            "p99_ns": median([r["paths"][label]["p99_ns"] for r in ok]),
            "per_process_median_ns": [r["paths"][label]["median_ns"] for r in ok],
            "per_process_ratio": ratios,
        }
    merged["paths"] = paths
    merged["processes"] = len(ok)
    merged["origin_calls_while_timing"] = sum(r["origin_calls_while_timing"] for r in ok)
    return merged


# -- forked workers --------------------------------------------------------------------------


def preload() -> None:
    """Import moto (with its SSM, Secrets Manager and S3 backends) and boto3 in this process.

    Forked workers then start in ~0.1 s instead of ~3 s. No session, client or peer library
    is made here, so nothing a library would cache is warmed; scenarios that time a cold
    interpreter (restart, cold start) use real fresh interpreters instead of forks.
    """
    for k, v in aws_env().items():
        os.environ.setdefault(k, v)
    import boto3  # noqa: F401
    import moto.s3.models
    import moto.secretsmanager.models
    import moto.ssm.models  # noqa: F401
    from moto import mock_aws  # noqa: F401


def fork_start(spec: dict[str, Any], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Fork a child that runs one ``_worker`` task; (pid, result file)."""
    import tempfile
    import traceback

    fd, out = tempfile.mkstemp(prefix="tcbench-", suffix=".json")
    os.close(fd)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.environ.update(aws_env())
            os.environ.pop("TIERED_CACHE_DIR", None)
            if env:
                os.environ.update(env)
            import _worker

            result = _worker.TASKS[spec["task"]](spec)
            with open(out, "w") as fh:
                json.dump(result, fh)
            code = 0
            if spec.get("die"):  # a crashed runtime: no atexit, no close, no flush
                os.kill(os.getpid(), 9)
        except BaseException:
            with contextlib.suppress(Exception), open(out, "w") as fh:
                json.dump({"error": traceback.format_exc()[-1500:]}, fh)
        finally:
            os._exit(code)
    return pid, out


def fork_wait(pid: int, out: str, timeout: float = 600.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.005)
    else:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
        os.waitpid(pid, 0)
        return {"error": f"worker timed out after {timeout:.0f} s"}
    try:
        with open(out) as fh:
            result: dict[str, Any] = json.load(fh)
    except (OSError, ValueError):
        result = {"error": f"worker exited with status {status} and no result"}
    finally:
        with contextlib.suppress(OSError):
            os.remove(out)
    return result


def fork_worker(
    spec: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 600.0
) -> dict[str, Any]:
    pid, out = fork_start(spec, env)
    return fork_wait(pid, out, timeout)


def precompile() -> None:
    """Write the bytecode of every library the fresh-interpreter timings import.

    pip compiles an installed package's ``.pyc`` files when it installs it; an editable
    install (this checkout) does not, and with ``PYTHONDONTWRITEBYTECODE`` set an import
    never writes them: tiered-cache's modules would be compiled from source in every fresh
    process while the peers' come precompiled. This puts everyone on the installed footing.
    """
    import compileall
    import importlib.util

    for name in ("tiered_cache", "diskcache", "lambda_cache", "aws_lambda_powertools"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                compileall.compile_dir(location, quiet=1)
