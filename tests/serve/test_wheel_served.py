"""The thin client (`pip install mmserve`, no extras, at the lower bounds of its
dependencies: tests/wheel_site.py) against the served app: its `Client`, `mmserve run --url`
and `mmserve chat --url`. What needs no server (the wheel's files and metadata, the two
installs, the server extra's one line) is tests/integration/test_wheel.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from serve_support import ROOT
from shared_app import KEY, TinyApp

from mmserve.client.requests import API_KEY_ENV
from wheel_site import venv

pytestmark = pytest.mark.serve

IMAGE = ROOT / "examples" / "images" / "red_circle.png"


@pytest.fixture(scope="module")
def thin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv of `pip install <wheel>`: the client and the remote CLI."""
    return venv(tmp_path_factory)


@pytest.fixture(scope="module")
def url(keyed_tiny_app: TinyApp) -> str:
    return keyed_tiny_app.url


def _run(
    command: list[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_the_thin_client_and_cli_run_a_workflow_on_the_served_app(thin: Path, url: str) -> None:
    script = (
        "import json, sys; from mmserve import Client\n"
        f"with Client({url!r}, api_key={KEY!r}) as client:\n"
        f"    result = client.run('caption', image={str(IMAGE)!r})\n"
        "print(json.dumps(result.outputs))\n"
    )
    by_client = _run([thin / "bin" / "python", "-c", script])
    assert by_client.returncode == 0, by_client.stderr
    caption = json.loads(by_client.stdout)["caption"]
    assert isinstance(caption, str) and caption

    by_cli = _run(
        [thin / "bin" / "mmserve", "run", "caption", "--url", url, "-i", f"image=@{IMAGE}"],
        env={API_KEY_ENV: KEY},
    )
    assert by_cli.returncode == 0, by_cli.stderr
    answer = json.loads(by_cli.stdout)
    assert answer["outputs"]["caption"] == caption  # the same tiny model, the same caption
    assert [step["step"] for step in answer["trace"]] == ["caption"]


def test_the_thin_cli_chats_with_a_served_agent(thin: Path, url: str) -> None:
    done = subprocess.run(
        [str(thin / "bin" / "mmserve"), "chat", "assistant", "--url", url, "--image", str(IMAGE)],
        input="caption image_1\n",
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, API_KEY_ENV: KEY},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("caption: ")  # the agent called the caption workflow
