"""The OpenAI-compatible routes over HTTP (in-process app: fake llm, fake models, no Ray),
with the official ``openai`` client and with raw requests for the bad ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from api_support import AUTH, KEY, b64, build_api, image_bytes, serving
from fastapi.testclient import TestClient

from mmserve.models.backends.fake_llm import LOOP_MARKER

pytestmark = pytest.mark.unit

RED = f"data:image/png;base64,{b64(image_bytes())}"
ASK = 'caption and answer question="what colour?"'
ANSWER = 'caption: {"caption": "a red image"}; answer: {"answer": "red", "score": 1.0}'


def user(text: str, *images: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
    return {"role": "user", "content": parts}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_api()) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def official() -> Iterator[openai.OpenAI]:
    with serving(build_api()) as url:
        with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as api:
            yield api


def chat(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/v1/chat/completions", json={"model": "assistant", **body})


def test_the_official_client_gets_the_answer_made_from_the_tools_it_called(
    official: openai.OpenAI,
) -> None:
    completion = official.chat.completions.create(
        model="assistant",
        messages=[user(ASK, RED)],  # type: ignore[list-item]
    )
    (choice,) = completion.choices
    assert choice.message.content == ANSWER
    assert choice.finish_reason == "stop"
    assert completion.model == "assistant"
    details = (completion.model_extra or {})["mmserve"]
    assert [(t["tool"], t["arguments"]) for t in details["trace"]] == [
        ("caption", {"image": "image_1"}),
        ("answer", {"image": "image_1", "question": "what colour?"}),
    ]
    assert details["turns"] == 2
    assert completion.id == f"chatcmpl-{details['request_id']}"


def test_the_official_client_streams_the_tool_calls_in_order_then_the_answer(
    official: openai.OpenAI,
) -> None:
    stream = official.chat.completions.create(
        model="assistant",
        messages=[user(ASK, RED)],  # type: ignore[list-item]
        stream=True,
    )
    chunks = list(stream)
    calls = [c for chunk in chunks for c in (chunk.choices[0].delta.tool_calls or [])]
    assert [(c.index, c.function.name) for c in calls if c.function] == [
        (0, "caption"),
        (1, "answer"),
    ]
    assert json.loads(calls[0].function.arguments or "") == {"image": "image_1"}  # type: ignore[union-attr]
    results = [(c.model_extra or {}).get("mmserve", {}).get("tool_result") for c in chunks]
    assert [(r["tool"], r["status"]) for r in results if r] == [("caption", "ok"), ("answer", "ok")]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == ANSWER
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_the_stream_ends_with_done_and_a_multi_turn_conversation_is_taken(
    client: TestClient,
) -> None:
    body = {
        "stream": True,
        "messages": [
            {"role": "system", "content": "Be short."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "You said: hi", "tool_calls": None},
            {"role": "user", "content": "hello again"},
        ],
    }
    answer = chat(client, body)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in answer.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    content = "".join(
        json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1]
    )
    assert content == "You said: hello again"


def test_models_lists_the_agents(client: TestClient, official: openai.OpenAI) -> None:
    assert [m.id for m in official.models.list()] == ["assistant"]
    assert official.models.retrieve("assistant").owned_by == "mmserve"
    missing = client.get("/v1/models/nobody")
    assert missing.status_code == 404
    assert "known agents: assistant" in missing.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (
            {"model": "nobody", "messages": [{"role": "user", "content": "hi"}]},
            404,
            "known agents: assistant",
        ),
        ({"messages": []}, 422, "messages"),
        ({"messages": [user("caption image_2", RED)]}, 422, "'image_2'"),
        ({"messages": [user("caption", "https://example.com/cat.png")]}, 422, "data URL"),
        (
            {"messages": [user("caption", "data:image/png;base64,bm90IGFuIGltYWdl")]},
            422,
            "content[1]",
        ),
        ({"messages": [{"role": "tool", "content": "{}", "tool_call_id": "x"}]}, 422, "'tool'"),
        (
            {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]},
            422,
            "tools",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            422,
            "input_audio",
        ),
        (
            {"messages": [{"role": "user", "content": f"caption {LOOP_MARKER}"}]},
            422,
            "max_turns (6)",
        ),
        ({"messages": [{"role": "user", "content": "hello fake:fail"}]}, 500, "ValueError"),
    ],
)
def test_bad_requests_get_clear_errors_and_the_next_is_served(
    client: TestClient, body: dict[str, Any], status: int, said: str
) -> None:
    answer = client.post("/v1/chat/completions", json={"model": "assistant", **body})
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert said in error["message"]
    assert error["request_id"] == answer.headers["x-request-id"]
    assert (
        chat(client, {"messages": [user("hello")]}).json()["choices"][0]["message"]["content"]
        == "You said: hello"
    )


def test_a_loop_past_max_turns_ends_a_stream_with_an_error_the_client_raises(
    official: openai.OpenAI,
) -> None:
    stream = official.chat.completions.create(
        model="assistant",
        messages=[user(f"caption {LOOP_MARKER}", RED)],  # type: ignore[list-item]
        stream=True,
    )
    seen = 0
    with pytest.raises(openai.APIError, match=r"still calling tools .* max_turns \(6\)"):
        for _ in stream:
            seen += 1
    assert seen > 6  # the turns' tool calls arrived before the error


def test_an_oversized_image_is_refused_with_413() -> None:
    with TestClient(build_api({"limits": {"max_image_pixels": 100}})) as small:
        answer = chat(small, {"messages": [user("caption", RED)]})
    assert answer.status_code == 413
    assert "messages[0].content[1]" in answer.json()["error"]["message"]


def test_the_routes_need_the_key_when_one_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMSERVE_UNIT_KEY", KEY)
    app = build_api({"api_key_env": "MMSERVE_UNIT_KEY"})
    with serving(app) as url:
        with openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0) as api:
            with pytest.raises(openai.AuthenticationError):
                api.models.list()
        with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0) as api:
            reply = api.chat.completions.create(
                model="assistant", messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.choices[0].message.content == "You said: hi"
    with TestClient(app) as raw:
        assert raw.post("/v1/chat/completions", json={}).status_code == 401
        assert raw.get("/v1/models", headers=AUTH).status_code == 200
