"""Helpers for the AWS tests: an API-call counter on botocore's event system, a context."""

from __future__ import annotations

import os
from typing import Any


class _Http:
    """What botocore reads of a response that a ``before-call`` handler short-circuits."""

    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}


class Calls:
    """Every API call made (operation names), and the parameters callers passed.

    ``fail[operation] = (status, code)`` makes that operation answer with that error, through
    the same event (botocore raises the ClientError as it would for a real answer).
    """

    def __init__(self) -> None:
        self.made: list[str] = []
        self.params: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, tuple[int, str]] = {}

    def before_call(self, model: Any, **_: Any) -> Any:
        self.made.append(model.name)
        failure = self.fail.get(model.name)
        if failure is None:
            return None
        status, code = failure
        return _Http(status), {"Error": {"Code": code, "Message": f"injected {code}"}}

    def before_parameter_build(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.params.append((model.name, dict(params)))

    def register(self, events: Any) -> None:
        events.register("before-call", self.before_call)
        events.register("before-parameter-build", self.before_parameter_build)

    def watch(self, client: Any) -> Any:
        """Count the calls of an injected client too; returns it."""
        self.register(client.meta.events)
        return client

    def count(self, operation: str | None = None) -> int:
        return sum(1 for name in self.made if operation is None or name == operation)

    def requests(self, operation: str) -> list[dict[str, Any]]:
        """The parameters the caller passed to each call of ``operation``."""
        return [params for name, params in self.params if name == operation]


class Context:
    """A Lambda-like context object (attributes can be set on it)."""

    function_name = "test"


def files_under(root: str) -> list[str]:
    found = []
    for folder, _, names in os.walk(root):
        found.extend(os.path.join(folder, name) for name in names)
    return found


def bytes_under(root: str) -> bytes:
    """Every byte of every file under ``root``, concatenated (to grep for secrets)."""
    chunks = []
    for path in files_under(root):
        with open(path, "rb") as handle:
            chunks.append(handle.read())
    return b"".join(chunks)
