"""The job endpoints over HTTP (``POST /v1/workflows/{name}/jobs``, ``/v1/jobs...``), in
process: a real embedded queue (SQLite broker), a real job worker (Celery threads) on fake
models, a real HTTP server; no Ray (tests/unit/jobs_support.py). The answers are checked
against the HTTP contract (docs/jobs.md) and against what ``/run`` answers for the same body."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from api_support import b64, image_bytes
from jobs_support import JobsApp, event_loop, jobs_app, jobs_config, start_worker

from mmserve.jobs.records import JobRecord
from mmserve.models.backends.fake import FAIL_MARKER

pytestmark = pytest.mark.unit

T = TypeVar("T")
FINAL = ("succeeded", "failed", "cancelled", "expired")
#: Each fake model call of the slow app takes this long.
SLOW_MS = 400


def wait_for(check: Callable[[], T | None], *, timeout_s: float = 20.0, what: str = "it") -> T:
    """Poll ``check`` until it answers something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.03)


def job_view(client: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()
    return view


def wait_job(
    client: httpx.Client, job_id: str, statuses: tuple[str, ...] = FINAL, timeout_s: float = 20.0
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        view = job_view(client, job_id)
        return view if view["status"] in statuses else None

    return wait_for(reached, timeout_s=timeout_s, what=f"job {job_id} to be {statuses}")


def submit(client: httpx.Client, workflow: str, **body: Any) -> str:
    answer = client.post(f"/v1/workflows/{workflow}/jobs", **body)
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def image_body(**inputs: Any) -> dict[str, Any]:
    return {"json": {"inputs": {"image": b64(image_bytes()), **inputs}}}


def events_of(client: httpx.Client, job_id: str) -> list[tuple[str, Any, float]]:
    """The job's event stream read to its end: (event name, data, time received)."""
    found: list[tuple[str, Any, float]] = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=30) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        name = "message"
        for line in answer.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                found.append((name, json.loads(line.removeprefix("data: ")), time.time()))
                name = "message"
    return found


def steps_of(trace: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(entry["step"], entry["status"]) for entry in trace]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobsApp]:
    """Fast fake models, a worker."""
    with jobs_app(jobs_config(tmp_path_factory.mktemp("jobs-api"))) as running:
        yield running


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobsApp]:
    """Each fake model call takes :data:`SLOW_MS`: slow_chain runs for three of them."""
    config = jobs_config(tmp_path_factory.mktemp("jobs-api-slow"), delay_ms=SLOW_MS)
    with jobs_app(config) as running:
        yield running


@pytest.fixture
def idle(tmp_path: Path) -> Iterator[JobsApp]:
    """The API and its queue, no worker: jobs stay queued."""
    with jobs_app(jobs_config(tmp_path), worker=False) as running:
        yield running


def client_of(app: JobsApp) -> httpx.Client:
    return httpx.Client(base_url=app.url, timeout=30)


# -- submitting ---------------------------------------------------------------------------


def test_a_submit_answers_202_with_the_jobs_id_and_location(app: JobsApp) -> None:
    with client_of(app) as client:
        answer = client.post("/v1/workflows/caption/jobs", **image_body())
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) == {"id", "status", "url", "request_id"}
    assert len(body["id"]) == 32 and int(body["id"], 16) >= 0
    assert body["status"] == "queued"
    assert body["url"] == f"/v1/jobs/{body['id']}" == answer.headers["location"]
    assert body["request_id"] == answer.headers["x-request-id"]


@pytest.mark.parametrize(
    "workflow, body",
    [
        ("caption", {"json": {"inputs": {"image": "this is not base64 !!"}}}),
        ("caption", {"json": {"inputs": {"image": b64(b"not an image at all")}}}),
        ("caption", {"json": {"inputs": {}}}),
        ("caption", {"json": {"inputs": {"image": b64(image_bytes()), "colour": "red"}}}),
        ("caption", {"json": {"image": b64(image_bytes())}}),
        ("caption", {"json": {"inputs": {"image": b64(image_bytes())}, "extra": 1}}),
        ("caption", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("caption", {"content": b"x", "headers": {"content-type": "text/plain"}}),
        ("caption", {"json": {"inputs": {"image": b64(image_bytes(size=(4000, 10)))}}}),
        ("answer", {"json": {"inputs": {"image": b64(image_bytes()), "question": 3}}}),
        ("no_such_workflow", {"json": {"inputs": {}}}),
    ],
    ids=[
        "bad-base64",
        "not-an-image",
        "missing-input",
        "unknown-input",
        "inputs-not-wrapped",
        "unknown-body-key",
        "bad-json",
        "text-plain",
        "thin-strip",
        "wrong-type",
        "unknown-workflow",
    ],
)
def test_a_bad_submit_gets_the_answer_run_gives_and_creates_no_job(
    app: JobsApp, workflow: str, body: dict[str, Any]
) -> None:
    with client_of(app) as client:
        before = client.get("/v1/jobs", params={"limit": 500}).json()["jobs"]
        run = client.post(f"/v1/workflows/{workflow}/run", **body)
        job = client.post(f"/v1/workflows/{workflow}/jobs", **body)
        after = client.get("/v1/jobs", params={"limit": 500}).json()["jobs"]
    assert 400 <= run.status_code < 500, run.text
    assert job.status_code == run.status_code, (job.text, run.text)
    assert job.json()["error"]["code"] == run.json()["error"]["code"]
    assert job.json()["error"]["request_id"] == job.headers["x-request-id"]
    if workflow == "no_such_workflow":
        assert job.status_code == 404
    assert len(after) == len(before)


def test_an_unknown_job_is_404_job_not_found(app: JobsApp) -> None:
    with client_of(app) as client:
        for answer in (
            client.get(f"/v1/jobs/{'0' * 32}"),
            client.delete(f"/v1/jobs/{'0' * 32}"),
            client.get(f"/v1/jobs/{'0' * 32}/events"),
            client.get("/v1/jobs/not-even-an-id"),
        ):
            assert answer.status_code == 404, answer.text
            assert answer.json()["error"]["code"] == "job_not_found"


def test_a_multipart_submit_runs_as_a_multipart_run_does(app: JobsApp) -> None:
    form = {
        "files": {"image": ("red.png", image_bytes(), "image/png")},
        "data": {"prompt": "a photo of"},
    }
    with client_of(app) as client:
        job_id = submit(client, "caption", **form)
        run = client.post("/v1/workflows/caption/run", **form)
        view = wait_job(client, job_id)
    assert run.status_code == 200, run.text
    assert view["status"] == "succeeded", view
    assert view["outputs"] == run.json()["outputs"]


# -- a job's view -------------------------------------------------------------------------


def test_a_succeeded_job_has_the_outputs_and_trace_of_a_run(app: JobsApp) -> None:
    body = {"json": {"inputs": {"image": b64(image_bytes()), "question": "what colour is it?"}}}
    with client_of(app) as client:
        job_id = submit(client, "answer", **body)
        run = client.post("/v1/workflows/answer/run", **body)
        view = wait_job(client, job_id)
    assert run.status_code == 200, run.text
    assert view["status"] == "succeeded", view
    assert view["outputs"] == run.json()["outputs"]
    assert steps_of(view["trace"]) == steps_of(run.json()["trace"])
    assert view["kind"] == "workflow" and view["workflow"] == "answer"
    assert view["attempts"] == 1 and view["position"] is None and view["error"] is None
    assert view["steps_done"] == view["steps_total"] == 1
    assert view["created_at"] <= view["started_at"] <= view["finished_at"]
    assert view["url"] == f"/v1/jobs/{job_id}"
    assert view["caller"] == "anonymous" and view["cancel_requested"] is False


def test_queued_jobs_have_positions_in_submit_order(idle: JobsApp) -> None:
    with client_of(idle) as client:
        jobs = [submit(client, "caption", **image_body()) for _ in range(3)]
        views = [job_view(client, j) for j in jobs]
        assert [v["position"] for v in views] == [0, 1, 2]
        assert all(v["status"] == "queued" and v["started_at"] is None for v in views)
        assert all(v["attempts"] == 0 and v["steps_done"] == 0 for v in views)
        assert all(v["steps_total"] == 1 for v in views)
        # the first leaves the queue: the others move up
        assert client.delete(f"/v1/jobs/{jobs[0]}").status_code == 200
        assert [job_view(client, j)["position"] for j in jobs] == [None, 0, 1]


def test_a_running_job_shows_its_steps_done_progressing(slow: JobsApp) -> None:
    seen: list[tuple[str, int]] = []
    with client_of(slow) as client:
        job_id = submit(client, "slow_chain", **image_body())

        def finished() -> dict[str, Any] | None:
            view = job_view(client, job_id)
            seen.append((view["status"], view["steps_done"]))
            return view if view["status"] in FINAL else None

        view = wait_for(finished, what="slow_chain to finish")
    assert view["status"] == "succeeded" and view["steps_done"] == 3
    running = [done for status, done in seen if status == "running"]
    assert running == sorted(running), "steps done never go back"
    assert set(running) & {1, 2}, f"no step seen done while it ran: {seen}"
    assert all(status in ("queued", "running", "succeeded") for status, _ in seen)


# -- listing ------------------------------------------------------------------------------


def test_the_list_is_newest_first_filtered_and_paged(idle: JobsApp) -> None:
    with client_of(idle) as client:
        captions = [submit(client, "caption", **image_body()) for _ in range(4)]
        answers = [
            submit(client, "answer", **image_body(question="what colour?")) for _ in range(3)
        ]
        for job_id in (captions[1], answers[0]):
            assert client.delete(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
        submitted = captions + answers

        def listed(**params: Any) -> dict[str, Any]:
            answer = client.get("/v1/jobs", params=params)
            assert answer.status_code == 200, answer.text
            page: dict[str, Any] = answer.json()
            return page

        everything = listed()
        assert [j["id"] for j in everything["jobs"]] == submitted[::-1]
        assert everything["next_cursor"] is None
        assert all(j["outputs"] is None and j["trace"] is None for j in everything["jobs"])
        assert [j["id"] for j in listed(workflow="caption")["jobs"]] == captions[::-1]
        assert [j["id"] for j in listed(status="cancelled")["jobs"]] == [answers[0], captions[1]]
        assert [j["id"] for j in listed(status="queued", workflow="answer")["jobs"]] == [
            answers[2],
            answers[1],
        ]
        assert listed(status="running")["jobs"] == []
        assert listed(workflow="nothing")["jobs"] == []
        for size in (1, 2, 3, 7):
            seen: list[str] = []
            page = listed(limit=size)
            while True:
                assert len(page["jobs"]) <= size
                seen.extend(j["id"] for j in page["jobs"])
                if page["next_cursor"] is None:
                    break
                page = listed(limit=size, cursor=page["next_cursor"])
            assert seen == submitted[::-1], f"pages of {size}"
        # a filter holds across pages
        first = listed(workflow="caption", limit=3)
        rest = listed(workflow="caption", limit=3, cursor=first["next_cursor"])
        assert [j["id"] for j in first["jobs"] + rest["jobs"]] == captions[::-1]
        assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    "params, status",
    [
        ({"status": "nonsense"}, 422),
        ({"limit": 0}, 422),
        ({"limit": 501}, 422),
        ({"limit": "many"}, 422),
        ({"cursor": "not a cursor"}, 400),
        ({"cursor": "WzEsMiwzXQ"}, 400),  # base64 of [1,2,3]: JSON, but not a cursor
        ({"cursor": "eyJhIjoxfQ"}, 400),  # base64 of {"a":1}
    ],
)
def test_bad_list_parameters_are_refused(app: JobsApp, params: dict[str, Any], status: int) -> None:
    with client_of(app) as client:
        answer = client.get("/v1/jobs", params=params)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"


# -- cancelling ---------------------------------------------------------------------------


def test_a_cancelled_queued_job_never_runs_even_once_a_worker_starts(idle: JobsApp) -> None:
    with client_of(idle) as client:
        cancelled = submit(client, "caption", **image_body())
        answer = client.delete(f"/v1/jobs/{cancelled}")
        assert answer.status_code == 200, answer.text
        view = answer.json()
        assert view["status"] == "cancelled" and view["cancel_requested"] is True
        assert view["finished_at"] is not None and view["error"] is None
        later = submit(client, "caption", **image_body())
        with event_loop() as loop:
            worker = start_worker(idle.config, loop)
            try:
                assert wait_job(client, later)["status"] == "succeeded"
                # the cancelled job's message has been received too
                wait_for(lambda: idle.service.doorbell.waiting() == 0, what="an empty queue")
            finally:
                worker.stop()
        view = job_view(client, cancelled)
    assert view["status"] == "cancelled"
    assert view["started_at"] is None and view["attempts"] == 0
    assert view["outputs"] is None and view["steps_done"] == 0


def test_a_running_job_is_cancelled_within_a_step(slow: JobsApp) -> None:
    with client_of(slow) as client:
        job_id = submit(client, "slow_chain", **image_body())
        wait_for(lambda: job_view(client, job_id)["steps_done"] >= 1, what="the first step to end")
        answer = client.delete(f"/v1/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        asked = answer.json()
        assert asked["cancel_requested"] is True and asked["status"] == "running"
        view = wait_job(client, job_id)
        again = client.delete(f"/v1/jobs/{job_id}")
    assert view["status"] == "cancelled", view
    assert view["error"] is None and view["outputs"] is None and view["cancel_requested"]
    # it stopped within a step of the cancel: the step under way at most was finished
    assert asked["steps_done"] <= view["steps_done"] <= asked["steps_done"] + 1
    assert view["steps_done"] < 3
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_finished"


def test_cancelling_a_finished_job_is_409(app: JobsApp) -> None:
    with client_of(app) as client:
        job_id = submit(client, "caption", **image_body())
        assert wait_job(client, job_id)["status"] == "succeeded"
        answer = client.delete(f"/v1/jobs/{job_id}")
        view = job_view(client, job_id)
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "job_finished"
    assert view["status"] == "succeeded" and view["cancel_requested"] is False


# -- events -------------------------------------------------------------------------------


def test_the_events_of_a_finished_job_are_replayed_then_its_result(app: JobsApp) -> None:
    with client_of(app) as client:
        job_id = submit(client, "slow_chain", **image_body())
        view = wait_job(client, job_id)
        assert view["status"] == "succeeded", view
        events = events_of(client, job_id)
    names = [name for name, _, _ in events]
    steps = [s for s, _ in steps_of(view["trace"])]
    assert steps == ["first", "second", "third"]
    assert names == ["step_started", "step_finished"] * 3 + ["result"]
    assert [d["step"] for n, d, _ in events if n == "step_started"] == steps
    assert [d["step"] for n, d, _ in events if n == "step_finished"] == steps
    assert [d["entry"]["status"] for n, d, _ in events if n == "step_finished"] == [
        status for _, status in steps_of(view["trace"])
    ]
    result = events[-1][1]
    assert result["outputs"] == view["outputs"]
    assert steps_of(result["trace"]) == steps_of(view["trace"])
    assert "request_id" in result


def test_the_events_of_a_running_job_stream_live_to_the_end(slow: JobsApp) -> None:
    with client_of(slow) as client:
        job_id = submit(client, "slow_chain", **image_body())
        events = events_of(client, job_id)
        view = job_view(client, job_id)
    assert view["status"] == "succeeded"
    names = [name for name, _, _ in events]
    assert names == ["step_started", "step_finished"] * 3 + ["result"]
    assert [d["step"] for n, d, _ in events if n == "step_finished"] == [
        "first",
        "second",
        "third",
    ]
    first_finished = next(at for n, _, at in events if n == "step_finished")
    assert first_finished < view["finished_at"], "the first step's end came before the job's"
    assert events[-1][1]["outputs"] == view["outputs"]


def test_the_events_of_a_cancelled_job_end_with_cancelled(idle: JobsApp) -> None:
    with client_of(idle) as client:
        job_id = submit(client, "caption", **image_body())
        client.delete(f"/v1/jobs/{job_id}")
        events = events_of(client, job_id)
    assert [(n, d) for n, d, _ in events] == [("cancelled", {"id": job_id, "status": "cancelled"})]


# -- failures -----------------------------------------------------------------------------


def test_a_failing_job_has_the_error_a_run_gives(app: JobsApp) -> None:
    body = image_body(prompt=f"please {FAIL_MARKER}")
    with client_of(app) as client:
        run = client.post("/v1/workflows/caption/run", **body)
        job_id = submit(client, "caption", **body)
        view = wait_job(client, job_id)
        events = events_of(client, job_id)
    assert run.status_code >= 500, run.text
    expected = run.json()["error"]
    assert view["status"] == "failed", view
    error = view["error"]
    assert error["code"] == expected["code"]
    assert error["message"] == expected["message"]
    assert error["status"] == run.status_code
    assert view["outputs"] is None and view["finished_at"] is not None
    if "trace" in expected:
        assert steps_of(error["trace"]) == steps_of(expected["trace"])
    name, data, _ = events[-1]
    assert name == "error"
    assert data["error"]["code"] == expected["code"]
    assert data["error"]["status"] == run.status_code


def test_the_timeout_header_shortens_a_jobs_deadline_as_a_runs(slow: JobsApp) -> None:
    body = {**image_body(), "headers": {"x-mmserve-timeout-s": "0.5"}}
    with client_of(slow) as client:
        run = client.post("/v1/workflows/slow_chain/run", **body)
        view = wait_job(client, submit(client, "slow_chain", **body))
    assert run.status_code >= 400, run.text
    assert view["status"] == "failed", view
    assert view["error"]["code"] == run.json()["error"]["code"]
    assert view["error"]["status"] == run.status_code
    assert view["steps_done"] < 3


class Observed:
    """A :class:`~mmserve.jobs.worker.JobObserver` that keeps what it was told."""

    def __init__(self) -> None:
        self.began: list[str] = []
        self.ended: dict[str, str] = {}
        self.queues: list[dict[str, int]] = []

    def started(self, record: JobRecord) -> None:
        self.began.append(record.id)

    def finished(self, record: JobRecord) -> None:
        assert record.finished_at is not None and record.started_at is not None
        self.ended[record.id] = record.status

    def queue(self, queued: Mapping[str, int]) -> None:
        self.queues.append(dict(queued))


def test_the_worker_reports_each_job_started_and_finished(
    app: JobsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert app.worker is not None
    found = Observed()
    monkeypatch.setattr(app.worker, "observer", found)
    with client_of(app) as client:
        good = submit(client, "caption", **image_body())
        bad = submit(client, "caption", **image_body(prompt=FAIL_MARKER))
        wait_job(client, good)
        wait_job(client, bad)
        wait_for(lambda: found.queues, what="a sweep's count of the queue")
    assert set(found.began) >= {good, bad}
    assert found.ended[good] == "succeeded" and found.ended[bad] == "failed"


def test_a_result_that_cannot_be_kept_fails_the_job(
    app: JobsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert app.worker is not None

    def full_disk(job_id: str, result: dict[str, Any]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(app.worker.files, "save_result", full_disk)
    with client_of(app) as client:
        view = wait_job(client, submit(client, "caption", **image_body()))
    assert view["status"] == "failed", view
    assert view["error"]["code"] == "internal_error" and view["error"]["status"] == 500
    assert "OSError" in view["error"]["message"] and view["outputs"] is None


# -- webhooks -----------------------------------------------------------------------------


class Receiver:
    """A webhook receiver: an HTTP server in a thread on a free port, keeping what it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        received = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


SECRET_ENV = "MMSERVE_TEST_WEBHOOK_SECRET"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@contextmanager
def hooked_app(folder: Path, receiver: Receiver, *, worker: bool = True) -> Iterator[JobsApp]:
    """An app whose jobs may call ``receiver``, signing with the secret ``s3cret`` (the
    caller has set ``$SECRET_ENV``)."""
    jobs = {"webhook_secret_env": SECRET_ENV, "webhook_allow": [f"127.0.0.1:{receiver.port}"]}
    with jobs_app(jobs_config(folder, jobs=jobs), worker=worker) as running:
        yield running


@pytest.fixture
def hooked(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[JobsApp]:
    monkeypatch.setenv(SECRET_ENV, "s3cret")  # before the worker starts
    with hooked_app(tmp_path, receiver) as running:
        yield running


def verified(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The webhook call's body, once its signature is checked as docs/jobs.md shows."""
    fields = dict(part.split("=", 1) for part in headers["x-mmserve-signature"].split(","))
    assert set(fields) == {"t", "v1"}
    expected = hmac.new(b"s3cret", f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert abs(int(fields["t"]) - time.time()) < 60
    assert headers["content-type"] == "application/json"
    sent: dict[str, Any] = json.loads(body)
    return sent


def test_a_finished_job_is_posted_to_its_webhook_signed(
    hooked: JobsApp, receiver: Receiver
) -> None:
    hook = f"http://127.0.0.1:{receiver.port}/hook"
    with client_of(hooked) as client:
        answer = client.post(
            "/v1/workflows/caption/jobs",
            json={"inputs": {"image": b64(image_bytes())}, "webhook": hook},
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        view = wait_job(client, job_id)
        wait_for(lambda: receiver.calls, what="the webhook call")
    assert len(receiver.calls) == 1
    sent = verified(*receiver.calls[0])
    assert sent["id"] == job_id and sent["status"] == "succeeded"
    assert sent["outputs"] == view["outputs"] == {"caption": "a red image"}
    assert sent["webhook"] == hook
    assert steps_of(sent["trace"]) == steps_of(view["trace"])


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobsApp]:
    """Webhooks allowed to two hosts; no worker (nothing runs)."""
    jobs = {"webhook_allow": ["127.0.0.1:8999", "hooks.example.org"]}
    config = jobs_config(tmp_path_factory.mktemp("jobs-api-hooks"), jobs=jobs)
    with jobs_app(config, worker=False) as running:
        yield running


@pytest.mark.parametrize(
    "webhook",
    [
        "http://hooks.example.com/x",
        "http://127.0.0.1:1/x",  # the allowed host, another port
        "http://127.0.0.1/x",  # and its default port
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "not a url",
        "http://127.0.0.1:99999/x",  # a port out of range
        "http://127.0.0.1:port/x",
        "http://[::1/x",  # a broken IPv6 address
    ],
)
def test_a_webhook_not_allowed_is_refused_at_submit(refusing: JobsApp, webhook: str) -> None:
    with client_of(refusing) as client:
        answer = client.post(
            "/v1/workflows/caption/jobs",
            json={"inputs": {"image": b64(image_bytes())}, "webhook": webhook},
        )
        listed = client.get("/v1/jobs").json()["jobs"]
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "webhook_not_allowed"
    assert listed == []


def test_a_webhook_to_an_allowed_host_is_taken(refusing: JobsApp) -> None:
    with client_of(refusing) as client:
        for hook in ("http://127.0.0.1:8999/x", "https://hooks.example.org/mmserve"):
            job_id = submit(
                client, "caption", json={"inputs": {"image": b64(image_bytes())}, "webhook": hook}
            )
            assert job_view(client, job_id)["webhook"] == hook


def test_a_job_cancelled_while_queued_is_posted_to_its_webhook(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "s3cret")
    hook = f"http://127.0.0.1:{receiver.port}/cancelled"
    with hooked_app(tmp_path, receiver, worker=False) as app, client_of(app) as client:
        answer = client.post(
            "/v1/workflows/caption/jobs",
            json={"inputs": {"image": b64(image_bytes())}, "webhook": hook},
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        assert client.delete(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
        wait_for(lambda: receiver.calls, what="the webhook call")
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 409
    assert len(receiver.calls) == 1
    sent = verified(*receiver.calls[0])
    assert sent["id"] == job_id and sent["status"] == "cancelled"
    assert sent["started_at"] is None and sent["outputs"] is None
