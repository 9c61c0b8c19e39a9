"""``mmserve mcp``, run as a desktop MCP client runs it: a subprocess spoken to over stdio by
the official MCP client, forwarding to an API (fake models) behind a real HTTP server; once
from the thin install (`pip install mmserve`, tests/wheel_site.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import KEY, ROOT, b64, image_bytes, serving_with_key
from mcp import Client, StdioServerParameters, types
from mcp.client.stdio import stdio_client

from wheel_site import venv

pytestmark = pytest.mark.unit

MMSERVE = str(Path(sys.executable).with_name("mmserve"))
KEY_ENV = "MMSERVE_UNIT_MCP_KEY"


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    """The API with an API key, behind uvicorn in a thread on a free port."""
    with serving_with_key(KEY_ENV) as url:
        yield url


def over_stdio(
    params: StdioServerParameters, scenario: Callable[[Client], Awaitable[Any]], errlog: Path
) -> Any:
    """``scenario`` with the official client speaking to ``params``' command over stdio; the
    command's stderr goes to ``errlog``."""

    async def run() -> Any:
        with errlog.open("w") as err:
            async with Client(stdio_client(params, errlog=err)) as client:  # type: ignore[arg-type]
                return await scenario(client)

    return asyncio.run(run())


def _text(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


def test_the_bridge_lists_and_calls_the_servers_tools(
    live_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # the bridge as `pip install mmserve` installs it: no server extra (tests/wheel_site.py)
    thin = venv(tmp_path_factory) / "bin" / "mmserve"
    params = StdioServerParameters(
        command=str(thin), args=["mcp", "--url", live_url], env={"MMSERVE_API_KEY": KEY}
    )

    async def scenario(client: Client) -> tuple[list[str], Any, Any]:
        tools = [t.name for t in (await client.list_tools()).tools]
        good = await client.call_tool("caption", {"image": b64(image_bytes())})
        bad = await client.call_tool("caption", {"image": "not an image"})
        return tools, good, bad

    tools, good, bad = over_stdio(params, scenario, tmp_path / "stderr.txt")
    assert {"caption", "answer", "search_images"} <= set(tools)
    assert good.is_error is False and json.loads(_text(good))["caption"]
    assert good.structured_content == json.loads(_text(good))
    assert bad.is_error is True and "invalid_input: input 'image'" in _text(bad)


def test_a_refused_key_is_one_clear_line_and_exit_1(live_url: str) -> None:
    for env, says in (
        ({"MMSERVE_API_KEY": "wrong"}, "the server refused the API key (HTTP 401)"),
        ({}, "the server needs an API key (HTTP 401)"),
    ):
        done = subprocess.run(
            [MMSERVE, "mcp", "--url", live_url],
            input=b"",
            capture_output=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if k != "MMSERVE_API_KEY"} | env,
        )
        assert done.returncode == 1
        assert done.stdout == b""  # stdout is the MCP channel: nothing but messages
        lines = done.stderr.decode().strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"error: cannot open an MCP session at {live_url}/mcp: {says}")


def test_a_bad_url_is_a_usage_error() -> None:
    done = subprocess.run(
        [MMSERVE, "mcp", "--url", "localhost:8000"], capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.decode().strip() == (
        "usage error: --url must be an http(s) URL, got 'localhost:8000'"
    )


def _readme_config() -> dict[str, Any]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"^```json\n(.*?)^```", text, re.M | re.S) if "mcpServers" in b]
    assert len(blocks) == 1
    config: dict[str, Any] = json.loads(blocks[0])
    return config


def test_the_readme_desktop_config_starts_a_working_bridge(live_url: str, tmp_path: Path) -> None:
    (entry,) = _readme_config()["mcpServers"].values()
    assert entry["command"] == "mmserve"
    args = list(entry["args"])
    assert args[:2] == ["mcp", "--url"]
    assert args[2] == "http://127.0.0.1:8000"  # the default `mmserve serve` address
    args[2] = live_url  # this test's server instead
    env = {**entry["env"], "MMSERVE_API_KEY": KEY}
    params = StdioServerParameters(command=MMSERVE, args=args, env=env)

    async def scenario(client: Client) -> list[str]:
        return [t.name for t in (await client.list_tools()).tools]

    assert "caption" in over_stdio(params, scenario, tmp_path / "stderr.txt")
