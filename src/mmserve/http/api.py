"""The HTTP API (v1) as a FastAPI app around one workflow engine; no Ray in here.

:func:`create_api` builds the app from an :class:`ApiRuntime` (engine, workflows, a health
probe, the registry). The served ingress (:mod:`mmserve.serve.ingress`) hands it an engine
whose gateway calls Serve deployments; tests can hand it an in-process gateway instead.

Layers, outside in: :class:`~mmserve.http.middleware.guard.Guard` (request id, API key, body size),
the error handlers (every error is ``{"error": {"code", "message", "request_id"}}`` with the
status of the :class:`~mmserve.errors.MmserveError` raised), the routes. Run inputs are
checked against ``server.limits`` (:mod:`mmserve.http.limits`) before the engine sees them.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request, Response

from mmserve.config import ServerConfig
from mmserve.errors import ConfigError, NotReadyError, WorkflowNotFoundError
from mmserve.http.error_answers import ERROR_RESPONSES, error_response, install_error_handlers
from mmserve.http.limits import check_inputs, json_limits
from mmserve.http.mcp.server import mount_mcp
from mmserve.http.middleware.guard import REQUEST_ID_HEADER, Guard
from mmserve.http.middleware.read_routing import ReadConsistency
from mmserve.http.middleware.tracing import trace_requests
from mmserve.http.routes.agents import agent_routes
from mmserve.http.routes.collections import collection_routes
from mmserve.http.routes.items import item_routes
from mmserve.http.routes.jobs import job_routes
from mmserve.http.routes.openai import openai_routes
from mmserve.http.routes.web import web_routes
from mmserve.http.run_request import (
    CACHE_PARAMETER,
    TIMEOUT_PARAMETER,
    deadline_s,
    run_inputs,
    use_cache,
)
from mmserve.http.run_stream import (
    EVENT_STREAM,
    EVENT_STREAM_RESPONSE,
    stream_run,
    wants_event_stream,
)
from mmserve.http.runtime import ApiRuntime, request_id_of
from mmserve.http.schemas.workflows import (
    BrokenPlugin,
    HealthResponse,
    PluginList,
    PluginRecord,
    RunRequest,
    RunResponse,
    WorkflowInfo,
    WorkflowList,
)
from mmserve.registry import PluginInfo, Registry, record_error, step_schemas
from mmserve.version import __version__
from mmserve.workflow import Workflow

_RUN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": RunRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "description": "One part per input, named after it: files for images, "
                    "text for other values (arrays and objects as JSON text).",
                    "additionalProperties": {
                        "anyOf": [{"type": "string"}, {"type": "string", "format": "binary"}]
                    },
                }
            },
        },
    },
    "parameters": [TIMEOUT_PARAMETER, CACHE_PARAMETER],
    "responses": {"200": {"content": {EVENT_STREAM: EVENT_STREAM_RESPONSE}}},
}


def api_key_of(server: ServerConfig) -> str | None:
    """The configured API key, or None when the API is open; fails closed when the variable
    the config names is unset, so a forgotten export never serves an open API."""
    if not server.api_key_env:
        return None
    key = os.environ.get(server.api_key_env, "").strip()
    if not key:
        raise ConfigError(
            f"server.api_key_env names ${server.api_key_env}, but it is unset or empty in the "
            "serving process",
            hint=f"export {server.api_key_env}=<key> before `mmserve serve` (and before Ray "
            "starts, on a cluster), or remove api_key_env",
        )
    return key


def _plugin_records(registry: Registry) -> PluginList:
    """Every plugin's record; one whose record cannot be built (a third-party step whose
    schema cannot be generated) is listed as broken instead of failing the listing."""
    records: list[PluginRecord] = []
    infos = registry.plugins()  # loads the plugins first, recording those that fail
    broken = [BrokenPlugin(name=f.name, origin=f.origin, error=f.reason) for f in registry.failures]
    for info in infos:
        try:
            records.append(_plugin_record(registry, info))
        except Exception as exc:  # third-party code: any failure is that plugin's alone
            broken.append(BrokenPlugin(name=info.name, origin=info.origin, error=record_error(exc)))
    return PluginList(plugins=records, broken=broken)


def _plugin_record(registry: Registry, info: PluginInfo) -> PluginRecord:
    record = PluginRecord(
        kind=info.kind, name=info.name, origin=info.origin, description=info.description
    )
    if "roles" in info.meta:
        record.roles = list(info.meta["roles"])
    if "methods" in info.meta:
        record.methods = dict(info.meta["methods"])
    if info.kind == "step":
        record.inputs, record.outputs = step_schemas(registry.get("step", info.name))
    return record


def _workflow_info(workflow: Workflow, registry: Registry) -> WorkflowInfo:
    unsafe = workflow.side_effect_steps(registry)
    return WorkflowInfo(
        name=workflow.name,
        description=workflow.description or "",
        inputs=workflow.input_schema(),
        outputs=workflow.output_schema(),
        repeatable=not unsafe,
        side_effects=unsafe,
    )


def create_api(runtime: ApiRuntime) -> FastAPI:
    """The v1 HTTP API over ``runtime``."""
    server = runtime.config.server
    app = FastAPI(
        title="mmserve",
        version=__version__,
        description="Multimodal workflows (captioning, VQA, retrieval) over HTTP. With an API "
        "key configured, every endpoint but /v1/health and /v1/ready needs "
        "`Authorization: Bearer KEY`.",
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app, retry_after_s=server.retry_after_s)
    trace_requests(app)  # (when tracing is on) inside the Guard, which settles the request id
    app.add_middleware(ReadConsistency)  # inside Guard (added after it: the outer one)
    app.add_middleware(
        Guard,
        api_key=api_key_of(server),
        max_body_bytes=server.limits.max_body_bytes,
        proxy_echoes_request_id=runtime.behind_serve_proxy,
        json_limits=json_limits(server.limits),
    )

    @app.get("/v1/health", response_model=HealthResponse, tags=["server"])
    async def health() -> HealthResponse:
        """Liveness (this answer) and per-deployment readiness (``ready``)."""
        return await runtime.health()

    @app.get("/v1/ready", response_model=HealthResponse, tags=["server"])
    async def ready() -> HealthResponse:
        """Readiness, for load balancers and probes: 200 once every deployment is ready,
        else 503 (with Retry-After) naming the deployments that are not."""
        health = await runtime.health()
        if not health.ready:
            raise NotReadyError(not_ready_message(health))
        return health

    @app.get("/v1/workflows", response_model=WorkflowList, tags=["workflows"])
    async def list_workflows() -> WorkflowList:
        """The loaded workflows with the JSON Schemas of their inputs and outputs."""
        ordered = sorted(runtime.workflows.values(), key=lambda w: w.name)
        return WorkflowList(workflows=[_workflow_info(w, runtime.registry) for w in ordered])

    def lookup(name: str) -> Workflow:
        workflow = runtime.workflows.get(name)
        if workflow is None:
            raise WorkflowNotFoundError(name=name, known=list(runtime.workflows))
        return workflow

    @app.get("/v1/workflows/{name}", response_model=WorkflowInfo, tags=["workflows"])
    async def get_workflow(name: str) -> WorkflowInfo:
        """One workflow with its input and output schemas."""
        return _workflow_info(lookup(name), runtime.registry)

    @app.post(
        "/v1/workflows/{name}/run",
        response_model=RunResponse,
        tags=["workflows"],
        openapi_extra=_RUN_BODY,
    )
    async def run_workflow(name: str, request: Request) -> dict[str, Any] | Response:
        """Run a workflow: JSON ``{"inputs": {...}}`` with images as base64 text, or a
        multipart upload with one part per input. Returns the outputs and the trace, or
        with ``Accept: text/event-stream`` streams step events, then the result."""
        workflow = lookup(name)
        timeout_s = deadline_s(request, server)
        cache = use_cache(request)
        raw = await run_inputs(request, workflow, server.limits)
        inputs = await check_inputs(workflow, raw, server.limits)
        if wants_event_stream(request):
            return await stream_run(
                lambda hook: runtime.engine.run(
                    workflow, inputs, timeout_s=timeout_s, use_cache=cache, on_event=hook
                ),
                request_id_of(request),
            )
        result = await runtime.engine.run(workflow, inputs, timeout_s=timeout_s, use_cache=cache)
        return {**result.model_dump(mode="json"), "request_id": request_id_of(request)}

    _include_routes(app, runtime)

    if server.web:
        app.include_router(web_routes())

    @app.get("/v1/plugins", response_model=PluginList, tags=["server"])
    async def plugins() -> PluginList:
        """Every registered plugin (steps with their schemas) and the ones that failed."""
        return _plugin_records(runtime.registry)

    return app


def _include_routes(app: FastAPI, runtime: ApiRuntime) -> None:
    """The routes of the other surfaces (collections, items, agents, jobs, OpenAI, MCP)."""
    app.include_router(collection_routes(runtime, ERROR_RESPONSES))
    app.include_router(item_routes(runtime, ERROR_RESPONSES))
    app.include_router(agent_routes(runtime, ERROR_RESPONSES))
    if runtime.jobs is not None:  # a server with job workers (served, jobs.enabled)
        app.include_router(job_routes(runtime, runtime.jobs, ERROR_RESPONSES))
    app.include_router(openai_routes(runtime, ERROR_RESPONSES))
    mount_mcp(app, runtime)


def not_ready_message(health: HealthResponse) -> str:
    """What keeps the app from being ready, e.g. ``captioner starting (0 replicas)``."""
    waiting = [
        f"{name} {d.status.lower()} ({d.replicas} replica{'s' if d.replicas != 1 else ''})"
        for name, d in sorted(health.deployments.items())
        if not d.ready
    ]
    detail = ", ".join(waiting) or "the app is not deployed yet"
    return f"not ready ({health.status}): {detail}"


async def always_ready() -> HealthResponse:
    """The health of an in-process runtime: there is nothing to wait for."""
    return HealthResponse(status="ok", ready=True)


__all__ = [
    "REQUEST_ID_HEADER",
    "ApiRuntime",
    "always_ready",
    "api_key_of",
    "create_api",
    "error_response",
    "not_ready_message",
]
