"""``fake-llm``: a deterministic, weight-free ``llm`` that follows a short script, for tests.

It reads the conversation the way a test author can predict:

* after tool results (the last message is a ``tool`` message), it answers in text, quoting
  every result since its last tool calls: ``"caption: {...}; answer: {...}"``;
* otherwise it looks at the last user message: every offered tool whose name appears in it as
  a word is called, in the order the names appear. Each argument of a tool comes from
  ``name=value`` in the message (``value`` a word or a "quoted text") when present; else an
  argument described as an image handle gets the last handle (``image_<n>``) written in the
  message, or the newest handle of the conversation; else a required string argument gets
  the whole message. Optional arguments not given are left out;
* a message naming no tool is answered ``"You said: <message>"``.

For tests of the loop's bounds, a user message containing :data:`LOOP_MARKER`
(``fake:loop``) makes it call the named tools again after every result, so the loop only ends
at ``max_turns``. A message containing ``fake:fail`` makes the call raise ``ValueError``.

Source: ``fake-llm://`` (no options).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from mmserve.errors import ModelLoadError
from mmserve.models.backends.fake import FAIL_MARKER
from mmserve.models.roles import ChatItem, ChatMessage, ToolCall, ToolSpec
from mmserve.models.spec import ModelSpec

#: A user message containing this makes the fake llm call its tools on every turn.
LOOP_MARKER = "fake:loop"
#: The word that marks an argument as an image handle in its description.
HANDLE_WORD = "handle"
_HANDLE = re.compile(r"\bimage_\d+\b")
_ASSIGN = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|\S+)")


class FakeLlmBackend:
    """Deterministic weight-free chat model with tool calls (see the module docs)."""

    roles: ClassVar[frozenset[str]] = frozenset({"llm"})

    @classmethod
    def check_source(cls, spec: ModelSpec) -> None:
        """The source must be ``fake-llm://`` (nothing to download)."""
        if spec.source != "fake-llm://":
            raise ModelLoadError(
                source=spec.source,
                reason="the 'fake-llm' backend takes the source fake-llm:// (no options)",
            )

    def __init__(self, spec: ModelSpec) -> None:
        self.check_source(spec)
        self.spec = spec

    def chat(self, items: Sequence[ChatItem]) -> list[ChatMessage]:
        """One scripted assistant message per conversation (see the module docs)."""
        return [self._reply(item) for item in items]

    def _reply(self, item: ChatItem) -> ChatMessage:
        users = [m for m in item.messages if m.role == "user"]
        said = users[-1].content if users else ""
        if FAIL_MARKER in said:
            raise ValueError(f"the fake llm fails on purpose on a message with {FAIL_MARKER!r}")
        last = item.messages[-1]
        if last.role == "tool" and LOOP_MARKER not in said:
            return ChatMessage(role="assistant", content=_quote_results(item.messages))
        calls = self._calls(said, item.tools, item.messages)
        if not calls:
            return ChatMessage(role="assistant", content=f"You said: {said}")
        return ChatMessage(role="assistant", tool_calls=calls)

    def _calls(
        self, said: str, tools: Sequence[ToolSpec], messages: Sequence[ChatMessage]
    ) -> list[ToolCall]:
        found = []
        for tool in tools:
            match = re.search(rf"\b{re.escape(tool.name)}\b", said)
            if match:
                found.append((match.start(), tool))
        turn = sum(1 for m in messages if m.role == "assistant")
        return [
            ToolCall(
                id=f"call_{turn}_{n}", name=tool.name, arguments=_arguments(tool, said, messages)
            )
            for n, (_, tool) in enumerate(sorted(found, key=lambda pair: pair[0]))
        ]


def _arguments(tool: ToolSpec, said: str, messages: Sequence[ChatMessage]) -> dict[str, Any]:
    given = {key: value.strip('"') for key, value in _ASSIGN.findall(said)}
    properties: dict[str, Any] = tool.parameters.get("properties", {})
    required = set(tool.parameters.get("required", []))
    arguments: dict[str, Any] = {}
    for name, schema in properties.items():
        if name in given:
            arguments[name] = _typed(given[name], schema)
        elif HANDLE_WORD in str(schema.get("description", "")):
            handle = _newest_handle(said, messages)
            if handle is not None:
                arguments[name] = handle
        elif name in required and schema.get("type") == "string":
            arguments[name] = said
    return arguments


def _typed(text: str, schema: dict[str, Any]) -> Any:
    if schema.get("type") in ("integer", "number", "boolean", "array", "object"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _newest_handle(said: str, messages: Sequence[ChatMessage]) -> str | None:
    named = _HANDLE.findall(said)
    if named:
        return str(named[-1])
    for message in reversed(messages):
        handles = _HANDLE.findall(message.content)
        if handles:
            return str(handles[-1])
    return None


def _quote_results(messages: Sequence[ChatMessage]) -> str:
    results: list[str] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        results.append(f"{message.name}: {message.content}")
    return "; ".join(reversed(results))


__all__ = ["HANDLE_WORD", "LOOP_MARKER", "FakeLlmBackend"]
