"""``/mcp`` in process: the official MCP client over the ASGI app (fake models, no Ray)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import pytest
from api_support import KEY, ROOT, b64, build_api, image_bytes
from fastapi import FastAPI
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from mmserve.errors import StepFailedError
from mmserve.http.mcp.tools import IMAGE_ARGUMENT_NOTE, error_result, has_image, tool_result

pytestmark = pytest.mark.unit

Scenario = Callable[[Client], Awaitable[Any]]


def with_client(
    app: FastAPI,
    scenario: Scenario,
    *,
    headers: dict[str, str] | None = None,
    mode: str = "auto",
    statuses: list[int] | None = None,
) -> Any:
    """``scenario`` with an MCP client connected to ``app``'s ``/mcp`` (streamable HTTP);
    the HTTP status of every answer goes to ``statuses``."""

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async def run() -> Any:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(
            transport=transport,
            base_url="http://test",
            headers=headers,
            event_hooks={"response": [record]},
        ) as http:
            transport_streams = streamable_http_client("http://test/mcp", http_client=http)
            async with Client(transport_streams, mode=mode) as client:  # type: ignore[arg-type]
                return await scenario(client)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return build_api()


def as_dict(schema: Any) -> dict[str, Any]:
    """A tool's schema as the client holds it (a dict, or a model in older protocol eras)."""
    assert schema is not None
    if isinstance(schema, dict):
        return schema
    data: dict[str, Any] = schema.model_dump(by_alias=True, exclude_none=True)
    return data


def text_of(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_every_workflow_is_a_tool_with_its_input_schema(app: FastAPI, mode: str) -> None:
    async def scenario(client: Client) -> types.ListToolsResult:
        return await client.list_tools()

    tools = {t.name: t for t in with_client(app, scenario, mode=mode).tools}
    with_http = {w["name"]: w for w in _workflows(app)}
    assert set(tools) == set(with_http)
    caption = tools["caption"]
    assert caption.description == "Describe an image in words."
    image = as_dict(caption.input_schema)["properties"]["image"]
    assert image["type"] == "string" and image["contentEncoding"] == "base64"
    assert as_dict(caption.input_schema)["required"] == ["image"]
    assert as_dict(caption.output_schema)["properties"]["caption"]["type"] == "string"
    assert caption.annotations is not None and caption.annotations.read_only_hint is True
    # a workflow that makes images declares no output schema: its images are image content
    assert tools["generate"].output_schema is None
    for name, tool in tools.items():
        schema = as_dict(tool.input_schema)
        expected = with_http[name]["inputs"]
        assert set(schema["properties"]) == set(expected["properties"]), name
        assert schema.get("required", []) == expected.get("required", []), name


def _workflows(app: FastAPI) -> list[dict[str, Any]]:
    from fastapi.testclient import TestClient

    with TestClient(app) as http:
        workflows: list[dict[str, Any]] = http.get("/v1/workflows").json()["workflows"]
    return workflows


def test_image_arguments_say_they_are_base64() -> None:
    app = build_api(workflows=[str(ROOT / "workflows" / "caption.yaml")])

    async def scenario(client: Client) -> types.ListToolsResult:
        return await client.list_tools()

    (tool,) = with_client(app, scenario).tools
    image = as_dict(tool.input_schema)["properties"]["image"]
    assert image["description"] == f"The image to describe. {IMAGE_ARGUMENT_NOTE}"


def test_caption_returns_text_and_structured_content(app: FastAPI) -> None:
    async def scenario(client: Client) -> types.CallToolResult:
        return await client.call_tool("caption", {"image": b64(image_bytes())})

    result = with_client(app, scenario)
    assert result.is_error is False
    assert json.loads(text_of(result)) == result.structured_content
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["caption"]


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"image": "this is not base64!"}, "invalid_input: input 'image'"),
        ({"image": b64(b"\x89PNG\r\n\x1a\n not a png")}, "input 'image'"),
        ({}, "image"),
        ({"image": b64(image_bytes()), "colour": "red"}, "colour"),
        ({"image": b64(image_bytes(size=(9000, 9000)))}, "input_too_large"),
    ],
    ids=["not-base64", "broken-png", "missing", "unknown-argument", "too-many-pixels"],
)
def test_a_bad_argument_is_an_error_result_and_the_next_call_is_served(
    app: FastAPI, arguments: dict[str, Any], says: str
) -> None:
    async def scenario(client: Client) -> tuple[types.CallToolResult, types.CallToolResult]:
        bad = await client.call_tool("caption", arguments)
        good = await client.call_tool("caption", {"image": b64(image_bytes())})
        return bad, good

    bad, good = with_client(app, scenario)
    assert bad.is_error is True
    assert says in text_of(bad)
    assert "Traceback" not in text_of(bad)
    assert good.is_error is False


def test_a_failing_run_is_an_error_result(app: FastAPI) -> None:
    # this app has no image generator: the run fails in its step, the call still answers
    async def scenario(client: Client) -> types.CallToolResult:
        return await client.call_tool("generate", {"prompt": "a red circle"})

    result = with_client(app, scenario)
    assert result.is_error is True
    assert text_of(result).startswith("model_not_configured: ")
    assert "image_generator" in text_of(result)


def test_an_unknown_tool_is_an_error_result_listing_the_tools(app: FastAPI) -> None:
    async def scenario(client: Client) -> types.CallToolResult:
        return await client.call_tool("no_such_workflow", {})

    result = with_client(app, scenario)
    assert result.is_error is True
    assert "no tool named 'no_such_workflow'" in text_of(result)
    assert "caption" in text_of(result)


def test_mcp_needs_the_api_key_when_auth_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMSERVE_UNIT_KEY", KEY)
    app = build_api({"api_key_env": "MMSERVE_UNIT_KEY"})

    async def scenario(client: Client) -> list[str]:
        return [t.name for t in (await client.list_tools()).tools]

    assert "caption" in with_client(app, scenario, headers={"authorization": f"Bearer {KEY}"})
    for headers in (None, {"authorization": "Bearer wrong-key"}):
        statuses: list[int] = []
        with pytest.raises(Exception, match="error"):
            with_client(app, scenario, headers=headers, statuses=statuses)
        assert statuses and set(statuses) == {401}  # every request refused
    from fastapi.testclient import TestClient

    with TestClient(app) as http:
        answer = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"


def test_image_outputs_become_png_image_content() -> None:
    picture = Image.new("RGB", (5, 3), (10, 200, 30))
    result = tool_result({"image": picture, "images": [picture], "label": "cat", "score": 0.5})
    assert result.is_error is False
    text, *images = result.content
    assert isinstance(text, types.TextContent)
    data = json.loads(text.text)
    assert data["label"] == "cat" and data["score"] == 0.5
    assert data["image"].startswith("(image 1:") and data["images"][0].startswith("(image 2:")
    assert result.structured_content == data
    assert len(images) == 2
    for image in images:
        assert isinstance(image, types.ImageContent) and image.mime_type == "image/png"
        decoded = Image.open(io.BytesIO(base64.b64decode(image.data)))
        assert decoded.format == "PNG" and decoded.size == (5, 3)
        assert decoded.convert("RGB").getpixel((0, 0)) == (10, 200, 30)


def test_errors_map_to_readable_error_results() -> None:
    ours = error_result(StepFailedError(step="caption", uses="caption", reason="out of memory"))
    assert ours.is_error is True
    assert text_of(ours) == "step_failed: step 'caption' (caption) failed: out of memory"
    theirs = error_result(KeyError("boom"))
    assert theirs.is_error is True and text_of(theirs) == "internal_error: KeyError: 'boom'"


def test_has_image_finds_images_anywhere_in_a_schema() -> None:
    png = {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}
    assert has_image({"properties": {"x": {"anyOf": [png, {"type": "null"}]}}})
    assert has_image({"properties": {"xs": {"type": "array", "items": png}}})
    assert not has_image({"properties": {"caption": {"type": "string"}}})
