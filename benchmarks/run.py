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
        print(f"[{self.index}/{self.total}] {self.name}: {message}", flush=True)


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
    rows = []
    floors = [r["paths"]["floor"]["median_ns"] for r in results.values() if r.get("paths")]
    floor = h.median(floors)
    p99 = h.median([r["paths"]["floor"]["p99_ns"] for r in results.values() if r.get("paths")])
    rows.append([h.LABELS["floor"], "floor(key)", h.fmt_ns(floor), h.fmt_ns(p99), "1.00x"])
    chart = []
    for lib, r in results.items():
        if not r.get("paths"):
            rows.append([h.LABELS[lib], "-", "n/a", "n/a", _err(r) or r.get("note", "n/a")])
            continue
        f = r["paths"]["floor"]["median_ns"]
        for label, path in r["paths"].items():
            if label == "floor":
                continue
            ratio = path["median_ns"] / f
            name = h.LABELS["handwritten"] if label.startswith("hand-written") else h.LABELS[lib]
            rows.append(
                [
                    name,
                    label,
                    h.fmt_ns(path["median_ns"]),
                    h.fmt_ns(path["p99_ns"]),
                    f"{ratio:.2f}x",
                ]
            )
            r.setdefault("ratios", {})[label] = ratio
            if "bare handler" in label:
                continue
            if label.startswith("hand-written"):
                chart.append((f"baseline: {label}", ratio))
            else:
                chart.append((f"{SHORT[lib]}: {label}", ratio))
    text = h.table(
        f"1. Warm hit path: ns per call (median of interleaved batches; p99 of single calls; "
        f"median of {cfg['hits_procs']} process(es))",
        ["library", "path", "median", "p99", "x floor (same process)"],
        rows,
    )
    hook = "; ".join(
        f"{lib} {r.get('origin', {}).get('total_calls', '?')} calls to warm, "
        f"{r.get('origin_calls_while_timing', '?')} while timing"
        for lib, r in results.items()
        if r.get("paths")
    )
    text += f"\n\nOrigin calls the hook saw: {hook}."
    return {"workers": results, "floor_ns": floor, "chart": chart, "text": text}


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
    tables = []
    ttls = cfg["stream_window_s"] / cfg["ttl"]
    for stream, title, services in (
        ("params", "an SSM parameter and a secret per invocation", ("ssm", "secretsmanager")),
        ("s3", f"a {cfg['s3_size'] // h.MB} MB S3 object per invocation", ("s3",)),
    ):
        rows = []
        base_total = None
        for lib in STREAM_LIBS:
            ok = [r[stream] for r in runs[lib] if r.get(stream)]
            if not ok:
                why = next((_err(r) or r.get("note") for r in runs[lib]), "") or ""
                if stream == "s3" and lib == "powertools":
                    why = "n/a (Powertools has no S3 provider)"
                rows.append([h.LABELS[lib]] + ["n/a"] * (len(services) + 4) + [why[:70]])
                continue
            med = {
                k: h.median([o[k] for o in ok])
                for k in ("p50_ms", "p99_ms", "total_ms", "body_bytes")
            }
            calls = {s: h.median([o["calls"].get(s, 0) for o in ok]) for s in services}
            ops = ok[0]["ops"]
            summary.setdefault(stream, {})[lib] = {**med, "calls": calls, "ops": ops}
            if lib == "nocache":
                base_total = med["total_ms"]
            vs = f"{med['total_ms'] / base_total:.3f}" if base_total else "-"
            opsdesc = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(ops.items()) if v)
            rows.append(
                [h.LABELS[lib]]
                + [f"{calls[s]:.0f}" for s in services]
                + [
                    f"{med['body_bytes'] / h.MB:.0f}",
                    h.fmt_ms(med["p50_ms"]),
                    h.fmt_ms(med["p99_ms"]),
                    f"{med['total_ms'] / 1e3:.1f}",
                    f"{vs}  ({opsdesc})",
                ]
            )
        header = (
            ["library"]
            + [f"{s} calls" for s in services]
            + ["body MB", "p50 ms", "p99 ms", "total s", "total / no cache (API calls seen)"]
        )
        tables.append(
            h.table(
                f"2{'ab'[stream == 's3']}. Stream of {cfg['stream_invocations']} invocations over "
                f"{cfg['stream_window_s'] / 3600:g} h simulated ({ttls:.0f} TTLs of "
                f"{cfg['ttl']} s): {title} (median of {cfg['stream_reps']} reps)",
                header,
                rows,
            )
        )
    text = "\n".join(tables)
    text += f"\n\nOne load per TTL would be {ttls:.0f} calls per resource. Time: " + "; ".join(
        f"{lib}: {how}" for lib, how in _time_handling().items()
    )
    return {"runs": runs, "summary": summary, "text": text}


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
    rows = []
    summary = {}
    for lib, reps in runs.items():
        ok = [r for r in reps if "error" not in r["first"] and "error" not in r["second"]]
        if not ok or ok[0]["second"].get("note", "").startswith("n/a"):
            why = next(
                (_err(r["first"]) or _err(r["second"]) or r["second"].get("note") for r in reps),
                "",
            )
            rows.append([h.LABELS[lib]] + ["n/a"] * 5 + [str(why)[:70]])
            continue
        a = [r["first"] for r in ok]
        b = [r["second"] for r in ok]
        calls_b = {s: h.median([x["calls"].get(s, 0) for x in b]) for s in ("ssm", "secret", "s3")}
        s = {
            "first_calls": h.median([x["origin"]["total_calls"] for x in a]),
            "restart_calls": h.median([x["origin"]["total_calls"] for x in b]),
            "restart_calls_by": calls_b,
            "first_ttfv_ms": h.median([x["ttfv_ms"] for x in a]),
            "restart_ttfv_ms": h.median([x["ttfv_ms"] for x in b]),
            "restart_body_bytes": h.median([x["origin"]["body_bytes"] for x in b]),
        }
        summary[lib] = s
        rows.append(
            [
                h.LABELS[lib],
                f"{s['first_calls']:.0f}",
                f"{s['restart_calls']:.0f} (ssm {calls_b['ssm']:.0f}, secret "
                f"{calls_b['secret']:.0f}, s3 {calls_b['s3']:.0f})",
                f"{s['restart_body_bytes'] / h.MB:.1f}",
                h.fmt_ms(s["first_ttfv_ms"]),
                h.fmt_ms(s["restart_ttfv_ms"]),
                ok[0]["second"].get("note", "")[:70],
            ]
        )
    text = h.table(
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
            "note",
        ],
        rows,
    )
    text += (
        "\n\nTime to values: from before the library's import to the third value, with the "
        "injected latency slept for real; boto3 and moto were imported beforehand in both."
    )
    return {"runs": runs, "summary": summary, "text": text}


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
    rows = []
    summary: dict[str, Any] = {}
    for lib, reps in runs.items():
        ok = [r for r in reps if r.get("steps")]
        if not ok:
            why = next((_err(r) or r.get("note") for r in reps), "")
            rows.append([h.LABELS[lib], "-"] + ["n/a"] * 5 + [str(why)[:60]])
            continue
        for step in ok[0]["steps"]:
            vals = [r["steps"][step] for r in ok]
            med = {
                k: h.median([v[k] for v in vals])
                for k in ("calls", "body_bytes", "wall_ms", "injected_ms", "total_ms")
            }
            med["correct"] = all(v["correct"] for v in vals)
            summary.setdefault(lib, {})[step] = med
            ops = ", ".join(
                f"{k.split('.', 1)[1]} {v:g}" for k, v in sorted(vals[0]["ops"].items()) if v
            )
            rows.append(
                [
                    h.LABELS[lib],
                    step,
                    f"{med['calls']:g}" + (f" ({ops})" if ops else ""),
                    f"{med['body_bytes'] / h.MB:.1f}",
                    h.fmt_ms(med["wall_ms"]),
                    h.fmt_ms(med["injected_ms"]),
                    h.fmt_ms(med["total_ms"]),
                    "yes" if med["correct"] else "NO (stale or wrong bytes)",
                ]
            )
    text = h.table(
        f"4. A {size // h.MB} MB S3 object: first fetch, warm hit, expiry unchanged and changed "
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
        rows,
    )
    text += (
        "\n\nExpiry is simulated: the clock jumps TTL + 1 s (the origin's LastModified uses the "
        "same simulated clock). Powertools and cachetools have no S3 file cache and are left out. "
        "Wall ms is time spent in-process moto, not a network model (moto copies the whole "
        "object for each ranged GET, which makes lambda-cache's s3transfer download slow here); "
        "compare the API calls, the body bytes and the injected (modelled network) time."
    )
    return {"runs": runs, "summary": summary, "text": text}


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
    rows = []
    summary = {}
    for lib, reps in runs.items():
        if reps and reps[0]["note"].startswith("n/a"):
            rows.append([h.LABELS[lib]] + ["n/a"] * 5 + [reps[0]["note"][:70]])
            continue
        s = {
            "calls": {
                k: h.median([r["calls"].get(k, 0) for r in reps])
                for k in ("ssm", "secretsmanager", "s3")
            },
            "total": h.median([r["total"] for r in reps]),
            "first_values_ms": h.median([r["first_values_ms"] for r in reps]),
            "slowest_ms": h.median([r["slowest_ms"] for r in reps]),
        }
        summary[lib] = s
        errs = [e for r in reps for e in r["errors"]]
        rows.append(
            [
                h.LABELS[lib],
                f"{s['calls']['ssm']:.0f}",
                f"{s['calls']['secretsmanager']:.0f}",
                f"{s['calls']['s3']:.0f}",
                f"{s['total']:.0f}",
                f"{h.fmt_ms(s['first_values_ms'])} / {h.fmt_ms(s['slowest_ms'])}",
                (f"errors: {errs[0]}" if errs else reps[0]["note"])[:70],
            ]
        )
    text = h.table(
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
            "note",
        ],
        rows,
    )
    text += (
        "\n\nEach process runs its own in-process moto copy of the origin, so the total is the "
        "sum of the calls each process's hook saw; injected latency is slept for real so that "
        "loads overlap. tiered-cache keeps secrets in memory only (by design), so every "
        "process fetches its own."
    )
    return {"runs": runs, "summary": summary, "text": text}


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
        }
        for k in targets
    }
    rows = [
        [
            k,
            h.fmt_ms(v["import_ms"]),
            h.fmt_ms(v["wall_ms"]),
            h.fmt_ms(v["p99_wall_ms"]),
            f"{v['wall_ms'] - base:+.1f}",
        ]
        for k, v in summary.items()
    ]
    text = h.table(
        f"6a. Import in a fresh interpreter (median of {cfg['import_reps']}; no moto loaded)",
        ["import", "import ms (in-process)", "process wall ms", "p99 wall ms", "vs -c pass ms"],
        rows,
    )
    first_rows = []
    first: dict[str, Any] = {}
    for lib, reps in ctx.get("restart", {}).items():
        a = [r["first"] for r in reps if "first_ms" in r["first"]]
        if not a:
            continue
        f = {
            "import_build_ms": h.median([x["import_build_ms"] for x in a]),
            "first_ssm_ms": h.median([x["first_ms"].get("ssm", float("nan")) for x in a]),
            "ssm_calls": h.median([x["calls"].get("ssm", 0) for x in a]),
        }
        first[lib] = f
        first_rows.append(
            [
                h.LABELS[lib],
                h.fmt_ms(f["import_build_ms"]),
                h.fmt_ms(f["first_ssm_ms"]),
                h.fmt_ms(f["import_build_ms"] + f["first_ssm_ms"]),
                f"{f['ssm_calls']:.0f}",
            ]
        )
    if first_rows:
        text += "\n" + h.table(
            "6b. First call in a new process (from scenario 3's first processes): import + set up, "
            "then the first SSM get (20 ms injected, slept); boto3 already imported",
            ["library", "import + set up ms", "first SSM get ms", "sum ms", "SSM calls"],
            first_rows,
        )
    return {"imports": summary, "first_call": first, "text": text}


# -- 7. speed targets ------------------------------------------------------------------------


def scenario_speed(cfg: dict[str, Any], ctx: dict[str, Any], p: Progress) -> dict[str, Any]:
    import speed

    result = speed.run(ctx["quick"], hits=ctx.get("hits"), progress=p)
    result["text"] = speed.report(result)
    return result


SCENARIOS: list[tuple[str, str, Callable[..., dict[str, Any]]]] = [
    ("1", "hit path", scenario_hits),
    ("2", "invocation stream", scenario_stream),
    ("3", "restart", scenario_restart),
    ("4", "large S3 object", scenario_large),
    ("5", "16 processes", scenario_crowd),
    ("6", "cold start", scenario_cold),
    ("speed", "speed targets", scenario_speed),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI smoke run (< 2 minutes)")
    parser.add_argument(
        "--only", help="comma-separated scenarios to run: 1-6 and/or speed (default: all)"
    )
    parser.add_argument("--out", default=h.RESULTS, help="results directory")
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    args = parser.parse_args(argv)
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
    print(
        f"tiered-cache benchmarks ({mode}) on {meta['machine'].get('cpu_model', '?')}, "
        f"{meta['machine']['cpus']} CPUs, Python {meta['versions']['python']}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    for k, v in HOW.items():
        print(f"{k}: {v}")
    if h.tiered_aws_status():
        print(f"tiered-cache AWS helpers: {h.tiered_aws_status()}; their rows show n/a")
    results: dict[str, Any] = {"meta": meta, "scenarios": {}}
    crashed = []
    progress = Progress(len(chosen))
    try:
        print(f"[0/{len(chosen)}] setup: importing moto, creating every library's origin objects")
        h.preload()
        h.start_moto([h.names_for(lib, run_id) for lib in h.LIBS], s3_size=cfg["s3_size"])
        for key, name, fn in chosen:
            progress.begin(f"{key}. {name}" if key.isdigit() else name)
            t = time.perf_counter()
            try:
                out = fn(cfg, ctx, progress)
            except Exception:
                crashed.append(key)
                out = {"error": traceback.format_exc(), "text": f"\n### {name}: CRASHED\n"}
                print(out["error"], file=sys.stderr)
            out["seconds"] = time.perf_counter() - t
            print(out["text"], flush=True)
            results["scenarios"][key] = out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_lambda_cache_files(ctx)
    meta["seconds"] = time.perf_counter() - started
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{mode}.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=1, default=str)
    charts: list[str] = []
    if not args.no_charts:
        try:
            import _charts

            charts = _charts.draw(results, args.out, mode)
        except Exception:
            crashed.append("charts")
            traceback.print_exc()
    md = os.path.join(args.out, f"{mode}.md")
    with open(md, "w") as fh:
        fh.write(f"# tiered-cache benchmarks ({mode}, {meta['date']})\n\n")
        fh.write(f"Machine: {meta['machine']}\n\nVersions: {meta['versions']}\n")
        for out in results["scenarios"].values():
            fh.write(out.get("text", "") + "\n")
    print(f"\nresults: {path}, {md}" + (f", charts: {', '.join(charts)}" if charts else ""))
    print(f"total time: {meta['seconds']:.0f} s" + (f"; CRASHED: {crashed}" if crashed else ""))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
