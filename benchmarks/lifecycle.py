"""The Lambda lifecycle: what ``tiered.prefetch()`` at INIT saves the first invocation.

    python3 benchmarks/lifecycle.py --quick    # about 10 s
    python3 benchmarks/lifecycle.py            # more repetitions

Scenario (issue 12): a handler declares 5 SSM parameters and 2 Secrets Manager secrets. The
origin is moto (in process) with an injected latency of ``--latency-ms`` (20 ms) per request,
slept in botocore's ``before-call`` event by the thread making the request, so concurrent
requests overlap as they would against AWS. Each repetition starts cold: a new cache in a new
directory; the boto3 clients are made before timing in both modes (a cold start pays ~100 ms
per client either way: not what is compared).

- without prefetch: the first invocation loads each value in turn: it pays about the sum;
- with prefetch: ``tiered.prefetch()`` at module level (INIT) loads them concurrently (the 5
  names in one GetParameters call, the 2 secrets in parallel): INIT pays about the largest one
  call, and the first invocation makes no origin call.

A third baseline makes INIT's three requests (the batch and each secret) on three threads by
hand, with no cache: moto answers in process, so part of each request is CPU that the threads
share under the GIL, and this is the floor any concurrent loader meets here (against AWS that
CPU is mostly the service's). Medians of each mode, measured in the same run, and their ratio.
The script reports; it never asserts on a timing.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import gc
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import types
from typing import Any

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

PARAMS = [f"/bench/app/p{i}" for i in range(5)]
SECRETS = ["bench/db", "bench/api"]


def _progress(message: str) -> None:
    print(f"  .. {message}", flush=True)


_BARE = "bare handler (no decorator)"
_PLAIN = "@secrets_manager.cache handler"
_RETRYING = "@secrets_manager.cache(refresh_on=...) handler"


def _hit_paths(tiered: Any, secrets_manager: Any, rounds: int) -> dict[str, Any]:
    """Warm hits of one handler decorator without and with ``refresh_on``, interleaved."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _harness as h

    _progress("warm hits: a handler with and without refresh_on")
    tiered.set_default_cache(tiered.TieredCache(disk=False, ttl=3600))

    def bare(event: Any, context: Any) -> Any:
        return context

    class AuthError(Exception):
        pass

    plain = secrets_manager.cache(name=SECRETS[0], entry_name="db")(bare)
    retrying = secrets_manager.cache(name=SECRETS[0], entry_name="db", refresh_on=AuthError)(bare)
    context = types.SimpleNamespace()
    ns = {"bare": bare, "plain": plain, "retrying": retrying, "E": {}, "C": context}
    for function in (plain, retrying):
        function({}, context)  # bind the hit paths (the first call loads)
    stmts = {_BARE: "bare(E, C)", _PLAIN: "plain(E, C)", _RETRYING: "retrying(E, C)"}
    return h.time_paths(ns, stmts, rounds, calls=5000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 10 s)")
    parser.add_argument("--reps", type=int, help="repetitions per mode (default 7, quick 5)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="per request (20)")
    args = parser.parse_args(argv)
    reps = args.reps or (5 if args.quick else 7)
    latency = args.latency_ms / 1000.0

    started = time.perf_counter()
    _progress("importing boto3 and moto")
    import boto3
    from moto import mock_aws

    with mock_aws():
        import tiered_cache as tiered
        from tiered_cache import _aws, secrets_manager, ssm

        ssm_client = boto3.client("ssm", region_name="us-east-1")
        for i, name in enumerate(PARAMS):
            ssm_client.put_parameter(Name=name, Value=f"value-{i}", Type="String")
        secrets_client = boto3.client("secretsmanager", region_name="us-east-1")
        for name in SECRETS:
            secrets_client.create_secret(Name=name, SecretString=f"{name}-password")

        requests: list[str] = []

        def slow(model: Any, **_: Any) -> None:  # the injected origin latency
            requests.append(model.name)
            time.sleep(latency)

        # The library's clients, made now (not timed), carry the latency.
        for service in ("ssm", "secretsmanager"):
            _aws.get_client(service).meta.events.register("before-call", slow)

        def handler(event: Any, context: Any) -> int:
            return len(vars(context))

        for name in PARAMS:
            handler = ssm.cache(parameter=name, max_age_in_seconds=300)(handler)
        for name in SECRETS:
            handler = secrets_manager.cache(name=name, max_age_in_seconds=300)(handler)

        root = tempfile.mkdtemp(prefix="tc-lifecycle-")
        atexit.register(shutil.rmtree, root, True)  # nothing left behind, whatever happens
        modes = ("first", "init", "after", "one", "together")
        results: dict[str, list[float]] = {mode: [] for mode in modes}
        calls: dict[str, list[int]] = {mode: [] for mode in modes}
        ssm_raw, secrets_raw = _aws.get_client("ssm"), _aws.get_client("secretsmanager")
        singles = [
            lambda: ssm_raw.get_parameters(Names=PARAMS, WithDecryption=True),
            lambda: secrets_raw.get_secret_value(SecretId=SECRETS[0]),
        ]
        concurrent = [  # what prefetch sends: the batch and each secret, on threads of its own
            singles[0],
            *(functools.partial(secrets_raw.get_secret_value, SecretId=name) for name in SECRETS),
        ]
        for rep in range(reps):
            _progress(f"repetition {rep + 1}/{reps}: the largest one call alone (baseline)")
            one_call = 0.0
            for single in singles:  # the batch and a secret: INIT's floor is the larger
                t = time.perf_counter()
                single()
                one_call = max(one_call, time.perf_counter() - t)
            results["one"].append(one_call)
            calls["one"].append(1)
            _progress(f"repetition {rep + 1}/{reps}: INIT's three calls at once, by hand")
            del requests[:]
            t = time.perf_counter()
            pool = [threading.Thread(target=call) for call in concurrent]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            results["together"].append(time.perf_counter() - t)
            calls["together"].append(len(requests))
            for mode in ("without", "with"):  # interleaved: drift hits both modes alike
                _progress(f"repetition {rep + 1}/{reps}: {mode} prefetch")
                directory = os.path.join(root, f"{mode}-{rep}")
                tiered.set_default_cache(tiered.TieredCache(directory=directory))
                gc.collect()  # the last repetition's cache closes its database now, not timed
                if mode == "with":
                    del requests[:]
                    t = time.perf_counter()
                    done = tiered.prefetch()
                    results["init"].append(time.perf_counter() - t)
                    calls["init"].append(len(requests))
                    if done.failed:
                        print(f"prefetch failed: {done!r}", file=sys.stderr)
                        return 1
                del requests[:]
                t = time.perf_counter()
                got = handler({}, types.SimpleNamespace())
                elapsed = time.perf_counter() - t
                if got != 7:
                    print(f"the handler saw {got} values, not 7", file=sys.stderr)
                    return 1
                results["first" if mode == "without" else "after"].append(elapsed)
                calls["first" if mode == "without" else "after"].append(len(requests))

        hit = _hit_paths(tiered, secrets_manager, 15 if args.quick else 40)

    first = statistics.median(results["first"])
    init = statistics.median(results["init"])
    after = statistics.median(results["after"])
    one = statistics.median(results["one"])
    print()
    print(f"Model: 5 SSM parameters + 2 secrets; moto in process, {args.latency_ms:g} ms injected")
    print(f"per request; {reps} cold repetitions per mode, interleaved; medians.")
    print()
    rows = [
        ("one", "the largest one call, alone"),
        ("together", "INIT's 3 calls on 3 threads, by hand"),
        ("first", "first invocation, no prefetch"),
        ("init", "INIT: tiered.prefetch()"),
        ("after", "first invocation after prefetch"),
    ]
    print(f"{'path':<34}{'median':>10}{'min':>10}{'max':>10}  requests")
    print("-" * 74)
    for key, label in rows:
        values = results[key]
        print(
            f"{label:<34}{statistics.median(values) * 1e3:>8.1f}ms"
            f"{min(values) * 1e3:>8.1f}ms{max(values) * 1e3:>8.1f}ms"
            f"  {statistics.median(calls[key]):g}"
        )
    print()
    print(f"first invocation without prefetch / INIT with prefetch: {first / init:.1f}x")
    together = statistics.median(results["together"])
    print(f"INIT with prefetch / the largest one call alone:        {init / one:.2f}x")
    print(f"INIT with prefetch / its 3 calls on 3 threads by hand:  {init / together:.2f}x")
    print(f"first invocation without prefetch / the largest call:   {first / one:.1f}x")
    print(f"first invocation after prefetch: {after * 1e3:.2f} ms, no origin request")
    print()
    print("Warm hit of a handler decorator, with and without refresh_on (medians of interleaved")
    print("rounds, in the same process; a bare handler is the floor):")
    print()
    print(f"{'path':<44}{'median':>10}{'p99':>10}")
    print("-" * 64)
    for label, path in hit.items():
        print(f"{label:<44}{path['median_ns']:>8.0f}ns{path['p99_ns']:>8.0f}ns")
    plain, retrying = hit[_PLAIN]["median_ns"], hit[_RETRYING]["median_ns"]
    bare = hit[_BARE]["median_ns"]
    print()
    print(f"with refresh_on / without: {retrying / plain:.2f}x")
    print(
        f"overhead above the bare handler: {(retrying - bare) / 1e3:.3f} us with, "
        f"{(plain - bare) / 1e3:.3f} us without"
    )
    print(f"total time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
