"""Python clients for an mmserve server: :class:`Client` (sync) and :class:`AsyncClient`.

Quick start::

    from mmserve import Client
    with Client("http://127.0.0.1:8000") as client:
        result = client.run("caption", image="cat.jpg")   # a path, bytes or a PIL image
        print(result.outputs["caption"], result.trace)

Server errors are raised as :class:`~mmserve.errors.ApiError` subclasses carrying the
server's ``code``, ``message``, ``status`` and ``request_id``. Requests are retried (with
exponential backoff) only where that is safe: when the connection could not be made, and when
the server answered 503 with a Retry-After header. The API key comes from ``api_key=`` or the
``MMSERVE_API_KEY`` environment variable.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any, Self

import httpx

from mmserve.client_base import (
    DEFAULT_URL,
    RetryPolicy,
    RunResult,
    encode_inputs,
    headers_for,
    is_retryable_status,
    raise_for_error,
    resolve_api_key,
    run_result,
)
from mmserve.client_collections import AsyncCollections, Collections
from mmserve.errors import ServerUnreachableError

#: Request header carrying the caller's deadline (seconds); the server may only shorten it.
TIMEOUT_HEADER = "x-mmserve-timeout-s"
#: Sent as ``bypass`` by a client made with ``use_cache=False``.
CACHE_HEADER = "x-mmserve-cache"

_SAFE_TO_RETRY = (httpx.ConnectError, httpx.ConnectTimeout)


def _unreachable(url: str, exc: Exception) -> ServerUnreachableError:
    return ServerUnreachableError(
        f"cannot reach mmserve at {url}: {exc}",
        hint="is `mmserve serve` running there? check the URL and port",
    )


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
        #: The server's collections: ``list()``, ``get(name)``, ``add(...)``, ``search(...)``.
        self.collections = Collections(self._request)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = self._http.request(method, path, **kwargs)
            except _SAFE_TO_RETRY as exc:
                if last:
                    raise _unreachable(self.url, exc) from exc
                time.sleep(self.retry.delay(attempt))
                continue
            except httpx.TransportError as exc:
                raise _unreachable(self.url, exc) from exc
            if is_retryable_status(response) and not last:
                time.sleep(self.retry.delay(attempt, response.headers.get("retry-after")))
                continue
            raise_for_error(response)
            return response
        raise AssertionError("unreachable")  # the loop always returns or raises

    def health(self) -> dict[str, Any]:
        """Liveness and per-deployment readiness."""
        body: dict[str, Any] = self._request("GET", "/v1/health").json()
        return body

    def workflows(self) -> list[dict[str, Any]]:
        """The server's workflows with their input and output JSON Schemas."""
        listing: list[dict[str, Any]] = self._request("GET", "/v1/workflows").json()["workflows"]
        self._schemas.update({w["name"]: w["inputs"] for w in listing})
        return listing

    def plugins(self) -> dict[str, Any]:
        body: dict[str, Any] = self._request("GET", "/v1/plugins").json()
        return body

    def _input_schema(self, workflow: str) -> dict[str, Any] | None:
        if workflow not in self._schemas:
            self.workflows()
        return self._schemas.get(workflow)

    def run(self, workflow: str, /, **inputs: Any) -> RunResult:
        """Run ``workflow`` with ``inputs``; image inputs may be paths, bytes or PIL images."""
        payload = {"inputs": encode_inputs(inputs, self._input_schema(workflow))}
        response = self._request("POST", f"/v1/workflows/{workflow}/run", json=payload)
        return run_result(response)

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
        #: The server's collections: awaitable ``list()``, ``get()``, ``add()``, ``search()``.
        self.collections = AsyncCollections(self._request)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = await self._http.request(method, path, **kwargs)
            except _SAFE_TO_RETRY as exc:
                if last:
                    raise _unreachable(self.url, exc) from exc
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            except httpx.TransportError as exc:
                raise _unreachable(self.url, exc) from exc
            if is_retryable_status(response) and not last:
                await asyncio.sleep(self.retry.delay(attempt, response.headers.get("retry-after")))
                continue
            raise_for_error(response)
            return response
        raise AssertionError("unreachable")

    async def health(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self._request("GET", "/v1/health")).json()
        return body

    async def workflows(self) -> list[dict[str, Any]]:
        response = await self._request("GET", "/v1/workflows")
        listing: list[dict[str, Any]] = response.json()["workflows"]
        self._schemas.update({w["name"]: w["inputs"] for w in listing})
        return listing

    async def plugins(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self._request("GET", "/v1/plugins")).json()
        return body

    async def run(self, workflow: str, /, **inputs: Any) -> RunResult:
        if workflow not in self._schemas:
            await self.workflows()
        payload = {"inputs": encode_inputs(inputs, self._schemas.get(workflow))}
        response = await self._request("POST", f"/v1/workflows/{workflow}/run", json=payload)
        return run_result(response)

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
