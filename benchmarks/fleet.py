"""Fleet benchmark: origin calls with and without the shared tier, and what a shared hit costs.

    python benchmarks/fleet.py            # 32 environments, 16 TTLs per phase (~1 min)
    python benchmarks/fleet.py --quick    # 32 environments, 4 TTLs per phase (~20 s)

Setting. ``--envs`` (32) simulated Lambda execution environments, each a separate process with
its own cache directory (its own /tmp), all on one Redis (a ``redis-server`` this script starts
on a free loopback port, or ``--redis-url``). Each environment serves invocations one at a time,
with exponential gaps (mean ``--gap`` ms of real time); every invocation reads ``--keys``
parameters through ``get_or_load(key, origin, ttl=60)``. The origin sleeps 20 ms (an SSM
GetParameter round trip) and counts its calls.

Time. TTLs are 60 simulated seconds; the caches read an injected wall clock that runs
``--scale`` (60) times faster than real time, shared by all processes (sim = epoch + (real -
start) x scale), so one TTL passes in one real second and a run covers many TTLs. Only the
cache's notion of time is scaled: Redis round trips, lock polling and the origin's 20 ms are
real. Redis expiries are set in simulated seconds, so Redis keeps entries longer than needed
here; freshness is decided by the envelope times, as always.

Phases, in one run: the same workload without the shared tier, then with it (fresh
directories, a flushed Redis). Reported: origin calls per key per TTL window (median over the
windows, first window included) and the ratio without/with. Then, in this process,
interleaved: a memory hit, a disk hit and a shared hit (memory and disk emptied first, so the
hit includes filling both) of the same 200-byte value, and the shared tier's GET round trip
alone; median and p99 of each, and the median ratio shared/disk. Loopback Redis: add your
network round trip (about 0.3-1 ms to ElastiCache in the same AZ) to the shared-hit figure.

Writes benchmarks/results/fleet.json.
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
from collections import Counter
from datetime import datetime, timezone
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
SIM_EPOCH = 1_800_000_000.0
ORIGIN_LATENCY = 0.020
TTL = 60.0


# -- one environment (a worker process) --------------------------------------------------------


def run_environment(cfg: dict[str, Any]) -> None:
    import redis

    from tiered_cache import TieredCache
    from tiered_cache._shared import SharedTier

    control = redis.Redis.from_url(cfg["url"])
    real_start: float = 0.0

    def clock() -> float:
        return SIM_EPOCH + (time.time() - real_start) * cfg["scale"]

    shared = None
    if cfg["shared"]:
        # Timeouts of 1 s: 32 processes on one small machine must not trip the breaker on a
        # scheduling hiccup; the latency phase below uses the 50 ms defaults.
        shared = SharedTier(
            cfg["url"],
            prefix=cfg["prefix"],
            timeout=1.0,
            connect_timeout=1.0,
            lock_wait=5.0,
            clock=clock,
        )
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
    print(json.dumps({"calls": calls, "invocations": invocations, "stats": cache.stats()}))


# -- the parent ---------------------------------------------------------------------------------


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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_phase(
    name: str, shared: bool, url: str, args: argparse.Namespace, workdir: str
) -> dict[str, Any]:
    import redis

    control = redis.Redis.from_url(url)
    control.flushall()
    prefix = f"fleet-{name}:"
    duration = args.ttls * TTL / args.scale
    print(
        f"== phase {name!r}: {args.envs} environments, {args.keys} keys, {args.ttls} TTLs "
        f"({duration:.1f} s real), shared tier {'ON' if shared else 'off'}",
        flush=True,
    )
    procs = []
    for i in range(args.envs):
        directory = os.path.join(workdir, name, f"env-{i:02d}")
        cfg = {
            "url": url,
            "prefix": prefix,
            "shared": shared,
            "directory": directory,
            "scale": args.scale,
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
                env={**os.environ, "PYTHONPATH": ROOT},
            )
        )
    deadline = time.monotonic() + 120
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
                f"(TTL window {min(args.ttls, int(elapsed * args.scale // TTL) + 1)}/{args.ttls})",
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
    result = {
        "shared": shared,
        "origin_calls": sum(per_window),
        "origin_calls_per_key_per_ttl_median": statistics.median(per_window),
        "origin_calls_per_key_per_ttl_max": max(per_window),
        "invocations": sum(r["invocations"] for r in reports),
        "stats": {
            k: totals[k]
            for k in (
                "memory_hits",
                "disk_hits",
                "shared_hits",
                "loads",
                "lock_timeouts",
                "shared_errors",
                "shared_lock_timeouts",
            )
        },
    }
    print(
        f"   origin calls: {result['origin_calls']} over {args.ttls} TTLs x {args.keys} keys; "
        f"median {result['origin_calls_per_key_per_ttl_median']} per key per TTL "
        f"(max {result['origin_calls_per_key_per_ttl_max']}); "
        f"{result['invocations']} invocations",
        flush=True,
    )
    return result


def measure_latency(url: str, samples: int, workdir: str) -> dict[str, Any]:
    """Memory, disk and shared hits of one value, interleaved in random order, in-process."""
    from tiered_cache import TieredCache
    from tiered_cache._shared import SharedTier

    print(
        f"== latency: {samples} samples each of a memory, disk and shared hit "
        "(and the Redis GET alone)",
        flush=True,
    )
    tier = SharedTier(url, prefix="fleet-latency:")  # the default 50 ms timeouts
    cache = TieredCache(directory=os.path.join(workdir, "latency"), shared=tier, ttl=3600)
    key, value = "ssm:/prod/app/latency", "x" * 200

    def never() -> str:
        raise AssertionError("the origin was called during the latency measurement")

    cache.set(key, value)
    times: dict[str, list[float]] = {"memory": [], "disk": [], "shared": [], "redis_get": []}
    rng = random.Random(7)
    clock = time.perf_counter
    for _ in range(samples):
        order = list(times)
        rng.shuffle(order)
        for path in order:
            cache.get_or_load(key, never)  # warm: everywhere again
            if path == "redis_get":  # the round trip alone, for reference
                started = clock()
                tier.get(key)
                times[path].append(clock() - started)
                continue
            if path != "memory":
                cache._memory.delete(key)
            if path == "shared":
                cache._disk.delete(key)
            started = clock()
            cache.get_or_load(key, never)
            times[path].append(clock() - started)
    stats = cache.stats()
    assert stats["shared_hits"] == samples, stats
    result: dict[str, Any] = {}
    for path, values in times.items():
        result[path] = {
            "median_us": statistics.median(values) * 1e6,
            "p99_us": percentile(values, 0.99) * 1e6,
        }
        print(
            f"   {path:9s}: median {result[path]['median_us']:8.1f} us, "
            f"p99 {result[path]['p99_us']:8.1f} us",
            flush=True,
        )
    result["shared_over_disk_median_ratio"] = (
        result["shared"]["median_us"] / result["disk"]["median_us"]
    )
    result["origin_latency_us"] = ORIGIN_LATENCY * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 TTLs per phase, fewer samples")
    parser.add_argument("--envs", type=int, default=32, help="environments (processes)")
    parser.add_argument("--keys", type=int, default=4, help="parameters read per invocation")
    parser.add_argument("--ttls", type=int, default=None, help="TTL windows per phase")
    parser.add_argument("--scale", type=float, default=60.0, help="simulated s per real s")
    parser.add_argument("--gap", type=float, default=100.0, help="mean ms between invocations")
    parser.add_argument("--samples", type=int, default=None, help="latency samples per path")
    parser.add_argument("--redis-url", default=None, help="use this Redis (it gets flushed!)")
    parser.add_argument("--out", default=os.path.join(RESULTS, "fleet.json"))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        run_environment(json.loads(args.worker))
        return
    args.ttls = args.ttls or (4 if args.quick else 16)
    args.samples = args.samples or (300 if args.quick else 2000)
    workdir = tempfile.mkdtemp(prefix="tiered-fleet-")
    server = None
    try:
        url = args.redis_url
        if url is None:
            server, url = start_redis(workdir)
        without = run_phase("without", False, url, args, workdir)
        with_shared = run_phase("with", True, url, args, workdir)
        latency = measure_latency(url, args.samples, workdir)
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    ratio = (
        without["origin_calls_per_key_per_ttl_median"]
        / with_shared["origin_calls_per_key_per_ttl_median"]
    )
    summary = {
        "origin_calls_per_key_per_ttl_median": {
            "without_shared": without["origin_calls_per_key_per_ttl_median"],
            "with_shared": with_shared["origin_calls_per_key_per_ttl_median"],
            "ratio_without_over_with": ratio,
        },
        "shared_hit_over_disk_hit_median_ratio": latency["shared_over_disk_median_ratio"],
    }
    print("== summary", flush=True)
    print(
        f"   origin calls per key per TTL (median): without shared tier "
        f"{without['origin_calls_per_key_per_ttl_median']}, with "
        f"{with_shared['origin_calls_per_key_per_ttl_median']} ({ratio:.1f}x fewer)",
        flush=True,
    )
    print(
        f"   shared hit / disk hit (median): {latency['shared_over_disk_median_ratio']:.2f}x "
        f"({latency['shared']['median_us']:.0f} us vs {latency['disk']['median_us']:.0f} us; "
        f"the origin here takes {ORIGIN_LATENCY * 1e3:.0f} ms)",
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
            "mean_gap_ms": args.gap,
            "origin_latency_ms": ORIGIN_LATENCY * 1e3,
            "quick": args.quick,
            "latency_samples": args.samples,
        },
        "summary": summary,
        "without_shared": without,
        "with_shared": with_shared,
        "latency": latency,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, args.out)
    print(f"   wrote {os.path.relpath(args.out)}", flush=True)


if __name__ == "__main__":
    main()
