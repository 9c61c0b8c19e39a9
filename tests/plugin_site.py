"""Plugin packages installed for real (``pip install --target``, entry points included) into
a site folder that a subprocess or a served app gets on its ``PYTHONPATH``.

Each package is installed once per test run and shared by every test that uses it, in every
pytest-xdist worker: the site folder is keyed by the package's files and lives in the run's
temporary folder, and a file lock lets one worker install while the others wait. pip builds
from a copy of the package, so nothing is written into the repository. Tests must only read
a site folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PIP_INSTALL = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
#: What a build leaves in a package folder: not part of its identity, not copied.
_BUILT = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")
_DONE = ".installed"
_NOT_SOURCE = ("build", "dist", "__pycache__", ".pytest_cache")


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test run's temporary folder, shared by its xdist workers (each worker's own base
    folder, ``popen-gwN``, lies in it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _digest(package: Path) -> str:
    files = sorted(
        path
        for path in package.rglob("*")
        if path.is_file()
        and not any(part in _NOT_SOURCE for part in path.parts)
        and not any(part.endswith(".egg-info") for part in path.parts)
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def installed(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site folder holding ``package`` (a folder with a pyproject.toml), installed now if
    this run has not installed these files yet."""
    folder = run_folder(tmp_path_factory) / "plugin-sites" / f"{package.name}-{_digest(package)}"
    folder.mkdir(parents=True, exist_ok=True)
    site = folder / "site"
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / _DONE).exists():
            source = folder / "source"
            shutil.rmtree(source, ignore_errors=True)
            shutil.rmtree(site, ignore_errors=True)
            shutil.copytree(package, source, ignore=_BUILT)
            subprocess.run(
                [*PIP_INSTALL, "--target", str(site), str(source)], check=True, timeout=300
            )
            (folder / _DONE).touch()
    return site
