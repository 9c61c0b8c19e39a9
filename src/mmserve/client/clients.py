"""Python clients for an mmserve server: :class:`Client` (sync) and :class:`AsyncClient`.

Quick start::

    from mmserve import Client
    with Client("http://127.0.0.1:8000") as client:
        result = client.run("caption", image="cat.jpg")   # a path, bytes or a PIL image
        print(result.outputs["caption"], result.trace)
        image = client.run("generate", prompt="a red circle").outputs["image"]  # a PIL image

Server errors are raised as :class:`~mmserve.client.errors.ApiError` subclasses carrying the
server's ``code``, ``message``, ``status`` and ``request_id``. Requests are sent again (with
backoff) only where that is safe (:mod:`mmserve.client.retry`): a connection that could not be
made is retried for ``RetryPolicy.budget_s`` (30 s: a proxy or ingress restart); a request cut
mid-way (connection reset, a proxy's plain 5xx) only when repeating it is safe, which for a
workflow run the server's listing says (``repeatable``); else
:class:`~mmserve.client.errors.RequestInterruptedError`. The API key comes from ``api_key=`` or the
``MMSERVE_API_KEY`` environment variable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx

from mmserve.client.agents import Agents, AsyncAgents
from mmserve.client.collections import AsyncCollections, Collections
from mmserve.client.outputs import decode_outputs
from mmserve.client.requests import (
    DEFAULT_URL,
    RetryPolicy,
    RunResult,
    encode_inputs,
    headers_for,
    raise_for_error,
    resolve_api_key,
    run_result,
)
from mmserve.client.retry import Attempts, repeat_blocker, timed_out
from mmserve.client.stream import EVENT_STREAM, SseParser, ended_early, stream_item

if TYPE_CHECKING:
    from mmserve.client.stream import StreamItem


def _outputs_schema(listing: dict[str, dict[str, Any]], workflow: str) -> dict[str, Any] | None:
    """A listed workflow's output JSON Schema (image outputs are decoded by it)."""
    schema: dict[str, Any] | None = listing.get(workflow, {}).get("outputs")
    return schema


#: Request header carrying the caller's deadline (seconds); the server may only shorten it.
TIMEOUT_HEADER = "x-mmserve-timeout-s"
#: Sent as ``bypass`` by a client made with ``use_cache=False``.
CACHE_HEADER = "x-mmserve-cache"


class Client:
    """Synchronous client. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        deadline_s: float | None = None,
        use_cache: bool = True,
    ) -> None:
        """``timeout``: seconds this client waits for an answer; ``deadline_s``: the server
        stops the work after this long and answers 504 (sent as ``x-mmserve-timeout-s``);
        ``retry``: when requests are sent again (:class:`RetryPolicy`, e.g. ``budget_s``).
        ``use_cache=False``: workflows compute their ``cache: true`` steps afresh (sent as
        ``x-mmserve-cache: bypass``)."""
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        headers = headers_for(resolve_api_key(api_key))
        if deadline_s is not None:
            headers[TIMEOUT_HEADER] = f"{deadline_s:g}"
        if not use_cache:
            headers[CACHE_HEADER] = "bypass"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self._schemas: dict[str, dict[str, Any]] = {}
        #: The server's workflows by name: whether a run may be repeated (``repeatable``).
        self._listing: dict[str, dict[str, Any]] = {}
        #: The server's collections: ``list()``, ``get(name)``, ``add(...)``, ``search(...)``.
        self.collections = Collections(self._request)
        #: The server's agents: ``list()``, ``run(agent, messages, images=...)``.
        self.agents = Agents(self._request)

    def _request(
        self, method: str, path: str, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send with the retry policy (:mod:`mmserve.client.retry`); ``stream``: a successful
        answer's body is left unread (the caller reads and closes it), an error answer's is
        read."""
        blocker = repeat_blocker(method, path, self._listing)
        attempts = Attempts(self.retry, self.url, blocker, self._http.timeout.read)
        while True:
            try:
                request = self._http.build_request(method, path, **kwargs)
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                time.sleep(attempts.after_error(exc))
                continue
            if stream and not response.is_success:
                response.read()
                response.close()
            wait = attempts.after_answer(response)
            if wait is None:
                raise_for_error(response)
                return response
            time.sleep(wait)

    def health(self) -> dict[str, Any]:
        """Liveness and per-deployment readiness."""
        body: dict[str, Any] = self._request("GET", "/v1/health").json()
        return body

    def workflows(self) -> list[dict[str, Any]]:
        """The server's workflows with their input and output JSON Schemas."""
        listing: list[dict[str, Any]] = self._request("GET", "/v1/workflows").json()["workflows"]
        self._schemas.update({w["name"]: w["inputs"] for w in listing})
        self._listing.update({w["name"]: w for w in listing})
        return listing

    def plugins(self) -> dict[str, Any]:
        body: dict[str, Any] = self._request("GET", "/v1/plugins").json()
        return body

    def _input_schema(self, workflow: str) -> dict[str, Any] | None:
        if workflow not in self._schemas:
            self.workflows()
        return self._schemas.get(workflow)

    def run(self, workflow: str, /, **inputs: Any) -> RunResult:
        """Run ``workflow`` with ``inputs``; image inputs may be paths, bytes or PIL images.
        Image outputs come back as PIL images (``result.raw`` keeps the base64 PNG)."""
        payload = {"inputs": encode_inputs(inputs, self._input_schema(workflow))}
        response = self._request("POST", f"/v1/workflows/{workflow}/run", json=payload)
        result = run_result(response)
        result.outputs = decode_outputs(result.outputs, _outputs_schema(self._listing, workflow))
        return result

    def stream(self, workflow: str, /, **inputs: Any) -> Iterator[StreamItem]:
        """Run ``workflow`` like :meth:`run`, yielding its progress as it happens: a
        ``StepStarted`` and a ``StepFinished`` (with its trace entry) per step (and
        ``ItemProgress`` for for_each items), then the :class:`RunResult`. A failed run
        raises its :class:`~mmserve.client.errors.ApiError`; closing the generator early
        disconnects, which cancels the run on the server."""
        payload = {"inputs": encode_inputs(inputs, self._input_schema(workflow))}
        path, accept = f"/v1/workflows/{workflow}/run", {"accept": EVENT_STREAM}
        response = self._request("POST", path, stream=True, json=payload, headers=accept)
        request_id = response.headers.get("x-request-id")
        parser = SseParser()
        try:
            for line in response.iter_lines():
                block = parser.feed(line)
                item = stream_item(*block, request_id) if block else None
                if isinstance(item, RunResult):
                    schema = _outputs_schema(self._listing, workflow)
                    item.outputs = decode_outputs(item.outputs, schema)
                if item is not None:
                    yield item
                if isinstance(item, RunResult):
                    return
        except httpx.ReadTimeout as exc:
            raise timed_out(self.url, self._http.timeout.read) from exc
        except httpx.TransportError as exc:
            raise ended_early(request_id) from exc
        finally:
            response.close()
        raise ended_early(request_id)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """The asyncio twin of :class:`Client`: the same methods, awaitable."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        deadline_s: float | None = None,
        use_cache: bool = True,
    ) -> None:
        """``timeout``: seconds this client waits for an answer; ``deadline_s``: the server
        stops the work after this long and answers 504 (sent as ``x-mmserve-timeout-s``);
        ``retry``: when requests are sent again (:class:`RetryPolicy`, e.g. ``budget_s``).
        ``use_cache=False``: workflows compute their ``cache: true`` steps afresh (sent as
        ``x-mmserve-cache: bypass``)."""
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        headers = headers_for(resolve_api_key(api_key))
        if deadline_s is not None:
            headers[TIMEOUT_HEADER] = f"{deadline_s:g}"
        if not use_cache:
            headers[CACHE_HEADER] = "bypass"
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self._schemas: dict[str, dict[str, Any]] = {}
        #: The server's workflows by name: whether a run may be repeated (``repeatable``).
        self._listing: dict[str, dict[str, Any]] = {}
        #: The server's collections: awaitable ``list()``, ``get()``, ``add()``, ``search()``.
        self.collections = AsyncCollections(self._request)
        #: The server's agents: awaitable ``list()``, ``run(...)``.
        self.agents = AsyncAgents(self._request)

    async def _request(
        self, method: str, path: str, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        blocker = repeat_blocker(method, path, self._listing)
        attempts = Attempts(self.retry, self.url, blocker, self._http.timeout.read)
        while True:
            try:
                request = self._http.build_request(method, path, **kwargs)
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                await asyncio.sleep(attempts.after_error(exc))
                continue
            if stream and not response.is_success:
                await response.aread()
                await response.aclose()
            wait = attempts.after_answer(response)
            if wait is None:
                raise_for_error(response)
                return response
            await asyncio.sleep(wait)

    async def health(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self._request("GET", "/v1/health")).json()
        return body

    async def workflows(self) -> list[dict[str, Any]]:
        response = await self._request("GET", "/v1/workflows")
        listing: list[dict[str, Any]] = response.json()["workflows"]
        self._schemas.update({w["name"]: w["inputs"] for w in listing})
        self._listing.update({w["name"]: w for w in listing})
        return listing

    async def plugins(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self._request("GET", "/v1/plugins")).json()
        return body

    async def run(self, workflow: str, /, **inputs: Any) -> RunResult:
        if workflow not in self._schemas:
            await self.workflows()
        payload = {"inputs": encode_inputs(inputs, self._schemas.get(workflow))}
        response = await self._request("POST", f"/v1/workflows/{workflow}/run", json=payload)
        result = run_result(response)
        result.outputs = decode_outputs(result.outputs, _outputs_schema(self._listing, workflow))
        return result

    async def stream(self, workflow: str, /, **inputs: Any) -> AsyncIterator[StreamItem]:
        """The async twin of :meth:`Client.stream` (an async generator)."""
        if workflow not in self._schemas:
            await self.workflows()
        payload = {"inputs": encode_inputs(inputs, self._schemas.get(workflow))}
        path, accept = f"/v1/workflows/{workflow}/run", {"accept": EVENT_STREAM}
        response = await self._request("POST", path, stream=True, json=payload, headers=accept)
        request_id = response.headers.get("x-request-id")
        parser = SseParser()
        try:
            async for line in response.aiter_lines():
                block = parser.feed(line)
                item = stream_item(*block, request_id) if block else None
                if isinstance(item, RunResult):
                    schema = _outputs_schema(self._listing, workflow)
                    item.outputs = decode_outputs(item.outputs, schema)
                if item is not None:
                    yield item
                if isinstance(item, RunResult):
                    return
        except httpx.ReadTimeout as exc:
            raise timed_out(self.url, self._http.timeout.read) from exc
        except httpx.TransportError as exc:
            raise ended_early(request_id) from exc
        finally:
            await response.aclose()
        raise ended_early(request_id)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


__all__ = ["CACHE_HEADER", "TIMEOUT_HEADER", "AsyncClient", "Client", "RetryPolicy", "RunResult"]
