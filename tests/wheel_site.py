"""mmserve as users install it: the sdist and wheel built from this tree (``python -m build``,
checked by ``twine check``), the wheel installed without extras into a fresh venv (the thin
client: ``pip install mmserve``) and with the ``server`` extra into another
(``pip install "mmserve[server]"``).

Each is made once per test run and shared by every test and xdist worker that uses it (a
file lock in the run's temporary folder, as tests/plugin_site.py does for plugin packages).
The build reads a copy of the tree, so nothing is written into the repository. The venvs
are installed by uv. The server venv gets constraints.txt, the exact versions the suite is
tested with, from uv's cache that scripts/setup filled (seconds, not a download). The thin
venv gets the lower bound of each of the wheel's own dependencies, exactly (:func:`floors`):
the oldest versions the package metadata admits, so the tests that use it check those
bounds (the newest versions are the rest of the suite's).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from plugin_site import run_folder

ROOT = Path(__file__).resolve().parents[1]
#: The venv's own tools (scripts/setup installs uv there).
BIN = Path(sys.executable).parent
#: What the build reads: the package metadata, the README it shows, the sources.
_BUILD_INPUTS = ("pyproject.toml", "README.md", "src")
#: ... without what builds and runs leave in them.
_NOT_SOURCE = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__")
_DONE = ".done"


@dataclass(frozen=True)
class Built:
    """The sdist and wheel of this tree."""

    sdist: Path
    wheel: Path


def _once(
    name: str, tmp_path_factory: pytest.TempPathFactory, make: Callable[[Path], None]
) -> Path:
    """Run ``make(folder)`` once per test run for ``name`` (under a file lock)."""
    folder = run_folder(tmp_path_factory) / "wheel-site" / name
    folder.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / _DONE).exists():
            shutil.rmtree(folder)
            folder.mkdir()
            make(folder)
            (folder / _DONE).touch()
    return folder


def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist and wheel of this tree, built (and checked with ``twine check``) once."""

    def make(folder: Path) -> None:
        source = folder / "source"
        source.mkdir()
        for name in _BUILD_INPUTS:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, source / name, ignore=_NOT_SOURCE)
            else:
                shutil.copy2(ROOT / name, source / name)
        dist = folder / "dist"
        # --no-isolation: the build backend (setuptools) of this venv, no download
        _run([str(BIN / "python"), "-m", "build", "--no-isolation", "-o", str(dist), str(source)])
        _run([str(BIN / "twine"), "check", "--strict", *map(str, sorted(dist.iterdir()))])

    dist = _once("dist", tmp_path_factory, make) / "dist"
    return Built(sdist=next(dist.glob("*.tar.gz")), wheel=next(dist.glob("*.whl")))


def _find_links() -> list[str]:
    """The local wheel folders pip is configured with (this machine's CPU torch is there),
    passed on to uv as scripts/setup does: uv does not read pip's configuration."""
    configured = subprocess.run(
        [str(BIN / "python"), "-m", "pip", "config", "get", "global.find-links"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    links = [*configured, *os.environ.get("PIP_FIND_LINKS", "").split()]
    return [arg for link in links for arg in ("--find-links", link)]


def floors(wheel: Path) -> dict[str, Version]:
    """The lower bound of each dependency of ``wheel`` without extras (its ``Requires-Dist``
    lines without an ``extra`` marker): normalised name -> version."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
    lowest: dict[str, Version] = {}
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue
        (bound,) = [s.version for s in requirement.specifier if s.operator == ">="]
        lowest[canonicalize_name(requirement.name)] = Version(bound)
    return lowest


def venv(tmp_path_factory: pytest.TempPathFactory, *, extras: str = "") -> Path:
    """A fresh venv with this tree's wheel installed (``extras``: e.g. ``server``), made
    once per run; its folder (``bin/mmserve``, ``bin/python``). Without extras, at the
    lower bounds of the wheel's dependencies (:func:`floors`)."""

    def make(folder: Path) -> None:
        wheel = built(tmp_path_factory).wheel
        target = folder / "venv"
        _run([str(BIN / "uv"), "venv", "-q", "--python", sys.executable, str(target)])
        requirement = f"{wheel}[{extras}]" if extras else str(wheel)
        pinned = ROOT / "constraints.txt"
        if not extras:
            pinned = folder / "floors.txt"
            pins = [f"{name}=={version}" for name, version in floors(wheel).items()]
            pinned.write_text("\n".join(pins) + "\n", encoding="utf-8")
        _run(
            [
                str(BIN / "uv"),
                "pip",
                "install",
                "-q",
                "--python",
                str(target / "bin" / "python"),
                "--constraint",
                str(pinned),
                *_find_links(),
                requirement,
            ]
        )

    return _once(f"venv-{extras or 'thin'}", tmp_path_factory, make) / "venv"


def installed_versions(venv_folder: Path) -> dict[str, Version]:
    """The distributions installed in ``venv_folder``: normalised name -> version."""
    listing = subprocess.run(
        [str(BIN / "uv"), "pip", "list", "--python", str(venv_folder / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[2:]  # after the header and its rule
    rows = [line.split()[:2] for line in listing if line.strip()]
    return {canonicalize_name(name): Version(version) for name, version in rows}


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
