"""The safe codec on a DynamoDB-like item: this tree's codec against a baseline, in one run.

    python3 benchmarks/serial.py [--quick] [--baseline REV]

The baseline is ``tiered_cache/_serial.py`` as of git revision REV (default 115db4b, the codec
before tuple/set/datetime/Decimal/UUID were added), loaded from ``git show`` into this same
process, so both run on the same interpreter, machine and moment. Old and new are timed in
alternation, ``--repeat`` times each; the table gives medians (ns per call) and new/old ratios.
Reports only: it never asserts on a timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import pickle
import statistics
import subprocess
import sys
import timeit
import types
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tiered_cache import _serial  # noqa: E402


def baseline(rev: str) -> types.ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:tiered_cache/_serial.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spec = importlib.util.spec_from_loader("baseline_serial", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{rev}:_serial.py", "exec"), module.__dict__)  # noqa: S102 (our repo)
    return module


#: An item as boto3's plain JSON-ish layer or a config service gives it: old types only.
OLD_ITEM: dict[str, Any] = {
    "pk": "tenant#42",
    "sk": "config#v7",
    "name": "checkout-service",
    "enabled": True,
    "retries": 3,
    "timeout": 2.5,
    "owner": None,
    "regions": ["us-east-1", "eu-west-1", "ap-south-1"],
    "limits": {"rps": 1200, "burst": 2400, "ratio": 0.75},
    "flags": {f"flag_{i}": i % 2 == 0 for i in range(12)},
    "blob": b"\x00" * 64,
    "history": [{"at": 1_700_000_000 + i, "by": f"user{i}", "ok": True} for i in range(5)],
}

#: The same item as boto3's DynamoDB resource layer gives it: numbers are Decimal, string and
#: number sets are sets; plus a timestamp and an id, as users add.
DYNAMO_ITEM: dict[str, Any] = {
    **OLD_ITEM,
    "retries": Decimal("3"),
    "timeout": Decimal("2.5"),
    "regions": {"us-east-1", "eu-west-1", "ap-south-1"},
    "limits": {"rps": Decimal("1200"), "burst": Decimal("2400"), "ratio": Decimal("0.75")},
    "scores": {Decimal("1.5"), Decimal("2"), Decimal("12.3400")},
    "history": [{"at": Decimal(1_700_000_000 + i), "by": f"user{i}", "ok": True} for i in range(5)],
    "updated": dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc),
    "id": uuid.UUID(int=0x1234),
}


def timed(call: Any, number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=1)) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI smoke run)")
    parser.add_argument("--baseline", default="115db4b", help="git revision of the old codec")
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    repeat = args.repeat or (5 if args.quick else 15)
    number = 2_000 if args.quick else 10_000
    old = baseline(args.baseline)

    old_bytes = old.dumps(OLD_ITEM, "safe")
    assert _serial.dumps(OLD_ITEM, "safe") == old_bytes  # the same wire format for old types
    dynamo_bytes = _serial.dumps(DYNAMO_ITEM, "safe")
    dynamo_pickle = pickle.dumps(DYNAMO_ITEM, protocol=pickle.HIGHEST_PROTOCOL)

    cases: dict[str, tuple[Any, Any]] = {
        # name: (baseline call, new call)
        "old-types item: encode": (
            lambda: old.dumps(OLD_ITEM, "safe"),
            lambda: _serial.dumps(OLD_ITEM, "safe"),
        ),
        "old-types item: decode": (
            lambda: old.loads(old_bytes, "safe"),
            lambda: _serial.loads(old_bytes, "safe"),
        ),
        "Decimal/set item, new codec vs pickle: encode": (
            lambda: pickle.dumps(DYNAMO_ITEM, protocol=pickle.HIGHEST_PROTOCOL),
            lambda: _serial.dumps(DYNAMO_ITEM, "safe"),
        ),
        "Decimal/set item, new codec vs pickle: decode": (
            lambda: pickle.loads(dynamo_pickle),
            lambda: _serial.loads(dynamo_bytes, "safe"),
        ),
    }
    print(
        f"Python {sys.version.split()[0]}; baseline {args.baseline}; {repeat} rounds of "
        f"{number} calls each; item sizes: old types {len(old_bytes)} B, Decimal/set "
        f"{len(dynamo_bytes)} B (pickle {len(dynamo_pickle)} B)"
    )
    print(f"{'case':<48} {'baseline ns':>12} {'new ns':>10} {'new/base':>9}")
    for name, (base_call, new_call) in cases.items():
        base_times, new_times = [], []
        for _ in range(repeat):  # alternate, so drift hits both alike
            base_times.append(timed(base_call, number))
            new_times.append(timed(new_call, number))
        base, new = statistics.median(base_times), statistics.median(new_times)
        print(f"{name:<48} {base:>12.0f} {new:>10.0f} {new / base:>8.2f}x")
    print("(baseline of the last two rows: pickle, which the safe codec replaces on disk)")


if __name__ == "__main__":
    main()
