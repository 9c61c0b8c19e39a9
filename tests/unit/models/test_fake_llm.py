"""The fake llm: a scripted, deterministic chat model with tool calls (drives the agent tests)."""

from __future__ import annotations

import pytest

from mmserve.errors import ModelLoadError
from mmserve.models.backends.fake_llm import LOOP_MARKER, FakeLlmBackend
from mmserve.models.roles import ChatItem, ChatMessage, ToolSpec, role_spec
from mmserve.models.spec import ModelSpec
from mmserve.registry import registry

pytestmark = pytest.mark.unit

CAPTION = ToolSpec(
    name="caption",
    description="Describe an image.",
    parameters={
        "type": "object",
        "properties": {
            "image": {"type": "string", "description": "An image handle (image_1, ...)."},
            "prompt": {"type": "string", "default": ""},
        },
        "required": ["image"],
    },
)
ANSWER = ToolSpec(
    name="answer",
    parameters={
        "type": "object",
        "properties": {
            "image": {"type": "string", "description": "An image handle (image_1, ...)."},
            "question": {"type": "string"},
        },
        "required": ["image", "question"],
    },
)


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def chat(*messages: ChatMessage) -> ChatMessage:
    fake = FakeLlmBackend(ModelSpec(source="fake-llm://"))
    return fake.chat([ChatItem(messages=list(messages), tools=[CAPTION, ANSWER])])[0]


def test_registered_for_the_llm_role_with_its_method() -> None:
    assert registry.get("model", "fake-llm") is FakeLlmBackend
    assert role_spec("llm").missing_methods(FakeLlmBackend) == []


def test_named_tools_are_called_in_the_order_named_with_arguments_from_the_message() -> None:
    reply = chat(user('answer question="what colour?" about image_2, then caption image_1'))
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [
        ("answer", {"image": "image_1", "question": "what colour?"}),
        ("caption", {"image": "image_1"}),
    ]
    assert len({c.id for c in reply.tool_calls}) == 2


def test_a_handle_comes_from_the_conversation_when_the_message_names_none() -> None:
    reply = chat(user("here is image_3"), ChatMessage(role="assistant"), user("caption it"))
    assert reply.tool_calls[0].arguments == {"image": "image_3"}


def test_after_tool_results_it_answers_quoting_them() -> None:
    asked = chat(user("caption image_1"))
    result = ChatMessage(
        role="tool", tool_call_id=asked.tool_calls[0].id, name="caption", content='{"a": 1}'
    )
    reply = chat(user("caption image_1"), asked, result)
    assert reply.tool_calls == []
    assert reply.content == 'caption: {"a": 1}'


def test_no_tool_named_is_answered_in_text_and_the_loop_marker_keeps_calling() -> None:
    assert chat(user("hello")).content == "You said: hello"
    said = f"caption image_1 {LOOP_MARKER}"
    result = ChatMessage(role="tool", name="caption", content="x")
    assert chat(user(said), chat(user(said)), result).tool_calls[0].name == "caption"


def test_a_bad_source_is_refused_with_the_form_it_takes() -> None:
    with pytest.raises(ModelLoadError, match="fake-llm://"):
        FakeLlmBackend.check_source(ModelSpec(source="fake-llm://x"))
    with pytest.raises(ValueError, match="fails on purpose"):
        chat(user("caption fake:fail"))
