"""Packaging for Lambda: the layer zip that ``scripts/build_layer.py`` writes, used from a
fresh interpreter whose path holds only the layer and boto3; and the wheel and sdist that
``python -m build`` makes, installed in a fresh venv."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ._lambda import REGION, MotoServer, aws_client

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_LAYER = REPO_ROOT / "scripts" / "build_layer.py"
BOTO = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(180)]


def build_layer(out: Path, *options: str) -> str:
    """Run the layer builder as a user would; return what it printed."""
    result = subprocess.run(
        [sys.executable, str(BUILD_LAYER), str(out), *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def boto_only(into: Path) -> Path:
    """A directory holding boto3 and its dependencies only (links into this environment),
    as Lambda's runtime has them outside the layer."""
    into.mkdir()
    for name in BOTO:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for top in {Path(str(f)).parts[0] for f in dist.files or ()}:
            source = Path(str(dist.locate_file(top)))
            if top not in ("..", "__pycache__") and source.exists():
                target = into / top
                if not target.exists():
                    target.symlink_to(source)
    return into


_IN_THE_LAYER = """
import json, os, sys
layer, boto, directory, parameter = sys.argv[1:5]
import tiered_cache as tiered
from tiered_cache import ssm

cache = tiered.TieredCache(directory=directory)
found = {
    "stored": cache.get("layer:k"),
    "loaded": cache.get_or_load("layer:x", lambda: "loaded once"),
}
cache.set("layer:k", {"v": [1, 2]})
found["ssm"] = ssm.get_entry(parameter=parameter)  # boto3 from outside the layer
stdlib = os.path.dirname(os.__file__)
found["outside"] = sorted(
    {
        m.__file__ for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and not m.__file__.startswith((layer, boto, stdlib))
    }
)
found["files"] = {
    name: sys.modules[name].__file__
    for name in ("tiered_cache", "diskcache", "boto3", "botocore")
    if name in sys.modules
}
import diskcache  # the store is its schema; the library itself no longer imports it
found["diskcache"] = len(diskcache.Cache(os.path.join(directory, "db")))  # rows the cache wrote
found["files"]["diskcache"] = diskcache.__file__
found["version"] = tiered.__version__
print(json.dumps(found))
"""


def test_the_layer_holds_the_cache_and_works_with_only_boto3_beside_it(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    out = tmp_path / "layer.zip"
    printed = build_layer(out)
    size = out.stat().st_size
    assert f"{size:,} bytes" in printed, printed
    print(printed.strip())

    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "opt")  # noqa: S202 - the zip this test just built
    assert all(name.startswith("python/") for name in names)
    tops = {name.split("/")[1] for name in names}
    assert {"tiered_cache", "diskcache", "filelock"} <= tops
    assert not tops & {"boto3", "botocore", "redis"}, tops
    tag = sys.implementation.cache_tag
    assert f"python/tiered_cache/__pycache__/__init__.{tag}.pyc" in names

    layer = str(tmp_path / "opt" / "python")
    boto = str(boto_only(tmp_path / "runtime"))
    parameter = "/layer/greeting"
    aws_client("ssm", moto_server.url).put_parameter(
        Name=parameter, Value="hello", Type="String", Overwrite=True
    )
    directory = str(tmp_path / "tmp" / "tiered-cache")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TIERED_CACHE_DIR": directory,  # the default cache's (ssm's) directory too
        "PYTHONPATH": os.pathsep.join([layer, boto]),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }

    def run() -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-S", "-c", _IN_THE_LAYER, layer, boto, directory, parameter],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(tmp_path),
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        found: dict[str, Any] = json.loads(result.stdout)
        return found

    first, second = run(), run()  # -S: no site-packages; the path is the layer and boto3
    assert first["files"]["tiered_cache"].startswith(layer)
    assert first["files"]["diskcache"].startswith(layer)
    assert first["diskcache"] >= 2  # diskcache from the layer reads what the cache wrote
    assert first["files"]["botocore"].startswith(boto)
    assert first["outside"] == [], "modules came from outside the layer and boto3"
    assert first["version"] == metadata.version("tiered-cache")
    assert (first["stored"], first["loaded"], first["ssm"]) == (None, "loaded once", "hello")
    # The second interpreter finds on disk what the first one stored.
    assert (second["stored"], second["loaded"]) == ({"v": [1, 2]}, "loaded once")


def test_the_layer_takes_redis_on_request(tmp_path: Path) -> None:
    out = tmp_path / "layer-redis.zip"
    printed = build_layer(out, "--redis", "--no-compile")
    assert f"redis {metadata.version('redis')}" in printed
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
    assert "python/redis/__init__.py" in names
    assert not any("__pycache__" in name for name in names)  # --no-compile


def test_the_layer_is_reproducible(tmp_path: Path) -> None:
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    build_layer(first)
    build_layer(second)
    assert first.read_bytes() == second.read_bytes()


def test_build_makes_a_wheel_and_an_sdist_that_install_in_a_fresh_venv(tmp_path: Path) -> None:
    pytest.importorskip("build", reason="python -m build needs the build package (test extra)")
    source = tmp_path / "src"
    shutil.copytree(
        REPO_ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".tox", ".venv", "build", "dist", "*.egg-info", "__pycache__",
            ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache",
        ),
    )  # fmt: skip
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == len(sdists) == 1, list(dist.iterdir())
    with zipfile.ZipFile(wheels[0]) as archive:
        assert "tiered_cache/py.typed" in archive.namelist()
    with tarfile.open(sdists[0]) as archive:
        assert any(name.endswith("/tiered_cache/py.typed") for name in archive.getnames())

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheels[0])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    used = subprocess.run(
        [
            str(python),
            "-c",
            textwrap.dedent(
                """
                import json, sys
                import tiered_cache as tiered
                cache = tiered.TieredCache(directory=sys.argv[1])
                cache.set("k", b"v")
                print(json.dumps([tiered.__file__, tiered.__version__, cache.get("k").decode()]))
                """
            ),
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=60,
        check=False,
    )
    assert used.returncode == 0, used.stderr
    where, version, value = json.loads(used.stdout)
    assert where.startswith(str(venv)), where
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", version)
    assert version == metadata.version("tiered-cache")
    assert value == "v"
