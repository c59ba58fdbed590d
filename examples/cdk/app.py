"""The SAM example (``examples/sam/``) as a CDK app in Python: the layer, the function, its IAM
policy, and ``/tmp`` sized together with the cache's disk budget.

    python scripts/build_layer.py examples/cdk/tiered-cache-layer.zip   # with Python 3.12
    pip install aws-cdk-lib constructs
    cd examples/cdk && cdk deploy --app "python app.py" -c model_bucket=my-bucket

The function's code is ``examples/sam/src/app.py``.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

HERE = Path(__file__).resolve().parent

#: /tmp of each execution environment (512-10240 MiB) ...
EPHEMERAL_STORAGE = cdk.Size.mebibytes(2048)
#: ... and what the cache may use of it: every file it writes counts, and after a write the
#: total is within this plus the largest single item. About half of /tmp leaves room for the
#: function's own files; it must exceed the largest S3 object the function caches.
TIERED_CACHE_DISK_BYTES = 1 << 30


class CachedFunctionStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config_path: str = "/prod/app",
        db_credentials: str = "prod/db",  # the secret's name
        model_bucket: str,
        model_key: str = "models/model.bin",
        kms_key_arn: str = "*",
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        layer = lambda_.LayerVersion(
            self,
            "TieredCacheLayer",
            code=lambda_.Code.from_asset(str(HERE / "tiered-cache-layer.zip")),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.X86_64, lambda_.Architecture.ARM_64],
            description="tiered-cache, diskcache and filelock (boto3 comes from the runtime)",
        )
        function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="app.handler",
            code=lambda_.Code.from_asset(str(HERE.parent / "sam" / "src")),
            layers=[layer],
            memory_size=512,
            timeout=cdk.Duration.seconds(10),
            ephemeral_storage_size=EPHEMERAL_STORAGE,
            environment={
                "TIERED_CACHE_DISK_BYTES": str(TIERED_CACHE_DISK_BYTES),
                "CONFIG_PARAMETER": f"{config_path}/config",
                "DB_SECRET": db_credentials,
                "MODEL_URI": f"s3://{model_bucket}/{model_key}",
            },
        )
        parameters = f"arn:{self.partition}:ssm:{self.region}:{self.account}:parameter"
        statements = [
            iam.PolicyStatement(  # ssm.get_entry / ssm.cache; get_parameters_by_path
                actions=["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
                resources=[f"{parameters}{config_path}", f"{parameters}{config_path}/*"],
            ),
            iam.PolicyStatement(  # secrets_manager.get_entry / secrets_manager.cache
                actions=["secretsmanager:GetSecretValue"],
                resources=[
                    f"arn:{self.partition}:secretsmanager:{self.region}:{self.account}"
                    f":secret:{db_credentials}-??????"
                ],
            ),
            iam.PolicyStatement(  # s3.get_entry / s3.cache (and its conditional GETs)
                actions=["s3:GetObject"],
                resources=[f"arn:{self.partition}:s3:::{model_bucket}/{model_key}"],
            ),
            iam.PolicyStatement(  # a missing key is NotFoundError, not AccessDenied
                actions=["s3:ListBucket"],
                resources=[f"arn:{self.partition}:s3:::{model_bucket}"],
            ),
            iam.PolicyStatement(  # SecureStrings and secrets under a customer managed key
                actions=["kms:Decrypt"],
                resources=[kms_key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": [
                            f"ssm.{self.region}.amazonaws.com",
                            f"secretsmanager.{self.region}.amazonaws.com",
                        ]
                    }
                },
            ),
        ]
        for statement in statements:
            function.add_to_role_policy(statement)
        cdk.CfnOutput(self, "FunctionName", value=function.function_name)
        cdk.CfnOutput(self, "LayerVersionArn", value=layer.layer_version_arn)


app = cdk.App()
CachedFunctionStack(
    app,
    "TieredCacheExample",
    model_bucket=app.node.try_get_context("model_bucket") or "my-model-bucket",
)
app.synth()
