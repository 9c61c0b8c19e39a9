"""``/mcp`` of the served app of ``deployments/tiny.yaml`` (what `mmserve serve` runs, with an
API key; the app the client, MCP and web page modules share, shared_app.py), spoken to by the
official MCP client: over streamable HTTP, and through `mmserve mcp` (the stdio bridge) as a
desktop client starts it."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from PIL import Image
from serve_support import ROOT
from shared_app import EXTRA_WORKFLOWS, KEY, TinyApp

pytestmark = pytest.mark.serve

RED_CIRCLE = base64.b64encode((ROOT / "examples" / "images" / "red_circle.png").read_bytes())
MMSERVE = str(Path(sys.executable).with_name("mmserve"))

Scenario = Callable[[Client], Awaitable[Any]]


@pytest.fixture(scope="module")
def url(keyed_tiny_app: TinyApp) -> str:
    """The shared `mmserve serve` of the tiny profile with the key (shared_app.py)."""
    return keyed_tiny_app.url


def over_http(
    url: str, scenario: Scenario, *, key: str | None = KEY, statuses: list[int] | None = None
) -> Any:
    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async def run() -> Any:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        async with httpx2.AsyncClient(
            headers=headers, timeout=300, event_hooks={"response": [record]}
        ) as http:
            transport = streamable_http_client(f"{url}/mcp", http_client=http)
            async with Client(transport) as client:  # type: ignore[arg-type]
                return await scenario(client)

    return asyncio.run(run())


def _text(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


def test_tools_caption_and_a_bad_argument(url: str) -> None:
    async def scenario(client: Client) -> tuple[Any, ...]:
        tools = (await client.list_tools()).tools
        caption = await client.call_tool("caption", {"image": RED_CIRCLE.decode()})
        bad = await client.call_tool("caption", {"image": "not an image at all"})
        after = await client.call_tool("caption", {"image": RED_CIRCLE.decode(), "prompt": "a"})
        return tools, caption, bad, after

    tools, caption, bad, after = over_http(url, scenario)
    by_name = {t.name: t for t in tools}
    shipped = {p.stem for p in (ROOT / "workflows").glob("*.yaml")}
    # and the app's other ones; a served app runs job workers: job_status answers long calls
    assert set(by_name) == shipped | EXTRA_WORKFLOWS | {"job_status"}
    image = by_name["caption"].input_schema["properties"]["image"]
    assert image["contentEncoding"] == "base64" and "base64" in image["description"]
    # text back: the caption of the tiny BLIP (nonsense words, but words)
    assert caption.is_error is False
    assert isinstance(json.loads(_text(caption))["caption"], str)
    # a bad argument is an error result the model can read, not a protocol error
    assert bad.is_error is True
    assert _text(bad).startswith("invalid_input: input 'image'")
    assert after.is_error is False


def test_an_image_output_is_png_image_content(url: str) -> None:
    async def scenario(client: Client) -> types.CallToolResult:
        arguments = {"prompt": "a red circle", "width": 32, "height": 32, "steps": 1}
        return await client.call_tool("generate", arguments)

    result = over_http(url, scenario)
    assert result.is_error is False, _text(result)
    images = [c for c in result.content if isinstance(c, types.ImageContent)]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    picture = Image.open(io.BytesIO(base64.b64decode(images[0].data)))
    assert picture.format == "PNG" and picture.size == (32, 32)
    assert "image 1" in json.dumps(result.structured_content)


def test_mcp_is_refused_without_the_key(url: str) -> None:
    async def scenario(client: Client) -> Any:
        return await client.list_tools()

    for key in (None, "wrong"):
        statuses: list[int] = []
        with pytest.raises(Exception, match="error"):
            over_http(url, scenario, key=key, statuses=statuses)
        assert statuses and set(statuses) == {401}


def test_the_stdio_bridge_forwards_to_the_served_app(url: str, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=MMSERVE, args=["mcp", "--url", url], env={"MMSERVE_API_KEY": KEY}
    )

    async def run() -> tuple[list[str], types.CallToolResult]:
        with (tmp_path / "stderr.txt").open("w") as err:
            async with Client(stdio_client(params, errlog=err)) as client:  # type: ignore[arg-type]
                tools = [t.name for t in (await client.list_tools()).tools]
                return tools, await client.call_tool("caption", {"image": RED_CIRCLE.decode()})

    tools, caption = asyncio.run(run())
    assert "caption" in tools
    assert caption.is_error is False and "caption" in json.loads(_text(caption))
