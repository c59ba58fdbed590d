"""Fixtures of the end-to-end suite: one moto server for the session; for each test a Runtime
API stand-in, a counting proxy in front of moto, a task root holding ``handler.py`` and a
private ``/tmp`` cache directory, and a launcher for ``python -m awslambdaric`` processes."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._lambda import REGION, CountingProxy, MotoServer, Runtime, RuntimeAPI, aws_client

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
BUCKET = "tiered-cache-e2e"


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto over HTTP on loopback, with the suite's bucket made."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        aws_client("s3", server.url).create_bucket(Bucket=BUCKET)
        yield server
    finally:
        server.close()


class Lambda:
    """One function's world: the Runtime API, AWS behind a counting proxy, ``/tmp``.

    ``start(function)`` runs a runtime process for ``handler.<function>`` and waits until it
    polls ``/next``; every runtime is killed at teardown.
    """

    def __init__(self, tmp_path: Path, moto: MotoServer) -> None:
        self.api = RuntimeAPI()
        self.proxy = CountingProxy(moto.port)
        self.task_root = tmp_path / "task"
        self.task_root.mkdir()
        shutil.copy(HERE / "handler.py", self.task_root / "handler.py")
        self.cache_dir = tmp_path / "tmp" / "tiered-cache"  # made by the cache, mode 0700
        self.prefix = f"/e2e/{uuid.uuid4().hex[:12]}"
        self.bucket = BUCKET
        self.ssm = aws_client("ssm", moto.url)
        self.secrets = aws_client("secretsmanager", moto.url)
        self.s3 = aws_client("s3", moto.url)
        self._tmp = tmp_path
        self.runtimes: list[Runtime] = []

    def env(self, **extra: str) -> dict[str, str]:
        """The environment Lambda gives a runtime process, pointed at loopback."""
        drop = ("AWS_", "TIERED_CACHE_", "E2E_", "LAMBDA_", "_LAMBDA_", "_X_AMZN", "_HANDLER")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env.update(
            AWS_LAMBDA_RUNTIME_API=self.api.address,
            LAMBDA_TASK_ROOT=str(self.task_root),
            AWS_EXECUTION_ENV=f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}",
            AWS_LAMBDA_FUNCTION_NAME="tiered-cache-e2e",
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_SESSION_TOKEN="testing",
            AWS_ENDPOINT_URL=self.proxy.url,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            TIERED_CACHE_DIR=str(self.cache_dir),
            E2E_PREFIX=self.prefix,
            E2E_BUCKET=self.bucket,
            PYTHONPATH=os.pathsep.join([str(self.task_root), str(REPO_ROOT)]),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def start(
        self, function: str, workers: int = 1, module: str = "handler", **extra: str
    ) -> Runtime:
        """Start ``python -m awslambdaric <module>.<function>``; wait for it to poll ``/next``.

        ``workers > 1`` sets ``AWS_LAMBDA_MAX_CONCURRENCY``: awslambdaric then forks that many
        runtime worker processes over the same ``/tmp``, as Lambda Managed Instances run them.
        """
        if workers > 1:
            extra["AWS_LAMBDA_MAX_CONCURRENCY"] = str(workers)
        log = self._tmp / f"runtime-{len(self.runtimes)}.log"
        runtime = Runtime(self.task_root, f"{module}.{function}", self.env(**extra), log)
        self.runtimes.append(runtime)
        before = self.api.polling
        self.api.wait_polling(before + workers, timeout=60, runtime=runtime)
        return runtime

    def put_parameter(self, name: str, value: str) -> None:
        self.ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    def close(self) -> None:
        for runtime in self.runtimes:
            runtime.kill()
        self.api.close()
        self.proxy.close()


@pytest.fixture
def aws_lambda(tmp_path: Path, moto_server: MotoServer) -> Iterator[Lambda]:
    world = Lambda(tmp_path, moto_server)
    try:
        yield world
    finally:
        world.close()
