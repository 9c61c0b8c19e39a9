"""MCP tool calls as jobs, on a server with job workers (see :mod:`mmserve.http.mcp.server`).

A workflow tool's call is submitted as a job (checked as ``POST /v1/workflows/{name}/jobs``
checks it) and waited for up to ``server.request_timeout_s``: a job that ends in time
answers as the run would (its stored outputs, images decoded back by the workflow's output
schema); one that is still queued or running answers its id, and ``job_status`` answers it
later. A slow tool therefore never dies at the deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mcp import types

from mmserve.http.mcp.tools import job_waiting_result, outputs_from_json, tool_result
from mmserve.http.routes.jobs import queue_workflow_job
from mmserve.http.runtime import ApiRuntime
from mmserve.jobs.service import JobService
from mmserve.workflow import Workflow

#: How often a tool call run as a job looks at it, in seconds.
JOB_POLL_S = 0.1


class McpJobs:
    """Tool calls as jobs of ``jobs``, on ``runtime``'s workflows."""

    def __init__(self, runtime: ApiRuntime, jobs: JobService) -> None:
        self.runtime, self.jobs = runtime, jobs

    async def answer(self, view: dict[str, Any]) -> types.CallToolResult:
        """The tool result of a job as it stands."""
        if view["status"] == "succeeded":
            workflow = self.runtime.workflows.get(view.get("workflow") or "")
            schema = workflow.output_schema() if workflow is not None else {}
            outputs = outputs_from_json(schema, view.get("outputs") or {})
            return await asyncio.to_thread(tool_result, outputs)
        if view["status"] in ("failed", "cancelled", "expired"):
            error = view.get("error") or {}
            code = error.get("code", view["status"])
            message = error.get("message", f"the job is {view['status']}")
            text = f"{code}: {message} (job {view['id']})"
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=text)], is_error=True
            )
        return job_waiting_result(view)

    async def run(self, workflow: Workflow, arguments: dict[str, Any]) -> types.CallToolResult:
        """Submit the call as a job and answer it, or its id at the deadline."""
        server = self.runtime.config.server
        record = await queue_workflow_job(
            self.runtime,
            self.jobs,
            workflow,
            arguments,
            caller="mcp",
            timeout_s=self.runtime.config.jobs.timeout_s,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + server.request_timeout_s
        while True:
            view = await asyncio.to_thread(self.jobs.view, record.id)
            if view["status"] not in ("queued", "running") or loop.time() >= deadline:
                return await self.answer(view)
            await asyncio.sleep(JOB_POLL_S)

    async def status(self, arguments: dict[str, Any]) -> types.CallToolResult:
        """The ``job_status`` tool."""
        return await self.answer(
            await asyncio.to_thread(self.jobs.view, str(arguments.get("id", "")))
        )


__all__ = ["JOB_POLL_S", "McpJobs"]
