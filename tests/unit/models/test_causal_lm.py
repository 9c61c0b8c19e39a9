"""``causal-lm``: tool calls parsed from Qwen-style output; tiny://qwen2 runs through the loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image

from mmserve.agents import Agent, AgentRun, AgentSpec, tool_spec
from mmserve.config import AppConfig
from mmserve.gateway.local import LocalGateway
from mmserve.models.backends.causal_lm import CausalLmBackend, parse_reply, template_messages
from mmserve.models.roles import ChatItem, ChatMessage, ToolCall
from mmserve.models.spec import ModelSpec
from mmserve.workflow import Engine, load_workflows

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def test_tool_calls_are_parsed_and_the_rest_is_the_content() -> None:
    text = (
        'Let me look.\n<tool_call>\n{"name": "caption", "arguments": {"image": "image_1"}}\n'
        '</tool_call>\n<tool_call>{"name": "answer", "arguments": "{\\"question\\": \\"why\\"}"}'
        "</tool_call><|im_end|>ignored"
    )
    reply = parse_reply(text, call_prefix="c")
    assert reply.content == "Let me look."
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("c_0", "caption", {"image": "image_1"}),
        ("c_1", "answer", {"question": "why"}),
    ]


def test_a_malformed_or_unfinished_call_stays_text_and_never_raises() -> None:
    assert (
        parse_reply("<tool_call>{not json</tool_call>").content
        == "<tool_call>{not json</tool_call>"
    )
    assert parse_reply('<tool_call>{"arguments": {}}').tool_calls == []
    unfinished = parse_reply('<tool_call>{"name": "caption", "arguments": {}}')
    assert unfinished.tool_calls[0].name == "caption"


def test_tool_calls_and_results_reach_the_template_in_its_shape() -> None:
    call = ToolCall(id="c", name="caption", arguments={"image": "image_1"})
    shaped = template_messages(
        [
            ChatMessage(role="assistant", tool_calls=[call]),
            ChatMessage(role="tool", name="caption", tool_call_id="c", content="{}"),
        ]
    )
    assert shaped[0]["tool_calls"] == [
        {"type": "function", "function": {"name": "caption", "arguments": {"image": "image_1"}}}
    ]
    assert shaped[1] == {"role": "tool", "content": "{}", "name": "caption"}


@pytest.fixture(scope="module")
def tiny_qwen() -> CausalLmBackend:
    return CausalLmBackend(ModelSpec(source="tiny://qwen2", max_new_tokens=16))


def test_the_tiny_qwen2_prompt_carries_the_tools_and_greedy_replies_repeat(
    tiny_qwen: CausalLmBackend,
) -> None:
    caption = tool_spec(load_workflows([ROOT / "workflows" / "caption.yaml"])["caption"])
    item = ChatItem(messages=[ChatMessage(role="user", content="caption image_1")], tools=[caption])
    prompt = tiny_qwen._tokenizer.apply_chat_template(
        template_messages(item.messages),
        tools=[{"type": "function", "function": caption.model_dump()}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert '"name": "caption"' in prompt and "<tool_call>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    first, second = tiny_qwen.chat([item, item])
    assert first.role == "assistant"
    assert first.content == second.content
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        (c.name, c.arguments) for c in second.tool_calls
    ]


def test_causal_lm_on_tiny_qwen2_runs_the_agent_loop_to_a_clean_end() -> None:
    fake = {"backend": "fake", "source": "fake://"}
    config = AppConfig.from_dict(
        {
            "models": {
                "captioner": fake,
                "vqa": fake,
                "llm": {"backend": "causal-lm", "source": "tiny://qwen2", "max_new_tokens": 16},
            }
        }
    )
    workflows = load_workflows([ROOT / "workflows"])
    spec = AgentSpec(name="t", model="llm", tools=["caption", "answer"], max_turns=2)
    agent_run = AgentRun(Agent(spec), Engine(LocalGateway(config)), workflows)
    message = ChatMessage(role="user", content="caption image_1")
    image = Image.new("RGB", (16, 16), (220, 30, 30))
    result = asyncio.run(agent_run.run([message], [image], timeout_s=120))
    # its text is nonsense: it either answers at once or calls (nonsense) tools to max_turns
    assert result.status in ("ok", "max_turns")
    assert 1 <= result.turns <= 2
    assert result.message.role == "assistant"
