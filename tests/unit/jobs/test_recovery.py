"""Durability of the job queue without Ray, on both brokers (the embedded SQLite one and a
real Redis): a worker that dies mid-run (:meth:`~mmserve.jobs.worker.JobWorker.halt`, as a
SIGKILL: no heartbeat, no word to the store) has its jobs recovered by a live worker:
repeatable ones run again, a running one with side effects fails as ``interrupted``; a message
lost between the record and the broker is sent again by a sweep; finished jobs expire after
their retention and are then removed. Leases are 2 s (tests/unit/jobs_support.py), so a
recovery takes a few seconds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from api_support import b64, image_bytes
from jobs_support import JobsApp, event_loop, jobs_app, jobs_config, start_worker

from mmserve.config import AppConfig
from mmserve.jobs import lifecycle
from mmserve.jobs.records import JobRecord
from mmserve.jobs.store import Change
from mmserve.jobs.worker import JobWorker
from mmserve.registry import Registry, registry
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs

pytestmark = pytest.mark.unit

T = TypeVar("T")
FINAL = ("succeeded", "failed", "cancelled", "expired")
#: Each fake model call takes this long: a slow_chain job runs for three of them.
STEP_MS = 300

CAPTION_AND_NOTIFY = """
name: caption_and_notify
inputs: {image: {type: image}}
steps:
  describe: {uses: caption, with: {image: "${inputs.image}"}}
  tell: {uses: notify, with: {text: "${describe.text}"}}
outputs: {sent: "${tell.sent}"}
"""


class Notify(Step):
    """Sends a message: running it twice would send two."""

    side_effects = True

    class Inputs(StepInputs):
        text: str

    class Outputs(StepOutputs):
        sent: bool

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        return self.Outputs(sent=True)


def with_notify() -> Registry:
    """The built-in plugins and the notify step (the global registry untouched)."""
    plugins = Registry()
    for info in registry.plugins():
        plugins.register(info.kind, info.name, info.target, meta=info.meta)
    plugins.register("step", "notify", Notify)
    return plugins


class Ended:
    """A job observer (:class:`~mmserve.jobs.worker.JobObserver`) keeping the ends."""

    def __init__(self) -> None:
        self.ended: dict[str, str] = {}

    def started(self, record: JobRecord) -> None:
        pass

    def finished(self, record: JobRecord) -> None:
        self.ended[record.id] = record.status

    def queue(self, queued: Mapping[str, int]) -> None:
        pass


def wait_for(check: Callable[[], T | None], *, timeout_s: float = 30.0, what: str = "it") -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.03)


@pytest.fixture(params=["sqlite", "redis"])
def broker(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "sqlite"
    url: str = request.getfixturevalue("redis_url")
    return url


def config_for(folder: Path, broker: str, **jobs: Any) -> AppConfig:
    return jobs_config(
        folder,
        broker=broker,
        delay_ms=STEP_MS,
        jobs={"max_concurrent_jobs": 1, **jobs},
        workflows={"caption_and_notify": CAPTION_AND_NOTIFY},
    )


@pytest.fixture
def idle(tmp_path: Path, broker: str) -> Iterator[JobsApp]:
    """The API and its queue, no worker yet (the tests start and kill workers)."""
    with jobs_app(config_for(tmp_path, broker), worker=False, plugins=with_notify()) as app:
        yield app


def submit(client: httpx.Client, workflow: str) -> str:
    answer = client.post(
        f"/v1/workflows/{workflow}/jobs", json={"inputs": {"image": b64(image_bytes())}}
    )
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def views(client: httpx.Client, jobs: list[str]) -> list[dict[str, Any]]:
    return [client.get(f"/v1/jobs/{j}").json() for j in jobs]


def all_finished(client: httpx.Client, jobs: list[str]) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        found = views(client, jobs)
        return found if all(v["status"] in FINAL for v in found) else None

    return wait_for(check, what=f"jobs {jobs} to finish")


def running_on(app: JobsApp, worker: JobWorker, jobs: list[str]) -> JobRecord:
    """The job of ``jobs`` that ``worker`` is running, once it is in its first step's
    model call (so that killing the worker now interrupts it mid-run)."""

    def check() -> JobRecord | None:
        for job_id in jobs:
            record = app.service.store.get(job_id)
            if record is not None and record.status == "running" and record.worker == worker.name:
                started = app.service.store.events(job_id)
                return record if started else None
        return None

    return wait_for(check, what="a job to be running on the first worker")


def kill_mid_run(app: JobsApp, workflow: str, count: int) -> tuple[list[str], str, str]:
    """Submit ``count`` jobs of ``workflow``, let worker A start one, kill A (halt), run
    worker B until every job has finished. The jobs, the one A was running, A's name."""
    with httpx.Client(base_url=app.url, timeout=30) as client, event_loop() as loop_a:
        first = start_worker(app.config, loop_a, plugins=with_notify())
        jobs = [submit(client, workflow) for _ in range(count)]
        interrupted = running_on(app, first, jobs)
        first.halt()
        record = app.service.store.get(interrupted.id)
        assert record is not None and record.status == "running", "A left it as it was"
        assert first.name in app.service.store.workers(), "A was not forgotten"
        with event_loop() as loop_b:
            second = start_worker(app.config, loop_b, plugins=with_notify())
            try:
                all_finished(client, jobs)
            finally:
                second.stop()
        assert second.name not in app.service.store.workers(), "a stopped worker is forgotten"
    return jobs, interrupted.id, first.name


def test_a_dead_workers_repeatable_job_runs_again_elsewhere(idle: JobsApp) -> None:
    jobs, interrupted, dead = kill_mid_run(idle, "slow_chain", 3)
    with httpx.Client(base_url=idle.url, timeout=30) as client:
        found = {v["id"]: v for v in views(client, jobs)}
    assert all(v["status"] == "succeeded" for v in found.values()), found
    outputs = [v["outputs"] for v in found.values()]
    assert outputs[0]["caption"] and all(o == outputs[0] for o in outputs)
    assert found[interrupted]["attempts"] == 2
    assert [found[j]["attempts"] for j in jobs if j != interrupted] == [1] * (len(jobs) - 1)
    # the run again reported its events afresh: one run's worth, not two
    events = idle.service.store.events(interrupted)
    assert [(e["type"], e["step"]) for e in events] == [
        (kind, step)
        for step in ("first", "second", "third")
        for kind in ("step_started", "step_finished")
    ]
    assert dead not in idle.service.store.workers()


def test_a_dead_workers_job_with_side_effects_is_interrupted_not_repeated(
    idle: JobsApp,
) -> None:
    jobs, interrupted, dead = kill_mid_run(idle, "caption_and_notify", 3)
    with httpx.Client(base_url=idle.url, timeout=30) as client:
        found = {v["id"]: v for v in views(client, jobs)}
    failed = found.pop(interrupted)
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert failed["error"]["code"] == "interrupted"
    assert failed["error"]["side_effects"] == ["tell"]
    assert failed["error"]["status"] == 500
    assert "tell" in failed["error"]["message"]
    assert failed["outputs"] is None and failed["finished_at"] is not None
    assert all(v["status"] == "succeeded" for v in found.values()), found
    assert all(v["outputs"] == {"sent": True} and v["attempts"] == 1 for v in found.values())
    assert dead not in idle.service.store.workers()


def test_the_jobs_of_a_worker_dead_in_every_state_are_recovered(idle: JobsApp) -> None:
    """A worker (known only from the store) that died holding one job and running three."""
    store, files = idle.service.store, idle.service.files
    store.beat("ghost", time.time() - 1)  # its lease has run out
    inputs = {"image": b64(image_bytes())}

    def kept(target: str, **fields: Any) -> str:
        record = JobRecord(target=target, **fields)
        if target == "caption_and_notify":
            record.repeatable, record.side_effects = False, ["tell"]
        files.save_inputs(record.id, inputs)
        store.create(record)
        return record.id

    held = kept("caption", held_by="ghost")  # received, never started; its message gone
    again = kept("caption", status="running", worker="ghost", attempt=1, started_at=1.0)
    unsafe = kept("caption_and_notify", status="running", worker="ghost", attempt=1)
    cancel = kept("caption", status="running", worker="ghost", attempt=1, cancel_requested=True)
    with (
        httpx.Client(base_url=idle.url, timeout=30) as client,
        event_loop() as loop,
    ):
        worker = start_worker(idle.config, loop, plugins=with_notify())
        worker.observer = observed = Ended()  # before its first sweep (a beat away at least)
        try:
            ended = all_finished(client, [held, again, unsafe, cancel])
            found = dict(zip(["held", "again", "unsafe", "cancel"], ended, strict=True))
        finally:
            worker.stop()
    assert (found["held"]["status"], found["held"]["attempts"]) == ("succeeded", 1)
    assert (found["again"]["status"], found["again"]["attempts"]) == ("succeeded", 2)
    assert found["unsafe"]["status"] == "failed"
    assert found["unsafe"]["error"]["code"] == "interrupted"
    assert found["cancel"]["status"] == "cancelled" and found["cancel"]["error"] is None
    assert "ghost" not in store.workers()
    # the jobs the recovery ended are reported as finished, as those a run ends
    assert observed.ended == {
        held: "succeeded",
        again: "succeeded",
        unsafe: "failed",
        cancel: "cancelled",
    }


def test_a_job_whose_end_could_not_be_written_is_recovered_by_its_own_worker(
    idle: JobsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store was away when the run ended: the job is still running by the store, on a
    worker that lives (so no other recovers it) but is not running it any more."""
    failures: list[str] = []
    real_finish = lifecycle.finish

    def finish(*args: Any, **kwargs: Any) -> Change:
        change = real_finish(*args, **kwargs)

        def away(record: JobRecord) -> JobRecord | None:
            if not failures:
                failures.append(record.id)
                raise ConnectionError("the job store is away")
            return change(record)

        return away

    monkeypatch.setattr(lifecycle, "finish", finish)
    with httpx.Client(base_url=idle.url, timeout=30) as client, event_loop() as loop:
        worker = start_worker(idle.config, loop, plugins=with_notify())
        try:
            job_id = submit(client, "caption")
            (view,) = all_finished(client, [job_id])
        finally:
            worker.stop()
    assert failures == [job_id]
    assert view["status"] == "succeeded" and view["attempts"] == 2


def test_a_message_lost_between_record_and_broker_is_sent_again(idle: JobsApp) -> None:
    """The record and its inputs were kept, the process died before the message was sent:
    never acknowledged, but run anyway once a worker's sweep finds it."""
    store, files = idle.service.store, idle.service.files
    record = JobRecord(target="caption", rung_at=time.time() - 60)  # no message for a minute
    files.save_inputs(record.id, {"image": b64(image_bytes())})
    store.create(record)
    assert idle.service.doorbell.waiting() == 0
    with httpx.Client(base_url=idle.url, timeout=30) as client, event_loop() as loop:
        worker = start_worker(idle.config, loop, plugins=with_notify())
        try:
            (view,) = all_finished(client, [record.id])
        finally:
            worker.stop()
    assert view["status"] == "succeeded" and view["attempts"] == 1
    assert view["outputs"] == {"caption": "a red image"}


def test_finished_jobs_expire_then_disappear(tmp_path: Path, broker: str) -> None:
    config = jobs_config(tmp_path, broker=broker, jobs={"retention_s": 60.0})
    with jobs_app(config) as app, httpx.Client(base_url=app.url, timeout=30) as client:
        assert app.worker is not None
        done = submit(client, "caption")
        (view,) = all_finished(client, [done])
        assert view["status"] == "succeeded"
        # a job still queued never expires, however old (its message is not due for an hour)
        queued = JobRecord(target="caption", created_at=1.0, rung_at=time.time() + 3600)
        app.service.store.create(queued)
        folder = app.service.files.folder(done)
        assert (folder / "result.json").exists()
        app.worker.expire(view["finished_at"] + 30)  # within the retention: nothing
        assert client.get(f"/v1/jobs/{done}").json()["status"] == "succeeded"
        app.worker.expire(view["finished_at"] + 61)
        expired = client.get(f"/v1/jobs/{done}").json()
        assert expired["status"] == "expired"
        assert expired["outputs"] is None and expired["trace"] is None
        assert not folder.exists()
        assert [j["id"] for j in client.get("/v1/jobs?status=expired").json()["jobs"]] == [done]
        assert client.delete(f"/v1/jobs/{done}").status_code == 409
        # the tombstone is kept for another retention, then removed
        app.worker.expire(expired["finished_at"] + 30)
        assert client.get(f"/v1/jobs/{done}").status_code == 200
        app.worker.expire(expired["finished_at"] + 61)
        gone = client.get(f"/v1/jobs/{done}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "job_not_found"
        assert app.service.store.events(done) == []
        assert client.get(f"/v1/jobs/{queued.id}").json()["status"] == "queued"
