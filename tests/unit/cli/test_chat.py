"""`mmserve chat` as a user runs it: a real process reading the conversation from stdin, in
process (a config of weight-free fake models) and against a server (--url, no Ray)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_support import KEY, ROOT, build_api, image_bytes, serving

from mmserve.client.requests import API_KEY_ENV
from mmserve.models.backends.fake_llm import LOOP_MARKER
from wheel_site import venv

pytestmark = pytest.mark.unit

ASK = 'caption and answer question="what colour?" about image_1'
ANSWER = 'caption: {"caption": "a red image"}; answer: {"answer": "red", "score": 1.0}'


def chat(
    *args: str, stdin: str, env: dict[str, str] | None = None, mmserve: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`mmserve chat ARGS` in a process of its own: this venv's, or the ``mmserve`` given."""
    command = [str(mmserve)] if mmserve else [sys.executable, "-m", "mmserve"]
    return subprocess.run(
        [*command, "chat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def red(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chat") / "red.png"
    path.write_bytes(image_bytes())
    return path


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fake = {"backend": "fake", "source": "fake://"}
    models: dict[str, Any] = {
        r: fake for r in ("image_encoder", "text_encoder", "captioner", "vqa")
    }
    models["llm"] = {"backend": "fake-llm", "source": "fake-llm://"}
    data = {
        "models": models,
        "store": {"kind": "memory"},
        "workflows": [str(ROOT / "workflows")],
        "agents": [str(ROOT / "agents")],
    }
    path = tmp_path_factory.mktemp("chat") / "app.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_local_chat_answers_each_line_and_shows_the_tool_calls(red: Path, config: Path) -> None:
    done = chat("assistant", "--config", str(config), "--image", str(red), stdin=f"{ASK}\nhello\n")
    assert done.returncode == 0, done.stderr
    # the fake llm echoes the second line, with the loop's note of the images attached
    assert done.stdout.splitlines() == [ANSWER, "You said: hello", "(Images attached: image_1.)"]
    assert "[tool] caption(image='image_1') -> ok" in done.stderr
    assert "[tool] answer(image='image_1', question='what colour?') -> ok" in done.stderr


def test_a_failed_turn_is_one_error_line_and_the_chat_goes_on(config: Path) -> None:
    said = f"caption image_1\ncaption {LOOP_MARKER}\nhello fake:fail\nhi\n/quit\nnever read\n"
    done = chat("assistant", "--config", str(config), stdin=said)
    assert done.returncode == 1  # some turn failed
    assert done.stdout.splitlines()[-1] == "You said: hi"
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert "'image_1'" in errors[0] and "0 image(s)" in errors[0]
    assert "ValueError" in errors[1]
    assert "[stopped] the agent was still calling tools at its max_turns" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_chat_with_a_server_uses_its_agents_and_key(
    red: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.setenv("MMSERVE_UNIT_KEY", KEY)
    # the conversation from the thin install (`pip install mmserve`, tests/wheel_site.py)
    thin = venv(tmp_path_factory) / "bin" / "mmserve"
    with serving(build_api({"api_key_env": "MMSERVE_UNIT_KEY"})) as url:
        done = chat(
            *("assistant", "--url", url, "--image", str(red)),
            stdin=f"{ASK}\n",
            env={API_KEY_ENV: KEY},
            mmserve=thin,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [ANSWER]
        missing = chat("nobody", "--url", url, stdin="hi\n", env={API_KEY_ENV: KEY})
        assert missing.returncode == 1
        assert missing.stderr.strip().splitlines() == [
            "error: unknown agent 'nobody'; known agents: assistant (GET /v1/agents lists "
            "them; agents come from the config's `agents:` folders)"
        ]
        denied = chat("assistant", "--url", url, stdin="hi\n", env={API_KEY_ENV: ""})
        assert denied.returncode == 1 and "401" in denied.stderr


def test_a_missing_image_file_is_a_usage_error(config: Path) -> None:
    done = chat("assistant", "--config", str(config), "--image", "no/such.png", stdin="hi\n")
    assert done.returncode == 2
    assert done.stderr.strip() == "usage error: --image no/such.png: no such file"
