"""The deployment examples: the SAM template passes cfn-lint (CloudFormation's linter, with
the SAM transform), and the function both examples deploy runs in awslambdaric with the
environment they give it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(120)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TEMPLATE = EXAMPLES / "sam" / "template.yaml"
FUNCTION = EXAMPLES / "sam" / "src" / "app.py"
CDK_APP = EXAMPLES / "cdk" / "app.py"


def test_the_sam_template_passes_cfn_lint() -> None:
    api = pytest.importorskip("cfnlint.api", reason="cfn-lint comes with moto[server]")
    assert api.lint_file(TEMPLATE) == []


def test_both_examples_give_the_function_every_variable_it_reads() -> None:
    read = set(re.findall(r'os\.environ\["([A-Z_]+)"\]', FUNCTION.read_text()))
    assert read == {"CONFIG_PARAMETER", "DB_SECRET", "MODEL_URI"}
    for example in (TEMPLATE, CDK_APP):
        text = example.read_text()
        assert {name for name in read if f"{name}" in text} == read, example
        assert "TIERED_CACHE_DISK_BYTES" in text, example
        for action in (
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParametersByPath",
            "secretsmanager:GetSecretValue",
            "s3:GetObject",
            "kms:Decrypt",
        ):
            assert re.search(rf"{action}\b", text), (example, action)


def test_the_example_function_runs_in_the_runtime(aws_lambda: Any) -> None:
    pytest.importorskip("awslambdaric", reason="awslambdaric (in the test extra) is needed")
    shutil.copy(FUNCTION, aws_lambda.task_root / "app.py")
    config, secret, key = f"{aws_lambda.prefix}/config", f"{aws_lambda.prefix[1:]}/db", "m.bin"
    aws_lambda.put_parameter(config, "on")
    aws_lambda.secrets.create_secret(
        Name=secret, SecretString=json.dumps({"username": "app", "password": "pw"})
    )
    aws_lambda.s3.put_object(Bucket=aws_lambda.bucket, Key=key, Body=b"x" * 1000)
    aws_lambda.start(
        "handler",
        module="app",
        CONFIG_PARAMETER=config,
        DB_SECRET=secret,
        MODEL_URI=f"s3://{aws_lambda.bucket}/{key}",
        TIERED_CACHE_DISK_BYTES=str(1 << 30),
    )
    first = aws_lambda.api.invoke({}).result()
    cold = len(aws_lambda.proxy.requests)
    second = aws_lambda.api.invoke({}).result()
    assert first == second == {"config": "on", "db_user": "app", "model_bytes": 1000}
    assert aws_lambda.proxy.requests[cold:] == []  # the second call hit memory
