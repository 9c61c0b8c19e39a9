"""Streamed runs: ``POST /v1/workflows/{name}/run`` with ``Accept: text/event-stream``.

The answer is Server-Sent Events, one per engine event (:mod:`mmserve.workflow.run.events`)::

    event: step_started
    data: {"type":"step_started","step":"caption","uses":"caption"}

    event: step_finished
    data: {"type":"step_finished","step":"caption","entry":{...one trace entry...}}

then exactly one of ``result`` (the body of the JSON answer: outputs, trace, request_id) or
``error`` (the body of the JSON error answer, ``{"error": {"code", "message", "request_id",
"trace"}}``, with its HTTP ``status`` added, since the stream's own status is already 200).

A request the run refuses before its first step starts (a bad input) gets the plain JSON error
answer with its 4xx status instead, like an unstreamed run. While a slow step runs, a
comment line keeps the connection alive. A client that disconnects cancels the run: Starlette
stops the stream when the ASGI server reports the disconnect (Ray Serve cancels the request),
and the stream cancels the run's task, which cancels its running steps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse

from mmserve.http.error_answers import error_event_body
from mmserve.workflow import RunResult
from mmserve.workflow.run.events import EventHook, ItemProgress, StepFinished, StepStarted

EVENT_STREAM = "text/event-stream"
#: Seconds without an event after which a comment line is sent (proxies close idle streams).
KEEPALIVE_S = 15.0
_KEEPALIVE = b": keep-alive\n\n"

Event = StepStarted | StepFinished | ItemProgress
R = TypeVar("R")
E = TypeVar("E")

#: The 200 answer's event-stream form, for the OpenAPI document of the run operation.
EVENT_STREAM_RESPONSE: dict[str, Any] = {
    "description": "With `Accept: text/event-stream`: Server-Sent Events. `step_started` "
    "({step, uses}), `step_finished` ({step, entry: a trace entry}) and, for for_each steps, "
    "`item_progress` ({step, index, status, done, total}); then `result` (the JSON answer's "
    "body) or `error` (the JSON error answer's body, with `status` in `error`). Bad inputs "
    "are refused before the stream starts, with the usual JSON error and status.",
    "schema": {"type": "string"},
    "example": 'event: step_started\ndata: {"type":"step_started","step":"caption",'
    '"uses":"caption"}\n\n',
}


def wants_event_stream(request: Request) -> bool:
    """Whether the request's Accept header asks for text/event-stream (with q > 0)."""
    for part in request.headers.get("accept", "").split(","):
        kind, *params = (p.strip().lower() for p in part.split(";"))
        if kind == EVENT_STREAM and "q=0" not in params and "q=0.0" not in params:
            return True
    return False


def frame(data: Any, *, event: str | None = None) -> bytes:
    """One Server-Sent Event: its name (an ``event:`` line, when given) and one ``data:`` line
    of compact JSON. The one framing of the API's streams: a run's events here, the chat
    completion chunks of :mod:`mmserve.http.routes.openai` (unnamed, as OpenAI sends them)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    name = "" if event is None else f"event: {event}\n"
    return f"{name}data: {text}\n\n".encode()


class EventFeed(Generic[R, E]):
    """The events of a running task (a workflow run, an agent run), in order, then None when
    it has ended."""

    def __init__(self, task: asyncio.Task[R], queue: asyncio.Queue[E]) -> None:
        self.task, self.queue = task, queue

    async def next(self) -> E | bytes | None:
        """The next event, the keep-alive comment after a quiet while, or None at the end."""
        if not self.queue.empty():
            return self.queue.get_nowait()
        if self.task.done():
            return None
        getter = asyncio.ensure_future(self.queue.get())
        try:
            done, _ = await asyncio.wait(
                {getter, self.task}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not getter.done():
                getter.cancel()
        if getter in done:
            return getter.result()
        return await self.next() if done else _KEEPALIVE

    def stop(self) -> None:
        """Cancel the task; its outcome is consumed, so it logs nothing."""
        self.task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self.task.cancel()

    async def first(self) -> E | None:
        """The first event (keep-alives skipped), or None when the task ended without one;
        raises the task's error when it failed before its first event (the plain JSON answer
        is then the caller's, with its status)."""
        try:
            first = await self.next()
            while isinstance(first, bytes):
                first = await self.next()
        except BaseException:
            self.stop()
            raise
        error = self.task.exception() if first is None else None
        if error is not None:
            raise error
        return first


def event_stream(body: AsyncIterator[bytes]) -> StreamingResponse:
    """The streamed answer: ``body``'s events as they come, never buffered on the way."""
    return StreamingResponse(
        body,
        media_type=EVENT_STREAM,
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def stream_run(
    start: Callable[[EventHook], Awaitable[RunResult]], request_id: str
) -> StreamingResponse:
    """Start the run (``start(hook)``) and answer its events as they come.

    Raises the run's error (for the plain JSON answer) when it fails before any event.
    """
    queue: asyncio.Queue[Event] = asyncio.Queue()

    async def running() -> RunResult:
        return await start(queue.put_nowait)

    events = EventFeed(asyncio.create_task(running()), queue)
    first = await events.first()
    return event_stream(_body(events, first, request_id))


async def _body(
    events: EventFeed[RunResult, Event], first: Event | bytes | None, request_id: str
) -> AsyncIterator[bytes]:
    try:
        event = first
        while event is not None:
            yield (
                event
                if isinstance(event, bytes)
                else frame(event.model_dump(mode="json"), event=event.type)
            )
            event = await events.next()
        try:
            result = events.task.result()
        except Exception as exc:
            yield frame(error_event_body(exc, request_id), event="error")
        else:
            yield frame(
                {**result.model_dump(mode="json"), "request_id": request_id}, event="result"
            )
    finally:
        if not events.task.done():
            events.stop()  # the client went away: stop the run's work


__all__ = [
    "EVENT_STREAM",
    "EVENT_STREAM_RESPONSE",
    "EventFeed",
    "event_stream",
    "frame",
    "stream_run",
    "wants_event_stream",
]
