"""Every failure of a request as one JSON error answer with the fitting status.

``{"error": {"code", "message", "request_id"}}``: an :class:`~mmserve.errors.MmserveError`
gives its own ``status`` and ``code``; a body FastAPI cannot parse is 400 (not JSON), 415
(not a JSON content type) or 422 (the wrong shape, naming the fields); an unknown path 404;
anything unexpected 500 with no internals (the traceback goes to the server log).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmserve.errors import MmserveError
from mmserve.http.middleware.guard import error_body
from mmserve.http.run_request import is_json, media_type
from mmserve.http.runtime import request_id_of
from mmserve.http.schemas.workflows import ErrorResponse
from mmserve.workflow import trace_of
from mmserve.workflow.run.result import failure_of

logger = logging.getLogger(__name__)

#: The error answers any route may give; documented on every operation of the OpenAPI.
ERROR_STATUSES = (400, 401, 404, 405, 413, 415, 422, 500, 502, 503, 504)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in ERROR_STATUSES
}
#: Retry-After of 503 answers when the app sets none.
RETRY_AFTER_S = 1


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    retry_after_s: int = RETRY_AFTER_S,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """The JSON error answer; a 503 says when to retry."""
    request_id = request_id_of(request)
    # the x-request-id header itself is set once, by the Guard (or Serve's proxy)
    all_headers = dict(headers or {})
    if status == 503:
        all_headers["retry-after"] = str(retry_after_s)
    return Response(
        error_body(code, message, request_id, extra=extra),
        status_code=status,
        headers=all_headers,
        media_type="application/json",
    )


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        problems.append(f"{where}: {err.get('msg')}")
    return "; ".join(problems) or "invalid request"


def error_event_body(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The body of the error answer ``exc`` would get, with its ``status`` added: what a
    streamed run sends as its ``error`` event once the 200 has gone out."""
    if not isinstance(exc, MmserveError):
        logger.error("unexpected error (request %s)", request_id, exc_info=exc)
    failure = failure_of(exc)
    error: dict[str, Any] = {
        "code": failure["code"],
        "message": failure["message"],
        "request_id": request_id,
        "status": failure["status"],
    }
    if "trace" in failure:
        error["trace"] = failure["trace"]
    return {"error": error}


def install_error_handlers(app: FastAPI, *, retry_after_s: int = RETRY_AFTER_S) -> None:
    """Route every exception of ``app`` to one JSON error answer."""

    async def on_mmserve_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MmserveError)
        trace = trace_of(exc)
        extra = {"trace": [e.model_dump(mode="json") for e in trace]} if trace else None
        return error_response(
            request, exc.status, exc.code, str(exc), retry_after_s=retry_after_s, extra=extra
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        kinds = {err.get("type") for err in exc.errors()}
        kind = media_type(request)
        if "json_invalid" in kinds:
            message = f"the body is not valid JSON ({_validation_message(exc)})"
            return error_response(request, 400, "invalid_request", message)
        if request.method == "POST" and kind and not is_json(kind):
            message = f"content type {kind!r} is not accepted here; send application/json"
            return error_response(request, 415, "unsupported_media_type", message)
        return error_response(request, 422, "invalid_request", _validation_message(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(
            request, exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {})
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Logged with its traceback for the operator; the caller gets no internals.
        logger.exception("unexpected error (request %s)", request_id_of(request))
        message = f"internal error ({type(exc).__name__}); the server log has the details"
        return error_response(request, 500, "internal_error", message)

    app.add_exception_handler(MmserveError, on_mmserve_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


__all__ = [
    "ERROR_RESPONSES",
    "ERROR_STATUSES",
    "error_event_body",
    "error_response",
    "install_error_handlers",
]
