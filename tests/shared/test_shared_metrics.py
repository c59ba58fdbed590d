"""CloudWatch metrics with the shared tier, against a real redis-server: a value another
environment stored is a shared hit in this environment's line (``tiered_cache._metrics``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tiered_cache import _metrics
from tiered_cache._shared import SharedTier

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "emf-schema.json").read_text()
)


@pytest.fixture
def emf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TIERED_CACHE_METRICS", "emf")
    _metrics._reset()
    yield
    _metrics._reset()


def test_a_shared_hit_is_counted_in_the_line(
    emf: None,
    make_cache: Callable[..., Any],
    make_tier: Callable[..., SharedTier],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    writer = make_cache(directory=str(tmp_path / "env-a"), shared=make_tier())
    reader = make_cache(directory=str(tmp_path / "env-b"), shared=make_tier())
    assert writer.get_or_load("k", lambda: {"v": 1}) == {"v": 1}
    _metrics.after_invocation()
    capsys.readouterr()
    assert reader.get_or_load("k", lambda: "never") == {"v": 1}  # from Redis
    assert reader.get("k") == {"v": 1}  # then from its own memory
    _metrics.after_invocation()
    (line,) = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert document["shared_hits"] == 1
    assert document["memory_hits"] == 1
    assert document["loads"] == document["disk_hits"] == 0
