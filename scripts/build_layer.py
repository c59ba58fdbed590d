#!/usr/bin/env python3
"""Build an AWS Lambda layer zip of tiered-cache and its dependencies.

    python scripts/build_layer.py tiered-cache-layer.zip            # tiered_cache, diskcache,
                                                                    # filelock
    python scripts/build_layer.py tiered-cache-layer.zip --redis    # ... and redis (shared tier)

The layer holds ``python/<package>`` for every distribution, with its ``.dist-info``, so
Lambda puts them on ``sys.path`` from ``/opt/python``. The versions are the ones installed in
the Python that runs this script: it copies them from its site-packages and needs no network
(``pip install 'tiered-cache[redis]'`` first). boto3 and botocore are left out, as the Python
runtimes of Lambda include them.

Run it with the Python version of the function's runtime: requirements with markers (such as
redis's ``async-timeout`` below 3.11.3) are chosen for it, and the bytecode compiled into the
layer (``__pycache__``, unchecked hash-based ``.pyc``: ``/opt`` is read-only, so a layer
without them compiles its modules again on every cold start) is used only by that version;
other versions compile from the sources. ``--no-compile`` leaves the bytecode out.

The zip is reproducible: entries sorted, fixed timestamps. Prints the zip's size.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata as metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: What Lambda's Python runtimes already have; never copied into the layer.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)
ROOT_DISTRIBUTION = "tiered-cache"
ROOT_PACKAGE = "tiered_cache"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: Where Lambda puts a layer's python/ directory.
LAYER_PATH = "/opt/python"


def _packaging() -> Any:
    """``packaging.requirements``, or pip's vendored copy."""
    try:
        from packaging import requirements
    except ImportError:  # pragma: no cover - packaging comes with build, pip, setuptools
        from pip._vendor.packaging import requirements  # type: ignore[no-redef]
    return requirements


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions ``roots`` need (markers evaluated for this Python), minus
    what the Lambda runtime provides. Raises ``SystemExit`` naming one that is missing."""
    requirement_type = _packaging().Requirement
    found: dict[str, metadata.Distribution] = {}
    todo = [canonical(name) for name in roots]
    while todo:
        name = todo.pop()
        if name in found or name in RUNTIME_PROVIDED:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(
                f"build_layer: {name} is not installed in {sys.executable}; "
                f"pip install {name} (or 'tiered-cache[redis]') first"
            ) from None
        found[name] = dist
        for line in dist.requires or ():
            requirement = requirement_type(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonical(requirement.name))
    return [found[name] for name in sorted(found)]


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _is_code(relative: str) -> bool:
    """A file of the installed distribution that belongs in the layer."""
    parts = Path(relative).parts
    return (
        bool(parts)
        and parts[0] != ".."
        and "__pycache__" not in parts
        and not (relative.endswith(".pth") or parts[0].startswith("__editable__"))
    )


def copy_distribution(dist: metadata.Distribution, into: Path) -> list[str]:
    """Copy ``dist``'s installed files (package and ``.dist-info``) under ``into``.

    An editable install of tiered-cache (a development checkout) has no package files in
    site-packages: its package directory is copied from the checkout instead, with its
    metadata, and a RECORD written for what was copied.
    """
    files = [str(f) for f in dist.files or () if _is_code(str(f))]
    copied = []
    for relative in files:
        source = Path(str(dist.locate_file(relative)))
        if source.is_file():
            _copy(source, into / relative)
            copied.append(relative)
    if canonical(dist.metadata["Name"]) == ROOT_DISTRIBUTION and not any(
        Path(f).parts[0] == ROOT_PACKAGE for f in copied
    ):
        copied = _copy_checkout(dist, copied, into)
    return copied


def _copy_checkout(dist: metadata.Distribution, copied: list[str], into: Path) -> list[str]:
    spec = importlib.util.find_spec(ROOT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"build_layer: cannot find the {ROOT_PACKAGE} package")
    package = Path(next(iter(spec.submodule_search_locations)))
    kept = []
    for relative in copied:  # the editable install's metadata, minus its pointer to the tree
        name = Path(relative).name
        if name in ("RECORD", "direct_url.json", "INSTALLER", "REQUESTED"):
            (into / relative).unlink()
        else:
            kept.append(relative)
    for source in sorted(package.rglob("*")):
        wanted = source.suffix in (".py", ".pyi") or source.name == "py.typed"
        if wanted and source.is_file() and "__pycache__" not in source.parts:
            relative = str(Path(ROOT_PACKAGE) / source.relative_to(package))
            _copy(source, into / relative)
            kept.append(relative)
    info = next(Path(f).parts[0] for f in kept if Path(f).parts[0].endswith(".dist-info"))
    (into / info / "INSTALLER").write_text("build_layer\n")
    kept.append(f"{info}/INSTALLER")
    lines = [f"{f},sha256={_digest(into / f)},{(into / f).stat().st_size}" for f in kept]
    (into / info / "RECORD").write_text("\n".join([*lines, f"{info}/RECORD,,"]) + "\n")
    return [*kept, f"{info}/RECORD"]


def _digest(path: Path) -> str:
    raw = hashlib.sha256(path.read_bytes()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def compile_tree(python: Path) -> None:
    """Compile every module under ``python`` to unchecked hash-based ``.pyc`` files.

    In a child interpreter with ``PYTHONHASHSEED=0``: the order of set constants in the
    bytecode follows string hashes, so only a fixed seed gives the same bytes every time.
    ``-d`` names the path tracebacks show (where Lambda puts the layer), the same every build.
    """
    command = [sys.executable, "-m", "compileall", "-q", "-d", LAYER_PATH]
    command += ["--invalidation-mode", "unchecked-hash", str(python)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"build_layer: compileall failed:\n{result.stdout}{result.stderr}")


def write_zip(tree: Path, out: Path) -> int:
    """Zip ``tree`` (which holds ``python/``) into ``out`` reproducibly; return its size."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            entry = zipfile.ZipInfo(path.relative_to(tree).as_posix(), date_time=ZIP_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    os.replace(partial, out)
    return out.stat().st_size


def build_layer(out: Path, redis: bool = False, compile_bytecode: bool = True) -> str:
    """Write the layer zip to ``out``; return the one-line summary that the CLI prints."""
    roots = [ROOT_DISTRIBUTION, *(["redis"] if redis else [])]
    dists = closure(roots)
    with tempfile.TemporaryDirectory(prefix="tiered-cache-layer-") as scratch:
        tree = Path(scratch)
        python = tree / "python"
        python.mkdir()
        count = 0
        for dist in dists:
            count += len(copy_distribution(dist, python))
        if compile_bytecode:
            compile_tree(python)
        size = write_zip(tree, out)
    versions = ", ".join(f"{d.metadata['Name']} {d.version}" for d in dists)
    bytecode = f"bytecode for Python {sys.version_info[0]}.{sys.version_info[1]}"
    return (
        f"{out}: {size:,} bytes ({size / 2**20:.2f} MiB), {count} files of {versions}"
        f"{'; ' + bytecode if compile_bytecode else ''}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build an AWS Lambda layer zip: python/ with tiered_cache, diskcache, "
        "filelock (and redis), from this Python's installed versions; boto3 left out."
    )
    parser.add_argument("out", type=Path, help="the zip file to write, e.g. layer.zip")
    parser.add_argument("--redis", action="store_true", help="include redis (the shared tier)")
    parser.add_argument(
        "--no-compile",
        dest="compile_bytecode",
        action="store_false",
        help="leave out the precompiled bytecode (smaller zip, slower cold start)",
    )
    args = parser.parse_args(argv)
    print(build_layer(args.out, redis=args.redis, compile_bytecode=args.compile_bytecode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
