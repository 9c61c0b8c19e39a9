"""The ``llm`` role: ``chat`` (messages, tools, limits) -> one assistant message.

A message carries text and, from the assistant, tool calls (a tool name and JSON arguments);
a ``tool`` message carries one tool's result back, tied to its call by ``tool_call_id``.
Tools are JSON-schema function specs, as in the OpenAI chat API.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mmserve.models.roles.role import RoleMethod, register_role


class ToolSpec(BaseModel):
    """A function the model may call: its name, what it does, its arguments' JSON Schema."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class ToolCall(BaseModel):
    """One call the model asks for."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Ties the tool's result message to this call.")
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ChatMessage(BaseModel):
    """One message of a conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(
        default_factory=list, description="Calls asked for (assistant messages)."
    )
    tool_call_id: str | None = Field(default=None, description="The call answered (tool).")
    name: str | None = Field(default=None, description="The tool answering (tool messages).")


class ChatItem(BaseModel):
    """One chat request: the conversation so far, the tools offered, generation limits."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[ToolSpec] = Field(default_factory=list)
    max_new_tokens: int = Field(default=256, ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="0: greedy.")


LLM = register_role(
    "llm",
    description="A language model that answers a conversation, calling tools when it needs.",
    methods={
        "chat": RoleMethod(
            item=ChatItem,
            result=ChatMessage,
            description="One assistant message (text and tool calls) per conversation.",
        )
    },
    sample_items={
        "chat": [ChatItem(messages=[ChatMessage(role="user", content="hello")], max_new_tokens=4)]
    },
)

__all__ = ["LLM", "ChatItem", "ChatMessage", "ToolCall", "ToolSpec"]
