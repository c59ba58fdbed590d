"""Fleet benchmark: origin calls without a shared tier, with Redis and with DynamoDB, side by side,
and what a shared hit costs against a disk hit.

    python benchmarks/fleet.py            # 32 environments, 16 TTLs per phase (~5 min)
    python benchmarks/fleet.py --quick    # 32 environments, 4 TTLs per phase (~2 min)
    python benchmarks/fleet.py --tiers redis   # one shared tier only

Setting. ``--envs`` (32) simulated Lambda execution environments, each a separate process with
its own cache directory (its own /tmp). Each environment serves invocations one at a time, with
exponential gaps (mean ``--gap`` ms of real time); every invocation reads ``--keys`` parameters
through ``get_or_load(key, origin, ttl=60)``. The origin sleeps 20 ms (an SSM GetParameter round
trip) and counts its calls. The shared tiers: one ``redis-server`` this script starts on a free
loopback port (or ``--redis-url``), and one moto server (``python -m moto.server``, DynamoDB over
HTTP on loopback) with a fresh table per phase. Redis also carries the start signal.

Time. TTLs are 60 simulated seconds; the caches read an injected wall clock that runs
``--scale`` (60) times faster than real time, shared by all processes (sim = epoch + (real -
start) x scale), so one TTL passes in one real second and a run covers many TTLs. Only the
cache's notion of time is scaled: round trips, lock polling and the origin's 20 ms are real.
Expiries (Redis PX, the DynamoDB ``ttl`` attribute) are in simulated seconds; freshness is
decided by the envelope times, as always. The DynamoDB phase runs its clock ``--dynamodb-scale``
(10) times faster only (a TTL is 6 real s): moto is a Python server sharing this machine's cores
with the 32 workers and serves about 250 requests/s here, fewer than 32 environments need when a
TTL passes every second (at 60x the phase was moto-bound: 38 invocations against Redis's 1,153).
Origin calls are counted per TTL window either way.

Phases, in one run: the same workload without a shared tier, then with each shared tier (fresh
directories, an empty store). Reported: origin calls per key per TTL window (median over the
windows, first window included) and the ratio without/with. Then, in this process, interleaved
in random order: a memory hit, a disk hit, a shared hit through each tier (memory and disk
emptied first, so the hit includes filling both) of the same 200-byte value, and each tier's
GET round trip alone; median and p99 of each, and the median ratio shared/disk.

Loopback is not AWS: beside each measured round trip this prints AWS's typical published
figures (ElastiCache about 0.5 ms in the same AZ, DynamoDB about 3-6 ms: not measured here) and
the shared hit they imply (measured hit - measured round trip + typical round trip).

Writes benchmarks/results/fleet.json (``--quick``: fleet-quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
SIM_EPOCH = 1_800_000_000.0
ORIGIN_LATENCY = 0.020
TTL = 60.0
TIERS = ("redis", "dynamodb")
REGION = "us-east-1"
#: AWS's typical round trips from a Lambda function (published figures, not measured here):
#: ElastiCache is "sub-millisecond", about 0.5 ms in the same AZ; DynamoDB "single-digit
#: milliseconds", about 3-6 ms for a GetItem.
AWS_ROUND_TRIP_MS = {"redis": (0.5, 0.5), "dynamodb": (3.0, 6.0)}
LABELS = {"redis": "Redis", "dynamodb": "DynamoDB"}
#: List prices in USD per million (us-east-1): DynamoDB on-demand, Standard table class
#: (https://aws.amazon.com/dynamodb/pricing/on-demand/): a read request unit (one strongly
#: consistent read of up to 4 KB, or two eventually consistent ones) and a write request unit
#: (one write of up to 1 KB; a conditional write that fails is charged too). SSM higher-throughput
#: GetParameter and Secrets Manager GetSecretValue: $0.05 per 10,000 calls.
PRICE_PER_MILLION = {"read_unit": 0.125, "write_unit": 0.625, "origin_call": 5.0}
#: What a process needs to reach moto (and nothing else) with boto3's defaults.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def make_shared(cfg: dict[str, Any], clock: Any, **timeouts: Any) -> Any:
    """The shared tier a configuration names (None without one)."""
    if cfg["shared"] == "redis":
        from tiered_cache import SharedTier

        return SharedTier(cfg["url"], prefix=cfg["prefix"], lock_wait=5.0, clock=clock, **timeouts)
    if cfg["shared"] == "dynamodb":
        from tiered_cache import DynamoDBTier

        # lock_lease is in the (scaled) clock's seconds: 600 simulated s are 10 real s.
        return DynamoDBTier(
            cfg["table"],
            endpoint_url=cfg["moto_url"],
            region_name=REGION,
            prefix=cfg["prefix"],
            lock_wait=5.0,
            lock_lease=600.0,
            clock=clock,
            **timeouts,
        )
    return None


# -- one environment (a worker process) --------------------------------------------------------


def run_environment(cfg: dict[str, Any]) -> None:
    import redis

    from tiered_cache import TieredCache

    control = redis.Redis.from_url(cfg["url"])
    real_start: float = 0.0

    def clock() -> float:
        return SIM_EPOCH + (time.time() - real_start) * float(cfg["scale"])

    # Timeouts of 1 s: 32 processes on one small machine must not trip the breaker on a
    # scheduling hiccup; the latency phase below uses each tier's defaults.
    shared = make_shared(cfg, clock, timeout=1.0, connect_timeout=1.0)
    cache = TieredCache(directory=cfg["directory"], clock=clock, shared=shared, lock_timeout=5.0)
    calls: list[list[Any]] = []

    def origin(key: str) -> Any:
        def load() -> str:
            calls.append([key, clock()])
            time.sleep(ORIGIN_LATENCY)
            return f"value of {key}"

        return load

    keys = [f"ssm:/prod/app/param-{i}" for i in range(cfg["keys"])]
    rng = random.Random(cfg["seed"])
    requests: Counter[str] = Counter()  # DynamoDB calls by what they cost
    if shared is not None:
        cache.get("warm-up")  # the client and its connection, before the clock starts
    if cfg["shared"] == "dynamodb":

        def count(params: dict[str, Any], model: Any, **_: Any) -> None:
            if model.name == "GetItem":
                requests["strong_reads" if params.get("ConsistentRead") else "reads"] += 1
            else:
                requests["writes"] += 1  # PutItem, DeleteItem (lock polls included)

        shared._client().meta.events.register("provide-client-params.dynamodb", count)
    control.incr(cfg["prefix"] + "ready")
    deadline = time.monotonic() + 120.0
    while True:  # wait for the common start (bounded)
        go = control.get(cfg["prefix"] + "go")
        if go is not None:
            real_start = float(go)
            break
        if time.monotonic() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.005)
    while time.time() < real_start:
        time.sleep(0.001)
    time.sleep(rng.random() * cfg["gap"])  # environments do not move in step
    end = real_start + cfg["duration"]
    invocations = 0
    while time.time() < end:
        for key in keys:
            cache.get_or_load(key, origin(key), ttl=TTL)
        invocations += 1
        time.sleep(rng.expovariate(1.0 / cfg["gap"]))
    report = {"calls": calls, "invocations": invocations, "stats": cache.stats()}
    print(json.dumps({**report, "requests": dict(requests)}))


# -- the stores ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            "fleet.py needs redis-server (apt-get install redis-server) or --redis-url URL"
        )
    port = free_port()
    proc = subprocess.Popen(
        [
            *(binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--daemonize", "no", "--dir", directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    probe = redis.Redis.from_url(url)
    deadline = time.monotonic() + 15
    while True:
        try:
            probe.ping()
            return proc, url
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.01)


def dynamodb_client(url: str) -> Any:
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """``python -m moto.server`` on a free loopback port (a process of its own: its CPU is not
    this one's, as a real DynamoDB's is not the function's)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **AWS_ENV},
    )
    url = f"http://127.0.0.1:{port}"
    client = dynamodb_client(url)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.list_tables()
            return proc, url
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    "the moto server did not start (pip install 'moto[server,dynamodb]')"
                ) from None
            time.sleep(0.05)


def create_table(moto_url: str) -> str:
    """A fresh table with the README's schema (string partition key ``pk``)."""
    name = f"fleet-{uuid.uuid4().hex[:8]}"
    dynamodb_client(moto_url).create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


# -- the parent ---------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_phase(
    name: str,
    shared: str,
    url: str,
    moto_url: str | None,
    args: argparse.Namespace,
    workdir: str,
) -> dict[str, Any]:
    import redis

    control = redis.Redis.from_url(url)
    control.flushall()
    prefix = f"fleet-{name}:"
    table = create_table(moto_url) if shared == "dynamodb" and moto_url else ""
    scale = args.dynamodb_scale if shared == "dynamodb" else args.scale
    duration = args.ttls * TTL / scale
    print(
        f"== phase {name!r}: {args.envs} environments, {args.keys} keys, {args.ttls} TTLs "
        f"({duration:.1f} s real, clock x{scale:g}), shared tier: {LABELS.get(shared, 'none')}",
        flush=True,
    )
    procs = []
    for i in range(args.envs):
        directory = os.path.join(workdir, name, f"env-{i:02d}")
        cfg = {
            "url": url,
            "moto_url": moto_url,
            "table": table,
            "prefix": prefix,
            "shared": shared,
            "directory": directory,
            "scale": scale,
            "keys": args.keys,
            "gap": args.gap / 1000.0,
            "duration": duration,
            "seed": i,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(cfg)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **AWS_ENV, "PYTHONPATH": ROOT},
            )
        )
    deadline = time.monotonic() + 180
    while int(control.get(prefix + "ready") or 0) < args.envs:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            for p in procs:
                p.kill()
            raise SystemExit("environments did not start: " + (procs[0].communicate()[1] or ""))
        time.sleep(0.02)
    real_start = time.time() + 0.2
    control.set(prefix + "go", repr(real_start))
    print(f"   all {args.envs} environments ready; running", flush=True)
    while any(p.poll() is None for p in procs):
        elapsed = time.time() - real_start
        if elapsed > 0:
            print(
                f"   {min(elapsed, duration):5.1f}/{duration:.1f} s  "
                f"(TTL window {min(args.ttls, int(elapsed * scale // TTL) + 1)}/{args.ttls})",
                flush=True,
            )
        time.sleep(min(2.0, max(0.2, duration / 8)))
    reports = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"an environment failed:\n{err}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    windows: Counter[tuple[str, int]] = Counter()
    for report in reports:
        for key, when in report["calls"]:
            windows[(key, int((when - SIM_EPOCH) // TTL))] += 1
    per_window = [
        windows[(f"ssm:/prod/app/param-{k}", w)] for k in range(args.keys) for w in range(args.ttls)
    ]
    totals = Counter[str]()
    for report in reports:
        totals.update({k: v for k, v in report["stats"].items() if isinstance(v, int)})
    late = sum(n for (_, w), n in windows.items() if w >= args.ttls)
    requests = Counter[str]()
    for report in reports:
        requests.update(report.get("requests", {}))
    result = {
        "shared": shared or None,
        "clock_scale": scale,
        "origin_calls_after_the_last_window": late,
        "origin_calls": sum(per_window),
        "origin_calls_per_key_per_ttl_median": statistics.median(per_window),
        "origin_calls_per_key_per_ttl_max": max(per_window),
        "invocations": sum(r["invocations"] for r in reports),
        "requests": dict(requests),
        "stats": {
            k: totals[k]
            for k in (
                "memory_hits",
                "disk_hits",
                "shared_hits",
                "loads",
                "lock_timeouts",
                "shared_attempts",
                "shared_errors",
                "shared_lock_timeouts",
            )
        },
    }
    print(
        f"   origin calls: {result['origin_calls']} over {args.ttls} TTLs x {args.keys} keys; "
        f"median {result['origin_calls_per_key_per_ttl_median']} per key per TTL "
        f"(max {result['origin_calls_per_key_per_ttl_max']}); "
        f"{result['invocations']} invocations; shared errors {totals['shared_errors']}",
        flush=True,
    )
    return result


def measure_latency(
    url: str, moto_url: str | None, tiers: list[str], samples: int, workdir: str
) -> dict[str, Any]:
    """Memory, disk and each tier's shared hits of one value, interleaved in random order."""
    from tiered_cache import TieredCache

    names = ", ".join(LABELS[t] for t in tiers)
    print(
        f"== latency: {samples} samples each of a memory hit, a disk hit and a shared hit "
        f"through {names} (and each one's GET alone)",
        flush=True,
    )
    key, value = "ssm:/prod/app/latency", "x" * 200
    caches: dict[str, Any] = {}
    stores: dict[str, Any] = {}
    for tier in tiers:
        cfg = {"shared": tier, "url": url, "moto_url": moto_url, "prefix": "fleet-latency:"}
        if tier == "dynamodb" and moto_url:
            cfg["table"] = create_table(moto_url)
        stores[tier] = make_shared(cfg, time.time)  # each tier's default timeouts
        directory = os.path.join(workdir, f"latency-{tier}")
        caches[tier] = TieredCache(directory=directory, shared=stores[tier], ttl=3600)
        caches[tier].set(key, value)
    local = caches[tiers[0]]

    def never() -> str:
        raise AssertionError("the origin was called during the latency measurement")

    paths = ["memory", "disk", *(f"shared_{t}" for t in tiers), *(f"get_{t}" for t in tiers)]
    times: dict[str, list[float]] = {path: [] for path in paths}
    rng = random.Random(7)
    clock = time.perf_counter
    step = max(1, samples // 5)
    for n in range(samples):
        if n % step == 0:
            print(f"   sample {n}/{samples}", flush=True)
        order = list(paths)
        rng.shuffle(order)
        for path in order:
            kind, _, tier = path.partition("_")
            cache = caches[tier] if tier else local
            cache.get_or_load(key, never)  # warm: everywhere again
            if kind == "get":  # the round trip alone, for reference
                started = clock()
                stores[tier].get(key)
                times[path].append(clock() - started)
                continue
            if kind != "memory":
                cache._memory.delete(key)
            if kind == "shared":
                cache._disk.delete(key)
            started = clock()
            cache.get_or_load(key, never)
            times[path].append(clock() - started)
    for tier in tiers:
        stats = caches[tier].stats()
        assert stats["shared_hits"] == samples, (tier, stats)
    result: dict[str, Any] = {}
    for path, values in times.items():
        result[path] = {
            "median_us": statistics.median(values) * 1e6,
            "p99_us": percentile(values, 0.99) * 1e6,
        }
        print(
            f"   {path:16s}: median {result[path]['median_us']:8.1f} us, "
            f"p99 {result[path]['p99_us']:8.1f} us",
            flush=True,
        )
    disk = result["disk"]["median_us"]
    for tier in tiers:
        hit, trip = result[f"shared_{tier}"]["median_us"], result[f"get_{tier}"]["median_us"]
        low, high = AWS_ROUND_TRIP_MS[tier]
        result[f"shared_{tier}_over_disk_median_ratio"] = hit / disk
        result[f"shared_{tier}_on_aws_estimate_ms"] = [
            (hit - trip) / 1e3 + low,
            (hit - trip) / 1e3 + high,
        ]
    result["origin_latency_us"] = ORIGIN_LATENCY * 1e6
    return result


def dynamodb_cost(
    phase: dict[str, Any], without: float, args: argparse.Namespace
) -> dict[str, float]:
    """What the DynamoDB phase's requests cost per key per TTL window, at list prices (all items
    here are under 1 KB: an eventually consistent read is half a read unit, a strongly consistent
    one a unit, a write a write unit), against the origin calls the tier saved."""
    windows = args.keys * args.ttls
    per = {k: phase["requests"].get(k, 0) / windows for k in ("reads", "strong_reads", "writes")}
    units_read = per["reads"] * 0.5 + per["strong_reads"]
    usd = (
        units_read * PRICE_PER_MILLION["read_unit"]
        + per["writes"] * PRICE_PER_MILLION["write_unit"]
    )
    saved = without - phase["origin_calls_per_key_per_ttl_median"]
    return {
        **per,
        "dynamodb_usd": usd,
        "origin_calls_saved": saved,
        "origin_saved_usd": saved * PRICE_PER_MILLION["origin_call"],
    }


def _ms(low: float, high: float) -> str:
    return f"{low:.1f} ms" if abs(high - low) < 0.05 else f"{low:.1f}-{high:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 TTLs per phase, fewer samples")
    parser.add_argument("--envs", type=int, default=32, help="environments (processes)")
    parser.add_argument("--keys", type=int, default=4, help="parameters read per invocation")
    parser.add_argument("--ttls", type=int, default=None, help="TTL windows per phase")
    parser.add_argument("--scale", type=float, default=60.0, help="simulated s per real s")
    parser.add_argument(
        "--dynamodb-scale",
        type=float,
        default=10.0,
        help="the same for the DynamoDB phase (moto serves ~250 requests/s here)",
    )
    parser.add_argument("--gap", type=float, default=100.0, help="mean ms between invocations")
    parser.add_argument("--samples", type=int, default=None, help="latency samples per path")
    parser.add_argument(
        "--tiers", default=",".join(TIERS), help="shared tiers to run: redis,dynamodb"
    )
    parser.add_argument("--redis-url", default=None, help="use this Redis (it gets flushed!)")
    parser.add_argument("--out", default=None, help="results file (default: results/fleet.json)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        run_environment(json.loads(args.worker))
        return
    os.environ.update(AWS_ENV)  # this process talks to moto only, with fake credentials
    tiers = [t.strip() for t in args.tiers.split(",") if t.strip()]
    if not tiers or any(t not in TIERS for t in tiers):
        parser.error(f"--tiers takes a comma-separated list of {', '.join(TIERS)}")
    args.ttls = args.ttls or (4 if args.quick else 16)
    args.samples = args.samples or (300 if args.quick else 2000)
    out = args.out or os.path.join(RESULTS, "fleet-quick.json" if args.quick else "fleet.json")
    workdir = tempfile.mkdtemp(prefix="tiered-fleet-")
    servers: list[subprocess.Popen[bytes]] = []
    phases: dict[str, dict[str, Any]] = {}
    try:
        url = args.redis_url
        if url is None:
            server, url = start_redis(workdir)
            servers.append(server)
        moto_url = None
        if "dynamodb" in tiers:
            print("== starting a moto server (DynamoDB over HTTP on loopback)", flush=True)
            moto, moto_url = start_moto()
            servers.append(moto)
        phases["without"] = run_phase("without", "", url, moto_url, args, workdir)
        for tier in tiers:
            phases[tier] = run_phase(tier, tier, url, moto_url, args, workdir)
        latency = measure_latency(url, moto_url, tiers, args.samples, workdir)
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    without = phases["without"]["origin_calls_per_key_per_ttl_median"]
    calls: dict[str, Any] = {"without_shared": without}
    for tier in tiers:
        with_tier = phases[tier]["origin_calls_per_key_per_ttl_median"]
        calls[tier] = with_tier
        calls[f"ratio_without_over_{tier}"] = without / with_tier
    summary = {
        "origin_calls_per_key_per_ttl_median": calls,
        "shared_hit_over_disk_hit_median_ratio": {
            t: latency[f"shared_{t}_over_disk_median_ratio"] for t in tiers
        },
    }
    print("== summary", flush=True)
    print(
        "   invocations: "
        + ", ".join(f"{name} {phase['invocations']}" for name, phase in phases.items()),
        flush=True,
    )
    print(
        "   origin calls per key per TTL (median): without a shared tier "
        + f"{without}, "
        + ", ".join(
            f"with {LABELS[t]} {calls[t]} ({calls[f'ratio_without_over_{t}']:.1f}x fewer)"
            for t in tiers
        ),
        flush=True,
    )
    disk = latency["disk"]["median_us"] / 1e3
    print(
        f"   a disk hit: {disk:.2f} ms (median); the origin here takes "
        f"{ORIGIN_LATENCY * 1e3:.0f} ms",
        flush=True,
    )
    if "dynamodb" in tiers:
        summary["dynamodb_cost_per_million_key_ttls"] = cost = dynamodb_cost(
            phases["dynamodb"], without, args
        )
        print(
            f"   DynamoDB per key per TTL: {cost['reads']:.1f} reads, "
            f"{cost['strong_reads']:.1f} strongly consistent reads, {cost['writes']:.1f} writes "
            f"(the fleet lock's polls included) = ${cost['dynamodb_usd']:.2f} per million "
            f"key-TTLs at list prices, against ${cost['origin_saved_usd']:.2f} for the "
            f"{cost['origin_calls_saved']:.1f} origin calls saved ($5.00 per million)",
            flush=True,
        )
    for tier in tiers:
        hit = latency[f"shared_{tier}"]["median_us"] / 1e3
        trip = latency[f"get_{tier}"]["median_us"] / 1e3
        low, high = AWS_ROUND_TRIP_MS[tier]
        aws_low, aws_high = latency[f"shared_{tier}_on_aws_estimate_ms"]
        where = "redis-server" if tier == "redis" else "moto"
        print(
            f"   {LABELS[tier]:8s} shared hit {hit:.2f} ms = {hit / disk:.1f}x a disk hit "
            f"(its GET on loopback {where}: {trip:.2f} ms). On AWS the round trip is typically "
            f"{_ms(low, high)} (AWS's published figure, not measured here): a shared hit of "
            f"about {_ms(aws_low, aws_high)}",
            flush=True,
        )
    document = {
        "benchmark": "fleet",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "settings": {
            "envs": args.envs,
            "keys": args.keys,
            "ttl_sim_s": TTL,
            "ttls": args.ttls,
            "scale": args.scale,
            "dynamodb_scale": args.dynamodb_scale,
            "mean_gap_ms": args.gap,
            "origin_latency_ms": ORIGIN_LATENCY * 1e3,
            "quick": args.quick,
            "latency_samples": args.samples,
            "tiers": tiers,
            "aws_round_trip_typical_ms_not_measured": {t: AWS_ROUND_TRIP_MS[t] for t in tiers},
        },
        "summary": summary,
        "phases": phases,
        "latency": latency,
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, out)
    print(f"   wrote {os.path.relpath(out)}", flush=True)


if __name__ == "__main__":
    main()
