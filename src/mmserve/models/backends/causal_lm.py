"""``causal-lm``: a chat model through ``AutoModelForCausalLM`` and its tokenizer's chat template.

The conversation and the tools go through the tokenizer's chat template (``tools=``, as
Hugging Face chat templates take them); the model's reply is parsed for Qwen2.5-Instruct
style tool calls, ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``. Text outside
the calls is the message's content; a call whose JSON does not parse stays in the content as
text (the model's answer, however odd), never an error. Decoding is greedy unless the item
asks for a temperature. Each conversation is generated on its own (conversations in one batch
do not pad each other). New tokens: the item's ``max_new_tokens``, at most the model entry's
``max_new_tokens``.

Sources: a hub id (e.g. ``Qwen/Qwen2.5-0.5B-Instruct``), a folder, or ``tiny://qwen2`` (a
tiny random Qwen2 with a Qwen-style chat template, built offline; its text is nonsense).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from mmserve.models.device import placement_for
from mmserve.models.hf import HuggingFaceBackend
from mmserve.models.roles import ChatItem, ChatMessage, ToolCall
from mmserve.models.sources.resolve import from_pretrained, load_model, resolve_source
from mmserve.models.spec import ModelSpec

_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
_END_MARKERS = ("<|im_end|>", "<|endoftext|>")


def template_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Messages in the shape Hugging Face chat templates read (OpenAI-like tool calls)."""
    shaped: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            entry["tool_calls"] = [
                {"type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in message.tool_calls
            ]
        if message.role == "tool":
            entry["name"] = message.name or ""
        shaped.append(entry)
    return shaped


def parse_reply(text: str, *, call_prefix: str = "call") -> ChatMessage:
    """An assistant message from generated text: its tool calls and the rest as content."""
    for marker in _END_MARKERS:
        text = text.split(marker, 1)[0]
    calls: list[ToolCall] = []
    kept: list[str] = []
    cursor = 0
    for match in _CALL.finditer(text):
        call = _call(match.group(1), f"{call_prefix}_{len(calls)}")
        kept.append(text[cursor : match.start()])
        if call is None:
            kept.append(match.group(0))
        else:
            calls.append(call)
        cursor = match.end()
    kept.append(text[cursor:])
    return ChatMessage(role="assistant", content="".join(kept).strip(), tool_calls=calls)


def _call(body: str, call_id: str) -> ToolCall | None:
    try:
        data = json.loads(body.strip())
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(id=call_id, name=data["name"], arguments=arguments)


class CausalLmBackend(HuggingFaceBackend):
    """A causal language model with a chat template (see the module docs)."""

    roles: ClassVar[frozenset[str]] = frozenset({"llm"})

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._placement = placement_for(spec)
        resolved = resolve_source(spec.source, revision=spec.revision)
        self._tokenizer = from_pretrained(AutoTokenizer, resolved)
        self._model = load_model(AutoModelForCausalLM, resolved, self._placement)
        self._calls = 0

    def chat(self, items: Sequence[ChatItem]) -> list[ChatMessage]:
        """One assistant message per conversation (see the module docs)."""
        return [self._reply(item) for item in items]

    def _reply(self, item: ChatItem) -> ChatMessage:
        tools = [{"type": "function", "function": tool.model_dump()} for tool in item.tools] or None
        batch = self._tokenizer.apply_chat_template(
            template_messages(item.messages),
            tools=tools,
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        inputs = self._placement.move(batch)
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": item.temperature}
            if item.temperature > 0
            else {"do_sample": False, "num_beams": 1}
        )
        with torch.inference_mode():
            output = self._model.generate(
                **inputs,
                max_new_tokens=min(item.max_new_tokens, self.spec.max_new_tokens),
                pad_token_id=self._tokenizer.pad_token_id,
                **sampling,
            )
        prompt_length = inputs["input_ids"].shape[1]
        text = self._tokenizer.decode(output[0, prompt_length:], skip_special_tokens=False)
        self._calls += 1
        return parse_reply(str(text), call_prefix=f"call_{self._calls}")


__all__ = ["CausalLmBackend", "parse_reply", "template_messages"]
