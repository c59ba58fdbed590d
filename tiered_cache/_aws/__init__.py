"""Shared AWS plumbing for the source modules (``ssm``, ``secrets_manager``, ``s3``,
``dynamodb``, ``appconfig``), one module per concern:

- ``_clients``: boto3 clients, made lazily once per process; botocore errors translated;
- ``_service``: the :class:`Service` base (what a source declares; requests; the generated
  ``get_entry`` and ``cache``);
- ``_checks``: argument checks in lambda-cache's order;
- ``_plan``: specs and plans, the memos, the miss path and its negative cache;
- ``_handler``: the handler decorator (context, deadline, ``refresh_on``, what it declares);
- ``_transform``: ``transform=`` (``"json"``, ``"binary"``, ``"auto"``);
- ``_snapstart``: what a SnapStart restore must also undo here (the engine's hook runs it).

``import tiered_cache._aws`` does not import boto3.
"""

from __future__ import annotations

from . import _clients, _handler, _plan, _snapstart
from ._checks import Options, boolean, entry_name_for, name, text
from ._clients import call, client_for, error_code, get_client, region_for, translate
from ._handler import handler_decorator
from ._plan import MEMO_LIMIT, NEGATIVE_TTL, Plan, Spec, plan_for, remember_hit, resolve, value_of
from ._service import SKIP, Option, Request, Service

__all__ = [
    "MEMO_LIMIT",
    "NEGATIVE_TTL",
    "SKIP",
    "Option",
    "Options",
    "Plan",
    "Request",
    "Service",
    "Spec",
    "boolean",
    "call",
    "client_for",
    "entry_name_for",
    "error_code",
    "get_client",
    "handler_decorator",
    "name",
    "plan_for",
    "region_for",
    "remember_hit",
    "resolve",
    "text",
    "translate",
    "value_of",
]

_snapstart.register()


def _reset() -> None:
    """Forget clients, memoized specs, handler bindings, remembered misses and declared
    handlers (tests)."""
    _clients._reset()
    _plan._unbind()
    _plan._missing.clear()
    _handler.declared.clear()
