"""tiered-cache: a two-tier (memory + /tmp) cache for AWS Lambda and any Python process.

``import tiered_cache`` stays light: boto3, diskcache and filelock load when first needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import exceptions

if TYPE_CHECKING:
    from . import appconfig, dynamodb, s3, secrets_manager, ssm
    from ._config import default_cache, set_default_cache, use_cache
    from ._core import TieredCache
    from ._decorator import CachedFunction, cache
    from ._dynamo import DynamoDBTier
    from ._prefetch import Prefetched, prefetch
    from ._shared import SharedTier

__all__ = [
    "CachedFunction",
    "DynamoDBTier",
    "Prefetched",
    "SharedTier",
    "TieredCache",
    "__version__",
    "appconfig",
    "cache",
    "default_cache",
    "dynamodb",
    "exceptions",
    "prefetch",
    "s3",
    "secrets_manager",
    "set_default_cache",
    "ssm",
    "use_cache",
]

_LAZY = {
    "CachedFunction": "._decorator",
    "DynamoDBTier": "._dynamo",
    "Prefetched": "._prefetch",
    "SharedTier": "._shared",
    "TieredCache": "._core",
    "cache": "._decorator",
    "default_cache": "._config",
    "prefetch": "._prefetch",
    "set_default_cache": "._config",
    "use_cache": "._config",
}
_SUBMODULES = {"appconfig", "dynamodb", "s3", "secrets_manager", "ssm"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("tiered-cache")
        except PackageNotFoundError:
            value = "0+unknown"
    else:
        raise AttributeError(f"module 'tiered_cache' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
