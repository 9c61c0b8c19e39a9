"""Python clients for an mmserve server: :class:`Client` (sync) and :class:`AsyncClient`.

Quick start::

    from mmserve import Client
    with Client("http://127.0.0.1:8000") as client:
        result = client.run("caption", image="cat.jpg")   # a path, bytes or a PIL image
        print(result.outputs["caption"], result.trace)
        image = client.run("generate", prompt="a red circle").outputs["image"]  # a PIL image
        job = client.submit("caption", image="cat.jpg")   # queued on the server: a Job
        print(job.result(timeout=600).outputs)             # waits; the RunResult run() gives

Server errors are raised as :class:`~mmserve.client.errors.ApiError` subclasses carrying the
server's ``code``, ``message``, ``status`` and ``request_id``. Requests are sent again (with
backoff) only where that is safe (:mod:`mmserve.client.retry`): a connection that could not be
made is retried for ``RetryPolicy.budget_s`` (30 s: a proxy or ingress restart); a request cut
mid-way (connection reset, a proxy's plain 5xx) only when repeating it is safe, which for a
workflow run the server's listing says (``repeatable``); else
:class:`~mmserve.client.errors.RequestInterruptedError`. The API key comes from ``api_key=`` or the
``MMSERVE_API_KEY`` environment variable. ``submit`` queues a run as a job instead
(:mod:`mmserve.client.jobs`: ``client.jobs``).

Each API call is written once, as a :class:`~mmserve.client.requests.Call` built by
:class:`~mmserve.client.requests.RequestBuilder`; the two classes here only send calls, one
with ``httpx.Client``, the other awaiting ``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from mmserve.client.agents import Agents, AsyncAgents
from mmserve.client.collections import AsyncCollections, Collections
from mmserve.client.jobs import AsyncJob, AsyncJobs, Job, Jobs
from mmserve.client.requests import (
    CACHE_HEADER,
    DEFAULT_URL,
    TIMEOUT_HEADER,
    Call,
    RequestBuilder,
    RunResult,
    client_headers,
    raise_for_error,
)
from mmserve.client.retry import Attempts, RetryPolicy, repeat_blocker
from mmserve.client.stream import RunStream, StreamItem

T = TypeVar("T")


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
        headers = client_headers(api_key, deadline_s=deadline_s, use_cache=use_cache)
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self._calls = RequestBuilder()
        #: The server's collections: ``list()``, ``get(name)``, ``add(...)``, ``search(...)``,
        #: and browsing them: ``items(name, offset=, limit=)``, ``image(name, item_id)``.
        self.collections = Collections(self._send, self._calls)
        #: The server's agents: ``list()``, ``run(agent, messages, images=...)``.
        self.agents = Agents(self._send, self._calls)
        #: The server's jobs (:mod:`mmserve.client.jobs`): ``get(id)`` (a :class:`Job`),
        #: ``list(status=, workflow=, limit=)``, ``cancel(id)``; :meth:`submit` makes one.
        self.jobs = Jobs(self._send, self._calls, self.url, self._http.timeout.read)

    def _send(self, call: Call[T]) -> T:
        """Send ``call`` with the retry policy (:mod:`mmserve.client.retry`) and read its
        answer; an error answer is raised as its ``ApiError``."""
        blocker = repeat_blocker(call.method, call.path, self._calls.listing)
        attempts = Attempts(self.retry, self.url, blocker, self._http.timeout.read)
        while True:
            request = self._http.build_request(
                call.method, call.path, json=call.json, headers=call.headers, params=call.params
            )
            try:
                response = self._http.send(request, stream=call.stream)
            except httpx.TransportError as exc:
                time.sleep(attempts.after_error(exc))
                continue
            if call.stream and not response.is_success:
                response.read()
                response.close()
            wait = attempts.after_answer(response)
            if wait is None:
                raise_for_error(response)
                return call.read(response)
            time.sleep(wait)

    def _learn(self, workflow: str) -> None:
        if not self._calls.knows(workflow):
            self.workflows()

    def health(self) -> dict[str, Any]:
        """Liveness and per-deployment readiness."""
        return self._send(self._calls.health())

    def workflows(self) -> list[dict[str, Any]]:
        """The server's workflows with their input and output JSON Schemas."""
        return self._send(self._calls.workflows())

    def plugins(self) -> dict[str, Any]:
        return self._send(self._calls.plugins())

    def run(self, workflow: str, /, **inputs: Any) -> RunResult:
        """Run ``workflow`` with ``inputs``; image inputs may be paths, bytes or PIL images.
        Image outputs come back as PIL images (``result.raw`` keeps the base64 PNG)."""
        self._learn(workflow)
        return self._send(self._calls.run(workflow, inputs))

    def submit(self, workflow: str, /, *, webhook: str | None = None, **inputs: Any) -> Job:
        """Queue a run of ``workflow`` as a job (``POST /v1/workflows/{name}/jobs``) and
        return its :class:`~mmserve.client.jobs.Job` once the server has kept it: the inputs
        are :meth:`run`'s, checked by the server as a run's are (a bad one raises here), and
        ``job.result()`` waits for the same :class:`RunResult`. ``webhook``: a URL the server
        calls when the job ends (its host must be in the server's ``jobs.webhook_allow``);
        an input named ``webhook`` therefore cannot be given here (use the HTTP API). The
        client's ``deadline_s`` is the job's run deadline. Never sent twice after a
        connection cut mid-way (``RequestInterruptedError``: it may have been queued)."""
        return self.jobs.submit(workflow, webhook=webhook, **inputs)

    def stream(self, workflow: str, /, **inputs: Any) -> Iterator[StreamItem]:
        """Run ``workflow`` like :meth:`run`, yielding its progress as it happens: a
        ``StepStarted`` and a ``StepFinished`` (with its trace entry) per step (and
        ``ItemProgress`` for for_each items), then the :class:`RunResult`. A failed run
        raises its :class:`~mmserve.client.errors.ApiError`; closing the generator early
        disconnects, which cancels the run on the server."""
        self._learn(workflow)
        response = self._send(self._calls.stream(workflow, inputs))
        decode = partial(self._calls.decoded, workflow)
        run = RunStream(response, decode, self.url, self._http.timeout.read)
        try:
            for line in response.iter_lines():
                item = run.feed(line)
                if item is not None:
                    yield item
                if run.finished:
                    return
        except httpx.TransportError as exc:
            raise run.broken(exc) from exc
        finally:
            response.close()
        raise run.broken()

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
        """The same settings as :class:`Client`'s."""
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        headers = client_headers(api_key, deadline_s=deadline_s, use_cache=use_cache)
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self._calls = RequestBuilder()
        #: The server's collections: awaitable ``list()``, ``get()``, ``add()``, ``search()``,
        #: ``items()``, ``image()``.
        self.collections = AsyncCollections(self._send, self._calls)
        #: The server's agents: awaitable ``list()``, ``run(...)``.
        self.agents = AsyncAgents(self._send, self._calls)
        #: The server's jobs: awaitable ``get(id)`` (an :class:`AsyncJob`), ``list()``,
        #: ``cancel(id)``.
        self.jobs = AsyncJobs(self._send, self._calls, self.url, self._http.timeout.read)

    async def _send(self, call: Call[T]) -> T:
        """The async twin of :meth:`Client._send`."""
        blocker = repeat_blocker(call.method, call.path, self._calls.listing)
        attempts = Attempts(self.retry, self.url, blocker, self._http.timeout.read)
        while True:
            request = self._http.build_request(
                call.method, call.path, json=call.json, headers=call.headers, params=call.params
            )
            try:
                response = await self._http.send(request, stream=call.stream)
            except httpx.TransportError as exc:
                await asyncio.sleep(attempts.after_error(exc))
                continue
            if call.stream and not response.is_success:
                await response.aread()
                await response.aclose()
            wait = attempts.after_answer(response)
            if wait is None:
                raise_for_error(response)
                return call.read(response)
            await asyncio.sleep(wait)

    async def _learn(self, workflow: str) -> None:
        if not self._calls.knows(workflow):
            await self.workflows()

    async def health(self) -> dict[str, Any]:
        return await self._send(self._calls.health())

    async def workflows(self) -> list[dict[str, Any]]:
        return await self._send(self._calls.workflows())

    async def plugins(self) -> dict[str, Any]:
        return await self._send(self._calls.plugins())

    async def run(self, workflow: str, /, **inputs: Any) -> RunResult:
        await self._learn(workflow)
        return await self._send(self._calls.run(workflow, inputs))

    async def submit(
        self, workflow: str, /, *, webhook: str | None = None, **inputs: Any
    ) -> AsyncJob:
        """The async twin of :meth:`Client.submit`: an :class:`~mmserve.client.jobs.AsyncJob`."""
        return await self.jobs.submit(workflow, webhook=webhook, **inputs)

    async def stream(self, workflow: str, /, **inputs: Any) -> AsyncIterator[StreamItem]:
        """The async twin of :meth:`Client.stream` (an async generator)."""
        await self._learn(workflow)
        response = await self._send(self._calls.stream(workflow, inputs))
        decode = partial(self._calls.decoded, workflow)
        run = RunStream(response, decode, self.url, self._http.timeout.read)
        try:
            async for line in response.aiter_lines():
                item = run.feed(line)
                if item is not None:
                    yield item
                if run.finished:
                    return
        except httpx.TransportError as exc:
            raise run.broken(exc) from exc
        finally:
            await response.aclose()
        raise run.broken()

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


__all__ = [
    "CACHE_HEADER",
    "TIMEOUT_HEADER",
    "AsyncClient",
    "AsyncJob",
    "Client",
    "Job",
    "RetryPolicy",
    "RunResult",
]
