"""Fixtures every test directory can reuse: a fake clock, a private cache directory, a cache
built on both, a fresh-interpreter runner, and a real small tmpfs (root only).

Kept generic on purpose: tests/aws, tests/reliability and tests/shared add their own
conftest.py on top of this one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tiered_cache as tiered
from tiered_cache import _config

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here, at the root, so that `pytest --soak` works from the repository root.
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="reliability suite: run every fault with soak counts (e.g. 200 kill -9 runs)",
    )


class FakeClock:
    """A wall clock that only moves when told to: ``clock()`` reads, ``advance(s)`` ticks."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def set(self, when: float) -> None:
        self.now = float(when)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    """A path (not yet created) for a private cache directory; TieredCache makes it 0700."""
    return str(tmp_path / "c")


@pytest.fixture
def make_cache(cache_dir: str, fake_clock: FakeClock) -> Callable[..., Any]:
    """Factory: ``make_cache(**overrides)`` -> TieredCache on ``cache_dir`` and ``fake_clock``.

    Jitter defaults to 0 so expiries are exact; pass ``jitter=`` to test it.
    """
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("directory", cache_dir)
        kwargs.setdefault("clock", fake_clock)
        kwargs.setdefault("jitter", 0.0)
        cache = tiered.TieredCache(**kwargs)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.close()


@pytest.fixture
def cache(make_cache: Callable[..., Any]) -> Any:
    """A TieredCache with a disk tier in a private tmp directory and a fake clock."""
    return make_cache()


@pytest.fixture(autouse=True)
def _isolated_default_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every test starts with no default cache, pointed at its own private directory."""
    for name in list(os.environ):
        if name.startswith("TIERED_CACHE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TIERED_CACHE_DIR", str(tmp_path_factory.mktemp("default") / "tiered-cache"))
    _config._reset_default_cache()
    yield
    _config._reset_default_cache()


@pytest.fixture
def default(make_cache: Callable[..., Any]) -> Any:
    """The default cache the helpers use: a private directory, a fake clock, no jitter."""
    cache = make_cache()
    tiered.set_default_cache(cache)
    return cache


def run_python(
    code: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (dedented) in a fresh interpreter of this venv; returns the result.

    ``args`` become ``sys.argv[1:]``. With ``check`` a non-zero exit fails the test, showing
    the child's output.
    """
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [full_env.get("PYTHONPATH")])]
    )
    if env:
        full_env.update(env)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"subprocess exited {result.returncode}\n--- stdout\n{result.stdout}"
            f"\n--- stderr\n{result.stderr}"
        )
    return result


@pytest.fixture
def python_subprocess() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_python`` as a fixture, for test modules outside this directory."""
    return run_python


class TmpfsMounter:
    """Mounts real tmpfs file systems and unmounts them all at teardown (root only)."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []

    def __call__(self, path: Path, size: str = "2m", options: str = "") -> Path:
        """Mount a tmpfs of ``size`` on ``path`` (made if needed); skip if mounting fails."""
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root (CI runs as root)")
        path.mkdir(parents=True, exist_ok=True)
        opts = f"size={size},mode=0700" + (f",{options}" if options else "")
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, f"tc-{uuid.uuid4().hex[:8]}", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or result.returncode})")
        self.mounted.append(path)
        return path

    @staticmethod
    def remount(path: Path, options: str) -> None:
        """``mount -o remount,<options>`` (for example "ro") on a mounted tmpfs."""
        subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)

    def unmount_all(self) -> None:
        for path in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
        self.mounted.clear()


@pytest.fixture
def tmpfs() -> Iterator[TmpfsMounter]:
    """``tmpfs(path, size="2m", options="")`` mounts a real tmpfs; all unmounted afterwards."""
    mounter = TmpfsMounter()
    try:
        yield mounter
    finally:
        mounter.unmount_all()


@pytest.fixture
def moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's ``mock_aws`` with fake credentials in us-east-1, no AWS config files, and the
    library's lazily made clients and memo tables reset before and after."""
    import boto3
    from moto import mock_aws

    from tiered_cache import _aws

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    _aws._reset()
    with mock_aws():  # starting moto resets boto3's default session
        boto3.setup_default_session()
        yield
    _aws._reset()
    boto3.DEFAULT_SESSION = None
