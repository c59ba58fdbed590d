"""Fixtures of the fault-injection suite: run counts (CI or ``--soak``), progress, workers.

``pytest tests/reliability`` runs the CI setting; ``pytest tests/reliability --soak`` runs every
fault with larger counts and prints which step runs and how far it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
WORKER = str(HERE / "_worker.py")


def pytest_report_header(config: pytest.Config) -> str:
    return "reliability: " + ("soak counts (--soak)" if config.getoption("--soak") else "CI counts")


class Runs:
    """``runs(ci, soak)`` picks the count of this setting; ``progress(...)`` reports soaks."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.soak: bool = request.config.getoption("--soak")
        self._config = request.config
        self._name = request.node.name

    def __call__(self, ci: int, soak: int) -> int:
        return soak if self.soak else ci

    def progress(self, step: str, done: int, total: int) -> None:
        """Under ``--soak``, print ``[test] step done/total`` (about 10 lines per step)."""
        if not self.soak or (done != total and done % max(1, total // 10)):
            return
        capture = self._config.pluginmanager.getplugin("capturemanager")
        line = f"\n[soak] {self._name}: {step} {done}/{total}"
        if capture is None:
            print(line, file=sys.stderr, flush=True)
            return
        with capture.global_and_fixture_disabled():
            print(line, file=sys.stderr, flush=True)


@pytest.fixture
def runs(request: pytest.FixtureRequest) -> Runs:
    return Runs(request)


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("COVERAGE_PROCESS_START", None)  # children are measured by what they print
    return env


class Workers:
    """Starts ``_worker.py`` commands as real processes; kills leftovers at teardown."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, command: str, *args: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, WORKER, command, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env(),
        )
        self.procs.append(proc)
        return proc

    @staticmethod
    def line(proc: subprocess.Popen[str]) -> dict[str, Any]:
        """The next JSON line the worker prints; fails the test if it exits instead."""
        assert proc.stdout is not None
        text = proc.stdout.readline()
        if not text:
            proc.wait(10)
            err = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"worker exited {proc.returncode} without reporting\n{err}")
        result: dict[str, Any] = json.loads(text)
        return result

    def finish(self, proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
        """The last JSON line of a worker that must exit 0."""
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            pytest.fail(f"worker exited {proc.returncode}\n--- stdout\n{out}\n--- stderr\n{err}")
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def workers() -> Iterator[Workers]:
    made = Workers()
    try:
        yield made
    finally:
        made.kill_all()


def files_under(root: str) -> set[str]:
    """Every path under ``root`` (relative), directories included."""
    found = set()
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(base, name), root))
    return found


@pytest.fixture
def fd_count() -> Callable[[], int]:
    def count() -> int:
        return len(os.listdir("/proc/self/fd"))

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("counting open file descriptors needs /proc (Linux)")
    return count
