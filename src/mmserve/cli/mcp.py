"""``mmserve mcp``: the stdio bridge desktop MCP clients start (:mod:`mmserve.cli.mcp_bridge`)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from mmserve.cli.common import friendly, usage_error
from mmserve.client.requests import API_KEY_ENV


@friendly
def mcp(
    url: Annotated[
        str,
        typer.Option("--url", help="The mmserve server, e.g. http://127.0.0.1:8000 (its /mcp)."),
    ],
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar=API_KEY_ENV,
            show_envvar=True,
            help="The server's API key, if it needs one.",
        ),
    ] = None,
) -> None:
    """Serve the workflows of an mmserve server as MCP tools on stdin/stdout, for desktop MCP
    clients (Claude Desktop and others): every call is forwarded to the server's /mcp."""
    from mmserve.cli.mcp_bridge import mcp_endpoint, run_bridge  # deferred: pulls in the MCP SDK

    try:
        mcp_endpoint(url)
    except ValueError as exc:
        usage_error(str(exc))
    asyncio.run(run_bridge(url, api_key or None))


__all__ = ["mcp"]
