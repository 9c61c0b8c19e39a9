"""Which store replica answers a request's reads: a reader, or the writer (read-your-writes).

With ``store.replicas`` (or ``store.autoscaling``) the served app runs reader replicas beside
the one writer (:mod:`mmserve.serve.store_server`): searches, gets and listings go to the readers,
writes to the writer. How fresh a reader is depends on the store: LanceDB's
``read_consistency_s`` option, 0 by default, makes every read check for the latest version, so
a search after an acknowledged add sees it on any replica. A caller who set a larger interval
(cheaper reads on object storage) and needs one request to see its own writes sends
``x-mmserve-consistency: strong``: that request's store reads then go to the writer, which
always sees its own commits. ``default`` (or no header) keeps the readers.

:class:`ReadConsistency` is a plain ASGI middleware that reads the header into a context
variable for the rest of the request; :func:`reads_go_to_writer` is what the store client asks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

from mmserve.http.middleware.guard import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONSISTENCY_HEADER = "x-mmserve-consistency"
#: The header's values: ``strong`` sends the request's store reads to the writer.
CONSISTENCY_LEVELS = ("default", "strong")
_HEADER = CONSISTENCY_HEADER.encode()

_to_writer: ContextVar[bool] = ContextVar("mmserve_reads_to_writer", default=False)


def reads_go_to_writer() -> bool:
    """Whether the current request asked for read-your-writes (``strong``)."""
    return _to_writer.get()


class ReadConsistency:
    """ASGI middleware: ``x-mmserve-consistency`` -> where this request's store reads go."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers", []) if k.lower() == _HEADER), None)
        level = (raw or b"default").decode("latin-1").strip().lower()
        if level not in CONSISTENCY_LEVELS:
            request_id = str(scope.get("state", {}).get("request_id", ""))
            message = (
                f"{CONSISTENCY_HEADER} must be one of {', '.join(CONSISTENCY_LEVELS)}, "
                f"not {level[:40]!r}"
            )
            body = error_body("invalid_request", message, request_id)
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        token = _to_writer.set(level == "strong")
        try:
            await self.app(scope, receive, send)
        finally:
            _to_writer.reset(token)


__all__ = [
    "CONSISTENCY_HEADER",
    "CONSISTENCY_LEVELS",
    "ReadConsistency",
    "reads_go_to_writer",
]
