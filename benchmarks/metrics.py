"""What ``_metrics.after_invocation()`` costs a handler invocation (CloudWatch metrics, EMF).

    python3 benchmarks/metrics.py --quick    # about 2 s
    python3 benchmarks/metrics.py            # more repetitions

Every figure is a median of repeated timeit runs, measured in this run beside its baseline:

- the call when metrics are off (no ``TIERED_CACHE_METRICS``, no Powertools object), against a
  plain Python call of a function that does nothing (the floor of any call);
- the call when metrics are on but nothing moved since the previous line (the outer decorator
  of a stack, or an idle function), with 10, 100 and 1024 entries in memory: memory hits are
  counted on the entries themselves (the hit path stays one dict read), so this sums them;
- the call that writes a line (one memory hit since the previous one; stdout to /dev/null);
- the import of ``tiered_cache._metrics`` after ``tiered_cache._core`` (which every handler
  decorator loads anyway), beside the import of ``tiered_cache`` and of ``_core``, in fresh
  interpreters (``python -X importtime``, each module's own cumulative figure).

The script reports; it never asserts on a timing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tiered_cache as tiered  # noqa: E402
from tiered_cache import _metrics  # noqa: E402


def median_ns(call: Callable[[], Any], number: int, repeat: int) -> float:
    return statistics.median(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e9


def noop(metrics: object | None = None) -> None:
    return None


def import_us(code: str, runs: int) -> float:
    """Median cumulative import time (µs) of the last module ``code`` imports, fresh processes."""
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled once, as a deployed package would be
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stderr
        last = out.strip().splitlines()[-1]
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|", last)
        assert match, last
        times.append(int(match.group(1)))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 2 s)")
    args = parser.parse_args()
    number, repeat, runs = (500, 7, 5) if args.quick else (2000, 15, 11)

    rows: list[tuple[str, float, float]] = []  # (case, median ns, baseline ns)

    os.environ.pop("TIERED_CACHE_METRICS", None)
    _metrics._reset()
    cache = tiered.TieredCache(disk=False, memory_items=2048)
    floor = median_ns(noop, number, repeat)
    off = median_ns(_metrics.after_invocation, number, repeat)
    rows.append(("off (no variable, no Powertools object)", off, floor))

    os.environ["TIERED_CACHE_METRICS"] = "emf"
    _metrics._reset()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - kept open for the whole run
    real_stdout, sys.stdout = sys.stdout, devnull
    try:
        for entries in (10, 100, 1024):
            cache.clear()
            for i in range(entries):
                cache.set(f"k{i}", i, persist=False)
            _metrics.after_invocation()
            floor = median_ns(noop, number, repeat)
            idle = median_ns(_metrics.after_invocation, number, repeat)
            rows.append((f"on, nothing moved, {entries} entries in memory", idle, floor))
        cache.clear()
        for i in range(10):
            cache.set(f"k{i}", i, persist=False)
        get = cache.get

        def hit() -> None:
            get("k1")

        def hit_and_line() -> None:
            get("k1")
            _metrics.after_invocation()

        floor = median_ns(hit, number, repeat)
        line = median_ns(hit_and_line, number, repeat)
        rows.append(("on, a hit then a line written, 10 entries (vs the hit)", line, floor))
    finally:
        sys.stdout = real_stdout
        devnull.close()

    base_import = import_us("import tiered_cache", runs)
    core_import = import_us("import tiered_cache; import tiered_cache._core", runs)
    metrics_import = import_us(
        "import tiered_cache, tiered_cache._core; import tiered_cache._metrics", runs
    )

    print("after_invocation() per call: medians, each beside its baseline from this run")
    print(f"{'case':58} {'median':>10} {'baseline':>10} {'ratio':>7}")
    for case, value, base in rows:
        print(f"{case:58} {value:8.0f}ns {base:8.0f}ns {value / base:6.2f}x")
    print()
    print(f"imports (cumulative -X importtime, compiled, medians of {runs} fresh interpreters):")
    print(f"  {'import tiered_cache':48} {base_import:8.0f} µs")
    print(f"  {'tiered_cache._core, after it (what a miss loads)':48} {core_import:8.0f} µs")
    print(f"  {'tiered_cache._metrics, after those':48} {metrics_import:8.0f} µs")


if __name__ == "__main__":
    main()
