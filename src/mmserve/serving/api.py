"""The HTTP API (v1) as a FastAPI app around one workflow engine; no Ray in here.

:func:`create_api` builds the app from an :class:`ApiRuntime` (engine, workflows, a health
probe, the registry). The served ingress (:mod:`mmserve.serving.ingress`) hands it an engine
whose gateway calls Serve deployments; tests can hand it an in-process gateway instead.

Every answer carries an ``x-request-id`` header (the caller's, when it sent a sane one), and
every error is ``{"error": {"code", "message", "request_id"}}`` with the status of the
:class:`~mmserve.errors.MmserveError` subclass raised.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmserve import __version__
from mmserve.config import AppConfig
from mmserve.errors import MmserveError, WorkflowNotFoundError
from mmserve.registry import Registry
from mmserve.serving.schemas import (
    BrokenPlugin,
    ErrorResponse,
    HealthResponse,
    PluginList,
    PluginRecord,
    RunRequest,
    RunResponse,
    WorkflowInfo,
    WorkflowList,
)
from mmserve.workflow import Engine, Workflow

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (404, 413, 422, 500, 503, 504)
}


@dataclass
class ApiRuntime:
    """What the API serves: the engine, its workflows, a health probe and the registry."""

    config: AppConfig
    engine: Engine
    workflows: Mapping[str, Workflow]
    health: Callable[[], Awaitable[HealthResponse]]
    registry: Registry


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "-")


#: Seconds a client should wait before retrying a 503 (overload, replicas restarting).
RETRY_AFTER_S = 1


def error_response(request: Request, status: int, code: str, message: str) -> JSONResponse:
    request_id = request_id_of(request)
    body = {"error": {"code": code, "message": message, "request_id": request_id}}
    headers = {REQUEST_ID_HEADER: request_id}
    if status == 503:
        headers["retry-after"] = str(RETRY_AFTER_S)
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_mmserve_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MmserveError)
        return error_response(request, exc.status, exc.code, str(exc))

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ())) or 'body'}: {err.get('msg')}"
            for err in exc.errors()
        )
        return error_response(request, 422, "invalid_request", problems or "invalid request")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, code, str(exc.detail))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Logged with its traceback for the operator; the caller gets no internals.
        logger.exception("unexpected error (request %s)", request_id_of(request))
        message = f"internal error ({type(exc).__name__}); the server log has the details"
        return error_response(request, 500, "internal_error", message)

    app.add_exception_handler(MmserveError, on_mmserve_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def _plugin_records(registry: Registry) -> PluginList:
    records = []
    for info in registry.plugins():
        record = PluginRecord(
            kind=info.kind, name=info.name, origin=info.origin, description=info.description
        )
        if "roles" in info.meta:
            record.roles = list(info.meta["roles"])
        if info.kind == "step":
            step = registry.get("step", info.name)
            record.inputs = step.Inputs.model_json_schema()
            record.outputs = step.Outputs.model_json_schema()
        records.append(record)
    broken = [BrokenPlugin(name=f.name, origin=f.origin, error=f.reason) for f in registry.failures]
    return PluginList(plugins=records, broken=broken)


def _workflow_info(workflow: Workflow) -> WorkflowInfo:
    return WorkflowInfo(
        name=workflow.name,
        description=workflow.description or "",
        inputs=workflow.input_schema(),
        outputs=workflow.output_schema(),
    )


def create_api(runtime: ApiRuntime) -> FastAPI:
    """The v1 HTTP API over ``runtime``."""
    app = FastAPI(
        title="mmserve",
        version=__version__,
        description="Multimodal workflows (captioning, VQA, retrieval) over HTTP.",
    )
    _install_error_handlers(app)

    @app.middleware("http")
    async def assign_request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request.state.request_id = given if _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
        response = await call_next(request)
        response.headers[REQUEST_ID_HEADER] = request.state.request_id
        return response

    @app.get("/v1/health", response_model=HealthResponse, tags=["server"])
    async def health() -> HealthResponse:
        """Liveness (this answer) and per-deployment readiness (``ready``)."""
        return await runtime.health()

    @app.get("/v1/workflows", response_model=WorkflowList, tags=["workflows"])
    async def list_workflows() -> WorkflowList:
        """The loaded workflows with the JSON Schemas of their inputs and outputs."""
        ordered = sorted(runtime.workflows.values(), key=lambda w: w.name)
        return WorkflowList(workflows=[_workflow_info(w) for w in ordered])

    def lookup(name: str) -> Workflow:
        workflow = runtime.workflows.get(name)
        if workflow is None:
            raise WorkflowNotFoundError(name=name, known=list(runtime.workflows))
        return workflow

    @app.get(
        "/v1/workflows/{name}", response_model=WorkflowInfo, responses=_ERRORS, tags=["workflows"]
    )
    async def get_workflow(name: str) -> WorkflowInfo:
        """One workflow with its input and output schemas."""
        return _workflow_info(lookup(name))

    @app.post(
        "/v1/workflows/{name}/run",
        response_model=RunResponse,
        responses=_ERRORS,
        tags=["workflows"],
    )
    async def run_workflow(name: str, body: RunRequest, request: Request) -> dict[str, Any]:
        """Run a workflow; images are sent as base64 text. Returns outputs and the trace."""
        workflow = lookup(name)
        result = await runtime.engine.run(
            workflow, body.inputs, timeout_s=runtime.config.server.request_timeout_s
        )
        return {**result.model_dump(mode="json"), "request_id": request_id_of(request)}

    @app.get("/v1/plugins", response_model=PluginList, tags=["server"])
    async def plugins() -> PluginList:
        """Every registered plugin (steps with their schemas) and the ones that failed."""
        return _plugin_records(runtime.registry)

    return app


async def always_ready() -> HealthResponse:
    """The health of an in-process runtime: there is nothing to wait for."""
    return HealthResponse(status="ok", ready=True)


__all__ = ["REQUEST_ID_HEADER", "ApiRuntime", "always_ready", "create_api", "error_response"]
