"""The Python client, `mmserve run --url` and `mmserve index ... --url` as a user meets them:
a real `mmserve serve` of the offline tiny profile with an API key, the collections filled
and browsed over HTTP, every shipped workflow round-tripped sync and async, streamed runs
(Server-Sent Events through Serve's proxy, whose hop to the ingress is gRPC by default), and
typed errors carrying the server's code and request id, an agent run over the served models.
The server is the one the client, MCP and web page modules share (shared_app.py: tiny models
take minutes to start on two cores)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from serve_support import ROOT, assert_close
from shared_app import EXTRA_WORKFLOWS, KEY, TinyApp, fill_collections

from mmserve.client.clients import AsyncClient, Client, RunResult
from mmserve.client.errors import ApiAuthError, ApiInputError, ApiNotFoundError, ApiTimeoutError
from mmserve.client.requests import API_KEY_ENV
from mmserve.workflow import StepFinished, StepStarted

pytestmark = pytest.mark.serve

IMAGES = ROOT / "examples" / "images"


def _cases() -> dict[str, dict[str, Any]]:
    red, blue = IMAGES / "red_circle.png", (IMAGES / "blue_square.png").read_bytes()
    return {
        "caption": {"image": red},
        "answer": {"image": blue, "question": "what colour is the square?"},
        "classify": {"image": red},
        "describe": {"image": IMAGES / "yellow_sun.png"},
        "caption_then_retrieve": {"image": red, "top_k": 2},
        "retrieve_then_answer": {"question": "what shape is red?"},
        "search_images": {"text": "a yellow sun", "top_k": 2},
        "generate": {"prompt": "a red circle", "width": 64, "height": 48, "seed": 1},
        "edit": {"image": red, "instruction": "make it snow", "steps": 2},
        "generate_and_score": {"prompt": "a red circle", "width": 48, "height": 48},
        "caption_then_generate": {"image": blue, "width": 48, "height": 48},
        "answer_each": {"question": "what shape is it?", "top_k": 2},
        "caption_matches": {"text": "a red circle", "top_k": 2},
        "classify_then_answer": {"image": red, "question": "what is it?", "min_score": 0},
    }


@pytest.fixture(scope="module")
def server(keyed_tiny_app: TinyApp) -> str:
    """The shared `mmserve serve` of the tiny profile with the key (shared_app.py)."""
    return keyed_tiny_app.url


def test_every_shipped_workflow_round_trips_sync_and_async(server: str) -> None:
    cases = _cases()
    with Client(server, api_key=KEY) as client:
        # the shipped workflows, and the app's other ones (shared_app.EXTRA_WORKFLOWS)
        assert {w["name"] for w in client.workflows()} == set(cases) | EXTRA_WORKFLOWS
        fill_collections(client)
        sync = {name: client.run(name, **inputs) for name, inputs in cases.items()}

    async def run_all() -> dict[str, RunResult]:
        async with AsyncClient(server, api_key=KEY) as client:
            assert len(await client.collections.search("captions", text="a red circle")) == 5
            return {name: await client.run(name, **inputs) for name, inputs in cases.items()}

    asynced = asyncio.run(run_all())
    # image outputs come back as PIL images (the output schema marks them as base64 PNG)
    assert isinstance(sync["generate"].outputs["image"], Image.Image)
    assert sync["generate"].outputs["image"].size == (64, 48)
    assert sync["edit"].outputs["image"].size == (96, 96)  # the input's size
    assert isinstance(sync["generate_and_score"].outputs["score"], float)
    for name in cases:
        assert sync[name].request_id and sync[name].request_id != asynced[name].request_id
        assert [e["status"] for e in sync[name].trace] == ["ok"] * len(sync[name].trace)
        # floats within tolerance: concurrent requests may ride in batches of other sizes
        assert_close(asynced[name].outputs, sync[name].outputs, where=name)


def test_streamed_runs_yield_each_step_then_the_same_result(server: str) -> None:
    image = IMAGES / "blue_square.png"
    inputs = {"image": image, "question": "what colour is the square?"}
    with Client(server, api_key=KEY) as client:
        items = list(client.stream("describe", **inputs))
        plain = client.run("describe", **inputs)

    async def stream_async() -> list[object]:
        async with AsyncClient(server, api_key=KEY) as client:
            return [item async for item in client.stream("describe", **inputs)]

    for got in (items, asyncio.run(stream_async())):
        *events, result = got
        assert isinstance(result, RunResult) and result.request_id
        started = {e.step for e in events if isinstance(e, StepStarted)}
        finished = {e.step: e.entry for e in events if isinstance(e, StepFinished)}
        assert started == set(finished) == {"caption", "answer"} and len(events) == 4
        assert [finished[e["step"]].model_dump(mode="json") for e in result.trace] == result.trace
        assert_close(result.outputs, plain.outputs, where="describe")
    with Client(server, api_key=KEY, deadline_s=0.001) as hurried:
        with pytest.raises(ApiTimeoutError) as late:
            list(hurried.stream("describe", **inputs))
    assert late.value.code == "deadline_exceeded" and late.value.request_id


def test_typed_errors_carry_the_servers_code_and_request_id(server: str) -> None:
    with Client(server, api_key=KEY) as client:
        with pytest.raises(ApiNotFoundError) as missing:
            client.collections.search("no_such_collection", text="x")
        assert missing.value.code == "collection_not_found" and missing.value.request_id
        with pytest.raises(ApiInputError) as bad:
            client.run("caption", image=b"\x89PNG but truncated")
        assert bad.value.status == 422 and bad.value.code == "invalid_input"
        assert "'image'" in bad.value.message and bad.value.request_id
    with Client(server) as anonymous, pytest.raises(ApiAuthError) as denied:
        anonymous.health()  # open to all
        anonymous.workflows()
    assert denied.value.status == 401 and denied.value.request_id


def test_an_agent_runs_its_tools_through_the_served_models(server: str) -> None:
    # the fake llm (tiny.yaml) calls the tools named, in order, on the image sent; the served
    # tiny models' results are nonsense text, quoted as they are in the final message
    with Client(server, api_key=KEY) as client:
        assert [a["name"] for a in client.agents.list()] == ["assistant"]
        said = 'caption and answer question="what colour?" about image_1'
        run = client.agents.run("assistant", said, images=[IMAGES / "red_circle.png"])
        with pytest.raises(ApiNotFoundError, match="known agents: assistant"):
            client.agents.run("nobody", "hi")
    assert (run.status, run.turns) == ("ok", 2)
    assert [(t["tool"], t["status"]) for t in run.trace] == [("caption", "ok"), ("answer", "ok")]
    assert run.trace[0]["arguments"] == {"image": "image_1"}
    quoted = [f"{t['tool']}: {json.dumps(t['result'], ensure_ascii=False)}" for t in run.trace]
    assert run.message["content"] == "; ".join(quoted)


def test_the_official_openai_client_runs_the_agent_streamed_and_not(server: str) -> None:
    # /v1/chat/completions through Serve's proxy: the image as a data URL becomes image_1, the
    # fake llm calls caption then answer on it and quotes their (tiny, nonsense) results
    import openai

    data = base64.b64encode((IMAGES / "red_circle.png").read_bytes()).decode("ascii")
    message: Any = {
        "role": "user",
        "content": [
            {"type": "text", "text": 'caption and answer question="what colour?"'},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
        ],
    }
    with openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0) as api:
        assert [m.id for m in api.models.list()] == ["assistant"]
        done = api.chat.completions.create(model="assistant", messages=[message])
        chunks = list(
            api.chat.completions.create(model="assistant", messages=[message], stream=True)
        )
        with pytest.raises(openai.NotFoundError, match="known agents: assistant"):
            api.chat.completions.create(model="nobody", messages=[message])
    trace = (done.model_extra or {})["mmserve"]["trace"]
    assert [(t["tool"], t["status"], t["arguments"]["image"]) for t in trace] == [
        ("caption", "ok", "image_1"),
        ("answer", "ok", "image_1"),
    ]
    quoted = [f"{t['tool']}: {json.dumps(t['result'], ensure_ascii=False)}" for t in trace]
    assert done.choices[0].message.content == "; ".join(quoted)
    calls = [c for chunk in chunks for c in chunk.choices[0].delta.tool_calls or []]
    assert [c.function.name for c in calls if c.function] == ["caption", "answer"]
    results = [(c.model_extra or {}).get("mmserve", {}).get("tool_result") for c in chunks]
    streamed = [f"{r['tool']}: {json.dumps(r['result'], ensure_ascii=False)}" for r in results if r]
    assert [line.split(":")[0] for line in streamed] == ["caption", "answer"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "; ".join(streamed)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_mmserve_run_url_uses_the_client(server: str) -> None:
    mmserve = str(Path(sys.executable).with_name("mmserve"))
    image = IMAGES / "red_circle.png"
    done = subprocess.run(
        [mmserve, "run", "caption", "--url", server, "--input", f"image=@{image}"],
        env={**os.environ, API_KEY_ENV: KEY},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout)["outputs"]["caption"], str)
    denied = subprocess.run(
        [mmserve, "run", "caption", "--url", server, "--input", f"image=@{image}"],
        env={k: v for k, v in os.environ.items() if k != API_KEY_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert denied.returncode != 0 and "Traceback" not in denied.stderr
    assert "API key" in denied.stderr
    shown = subprocess.run(
        [mmserve, "run", "caption", "--url", server, "--input", f"image=@{image}", "--progress"],
        env={**os.environ, API_KEY_ENV: KEY},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "step caption: started (caption)" in shown.stderr.splitlines()
    assert "step caption: ok in " in shown.stderr
    assert json.loads(shown.stdout)["outputs"] == json.loads(done.stdout)["outputs"]


def test_mmserve_run_url_writes_image_outputs_as_files(
    keyed_tiny_app: TinyApp, tmp_path: Path
) -> None:
    """`--output-dir` against a server writes the PNG bytes local mode makes (local mode's
    own `--output-dir`: tests/integration/test_cli_generate.py)."""
    mmserve = str(Path(sys.executable).with_name("mmserve"))
    inputs = {"prompt": "a red circle", "width": 64, "height": 48, "seed": 1}
    done = subprocess.run(
        [mmserve, "run", "generate", "--url", keyed_tiny_app.url, "--output-dir", str(tmp_path)]
        + [arg for name, value in inputs.items() for arg in ("--input", f"{name}={value}")],
        env={**os.environ, API_KEY_ENV: KEY},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    served = tmp_path / "image.png"
    assert json.loads(done.stdout)["outputs"]["image"] == str(served)
    local = asyncio.run(keyed_tiny_app.local.run("generate", inputs)).model_dump(mode="json")
    assert served.read_bytes() == base64.b64decode(local["outputs"]["image"])
    with Image.open(served) as image:
        assert image.size == (64, 48)


def test_browse_a_collection_page_by_page_and_its_images_sync_and_async(server: str) -> None:
    images = sorted(IMAGES.glob("*.png"))
    names = [p.stem for p in images]
    with Client(server, api_key=KEY) as client:
        client.collections.add("browsed", images=images, ids=names, metadata={"set": "b"})
        pages = [client.collections.items("browsed", offset=n, limit=2) for n in (0, 2)]
        red = client.collections.image("browsed", "red_circle")
        thumb = client.collections.image("browsed", "red_circle", size=32, consistency="strong")
        with pytest.raises(ApiNotFoundError) as no_collection:
            client.collections.items("no_such_collection")
        with pytest.raises(ApiNotFoundError) as no_item:
            client.collections.image("browsed", "no_such_item")

    async def browse_async() -> tuple[dict[str, Any], Image.Image]:
        async with AsyncClient(server, api_key=KEY) as client:
            with pytest.raises(ApiNotFoundError):
                await client.collections.image("no_such_collection", "red_circle")
            page = await client.collections.items("browsed", limit=4, consistency="strong")
            return page, await client.collections.image("browsed", "blue_square")

    page, blue = asyncio.run(browse_async())
    assert [p["total"] for p in pages] == [4, 4]
    assert sorted(i["id"] for p in pages for i in p["items"]) == names
    assert [i["id"] for i in page["items"]] == [i["id"] for p in pages for i in p["items"]]
    assert all(i["has_image"] and i["metadata"] == {"set": "b"} for i in page["items"])
    with Image.open(IMAGES / "red_circle.png") as original:
        assert red.size == original.size and red.tobytes() == original.tobytes()
        assert max(thumb.size) == 32
    with Image.open(IMAGES / "blue_square.png") as original:
        assert blue.tobytes() == original.tobytes()
    assert no_collection.value.code == "collection_not_found" and no_collection.value.request_id
    assert no_item.value.code == "item_not_found"
