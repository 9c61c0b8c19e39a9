"""An agent whose llm is a remote OpenAI-compatible endpoint (the ``openai`` backend), over
the HTTP API: the endpoint's failures reach the caller as clear errors, and the next request
is served once the endpoint answers again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from api_support import ROOT
from fastapi.testclient import TestClient

from mmserve.agents import load_agents
from mmserve.config import AppConfig
from mmserve.gateway.local import LocalGateway
from mmserve.http.api import ApiRuntime, always_ready, create_api
from mmserve.registry import registry
from mmserve.stores import open_store_at
from mmserve.workflow import Engine, load_workflows
from openai_fake_server import FakeEndpoint, Reply, completion, fake_endpoint

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def endpoint() -> Iterator[FakeEndpoint]:
    with fake_endpoint() as running:
        yield running


@pytest.fixture(scope="module")
def client(endpoint: FakeEndpoint) -> Iterator[TestClient]:
    models: dict[str, Any] = {
        r: {"backend": "fake", "source": "fake://"}
        for r in ("image_encoder", "text_encoder", "captioner", "vqa")
    }
    models["llm"] = {
        "backend": "openai",
        "source": endpoint.url,
        "endpoint": {"model": "remote-llm", "timeout_s": 1.0},
    }
    config = AppConfig.from_dict(
        {
            "models": models,
            "store": {"kind": "memory"},
            "workflows": [str(ROOT / "workflows")],
            "agents": [str(ROOT / "agents")],
        },
        base_dir=ROOT,
    )
    workflows = load_workflows(config.workflow_paths())
    runtime = ApiRuntime(
        config=config,
        engine=Engine(LocalGateway(config), store=open_store_at("memory")),
        workflows=workflows,
        health=always_ready,
        registry=registry,
        agents=load_agents(config.agent_paths(), workflows=workflows, config=config),
    )
    with TestClient(create_api(runtime)) as test_client:
        yield test_client


def ask(client: TestClient, *, stream: bool = False) -> Any:
    body = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}
    return client.post("/v1/chat/completions", json={**body, "stream": stream})


@pytest.mark.parametrize(
    ("reply", "status", "code", "said"),
    [
        (Reply({"error": {"message": "boom"}}, status=500), 502, "remote_model_error", "boom"),
        (Reply(raw=b"{not json"), 502, "remote_model_error", "not JSON"),
        (Reply({"error": {"message": "no"}}, status=401), 502, "remote_model_auth", "API key"),
        (Reply(completion("late"), delay_s=2.5), 504, "remote_model_timeout", "within 1s"),
    ],
)
def test_endpoint_failures_are_clear_errors_and_the_next_request_is_served(
    client: TestClient, endpoint: FakeEndpoint, reply: Reply, status: int, code: str, said: str
) -> None:
    endpoint.script = [reply]
    for stream in (False, True):  # a failure at the first turn comes before any chunk
        answer = ask(client, stream=stream)
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert (error["code"], said in error["message"]) == (code, True)
        assert endpoint.url in error["message"]
    endpoint.script = [Reply(completion("fine again"))]
    assert ask(client).json()["choices"][0]["message"]["content"] == "fine again"
