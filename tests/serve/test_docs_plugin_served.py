"""docs/plugins.md served: the guide's package, pip-installed, under `mmserve serve` with the
guide's own app config; its workflow answers over HTTP and `mmserve run --url`, a bad
template is a 422, and the plugin is listed by the server (issue 17)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_support import free_port, serving

from docs_guide import PACKAGE, build_and_install, env_with, guide_commands

pytestmark = pytest.mark.serve

NOTES = ["a red car", "a blue boat", "a red apple"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("guide")


@pytest.fixture(scope="module")
def site(work: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_and_install(work, tmp_path_factory)


@pytest.fixture(scope="module")
def url(work: Path, site: Path) -> Iterator[str]:
    [command] = [c for c in guide_commands() if c[1] == "serve"]
    config = work / command[command.index("--config") + 1]
    with serving(config, port=free_port(), log_path=work / "serve.log", env=env_with(site)) as (
        _,
        url,
    ):
        yield url


def test_the_server_lists_the_plugin_and_the_workflow(url: str) -> None:
    plugins = httpx.get(f"{url}/v1/plugins", timeout=30).json()
    names = {p["name"]: p for p in plugins["plugins"]}
    assert names["list_matches"]["origin"] == f"{PACKAGE} 0.1.0"
    workflows = {
        w["name"] for w in httpx.get(f"{url}/v1/workflows", timeout=30).json()["workflows"]
    }
    assert workflows == {"notes", "loud_caption"}


def test_the_workflow_runs_over_http(url: str) -> None:
    body = {"inputs": {"notes": NOTES, "question": "red"}}
    answer = httpx.post(f"{url}/v1/workflows/notes/run", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    lines = answer.json()["outputs"]["lines"]
    assert len(lines) == 2 and lines[0].startswith("1. ")


def test_a_bad_template_answers_422(url: str) -> None:
    body = {"inputs": {"notes": NOTES, "question": "red", "template": "{colour}"}}
    answer = httpx.post(f"{url}/v1/workflows/notes/run", json=body, timeout=120)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_input" and "template" in error["message"]


def test_mmserve_run_url_runs_it_by_name(url: str, work: Path, site: Path) -> None:
    inputs = ["--input", f"notes={json.dumps(NOTES)}", "--input", "question=red"]
    result = subprocess.run(
        [sys.executable, "-m", "mmserve", "run", "notes", "--url", url, *inputs],
        capture_output=True,
        text=True,
        cwd=work,
        env=env_with(site),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["outputs"]["lines"]) == 2
