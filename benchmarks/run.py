"""tiered-cache's benchmark harness: six scenarios side by side with the libraries people use.

    python3 benchmarks/run.py --quick     # CI smoke run, under 2 minutes on 2 cores
    python3 benchmarks/run.py             # the full run, under 15 minutes
    python3 benchmarks/run.py --only 1,5  # some scenarios

Peers, each in its own process and directory: no cache (boto3 on every call), lambda-cache
0.8.1, Powertools for AWS Lambda's ``parameters`` (3.x), cachetools ``TTLCache`` (memory only)
and tiered-cache (its engine with ``@cache``, and its AWS helpers). The origin is moto. The
harness reports; it never asserts on a timing. It exits non-zero only when something crashed.
See benchmarks/README.md for what each scenario measures and how time is simulated.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h

QUICK: dict[str, Any] = {
    "hits_rounds": 15,
    "hits_calls": 5000,
    "hits_procs": 1,
    "ttl": 60,
    "stream_invocations": 600,
    "stream_window_s": 30 * 60,
    "stream_reps": 1,
    "s3_size": 1 * h.MB,
    "restart_reps": 1,
    "large_size": 16 * h.MB,
    "large_reps": 1,
    "large_bw_size": 128 * h.MB,
    "large_bw_reps": 3,
    "crowd_procs": 16,
    "crowd_reps": 1,
    "crowd_libs": ["lambda-cache", "tiered-aws"],
    "import_reps": 7,
}
FULL: dict[str, Any] = {
    "hits_rounds": 60,
    "hits_calls": 30000,
    "hits_procs": 3,
    "ttl": 60,
    "stream_invocations": 3000,
    "stream_window_s": 3 * 3600,
    "stream_reps": 3,
    "s3_size": 1 * h.MB,
    "restart_reps": 3,
    "large_size": 256 * h.MB,
    "large_reps": 3,
    "large_bw_size": 1024 * h.MB,
    "large_bw_reps": 3,
    "crowd_procs": 16,
    "crowd_reps": 3,
    "crowd_libs": list(h.LIBS),
    "import_reps": 21,
}

SHORT = {
    "lambda-cache": "lambda-cache",
    "powertools": "Powertools",
    "cachetools": "cachetools",
    "tiered-core": "tiered-cache",
    "tiered-aws": "tiered-cache",
}
HIT_LIBS = ["lambda-cache", "powertools", "cachetools", "tiered-core", "tiered-aws"]
LARGE_LIBS = ["nocache", "lambda-cache", "tiered-aws"]
RESTART_LIBS = list(h.LIBS)

HOW = {
    "origin": (
        "moto's in-process mock_aws: the harness process starts it once, creates every "
        "library's parameter, secret and S3 objects (separate names per library), and forks "
        "one child per measurement, so each peer runs in its own process with its own copy "
        "of the origin; no peer library is imported before the fork. (moto's ThreadedMotoServer "
        "would need flask, which the bench extra does not install.) Import times are measured "
        "in fresh interpreters without moto."
    ),
    "latency": (
        "botocore event hooks on every client any library makes (botocore.session.Session."
        "create_client is wrapped): before-call counts the call, after-call adds SSM 20 ms, "
        "Secrets Manager 25 ms, S3 40 ms + body bytes at 100 MB/s. Scenarios 2 and 4 account "
        "it virtually (invocation latency = measured wall time + injected latency, so a "
        "5,000-invocation stream runs in seconds and parallel ranged GETs cannot hide "
        "bandwidth); scenarios 3, 5 and 6 sleep for real."
    ),
}


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.index = 0
        self.name = ""
        self.start = time.perf_counter()

    def begin(self, name: str) -> None:
        self.index += 1
        self.name = name
        self(f"starting ({time.perf_counter() - self.start:.0f} s elapsed)")

    def __call__(self, message: str) -> None:
        line = f"[{self.index}/{self.total}] {self.name}: {message}"
        print(h.wrap(line, indent="") if len(line) > h.WIDTH else line, flush=True)


def _spec(task: str, lib: str, ctx: dict[str, Any], **extra: Any) -> dict[str, Any]:
    spec = {
        "task": task,
        "lib": lib,
        "names": h.names_for(lib, ctx["run_id"]),
        "ttl": ctx["cfg"]["ttl"],
        "dir": os.path.join(ctx["tmp"], task, lib, uuid.uuid4().hex[:8]),
        "shared_origin": True,
    }
    spec.update(extra)
    return spec


def _err(result: dict[str, Any]) -> str | None:
    error = result.get("error")
    return error.strip().splitlines()[-1] if error else None


# -- 1. hit path -----------------------------------------------------------------------------


def scenario_hits(cfg: dict[str, Any], ctx: dict[str, Any], p: Progress) -> dict[str, Any]:
    results: dict[str, Any] = {}
    procs = cfg["hits_procs"]
    for lib in HIT_LIBS:
        runs = []
        for rep in range(procs):
            p(f"{lib} process {rep + 1}/{procs} ({cfg['hits_rounds']} interleaved rounds)")
            runs.append(
                h.fork_worker(
                    _spec(
                        "hits",
                        lib,
                        ctx,
                        ttl=3600,
                        rounds=cfg["hits_rounds"],
                        calls=cfg["hits_calls"],
                        handwritten=lib == "tiered-core",
                    )
                )
            )
        results[lib] = h.merge_hits(runs)
    ctx["hits"] = results
    floors = [r["paths"]["floor"]["median_ns"] for r in results.values() if r.get("paths")]
    chart = []
    for lib, r in results.items():
        if not r.get("paths"):
            continue
        f = r["paths"]["floor"]["median_ns"]
        for label, path in r["paths"].items():
            if label == "floor":
                continue
            ratio = path["median_ns"] / f
            r.setdefault("ratios", {})[label] = ratio
            if "bare handler" in label:
                continue
            if label.startswith("hand-written"):
                chart.append((f"baseline: {label}", ratio))
            else:
                chart.append((f"{SHORT[lib]}: {label}", ratio))
    return {"workers": results, "floor_ns": h.median(floors), "chart": chart}


def report_hits(out: dict[str, Any], cfg: dict[str, Any]) -> tuple[str, str]:
    results = out["workers"]
    floor = out["floor_ns"]
    ok = {lib: r for lib, r in results.items() if r.get("paths")}
    p99 = h.median([r["paths"]["floor"]["p99_ns"] for r in ok.values()])
    first = ["floor(key)", h.fmt_ns(floor), h.fmt_ns(p99), "1.00x"]
    full = [[h.LABELS["floor"], *first]]
    short = [[h.SHORT_LABELS["floor"], *first]]
    missing = []
    for lib, r in results.items():
        if lib not in ok:
            why = _err(r) or r.get("note") or "no result"
            full.append([h.LABELS[lib], "-", "n/a", "n/a", why])
            short.append([h.SHORT_LABELS[lib], "-", "n/a", "n/a", "n/a"])
            missing.append(f"{h.SHORT_LABELS[lib]}: {why}")
            continue
        f = r["paths"]["floor"]["median_ns"]
        for label, path in r["paths"].items():
            if label == "floor":
                continue
            who = "handwritten" if label.startswith("hand-written") else lib
            cells = [
                label,
                h.fmt_ns(path["median_ns"]),
                h.fmt_ns(path["p99_ns"]),
                f"{path['median_ns'] / f:.2f}x",
            ]
            full.append([h.LABELS[who], *cells])
            short.append([h.SHORT_LABELS[who], *cells])
    procs = cfg["hits_procs"]
    hook = "; ".join(
        f"{lib} {r.get('origin', {}).get('total_calls', '?')} calls to warm, "
        f"{r.get('origin_calls_while_timing', '?')} while timing"
        for lib, r in ok.items()
    )
    while_timing = sum(int(r.get("origin_calls_while_timing") or 0) for r in ok.values())
    md = h.table(
        "1. Warm hit path: ns per call (median of interleaved batches; p99 of single calls; "
        f"median of {procs} process(es))",
        ["library", "path", "median", "p99", "x floor (same process)"],
        full,
        notes=f"Origin calls the hook saw: {hook}.",
    )
    term = h.text_table(
        f"1. Warm hit path, per call: median of batches, p99 of single calls ({procs} "
        "process(es)); x floor = the same process's floor, lower is better",
        ["library", "path", "median", "p99", "x floor"],
        short,
        notes=" ".join(
            [f"Origin calls while timing: {while_timing} (the hook counted every call)."]
            + [f"n/a: {m}" for m in missing]
        ),
    )
    return md, term


# -- 2. invocation stream --------------------------------------------------------------------


STREAM_LIBS = [*h.LIBS, "tiered-core-nojitter"]


def scenario_stream(cfg: dict[str, Any], ctx: dict[str, Any], p: Progress) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in STREAM_LIBS}
    for rep in range(cfg["stream_reps"]):
        for lib in STREAM_LIBS:
            p(f"{lib} rep {rep + 1}/{cfg['stream_reps']}")
            runs[lib].append(
                h.fork_worker(
                    _spec(
                        "stream",
                        lib,
                        ctx,
                        invocations=cfg["stream_invocations"],
                        window_s=cfg["stream_window_s"],
                        seed=rep,
                        s3_size=cfg["s3_size"],
                    )
                )
            )
    summary: dict[str, Any] = {}
    for stream, services in STREAM_SERVICES.items():
        for lib in STREAM_LIBS:
            ok = [r[stream] for r in runs[lib] if r.get(stream)]
            if not ok:
                continue
            med = {
                k: h.median([o[k] for o in ok])
                for k in ("p50_ms", "p99_ms", "total_ms", "body_bytes")
            }
            calls = {s: h.median([o["calls"].get(s, 0) for o in ok]) for s in services}
            summary.setdefault(stream, {})[lib] = {**med, "calls": calls, "ops": ok[0]["ops"]}
    return {"runs": runs, "summary": summary}


STREAM_SERVICES = {"params": ("ssm", "secretsmanager"), "s3": ("s3",)}
SERVICE_NAMES = {"ssm": "SSM", "secretsmanager": "secret", "s3": "S3"}


def report_stream(out: dict[str, Any], cfg: dict[str, Any]) -> tuple[str, str]:
    runs, summary = out["runs"], out["summary"]
    ttls = cfg["stream_window_s"] / cfg["ttl"]
    mds, terms = [], []
    for stream, services in STREAM_SERVICES.items():
        what = (
            "an SSM parameter and a secret"
            if stream == "params"
            else f"a {cfg['s3_size'] // h.MB} MB S3 object"
        )
        full, short, missing = [], [], []
        data = summary.get(stream, {})
        base = data.get("nocache", {}).get("total_ms")
        for lib in runs:
            s = data.get(lib)
            if s is None:
                why = next((_err(r) or r.get("note") for r in runs[lib]), "") or "no result"
                if stream == "s3" and lib == "powertools":
                    why = "n/a (Powertools has no S3 provider)"
                full.append([h.LABELS[lib]] + ["n/a"] * (len(services) + 5) + [why])
                short.append([h.SHORT_LABELS[lib]] + ["n/a"] * (len(services) + 5))
                missing.append(f"{h.SHORT_LABELS[lib]}: {_reason(why)}")
                continue
            vs = f"{s['total_ms'] / base:.3f}" if base else "-"
            ops = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(s["ops"].items()) if v)
            cells = [f"{s['calls'][v]:.0f}" for v in services] + [
                f"{s['body_bytes'] / h.MB:.0f}",
                h.fmt_ms(s["p50_ms"]),
                h.fmt_ms(s["p99_ms"]),
                f"{s['total_ms'] / 1e3:.1f}",
                vs,
            ]
            full.append([h.LABELS[lib], *cells, ops])
            short.append([h.SHORT_LABELS[lib], *cells])
        sub = "ab"[stream == "s3"]
        calls = [f"{SERVICE_NAMES[v]} calls" for v in services]
        md = h.table(
            f"2{sub}. Stream of {cfg['stream_invocations']} invocations over "
            f"{cfg['stream_window_s'] / 3600:g} h simulated ({ttls:.0f} TTLs of {cfg['ttl']} s): "
            f"{what} per invocation (median of {cfg['stream_reps']} reps)",
            [
                "library",
                *calls,
                "body MB",
                "p50 ms",
                "p99 ms",
                "total s",
                "total / no cache",
                "API calls seen",
            ],
            full,
        )
        term = h.text_table(
            f"2{sub}. {cfg['stream_invocations']} invocations over "
            f"{cfg['stream_window_s'] / 3600:g} h, {what} each (median of "
            f"{cfg['stream_reps']}); lower is better",
            ["library", *calls, "body MB", "p50 ms", "p99 ms", "total s", "vs no cache"],
            short,
            notes=" ".join(f"n/a: {m}" for m in missing),
        )
        mds.append(md)
        terms.append(term)
    once = f"One load per TTL would be {ttls:.0f} calls per resource."
    clocks = h.bullets([f"{h.LABELS.get(k, k)}: {v}" for k, v in _time_handling().items()])
    md = "\n".join(mds) + f"\n\n{h.wrap(once)} How each library's clock is simulated:\n\n{clocks}"
    term = "\n".join(terms) + "\n\n" + h.wrap(f"{once} {SEE_REPORT}")
    return md, term


def _time_handling() -> dict[str, str]:
    from _peers import TIME_HANDLING

    return TIME_HANDLING


# -- 3. runtime restart ----------------------------------------------------------------------


def scenario_restart(cfg: dict[str, Any], ctx: dict[str, Any], p: Progress) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in RESTART_LIBS}
    for rep in range(cfg["restart_reps"]):
        for lib in RESTART_LIBS:
            p(f"{lib} rep {rep + 1}/{cfg['restart_reps']}: first process, kill -9, second")
            spec = _spec("cold", lib, ctx, s3_size=cfg["s3_size"])
            spec["names"]["s3_entry"] += f"-r{rep}"  # lambda-cache's /tmp file, per rep
            env = {"TIERED_CACHE_DIR": os.path.join(spec["dir"], "tiered")}
            first = h.fork_worker({**spec, "die": True}, env)
            second = h.fork_worker(spec, env)
            runs[lib].append({"first": first, "second": second})
    ctx["restart"] = runs
    summary = {}
    for lib, reps in runs.items():
        ok = _restart_ok(reps)
        if not ok:
            continue
        a = [r["first"] for r in ok]
        b = [r["second"] for r in ok]
        calls_b = {s: h.median([x["calls"].get(s, 0) for x in b]) for s in ("ssm", "secret", "s3")}
        summary[lib] = {
            "first_calls": h.median([x["origin"]["total_calls"] for x in a]),
            "restart_calls": h.median([x["origin"]["total_calls"] for x in b]),
            "restart_calls_by": calls_b,
            "first_ttfv_ms": h.median([x["ttfv_ms"] for x in a]),
            "restart_ttfv_ms": h.median([x["ttfv_ms"] for x in b]),
            "restart_body_bytes": h.median([x["origin"]["body_bytes"] for x in b]),
        }
    return {"runs": runs, "summary": summary}


def _restart_ok(reps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ok = [r for r in reps if "error" not in r["first"] and "error" not in r["second"]]
    if not ok or ok[0]["second"].get("note", "").startswith("n/a"):
        return []
    return ok


def report_restart(out: dict[str, Any], cfg: dict[str, Any]) -> tuple[str, str]:
    full, short, notes, missing = [], [], [], []
    for lib, reps in out["runs"].items():
        s = out["summary"].get(lib)
        if s is None:
            why = next(
                (_err(r["first"]) or _err(r["second"]) or r["second"].get("note") for r in reps),
                "",
            )
            full.append([h.LABELS[lib]] + ["n/a"] * 5)
            short.append([h.SHORT_LABELS[lib]] + ["n/a"] * 5)
            notes.append(f"{h.LABELS[lib]}: {why or 'no result'}")
            missing.append(f"{h.SHORT_LABELS[lib]}: {_reason(why)}")
            continue
        by = s["restart_calls_by"]
        cells = [
            f"{s['first_calls']:.0f}",
            f"{s['restart_calls']:.0f} (ssm {by['ssm']:.0f}, secret {by['secret']:.0f}, "
            f"s3 {by['s3']:.0f})",
            f"{s['restart_body_bytes'] / h.MB:.1f}",
            h.fmt_ms(s["first_ttfv_ms"]),
            h.fmt_ms(s["restart_ttfv_ms"]),
        ]
        full.append([h.LABELS[lib], *cells])
        short.append([h.SHORT_LABELS[lib], *cells])
        note = _restart_ok(reps)[0]["second"].get("note", "")
        if note:
            notes.append(f"{h.LABELS[lib]}: {note}")
    when = (
        "Time to values: from before the library's import to the third value, with the "
        "injected latency slept for real; boto3 and moto were imported beforehand in both."
    )
    md = h.table(
        "3. Runtime restart: a process loads an SSM parameter, a secret and a "
        f"{cfg['s3_size'] // h.MB} MB S3 object, is killed (-9); a new process on the same "
        f"/tmp asks again (median of {cfg['restart_reps']})",
        [
            "library",
            "origin calls, 1st process",
            "origin calls after restart",
            "S3 MB after restart",
            "1st process: time to values (ms)",
            "after restart: time to values (ms)",
        ],
        full,
        notes=when,
    )
    md += _notes_md(notes)
    term = h.text_table(
        f"3. Runtime restart: load an SSM parameter, a secret and a {cfg['s3_size'] // h.MB} MB "
        f"S3 object, kill -9, ask again from a new process (median of {cfg['restart_reps']}); "
        "lower is better",
        ["library", "calls", "calls after restart", "S3 MB after", "ms to values", "after restart"],
        short,
        notes=" ".join(
            [
                "calls: in the first process. ms to values: from before the library's import to "
                "the third value, with the injected latency slept for real."
            ]
            + [f"n/a: {m}." for m in missing]
        ),
    )
    return md, term


# -- 4. large S3 object ----------------------------------------------------------------------


def scenario_large(cfg: dict[str, Any], ctx: dict[str, Any], p: Progress) -> dict[str, Any]:
    size = cfg["large_size"]
    runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in LARGE_LIBS}
    for rep in range(cfg["large_reps"]):
        for lib in LARGE_LIBS:
            p(f"{lib} rep {rep + 1}/{cfg['large_reps']} ({size // h.MB} MB)")
            # no cache downloads the whole object on a "hit" too: time it once, not 20 times
            spec = _spec("large", lib, ctx, size=size, hit_repeat=1 if lib == "nocache" else 20)
            spec["names"]["big_entry"] += f"-r{rep}"
            runs[lib].append(
                h.fork_worker(spec, {"TIERED_CACHE_DIR": os.path.join(spec["dir"], "t")})
            )
            _remove_lambda_cache_files(ctx)
    summary: dict[str, Any] = {}
    for lib, reps in runs.items():
        ok = [r for r in reps if r.get("steps")]
        for step in ok[0]["steps"] if ok else ():
            vals = [r["steps"][step] for r in ok]
            med = {
                k: h.median([v[k] for v in vals])
                for k in ("calls", "body_bytes", "wall_ms", "injected_ms", "total_ms")
            }
            med["correct"] = all(v["correct"] for v in vals)
            med["ops"] = vals[0]["ops"]
            summary.setdefault(lib, {})[step] = med
    # 4b: tiered-cache's first fetch under a per-connection bandwidth model, one stream vs
    # ranged parts (benchmarks/_large.py: its own origin process; RSS measured in each child)
    import _large

    bandwidth = _large.run(cfg["large_bw_size"], cfg["large_bw_reps"], progress=p)
    return {"runs": runs, "summary": summary, "bandwidth": bandwidth}


LARGE_FIRST_GET = (
    "tiered-cache fetches an object above 8 MiB with one GET, whose body it closes after the "
    "headers, then ranged parts (one GET each, pinned to the first ETag): the injected model "
    "charges bandwidth for the bytes each library reads, as it reads them, so the closed body "
    "costs its 40 ms and no bytes."
)


def report_large(out: dict[str, Any], cfg: dict[str, Any]) -> tuple[str, str]:
    size = cfg["large_size"] // h.MB
    full, short, missing = [], [], []
    for lib, reps in out["runs"].items():
        steps = out["summary"].get(lib)
        if not steps:
            why = next((_err(r) or r.get("note") for r in reps), "") or "no result"
            full.append([h.LABELS[lib], "-"] + ["n/a"] * 5 + [why])
            short.append([h.SHORT_LABELS[lib], "-"] + ["n/a"] * 6)
            missing.append(f"{h.SHORT_LABELS[lib]}: {_reason(why)}")
            continue
        for step, med in steps.items():
            ops_seen = med.get("ops")
            if ops_seen is None:  # results written before the summary kept the ops
                ops_seen = next(r["steps"][step]["ops"] for r in reps if r.get("steps"))
            ops = ", ".join(f"{k.split('.', 1)[1]} {v:g}" for k, v in sorted(ops_seen.items()) if v)
            cells = [
                f"{med['body_bytes'] / h.MB:.1f}",
                h.fmt_ms(med["wall_ms"]),
                h.fmt_ms(med["injected_ms"]),
                h.fmt_ms(med["total_ms"]),
            ]
            calls = f"{med['calls']:g}"
            right = "yes" if med["correct"] else "NO (stale or wrong bytes)"
            full.append([h.LABELS[lib], step, calls + (f" ({ops})" if ops else ""), *cells, right])
            short.append([h.SHORT_LABELS[lib], step, calls, *cells, right.split()[0]])
    md = h.table(
        f"4. A {size} MB S3 object: first fetch, warm hit, expiry unchanged and changed "
        f"(median of {cfg['large_reps']})",
        [
            "library",
            "step",
            "API calls",
            "body MB",
            "wall ms",
            "injected ms",
            "total ms",
            "right bytes",
        ],
        full,
        notes=(
            "Expiry is simulated: the clock jumps TTL + 1 s (the origin's LastModified uses the "
            "same simulated clock). Powertools and cachetools have no S3 file cache and are left "
            "out. Wall ms is time spent in-process moto, not a network model (moto copies the "
            "whole object for each ranged GET, which makes lambda-cache's s3transfer download "
            "slow here); compare the API calls, the body bytes and the injected (modelled "
            "network) time. " + LARGE_FIRST_GET
        ),
    )
    term = h.text_table(
        f"4. A {size} MB S3 object: first fetch, warm hit, expiry with the object unchanged and "
        f"changed (median of {cfg['large_reps']}); lower is better",
        ["library", "step", "calls", "body MB", "wall ms", "injected", "total ms", "right"],
        short,
        notes=" ".join(
            [
                "Expiry is simulated (the clock jumps TTL + 1 s). Wall ms is time in in-process "
                "moto, not a network: compare the calls, the bytes and the injected time. "
                "right: the bytes on disk are the current object. " + LARGE_FIRST_GET
            ]
            + [f"n/a: {m}." for m in missing]
        ),
    )
    if out.get("bandwidth"):  # absent from results written before scenario 4b existed
        import _large

        bw_md, bw_term = _large.report(out["bandwidth"])
        md += "\n" + bw_md
        term += "\n" + bw_term
    return md, term


def _remove_lambda_cache_files(ctx: dict[str, Any]) -> None:
    """lambda-cache writes S3 objects to /tmp/<entry_name>; remove this run's files."""
    prefix = f"tcbench-{ctx['run_id']}-"
    for name in os.listdir("/tmp"):
        if name.startswith(prefix):
            path = os.path.join("/tmp", name)
            if os.path.isfile(path) and not os.path.islink(path):
                os.remove(path)


# -- 5. many processes -----------------------------------------------------------------------


def scenario_crowd(cfg: dict[str, Any], ctx: dict[str, Any], p: Progress) -> dict[str, Any]:
    n = cfg["crowd_procs"]
    runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in cfg["crowd_libs"]}
    for rep in range(cfg["crowd_reps"]):
        for lib in cfg["crowd_libs"]:
            p(f"{lib} rep {rep + 1}/{cfg['crowd_reps']}: {n} processes on one directory")
            base = _spec("crowd", lib, ctx, s3_size=cfg["s3_size"])
            os.makedirs(base["dir"], exist_ok=True)
            ready, go = os.path.join(base["dir"], "ready"), os.path.join(base["dir"], "go")
            base["names"]["s3_entry"] += f"-c{rep}"
            env = {"TIERED_CACHE_DIR": os.path.join(base["dir"], "tiered")}
            kids = [h.fork_start({**base, "ready": ready, "go": go}, env) for _ in range(n)]
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                with open(ready, "a+") as fh:
                    fh.seek(0)
                    if len(fh.read().split()) >= n:
                        break
                time.sleep(0.01)
            with open(go, "w"):
                pass
            results = [h.fork_wait(pid, out) for pid, out in kids]
            errors = [_err(r) for r in results if "error" in r]
            calls: dict[str, int] = {}
            for r in results:
                for s, c in r.get("origin", {}).get("calls", {}).items():
                    calls[s] = calls.get(s, 0) + c
            runs[lib].append(
                {
                    "calls": calls,
                    "total": sum(calls.values()),
                    "first_values_ms": h.median(
                        [r["first_values_ms"] for r in results if "first_values_ms" in r]
                    ),
                    "slowest_ms": max(
                        [r["first_values_ms"] for r in results if "first_values_ms" in r],
                        default=float("nan"),
                    ),
                    "errors": errors[:2],
                    "note": next((r.get("note", "") for r in results), ""),
                }
            )
            _remove_lambda_cache_files(ctx)
    summary = {}
    for lib, reps in runs.items():
        if reps and reps[0]["note"].startswith("n/a"):
            continue
        summary[lib] = {
            "calls": {
                k: h.median([r["calls"].get(k, 0) for r in reps])
                for k in ("ssm", "secretsmanager", "s3")
            },
            "total": h.median([r["total"] for r in reps]),
            "first_values_ms": h.median([r["first_values_ms"] for r in reps]),
            "slowest_ms": h.median([r["slowest_ms"] for r in reps]),
        }
    return {"runs": runs, "summary": summary}


def report_crowd(out: dict[str, Any], cfg: dict[str, Any]) -> tuple[str, str]:
    n = cfg["crowd_procs"]
    full, short, notes, missing = [], [], [], []
    for lib, reps in out["runs"].items():
        s = out["summary"].get(lib)
        if s is None:
            why = reps[0]["note"] if reps else "no result"
            full.append([h.LABELS[lib]] + ["n/a"] * 6)
            short.append([h.SHORT_LABELS[lib]] + ["n/a"] * 6)
            notes.append(f"{h.LABELS[lib]}: {why}")
            missing.append(f"{h.SHORT_LABELS[lib]}: {_reason(why)}")
            continue
        errs = [e for r in reps for e in r["errors"]]
        c = s["calls"]
        cells = [f"{c['ssm']:.0f}", f"{c['secretsmanager']:.0f}", f"{c['s3']:.0f}"]
        cells.append(f"{s['total']:.0f}")
        both = f"{h.fmt_ms(s['first_values_ms'])} / {h.fmt_ms(s['slowest_ms'])}"
        full.append([h.LABELS[lib], *cells, both])
        short.append(
            [h.SHORT_LABELS[lib], *cells, h.fmt_ms(s["first_values_ms"]), h.fmt_ms(s["slowest_ms"])]
        )
        if errs:
            notes.append(f"{h.LABELS[lib]}: errors: {errs[0]}")
            missing.append(f"{h.SHORT_LABELS[lib]} had errors (see the report file)")
        elif reps and reps[0]["note"]:
            notes.append(f"{h.LABELS[lib]}: {reps[0]['note']}")
    md = h.table(
        f"5. {n} processes cold-start together on one /tmp (released by one barrier): origin "
        f"calls for an SSM parameter, a secret and a {cfg['s3_size'] // h.MB} MB S3 object "
        f"(median of {cfg['crowd_reps']})",
        [
            "library",
            "SSM calls",
            "secret calls",
            "S3 calls",
            "total",
            "ms to values: median / slowest",
        ],
        full,
        notes=(
            "Each process runs its own in-process moto copy of the origin, so the total is the "
            "sum of the calls each process's hook saw; injected latency is slept for real so "
            "that loads overlap. tiered-cache keeps secrets in memory only (by design), so every "
            "process fetches its own."
        ),
    )
    md += _notes_md(notes)
    term = h.text_table(
        f"5. {n} processes cold-start together on one /tmp: origin calls for an SSM parameter, "
        f"a secret and a {cfg['s3_size'] // h.MB} MB S3 object (median of {cfg['crowd_reps']}); "
        "lower is better",
        ["library", "SSM", "secret", "S3", "total", "median ms", "slowest ms"],
        short,
        notes=" ".join(
            [
                "ms: to the three values, per process. tiered-cache keeps secrets in memory "
                "only (by design), so every process fetches its own."
            ]
            + [f"n/a: {m}." for m in missing]
        ),
    )
    return md, term


# -- 6. cold start ---------------------------------------------------------------------------


def _import_targets() -> dict[str, str]:
    targets = {
        "python -c pass": "pass",
        "tiered_cache": "import tiered_cache",
        "tiered_cache + TieredCache (engine modules)": (
            "import tiered_cache; tiered_cache.TieredCache"
        ),
    }
    if not h.tiered_aws_status():
        targets["tiered_cache.ssm + secrets_manager + s3"] = (
            "from tiered_cache import ssm, secrets_manager, s3"
        )
    targets.update(
        {
            "lambda_cache": "import lambda_cache",
            "powertools parameters": "from aws_lambda_powertools.utilities import parameters",
            "cachetools": "import cachetools",
            "boto3 (for scale)": "import boto3",
        }
    )
    return targets


def scenario_cold(cfg: dict[str, Any], ctx: dict[str, Any], p: Progress) -> dict[str, Any]:
    targets = _import_targets()
    wall: dict[str, list[float]] = {k: [] for k in targets}
    inproc: dict[str, list[float]] = {k: [] for k in targets}
    env = h.child_env()
    for rep in range(cfg["import_reps"]):
        p(f"fresh interpreters rep {rep + 1}/{cfg['import_reps']}")
        for label, code in targets.items():
            src = (
                "import time as _t; _s = _t.perf_counter()\n"
                f"{code}\n"
                "print((_t.perf_counter() - _s) * 1e3)"
            )
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", src], env=env, capture_output=True, text=True, check=True
            )
            wall[label].append((time.perf_counter() - t) * 1e3)
            inproc[label].append(float(out.stdout.strip().splitlines()[-1]))
    base = h.median(wall["python -c pass"])
    summary = {
        k: {
            "wall_ms": h.median(wall[k]),
            "import_ms": h.median(inproc[k]),
            "p99_wall_ms": h.pct(wall[k], 99),
            "above_pass_ms": h.median(wall[k]) - base,
        }
        for k in targets
    }
    first: dict[str, Any] = {}
    for lib, reps in ctx.get("restart", {}).items():
        a = [r["first"] for r in reps if "first_ms" in r["first"]]
        if not a:
            continue
        first[lib] = {
            "import_build_ms": h.median([x["import_build_ms"] for x in a]),
            "first_ssm_ms": h.median([x["first_ms"].get("ssm", float("nan")) for x in a]),
            "ssm_calls": h.median([x["calls"].get("ssm", 0) for x in a]),
        }
    return {"imports": summary, "first_call": first}


def report_cold(out: dict[str, Any], cfg: dict[str, Any]) -> tuple[str, str]:
    imports = out["imports"]
    base = imports.get("python -c pass", {}).get("wall_ms", float("nan"))
    rows = [
        [
            k,
            h.fmt_ms(v["import_ms"]),
            h.fmt_ms(v["wall_ms"]),
            h.fmt_ms(v["p99_wall_ms"]),
            f"{v.get('above_pass_ms', v['wall_ms'] - base):+.1f}",
        ]
        for k, v in imports.items()
    ]
    reps = cfg["import_reps"]
    md = h.table(
        f"6a. Import in a fresh interpreter (median of {reps}; no moto loaded)",
        ["import", "import ms (in-process)", "process wall ms", "p99 wall ms", "vs -c pass ms"],
        rows,
    )
    term = h.text_table(
        f"6a. Import in a fresh interpreter (median of {reps}; no moto loaded); lower is better",
        ["import", "in-process ms", "wall ms", "p99 wall ms", "vs -c pass"],
        rows,
    )
    first_rows, first_short = [], []
    for lib, f in out["first_call"].items():
        cells = [
            h.fmt_ms(f["import_build_ms"]),
            h.fmt_ms(f["first_ssm_ms"]),
            h.fmt_ms(f["import_build_ms"] + f["first_ssm_ms"]),
            f"{f['ssm_calls']:.0f}",
        ]
        first_rows.append([h.LABELS[lib], *cells])
        first_short.append([h.SHORT_LABELS[lib], *cells])
    if first_rows:
        md += "\n" + h.table(
            "6b. First call in a new process (from scenario 3's first processes): import + set up, "
            "then the first SSM get (20 ms injected, slept); boto3 already imported",
            ["library", "import + set up ms", "first SSM get ms", "sum ms", "SSM calls"],
            first_rows,
        )
        term += "\n" + h.text_table(
            "6b. First call in a new process: import + set up, then the first SSM get (20 ms "
            "injected, slept; boto3 already imported); lower is better",
            ["library", "import + set up ms", "first SSM get ms", "sum ms", "SSM calls"],
            first_short,
        )
    return md, term


# -- 7. speed targets ------------------------------------------------------------------------


def scenario_speed(cfg: dict[str, Any], ctx: dict[str, Any], p: Progress) -> dict[str, Any]:
    import speed

    return speed.run(ctx["quick"], hits=ctx.get("hits"), progress=p)


def report_speed(out: dict[str, Any], cfg: dict[str, Any]) -> tuple[str, str]:
    import speed

    return speed.report(out), speed.report(out, terminal=True)


Measure = Callable[[dict[str, Any], dict[str, Any], Progress], dict[str, Any]]
Report = Callable[[dict[str, Any], dict[str, Any]], tuple[str, str]]

SCENARIOS: list[tuple[str, str, Measure, Report]] = [
    ("1", "hit path", scenario_hits, report_hits),
    ("2", "invocation stream", scenario_stream, report_stream),
    ("3", "restart", scenario_restart, report_restart),
    ("4", "large S3 object", scenario_large, report_large),
    ("5", "16 processes", scenario_crowd, report_crowd),
    ("6", "cold start", scenario_cold, report_cold),
    ("speed", "speed targets", scenario_speed, report_speed),
]


# -- reports ---------------------------------------------------------------------------------

SEE_REPORT = "Every column, the API calls by operation and the notes are in the report file (.md)."


def _reason(why: str) -> str:
    """A result's "n/a (reason)" note as just the reason, for a terminal line."""
    why = why.strip()
    if why.startswith("n/a (") and why.endswith(")"):
        return why[5:-1]
    return why.removeprefix("n/a").strip(" :") or "no result"


def _notes_md(notes: list[str]) -> str:
    return "\n\nNotes:\n\n" + h.bullets(notes) if notes else ""


def render(key: str, name: str, out: dict[str, Any], cfg: dict[str, Any]) -> bool:
    """Set ``out["text"]`` (Markdown for the report file: every column and note) and
    ``out["terminal"]`` (a short table that fits in 100 columns). False if the scenario had
    crashed or its report could not be made (the measurements in ``out`` are kept)."""
    if "error" in out:
        out["text"] = f"\n### {name}: CRASHED\n\n```\n{out['error'].rstrip()}\n```"
        out["terminal"] = f"\n{name}: CRASHED (the traceback is above and in the JSON file)"
        return False
    report = next(r for k, _, _, r in SCENARIOS if k == key)
    try:
        out["text"], out["terminal"] = report(out, cfg)
    except Exception:
        trace = traceback.format_exc()
        print(trace, file=sys.stderr)
        out["text"] = f"\n### {name}: the report failed\n\n```\n{trace.rstrip()}\n```"
        out["terminal"] = f"\n{name}: the report failed (traceback above)"
        return False
    return True


def _machine_line(meta: dict[str, Any]) -> str:
    m, v = meta["machine"], meta["versions"]
    return (
        f"{m.get('cpu_model', '?')}, {m.get('cpus', '?')} CPUs, {m.get('platform', '?')}, "
        f"{v.get('implementation', 'Python')} {v.get('python', '?')}, "
        f"commit {m.get('git_commit') or '?'}"
    )


def _versions_line(meta: dict[str, Any]) -> str:
    skip = ("python", "implementation")
    return ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if k not in skip)


def terminal_header(meta: dict[str, Any]) -> str:
    lines = [
        h.wrap(f"tiered-cache benchmarks ({meta['mode']}) on {_machine_line(meta)}"),
        h.wrap(f"Versions: {_versions_line(meta)}"),
        h.wrap(
            "Origin: moto, in process (no AWS account); each library runs in its own process "
            "with its own origin objects. Injected latency per API call: SSM 20 ms, Secrets "
            "Manager 25 ms, S3 40 ms + 100 MB/s. How it is measured: benchmarks/README.md."
        ),
        h.wrap(h.SHORT_KEY),
    ]
    if meta.get("tiered_aws", "available") != "available":
        lines.append(h.wrap(f"tiered-cache AWS helpers: {meta['tiered_aws']}; their rows: n/a"))
    return "\n".join(lines)


def report_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    how = meta.get("how", HOW)
    parts = [
        f"# tiered-cache benchmarks ({meta['mode']}, {meta['date']})",
        h.wrap(f"Machine: {_machine_line(meta)}."),
        h.wrap(f"Versions: {_versions_line(meta)}."),
        h.wrap(f"Origin: {how['origin']}"),
        h.wrap(f"Latency: {how['latency']}"),
    ]
    if meta.get("seconds"):
        parts.append(f"The run took {meta['seconds']:.0f} s.")
    text = "\n\n".join(parts) + "\n"
    for out in results["scenarios"].values():
        text += out.get("text", "") + "\n"
    return text


def write_outputs(results: dict[str, Any], out_dir: str, charts: bool) -> tuple[str, list[str]]:
    """Write ``<mode>.md`` and, unless ``charts`` is False, the PNG charts; (md path, charts)."""
    mode = results["meta"]["mode"]
    os.makedirs(out_dir, exist_ok=True)
    made: list[str] = []
    if charts:
        import _charts

        made = _charts.draw(results, out_dir, mode)
    md = os.path.join(out_dir, f"{mode}.md")
    with open(md, "w") as fh:
        fh.write(report_markdown(results))
    return md, made


def _print_paths(label: str, paths: list[str]) -> None:
    print(h.wrap(f"{label}: " + ", ".join(os.path.relpath(p) for p in paths)))


def from_json(path: str, out_dir: str | None, charts: bool) -> int:
    """Re-render the tables, the report file and the charts of a results JSON (no measuring).

    The JSON itself is left as it is: it is the record of what was measured."""
    with open(path) as fh:
        results: dict[str, Any] = json.load(fh)
    meta = results["meta"]
    cfg = meta["config"]
    print(terminal_header(meta))
    ok = True
    for key, out in results["scenarios"].items():
        name = next((n for k, n, _, _ in SCENARIOS if k == key), key)
        ok = render(key, name, out, cfg) and ok
        print(out["terminal"])
    try:
        md, made = write_outputs(results, out_dir or os.path.dirname(os.path.abspath(path)), charts)
    except Exception:
        traceback.print_exc()
        return 1
    print()
    _print_paths(f"re-rendered from {os.path.relpath(path)}", [md, *made])
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI smoke run (< 2 minutes)")
    parser.add_argument(
        "--only", help="comma-separated scenarios to run: 1-6 and/or speed (default: all)"
    )
    parser.add_argument("--out", help=f"results directory (default: {os.path.relpath(h.RESULTS)})")
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    parser.add_argument(
        "--from-json",
        metavar="FILE",
        help="measure nothing: re-render the tables, the .md report and the charts from a "
        "results JSON (written next to it, or to --out)",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        return from_json(args.from_json, args.out, not args.no_charts)
    out_dir = args.out or h.RESULTS
    h.precompile()  # fresh interpreters import compiled code, as after a pip install
    cfg = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"
    wanted = {s.strip() for s in args.only.split(",")} if args.only else None
    chosen = [s for s in SCENARIOS if wanted is None or s[0] in wanted]
    # scenario 6b reuses scenario 3's first processes; speed reuses scenario 1's hits
    started = time.perf_counter()
    run_id = uuid.uuid4().hex[:8]
    tmp = tempfile.mkdtemp(prefix=f"tcbench-{run_id}-")
    ctx: dict[str, Any] = {"cfg": cfg, "run_id": run_id, "tmp": tmp, "quick": args.quick}
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": mode,
        "machine": h.machine(),
        "versions": h.versions(),
        "config": cfg,
        "how": {**HOW, "time": _time_handling()},
        "tiered_aws": h.tiered_aws_status() or "available",
    }
    print(terminal_header(meta))
    results: dict[str, Any] = {"meta": meta, "scenarios": {}}
    crashed = []
    progress = Progress(len(chosen))
    try:
        print(f"[0/{len(chosen)}] setup: importing moto, creating every library's origin objects")
        h.preload()
        h.start_moto([h.names_for(lib, run_id) for lib in h.LIBS], s3_size=cfg["s3_size"])
        for key, name, measure, _ in chosen:
            progress.begin(f"{key}. {name}" if key.isdigit() else name)
            t = time.perf_counter()
            try:
                out = measure(cfg, ctx, progress)
            except Exception:
                out = {"error": traceback.format_exc()}
                print(out["error"], file=sys.stderr)
            out["seconds"] = time.perf_counter() - t
            if not render(key, name, out, cfg):
                crashed.append(key)
            print(out["terminal"], flush=True)
            results["scenarios"][key] = out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_lambda_cache_files(ctx)
    meta["seconds"] = time.perf_counter() - started
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{mode}.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=1, default=str)
    try:
        md, charts = write_outputs(results, out_dir, not args.no_charts)
    except Exception:
        crashed.append("report")
        traceback.print_exc()
        md, charts = "(not written)", []
    print()
    _print_paths("results", [path, md])
    if charts:
        _print_paths("charts", charts)
    print(f"total time: {meta['seconds']:.0f} s" + (f"; CRASHED: {crashed}" if crashed else ""))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
