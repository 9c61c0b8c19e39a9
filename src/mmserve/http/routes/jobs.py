"""The job endpoints: asynchronous runs with ids (docs/jobs.md).

``POST /v1/workflows/{name}/jobs`` takes the body of ``/run`` (JSON with an optional
``webhook``, or multipart) and checks it as ``/run`` does, so a bad input is refused here
(4xx) and never becomes a failed job; it answers ``202`` with the job's id once the job is
kept and queued. ``GET /v1/jobs/{id}``, ``GET /v1/jobs``, ``DELETE /v1/jobs/{id}`` (cancel)
and ``GET /v1/jobs/{id}/events`` (the run's events, replayed from the start, then live) read
and change the job store (:mod:`mmserve.jobs`); a job worker deployment runs the jobs and
calls their webhooks, but for a job cancelled while queued: its webhook is called from here.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mmserve.errors import WorkflowNotFoundError
from mmserve.http.limits import check_inputs
from mmserve.http.run_request import (
    CACHE_PARAMETER,
    TIMEOUT_PARAMETER,
    deadline_s,
    is_json,
    media_type,
    read_json,
    run_inputs,
    unwrapped_inputs,
    use_cache,
)
from mmserve.http.run_stream import KEEPALIVE_S, event_stream, frame
from mmserve.http.runtime import ApiRuntime, request_id_of
from mmserve.jobs.records import JobRecord, JobStatus, job_url
from mmserve.jobs.service import MAX_PAGE, JobService
from mmserve.jobs.webhooks import check_webhook, deliver
from mmserve.workflow import Workflow

#: How often a live event stream looks for new events, in seconds.
EVENTS_POLL_S = 0.2


class JobRequest(BaseModel):
    """A job's JSON body: a run's inputs, and where to report when it finishes."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict)
    webhook: str | None = Field(
        default=None,
        description="A URL to POST the job's final record to, signed (docs/jobs.md); its host "
        "must be in the server's jobs.webhook_allow.",
    )


class JobAccepted(BaseModel):
    id: str
    status: str
    url: str
    request_id: str


class JobPage(BaseModel):
    jobs: list[dict[str, Any]]
    next_cursor: str | None


def caller_of(request: Request) -> str:
    """Who submitted: ``key:<first 8 hex of the key's SHA-256>`` when a key was sent, else
    ``anonymous``."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return "key:" + hashlib.sha256(auth[7:].strip().encode()).hexdigest()[:8]
    return "anonymous"


async def _job_body(
    request: Request, workflow: Workflow, runtime: ApiRuntime
) -> tuple[dict[str, Any], str | None]:
    """The raw inputs and the webhook of a job request."""
    if not is_json(media_type(request)):
        return await run_inputs(request, workflow, runtime.config.server.limits), None
    data = await read_json(request)
    try:
        body = JobRequest.model_validate(data)
    except ValidationError as exc:
        errors = unwrapped_inputs(data, workflow) or exc.errors(include_url=False)
        raise RequestValidationError(errors, body=data) from exc
    return body.inputs, body.webhook


async def queue_workflow_job(
    runtime: ApiRuntime,
    jobs: JobService,
    workflow: Workflow,
    raw: dict[str, Any],
    *,
    caller: str,
    timeout_s: float,
    request_id: str | None = None,
    use_cache: bool = True,
    webhook: str | None = None,
) -> JobRecord:
    """Check ``raw`` as ``/run`` checks its inputs (a bad input is refused here, never a
    failed job), then keep and queue the job of ``workflow`` (the route, MCP's tool calls)."""
    inputs = await check_inputs(workflow, raw, runtime.config.server.limits)
    await runtime.engine.check(workflow, inputs)
    unsafe = workflow.side_effect_steps(runtime.registry)
    record = JobRecord(
        target=workflow.name,
        caller=caller,
        request_id=request_id,
        repeatable=not unsafe,
        side_effects=unsafe,
        timeout_s=timeout_s,
        use_cache=use_cache,
        webhook=webhook,
        steps_total=len(workflow.spec.steps),
    )
    await asyncio.to_thread(jobs.submit, record, raw)
    return record


def job_routes(
    runtime: ApiRuntime, jobs: JobService, responses: dict[int | str, dict[str, Any]]
) -> APIRouter:
    """The ``/v1/jobs`` routes over ``jobs`` (mounted only on a server with job workers: without
    them the paths are 404s)."""
    router = APIRouter(tags=["jobs"], responses=responses)
    server = runtime.config.server
    #: Webhook calls of jobs cancelled while queued, under way (kept from the collector).
    deliveries: set[asyncio.Task[bool]] = set()

    @router.post(
        "/v1/workflows/{name}/jobs",
        status_code=202,
        response_model=JobAccepted,
        openapi_extra={"parameters": [TIMEOUT_PARAMETER, CACHE_PARAMETER]},
    )
    async def submit(name: str, request: Request) -> JSONResponse:
        """Queue a run of the workflow: the same body and checks as ``/run``; ``202`` with
        the job's id and URL once it is kept and queued."""
        workflow = runtime.workflows.get(name)
        if workflow is None:
            raise WorkflowNotFoundError(name=name, known=list(runtime.workflows))
        timeout_s = deadline_s(request, server, ceiling_s=runtime.config.jobs.timeout_s)
        cache = use_cache(request)
        raw, webhook = await _job_body(request, workflow, runtime)
        if webhook is not None:
            check_webhook(webhook, runtime.config.jobs)
        record = await queue_workflow_job(
            runtime,
            jobs,
            workflow,
            raw,
            caller=caller_of(request),
            request_id=request_id_of(request),
            timeout_s=timeout_s,
            use_cache=cache,
            webhook=webhook,
        )
        body = {
            "id": record.id,
            "status": record.status,
            "url": job_url(record.id),
            "request_id": request_id_of(request),
        }
        return JSONResponse(body, status_code=202, headers={"location": job_url(record.id)})

    @router.get("/v1/jobs", response_model=JobPage)
    async def list_jobs(
        status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
        workflow: Annotated[str | None, Query(description="Only jobs of this workflow.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
        cursor: Annotated[
            str | None, Query(description="The previous page's next_cursor: the page after it.")
        ] = None,
    ) -> dict[str, Any]:
        """Jobs, newest first, by status and workflow; ``next_cursor`` pages on. A status
        that is none or a limit out of range is a 422, as a bad query parameter elsewhere."""
        return await asyncio.to_thread(
            jobs.page, status=status, target=workflow, limit=limit, cursor=cursor
        )

    @router.get("/v1/jobs/{job_id}")
    async def get_job(job_id: str, request: Request) -> dict[str, Any]:
        """The job: its status (``queued`` with its position, ``running`` with the steps
        done, ``succeeded`` with outputs and trace as ``/run`` gives them, ``failed`` with
        its error, ``cancelled``, ``expired``)."""
        view = await asyncio.to_thread(jobs.view, job_id)
        return {**view, "request_id": request_id_of(request)}

    @router.delete("/v1/jobs/{job_id}")
    async def cancel_job(job_id: str, request: Request) -> dict[str, Any]:
        """Cancel: a queued job never runs; a running job stops at its next step or model
        call (``cancel_requested`` until then). A finished job: 409."""
        record, ended = await asyncio.to_thread(jobs.cancel_record, job_id)
        view = await asyncio.to_thread(jobs.view_of, record)
        if ended and record.webhook is not None:  # a queued job: no worker will call it
            delivery = asyncio.create_task(deliver(record.webhook, view, runtime.config.jobs))
            deliveries.add(delivery)
            delivery.add_done_callback(deliveries.discard)
        return {**view, "request_id": request_id_of(request)}

    @router.get("/v1/jobs/{job_id}/events", response_class=StreamingResponse)
    async def job_events(job_id: str, request: Request) -> StreamingResponse:
        """The run's events as Server-Sent Events, from the start, then live; then
        ``result``, ``error`` or ``cancelled``."""
        await asyncio.to_thread(jobs.record, job_id)  # 404 before the stream starts
        return event_stream(_replay(jobs, job_id, request_id_of(request)))

    return router


async def _replay(jobs: JobService, job_id: str, request_id: str) -> AsyncIterator[bytes]:
    sent, attempt = 0, None
    quiet = 0.0
    while True:
        record = await asyncio.to_thread(jobs.record, job_id)
        if attempt is not None and record.attempt != attempt:
            sent = 0  # run again after its worker died: its events start over
        attempt = record.attempt
        events = await asyncio.to_thread(jobs.events, job_id, sent)
        for event in events:
            yield frame(event, event=str(event.get("type", "event")))
        sent += len(events)
        if record.finished:
            yield _final(jobs, record, request_id)
            return
        quiet = 0.0 if events else quiet + EVENTS_POLL_S
        if quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield b": keep-alive\n\n"
        await asyncio.sleep(EVENTS_POLL_S)


def _final(jobs: JobService, record: JobRecord, request_id: str) -> bytes:
    if record.status == "succeeded":
        view = jobs.view_of(record)
        return frame(
            {"outputs": view["outputs"], "trace": view["trace"], "request_id": request_id},
            event="result",
        )
    if record.status == "failed" and record.error is not None:
        return frame({"error": {**record.error, "request_id": request_id}}, event="error")
    return frame({"id": record.id, "status": record.status}, event=record.status)


__all__ = ["job_routes", "queue_workflow_job"]
