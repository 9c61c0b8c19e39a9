"""docs/plugins.md, followed as a user would: its files make a package, pip installs it, and
every command of the guide runs (except `mmserve serve`: tests/serve/test_docs_plugin_served.py),
as does the package's own test file on mmserve.testing's fixture (issue 17)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from docs_guide import PACKAGE, build_and_install, env_with, guide_commands, guide_files, mmserve

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("guide")


@pytest.fixture(scope="module")
def site(work: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_and_install(work, tmp_path_factory)


def test_the_guide_has_a_whole_package() -> None:
    files = guide_files()
    assert f"{PACKAGE}/pyproject.toml" in files
    assert f"{PACKAGE}/src/mmserve_notes/steps.py" in files
    assert f"{PACKAGE}/workflows/notes.yaml" in files
    assert f"{PACKAGE}/tests/test_notes.py" in files


def test_the_installed_step_is_listed_with_its_fields(work: Path, site: Path) -> None:
    [command] = [c for c in guide_commands() if c[1] == "plugins"]
    result = mmserve(command, cwd=work, site=site)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "step list_matches  (mmserve-notes 0.1.0)"
    assert "list[RetrievedMatch]" in result.stdout and "template" in result.stdout


def test_the_workflow_validates(work: Path, site: Path) -> None:
    [command] = [c for c in guide_commands() if c[1] == "validate"]
    result = mmserve(command, cwd=work, site=site)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: 2 workflow file(s) valid")


def test_the_workflow_runs_locally(work: Path, site: Path) -> None:
    runs = [c for c in guide_commands() if c[1] == "run"]
    good = next(c for c in runs if not any(a.startswith("template=") for a in c))
    result = mmserve(good, cwd=work, site=site)
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)["outputs"]
    assert len(outputs["lines"]) == 2
    assert outputs["lines"][0].startswith("1. ") and outputs["best"] in outputs["lines"][0]


def test_a_bad_template_is_refused_as_the_callers_mistake(work: Path, site: Path) -> None:
    runs = [c for c in guide_commands() if c[1] == "run"]
    bad = next(c for c in runs if any(a.startswith("template=") for a in c))
    result = mmserve(bad, cwd=work, site=site)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "template '{colour}' does not fit a match" in line
    assert "rank" in line  # the hint


def test_the_packages_own_tests_pass_on_the_public_fixture(work: Path, site: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        cwd=work / PACKAGE,
        env=env_with(site),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
