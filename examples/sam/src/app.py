"""The function deployed by ``examples/sam/template.yaml`` and ``examples/cdk/app.py``.

tiered-cache comes from the layer; boto3 from the Lambda runtime. The names come from the
environment the templates set. Each value is fetched once per TTL for the whole execution
environment, and survives runtime restarts in ``/tmp``.
"""

from __future__ import annotations

import os
from typing import Any

from tiered_cache import s3, secrets_manager, ssm


@ssm.cache(parameter=os.environ["CONFIG_PARAMETER"], max_age_in_seconds=60, entry_name="config")
@secrets_manager.cache(
    name=os.environ["DB_SECRET"], max_age_in_seconds=300, entry_name="db", transform="json"
)
@s3.cache(s3Uri=os.environ["MODEL_URI"], max_age_in_seconds=3600, entry_name="model")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "config": context.config,  # the parameter's value
        "db_user": context.db["username"],  # the secret, parsed from JSON (memory only)
        "model_bytes": os.path.getsize(context.model),  # a local file in /tmp
    }
