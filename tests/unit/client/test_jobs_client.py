"""``client.submit`` and ``client.jobs`` (sync and async) against the job API in process: a
real job queue (the embedded SQLite broker), a real job worker on fake models, a real HTTP
server; no Ray (tests/unit/jobs_support.py). A job's result is the RunResult the same run
gives; queued and running jobs show their position and steps; cancels, failures, timeouts,
events, lists and unknown ids are what the client module promises."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from api_support import ROOT
from jobs_support import JobsApp, jobs_app, jobs_config
from PIL import Image

import mmserve.client.jobs as jobs_module
from mmserve import (
    ApiError,
    ApiInputError,
    ApiNotFoundError,
    AsyncClient,
    AsyncJob,
    Client,
    ClientTimeoutError,
    Job,
    JobCancelledError,
    JobTimeoutError,
    RunResult,
)
from mmserve.client.events import StepFinished, StepStarted
from mmserve.client.retry import repeat_blocker
from mmserve.models.backends.fake import FAIL_MARKER

pytestmark = pytest.mark.unit

T = TypeVar("T")
RED = ROOT / "examples" / "images" / "red_circle.png"
#: Each fake model call takes this long: slow_chain (three calls) runs for about 0.6 s.
DELAY_MS = 200
ACTIVE = ("queued", "running")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobsApp]:
    """One job at a time, so later submits wait in the queue behind a slow one."""
    config = jobs_config(
        tmp_path_factory.mktemp("jobs-client"),
        delay_ms=DELAY_MS,
        jobs={"max_concurrent_jobs": 1},
    )
    with jobs_app(config) as running:
        yield running


@pytest.fixture
def client(app: JobsApp) -> Iterator[Client]:
    """A client of the app; the queue is left empty for the next test."""
    with Client(app.url, timeout=30) as live:
        yield live
        for view in live.jobs.list(limit=None):
            if view["status"] in ACTIVE:
                with contextlib.suppress(ApiError):  # it ended meanwhile
                    live.jobs.cancel(view["id"])
        wait_for(lambda: not any(v["status"] in ACTIVE for v in live.jobs.list(limit=None)))


def wait_for(check: Callable[[], T], *, timeout_s: float = 20.0) -> T:
    """Poll ``check`` until it answers something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s")
        time.sleep(0.02)


def steps_of(trace: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(entry["step"], entry["status"]) for entry in trace]


def test_a_job_gives_the_result_a_run_gives(client: Client, app: JobsApp) -> None:
    job = client.submit("caption", image=str(RED), prompt="a shape:")
    assert isinstance(job, Job) and job.workflow == "caption"
    assert re.fullmatch(r"[0-9a-f]{32}", job.id)
    assert job.url == f"{app.url}/v1/jobs/{job.id}"
    result = job.result(timeout=20)
    run = client.run("caption", image=RED.read_bytes(), prompt="a shape:")
    assert isinstance(result, RunResult)
    assert result.outputs == run.outputs and result.outputs["caption"].startswith("a shape:")
    assert steps_of(result.trace) == steps_of(run.trace) == [("caption", "ok")]
    assert result.raw["outputs"] == run.raw["outputs"] and result.request_id
    assert job.status()["status"] == "succeeded"
    # a job read back by id is the same job, with the same result
    again = client.jobs.get(job.id)
    assert (again.id, again.workflow) == (job.id, "caption")
    assert again.result().outputs == run.outputs


def test_queued_and_running_jobs_show_position_and_steps_and_a_queued_cancel_never_runs(
    client: Client,
) -> None:
    jobs = [client.submit("slow_chain", image=RED) for _ in range(4)]
    first = wait_for(lambda: (v := jobs[0].status())["steps_done"] >= 1 and v)
    assert first["status"] == "running" and first["steps_total"] == 3
    assert first["started_at"] is not None and first["position"] is None
    waiting = [job.status() for job in jobs[1:]]
    assert [v["status"] for v in waiting] == ["queued"] * 3
    assert [v["position"] for v in waiting] == [0, 1, 2]
    assert all(v["steps_done"] == 0 and v["started_at"] is None for v in waiting)

    last = jobs[-1]
    cancelled = last.cancel()
    assert cancelled["status"] == "cancelled" and cancelled["id"] == last.id
    with pytest.raises(JobCancelledError) as raised:
        last.result(timeout=5)
    assert raised.value.status == 409 and raised.value.code == "job_cancelled"
    assert raised.value.job_id == last.id and last.id in str(raised.value)
    with pytest.raises(ApiError) as again:
        client.jobs.cancel(last.id)  # it has ended: nothing to cancel
    assert again.value.status == 409 and again.value.code == "job_finished"

    assert jobs[1].result(timeout=20).outputs["caption"]  # the queue goes on past it
    view = last.status()
    assert view["status"] == "cancelled" and view["started_at"] is None
    assert view["steps_done"] == 0 and view["error"] is None


def test_a_running_job_cancelled_ends_cancelled(client: Client) -> None:
    job = client.submit("slow_chain", image=RED)
    wait_for(lambda: job.status()["status"] == "running")
    asked = job.cancel()
    assert asked["status"] in ("running", "cancelled") and asked["cancel_requested"] is True
    with pytest.raises(JobCancelledError):
        job.result(timeout=10)
    view = job.status()
    assert view["status"] == "cancelled" and view["steps_done"] < 3


def test_result_gives_up_after_its_timeout_and_the_job_goes_on(client: Client) -> None:
    job = client.submit("slow_chain", image=RED)
    began = time.monotonic()
    with pytest.raises(JobTimeoutError) as raised:
        job.result(timeout=0.2, poll_s=0.05)
    assert 0.2 <= time.monotonic() - began < 1.5
    assert isinstance(raised.value, ClientTimeoutError)  # an ApiTimeoutError as well
    assert raised.value.job_id == job.id and raised.value.job_status in ACTIVE
    assert raised.value.code == "job_timeout" and "0.2 s" in str(raised.value)
    assert job.result(timeout=20).outputs["caption"]  # still running: waiting again works


def test_a_failed_job_raises_the_error_the_run_raises(client: Client) -> None:
    inputs = {"image": RED, "prompt": f"please {FAIL_MARKER}"}
    with pytest.raises(ApiError) as ran:
        client.run("caption", **inputs)
    job = client.submit("caption", **inputs)
    with pytest.raises(ApiError) as failed:
        job.result(timeout=20)
    assert type(failed.value) is type(ran.value)
    assert (failed.value.status, failed.value.code) == (ran.value.status, ran.value.code)
    assert failed.value.message == ran.value.message and failed.value.request_id
    assert ran.value.trace and failed.value.trace
    assert steps_of(failed.value.trace) == steps_of(ran.value.trace)  # type: ignore[arg-type]
    with pytest.raises(ApiError) as streamed:
        list(job.events())
    assert (streamed.value.status, streamed.value.code) == (ran.value.status, ran.value.code)


def test_a_bad_input_or_webhook_is_refused_at_submit(client: Client) -> None:
    with pytest.raises(ApiInputError) as missing:
        client.submit("caption", prompt="no image")
    assert missing.value.status == 422
    with pytest.raises(ApiInputError) as hook:
        client.submit("caption", image=RED, webhook="http://hooks.example.com/done")
    assert "webhook" in hook.value.message and "jobs.webhook_allow" in hook.value.message
    with pytest.raises(ApiNotFoundError):
        client.submit("no_such_workflow", image=RED)
    assert not [v for v in client.jobs.list(limit=None) if v["status"] in ACTIVE]


def test_events_replay_the_steps_then_give_the_result(client: Client) -> None:
    job = client.submit("slow_chain", image=RED)
    items = list(job.events())
    *events, result = items
    assert [(type(e).__name__, e.step) for e in events if not isinstance(e, RunResult)] == [
        (kind, step)
        for step in ("first", "second", "third")
        for kind in ("StepStarted", "StepFinished")
    ]
    assert all(isinstance(e, StepStarted | StepFinished) for e in events)
    assert isinstance(result, RunResult) and result.outputs == job.result().outputs
    # read again once it has ended: the same events, replayed
    assert [type(e) for e in job.events()] == [type(e) for e in items]

    waiting = client.submit("slow_chain", image=RED)
    waiting.cancel()  # queued behind nothing or running: either way it ends cancelled
    with pytest.raises(JobCancelledError):
        list(waiting.events())


def test_list_filters_by_status_and_workflow_and_follows_pages(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = client.submit("caption", image=RED)
    done.result(timeout=20)
    cancelled = client.submit("slow_chain", image=RED)
    cancelled.cancel()
    wait_for(lambda: cancelled.status()["status"] == "cancelled")

    captions = client.jobs.list(workflow="caption")
    assert captions and {v["workflow"] for v in captions} == {"caption"}
    assert done.id in [v["id"] for v in captions]
    assert all(v["outputs"] is None and v["trace"] is None for v in captions)
    by_status = client.jobs.list(status="cancelled", workflow="slow_chain")
    assert cancelled.id in [v["id"] for v in by_status]
    assert {v["status"] for v in by_status} == {"cancelled"}
    assert done.id not in [v["id"] for v in client.jobs.list(status="cancelled")]

    every = client.jobs.list(limit=None)
    assert len(every) >= 3 and every[0]["id"] == cancelled.id  # newest first
    created = [v["created_at"] for v in every]
    assert created == sorted(created, reverse=True)
    assert client.jobs.list(limit=2) == every[:2]
    with pytest.raises(ApiInputError):
        client.jobs.list(status="sleeping")
    # pages of two: the same jobs, read by following next_cursor
    monkeypatch.setattr(jobs_module, "MAX_PAGE", 2)
    assert [v["id"] for v in client.jobs.list(limit=None)] == [v["id"] for v in every]
    assert [v["id"] for v in client.jobs.list(limit=3)] == [v["id"] for v in every[:3]]


def test_an_unknown_job_is_not_found(client: Client) -> None:
    unknown = "0" * 32
    for call in (client.jobs.get, client.jobs.cancel):
        with pytest.raises(ApiNotFoundError) as raised:
            call(unknown)
        assert raised.value.code == "job_not_found" and raised.value.status == 404
    with pytest.raises(ApiNotFoundError):
        client.jobs.get("../workflows")  # one path segment, whatever the id says


def test_a_submit_cut_mid_way_is_not_sent_again_reads_are() -> None:
    """The retry rules (mmserve.client.retry) as they apply to the job calls: a submit may
    have been queued, a cancel may have gone through; reading may always be repeated."""
    assert repeat_blocker("POST", "/v1/workflows/caption/jobs", {}) is not None
    assert repeat_blocker("DELETE", "/v1/jobs/abc", {}) is not None
    assert repeat_blocker("GET", "/v1/jobs/abc", {}) is None
    assert repeat_blocker("GET", "/v1/jobs", {}) is None


def test_the_async_client_has_the_same_jobs(client: Client, app: JobsApp) -> None:
    run = client.run("caption", image=RED)

    async def scenario() -> None:
        async with AsyncClient(app.url, timeout=30) as aclient:
            job = await aclient.submit("caption", image=Image.open(RED))
            assert isinstance(job, AsyncJob) and job.url == f"{app.url}/v1/jobs/{job.id}"
            result = await job.result(timeout=20)
            assert result.outputs == run.outputs
            assert (await job.status())["status"] == "succeeded"
            items = [item async for item in (await aclient.jobs.get(job.id)).events()]
            assert [type(i) for i in items] == [StepStarted, StepFinished, RunResult]
            assert items[-1].outputs == run.outputs  # type: ignore[union-attr]

            slow = [await aclient.submit("slow_chain", image=RED) for _ in range(2)]
            with pytest.raises(JobTimeoutError):
                await slow[0].result(timeout=0.1, poll_s=0.05)
            assert (await slow[1].cancel())["status"] == "cancelled"
            with pytest.raises(JobCancelledError):
                await slow[1].result()
            with pytest.raises(JobCancelledError):
                _ = [item async for item in slow[1].events()]
            listed = await aclient.jobs.list(status="cancelled", limit=5)
            assert slow[1].id in [v["id"] for v in listed]
            assert (await aclient.jobs.cancel(slow[0].id))["cancel_requested"] is True
            with pytest.raises(ApiNotFoundError):
                await aclient.jobs.get("f" * 32)

    asyncio.run(scenario())


def test_the_documented_examples_run(app: JobsApp, capsys: pytest.CaptureFixture[str]) -> None:
    """The jobs examples of README.md and docs/jobs.md, against this server."""
    for doc in ("README.md", "docs/jobs.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        blocks = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
        (example,) = [b for b in blocks if "client.submit(" in b]
        code = example.replace("http://127.0.0.1:8000", app.url)
        code = code.replace('"examples/', f'"{ROOT}/examples/')
        exec(compile(code, doc, "exec"), {"Client": Client})
        printed = capsys.readouterr().out
        status, outputs = printed.splitlines()  # the job's status, then its caption
        assert status.split()[-1] in ("queued", "running", "succeeded"), printed
        assert "a white and red image" in outputs, printed
