"""The plugin guide's example package, built from docs/plugins.md and installed by pip:
shared by the unit-tier test (local runs) and the serve-tier test (served runs)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from plugin_site import installed

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_FILE = re.compile(r"^#\s*file:\s*(\S+)\s*$")
PACKAGE = "mmserve-notes"


def guide_files() -> dict[str, str]:
    """Every file of the guide: its path (``mmserve-notes/...``) -> its text."""
    files = {}
    for match in _FENCE.finditer(GUIDE.read_text(encoding="utf-8")):
        text = match.group(2)
        named = _FILE.match(text.splitlines()[0])
        if named is not None:
            files[named.group(1)] = text
    return files


def guide_commands() -> list[list[str]]:
    """The guide's `mmserve ...` command lines (bash blocks), split as a shell would."""
    commands = []
    for match in _FENCE.finditer(GUIDE.read_text(encoding="utf-8")):
        if match.group(1) == "bash":
            for line in match.group(2).splitlines():
                if line.startswith("mmserve "):
                    commands.append(shlex.split(line))
    return commands


def build_and_install(work: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write the guide's files under ``work`` and pip-install the package (as `pip install
    ./mmserve-notes` does; once per test run for the same files, plugin_site.py); returns
    the site folder, for PYTHONPATH."""
    for relative, text in guide_files().items():
        path = work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return installed(work / PACKAGE, tmp_path_factory)


def env_with(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(site)}


def mmserve(args: list[str], *, cwd: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """One guide command, ``mmserve`` being this environment's."""
    assert args[0] == "mmserve"
    return subprocess.run(
        [sys.executable, "-m", "mmserve", *args[1:]],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env_with(site),
        timeout=300,
    )
