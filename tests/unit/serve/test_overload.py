"""A model deployment past its queue: the run is answered at once with 503 ``overloaded``,
Retry-After and the error shape, through the ingress's own gateway (handles as served)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, cast

import pytest
from api_support import ROOT, b64, image_bytes
from fastapi.testclient import TestClient
from ray.serve.exceptions import BackPressureError

from mmserve.config import AppConfig
from mmserve.http.api import ApiRuntime, always_ready, create_api
from mmserve.registry import registry
from mmserve.serve.handles import HandleGateway
from mmserve.serve.plan import plan_models
from mmserve.serve.replica_retry import again_if_replica_dies
from mmserve.stores import open_store_at
from mmserve.workflow import Engine, load_workflows

pytestmark = pytest.mark.unit


class _FullQueue:
    """A model deployment's handle whose router refuses every call: its queue is full
    (what Serve raises in the calling replica past ``max_queued_requests``)."""

    def __init__(self) -> None:
        self.calls = 0

    def options(self, **_: Any) -> _FullQueue:
        return self

    def __getattr__(self, method: str) -> _FullQueue:
        return self  # every method of the deployment (``image_input`` included) is refused

    def remote(self, *_: Any) -> _Refused:
        self.calls += 1
        return _Refused()


class _Refused:
    def __await__(self) -> Generator[Any, None, Any]:
        raise BackPressureError(
            num_queued_requests=64, max_queued_requests=64, status_code=503, retry_after_s=1
        )
        yield  # a generator: awaiting it raises


def _config() -> AppConfig:
    fake = {"backend": "fake", "source": "fake://"}
    return AppConfig.from_dict(
        {
            "models": {r: fake for r in ("image_encoder", "text_encoder", "captioner", "vqa")},
            "store": {"kind": "memory"},
            "workflows": [str(ROOT / "workflows")],
            "agents": [],
            "server": {"retry_after_s": 3},
        },
        base_dir=ROOT,
    )


def test_a_full_model_queue_is_a_503_overloaded_with_retry_after_at_once() -> None:
    config = _config()
    handle = _FullQueue()
    handles = {name: again_if_replica_dies(cast(Any, handle), model=name) for name in config.models}
    runtime = ApiRuntime(
        config=config,
        engine=Engine(HandleGateway(config, handles), store=open_store_at("memory")),
        workflows=load_workflows(config.workflow_paths()),
        health=always_ready,
        registry=registry,
    )
    with TestClient(create_api(runtime)) as client:
        body = {"inputs": {"image": b64(image_bytes())}}
        response = client.post("/v1/workflows/caption/run", json=body)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "3"  # server.retry_after_s
    error = response.json()["error"]
    assert error["code"] == "overloaded"
    assert "model 'captioner' is at capacity" in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert handle.calls == 1  # a full queue is an answer: not sent again


def test_model_queues_are_bounded_by_default() -> None:
    plans = plan_models(_config())
    assert {plan.options["max_queued_requests"] for plan in plans} == {64}
