"""The outermost layer of the API: request ids, the API key, and the request-body limit.

A plain ASGI middleware (no ``BaseHTTPMiddleware``), so it can refuse a request before its
body is read and wrap the body as it streams:

* every request gets a request id (the caller's ``x-request-id`` when it is sane, else a new
  one), kept in ``scope["state"]`` and echoed on every response;
* with an API key configured, every path but ``/v1/health``, ``/v1/ready`` and the web
  page's static files (``/`` and ``/web/...``, which hold no secret) needs
  ``Authorization: Bearer KEY`` (compared in constant time), else 401 before anything else happens;
* a ``Content-Length`` over the limit is refused (413) before one body byte is read; a body
  without one (chunked) is counted as it arrives and refused as soon as it passes the limit,
  so memory stays bounded by the limit;
* a JSON body is scanned before anything parses it: nested deeper than
  ``server.limits.max_json_depth`` or with more than ``max_json_nodes`` values it is refused
  (413) by :mod:`mmserve.http.middleware.json_shape`, so no route, validator, pickler or store ever
  walks what the door refused.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mmserve.errors import InputTooLargeError
from mmserve.http.middleware.json_shape import JsonLimits, check_json_shape, surely_within

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "x-request-id"
#: Paths anyone may call, key or not (load balancers and probes need no secret).
PUBLIC_PATHS = frozenset({"/v1/health", "/v1/ready", "/"})
#: The web page's static files (:mod:`mmserve.http.routes.web`), public like ``/``.
WEB_PREFIX = "/web/"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: Bodies scanned in a worker thread rather than on the event loop (~8 ms per MiB).
_SCAN_IN_THREAD_BYTES = 1 << 20


def error_body(
    code: str, message: str, request_id: str, *, extra: dict[str, Any] | None = None
) -> bytes:
    """The JSON of every error answer: ``{"error": {"code", "message", "request_id"}}``
    (plus ``extra`` keys, e.g. the trace of a failed run)."""
    error = {"code": code, "message": message, "request_id": request_id, **(extra or {})}
    return json.dumps({"error": error}).encode()


def is_public(path: str) -> bool:
    """Whether ``path`` is served without the API key (probes and the page's files)."""
    return path in PUBLIC_PATHS or path.startswith(WEB_PREFIX)


class _BodyTooLarge(Exception):
    pass


class Guard:
    """ASGI middleware applying request ids, the API key and the body-size limit."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: str | None,
        max_body_bytes: int,
        proxy_echoes_request_id: bool = False,
        json_limits: JsonLimits | None = None,
    ) -> None:
        """``proxy_echoes_request_id``: behind Ray Serve's proxy, which puts an
        ``x-request-id`` on every request and echoes it on the response itself; this layer
        then adopts that id as is and adds no second header."""
        self.app = app
        self._key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes
        self._echo = not proxy_echoes_request_id
        self.json_limits = json_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        given = headers.get(REQUEST_ID_HEADER, b"").decode("latin-1")
        sane = _SAFE_REQUEST_ID.match(given) or (given and not self._echo)
        request_id = given if sane else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        if self._echo:
            send = _with_request_id(send, request_id)

        if self._key is not None and not is_public(str(scope.get("path", ""))):
            problem = self._auth_problem(headers.get("authorization", b""))
            if problem:
                await _answer(send, 401, "unauthorized", problem, request_id, auth=True)
                return
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _answer(send, 400, "invalid_request", "bad Content-Length", request_id)
                return
            if int(length) > self.max_body_bytes:
                await _answer(send, 413, "body_too_large", self._too_large(int(length)), request_id)
                return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS") or (
            length is not None and not self._scans(headers)
        ):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_counted(receive)
        except _BodyTooLarge:
            await _answer(send, 413, "body_too_large", self._too_large(None), request_id)
            return
        if self._scans(headers):
            problem = await self._json_problem(body)
            if problem:
                await _answer(send, 413, "input_too_large", problem, request_id, read=True)
                return
        await self.app(scope, _replay(body, receive), send)

    def _scans(self, headers: dict[str, bytes]) -> bool:
        """Whether this request's body is JSON to scan for its shape."""
        if self.json_limits is None:
            return False
        kind = headers.get("content-type", b"").partition(b";")[0].strip().lower()
        return kind == b"application/json" or (
            kind.startswith(b"application/") and kind.endswith(b"+json")
        )

    async def _json_problem(self, body: bytes) -> str:
        assert self.json_limits is not None
        if surely_within(body, self.json_limits):  # e.g. a base64 photo: no scan needed
            return ""
        try:
            if len(body) > _SCAN_IN_THREAD_BYTES:
                await asyncio.to_thread(check_json_shape, body, self.json_limits)
            else:
                check_json_shape(body, self.json_limits)
        except InputTooLargeError as exc:
            return str(exc)
        return ""

    def _auth_problem(self, header: bytes) -> str:
        assert self._key is not None
        scheme, _, token = header.partition(b" ")
        if not header:
            return "this server needs an API key: send 'Authorization: Bearer <key>'"
        if scheme.lower() != b"bearer" or not token.strip():
            return "the Authorization header must be 'Bearer <key>'"
        if not hmac.compare_digest(token.strip(), self._key):
            return "the API key is not valid"
        return ""

    def _too_large(self, size: int | None) -> str:
        what = f"{size} bytes" if size is not None else "larger than that"
        return (
            f"the request body is {what}; the limit is {self.max_body_bytes} bytes "
            "(server.limits.max_body_bytes)"
        )

    async def _read_counted(self, receive: Receive) -> bytes:
        """The whole body of a request without Content-Length, refused once over the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # disconnected: the app sees an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _with_request_id(send: Send, request_id: str) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
            ]
            headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
            message["headers"] = headers
        await send(message)

    return sending


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as Starlette does

    return replaying


async def _answer(
    send: Send,
    status: int,
    code: str,
    message: str,
    request_id: str,
    *,
    auth: bool = False,
    read: bool = False,
) -> None:
    """An error answer from this layer; ``read``: the request's body was read whole."""
    body = error_body(code, message, request_id)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if not read:
        # the body was not read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    if auth:
        headers.append((b"www-authenticate", b'Bearer realm="mmserve"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["PUBLIC_PATHS", "REQUEST_ID_HEADER", "Guard", "error_body"]
