"""Item 10: ``import tiered_cache`` loads none of boto3, diskcache or filelock (fresh
interpreter); they load when first needed. Also the public face: sorted ``__all__``, lazy
attributes, ``__version__``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import tiered_cache as tiered

_PROBE = """
import json, sys
heavy = ("boto3", "botocore", "diskcache", "filelock", "sqlite3", "redis")
import tiered_cache
after_import = sorted(m for m in heavy if m in sys.modules)
cache = tiered_cache.TieredCache(directory=sys.argv[1])
after_construct = sorted(m for m in heavy if m in sys.modules)
cache.set("k", "v", persist=False)
cache.get("k")
after_memory = sorted(m for m in heavy if m in sys.modules)
cache.get_or_load("d", lambda: 1)
after_disk = sorted(m for m in heavy if m in sys.modules)
print(json.dumps([after_import, after_construct, after_memory, after_disk]))
"""


def test_import_loads_no_heavy_dependency(python_subprocess: Any, cache_dir: str) -> None:
    out = python_subprocess(_PROBE, cache_dir)
    after_import, after_construct, after_memory, after_disk = json.loads(out.stdout)
    assert after_import == []
    # Making a cache and hitting memory stays light too: the store opens on first disk use.
    for stage in (after_construct, after_memory):
        assert not {"boto3", "botocore", "diskcache", "filelock"} & set(stage)
    assert "sqlite3" in after_disk  # loaded when first needed
    assert "diskcache" not in after_disk  # the store opens with sqlite3 alone (cold start)
    assert "boto3" not in after_disk


def test_import_with_the_decorator_at_module_level_stays_light(python_subprocess: Any) -> None:
    out = python_subprocess(
        """
        import json, sys
        import tiered_cache as tiered

        @tiered.cache(key="k:{x}")
        def f(x):
            return x

        print(json.dumps(sorted(m for m in ("diskcache", "filelock", "boto3") if m in sys.modules)))
        """
    )
    assert json.loads(out.stdout) == []


def test_public_face() -> None:
    assert tiered.__all__ == sorted(tiered.__all__)
    for name in ("CachedFunction", "TieredCache", "cache", "default_cache", "exceptions"):
        assert name in tiered.__all__
        assert getattr(tiered, name) is not None
    assert isinstance(tiered.__version__, str)
    assert tiered.__version__
    assert set(tiered.__all__) <= set(dir(tiered))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = tiered.nope  # type: ignore[attr-defined]


def test_version_without_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    monkeypatch.delitem(tiered.__dict__, "__version__", raising=False)
    assert tiered.__version__ == "0+unknown"
    monkeypatch.delitem(tiered.__dict__, "__version__")


def test_exception_tree() -> None:
    from tiered_cache import exceptions as exc

    assert issubclass(exc.SourceError, exc.TieredCacheError)
    assert issubclass(exc.NotFoundError, exc.SourceError)
    assert issubclass(exc.ArgumentTypeNotSupportedError, TypeError)
    assert issubclass(exc.NoEntryNameError, ValueError)
    assert issubclass(exc.InvalidS3UriError, ValueError)
    assert issubclass(exc.UnsafeCacheDirectoryError, exc.TieredCacheError)
    assert exc.__all__ == sorted(exc.__all__)
