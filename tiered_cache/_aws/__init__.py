"""Shared AWS plumbing for the source modules (``ssm``, ``secrets_manager``, ``s3``, ...).

One module per concern: ``_clients`` (boto3 clients, error translation), ``_service``
(validation, specs, plans, memos, hit paths, the miss path), ``_handler`` (the handler
decorator), ``_snapstart`` (the after-restore hook). ``import tiered_cache._aws`` does not
import boto3.
"""

from __future__ import annotations

from . import _clients, _service
from ._clients import call, client_for, error_code, get_client, region_for, translate
from ._handler import handler_decorator
from ._service import (
    NEGATIVE_TTL,
    Hit,
    Options,
    Plan,
    Spec,
    check_options,
    entry_name_for,
    freeze,
    hit_path,
    load,
    max_age_of,
    memo_table,
    plan_for,
    remember,
    remember_hit,
    resolve,
    value_of,
)
from ._snapstart import after_restore, register_snapstart

__all__ = [
    "NEGATIVE_TTL",
    "Hit",
    "Options",
    "Plan",
    "Spec",
    "after_restore",
    "call",
    "check_options",
    "client_for",
    "entry_name_for",
    "error_code",
    "freeze",
    "get_client",
    "handler_decorator",
    "hit_path",
    "load",
    "max_age_of",
    "memo_table",
    "plan_for",
    "region_for",
    "register_snapstart",
    "remember",
    "remember_hit",
    "resolve",
    "translate",
    "value_of",
]

register_snapstart()


def _reset() -> None:
    """Forget clients, memoized specs, handler bindings and remembered misses (tests)."""
    _clients._reset()
    _service._unbind()
    _service._missing.clear()
