"""``client.submit`` and ``client.jobs``: runs queued on the server as jobs (docs/jobs.md).

A job is a workflow run that does not hold a connection: ``submit`` answers as soon as the
server has kept and queued it, and the job runs on a job worker whether or not anyone waits::

    with Client(url) as client:
        job = client.submit("caption", image="cat.jpg")    # the inputs run() takes
        print(job.id, job.status()["status"])              # queued, running, succeeded, ...
        result = job.result(timeout=600)                   # the RunResult run() gives
        for item in client.jobs.get(job.id).events():      # StepStarted, StepFinished, ...
            print(item)                                    # ... then the RunResult
        client.jobs.list(status="running", workflow="caption")  # views, newest first
        client.jobs.cancel(job.id)                         # or job.cancel()

``result()`` polls the job (every ``poll_s``, growing to 2 s) until it ends: a succeeded
job's outputs come back as :meth:`Client.run <mmserve.client.clients.Client.run>` gives them
(image outputs as PIL images); a failed job raises its error as the
:class:`~mmserve.client.errors.ApiError` subclass its status calls for, as the run would
have (with its ``trace``); a cancelled job raises
:class:`~mmserve.client.errors.JobCancelledError`, an expired one (its outputs removed after
``jobs.retention_s``) :class:`~mmserve.client.errors.JobExpiredError`, and a ``timeout`` that
passes first :class:`~mmserve.client.errors.JobTimeoutError` (the job goes on). An unknown
id is an :class:`~mmserve.client.errors.ApiNotFoundError` (``job_not_found``).

A submit is never sent twice after a connection cut mid-way (it may have been queued: that
would be two jobs); reading a job or the list is. A cancel is not sent again either.

Each call is built once by :class:`~mmserve.client.requests.RequestBuilder`; the classes here
only send it. :class:`Job` and :class:`Jobs` are the synchronous ones, :class:`AsyncJob` and
:class:`AsyncJobs` their awaitable twins (``AsyncClient.submit``, ``AsyncClient.jobs``).
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from mmserve.client.errors import ApiError, JobCancelledError, JobExpiredError, JobTimeoutError
from mmserve.client.requests import (
    AsyncSend,
    RequestBuilder,
    RunResult,
    SyncSend,
    api_error,
    job_path,
    result_from_body,
)
from mmserve.client.stream import RunStream, StreamItem, stream_item

#: A job's statuses once it has ended (``expired``: ended, and its outputs since removed).
FINISHED = frozenset({"succeeded", "failed", "cancelled", "expired"})
#: The longest wait between two polls of :meth:`Job.result` (unless ``poll_s`` is longer).
MAX_POLL_S = 2.0
#: Each poll waits this much longer than the one before, up to :data:`MAX_POLL_S`.
POLL_GROWTH = 1.5
#: The most jobs the server answers in one page of ``GET /v1/jobs``.
MAX_PAGE = 500


def job_outcome(view: dict[str, Any]) -> RunResult | None:
    """A job's result from its view: None while it has not ended, the :class:`RunResult`
    (image outputs still base64) when it has succeeded; raises when it ended without one."""
    status = view["status"]
    if status not in FINISHED:
        return None
    if status == "succeeded":
        body = {
            "outputs": view.get("outputs") or {},
            "trace": view.get("trace") or [],
            "request_id": view.get("request_id"),
        }
        return result_from_body(body, None)
    raise job_failure(view)


def job_failure(view: dict[str, Any]) -> ApiError:
    """The error of a job that ended without a result: its run's error as an error answer
    of the same status would raise it (``failed``), or why there is no result."""
    job_id, request_id = str(view["id"]), view.get("request_id")
    if view["status"] == "cancelled":
        return JobCancelledError(job_id, request_id=request_id)
    if view["status"] == "expired":
        return JobExpiredError(job_id, request_id=request_id)
    error: dict[str, Any] = view.get("error") or {}
    failure = api_error(
        int(error.get("status") or 500),
        str(error.get("code") or "job_failed"),
        str(error.get("message") or f"job {job_id} failed"),
        error.get("request_id") or request_id,
    )
    trace = error.get("trace")
    failure.trace = trace if isinstance(trace, list) else None
    return failure


class Poll:
    """The waits of one ``result()``: ``poll_s``, growing by :data:`POLL_GROWTH` up to
    :data:`MAX_POLL_S`, the last one cut to end at the deadline (where the job is asked once
    more before :class:`JobTimeoutError`)."""

    def __init__(self, job_id: str, timeout: float | None, poll_s: float) -> None:
        self.job_id, self.timeout = job_id, timeout
        self.deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        self.delay = max(poll_s, 0.01)
        self.ceiling = max(poll_s, MAX_POLL_S)

    def wait(self, view: dict[str, Any]) -> float:
        """Seconds to wait before asking again about a job not ended (``view``); raises
        :class:`JobTimeoutError` once the deadline has passed."""
        wait, self.delay = self.delay, min(self.delay * POLL_GROWTH, self.ceiling)
        if self.deadline is None:
            return wait
        left = self.deadline - time.monotonic()
        if left <= 0:
            assert self.timeout is not None
            raise JobTimeoutError(self.job_id, self.timeout, str(view["status"]))
        return min(wait, left)


class JobStream(RunStream):
    """A job's event stream (``GET /v1/jobs/{id}/events``), read as a streamed run's: its
    step events, then the result, or the run's error raised; a ``cancelled`` or ``expired``
    event raises :class:`JobCancelledError` / :class:`JobExpiredError`."""

    def __init__(
        self,
        job_id: str,
        response: httpx.Response,
        decode: Callable[[RunResult], RunResult],
        url: str,
        timeout_s: float | None,
    ) -> None:
        super().__init__(response, decode, url, timeout_s)
        self.job_id = job_id

    def feed(self, line: str) -> StreamItem | None:
        block = self._parser.feed(line)
        if block is None:
            return None
        name, data = block
        if name in ("cancelled", "expired"):
            self.finished = True
            raise job_failure({"id": self.job_id, "status": name, "request_id": self.request_id})
        item = stream_item(name, data, self.request_id)
        if isinstance(item, RunResult):
            self.finished = True
            return self._decode(item)
        return item


class _Listing:
    """The pages of one ``jobs.list``: how many to ask for next, and when to stop."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.jobs: list[dict[str, Any]] = []
        self.cursor: str | None = None

    def size(self) -> int:
        """The ``limit`` of the next page (1 to :data:`MAX_PAGE`, as the server takes it)."""
        return MAX_PAGE if self.limit is None else min(self.limit - len(self.jobs), MAX_PAGE)

    def add(self, page: dict[str, Any]) -> bool:
        """Take a page; True when the list is complete."""
        self.jobs.extend(page["jobs"])
        self.cursor = page.get("next_cursor")
        return self.cursor is None or (self.limit is not None and len(self.jobs) >= self.limit)


class Job:
    """One job of a server (:meth:`Client.submit <mmserve.client.clients.Client.submit>`,
    ``client.jobs.get(id)``): its ``id``, its ``url`` (the server's address of the job), and
    the ``workflow`` it runs (None for an agent's job)."""

    def __init__(
        self,
        send: SyncSend,
        calls: RequestBuilder,
        job_id: str,
        *,
        workflow: str | None,
        base_url: str,
        timeout_s: float | None,
    ) -> None:
        self._send, self._calls = send, calls
        self._base_url, self._timeout_s = base_url, timeout_s
        self.id = job_id
        self.workflow = workflow
        self.url = base_url + job_path(job_id)

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, workflow={self.workflow!r})"

    def status(self) -> dict[str, Any]:
        """The job's view (``GET /v1/jobs/{id}``): ``status``, ``position`` while queued,
        ``steps_done``/``steps_total``, times, ``error``, and once it has succeeded its
        ``outputs`` and ``trace`` as the server sent them (images as base64 PNG)."""
        return self._send(self._calls.job(self.id))

    def result(self, timeout: float | None = None, poll_s: float = 0.5) -> RunResult:
        """Wait for the job to end (polling every ``poll_s``, growing to 2 s) and return its
        :class:`RunResult` as :meth:`Client.run` would (image outputs as PIL images). Raises
        the run's :class:`~mmserve.client.errors.ApiError` if it failed,
        :class:`~mmserve.client.errors.JobCancelledError` /
        :class:`~mmserve.client.errors.JobExpiredError` if it has no result, and
        :class:`~mmserve.client.errors.JobTimeoutError` once ``timeout`` seconds have
        passed (None: wait as long as it takes)."""
        poll = Poll(self.id, timeout, poll_s)
        while True:
            view = self.status()
            result = job_outcome(view)
            if result is not None:
                self._learn()
                return self._decode(result)
            time.sleep(poll.wait(view))

    def cancel(self) -> dict[str, Any]:
        """Cancel the job: a queued job is ``cancelled`` at once and never runs; a running
        one gets ``cancel_requested`` and stops at its next step. Returns the job's view;
        an ended job raises :class:`~mmserve.client.errors.ApiError` (409 ``job_finished``)."""
        return self._send(self._calls.cancel_job(self.id))

    def events(self) -> Iterator[StreamItem]:
        """The job's progress, from its start (replayed) and then live, as
        :meth:`Client.stream` yields a run's: ``StepStarted``, ``StepFinished`` (and
        ``ItemProgress``) per step, then the :class:`RunResult`; raises as :meth:`result`
        does for a job that fails or is cancelled."""
        self._learn()
        response = self._send(self._calls.job_events(self.id))
        stream = JobStream(self.id, response, self._decode, self._base_url, self._timeout_s)
        try:
            for line in response.iter_lines():
                item = stream.feed(line)
                if item is not None:
                    yield item
                if stream.finished:
                    return
        except httpx.TransportError as exc:
            raise stream.broken(exc) from exc
        finally:
            response.close()
        raise stream.broken()

    def _learn(self) -> None:
        """Read the server's workflows (their output schemas) unless the client has."""
        if self.workflow is not None and not self._calls.knows(self.workflow):
            self._send(self._calls.workflows())

    def _decode(self, result: RunResult) -> RunResult:
        return result if self.workflow is None else self._calls.decoded(self.workflow, result)


class Jobs:
    """The job endpoints, synchronously (``client.jobs``)."""

    def __init__(
        self, send: SyncSend, calls: RequestBuilder, base_url: str, timeout_s: float | None
    ) -> None:
        self._send, self._calls = send, calls
        self._base_url, self._timeout_s = base_url, timeout_s

    def submit(self, workflow: str, /, *, webhook: str | None = None, **inputs: Any) -> Job:
        """What :meth:`Client.submit <mmserve.client.clients.Client.submit>` does."""
        if not self._calls.knows(workflow):
            self._send(self._calls.workflows())
        accepted = self._send(self._calls.submit(workflow, inputs, webhook=webhook))
        return self._job(str(accepted["id"]), workflow)

    def get(self, job_id: str) -> Job:
        """The job ``job_id`` (asked of the server: an unknown id raises
        :class:`~mmserve.client.errors.ApiNotFoundError`, code ``job_not_found``)."""
        view = self._send(self._calls.job(job_id))
        return self._job(str(view["id"]), view.get("workflow"))

    def list(
        self, *, status: str | None = None, workflow: str | None = None, limit: int | None = 50
    ) -> builtins.list[dict[str, Any]]:
        """The newest ``limit`` jobs (None: every job), newest first, of that ``status`` and
        ``workflow`` if given: their views without outputs and trace. Fetched when called,
        following the server's pages (``next_cursor``) until ``limit`` or the last."""
        listing = _Listing(limit)
        while True:
            call = self._calls.jobs(
                status=status, workflow=workflow, limit=listing.size(), cursor=listing.cursor
            )
            if listing.add(self._send(call)):
                return listing.jobs

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel the job ``job_id`` (:meth:`Job.cancel`)."""
        return self._send(self._calls.cancel_job(job_id))

    def _job(self, job_id: str, workflow: str | None) -> Job:
        return Job(
            self._send,
            self._calls,
            job_id,
            workflow=workflow,
            base_url=self._base_url,
            timeout_s=self._timeout_s,
        )


class AsyncJob:
    """The awaitable twin of :class:`Job` (``AsyncClient.submit``, ``AsyncClient.jobs``)."""

    def __init__(
        self,
        send: AsyncSend,
        calls: RequestBuilder,
        job_id: str,
        *,
        workflow: str | None,
        base_url: str,
        timeout_s: float | None,
    ) -> None:
        self._send, self._calls = send, calls
        self._base_url, self._timeout_s = base_url, timeout_s
        self.id = job_id
        self.workflow = workflow
        self.url = base_url + job_path(job_id)

    def __repr__(self) -> str:
        return f"AsyncJob(id={self.id!r}, workflow={self.workflow!r})"

    async def status(self) -> dict[str, Any]:
        return await self._send(self._calls.job(self.id))

    async def result(self, timeout: float | None = None, poll_s: float = 0.5) -> RunResult:
        poll = Poll(self.id, timeout, poll_s)
        while True:
            view = await self.status()
            result = job_outcome(view)
            if result is not None:
                await self._learn()
                return self._decode(result)
            await asyncio.sleep(poll.wait(view))

    async def cancel(self) -> dict[str, Any]:
        return await self._send(self._calls.cancel_job(self.id))

    async def events(self) -> AsyncIterator[StreamItem]:
        """The async twin of :meth:`Job.events` (an async generator)."""
        await self._learn()
        response = await self._send(self._calls.job_events(self.id))
        stream = JobStream(self.id, response, self._decode, self._base_url, self._timeout_s)
        try:
            async for line in response.aiter_lines():
                item = stream.feed(line)
                if item is not None:
                    yield item
                if stream.finished:
                    return
        except httpx.TransportError as exc:
            raise stream.broken(exc) from exc
        finally:
            await response.aclose()
        raise stream.broken()

    async def _learn(self) -> None:
        if self.workflow is not None and not self._calls.knows(self.workflow):
            await self._send(self._calls.workflows())

    def _decode(self, result: RunResult) -> RunResult:
        return result if self.workflow is None else self._calls.decoded(self.workflow, result)


class AsyncJobs:
    """The job endpoints, awaitable (the same methods as :class:`Jobs`)."""

    def __init__(
        self, send: AsyncSend, calls: RequestBuilder, base_url: str, timeout_s: float | None
    ) -> None:
        self._send, self._calls = send, calls
        self._base_url, self._timeout_s = base_url, timeout_s

    async def submit(
        self, workflow: str, /, *, webhook: str | None = None, **inputs: Any
    ) -> AsyncJob:
        if not self._calls.knows(workflow):
            await self._send(self._calls.workflows())
        accepted = await self._send(self._calls.submit(workflow, inputs, webhook=webhook))
        return self._job(str(accepted["id"]), workflow)

    async def get(self, job_id: str) -> AsyncJob:
        view = await self._send(self._calls.job(job_id))
        return self._job(str(view["id"]), view.get("workflow"))

    async def list(
        self, *, status: str | None = None, workflow: str | None = None, limit: int | None = 50
    ) -> builtins.list[dict[str, Any]]:
        listing = _Listing(limit)
        while True:
            call = self._calls.jobs(
                status=status, workflow=workflow, limit=listing.size(), cursor=listing.cursor
            )
            if listing.add(await self._send(call)):
                return listing.jobs

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return await self._send(self._calls.cancel_job(job_id))

    def _job(self, job_id: str, workflow: str | None) -> AsyncJob:
        return AsyncJob(
            self._send,
            self._calls,
            job_id,
            workflow=workflow,
            base_url=self._base_url,
            timeout_s=self._timeout_s,
        )


__all__ = [
    "FINISHED",
    "MAX_PAGE",
    "MAX_POLL_S",
    "AsyncJob",
    "AsyncJobs",
    "Job",
    "JobStream",
    "Jobs",
    "Poll",
    "job_failure",
    "job_outcome",
]
