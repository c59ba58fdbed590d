"""The Lambda function of the end-to-end tests: copied as ``handler.py`` into a temporary task
root and run by ``python -m awslambdaric handler.<function>``, as Lambda runs it.

Names come from the environment, read once at import as Lambda code reads its configuration:
``E2E_PREFIX`` (``/e2e/<test>``), ``E2E_BUCKET`` and ``E2E_TTL`` (seconds, default 300).
Every function returns what it found on the real ``LambdaContext`` and this process's facts
(pid, loader calls, the default cache's stats), so the tests can check them.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import tiered_cache as tiered
from tiered_cache import s3, secrets_manager, ssm

PREFIX = os.environ["E2E_PREFIX"]
BUCKET = os.environ["E2E_BUCKET"]
TTL = float(os.environ.get("E2E_TTL", "300"))

#: Calls of the ``@tiered.cache`` loaders in this process.
LOADS = {"square": 0, "slow": 0}


@tiered.cache(key="square:{n}", ttl=TTL)
def square(n: int) -> dict[str, int]:
    LOADS["square"] += 1
    return {"n": n, "square": n * n, "by": os.getpid()}


@tiered.cache(key="slow:{name}", ttl=TTL)
def slow(name: str) -> dict[str, Any]:
    LOADS["slow"] += 1
    return {"name": name, "by": os.getpid()}


def _facts(context: Any) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "context": f"{type(context).__module__}.{type(context).__qualname__}",
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "loads": dict(LOADS),
        "stats": dict(tiered.default_cache().stats()),
    }


@ssm.cache(parameter=f"{PREFIX}/greeting", max_age_in_seconds=TTL)
@secrets_manager.cache(
    name=f"{PREFIX[1:]}/db", max_age_in_seconds=TTL, entry_name="db", transform="json"
)
@s3.cache(s3Uri=f"s3://{BUCKET}{PREFIX}/model.bin", max_age_in_seconds=TTL, entry_name="model")
def context_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SSM, Secrets Manager and S3 values on the context, and a ``@tiered.cache`` function."""
    with open(context.model, "rb") as file:
        model = file.read()
    squared = square(int(event.get("n", 3)))
    return {
        **_facts(context),
        "greeting": context.greeting,
        "db": context.db,
        "model": {"sha256": hashlib.sha256(model).hexdigest(), "size": len(model)},
        "square": squared,
    }


@ssm.cache(parameter=f"{PREFIX}/flag", max_age_in_seconds=TTL)
def flag_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One SSM parameter on the context; ``{"fail": true}`` raises after reading it;
    ``{"slow": name}`` also calls the ``@tiered.cache`` function ``slow(name)``."""
    if event.get("fail"):
        raise ValueError(f"failed after reading flag={context.flag!r}")
    slowly = slow(event["slow"]) if "slow" in event else None
    return {**_facts(context), "flag": context.flag, "slow": slowly}
