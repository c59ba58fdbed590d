"""One measurement in a fresh interpreter: ``python benchmarks/_worker.py '<json spec>'``.

Every peer runs in its own process (and directory), so no library can warm another's cache,
and each process starts moto's in-process ``mock_aws`` as its own origin. The result is one
``@@RESULT {json}`` line on stdout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

T_START = time.perf_counter()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h  # noqa: E402


def _peer(spec: dict[str, Any], clock: Any = None) -> Any:
    from _peers import build

    return build(spec["lib"], spec["names"], spec["ttl"], spec["dir"], clock)


# -- scenario 1: the hit path ----------------------------------------------------------------


def _origin(spec: dict[str, Any], **kwargs: Any) -> None:
    """This process's moto origin: inherited from the forking parent, or started here."""
    if not spec.get("shared_origin"):
        h.start_moto(spec["names"], **kwargs)
        return
    clock = kwargs.get("clock")
    if clock is not None:
        import moto.s3.models as s3_models

        s3_models.utcnow = lambda: h.datetime.fromtimestamp(clock(), h.timezone.utc).replace(
            tzinfo=None
        )
    if kwargs.get("big_size"):  # made here, in this process's copy of the origin
        s3 = h.setup_s3_client()
        names = spec["names"]
        s3.put_object(
            Bucket=names["bucket"], Key=names["big_key"], Body=h.payload(kwargs["big_size"])
        )


def task_hits(spec: dict[str, Any]) -> dict[str, Any]:
    _origin(spec)
    origin = h.Origin("virtual").install()
    peer = _peer(spec)
    from _peers import Context, _bare_handler

    ns = h.baseline_namespace()
    stmts = {"floor": "floor(FK)"}
    if spec.get("handwritten"):
        stmts["hand-written TTL decorator (static key)"] = "handwritten()"
    ns.update(peer.ns)
    stmts.update(peer.stmts)
    if peer.note.startswith("n/a"):
        return {"note": peer.note, "paths": {}, "origin": origin.snapshot()}
    ctx = Context()
    for fn in (peer.ssm, peer.secret, peer.static):
        if fn is not None:
            fn()
            fn()
    if peer.handler is not None:
        peer.handler({}, ctx)
        ns.update({"handler": peer.handler, "bare": _bare_handler, "E": {}, "C": ctx})
        stmts["bare handler (no decorator)"] = "bare(E, C)"
        stmts["@ssm.cache handler"] = "handler(E, C)"
    for stmt in stmts.values():  # every statement must run (and hit) before timing
        eval(stmt, ns)  # noqa: S307 - the harness's own statements (this warms DynamoDB)
    warm_calls = origin.total
    paths = h.time_paths(ns, stmts, spec["rounds"], calls=spec["calls"])
    return {
        "paths": paths,
        "origin": origin.snapshot(),
        "origin_calls_while_timing": origin.total - warm_calls,
        "note": peer.note,
    }


# -- scenario 2: an invocation stream over simulated time --------------------------------------


def task_stream(spec: dict[str, Any]) -> dict[str, Any]:
    import random

    n, window = spec["invocations"], spec["window_s"]
    clock = h.SimClock(fixed=time.time())
    start = clock()
    _origin(spec, s3_size=spec["s3_size"], clock=clock)
    origin = h.Origin("virtual").install()
    peer = _peer(spec, clock)
    if peer.note.startswith("n/a"):
        return {"note": peer.note}
    rng = random.Random(spec["seed"])
    arrivals = sorted(rng.uniform(0, window) for _ in range(n))
    result: dict[str, Any] = {"note": peer.note}
    streams = {"params": [peer.ssm, peer.secret], "s3": [peer.s3]}
    for stream, fns in streams.items():
        if any(fn is None for fn in fns):
            result[stream] = None
            continue
        before = origin.snapshot()
        lat: list[float] = []
        for t in arrivals:
            clock.set(start + t)
            injected = origin.injected
            t0 = time.perf_counter()
            for fn in fns:
                fn()
            wall = time.perf_counter() - t0
            lat.append((wall + origin.injected - injected) * 1e3)
        after = origin.snapshot()
        result[stream] = {
            "calls": {k: v - before["calls"].get(k, 0) for k, v in after["calls"].items()},
            "ops": {k: v - before["ops"].get(k, 0) for k, v in after["ops"].items()},
            "total_calls": after["total_calls"] - before["total_calls"],
            "body_bytes": after["body_bytes"] - before["body_bytes"],
            "injected_ms": after["injected_ms"] - before["injected_ms"],
            "p50_ms": h.median(lat),
            "p99_ms": h.pct(lat, 99),
            "total_ms": sum(lat),
            "mean_ms": sum(lat) / len(lat),
        }
    return result


# -- scenarios 3 and 6: a cold process, a restart on the same /tmp -----------------------------


def task_cold(spec: dict[str, Any]) -> dict[str, Any]:
    _origin(spec, s3_size=spec["s3_size"])
    origin = h.Origin("sleep").install()
    t0 = time.perf_counter()
    peer = _peer(spec)
    if peer.note.startswith("n/a"):
        return {"note": peer.note}
    t_import = time.perf_counter()
    first: dict[str, float] = {}
    calls: dict[str, int] = {}
    for name in ("ssm", "secret", "s3"):
        fn = getattr(peer, name)
        if fn is None:
            continue
        before = origin.total
        t = time.perf_counter()
        fn()
        first[name] = (time.perf_counter() - t) * 1e3
        calls[name] = origin.total - before
    done = time.perf_counter()
    return {
        "note": peer.note,
        "import_build_ms": (t_import - t0) * 1e3,
        "first_ms": first,
        "calls": calls,
        "ttfv_ms": (done - t0) * 1e3,
        "origin": origin.snapshot(),
        "interpreter_to_ready_ms": (t0 - T_START) * 1e3,
    }


# -- scenario 4: a large S3 object -----------------------------------------------------------


def _file_matches(path: str, size: int, seed: int) -> bool:
    import random

    block = random.Random(seed).randbytes(min(size, h.MB))
    try:
        if os.path.getsize(path) != size:
            return False
        with open(path, "rb") as fh:
            return fh.read(len(block)) == block
    except OSError:
        return False


def task_large(spec: dict[str, Any]) -> dict[str, Any]:
    names, size, ttl = spec["names"], spec["size"], spec["ttl"]
    clock = h.SimClock()  # real time plus an offset the harness advances
    _origin(spec, big_size=size, clock=clock)
    clock.advance(30)  # the object was uploaded a while before the function first runs
    origin = h.Origin("virtual").install()
    peer = _peer(spec, clock)
    if peer.big is None:
        return {"note": peer.note or "no S3 support"}
    steps: dict[str, Any] = {}

    def step(name: str, seed: int, repeat: int = 1) -> None:
        before = origin.snapshot()
        walls = []
        path = None
        for _ in range(repeat):
            t = time.perf_counter()
            path = peer.big()
            walls.append((time.perf_counter() - t) * 1e3)
        after = origin.snapshot()
        injected = (after["injected_ms"] - before["injected_ms"]) / repeat
        wall = h.median(walls)
        steps[name] = {
            "calls": (after["total_calls"] - before["total_calls"]) / repeat,
            "ops": {k: (v - before["ops"].get(k, 0)) / repeat for k, v in after["ops"].items()},
            "body_bytes": (after["body_bytes"] - before["body_bytes"]) / repeat,
            "wall_ms": wall,
            "injected_ms": injected,
            "total_ms": wall + injected,
            "correct": _file_matches(str(path), size, seed),
        }

    step("first fetch", 0)
    step("warm hit", 0, repeat=spec.get("hit_repeat", 20))
    clock.advance(ttl + 1)
    step("expired, unchanged", 0)
    clock.advance(10)
    h.update_object(origin, names, "big_key", size, seed=1)
    clock.advance(ttl + 1)
    step("expired, changed", 1)
    return {"note": peer.note, "steps": steps}


# -- scenario 5: many processes cold-start together on one /tmp --------------------------------


def task_crowd(spec: dict[str, Any]) -> dict[str, Any]:
    _origin(spec, s3_size=spec["s3_size"])
    origin = h.Origin("sleep").install()
    peer = _peer(spec)
    if peer.note.startswith("n/a"):
        return {"note": peer.note}
    with open(spec["ready"], "a") as fh:
        fh.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + 120
    while not os.path.exists(spec["go"]) and time.monotonic() < deadline:
        time.sleep(0.0005)
    t = time.perf_counter()
    for name in ("ssm", "secret", "s3"):
        fn = getattr(peer, name)
        if fn is not None:
            fn()
    return {
        "note": peer.note,
        "origin": origin.snapshot(),
        "first_values_ms": (time.perf_counter() - t) * 1e3,
    }


# -- speed targets (issues 2 and 3) ------------------------------------------------------------


def task_speed_core(spec: dict[str, Any]) -> dict[str, Any]:
    from tiered_cache import TieredCache

    cache = TieredCache(directory=os.path.join(spec["dir"], "core"), ttl=3600)
    cache.set("k", "value")

    @cache.cache(key="static", ttl=3600)
    def static() -> str:
        return "value"

    static()
    ns = h.baseline_namespace()
    ns.update({"cache": cache, "K": "k", "static": static})
    stmts = {
        "floor": "floor(FK)",
        "TieredCache.get (memory hit)": "cache.get(K)",
        "hand-written TTL decorator": "handwritten()",
        "@tiered.cache static key": "static()",
    }
    return {"paths": h.time_paths(ns, stmts, spec["rounds"], calls=spec["calls"])}


KEYED_SRC = """
import time as _time_mod

_KEYED_STORE = {"r:2026-11-28:3": ("value", _time_mod.time() + 1e9)}


def keyed_floor(day, n):
    entry = _KEYED_STORE.get(f"r:{day}:{n}")
    if entry is not None and _time_mod.time() < entry[1]:
        return entry[0]
    return None


def build(day, n):
    CALLS.append((day, n))
    return "value"
"""


def task_speed_keyed(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm hits of keyed ``@tiered.cache`` functions called as ``f("2026-11-28", 3)``: a
    template, the default key and a callable key, and ``cachetools.cached(TTLCache)`` on the
    same function, against the keyed floor (format the same key, ``dict.get``, a clock compare).
    One process, one ``time_paths`` call: every path interleaved round by round."""
    import cachetools

    from tiered_cache import TieredCache

    # The functions live in a namespace named like a module: a default key is refused for a
    # function defined inside this one (its qualname would hold <locals>).
    ns: dict[str, Any] = {"__name__": "tcbench_keyed", "CALLS": []}
    exec(KEYED_SRC, ns)  # noqa: S102 - the benchmark's own constant source
    build = ns["build"]
    cache = TieredCache(directory=os.path.join(spec["dir"], "keyed"), ttl=3600)
    ns.update(
        {
            "template": cache.cache(key="r:{day}:{n}", ttl=3600)(build),
            "default_key": cache.cache(ttl=3600)(build),
            "callable_key": cache.cache(key=lambda day, n: f"r:{day}:{n}", ttl=3600)(build),
            "cachetools_ttl": cachetools.cached(cachetools.TTLCache(maxsize=1024, ttl=3600))(build),
        }
    )
    stmts = {
        "keyed floor": 'keyed_floor("2026-11-28", 3)',
        "@cache(key='r:{day}:{n}')": 'template("2026-11-28", 3)',
        "@cache (default key)": 'default_key("2026-11-28", 3)',
        "@cache(key=lambda day, n: ...)": 'callable_key("2026-11-28", 3)',
        "cachetools.cached(TTLCache)": 'cachetools_ttl("2026-11-28", 3)',
    }
    for stmt in stmts.values():  # every path hits before timing
        for _ in range(2):
            if eval(stmt, ns) != "value":  # noqa: S307 - the benchmark's own statements
                raise RuntimeError(f"speed_keyed: {stmt} did not return the value")
    loads = len(ns["CALLS"])
    paths = h.time_paths(ns, stmts, spec["rounds"], calls=spec["calls"])
    return {
        "paths": paths,
        "keys": {
            "template": ns["template"].cache_key("2026-11-28", 3),
            "default": ns["default_key"].cache_key("2026-11-28", 3),
        },
        "origin_calls_while_timing": len(ns["CALLS"]) - loads,
    }


def task_disk_first(spec: dict[str, Any]) -> dict[str, Any]:
    """First get of a 100-byte value in a fresh process.

    ``import_ms``: importing the package (tiered_cache, or diskcache for the raw peer);
    ``open_get_ms``: making the cache object and the first get. With ``pre_import`` diskcache
    is imported before the clock starts in both, so open + get compares like with like
    (tiered-cache imports diskcache lazily, inside its first disk access).
    """
    directory, kind = spec["dir"], spec["kind"]
    if spec.get("pre_import"):
        import diskcache
    t0 = time.perf_counter()
    if kind == "tiered":
        from tiered_cache import TieredCache

        t1 = time.perf_counter()
        value = TieredCache(directory=directory, ttl=86400).get("k100")
    else:
        import diskcache

        t1 = time.perf_counter()
        value = diskcache.Cache(directory).get("k100")
    t2 = time.perf_counter()
    if not value or len(value) != 100:
        raise RuntimeError(f"expected a 100-byte value, got {value!r}")
    return {"import_ms": (t1 - t0) * 1e3, "open_get_ms": (t2 - t1) * 1e3}


def task_disk_warm(spec: dict[str, Any]) -> dict[str, Any]:
    """Per-call disk hit with the memory tier bypassed, against raw diskcache.Cache.get."""
    import diskcache

    from tiered_cache import TieredCache

    tiered = TieredCache(directory=spec["tiered_dir"], ttl=3600, memory_items=1)
    raw = diskcache.Cache(spec["raw_dir"])
    if any(c.get(k) is None for c in (tiered, raw) for k in ("a", "b")):
        raise RuntimeError("disk_warm: the stores were not filled")
    ns = {"tiered": tiered, "raw": raw}
    stmts = {
        # memory_items=1: each get of the other key evicts this one, so every get reads disk
        "TieredCache.get, disk hit (memory_items=1, alternating keys)": (
            "tiered.get('a'); tiered.get('b')"
        ),
        "diskcache.Cache.get (alternating keys)": "raw.get('a'); raw.get('b')",
    }
    paths = h.time_paths(ns, stmts, spec["rounds"], calls=spec["calls"])
    for p in paths.values():  # two gets per statement
        for k in ("median_ns", "p99_ns", "per_call_median_ns"):
            p[k] /= 2
    stats = tiered.stats()
    return {"paths": paths, "tiered_stats": {k: stats[k] for k in ("memory_hits", "disk_hits")}}


def task_s3_sizes(spec: dict[str, Any]) -> dict[str, Any]:
    names = spec["names"]
    h.start_moto(names, s3_size=1024, big_size=spec["size"])
    origin = h.Origin("virtual").install()
    peer = _peer(spec)
    if peer.s3 is None:
        return {"note": peer.note}
    from tiered_cache import s3

    small, big = peer.s3(), peer.big()
    if (os.path.getsize(small), os.path.getsize(big)) != (1024, spec["size"]):
        raise RuntimeError("s3_sizes: the cached files have the wrong sizes")
    ns = {"s3": s3, "U1": names["uri"], "U2": names["big_uri"], "A": spec["ttl"]}
    stmts = {
        "s3.get_entry 1 KiB": "s3.get_entry(s3Uri=U1, max_age_in_seconds=A)",
        "s3.get_entry large": "s3.get_entry(s3Uri=U2, max_age_in_seconds=A)",
    }
    calls = origin.total
    paths = h.time_paths(ns, stmts, spec["rounds"], calls=spec["calls"])
    return {"paths": paths, "origin_calls_while_timing": origin.total - calls}


def task_speed_writes(spec: dict[str, Any]) -> dict[str, Any]:
    """Write cost with few and with many objects on disk, interleaved round by round.

    ``dirs`` maps a label (the number of cached objects) to a filled cache directory. Each
    round times, in every directory and in shuffled order, ``batch`` small ``cache.set`` calls
    (a pool of 100 keys) and ``batch`` new file-backed entries (``load_file`` of a new key,
    a 1 KiB object; deleted again untimed, so the directory keeps its object count).
    """
    import random

    from tiered_cache import TieredCache

    caches = {
        label: TieredCache(directory=directory, ttl=86400, jitter=0.0)
        for label, directory in spec["dirs"].items()
    }
    body = b"n" * 1024

    def fetch(dest: Any, _version: str | None) -> str:
        dest.write(body)
        return "etag"

    for cache in caches.values():  # open the stores; warm every path once
        for j in range(100):
            cache.set(f"s{j}", {"v": j})
        cache.load_file("warm", fetch)
        cache.delete("warm")
    samples: dict[str, list[float]] = {}
    order = [(op, label) for op in ("set", "file") for label in caches]
    rng = random.Random(1)
    clock = time.perf_counter_ns
    for r in range(spec["rounds"]):
        rng.shuffle(order)
        for op, label in order:
            cache = caches[label]
            out = samples.setdefault(f"{op}:{label}", [])
            if op == "set":
                for j in range(spec["batch"]):
                    key, value = f"s{(r * 7 + j) % 100}", {"v": j, "r": r}
                    t = clock()
                    cache.set(key, value)
                    out.append(clock() - t)
            else:
                keys = [f"new-{r}-{j}" for j in range(spec["batch"])]
                for key in keys:
                    t = clock()
                    cache.load_file(key, fetch)
                    out.append(clock() - t)
                for key in keys:
                    cache.delete(key)
    objects = {
        label: len(os.listdir(os.path.join(directory, "objects")))
        for label, directory in spec["dirs"].items()
    }
    return {
        "paths": {
            name: {"median_ns": h.median(v), "p99_ns": h.pct(v, 99), "n": len(v)}
            for name, v in samples.items()
        },
        "objects": objects,
    }


ASYNC_SRC = """
import time as _time_mod

_ASYNC_STORE = {"k": ("value", _time_mod.time() + 1e9)}


async def async_floor(key):
    entry = _ASYNC_STORE.get(key)
    if entry is not None and _time_mod.time() < entry[1]:
        return entry[0]
    return None


async def build():
    CALLS.append(1)
    return "value"


async def item(i):
    return {"i": i}


async def disk_value(k):
    return "value"
"""


def _async_time(loop: Any, fn: Any, args: tuple[Any, ...], n: int) -> float:
    """Mean ns per ``await fn(*args)`` over ``n`` awaits inside one running loop."""

    async def drive() -> None:
        for _ in range(n):
            await fn(*args)

    t = time.perf_counter_ns()
    loop.run_until_complete(drive())
    return (time.perf_counter_ns() - t) / n


def _async_singles(loop: Any, fn: Any, args: tuple[Any, ...], n: int) -> list[float]:
    """``n`` awaits of ``fn(*args)``, each timed alone (ns)."""

    async def drive() -> list[float]:
        clock = time.perf_counter_ns
        out = [0.0] * n
        for i in range(n):
            t = clock()
            await fn(*args)
            out[i] = clock() - t
        return out

    result: list[float] = loop.run_until_complete(drive())
    return result


class _LoopMeter:
    """Time the event loop spends running callbacks (every task step is one), measured by
    wrapping ``asyncio.events.Handle._run``: ``busy_ns`` in all, ``longest_ns`` the longest
    single callback (the longest the loop could not serve another coroutine)."""

    def __init__(self) -> None:
        from asyncio import events

        self.busy_ns = 0
        self.longest_ns = 0
        original = events.Handle._run
        clock = time.perf_counter_ns
        meter = self

        def _run(handle: Any) -> None:
            t = clock()
            try:
                original(handle)
            finally:
                spent = clock() - t
                meter.busy_ns += spent
                if spent > meter.longest_ns:
                    meter.longest_ns = spent

        events.Handle._run = _run  # type: ignore[method-assign]

    def reset(self) -> None:
        self.busy_ns = self.longest_ns = 0


def task_speed_async(spec: dict[str, Any]) -> dict[str, Any]:
    """Async hit path and the event loop's share of a memory miss.

    ``paths``: warm hits of ``@tiered.cache`` on an ``async def`` (static key) and of
    ``cashews``' ``@cache`` (memory backend, its defaults) on the same function, against the
    async floor (an ``async def`` doing ``dict.get`` and a clock compare); each timed as awaits
    inside one running loop (``run_until_complete`` of a coroutine awaiting it ``n`` times),
    every path once per round in shuffled order, median of the rounds' per-call means.

    ``loop``: per call, the wall time and the loop's busy time (``_LoopMeter``) of a disk hit
    (``memory_items=1``, two keys alternating: every call misses memory and reads disk), of a
    miss that loads and stores a new key, and of ``invalidate`` (synchronous, inline); beside
    them the same disk hit and miss done synchronously (``TieredCache.get`` and
    ``get_or_load``), as an inline design would run them, for comparison.
    """
    import asyncio
    import random

    from tiered_cache import TieredCache

    ns: dict[str, Any] = {"__name__": "tcbench_async", "CALLS": []}
    exec(ASYNC_SRC, ns)  # noqa: S102 - the benchmark's own constant source
    cache = TieredCache(directory=os.path.join(spec["dir"], "async"), ttl=3600)
    fns: dict[str, tuple[Any, tuple[Any, ...]]] = {
        "async floor": (ns["async_floor"], ("k",)),
        "@tiered.cache async def (static key)": (
            cache.cache(key="static", ttl=3600)(ns["build"]),
            (),
        ),
    }
    note = ""
    try:
        from cashews import Cache

        peer = Cache()
        peer.setup("mem://")
        fns["cashews @cache (mem://)"] = (peer(ttl=3600, key="static")(ns["build"]), ())
    except ImportError as exc:
        note = f"n/a (cashews missing: {exc})"
    loop = asyncio.new_event_loop()
    for fn, args in fns.values():  # every path hits before timing
        for _ in range(2):
            if loop.run_until_complete(fn(*args)) != "value":
                raise RuntimeError(f"speed_async: {fn} did not return the value")
    loads = len(ns["CALLS"])
    numbers = {}
    for label, (fn, args) in fns.items():
        n = 1
        while n < 1 << 20 and _async_time(loop, fn, args, n) * n < 0.5e6:
            n *= 4
        numbers[label] = max(1, n * 4)  # about 2 ms a batch
    samples: dict[str, list[float]] = {label: [] for label in fns}
    order = list(fns)
    rng = random.Random(1)
    for _ in range(spec["rounds"]):
        rng.shuffle(order)
        for label in order:
            fn, args = fns[label]
            samples[label].append(_async_time(loop, fn, args, numbers[label]))
    paths = {}
    for label, (fn, args) in fns.items():
        singles = _async_singles(loop, fn, args, spec["calls"])
        paths[label] = {
            "median_ns": h.median(samples[label]),
            "p99_ns": h.pct(singles, 99),
            "per_call_median_ns": h.median(singles),
            "rounds": spec["rounds"],
            "batch_calls": numbers[label],
        }
    origin_calls = len(ns["CALLS"]) - loads

    # -- the loop's share of a memory miss -------------------------------------------------
    small = TieredCache(directory=os.path.join(spec["dir"], "async-disk"), ttl=3600, memory_items=1)
    small.set("a", "value")
    small.set("b", "value")
    disk_hit = small.cache(key="{k}", ttl=3600)(ns["disk_value"])
    miss_fn = small.cache(key="m:{i}", ttl=3600)(ns["item"])
    meter = _LoopMeter()
    calls = spec["loop_calls"]
    loop_paths: dict[str, dict[str, float]] = {}

    def measure(label: str, drive: Any) -> None:
        meter.reset()
        t = time.perf_counter_ns()
        loop.run_until_complete(drive())
        wall = time.perf_counter_ns() - t
        loop_paths[label] = {
            "wall_ns": wall / calls,
            "loop_busy_ns": meter.busy_ns / calls,
            "longest_block_ns": meter.longest_ns,
        }

    async def disk_hits() -> None:
        for i in range(calls):
            await disk_hit("ab"[i % 2])

    async def misses() -> None:
        for i in range(calls):
            await miss_fn(i)

    async def memory_hits() -> None:
        for _ in range(calls):
            await fns["@tiered.cache async def (static key)"][0]()

    async def invalidations() -> None:
        for i in range(calls):
            miss_fn.invalidate(i)

    loop.run_until_complete(disk_hits())  # warm: open the store, start a thread once
    before = small.stats()
    measure("memory hit", memory_hits)
    measure("disk hit (memory_items=1, alternating keys)", disk_hits)
    measure("miss: load and store a new key", misses)
    measure("invalidate (synchronous, inline)", invalidations)
    after = small.stats()
    clock = time.perf_counter_ns
    inline: dict[str, list[float]] = {"disk hit": [], "miss": []}
    for i in range(calls):  # the same work done inline, synchronously, for comparison
        t = clock()
        small.get("ab"[i % 2])
        inline["disk hit"].append(clock() - t)
        t = clock()
        small.get_or_load(f"s:{i}", lambda: {"i": 0})
        inline["miss"].append(clock() - t)
    loop.close()
    return {
        "paths": paths,
        "note": note,
        "origin_calls_while_timing": origin_calls,
        "loop": loop_paths,
        "inline_sync_ns": {label: h.median(v) for label, v in inline.items()},
        "disk_stats": {k: after[k] - before[k] for k in ("disk_hits", "loads", "misses")},
    }


TASKS = {
    "hits": task_hits,
    "stream": task_stream,
    "cold": task_cold,
    "large": task_large,
    "crowd": task_crowd,
    "speed_core": task_speed_core,
    "speed_keyed": task_speed_keyed,
    "speed_async": task_speed_async,
    "disk_first": task_disk_first,
    "disk_warm": task_disk_warm,
    "s3_sizes": task_s3_sizes,
    "speed_writes": task_speed_writes,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    h.emit(TASKS[spec["task"]](spec))
    if spec.get("die"):  # a crashed runtime: no atexit, no close
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
