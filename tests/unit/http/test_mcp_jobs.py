"""``/mcp`` on a server with job workers: a tool call is a job; one that ends within the
deadline answers its result, one that does not answers its id, and ``job_status`` answers
the result once it has finished (in process: a real job queue and worker, no Ray)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from api_support import b64, image_bytes
from jobs_support import JobsApp, jobs_app, jobs_config
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.unit


def call(url: str, scenario: Callable[[Client], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with httpx2.AsyncClient(timeout=30) as http:
            streams = streamable_http_client(f"{url}/mcp", http_client=http)
            async with Client(streams) as client:  # type: ignore[arg-type]
                return await scenario(client)

    return asyncio.run(run())


def text_of(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobsApp]:
    folder: Path = tmp_path_factory.mktemp("mcp-jobs")
    # each fake model call takes 0.25 s: slow_chain (3 calls) outlives the 0.4 s deadline
    config = jobs_config(folder, delay_ms=250, server={"request_timeout_s": 0.4})
    with jobs_app(config) as running:
        yield running


def test_the_tools_include_job_status(app: JobsApp) -> None:
    async def scenario(client: Client) -> types.ListToolsResult:
        return await client.list_tools()

    tools = {tool.name for tool in call(app.url, scenario).tools}
    assert {"caption", "slow_chain", "job_status"} <= tools


def test_a_call_within_the_deadline_answers_the_result(app: JobsApp) -> None:
    async def scenario(client: Client) -> types.CallToolResult:
        return await client.call_tool("caption", {"image": b64(image_bytes())})

    result = call(app.url, scenario)
    assert result.is_error is False, text_of(result)
    assert json.loads(text_of(result)) == {"caption": "a red image"}


def test_a_call_past_the_deadline_answers_its_job_then_job_status_its_result(
    app: JobsApp,
) -> None:
    async def start(client: Client) -> types.CallToolResult:
        return await client.call_tool("slow_chain", {"image": b64(image_bytes())})

    waiting = call(app.url, start)
    assert waiting.is_error is False, text_of(waiting)
    answer = json.loads(text_of(waiting))
    assert answer["status"] in ("queued", "running")
    job = answer["job_id"]

    async def status(client: Client) -> types.CallToolResult:
        return await client.call_tool("job_status", {"id": job})

    deadline = time.monotonic() + 30
    while True:
        result = call(app.url, status)
        data = json.loads(text_of(result))
        if "caption" in data or time.monotonic() > deadline:
            break
        assert data["job_id"] == job
        time.sleep(0.2)
    assert result.is_error is False
    assert data["caption"].endswith("a red image")


def test_job_status_of_an_unknown_id_is_an_error_result(app: JobsApp) -> None:
    async def scenario(client: Client) -> types.CallToolResult:
        return await client.call_tool("job_status", {"id": "0" * 32})

    result = call(app.url, scenario)
    assert result.is_error is True
    assert text_of(result).startswith("job_not_found:")
