"""Tracing on a real Ray Serve, as an operator turns it on: `mmserve serve` with the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at an OTLP receiver (what Jaeger or Tempo would be).
Each run is one trace, with a span per step and per model call, and the model replica's side
of each call -- in another process -- is in the same trace, under the ingress's call.

The app: the captioner (the weight-free ``fake`` model) placed in the ingress, the VQA model
a deployment of its own (batching 200 ms, so that concurrent runs may share a batch)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import httpx
import pytest
from serve_support import ROOT, free_port, png_base64, serving, write_config

from mmserve.models.backends.fake import FAIL_MARKER
from otlp_receiver import ReceivedSpan, Receiver, otlp_receiver

pytestmark = pytest.mark.serve

#: the OTLP span kinds and status codes (opentelemetry.proto.trace.v1)
CLIENT, SERVER = 3, 2
ERROR = 2
OK_RUNS = ("trace-ok-1", "trace-ok-2")
FAILED_RUN = "trace-failed-1"
#: Ray's setting of how long a starting node may take to register
RAY_START_WAIT = "RAY_raylet_start_wait_time_s"
RUN_SPANS = {
    "POST /v1/workflows/{name}/run",
    "workflow describe",
    "step caption",
    "step answer",
    "model captioner.caption",
    "model vqa.answer",
    "serve fake://.caption",  # the captioner, in the ingress
    "serve fake://.answer",  # the VQA model, in its own replica
}

#: the failed run's captioner call may be cancelled before it is made (its run stopped)
FAILED_SPANS = RUN_SPANS - {"model captioner.caption", "serve fake://.caption"}


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ReceivedSpan]]:
    """The spans of three runs (two at once, one whose VQA call fails) of a traced app."""
    folder = tmp_path_factory.mktemp("tracing")
    fake = {"backend": "fake", "source": "fake://", "cpus": 0.1}
    data = {
        "models": {
            "captioner": {**fake, "placement": "ingress"},
            "vqa": {**fake, "batch": {"max_size": 8, "wait_ms": 200}},
        },
        "workflows": [str(ROOT / "workflows" / "describe.yaml")],
    }
    config_path = write_config(folder, data)
    with otlp_receiver() as receiver:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_SERVICE_NAME": "mmserve-served-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: the replicas send their spans promptly
        }
        env.setdefault(RAY_START_WAIT, "300")  # s: a busy machine may take a while to start Ray
        with serving(config_path, port=free_port(), log_path=folder / "serve.log", env=env) as (
            _,
            url,
        ):
            yield _runs(url, receiver)


def _runs(url: str, receiver: Receiver) -> list[ReceivedSpan]:
    image = png_base64((220, 30, 30))

    async def post(request_id: str, question: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await client.post(
                "/v1/workflows/describe/run",
                json={"inputs": {"image": image, "question": question}},
                headers={"x-request-id": request_id},
            )

    async def all_runs() -> list[httpx.Response]:
        ok = [post(request_id, "what is it?") for request_id in OK_RUNS]
        return await asyncio.gather(*ok, post(FAILED_RUN, FAIL_MARKER))

    *ok, failed = asyncio.run(all_runs())
    assert all(response.status_code == 200 for response in ok), [r.text for r in ok]
    assert failed.status_code >= 500, failed.text

    def complete(spans: list[ReceivedSpan]) -> bool:
        return set(_named(spans, FAILED_RUN)) >= FAILED_SPANS and all(
            set(_named(spans, run)) >= RUN_SPANS for run in OK_RUNS
        )

    return receiver.wait_for(complete, timeout_s=120)


def _of_run(spans: list[ReceivedSpan], request_id: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.attributes.get("mmserve.request_id") == request_id]


def _named(spans: list[ReceivedSpan], request_id: str) -> dict[str, ReceivedSpan]:
    return {span.name: span for span in _of_run(spans, request_id)}


@pytest.mark.parametrize("request_id", OK_RUNS)
def test_each_run_is_one_trace_with_a_span_per_step_and_model_call_across_the_replica(
    traced: list[ReceivedSpan], request_id: str
) -> None:
    mine = _of_run(traced, request_id)
    assert sorted(span.name for span in mine) == sorted(RUN_SPANS)  # one of each
    (trace_id,) = {span.trace_id for span in mine}  # one trace per run
    # ... and nothing else in it but batch spans (a batch is its first request's child)
    others = {span.name for span in traced if span.trace_id == trace_id} - RUN_SPANS
    assert others <= {"batch answer", "batch caption"}
    named = _named(traced, request_id)
    http, run = named["POST /v1/workflows/{name}/run"], named["workflow describe"]
    assert http.parent_id == "" and http.kind == SERVER
    assert http.attributes["http.response.status_code"] == 200
    assert run.parent_id == http.span_id
    for step, model in (("caption", "captioner.caption"), ("answer", "vqa.answer")):
        step_span, call = named[f"step {step}"], named[f"model {model}"]
        assert step_span.parent_id == run.span_id
        assert step_span.attributes["mmserve.workflow"] == "describe"
        assert step_span.attributes["mmserve.step.kind"] == step
        assert call.parent_id == step_span.span_id and call.kind == CLIENT
        assert call.attributes["mmserve.model"] == model.split(".")[0]
    # the replica's side is a child of the ingress's call, in another process
    served = named["serve fake://.answer"]
    assert served.parent_id == named["model vqa.answer"].span_id and served.kind == SERVER
    assert served.attributes["mmserve.deployment"] == "vqa"
    assert served.resource["process.pid"] != run.resource["process.pid"]
    in_ingress = named["serve fake://.caption"]
    assert in_ingress.parent_id == named["model captioner.caption"].span_id
    assert in_ingress.resource["process.pid"] == run.resource["process.pid"]
    assert {span.resource["service.name"] for span in mine} == {"mmserve-served-test"}


def test_each_batched_model_call_is_one_span_linked_to_every_request_it_served(
    traced: list[ReceivedSpan],
) -> None:
    requests = [_named(traced, run)["serve fake://.answer"] for run in (*OK_RUNS, FAILED_RUN)]
    batches = [span for span in traced if span.name == "batch answer"]
    for request in requests:
        (batch,) = [span for span in batches if request.span_id in span.links]
        assert batch.attributes["mmserve.batch_size"] == len(batch.links)
        if "mmserve.failed_items" not in batch.attributes:  # (else retried item by item)
            assert request.attributes["mmserve.batch_size"] == len(batch.links)
        assert batch.resource["process.pid"] == request.resource["process.pid"]
        # a child of the first request it served (a span has one parent)
        assert batch.parent_id == batch.links[0]


def test_a_failed_model_call_marks_the_replica_step_run_and_request_spans_failed(
    traced: list[ReceivedSpan],
) -> None:
    named = _named(traced, FAILED_RUN)
    for name in ("serve fake://.answer", "model vqa.answer", "step answer", "workflow describe"):
        assert named[name].status == ERROR, name
    assert named["step caption"].status != ERROR  # the other step did not fail
    http = named["POST /v1/workflows/{name}/run"]
    assert http.status == ERROR and http.attributes["http.response.status_code"] >= 500
