"""OpenTelemetry tracing in process (fake models, no Ray): a span per run, step and model call
in one trace, the request id on every span, errors in the span status, the batch span's
links, the HTTP span continuing a caller's trace; off (no SDK at all) without the env; and
the settings docs/cluster.md names are the SDK's."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import b64, build_api, image_bytes
from fastapi.testclient import TestClient
from opentelemetry import baggage
from opentelemetry.context import attach, detach
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mmserve import tracing
from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp
from mmserve.models.backends.fake import FAIL_MARKER
from mmserve.serve.handles import HandleGateway
from mmserve.serve.in_ingress import PlacedGateway, start_ingress_models
from mmserve.workflow import Engine, load_workflow
from otlp_receiver import tracing_docs

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FAKE = {"backend": "fake", "source": "fake://"}
IMAGE = b64(image_bytes())
RUN_SPANS = ("workflow caption", "step caption", "model captioner.caption")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """mmserve's spans, kept in memory (a provider of this test's own, not the global one)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)
        provider.shutdown()


@pytest.fixture
def _outside_a_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve's batch queue reads max_ongoing_requests from the replica context, to warn; there
    is none here (as in serving/test_in_ingress.py)."""
    from ray.serve.batching import _BatchQueue

    monkeypatch.setattr(
        _BatchQueue, "_warn_if_max_batch_size_exceeds_max_ongoing_requests", lambda self: None
    )


def _by_name(found: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    named = {span.name: span for span in found}
    assert len(named) == len(found), [span.name for span in found]
    return named


def _parent(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def _local(*workflows: str) -> LocalApp:
    models = {role: FAKE for role in ("captioner", "vqa", "image_encoder", "text_encoder")}
    paths = [str(ROOT / "workflows" / f"{name}.yaml") for name in workflows]
    return LocalApp(AppConfig.from_dict({"models": models, "workflows": paths}))


def test_a_run_is_one_trace_with_a_span_per_step_and_model_call(
    spans: InMemorySpanExporter,
) -> None:
    app = _local("describe")
    asyncio.run(app.run("describe", {"image": IMAGE, "question": "what is it?"}))
    found = spans.get_finished_spans()
    assert len({span.context.trace_id for span in found if span.context}) == 1
    named = _by_name(found)
    assert set(named) == {
        "workflow describe",
        "step caption",
        "step answer",
        "model captioner.caption",
        "model vqa.answer",
    }
    run = named["workflow describe"]
    assert run.parent is None
    assert run.attributes == {"mmserve.workflow": "describe"}
    for step, model, method in (("caption", "captioner", "caption"), ("answer", "vqa", "answer")):
        span = named[f"step {step}"]
        assert _parent(span) == _id(run)
        assert span.attributes is not None
        assert span.attributes["mmserve.step"] == step
        assert span.attributes["mmserve.step.kind"] == step  # `uses: caption` / `uses: answer`
        assert span.attributes["mmserve.step.status"] == "ok"
        assert span.attributes["mmserve.batch_size"] == 1
        call = named[f"model {model}.{method}"]
        assert _parent(call) == _id(span)
        assert call.kind == SpanKind.CLIENT
        assert call.attributes is not None
        assert call.attributes["mmserve.model"] == model
        assert call.attributes["mmserve.batch_size"] == 1
        assert all(s.status.status_code == StatusCode.UNSET for s in (run, span, call))


def test_a_failed_model_call_marks_its_call_step_and_run_failed(
    spans: InMemorySpanExporter,
) -> None:
    app = _local("answer")
    with pytest.raises(Exception, match="fake"):
        asyncio.run(app.run("answer", {"image": IMAGE, "question": FAIL_MARKER}))
    named = _by_name(spans.get_finished_spans())
    for name in ("model vqa.answer", "step answer", "workflow answer"):
        assert named[name].status.status_code == StatusCode.ERROR, name
        assert named[name].events[0].name == "exception"
    attributes = named["step answer"].attributes
    assert attributes is not None
    assert attributes["mmserve.step.status"] == "error"
    assert attributes["mmserve.error.code"]


@pytest.mark.usefixtures("_outside_a_replica")
def test_calls_batched_together_each_get_a_request_span_and_share_a_linked_batch_span(
    spans: InMemorySpanExporter,
) -> None:
    # the model deployment's code, placed in the ingress: the same spans as in a replica
    batch = {"max_size": 8, "wait_ms": 300}
    config = AppConfig.from_dict(
        {"models": {"captioner": {**FAKE, "placement": "ingress", "batch": batch}}}
    )
    gateway = PlacedGateway(config, HandleGateway(config, {}), start_ingress_models(config))
    engine = Engine(gateway)
    workflow = load_workflow(ROOT / "workflows" / "caption.yaml")

    async def run(request_id: str) -> None:
        token = attach(baggage.set_baggage(tracing.REQUEST_ID, request_id))  # as the HTTP layer
        try:
            await engine.run(workflow, {"image": IMAGE})
        finally:
            detach(token)

    async def runs() -> tuple[ReadableSpan, ...]:
        await asyncio.gather(run("run-1"), run("run-2"))
        found = spans.get_finished_spans()
        spans.clear()
        await run("run-3")  # a later batch: on the event loop (the fake model is fast)
        return found

    found = asyncio.run(runs())
    served = [span for span in found if span.name == "serve fake://.caption"]
    calls = [span for span in found if span.name == "model captioner.caption"]
    (batch,) = [span for span in found if span.name == "batch caption"]
    (later,) = [span for span in spans.get_finished_spans() if span.name == "batch caption"]
    assert later.attributes is not None and "mmserve.request_id" not in later.attributes
    assert len(served) == len(calls) == 2
    # each run is its own trace; each request span is its caller's child
    assert len({span.context.trace_id for span in calls if span.context}) == 2
    assert sorted(_parent(span) or 0 for span in served) == sorted(_id(span) for span in calls)
    assert all(span.kind == SpanKind.SERVER for span in served)
    assert all(span.attributes and span.attributes["mmserve.batch_size"] == 2 for span in served)
    # one model call for both: linked to both request spans, a child of the first
    assert batch.attributes is not None
    assert batch.attributes["mmserve.batch_size"] == 2
    assert sorted(link.context.span_id for link in batch.links) == sorted(map(_id, served))
    assert _parent(batch) in {_id(span) for span in served}
    # each request span has its own run's request id; the batch, serving both, has none
    assert sorted(span.attributes["mmserve.request_id"] for span in served if span.attributes) == [
        "run-1",
        "run-2",
    ]
    assert "mmserve.request_id" not in batch.attributes


def test_the_http_span_continues_the_callers_trace_and_every_span_has_the_request_id(
    spans: InMemorySpanExporter,
) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with TestClient(build_api(workflows=[str(ROOT / "workflows" / "caption.yaml")])) as client:
        response = client.post(
            "/v1/workflows/caption/run",
            json={"inputs": {"image": IMAGE}},
            headers={
                "x-request-id": "trace-me-1",
                "traceparent": f"00-{caller_trace}-{caller_span}-01",
            },
        )
        assert response.status_code == 200, response.text
        missing = client.post("/v1/workflows/nope/run", json={"inputs": {}})
        assert missing.status_code == 404
    found = spans.get_finished_spans()
    caller = int(caller_trace, 16)
    (other,) = [span for span in found if span.context and span.context.trace_id != caller]
    assert other.name == "POST /v1/workflows/{name}/run"  # the 404: a trace of its own
    assert other.attributes is not None and other.attributes["http.response.status_code"] == 404
    assert other.status.status_code == StatusCode.UNSET  # a 4xx is the caller's mistake
    named = _by_name(tuple(span for span in found if span is not other))
    http = named["POST /v1/workflows/{name}/run"]
    assert http.kind == SpanKind.SERVER
    assert http.context is not None and http.context.trace_id == caller
    assert _parent(http) == int(caller_span, 16)
    assert http.attributes is not None
    assert http.attributes["http.response.status_code"] == 200
    assert http.attributes["http.route"] == "/v1/workflows/{name}/run"
    assert _parent(named["workflow caption"]) == _id(http)
    assert set(named) == {"POST /v1/workflows/{name}/run", *RUN_SPANS}
    for name, span in named.items():
        assert span.attributes is not None
        assert span.attributes["mmserve.request_id"] == "trace-me-1", name


_UNSET_PROBE = """
import asyncio, json, sys
from opentelemetry import trace
from mmserve import tracing
from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp
from mmserve.workflow import Engine

app = LocalApp(AppConfig.from_dict({"models": {"captioner": %s}, "workflows": [%s]}))
result = asyncio.run(app.run("caption", {"image": %s}))
print(json.dumps({
    "provider": type(trace.get_tracer_provider()).__name__,
    "enabled": tracing.enabled(),
    "sdk_imported": "opentelemetry.sdk.trace" in sys.modules,
    "engine_gateway": type(Engine(app.gateway).gateway).__name__,
    "caption": result.outputs["caption"],
}))
"""


def test_without_the_endpoint_env_no_sdk_is_set_up_or_even_imported() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    probe = _UNSET_PROBE % (
        json.dumps(FAKE),
        json.dumps(str(ROOT / "workflows" / "caption.yaml")),
        json.dumps(IMAGE),
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["caption"]
    assert report["provider"] == "ProxyTracerProvider"  # the API's default: no-op spans
    assert report["enabled"] is False
    assert report["sdk_imported"] is False
    assert report["engine_gateway"] == "LocalGateway"  # not wrapped in a tracing gateway


def _docs_section() -> str:
    text = (ROOT / "docs" / "cluster.md").read_text(encoding="utf-8")
    return tracing_docs(text)


def test_the_tracing_docs_name_only_settings_the_sdk_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    import opentelemetry.sdk.environment_variables as sdk_env

    section = _docs_section()
    known = {getattr(sdk_env, name) for name in dir(sdk_env) if name.startswith("OTEL_")}
    named = set(re.findall(r"\bOTEL_[A-Z_]+\b", section))
    assert named and named <= known, named - known
    assert set(tracing.ENDPOINT_ENV) <= named
    # the sampler the docs suggest is one the SDK builds from the environment
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.1")
    assert "parentbased_traceidratio" in section
    assert "TraceIdRatioBased{0.1}" in TracerProvider().sampler.get_description()
