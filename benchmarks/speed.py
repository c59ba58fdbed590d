"""The speed targets: each a ratio against a baseline measured in the same run, with its goal.

    python3 benchmarks/speed.py            # full: more repetitions
    python3 benchmarks/speed.py --quick    # the CI smoke run

Prints each target with its measured figure and PASS or SHORT; never fails on a timing (exit
status is non-zero only if the script itself crashes). ``run.py`` calls :func:`run` and passes
the hit-path results of its scenario 1 so they are not measured twice.
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
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h

QUICK = {"procs": 1, "rounds": 15, "calls": 5000, "fresh": 5, "imports": 11, "s3_size": 100 * h.MB}
FULL = {"procs": 3, "rounds": 80, "calls": 50000, "fresh": 25, "imports": 41, "s3_size": 100 * h.MB}

FILL_SRC = """
import sys, diskcache
from tiered_cache import TieredCache
tiered_dir, raw_dir = sys.argv[1], sys.argv[2]
t = TieredCache(directory=tiered_dir, ttl=86400, jitter=0.0)
r = diskcache.Cache(raw_dir)
for k in ("k100", "a", "b"):
    t.set(k, b"x" * 100)
    r.set(k, b"x" * 100)
r.close()
"""


def _fresh(kind: str, directory: str, pre_import: bool) -> dict[str, Any]:
    spec = {"task": "disk_first", "kind": kind, "dir": directory, "pre_import": pre_import}
    return h.run_worker(spec)


def _import_times(n: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Wall time of fresh interpreters: ``-c pass`` vs ``-c 'import tiered_cache'``."""
    cmds = {
        "python -c pass": "pass",
        "python -c 'import tiered_cache'": "import tiered_cache",
    }
    samples: dict[str, list[float]] = {k: [] for k in cmds}
    env = h.child_env()
    for i in range(n):
        if i % 5 == 0:
            progress(f"import tiered_cache: fresh interpreter {i + 1}/{n}")
        for label, code in cmds.items():
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            samples[label].append((time.perf_counter() - t) * 1e3)
    diffs = [
        a - b
        for a, b in zip(
            samples["python -c 'import tiered_cache'"], samples["python -c pass"], strict=True
        )
    ]
    return {
        "median_ms": {k: h.median(v) for k, v in samples.items()},
        "p99_ms": {k: h.pct(v, 99) for k, v in samples.items()},
        "above_pass_ms": h.median(diffs),
        "n": n,
    }


def _target(
    name: str, measured: float | None, target: float, unit: str, detail: str, kind: str = "max"
) -> dict[str, Any]:
    if measured is None or measured != measured:
        verdict = "n/a"
    elif kind == "within":
        verdict = "PASS" if abs(measured - 1.0) <= target else "SHORT"
    else:
        verdict = "PASS" if measured <= target else "SHORT"
    if kind == "within":
        goal = f"within {target:.0%}"
    elif unit == "ms":
        goal = f"<= {target:g} ms above"
    elif unit == "%":
        goal = f"<= {target:.0%}"
    else:
        goal = f"<= {target:g}x"
    if measured is None or measured != measured:
        shown = "n/a"
    elif unit == "ms":
        shown = f"{measured:+.1f} ms"
    elif unit == "%":
        shown = f"{measured:.0%}"
    else:
        shown = f"{measured:.2f}x"
    return {
        "target": name,
        "goal": goal,
        "measured": measured,
        "shown": shown,
        "verdict": verdict,
        "detail": detail,
        # the goal as numbers, for the chart: measured <= goal_value ("max"), or
        # |measured - 1| <= goal_value ("within"); unit "x", "%" (a fraction) or "ms"
        "goal_value": target,
        "kind": kind,
        "unit": unit,
    }


def _hits(lib: str, cfg: dict[str, Any], tmp: str) -> dict[str, Any]:
    return h.merge_hits([_hits_once(lib, cfg, tmp) for _ in range(cfg["procs"])])


def _hits_once(lib: str, cfg: dict[str, Any], tmp: str) -> dict[str, Any]:
    spec = {
        "task": "hits",
        "lib": lib,
        "names": h.names_for(lib, "speed"),
        "ttl": 3600,
        "dir": os.path.join(tmp, lib),
        "rounds": cfg["rounds"],
        "calls": cfg["calls"],
    }
    return h.run_worker(spec)


FILL_OBJECTS_SRC = """
import sys
from tiered_cache import TieredCache
directory, start, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cache = TieredCache(directory=directory, ttl=86400, jitter=0.0)
body = b"f" * 1024
for i in range(start, stop):
    cache.load_file(f"fill{i}", lambda dest, _v: dest.write(body) and "etag")
"""

#: Objects cached on disk in the two directories the write targets compare.
WRITE_OBJECTS = (10, 5000)


def _write_targets(
    cfg: dict[str, Any], tmp: str, raw: dict[str, Any], progress: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Write cost with 5,000 cached objects on disk against 10 (DESIGN.md guarantee 11).

    Fills two directories with 1 KiB objects (in fresh processes, 1,000 at a time), then one
    worker times small ``cache.set`` calls and new file-backed entries in both, interleaved.
    """
    dirs = {}
    for count in WRITE_OBJECTS:
        directory = os.path.join(tmp, f"writes-{count}")
        dirs[str(count)] = directory
        for start in range(0, count, 1000):
            stop = min(count, start + 1000)
            progress(f"speed: writes with {count} objects: filling {stop}/{count}")
            subprocess.run(
                [sys.executable, "-c", FILL_OBJECTS_SRC, directory, str(start), str(stop)],
                env=h.child_env(),
                check=True,
            )
    few, many = (str(c) for c in WRITE_OBJECTS)
    progress(f"speed: writes with {many} objects vs {few}, interleaved")
    result = h.run_worker(
        {"task": "speed_writes", "dirs": dirs, "rounds": cfg["rounds"], "batch": 10}
    )
    raw["writes"] = result
    paths = result.get("paths", {})
    targets = []
    for op, name in (
        ("set", "cache.set of a small value"),
        ("file", "a new file-backed entry (load_file, 1 KiB object)"),
    ):
        label = f"{name}, {many} objects on disk vs {few}"
        if f"{op}:{many}" not in paths:
            targets.append(_target(label, None, 1.5, "x", result.get("error", "no result")))
            continue
        big, small = paths[f"{op}:{many}"]["median_ns"], paths[f"{op}:{few}"]["median_ns"]
        targets.append(
            _target(label, big / small, 1.5, "x", f"{h.fmt_ns(big)} vs {h.fmt_ns(small)}")
        )
    return targets


def run(
    quick: bool,
    hits: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure every target; ``hits`` may carry scenario 1's worker results by library."""
    cfg = QUICK if quick else FULL
    tmp = tempfile.mkdtemp(prefix="tcbench-speed-")
    raw: dict[str, Any] = {}
    targets: list[dict[str, Any]] = []
    try:
        progress("speed: TieredCache.get and @tiered.cache vs their baselines")
        core = h.run_worker(
            {
                "task": "speed_core",
                "dir": tmp,
                "rounds": cfg["rounds"],
                "calls": cfg["calls"],
            }
        )
        raw["core"] = core
        p = core.get("paths", {})
        if p:
            floor = p["floor"]["median_ns"]
            get = p["TieredCache.get (memory hit)"]["median_ns"]
            hand = p["hand-written TTL decorator"]["median_ns"]
            deco = p["@tiered.cache static key"]["median_ns"]
            targets.append(
                _target(
                    "TieredCache.get memory hit vs floor",
                    get / floor,
                    3.0,
                    "x",
                    f"{h.fmt_ns(get)} vs {h.fmt_ns(floor)}",
                )
            )
            targets.append(
                _target(
                    "@tiered.cache warm hit (static key) vs hand-written TTL decorator",
                    deco / hand,
                    2.5,
                    "x",
                    f"{h.fmt_ns(deco)} vs {h.fmt_ns(hand)}",
                )
            )

        progress("speed: keyed @tiered.cache hits (template, default key, callable key)")
        keyed = h.run_worker(
            {"task": "speed_keyed", "dir": tmp, "rounds": cfg["rounds"], "calls": cfg["calls"]}
        )
        raw["keyed"] = keyed
        kp = keyed.get("paths", {})
        keyed_goals = (
            ("template", "@cache(key='r:{day}:{n}')", 2.5),
            ("default key", "@cache (default key)", 2.5),
            ("callable key", "@cache(key=lambda day, n: ...)", 3.0),
        )
        if kp:
            kfloor = kp["keyed floor"]["median_ns"]
            ct = kp["cachetools.cached(TTLCache)"]["median_ns"]
            shown = ", ".join(
                f"{label} {kp[path]['median_ns'] / kfloor:.2f}x" for label, path, _ in keyed_goals
            )
            progress(
                f"speed: keyed hits vs the keyed floor: {shown}, cachetools {ct / kfloor:.2f}x"
            )
            for label, path, goal in keyed_goals:
                ns = kp[path]["median_ns"]
                targets.append(
                    _target(
                        f"@tiered.cache warm hit, {label}, vs keyed floor",
                        ns / kfloor,
                        goal,
                        "x",
                        f"{h.fmt_ns(ns)} vs {h.fmt_ns(kfloor)} (cachetools.cached(TTLCache) "
                        f"{h.fmt_ns(ct)}, {ct / kfloor:.2f}x)",
                    )
                )
        else:
            for label, _, goal in keyed_goals:
                targets.append(
                    _target(
                        f"@tiered.cache warm hit, {label}, vs keyed floor",
                        None,
                        goal,
                        "x",
                        keyed.get("error", "no result"),
                    )
                )

        progress("speed: async @tiered.cache hit vs an async floor, cashews beside it")
        aio = h.run_worker(
            {
                "task": "speed_async",
                "dir": tmp,
                "rounds": cfg["rounds"],
                "calls": cfg["calls"],
                "loop_calls": 300,
            }
        )
        raw["async"] = aio
        ap = aio.get("paths", {})
        name = "@tiered.cache async def warm hit vs async floor"
        if ap:
            afloor = ap["async floor"]["median_ns"]
            ahit = ap["@tiered.cache async def (static key)"]["median_ns"]
            peer = ap.get("cashews @cache (mem://)", {}).get("median_ns")
            beside = (
                f"cashews @cache {h.fmt_ns(peer)}, {peer / afloor:.1f}x"
                if peer
                else aio.get("note") or "cashews n/a"
            )
            progress(f"speed: async hit {ahit / afloor:.2f}x the async floor; {beside}")
            for label, p_ in aio.get("loop", {}).items():
                progress(
                    f"speed: async {label}: {p_['wall_ns'] / 1e3:.1f} us a call, event loop "
                    f"busy {p_['loop_busy_ns'] / 1e3:.1f} us"
                )
            targets.append(
                _target(
                    name,
                    ahit / afloor,
                    2.5,
                    "x",
                    f"{h.fmt_ns(ahit)} vs {h.fmt_ns(afloor)} ({beside})",
                )
            )
        else:
            targets.append(_target(name, None, 2.5, "x", aio.get("error", "no result")))

        progress("speed: disk hit of a 100-byte value (fresh processes and warm)")
        tiered_dir, raw_dir = os.path.join(tmp, "disk-tiered"), os.path.join(tmp, "disk-raw")
        subprocess.run(
            [sys.executable, "-c", FILL_SRC, tiered_dir, raw_dir], env=h.child_env(), check=True
        )
        fresh: dict[str, list[dict[str, Any]]] = {}
        for i in range(cfg["fresh"]):
            if i % 5 == 0:
                progress(f"speed: disk first get, fresh interpreter {i + 1}/{cfg['fresh']}")
            for kind, directory in (("tiered", tiered_dir), ("raw", raw_dir)):
                for pre in (False, True):
                    fresh.setdefault(f"{kind}:{pre}", []).append(_fresh(kind, directory, pre))
        summary = {}
        for label, runs in fresh.items():
            ok = [r for r in runs if "error" not in r]
            summary[label] = {
                "import_ms": h.median([r["import_ms"] for r in ok]),
                "open_get_ms": h.median([r["open_get_ms"] for r in ok]),
                "total_ms": h.median([r["import_ms"] + r["open_get_ms"] for r in ok]),
                "errors": [r["error"] for r in runs if "error" in r][:1],
            }
        raw["disk_first"] = summary
        t_all, r_all = summary["tiered:False"], summary["raw:False"]
        t_pre, r_pre = summary["tiered:True"], summary["raw:True"]
        targets.append(
            _target(
                "disk hit, fresh process: import + open + first get vs raw diskcache",
                t_all["total_ms"] / r_all["total_ms"],
                1.5,
                "x",
                f"{t_all['total_ms']:.1f} ms vs {r_all['total_ms']:.1f} ms",
            )
        )
        targets.append(
            _target(
                "disk hit, fresh process: open + first get (diskcache imported) vs raw",
                t_pre["open_get_ms"] / r_pre["open_get_ms"],
                1.5,
                "x",
                f"{t_pre['open_get_ms']:.2f} ms vs {r_pre['open_get_ms']:.2f} ms",
            )
        )
        warm = h.run_worker(
            {
                "task": "disk_warm",
                "tiered_dir": tiered_dir,
                "raw_dir": raw_dir,
                "rounds": cfg["rounds"],
                "calls": max(1000, cfg["calls"] // 10),
            }
        )
        raw["disk_warm"] = warm
        wp = warm.get("paths", {})
        if wp:
            tw = wp["TieredCache.get, disk hit (memory_items=1, alternating keys)"]["median_ns"]
            rw = wp["diskcache.Cache.get (alternating keys)"]["median_ns"]
            targets.append(
                _target(
                    "disk hit per call, memory tier bypassed, vs raw diskcache.Cache.get",
                    tw / rw,
                    1.5,
                    "x",
                    f"{h.fmt_ns(tw)} vs {h.fmt_ns(rw)}",
                )
            )

        targets += _write_targets(cfg, tmp, raw, progress)

        imports = _import_times(cfg["imports"], progress)
        raw["import"] = imports
        pass_ms = imports["median_ms"]["python -c pass"]
        tc_ms = imports["median_ms"]["python -c 'import tiered_cache'"]
        targets.append(
            _target(
                "import tiered_cache in a fresh interpreter, above python -c pass",
                imports["above_pass_ms"],
                30.0,
                "ms",
                f"{tc_ms:.1f} ms vs {pass_ms:.1f} ms (median of {imports['n']})",
            )
        )

        missing = h.tiered_aws_status()
        hits = dict(hits or {})
        for lib in ("tiered-aws", "lambda-cache"):
            if lib not in hits and not (lib == "tiered-aws" and missing):
                progress(f"speed: warm hits of {lib}")
                hits[lib] = _hits(lib, cfg, tmp)
        raw["hits"] = {k: v for k, v in hits.items() if k in ("tiered-aws", "lambda-cache")}
        ta = hits.get("tiered-aws", {}).get("paths", {})
        lc = hits.get("lambda-cache", {}).get("paths", {})
        if missing or not ta:
            reason = missing or hits.get("tiered-aws", {}).get("error", "no result")
            for name, goal, unit in (
                ("ssm.get_entry warm hit vs floor", 3.0, "x"),
                ("@ssm.cache handler overhead vs lambda-cache's", 0.4, "%"),
            ):
                targets.append(_target(name, None, goal, unit, reason))
        else:
            ratio = ta["ssm.get_entry"]["median_ns"] / ta["floor"]["median_ns"]
            targets.append(
                _target(
                    "ssm.get_entry warm hit vs floor",
                    ratio,
                    3.0,
                    "x",
                    f"{h.fmt_ns(ta['ssm.get_entry']['median_ns'])} vs "
                    f"{h.fmt_ns(ta['floor']['median_ns'])}",
                )
            )

            # in units of each process's own floor: processes differ in speed by up to 50 %
            # here, so nanoseconds from two processes must not be subtracted or divided
            def over(p: dict[str, Any]) -> float:
                f = p["floor"]["median_ns"]
                return (
                    p["@ssm.cache handler"]["median_ns"]
                    - p["bare handler (no decorator)"]["median_ns"]
                ) / f

            t_over, l_over = over(ta), over(lc)
            targets.append(
                _target(
                    "@ssm.cache handler overhead vs lambda-cache's",
                    t_over / l_over if l_over > 0 else None,
                    0.4,
                    "%",
                    f"{t_over:.2f} vs {l_over:.2f} floors above a bare handler "
                    f"({h.fmt_ns(t_over * ta['floor']['median_ns'])} vs "
                    f"{h.fmt_ns(l_over * lc['floor']['median_ns'])})",
                )
            )

        name = f"s3.get_entry warm hit, {cfg['s3_size'] // h.MB} MB object vs 1 KiB"
        if missing:
            targets.append(_target(name, None, 0.2, "x", missing, "within"))
        else:
            progress(f"speed: s3.get_entry warm hits, 1 KiB and {cfg['s3_size'] // h.MB} MB")
            s3 = h.run_worker(
                {
                    "task": "s3_sizes",
                    "lib": "tiered-aws",
                    "names": h.names_for("tiered-aws", "speed"),
                    "ttl": 3600,
                    "dir": os.path.join(tmp, "s3"),
                    "size": cfg["s3_size"],
                    "rounds": cfg["rounds"],
                    "calls": max(1000, cfg["calls"] // 10),
                }
            )
            raw["s3_sizes"] = s3
            sp = s3.get("paths", {})
            if sp:
                big, small = (
                    sp["s3.get_entry large"]["median_ns"],
                    sp["s3.get_entry 1 KiB"]["median_ns"],
                )
                targets.append(
                    _target(
                        name,
                        big / small,
                        0.2,
                        "x",
                        f"{h.fmt_ns(big)} vs {h.fmt_ns(small)}",
                        "within",
                    )
                )
            else:
                targets.append(_target(name, None, 0.2, "x", s3.get("error", "?"), "within"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"targets": targets, "raw": raw}


def report(result: dict[str, Any], terminal: bool = False) -> str:
    """The targets as a table: Markdown with every column (``terminal=False``), or a short
    plain table that fits in 100 columns, without the medians behind each ratio."""
    targets = result["targets"]
    passed = sum(t["verdict"] == "PASS" for t in targets)
    short = sum(t["verdict"] == "SHORT" for t in targets)
    tally = f"{passed} of {len(targets)} targets met, {short} short"
    if len(targets) - passed - short:
        tally += f", {len(targets) - passed - short} not measured"
    title = "Speed targets: medians, each a ratio to a baseline measured in the same run"
    if terminal:
        better = "lower is better"
        if any(str(t["goal"]).startswith("within") for t in targets):
            better += " (for a 'within' goal: closer to 1.00x)"
        return h.text_table(
            f"{title}; {better}",
            ["target", "goal", "measured", "verdict"],
            [[t["target"], t["goal"], t["shown"], t["verdict"]] for t in targets],
            notes=f"{tally}. The medians behind each ratio are in the report file (.md).",
        )
    return h.table(
        title,
        ["target", "goal", "measured", "verdict", "median vs baseline"],
        [[t["target"], t["goal"], t["shown"], t["verdict"], t["detail"]] for t in targets],
        notes=f"{tally}.",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    h.precompile()  # fresh interpreters import compiled code, as after a pip install
    start = time.perf_counter()
    result = run(args.quick, progress=lambda m: print(f"[speed] {m}", flush=True))
    print(report(result, terminal=True))
    result["meta"] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": h.machine(),
        "versions": h.versions(),
        "mode": "quick" if args.quick else "full",
        "seconds": time.perf_counter() - start,
    }
    out = args.json or os.path.join(h.RESULTS, f"speed{'-quick' if args.quick else ''}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(result, fh, indent=2, default=str)
    md = os.path.splitext(out)[0] + ".md"
    with open(md, "w") as fh:
        fh.write(f"# tiered-cache speed targets ({result['meta']['mode']}, ")
        fh.write(f"{result['meta']['date']})\n{report(result)}\n")
    print(f"\nspeed: {time.perf_counter() - start:.0f} s; results in {out} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
