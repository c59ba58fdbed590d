"""Fits the conformance suite (``suite.TierSuite``) to each tier: a case needing a capability
the tier declares it lacks (``suite.needs``) is deselected, and the tier's ``xfail`` table
becomes strict xfails."""

from __future__ import annotations

import pytest

from .suite import TierSuite


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tier_needs(*capabilities): a conformance case only for tiers declaring them "
        '("!name": declaring it False)',
    )


def _applies(cls: type[TierSuite], item: pytest.Item) -> bool:
    for mark in item.iter_markers("tier_needs"):
        for capability in mark.args:
            if getattr(cls, capability.lstrip("!")) is capability.startswith("!"):
                return False
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        cls = getattr(item, "cls", None)
        if cls is None or not issubclass(cls, TierSuite):
            kept.append(item)
            continue
        if not _applies(cls, item):
            dropped.append(item)
            continue
        kept.append(item)
        reason = cls.xfail.get(getattr(item, "originalname", item.name))
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
