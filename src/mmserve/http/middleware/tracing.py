"""The span of each HTTP request to the API (when tracing is on; see :mod:`mmserve.tracing`).

A pure ASGI layer inside the :class:`~mmserve.http.middleware.guard.Guard` (which settles
the request id): it continues the caller's trace when the request has a W3C ``traceparent``
header, puts the request id in the baggage (so every span of the request, in every process,
carries it as ``mmserve.request_id``) and answers in a ``METHOD ROUTE`` span (kind SERVER)
with the status code; a 5xx answer marks it failed.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from opentelemetry import baggage, propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmserve import tracing


class TraceRequests:
    """ASGI middleware: one server span per HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not tracing.enabled():
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope.get("headers", [])
        }
        context = propagate.extract(headers)
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            context = baggage.set_baggage(tracing.REQUEST_ID, str(request_id), context)
        method, path = str(scope.get("method", "")), str(scope.get("path", ""))
        attributes = {"http.request.method": method, "url.path": path}
        with tracing.span(
            f"{method} {path}", attributes, kind=SpanKind.SERVER, context=context
        ) as span:

            async def answer(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
                await send(message)

            try:
                await self.app(scope, receive, answer)
            finally:
                route: Any = scope.get("route")
                if getattr(route, "path", None):
                    span.set_attribute("http.route", route.path)
                    span.update_name(f"{method} {route.path}")


def trace_requests(app: FastAPI) -> None:
    """Add :class:`TraceRequests` to ``app`` when tracing is on (off: nothing is added).
    Called before the Guard is added, so that the Guard runs first."""
    if tracing.enabled():
        app.add_middleware(TraceRequests)


__all__ = ["TraceRequests", "trace_requests"]
