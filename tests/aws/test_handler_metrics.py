"""The handler decorators report the caches' metrics after each invocation: one EMF line per
invocation with ``TIERED_CACHE_METRICS=emf`` (stacked decorators included), the same metrics
added to a Powertools ``Metrics`` given as ``metrics=``, nothing at all when neither is on.

Each case runs in a fresh interpreter (the variable is read once, as in Lambda) against moto,
and checks the lines it printed against the EMF schema fixture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "emf-schema.json").read_text()
)

PRELUDE = """
import json, os, sys, types
from moto import mock_aws
mock = mock_aws(); mock.start()
import boto3
ssm_client = boto3.client("ssm", region_name="us-east-1")
ssm_client.put_parameter(Name="/app/a", Value="alpha", Type="String")
ssm_client.put_parameter(Name="/app/b", Value="beta", Type="String")
import tiered_cache as tiered
from tiered_cache import ssm
def invoke(handler, n):
    for i in range(n):
        print("-- invocation", i, flush=True)
        handler({}, types.SimpleNamespace())
"""


def _run(python_subprocess: Any, tmp_path: Path, body: str, **env: str) -> list[Any]:
    """The output split per invocation: a list (one per invocation) of the JSON lines in it."""
    out = python_subprocess(
        PRELUDE + body,
        env={
            "TIERED_CACHE_DIR": str(tmp_path / "c"),
            "AWS_LAMBDA_FUNCTION_NAME": "orders",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            **env,
        },
    )
    assert out.returncode == 0, out.stderr
    invocations: list[list[Any]] = []
    for line in out.stdout.splitlines():
        if line.startswith("-- invocation"):
            invocations.append([])
        elif line.strip():
            invocations[-1].append(json.loads(line))
    return invocations


def _metrics(document: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(document, SCHEMA)
    names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    return {name: document[name] for name in names}


def test_one_line_per_invocation_after_the_handler(python_subprocess: Any, tmp_path: Path) -> None:
    invocations = _run(
        python_subprocess,
        tmp_path,
        """
@ssm.cache(parameter="/app/a", entry_name="a", max_age_in_seconds=300)
def handler(event, context):
    return context.a
invoke(handler, 3)
""",
        TIERED_CACHE_METRICS="emf",
    )
    assert [len(lines) for lines in invocations] == [1, 1, 1]
    first, second, third = (_metrics(lines[0]) for lines in invocations)
    assert (first["loads"], first["memory_hits"], first["load_errors"]) == (1, 0, 0)
    assert first["origin_ms"] >= 0
    assert (second["loads"], second["memory_hits"]) == (0, 1)  # deltas, not totals
    assert third == second
    assert invocations[0][0]["function_name"] == "orders"


def test_a_stack_of_decorators_writes_one_line(python_subprocess: Any, tmp_path: Path) -> None:
    invocations = _run(
        python_subprocess,
        tmp_path,
        """
@ssm.cache(parameter="/app/a", entry_name="a")
@ssm.cache(parameter="/app/b", entry_name="b")
def handler(event, context):
    return context.a + context.b
invoke(handler, 2)
""",
        TIERED_CACHE_METRICS="emf",
    )
    assert [len(lines) for lines in invocations] == [1, 1]
    assert _metrics(invocations[0][0])["loads"] == 2
    assert _metrics(invocations[1][0])["memory_hits"] == 2


def test_a_handler_that_raises_still_reports(python_subprocess: Any, tmp_path: Path) -> None:
    invocations = _run(
        python_subprocess,
        tmp_path,
        """
@ssm.cache(parameter="/app/a", entry_name="a")
def handler(event, context):
    raise RuntimeError("after the value arrived")
try:
    invoke(handler, 1)
except RuntimeError:
    pass
""",
        TIERED_CACHE_METRICS="emf",
    )
    assert [len(lines) for lines in invocations] == [1]
    assert _metrics(invocations[0][0])["loads"] == 1


def test_nothing_is_written_without_the_variable(python_subprocess: Any, tmp_path: Path) -> None:
    invocations = _run(
        python_subprocess,
        tmp_path,
        """
@ssm.cache(parameter="/app/a", entry_name="a")
def handler(event, context):
    return context.a
invoke(handler, 2)
""",
    )
    assert invocations == [[], []]


def test_powertools_metrics_get_the_same_metrics_instead(
    python_subprocess: Any, tmp_path: Path
) -> None:
    invocations = _run(
        python_subprocess,
        tmp_path,
        """
from aws_lambda_powertools import Metrics
metrics = Metrics(namespace="Shop", service="orders")

@metrics.log_metrics
@ssm.cache(parameter="/app/a", entry_name="a", metrics=metrics)
def handler(event, context):
    return context.a
invoke(handler, 2)
""",
    )
    # Powertools writes its own EMF line (its namespace), with our metrics in it
    assert [len(lines) for lines in invocations] == [1, 1]
    first, second = (lines[0] for lines in invocations)
    assert first["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Shop"
    assert first["loads"] == [1.0]  # Powertools writes each value as a list
    assert second["memory_hits"] == [1.0]
    assert second["loads"] == [0.0]  # deltas: nothing loaded in the second invocation


def test_a_bad_metrics_argument_is_a_type_error_on_the_first_call(
    python_subprocess: Any, tmp_path: Path
) -> None:
    out = python_subprocess(
        PRELUDE
        + """
for bad in ("yes", 42, object()):
    @ssm.cache(parameter="/app/a", entry_name="a", metrics=bad)   # importing never fails
    def handler(event, context):
        return context.a
    try:
        handler({}, types.SimpleNamespace())
    except TypeError as exc:
        print("TypeError:", exc)
""",
        env={"TIERED_CACHE_DIR": str(tmp_path / "c"), "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert out.returncode == 0, out.stderr
    refusals = [line for line in out.stdout.splitlines() if line.startswith("TypeError:")]
    assert len(refusals) == 3, out.stdout
    expected = "tiered-cache: ssm.cache: metrics= takes a Powertools Metrics"
    assert all(expected in refusal for refusal in refusals)
