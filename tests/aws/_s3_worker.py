"""A child process for tests/aws/test_s3_large.py: ``python _s3_worker.py hang|fetch DIR``.

Each runs moto in process with the same 40-part object at s3://bucket/big.bin (the part size
comes from ``TIERED_CACHE_S3_PART_BYTES``) and a default cache on DIR, then prints one JSON
line. ``hang``: a ranged download whose later parts never answer; the line is printed once
earlier parts are in the temp file, and the process waits to be killed. ``fetch``: asks for
the object and reports what it got and what the cache directory holds.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from typing import Any


def _setup(directory: str) -> tuple[Any, bytes, int]:
    import boto3
    from moto import mock_aws

    import tiered_cache as tiered

    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="x"
    )
    mock_aws().start()
    boto3.setup_default_session()
    part = int(os.environ["TIERED_CACHE_S3_PART_BYTES"])
    body = random.Random(11).randbytes(40 * part)
    client = boto3.client("s3")
    client.create_bucket(Bucket="bucket")
    client.put_object(Bucket="bucket", Key="big.bin", Body=body)
    tiered.set_default_cache(tiered.TieredCache(directory=directory, ttl=600))
    return boto3, body, part


def _say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def hang(directory: str) -> None:
    from tiered_cache import s3

    boto3, _body, part = _setup(directory)
    tmp = os.path.join(directory, "tmp")
    reported = threading.Event()

    def report() -> None:
        for _ in range(1000):
            names = os.listdir(tmp)
            if len(names) == 1:
                info = os.stat(os.path.join(tmp, names[0]))
                written = info.st_blocks * 512
                if written >= 4 * part:
                    _say(parts_done=written // part, tmp=names, tmp_bytes=written)
                    return
            time.sleep(0.01)
        _say(parts_done=0, tmp=os.listdir(tmp), tmp_bytes=0)

    def stall_later_parts(params: dict[str, Any], **_: Any) -> None:
        start = params["headers"].get("Range", "bytes=0-").split("=")[1].split("-")[0]
        if int(start) >= 4 * part:
            if not reported.is_set():
                reported.set()
                threading.Thread(target=report).start()
            time.sleep(3600)  # this part never answers: the process is killed meanwhile

    boto3._get_default_session().events.register("before-call.s3.GetObject", stall_later_parts)
    s3.get_entry(s3Uri="s3://bucket/big.bin")
    _say(parts_done=-1, tmp=[], tmp_bytes=0)  # not reached when the stall works


def fetch(directory: str) -> None:
    import tiered_cache as tiered
    from tiered_cache import s3

    boto3, body, _part = _setup(directory)
    ranged: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        if "Range" in params["headers"]:
            ranged.append(1)

    boto3._get_default_session().events.register("before-call.s3.GetObject", count)
    cache = tiered.default_cache()
    path = s3.get_entry(s3Uri="s3://bucket/big.bin")
    with open(path, "rb") as f:
        whole = f.read() == body
    _say(
        whole=whole,
        loads=cache.stats()["loads"],
        ranged=len(ranged),
        tmp=os.listdir(os.path.join(directory, "tmp")),
        objects=os.listdir(os.path.join(directory, "objects")),
    )


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
