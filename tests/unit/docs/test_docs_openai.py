"""The README's OpenAI-compatible examples run as written (curl and the `openai` package)
against the in-process API (fake models, no Ray)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from api_support import ROOT, build_api, serving

pytestmark = pytest.mark.unit

README = (ROOT / "README.md").read_text(encoding="utf-8")
CAPTION = 'caption: {"caption": "a white and red image"}'


def block(language: str, marker: str) -> str:
    blocks = re.findall(rf"^```{language}\n(.*?)^```", README, re.MULTILINE | re.DOTALL)
    (found,) = [b for b in blocks if marker in b]
    return str(found)


def test_the_curl_example_gets_a_chat_completion() -> None:
    curl = block("bash", "/v1/chat/completions")
    with serving(build_api()) as url:
        done = subprocess.run(
            ["bash", "-c", curl.replace("localhost:8000", url.removeprefix("http://"))],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == CAPTION
    assert answer["mmserve"]["trace"][0]["arguments"] == {"image": "image_1"}


def test_the_python_example_answers_and_streams() -> None:
    program = block("python", "chat.completions")
    with serving(build_api()) as url:
        done = subprocess.run(
            [sys.executable, "-c", program.replace("http://localhost:8000", url)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        CAPTION,
        'tool: caption {"image": "image_1"}',
        CAPTION,
    ]
