"""Streamed runs (``Accept: text/event-stream``) of the real API app (no Ray): the events and
the result, bad inputs as plain JSON errors, failures as an error event with the JSON error's
code and message, and a client that disconnects cancelling the running step (through a real
HTTP server, the Guard in front)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_support import AUTH, KEY, ROOT, b64, build_api, image_bytes, serving
from fastapi import FastAPI

from mmserve import AsyncClient, Client, RunResult
from mmserve.client.errors import ApiInputError, ApiTimeoutError
from mmserve.http import run_stream
from mmserve.registry import Registry, registry
from mmserve.workflow import StepFinished, StepStarted
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs

pytestmark = pytest.mark.unit

SSE = {**AUTH, "accept": "text/event-stream"}
#: Set by the stuck step when it is cancelled (a threading.Event: the server runs in a thread).
CANCELLED = threading.Event()

CAPTION_THEN_STUCK = """
name: caption_then_stuck
inputs:
  image: {type: image}
steps:
  caption:
    uses: caption
    with:
      image: ${inputs.image}
  wait:
    uses: stuck
    with:
      text: ${caption.text}
outputs:
  text: ${wait.text}
"""


class Stuck(Step):
    """Waits until it is cancelled."""

    class Inputs(StepInputs):
        text: str

    class Outputs(StepOutputs):
        text: str

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            CANCELLED.set()
            raise
        return self.Outputs(text=inputs.text)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    folder = tmp_path_factory.mktemp("stream")
    (folder / "caption_then_stuck.yaml").write_text(CAPTION_THEN_STUCK, encoding="utf-8")
    plugins = Registry()
    for info in registry.plugins():
        plugins.register(info.kind, info.name, info.target, meta=info.meta)
    plugins.register("step", "stuck", Stuck)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMSERVE_UNIT_KEY", KEY)
        server = {"api_key_env": "MMSERVE_UNIT_KEY"}
        yield build_api(server, [str(ROOT / "workflows"), str(folder)], plugins)


def parse_events(text: str) -> list[tuple[str, Any]]:
    """(event name, decoded data) of each event of a text/event-stream body."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def post(app: FastAPI, workflow: str, inputs: dict[str, Any], **headers: str) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.post(
                f"/v1/workflows/{workflow}/run", json={"inputs": inputs}, headers=headers
            )

    return asyncio.run(send())


def test_a_streamed_run_sends_each_step_then_the_result(app: FastAPI) -> None:
    inputs = {"image": b64(image_bytes())}
    plain = post(app, "caption", inputs, **AUTH)
    streamed = post(app, "caption", inputs, **SSE)
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = parse_events(streamed.text)
    assert [name for name, _ in events] == ["step_started", "step_finished", "result"]
    assert events[0][1] == {"type": "step_started", "step": "caption", "uses": "caption"}
    entry = events[1][1]["entry"]
    assert (entry["step"], entry["status"]) == ("caption", "ok")
    result = events[2][1]
    assert result["outputs"] == plain.json()["outputs"] == {"caption": "a red image"}
    assert result["trace"] == [entry]
    assert result["request_id"] == streamed.headers["x-request-id"]


def test_bad_inputs_are_refused_with_the_plain_json_error(app: FastAPI) -> None:
    bad = {"image": b64(b"\x89PNG but truncated")}
    plain, streamed = post(app, "caption", bad, **AUTH), post(app, "caption", bad, **SSE)
    assert streamed.status_code == plain.status_code == 422
    assert streamed.headers["content-type"] == "application/json"
    assert streamed.json()["error"]["code"] == plain.json()["error"]["code"] == "invalid_input"
    assert post(app, "caption", bad, accept="text/event-stream").status_code == 401


def test_a_failure_after_the_start_is_an_error_event_like_the_json_error(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_stream, "KEEPALIVE_S", 0.05)  # comments while the step is stuck
    inputs = {"image": b64(image_bytes())}
    deadline = {"x-mmserve-timeout-s": "0.3"}
    plain = post(app, "caption_then_stuck", inputs, **AUTH, **deadline)
    streamed = post(app, "caption_then_stuck", inputs, **SSE, **deadline)
    assert plain.status_code == 504 and streamed.status_code == 200
    events = parse_events(streamed.text)
    assert [(name, data.get("step")) for name, data in events] == [
        ("step_started", "caption"),
        ("step_finished", "caption"),
        ("step_started", "wait"),
        ("step_finished", "wait"),
        ("error", None),
    ]
    assert events[3][1]["entry"]["status"] == "cancelled"
    error, expected = events[-1][1]["error"], plain.json()["error"]
    assert (error["code"], error["message"]) == (expected["code"], expected["message"])
    assert error["code"] == "deadline_exceeded" and error["status"] == 504
    assert error["request_id"] == streamed.headers["x-request-id"]
    assert [e["status"] for e in error["trace"]] == ["ok", "cancelled"]
    assert "\n: keep-alive\n\n" in streamed.text


@pytest.fixture
def live_url(app: FastAPI) -> Iterator[str]:
    with serving(app) as url:
        yield url


def test_a_client_that_disconnects_cancels_the_running_step(live_url: str) -> None:
    CANCELLED.clear()
    url = f"{live_url}/v1/workflows/caption_then_stuck/run"
    body = {"inputs": {"image": b64(image_bytes())}}
    seen = []
    with httpx.Client(timeout=60) as client:
        with client.stream("POST", url, json=body, headers=SSE) as response:
            assert response.status_code == 200
            # the events arrive while the run goes on (nothing buffers the stream)
            for line in response.iter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                if seen and seen[-1] == {"type": "step_started", "step": "wait", "uses": "stuck"}:
                    break
        # leaving the block closes the connection mid-run
    assert [e["type"] for e in seen] == ["step_started", "step_finished", "step_started"]
    assert CANCELLED.wait(timeout=60), "the stuck step was not cancelled after the disconnect"


def test_the_openapi_document_describes_the_event_stream(app: FastAPI) -> None:
    async def fetch() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return (await client.get("/openapi.json", headers=AUTH)).json()  # type: ignore[no-any-return]

    answers = asyncio.run(fetch())["paths"]["/v1/workflows/{name}/run"]["post"]["responses"]
    content = answers["200"]["content"]
    assert set(content) == {"application/json", "text/event-stream"}
    assert "step_started" in content["text/event-stream"]["description"]


def test_the_async_client_yields_typed_events_then_the_run_result(app: FastAPI) -> None:
    async def scenario() -> tuple[list[object], RunResult]:
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://api", api_key=KEY, transport=transport) as client:
            items = [item async for item in client.stream("caption", image=image_bytes())]
            with pytest.raises(ApiInputError) as bad:
                async for _ in client.stream("caption", image=b"\x89PNG but truncated"):
                    pass
            assert bad.value.status == 422 and bad.value.code == "invalid_input"
            return items, await client.run("caption", image=image_bytes())

    items, plain = asyncio.run(scenario())
    started, finished, result = items
    assert isinstance(started, StepStarted) and started.step == "caption"
    assert isinstance(finished, StepFinished) and finished.entry.status == "ok"
    assert isinstance(result, RunResult) and result.outputs == plain.outputs
    assert result.trace == [finished.entry.model_dump(mode="json")] and result.request_id


def test_the_sync_client_raises_the_error_event_and_its_early_exit_cancels_the_run(
    live_url: str,
) -> None:
    seen: list[str] = []
    with Client(live_url, api_key=KEY, deadline_s=0.3) as client:
        with pytest.raises(ApiTimeoutError) as late:
            for item in client.stream("caption_then_stuck", image=image_bytes()):
                seen.append(f"{getattr(item, 'type', 'result')} {getattr(item, 'step', '')}")
    assert seen == [
        "step_started caption",
        "step_finished caption",
        "step_started wait",
        "step_finished wait",
    ]
    assert late.value.code == "deadline_exceeded" and late.value.status == 504
    assert "still running: step 'wait' (stuck)" in late.value.message and late.value.request_id
    CANCELLED.clear()
    with Client(live_url, api_key=KEY) as client:
        for item in client.stream("caption_then_stuck", image=image_bytes()):
            if isinstance(item, StepStarted) and item.step == "wait":
                break  # closes the stream: a disconnect
    assert CANCELLED.wait(timeout=60), "the stuck step was not cancelled after the disconnect"


def _snippet(doc: str, language: str, marker: str) -> str:
    """The one ``language`` code block of ``doc`` (relative to the repo) containing ``marker``."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    blocks = re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    (found,) = [b for b in blocks if marker in b]
    return str(found)


def test_the_documented_curl_and_client_examples_stream_a_run() -> None:
    curl = _snippet("docs/http-api.md", "bash", "text/event-stream")
    example = _snippet("README.md", "python", "client.stream(")
    with serving(build_api()) as url:  # no API key, as in the examples
        answer = subprocess.run(
            ["bash", "-c", curl.replace("localhost:8000", url)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        printed = subprocess.run(
            [sys.executable, "-c", example.replace("http://127.0.0.1:8000", url)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert answer.returncode == 0, answer.stderr
    events = parse_events(answer.stdout)
    assert sorted(name for name, _ in events[:4]) == ["step_finished"] * 2 + ["step_started"] * 2
    assert events[-1][0] == "result" and set(events[-1][1]["outputs"]) == {"caption", "answer"}
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert len(lines) == 5 and lines[-1].startswith("RunResult(outputs={'caption': ")
