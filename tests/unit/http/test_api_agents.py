"""The agent endpoints over HTTP (the in-process app, fake llm and fake models)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import ROOT, b64, build_api, image_bytes, serving
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from mmserve import AsyncClient, Client
from mmserve.client.errors import ApiNotFoundError
from mmserve.media import ImageValue
from mmserve.models.backends.fake_llm import LOOP_MARKER
from mmserve.registry import Registry, registry
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_api()) as test_client:
        yield test_client


def run(client: TestClient, body: dict[str, Any], name: str = "assistant") -> Any:
    return client.post(f"/v1/agents/{name}/run", json=body)


def test_agents_are_listed_with_their_model_and_tools(client: TestClient) -> None:
    answer = client.get("/v1/agents")
    assert answer.status_code == 200
    (assistant,) = answer.json()["agents"]
    assert assistant["name"] == "assistant"
    assert assistant["model"] == "llm"
    assert "caption" in assistant["tools"]


def test_a_run_calls_the_tools_on_the_image_sent_and_answers_with_their_results(
    client: TestClient,
) -> None:
    body = {
        "messages": [{"role": "user", "content": "caption image_1 please"}],
        "images": [b64(image_bytes())],  # a red image
    }
    answer = run(client, body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["status"] == "ok"
    assert data["turns"] == 2
    assert data["message"]["content"] == 'caption: {"caption": "a red image"}'
    (call,) = data["trace"]
    assert (call["tool"], call["arguments"], call["status"]) == (
        "caption",
        {"image": "image_1"},
        "ok",
    )
    assert [step["step"] for step in call["trace"]] == ["caption"]
    assert data["images"] == {}
    assert data["request_id"] == answer.headers["x-request-id"]


def test_a_looping_model_ends_with_the_max_turns_status(client: TestClient) -> None:
    body = {
        "messages": [{"content": f"caption image_1 {LOOP_MARKER}"}],
        "images": [b64(image_bytes())],
    }
    data = run(client, body).json()
    assert data["status"] == "max_turns"
    assert data["turns"] == 6 == len(data["trace"])  # the assistant's max_turns


def test_bad_requests_get_clear_errors_and_the_next_request_is_served(client: TestClient) -> None:
    missing = run(client, {"messages": [{"content": "hi"}]}, name="nobody")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "agent_not_found"
    assert "known agents: assistant" in missing.json()["error"]["message"]

    empty = run(client, {"messages": []})
    assert empty.status_code == 422
    assert "messages" in empty.json()["error"]["message"]

    handle = run(
        client, {"messages": [{"content": "caption image_2"}], "images": [b64(image_bytes())]}
    )
    assert handle.status_code == 422
    assert "'image_2'" in handle.json()["error"]["message"]

    broken = run(
        client, {"messages": [{"content": "caption image_1"}], "images": ["bm90IGFuIGltYWdl"]}
    )
    assert broken.status_code == 422

    failed = run(client, {"messages": [{"content": "hello fake:fail"}]})
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "model_error"
    assert "the agent's model 'llm' failed: ValueError" in failed.json()["error"]["message"]

    ok = run(client, {"messages": [{"content": "hello"}]})
    assert ok.status_code == 200
    assert ok.json()["message"]["content"] == "You said: hello"


def test_an_oversized_image_is_refused_with_413() -> None:
    with TestClient(build_api({"limits": {"max_image_pixels": 100}})) as small:
        body = {"messages": [{"content": "caption image_1"}], "images": [b64(image_bytes())]}
        answer = run(small, body)
    assert answer.status_code == 413
    assert "images[0]" in answer.json()["error"]["message"]


class Mirror(Step):
    """A step that makes an image (no shipped workflow makes one yet)."""

    class Inputs(StepInputs):
        image: ImageValue

    class Outputs(StepOutputs):
        image: Image.Image

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        return self.Outputs(image=ImageOps.mirror(inputs.image))


MIRROR = """\
name: mirror
description: Mirror an image left to right.
inputs:
  image: {type: image, description: The image to mirror.}
steps:
  flip: {uses: mirror, with: {image: "${inputs.image}"}}
outputs:
  image: ${flip.image}
"""


def mirror_app(tmp_path: Path) -> FastAPI:
    """The API with a `mirror` workflow and an agent `m` that may call it."""
    (tmp_path / "mirror.yaml").write_text(MIRROR, encoding="utf-8")
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "m.yaml").write_text("name: m\nmodel: llm\ntools: [mirror]\n")
    plugins = Registry()
    for info in registry.plugins():
        plugins.register(info.kind, info.name, info.target, meta=info.meta)
    plugins.register("step", "mirror", Mirror)
    return build_api(None, [str(tmp_path)], plugins, agents=[str(tmp_path / "agents")])


def half_red_half_blue() -> Image.Image:
    half = Image.new("RGB", (20, 10), (220, 30, 30))
    half.paste(Image.new("RGB", (10, 10), (30, 60, 220)), (10, 0))
    return half


def test_images_the_tools_make_come_back_as_png_by_handle(tmp_path: Path) -> None:
    app = mirror_app(tmp_path)
    buffer = io.BytesIO()
    half_red_half_blue().save(buffer, "PNG")
    with TestClient(app) as client:
        body = {"messages": [{"content": "mirror image_1"}], "images": [b64(buffer.getvalue())]}
        data = run(client, body, name="m").json()
    assert data["trace"][0]["result"] == {"image": "image_2"}
    assert data["message"]["content"] == 'mirror: {"image": "image_2"}'
    made = Image.open(io.BytesIO(base64.b64decode(data["images"]["image_2"])))
    assert made.convert("RGB").getpixel((0, 0)) == (30, 60, 220)


def test_the_documented_curl_example_runs_the_assistant() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    (curl,) = [b for b in blocks if "/v1/agents/assistant/run" in b]
    with serving(build_api()) as url:
        answer = subprocess.run(
            ["bash", "-c", curl.replace("localhost:8000", url)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert answer.returncode == 0, answer.stderr
    decoder = json.JSONDecoder()
    listing, end = decoder.raw_decode(answer.stdout)  # curl prints the two answers back to back
    run_answer, _ = decoder.raw_decode(answer.stdout, end)
    assert [a["name"] for a in listing["agents"]] == ["assistant"]
    assert run_answer["status"] == "ok"
    assert run_answer["message"]["content"] == 'caption: {"caption": "a white and red image"}'


def test_the_clients_run_agents_and_return_pil_images(tmp_path: Path) -> None:
    app = mirror_app(tmp_path)
    with serving(app) as url, Client(url) as client:
        assert [a["name"] for a in client.agents.list()] == ["m"]
        result = client.agents.run("m", "mirror image_1", images=[half_red_half_blue()])
    assert (result.status, result.turns) == ("ok", 2)
    assert result.images["image_2"].convert("RGB").getpixel((0, 0)) == (30, 60, 220)
    assert result.trace[0]["tool"] == "mirror" and result.request_id

    async def scenario() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://api", transport=transport) as client:
            with pytest.raises(ApiNotFoundError, match="known agents: m"):
                await client.agents.run("nobody", "hi")
            return await client.agents.run("m", [{"role": "user", "content": "hello"}])

    assert asyncio.run(scenario()).message["content"] == "You said: hello"
