"""Reading a streamed run (Server-Sent Events) for the clients' ``stream`` methods.

Each ``event:``/``data:`` block becomes a typed run event (:mod:`mmserve.client.events`, the
wire format the engine emits: :class:`StepStarted`, :class:`StepFinished`,
:class:`ItemProgress`), the ``result`` event a :class:`~mmserve.client.requests.RunResult`
(the same type ``run`` returns), and the ``error`` event is raised as the
:class:`~mmserve.client.errors.ApiError` subclass its status calls for. Events of a kind this
client does not know (from a newer server) are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeAlias

import httpx

from mmserve.client.errors import ApiError, ApiServerError
from mmserve.client.events import EVENT_TYPES, RUN_EVENT, ItemProgress, StepFinished, StepStarted
from mmserve.client.requests import RunResult, api_error, result_from_body
from mmserve.client.retry import timed_out

StreamItem: TypeAlias = StepStarted | StepFinished | ItemProgress | RunResult


class SseParser:
    """Server-Sent Events from text lines (without their line ends), one block at a time."""

    def __init__(self) -> None:
        self._name, self._data = "message", list[str]()

    def feed(self, line: str) -> tuple[str, str] | None:
        """Take one line; the (event name, data) of a block when this line ends it."""
        if not line:
            done = (self._name, "\n".join(self._data)) if self._data else None
            self._name, self._data = "message", []
            return done
        if line.startswith(":"):  # a comment: the server's keep-alive
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._name = value
        elif field == "data":
            self._data.append(value)
        return None


def stream_item(name: str, data: str, request_id: str | None) -> StreamItem | None:
    """The typed item of one event, None for an unknown kind; raises an ``error`` event."""
    body: dict[str, Any] = json.loads(data)
    if name == "result":
        return result_from_body(body, request_id)
    if name == "error":
        error = body.get("error", {})
        raise api_error(
            int(error.get("status", 500)),
            str(error.get("code", "http_error")),
            str(error.get("message", "the run failed")),
            error.get("request_id") or request_id,
        )
    if name in EVENT_TYPES:
        return RUN_EVENT.validate_python(body)
    return None


def ended_early(request_id: str | None) -> ApiServerError:
    """The stream closed before its result or error event."""
    return ApiServerError(
        "the event stream ended before the run's result",
        status=502,
        code="stream_ended",
        request_id=request_id,
    )


class RunStream:
    """One streamed run's answer, read line by line by either client: :meth:`feed` a line,
    yield the item it returns (if any), stop once :attr:`finished`; a transport failure, or
    lines that end before the result, become the error :meth:`broken` returns."""

    def __init__(
        self,
        response: httpx.Response,
        decode: Callable[[RunResult], RunResult],
        url: str,
        timeout_s: float | None,
    ) -> None:
        self.request_id = response.headers.get("x-request-id")
        self.finished = False
        self._decode, self._url, self._timeout_s = decode, url, timeout_s
        self._parser = SseParser()

    def feed(self, line: str) -> StreamItem | None:
        """The item a line completes, if any (the result's image outputs decoded)."""
        block = self._parser.feed(line)
        item = stream_item(*block, self.request_id) if block else None
        if isinstance(item, RunResult):
            self.finished = True
            return self._decode(item)
        return item

    def broken(self, exc: httpx.TransportError | None = None) -> ApiError:
        """The error of a stream cut by ``exc`` (or closed, with None) before its result."""
        if isinstance(exc, httpx.ReadTimeout):
            return timed_out(self._url, self._timeout_s)
        return ended_early(self.request_id)


__all__ = ["RunStream", "SseParser", "StreamItem", "ended_early", "stream_item"]
