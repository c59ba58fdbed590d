"""Cold start: where the first value's cost goes, against a bare boto3 call in a fresh process.

    python3 benchmarks/coldstart.py --quick    # about 20 s
    python3 benchmarks/coldstart.py            # more repetitions

AWS is a moto server over HTTP (``AWS_ENDPOINT_URL``; started here in a child process, on
loopback). Each repetition starts three fresh interpreters, in turn, with a new (absent) cache
directory each time, as a new Lambda execution environment has:

- ``bare``: ``import boto3``, then ``boto3.client("ssm").get_parameter(...)``: the baseline;
- ``tiered``: ``import boto3``, then ``from tiered_cache import ssm`` and
  ``ssm.get_entry(...)``: what a user of the helpers pays (boto3 is imported first in both, as
  a Lambda handler module does, and as scenario 6b of ``run.py`` measures);
- ``tiered, probed``: the same, with timers around the steps of the first value (the
  engine's import, making the default cache, the client, the origin call, the imports of
  ``diskcache``/``sqlite3``/``filelock``, opening the store, the file lock, the disk reads, the
  first write). Each step's time is its own: a step inside another is not counted twice.

The headline is the first value's cost (everything after ``import boto3``), median of each
variant, and the tiered minus bare difference, both measured in this run. The script
reports; it never asserts on a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

REGION = "us-east-1"
PARAMETER = "/coldstart/app/var"

_MOTO = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the parent closes our stdin
server.stop()
"""

# The child processes: each prints one JSON line. perf_counter marks are in milliseconds.
_BARE = """
import json, time
_t0 = time.perf_counter()
import boto3
_t1 = time.perf_counter()
client = boto3.client("ssm")
_t2 = time.perf_counter()
value = client.get_parameter(Name=NAME)["Parameter"]["Value"]
_t3 = time.perf_counter()
assert value == EXPECTED, value
print(json.dumps({"boto3": (_t1 - _t0) * 1e3, "first": (_t3 - _t1) * 1e3,
                  "steps": {"client made": (_t2 - _t1) * 1e3, "origin call": (_t3 - _t2) * 1e3}}))
"""

_TIERED = """
import json, time
_t0 = time.perf_counter()
import boto3
_t1 = time.perf_counter()
from tiered_cache import ssm
value = ssm.get_entry(parameter=NAME)
_t3 = time.perf_counter()
assert value == EXPECTED, value
import sys
print(json.dumps({"boto3": (_t1 - _t0) * 1e3, "first": (_t3 - _t1) * 1e3, "steps": {},
                  "file": sys.modules["tiered_cache"].__file__}))
"""

# Exclusive-time probes: each probe's own time, minus the probes that ran inside it.
_PROBED = """
import builtins, contextlib, functools, json, sys, time
_t0 = time.perf_counter()
import boto3
_t1 = time.perf_counter()
_now = time.perf_counter
_spent = {}
_stack = []  # [label, start, time of probes inside]

def _begin(label):
    _stack.append([label, _now(), 0.0])

def _end():
    label, start, inner = _stack.pop()
    took = _now() - start
    _spent[label] = _spent.get(label, 0.0) + took - inner
    if _stack:
        _stack[-1][2] += took

def _wrap(owner, name, label):
    original = getattr(owner, name)
    @functools.wraps(original)
    def probe(*args, **kwargs):
        _begin(label)
        try:
            return original(*args, **kwargs)
        finally:
            _end()
    setattr(owner, name, probe)

def _wrap_cm(owner, name, label):  # a context manager: its enter and its exit, not the body
    original = getattr(owner, name)
    @functools.wraps(original)
    @contextlib.contextmanager
    def probe(*args, **kwargs):
        _begin(label)
        manager = original(*args, **kwargs)
        try:
            value = manager.__enter__()
        finally:
            _end()
        try:
            yield value
        except BaseException:
            _begin(label)
            try:
                if not manager.__exit__(*sys.exc_info()):
                    raise
            finally:
                _end()
        else:
            _begin(label)
            try:
                manager.__exit__(None, None, None)
            finally:
                _end()
    setattr(owner, name, probe)

_IMPORTS = {"diskcache": "import diskcache + sqlite3", "sqlite3": "import diskcache + sqlite3",
            "filelock": "import filelock"}
_import = builtins.__import__

def _probed_import(name, *args, **kwargs):
    label = _IMPORTS.get(name.partition(".")[0])
    if label is None or name in sys.modules:
        return _import(name, *args, **kwargs)
    _begin(label)
    try:
        return _import(name, *args, **kwargs)
    finally:
        _end()

builtins.__import__ = _probed_import
import botocore.client
_wrap(botocore.client.BaseClient, "_make_api_call", "origin call")
_begin("import tiered_cache + ssm")
from tiered_cache import ssm
_end()
_begin("import the engine (_core, _disk, ...)")  # imported by the first get anyway
import tiered_cache._core
import tiered_cache._disk
_end()
_t2 = _now()
import tiered_cache._config as _config
_wrap(_config, "_make", "default cache made (settings, directory checks)")
try:
    import tiered_cache._aws._clients as _clients
    _wrap(_clients, "get_client", "client made")
except ImportError:
    pass
import tiered_cache._disk as _disk
_wrap(_disk.DiskTier, "_open", "opening the store (SQLite, subdirectories, sweep)")
_wrap(_disk.DiskTier, "get", "disk reads")
_wrap(_disk.DiskTier, "_write", "disk write (transaction, budget)")
_wrap_cm(_disk.DiskTier, "lock", "file lock (take, release)")
_t2b = _now()
_begin("other engine work")
value = ssm.get_entry(parameter=NAME)
_end()
_t3 = _now()
assert value == EXPECTED, value
builtins.__import__ = _import
first = (_t2 - _t1) + (_t3 - _t2b)  # the probes' installation is not counted
print(json.dumps({"boto3": (_t1 - _t0) * 1e3, "first": first * 1e3,
                  "steps": {k: v * 1e3 for k, v in _spent.items()},
                  "file": sys.modules["tiered_cache"].__file__}))
"""

VARIANTS = {"bare": _BARE, "tiered": _TIERED, "tiered, probed": _PROBED}
STEP_ORDER = [
    "import tiered_cache + ssm",
    "import the engine (_core, _disk, ...)",
    "default cache made (settings, directory checks)",
    "client made",
    "origin call",
    "import diskcache + sqlite3",
    "import filelock",
    "opening the store (SQLite, subdirectories, sweep)",
    "file lock (take, release)",
    "disk reads",
    "disk write (transaction, budget)",
    "other engine work",
]


class Moto:
    """moto's ThreadedMotoServer in a child process; ``url`` is its endpoint."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _MOTO],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            self.close()
            raise RuntimeError(f"moto server did not start (printed {line!r})")
        self.url = f"http://127.0.0.1:{line}"

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)


def _env(endpoint: str, directory: str) -> dict[str, str]:
    drop = ("AWS_", "TIERED_CACHE_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        TIERED_CACHE_DIR=directory,
    )
    return env


def _run(code: str, env: dict[str, str], value: str, tree: str | None) -> dict[str, Any]:
    src = f"NAME = {PARAMETER!r}\nEXPECTED = {value!r}\n{code}"
    if tree is not None:  # that checkout's tiered_cache, ahead of the installed one
        env = {**env, "PYTHONPATH": os.pathsep.join([tree, env.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", src],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child failed ({out.returncode}):\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _precompile(tree: str | None) -> None:
    """Bytecode for the measured checkout (an editable install is not compiled by pip)."""
    import compileall
    import importlib.util

    if tree is not None:
        compileall.compile_dir(os.path.join(tree, "tiered_cache"), quiet=1)
        return
    spec = importlib.util.find_spec("tiered_cache")
    for location in (spec.submodule_search_locations or []) if spec else []:
        compileall.compile_dir(location, quiet=1)


def measure(reps: int, progress: Any = print, tree: str | None = None) -> dict[str, Any]:
    """``reps`` rounds of the three variants, each in a fresh process and directory;
    ``tree``: a checkout whose ``tiered_cache`` the children import (A/B runs)."""
    _precompile(tree)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    progress("starting a moto server (HTTP on loopback)")
    moto = Moto()
    root = tempfile.mkdtemp(prefix="tiered-coldstart-")
    try:
        import boto3

        value = "v" * 30
        boto3.client(
            "ssm",
            region_name=REGION,
            endpoint_url=moto.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).put_parameter(Name=PARAMETER, Value=value, Type="String", Overwrite=True)
        names = list(VARIANTS)
        for rep in range(reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]  # rotate who goes first
            for name in order:
                directory = os.path.join(root, f"{rep}-{name.replace(', ', '-')}", "tiered-cache")
                env = _env(moto.url, directory)
                results[name].append(_run(VARIANTS[name], env, value, tree))
            for name in names:
                seen = results[name][-1].get("file")
                if tree is not None and seen is not None and not seen.startswith(tree):
                    raise RuntimeError(f"{name} imported {seen}, not the tree {tree}")
            firsts = ", ".join(f"{n} {results[n][-1]['first']:.1f}" for n in names)
            progress(f"rep {rep + 1}/{reps}: first value ms: {firsts}")
    finally:
        moto.close()
        shutil.rmtree(root, ignore_errors=True)
    return summarize(results)


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"reps": len(results["bare"])}
    for name, runs in results.items():
        steps = {s for r in runs for s in r["steps"]}
        summary[name] = {
            "first_ms": _median([r["first"] for r in runs]),
            "first_ms_each": [r["first"] for r in runs],
            "boto3_import_ms": _median([r["boto3"] for r in runs]),
            "steps_ms": {s: _median([r["steps"].get(s, 0.0) for r in runs]) for s in steps},
        }
    bare = [r["first"] for r in results["bare"]]
    tiered = [r["first"] for r in results["tiered"]]
    summary["extra_ms"] = summary["tiered"]["first_ms"] - summary["bare"]["first_ms"]
    summary["paired_extra_ms"] = _median([t - b for t, b in zip(tiered, bare, strict=True)])
    summary["ratio"] = summary["tiered"]["first_ms"] / summary["bare"]["first_ms"]
    return summary


def report(summary: dict[str, Any]) -> str:
    bare, tiered, probed = summary["bare"], summary["tiered"], summary["tiered, probed"]
    lines = [
        f"Cold start, medians of {summary['reps']} fresh processes per variant "
        "(moto over HTTP; lower is better)",
        "",
        f"  {'first value after import boto3':<52} {'ms':>8}",
        f"  {'bare boto3.client(ssm).get_parameter':<52} {bare['first_ms']:8.1f}",
        f"  {'tiered_cache: import + ssm.get_entry':<52} {tiered['first_ms']:8.1f}",
        f"  {'difference (tiered - bare)':<52} {summary['extra_ms']:+8.1f}",
        f"  {'median of paired differences':<52} {summary['paired_extra_ms']:+8.1f}",
        f"  {'ratio (tiered / bare)':<52} {summary['ratio']:8.2f}x",
        f"  {'(import boto3, for scale: bare / tiered)':<52} "
        f"{bare['boto3_import_ms']:5.0f} / {tiered['boto3_import_ms']:.0f}",
        "",
        f"  Breakdown (probed tiered process, each step's own time; "
        f"its first value: {probed['first_ms']:.1f} ms)",
        f"  {'step':<52} {'tiered':>8} {'bare':>8} {'extra':>8}",
    ]
    steps = probed["steps_ms"]
    order = STEP_ORDER + sorted(set(steps) - set(STEP_ORDER))
    for step in order:
        if step not in steps:
            continue
        base = bare["steps_ms"].get(step, 0.0)
        lines.append(f"  {step:<52} {steps[step]:8.1f} {base:8.1f} {steps[step] - base:+8.1f}")
    total = sum(steps.values())
    base_total = sum(bare["steps_ms"].values())
    lines.append(f"  {'sum':<52} {total:8.1f} {base_total:8.1f} {total - base_total:+8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 20 s)")
    parser.add_argument("--reps", type=int, help="fresh processes per variant (default 21)")
    parser.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    parser.add_argument(
        "--tree",
        metavar="DIR",
        help="measure the tiered_cache of this checkout (e.g. a `git archive` of another "
        "commit) instead of the installed one",
    )
    args = parser.parse_args(argv)
    reps = args.reps or (9 if args.quick else 21)
    started = time.perf_counter()
    tree = os.path.abspath(args.tree) if args.tree else None
    summary = measure(reps, progress=lambda m: print(f"  .. {m}", flush=True), tree=tree)
    if tree is not None:
        print(f"\n(tiered_cache from {tree})")
    print(f"\n{report(summary)}\n\n({time.perf_counter() - started:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
