"""``/mcp``: an MCP server (the official ``mcp`` SDK) where every workflow is a tool.

Streamable HTTP, stateless and with JSON responses, so any ingress replica can answer any
request: each HTTP request gets a fresh session manager whose task group lives exactly as
long as that request. Nothing therefore depends on the app's lifespan, which neither a
mounted app nor every ASGI host (Ray Serve's ingress, test transports) runs.

A tool call runs its workflow the way ``POST /v1/workflows/{name}/run`` does: the arguments
pass :func:`~mmserve.http.limits.check_inputs` (images decoded, door limits), then the
engine runs them within ``server.request_timeout_s``. Failures come back as error results
(:mod:`mmserve.http.mcp.tools`). On a server with job workers a tool call is a job instead
(``POST /v1/workflows/{name}/jobs``): its result is answered when the job ends within
``server.request_timeout_s``; past that the answer is the job's id, and the ``job_status``
tool answers how it stands and, once it has finished, its result (docs/jobs.md,
:mod:`mmserve.http.mcp.jobs`). The API key is checked by the same
:class:`~mmserve.http.middleware.guard.Guard` as every other path, before this app sees a request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mmserve.errors import MmserveError
from mmserve.http.limits import check_inputs
from mmserve.http.mcp.jobs import McpJobs
from mmserve.http.mcp.tools import (
    JOB_STATUS_TOOL,
    error_result,
    job_status_tool,
    tool_result,
    unknown_tool_result,
    workflow_tool,
)
from mmserve.http.runtime import ApiRuntime
from mmserve.version import __version__

logger = logging.getLogger(__name__)

#: Where the MCP endpoint is served.
MCP_PATH = "/mcp"

_INSTRUCTIONS = (
    "mmserve runs multimodal workflows (captioning, visual question answering, retrieval, "
    "image generation). Each tool is a workflow: send images as base64 text; images it makes "
    "come back as image content."
)


def mcp_server(runtime: ApiRuntime) -> Server[Any]:
    """The MCP server over ``runtime``'s workflows (tools) and engine."""
    jobs = None if runtime.jobs is None else McpJobs(runtime, runtime.jobs)
    tools = [
        workflow_tool(
            w, side_effects=w.side_effect_steps(runtime.registry), as_job=jobs is not None
        )
        for w in sorted(runtime.workflows.values(), key=lambda w: w.name)
    ]
    if jobs is not None:
        tools.append(job_status_tool())
    server = runtime.config.server

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        workflow = runtime.workflows.get(params.name)
        try:
            if jobs is not None and params.name == JOB_STATUS_TOOL and workflow is None:
                return await jobs.status(params.arguments or {})
            if workflow is None:
                return unknown_tool_result(params.name, list(runtime.workflows))
            if jobs is not None:
                return await jobs.run(workflow, params.arguments or {})
            inputs = await check_inputs(workflow, params.arguments or {}, server.limits)
            result = await runtime.engine.run(workflow, inputs, timeout_s=server.request_timeout_s)
            return await asyncio.to_thread(tool_result, result.outputs)
        except MmserveError as exc:
            return error_result(exc)
        except Exception as exc:  # a bug below: the model still gets an answer it can read
            logger.exception("MCP tool %r failed", params.name)
            return error_result(exc)

    return Server(
        "mmserve",
        version=__version__,
        instructions=_INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


class McpEndpoint:
    """The ASGI app of ``/mcp`` (see the module docs)."""

    def __init__(self, runtime: ApiRuntime) -> None:
        self.server = mcp_server(runtime)
        self.max_body_bytes = runtime.config.server.limits.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = StreamableHTTPSessionManager(
            self.server,
            json_response=True,
            stateless=True,
            max_request_body_size=self.max_body_bytes,
        )
        async with manager.run():
            await manager.handle_request(scope, receive, send)


def mount_mcp(app: FastAPI, runtime: ApiRuntime) -> None:
    """Serve the MCP endpoint of ``runtime`` at ``/mcp`` of ``app``."""
    # a Route (not a Mount): /mcp itself, no redirect to /mcp/, every method to the SDK
    app.router.routes.append(Route(MCP_PATH, McpEndpoint(runtime), include_in_schema=False))


__all__ = ["MCP_PATH", "McpEndpoint", "mcp_server", "mount_mcp"]
