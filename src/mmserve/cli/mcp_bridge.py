"""``mmserve mcp --url URL``: a stdio MCP server forwarding to a served ``/mcp``.

Desktop MCP clients (Claude Desktop and the like) start their servers as commands and talk
MCP over stdin/stdout. This bridge is such a command: it connects to the mmserve server's
streamable HTTP endpoint (with the API key as a bearer token), then serves the remote tools
on stdio, forwarding every ``tools/list`` and ``tools/call``. A call the remote cannot answer
(the server went away, a timeout) becomes an error result the model can read; stdout carries
only MCP messages, everything else goes to stderr.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from mmserve.errors import ServiceUnavailableError
from mmserve.version import __version__

#: How long one forwarded call may take: workflows on CPU can take minutes.
CALL_TIMEOUT_S = 600.0
CONNECT_TIMEOUT_S = 30.0


def mcp_endpoint(url: str) -> str:
    """The ``/mcp`` endpoint of the server at ``url`` (given with or without ``/mcp``)."""
    base = url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"--url must be an http(s) URL, got {url!r}")
    return base if base.endswith("/mcp") else f"{base}/mcp"


@asynccontextmanager
async def remote_client(url: str, api_key: str | None) -> AsyncIterator[Client]:
    """An MCP client connected to the server at ``url``; a clear error when it cannot be."""
    endpoint = mcp_endpoint(url)
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx2.Timeout(CONNECT_TIMEOUT_S, read=CALL_TIMEOUT_S)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        refused: list[int] = []

        async def note_refusal(response: httpx2.Response) -> None:
            if response.status_code in (401, 403):
                refused.append(response.status_code)

        http.event_hooks["response"].append(note_refusal)
        client = Client(streamable_http_client(endpoint, http_client=http))
        try:
            await client.__aenter__()
        except Exception as exc:
            raise ServiceUnavailableError(
                f"cannot open an MCP session at {endpoint}: "
                f"{_reason(exc, refused, keyed=bool(api_key))}",
                hint="check --url (the server's address, as for `mmserve run --url`) and the "
                "API key (--api-key or $MMSERVE_API_KEY)",
            ) from None
        try:
            yield client
        finally:
            await client.__aexit__(None, None, None)


def _reason(error: BaseException, refused: list[int], *, keyed: bool = True) -> str:
    if refused:
        what = "refused the API key" if keyed else "needs an API key"
        return f"the server {what} (HTTP {refused[0]})"
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def bridge_server(remote: Client, url: str) -> Server[Any]:
    """A server whose tools are ``remote``'s, every call forwarded to it."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        listed = await remote.list_tools(cursor=params.cursor if params else None)
        return types.ListToolsResult.model_validate(_wire(listed))

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            result = await remote.call_tool(params.name, params.arguments or {})
        except Exception as exc:  # the remote did not answer: tell the model, keep serving
            text = f"unavailable: the mmserve server at {url} did not answer: {_reason(exc, [])}"
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=text)], is_error=True
            )
        return types.CallToolResult.model_validate(_wire(result))

    return Server(
        "mmserve",
        version=__version__,
        instructions=remote.instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _wire(model: Any) -> dict[str, Any]:
    """A result of the client as wire JSON (the server side validates its own models)."""
    data: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    data.pop("_meta", None)  # the remote's server info is not this server's
    data.pop("resultType", None)
    return data


async def run_bridge(url: str, api_key: str | None) -> None:
    """Serve the remote tools on this process's stdin/stdout until stdin closes."""
    async with remote_client(url, api_key) as remote:
        server = bridge_server(remote, mcp_endpoint(url))
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())


__all__ = ["bridge_server", "mcp_endpoint", "remote_client", "run_bridge"]
