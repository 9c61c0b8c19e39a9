"""What a workflow or plugin author meets over HTTP (issue 17): a step reporting bad input
answers 422 (a failure 500), a body without the "inputs" wrapper says how to wrap it, and
`mmserve run FILE.yaml --url` says how to serve your own workflows."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from api_support import ROOT, b64, build_api, image_bytes
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from mmserve.errors import InputError
from mmserve.registry import Registry, registry
from mmserve.workflow.run.context import StepContext

pytestmark = pytest.mark.unit


class Shout:
    """Upper-case a text; refuse a text without letters (the caller's mistake: 422)."""

    class Inputs(BaseModel):
        text: str

    class Outputs(BaseModel):
        text: str

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        if not any(c.isalpha() for c in inputs.text):
            raise InputError("text has no letters to shout", name="text", hint="send words")
        if inputs.text == "crash":
            raise ValueError("a bug in the step")  # the step's own failure: 500
        return self.Outputs(text=inputs.text.upper())


SHOUT = """
name: shout
inputs:
  text: {type: string}
steps:
  loud:
    uses: shout
    with:
      text: ${inputs.text}
outputs:
  text: ${loud.text}
"""


def _shout_api(folder: Path) -> FastAPI:
    """The app with the shout step and workflow (and the shipped caption workflow)."""
    (folder / "shout.yaml").write_text(SHOUT, encoding="utf-8")
    (folder / "caption.yaml").write_text(
        (ROOT / "workflows" / "caption.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    plugins = Registry()  # the built-ins plus the shout step, the global one untouched
    for info in registry.plugins():
        plugins.register(info.kind, info.name, info.target, meta=info.meta)
    plugins.register("step", "shout", Shout)
    return build_api(workflows=[str(folder)], plugins=plugins)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(_shout_api(tmp_path_factory.mktemp("workflows"))) as test_client:
        yield test_client


def test_a_step_raising_input_error_answers_422_with_its_message(client: TestClient) -> None:
    ok = client.post("/v1/workflows/shout/run", json={"inputs": {"text": "hi"}})
    assert ok.status_code == 200 and ok.json()["outputs"] == {"text": "HI"}
    response = client.post("/v1/workflows/shout/run", json={"inputs": {"text": "123"}})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"] == "text has no letters to shout (send words)"
    assert [(e["step"], e["status"]) for e in error["trace"]] == [("loud", "error")]


def test_any_other_exception_in_a_step_is_a_500_step_failure(client: TestClient) -> None:
    response = client.post("/v1/workflows/shout/run", json={"inputs": {"text": "crash"}})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "step_failed"
    assert "ValueError: a bug in the step" in error["message"]


def test_inputs_without_the_inputs_wrapper_get_a_hint_to_wrap_them(client: TestClient) -> None:
    image = b64(image_bytes())
    response = client.post("/v1/workflows/caption/run", json={"image": image})
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert 'send {"inputs": {"image": ...}}' in message
    wrapped = client.post("/v1/workflows/caption/run", json={"inputs": {"image": image}})
    assert wrapped.status_code == 200, wrapped.text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app served over real HTTP (uvicorn in a thread), as `mmserve run --url` meets it."""
    port = _free_port()
    app = _shout_api(tmp_path_factory.mktemp("served"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def test_run_of_a_file_with_url_says_how_to_serve_your_own_workflows(
    url: str, tmp_path: Path
) -> None:
    flow = tmp_path / "mine" / "my.yaml"
    flow.parent.mkdir()
    flow.write_text(SHOUT, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mmserve", "run", str(flow), "--url", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert f"unknown workflow {str(flow)!r}" in line
    assert f"workflows: [{flow.parent.resolve().as_posix()}]" in line
    assert "without --url" in line


def test_every_bad_input_of_a_run_is_named_in_one_answer(client: TestClient) -> None:
    response = client.post("/v1/workflows/caption/run", json={"inputs": {"colour": 1}})
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert message.startswith("2 bad inputs: ")
    assert "unexpected input 'colour'" in message and "missing required input 'image'" in message


def test_a_failed_run_with_url_prints_its_trace(url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mmserve", "run", "shout", "--url", url, "--input", "text=crash"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "a bug in the step" in line
    answer = json.loads(result.stdout)
    assert answer["error"]["code"] == "step_failed"
    assert [(e["step"], e["status"]) for e in answer["trace"]] == [("loud", "error")]
