"""The ``openai`` llm backend against a small OpenAI-compatible endpoint run by the test:
tools out, tool calls in, tool results back, and each way the endpoint can fail."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmserve.agents import Agent, AgentRun, AgentSpec
from mmserve.config import AppConfig
from mmserve.errors import (
    ConfigError,
    ModelLoadError,
    RemoteModelAuthError,
    RemoteModelBusyError,
    RemoteModelError,
    RemoteModelTimeoutError,
)
from mmserve.gateway.local import LocalGateway
from mmserve.models.backends.openai_chat import OpenAIChatBackend
from mmserve.models.roles import ChatItem, ChatMessage, ToolSpec
from mmserve.models.spec import EndpointSpec, ModelSpec
from mmserve.workflow import Engine, load_workflows
from openai_fake_server import FakeEndpoint, Reply, completion, fake_endpoint

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
KEY_ENV = "MMSERVE_TEST_REMOTE_KEY"
RED = Image.new("RGB", (16, 16), (220, 30, 30))


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEndpoint]:
    monkeypatch.setenv(KEY_ENV, "sk-test-123")
    with fake_endpoint() as running:
        yield running


def backend(url: str, *, timeout_s: float = 10.0, key: str | None = KEY_ENV) -> OpenAIChatBackend:
    endpoint = EndpointSpec(model="remote-llm", api_key_env=key, timeout_s=timeout_s)
    return OpenAIChatBackend(ModelSpec(source=url, endpoint=endpoint))


def ask(llm: OpenAIChatBackend, text: str = "hi") -> ChatMessage:
    (reply,) = llm.chat([ChatItem(messages=[ChatMessage(role="user", content=text)])])
    return reply


def test_an_agent_calls_tools_through_the_endpoint_and_sends_their_results_back(
    endpoint: FakeEndpoint,
) -> None:
    endpoint.script = [
        Reply(completion(calls=[("caption", {"image": "image_1"})])),
        Reply(completion("The picture is red.")),
    ]
    models: dict[str, Any] = {
        r: {"backend": "fake", "source": "fake://"}
        for r in ("image_encoder", "text_encoder", "captioner", "vqa")
    }
    models["llm"] = {
        "backend": "openai",
        "source": endpoint.url,
        "endpoint": {"model": "remote-llm", "api_key_env": KEY_ENV},
    }
    config = AppConfig.from_dict({"models": models, "store": {"kind": "memory"}})
    workflows = load_workflows([ROOT / "workflows"])
    agent = Agent(AgentSpec(name="t", model="llm", tools=["caption"], system="Be brief."))
    run = AgentRun(agent, Engine(LocalGateway(config)), workflows)
    question = ChatMessage(role="user", content="what is in image_1?")
    result = asyncio.run(run.run([question], [RED], timeout_s=30))

    assert result.status == "ok"
    assert result.message.content == "The picture is red."
    assert [(t.tool, t.arguments, t.status) for t in result.trace] == [
        ("caption", {"image": "image_1"}, "ok")
    ]
    first, second = (r["body"] for r in endpoint.requests)
    assert {r["path"] for r in endpoint.requests} == {"/v1/chat/completions"}
    assert endpoint.headers[0]["authorization"] == "Bearer sk-test-123"
    assert first["model"] == "remote-llm"
    (tool,) = first["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "caption"
    assert "image" in tool["function"]["parameters"]["properties"]
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    # the tool call went back as the endpoint wrote it, then the result, tied by its id
    call, result_message = second["messages"][2:]
    assert call["role"] == "assistant"
    assert call["tool_calls"][0]["id"] == "call_0"
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == {"image": "image_1"}
    assert result_message["role"] == "tool"
    assert result_message["tool_call_id"] == "call_0"
    assert json.loads(result_message["content"]) == {"caption": "a red image"}


def test_arguments_that_are_not_a_json_object_become_an_empty_call(
    endpoint: FakeEndpoint,
) -> None:
    endpoint.script = [Reply(completion(calls=[("caption", "{not json")]))]
    reply = ask(backend(endpoint.url))
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("caption", {})]


def test_tools_are_offered_in_openai_format_and_a_batch_is_answered_in_order(
    endpoint: FakeEndpoint,
) -> None:
    endpoint.script = [Reply(completion("ok"))]
    llm = backend(endpoint.url, key=None)
    tool = ToolSpec(name="echo", description="Echo.", parameters={"type": "object"})
    items = [
        ChatItem(messages=[ChatMessage(role="user", content=f"q{n}")], tools=[tool])
        for n in range(3)
    ]
    assert [m.content for m in llm.chat(items)] == ["ok"] * 3
    sent = sorted(r["body"]["messages"][0]["content"] for r in endpoint.requests)
    assert sent == ["q0", "q1", "q2"]
    assert endpoint.requests[0]["body"]["tools"] == [
        {"type": "function", "function": tool.model_dump()}
    ]
    assert "authorization" not in endpoint.headers[0]


@pytest.mark.parametrize(
    ("reply", "error", "said"),
    [
        (Reply({"error": {"message": "boom"}}, status=500), RemoteModelError, "failed (500): boom"),
        (Reply(raw=b"<html>bad gateway</html>", status=502), RemoteModelError, "(502)"),
        (Reply(raw=b"not json at all"), RemoteModelError, "a body that is not JSON"),
        (Reply({"choices": []}), RemoteModelError, "not a chat completion"),
        (Reply({"error": {"message": "bad key"}}, status=401), RemoteModelAuthError, "bad key"),
        (Reply({"error": {"message": "slow down"}}, status=429), RemoteModelBusyError, "429"),
        (Reply({"detail": "no such model"}, status=404), RemoteModelError, "no such model"),
    ],
)
def test_endpoint_failures_are_clear_mmserve_errors(
    endpoint: FakeEndpoint, reply: Reply, error: type[Exception], said: str
) -> None:
    endpoint.script = [reply]
    with pytest.raises(error) as caught:
        ask(backend(endpoint.url))
    assert type(caught.value) is error
    assert said in str(caught.value)
    assert endpoint.url in str(caught.value)
    assert "sk-test-123" not in str(caught.value)


def test_a_slow_endpoint_times_out_with_a_504_error(endpoint: FakeEndpoint) -> None:
    endpoint.script = [Reply(completion("late"), delay_s=3.0)]
    with pytest.raises(RemoteModelTimeoutError, match=r"did not answer within 0.5s") as caught:
        ask(backend(endpoint.url, timeout_s=0.5))
    assert caught.value.status == 504
    assert caught.value.hint is not None and "timeout_s" in caught.value.hint


def test_an_unreachable_endpoint_is_named() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RemoteModelError, match=r"cannot reach the endpoint"):
        ask(backend(f"http://127.0.0.1:{port}/v1", key=None))


def test_bad_sources_and_entries_are_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ModelLoadError, match="base URL"):
        backend("Qwen/Qwen2.5-7B-Instruct", key=None)
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ModelLoadError, match=rf"\${KEY_ENV}, but it is unset"):
        backend("http://127.0.0.1:9/v1")
    with pytest.raises(ModelLoadError, match="needs the model's name"):
        OpenAIChatBackend(ModelSpec(source="http://127.0.0.1:9/v1"))
    with pytest.raises(ConfigError, match=r"'openai' backend needs 'endpoint"):
        AppConfig.from_dict({"models": {"llm": {"backend": "openai", "source": "http://x/v1"}}})
    with pytest.raises(ConfigError, match=r"api_key_env"):
        AppConfig.from_dict(
            {
                "models": {
                    "llm": {
                        "backend": "openai",
                        "source": "http://x/v1",
                        "endpoint": {"model": "m", "api_key_env": "sk-the-key-itself!"},
                    }
                }
            }
        )


def test_a_remote_model_is_not_warmed_up_unless_its_entry_says_so() -> None:
    endpoint = {"model": "m"}
    remote = {"backend": "openai", "source": "http://x/v1", "endpoint": endpoint}
    config = AppConfig.from_dict(
        {"models": {"llm": remote, "other": {**remote, "role": "llm", "warmup": True}}}
    )
    assert (config.models["llm"].warmup, config.models["other"].warmup) == (False, True)
    local = AppConfig.from_dict(
        {"models": {"llm": {"backend": "fake-llm", "source": "fake-llm://"}}}
    )
    assert local.models["llm"].warmup is True
