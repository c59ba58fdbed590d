"""End to end inside AWS's own Lambda runtime interface client.

Each test starts ``python -m awslambdaric handler.<function>`` as Lambda starts it (the loop
that Lambda's Python images run), against a Runtime API stand-in on loopback, with AWS served
by a moto server over HTTP (``AWS_ENDPOINT_URL``) behind a proxy that counts every request.
The handler module is ``tests/e2e/handler.py``. The few real sleeps here are the point of
these tests (a TTL passing, a lock held by another process); the rest of the suite uses
injected clocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ._lambda import FUNCTION_ARN, background

pytest.importorskip(
    "awslambdaric", reason="awslambdaric (in the test extra) is needed to run Lambda's own loop"
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(120)]

GET_PARAMETER = "AmazonSSM.GetParameter"
GET_SECRET = "secretsmanager.GetSecretValue"


def seed(aws: Any) -> dict[str, Any]:
    """The SSM parameter, secret and S3 object that ``context_handler`` reads."""
    db = {"user": "app", "password": "pw-1"}
    model = os.urandom(64 * 1024)  # over diskcache's 32 KB: kept as a file on disk
    aws.put_parameter(f"{aws.prefix}/greeting", "hello from SSM")
    aws.secrets.create_secret(Name=f"{aws.prefix[1:]}/db", SecretString=json.dumps(db))
    aws.s3.put_object(Bucket=aws.bucket, Key=f"{aws.prefix[1:]}/model.bin", Body=model)
    return {
        "greeting": "hello from SSM",
        "db": db,
        "model": {"sha256": hashlib.sha256(model).hexdigest(), "size": len(model)},
    }


def test_values_arrive_on_the_real_lambda_context(aws_lambda: Any) -> None:
    seeded = seed(aws_lambda)
    aws_lambda.start("context_handler")
    assert aws_lambda.proxy.requests == [], "importing the handler called AWS"

    invocation = aws_lambda.api.invoke({"n": 3}, timeout=30)
    found = invocation.result()

    assert found["context"] == "awslambdaric.lambda_context.LambdaContext"
    assert found["request_id"] == invocation.request_id
    assert found["arn"] == FUNCTION_ARN
    assert 0 < found["remaining_ms"] <= 30_000  # from Lambda-Runtime-Deadline-Ms
    assert {name: found[name] for name in seeded} == seeded
    proxy = aws_lambda.proxy
    assert (proxy.count(GET_PARAMETER), proxy.count(GET_SECRET)) == (1, 1)
    assert proxy.count("S3 GET") >= 1
    cold = len(proxy.requests)

    again = aws_lambda.api.invoke({"n": 3}).result()
    assert {name: again[name] for name in seeded} == seeded
    assert proxy.requests[cold:] == [], "a warm invocation called AWS again"


def test_tiered_cache_functions_work(aws_lambda: Any, python_subprocess: Any) -> None:
    seed(aws_lambda)
    aws_lambda.start("context_handler")

    first = aws_lambda.api.invoke({"n": 3}).result()
    second = aws_lambda.api.invoke({"n": 3}).result()
    other = aws_lambda.api.invoke({"n": 4}).result()

    assert first["square"] == second["square"] == {"n": 3, "square": 9, "by": first["pid"]}
    assert other["square"] == {"n": 4, "square": 16, "by": first["pid"]}
    assert [r["loads"]["square"] for r in (first, second, other)] == [1, 1, 2]
    # ... and they went to /tmp: another process reads them through the public API.
    read = python_subprocess(
        """
        import json, sys
        import tiered_cache as tiered
        cache = tiered.TieredCache(directory=sys.argv[1])
        print(json.dumps([cache.get("square:3"), cache.get("square:4")]))
        """,
        str(aws_lambda.cache_dir),
    )
    assert json.loads(read.stdout) == [first["square"], other["square"]]


def test_the_deadline_bounds_a_wait_on_a_lock_another_process_holds(
    aws_lambda: Any, tmp_path: Path
) -> None:
    aws_lambda.put_parameter(f"{aws_lambda.prefix}/flag", "v1")
    # Without the deadline this invocation would wait 60 s for the other process's load.
    aws_lambda.start("flag_handler", TIERED_CACHE_LOCK_TIMEOUT="60")
    marker = tmp_path / "holder-is-loading"
    holder_code = textwrap.dedent(
        """
        import os, pathlib, time
        import tiered_cache as tiered

        def load():
            pathlib.Path(os.environ["E2E_MARKER"]).touch()
            time.sleep(120)  # a slow origin: the key's lock stays held meanwhile
            return {"name": "x", "by": "holder"}

        cache = tiered.TieredCache(directory=os.environ["TIERED_CACHE_DIR"])
        cache.get_or_load("slow:x", load, ttl=300)
        """
    )
    with background(holder_code, aws_lambda.env(E2E_MARKER=str(marker))) as holder:
        end = time.monotonic() + 30
        while not marker.exists():
            assert holder.poll() is None, "the lock holder exited before loading"
            assert time.monotonic() < end, "the lock holder never started loading"
            time.sleep(0.01)

        invocation = aws_lambda.api.invoke({"slow": "x"}, timeout=4.0)
        found = invocation.result(timeout=30)

        assert invocation.finished_at is not None
        took = invocation.finished_at - invocation.queued_at
        assert invocation.finished_at < invocation.deadline, f"answered after the deadline: {took}"
        assert took >= 1.0, f"did not wait for the other process's load first ({took:.2f} s)"
        assert found["slow"] == {"name": "x", "by": found["pid"]}  # then loaded by itself
        assert holder.poll() is None, "the holder stopped loading: the lock was not held"


def test_an_origin_update_arrives_within_the_ttl(aws_lambda: Any) -> None:
    ttl = 2.0
    name = f"{aws_lambda.prefix}/flag"
    aws_lambda.put_parameter(name, "v1")
    aws_lambda.start("flag_handler", E2E_TTL=str(ttl))

    stored = aws_lambda.api.invoke({})
    assert stored.result()["flag"] == "v1"
    aws_lambda.put_parameter(name, "v2")
    updated = time.time()

    soon = aws_lambda.api.invoke({})
    soon_found = soon.result()
    assert stored.finished_at is not None
    assert soon.taken_at is not None
    if soon.taken_at - stored.finished_at < ttl * 0.5:  # surely within the (jittered) TTL
        assert soon_found["flag"] == "v1", "not cached: the test below would prove nothing"

    time.sleep(max(0.0, updated + ttl + 0.05 - time.time()))
    assert aws_lambda.api.invoke({}).result()["flag"] == "v2"
    assert aws_lambda.proxy.count(GET_PARAMETER, name) == 2


def test_a_runtime_restart_makes_no_origin_call_for_what_is_on_disk(aws_lambda: Any) -> None:
    seeded = seed(aws_lambda)
    first_runtime = aws_lambda.start("context_handler")
    first = aws_lambda.api.invoke({"n": 5}).result()
    before = len(aws_lambda.proxy.requests)  # SSM, Secrets Manager, S3
    assert before >= 3

    first_runtime.kill()  # kill -9, as after a crash or a timeout
    aws_lambda.api.wait_polling(0, timeout=10)
    aws_lambda.start("context_handler")  # a new runtime process on the same /tmp
    second = aws_lambda.api.invoke({"n": 5}).result()

    assert second["pid"] != first["pid"]
    assert {name: second[name] for name in seeded} == seeded
    assert second["square"] == first["square"] == {"n": 5, "square": 25, "by": first["pid"]}
    assert second["loads"]["square"] == 0
    # Only the secret is fetched again: secrets are kept in memory, never in /tmp, by default.
    assert aws_lambda.proxy.requests[before:] == [(GET_SECRET, f"{aws_lambda.prefix[1:]}/db")]


def test_16_runtime_processes_on_one_tmp_make_one_ssm_call(aws_lambda: Any) -> None:
    name = f"{aws_lambda.prefix}/flag"
    aws_lambda.put_parameter(name, "v1")
    aws_lambda.start("flag_handler", workers=16)  # forked by awslambdaric, as on LMI

    invocations = aws_lambda.api.invoke_many([{} for _ in range(16)], timeout=60)
    found = [invocation.result(timeout=60) for invocation in invocations]

    assert len({f["pid"] for f in found}) == 16, "not one invocation per process"
    assert {f["flag"] for f in found} == {"v1"}
    assert aws_lambda.proxy.count(GET_PARAMETER, name) == 1


def test_a_handler_error_after_a_cache_hit_reaches_error(aws_lambda: Any) -> None:
    name = f"{aws_lambda.prefix}/flag"
    aws_lambda.put_parameter(name, "v1")
    aws_lambda.start("flag_handler")
    ok = aws_lambda.api.invoke({}).result()

    failing = aws_lambda.api.invoke({"fail": True})
    error = failing.error()

    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "failed after reading flag='v1'"
    assert error["requestId"] == failing.request_id
    assert any("in flag_handler" in frame for frame in error["stackTrace"])
    assert aws_lambda.proxy.count(GET_PARAMETER, name) == 1, "the failing call was not a hit"
    after = aws_lambda.api.invoke({}).result()  # the runtime goes on after a handler error
    assert (after["pid"], after["flag"]) == (ok["pid"], "v1")


def test_an_init_error_reaches_init_error(aws_lambda: Any) -> None:
    with pytest.raises(AssertionError, match=r"Runtime\.HandlerNotFound"):
        aws_lambda.start("no_such_handler")
    headers, body = aws_lambda.api.init_errors[0]
    error = json.loads(body)
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert "no_such_handler" in error["errorMessage"]
    assert headers.get("Lambda-Runtime-Function-Error-Type") == "Runtime.HandlerNotFound"
