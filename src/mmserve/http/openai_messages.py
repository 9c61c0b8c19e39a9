"""OpenAI chat-completion requests as agent conversations, and agent results as completions.

A request's ``model`` names an agent. Its messages become the agent's conversation: text parts
are joined; each ``image_url`` part (a ``data:image/...;base64,`` URL; the server fetches no
URL) becomes the next handle, ``image_1``, ``image_2``, ..., written in its place as
``[image_1]``, and passes the same door limits as any image input (413 over one). ``system``
and ``developer`` messages are system messages; an assistant's earlier ``tool_calls`` are left
out (the agent ran them here) and ``tool`` messages are refused, as are request ``tools``
(an agent's tools are its workflows) and ``n`` > 1.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mmserve.agents.loop import HANDLE_PREFIX, ToolTrace
from mmserve.config import LimitsConfig
from mmserve.errors import InputError
from mmserve.http.limits import PendingImage, check_pixel_budget, check_text, pending_image
from mmserve.models.roles import ChatMessage

DATA_URL = "data:"


class ImageUrl(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(description="A data URL: data:image/png;base64,...")
    detail: str | None = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = Field(description="`text` or `image_url`.")
    text: str | None = None
    image_url: ImageUrl | None = None


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request; fields mmserve does not use are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="The agent's name (GET /v1/models lists them).")
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)
    n: int | None = Field(default=None, ge=1)
    tools: list[Any] | None = Field(
        default=None, description="Not taken: an agent's tools are its workflows."
    )


class AnswerMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AnswerMessage
    finish_reason: Literal["stop"] = "stop"


class AgentDetails(BaseModel):
    """What OpenAI's format has no place for: the run's tool calls and the images made."""

    status: Literal["ok"] = "ok"
    turns: int = Field(description="LLM calls made.")
    trace: list[ToolTrace] = Field(description="Every tool call with its workflow's trace.")
    images: dict[str, str] = Field(description="Images the tools made: handle -> base64 PNG.")
    request_id: str


class ChatCompletion(BaseModel):
    """OpenAI's chat completion, with the agent's run under ``mmserve``."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = Field(description="The agent's name.")
    choices: list[Choice]
    mmserve: AgentDetails


class ModelCard(BaseModel):
    id: str = Field(description="An agent's name: the `model` of a chat completion.")
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "mmserve"
    description: str = ""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def conversation(
    request: ChatCompletionRequest, limits: LimitsConfig
) -> tuple[list[ChatMessage], list[PendingImage]]:
    """The agent's conversation and the images it names (headers checked, not decoded)."""
    if request.tools:
        raise InputError(
            "tools: a request may not bring its own tools; the agent's tools are its workflows",
            name="tools",
        )
    if request.n is not None and request.n > 1:
        raise InputError("n: an agent gives one answer per request (n=1)", name="n")
    messages: list[ChatMessage] = []
    images: list[PendingImage] = []
    for index, message in enumerate(request.messages):
        where = f"messages[{index}]"
        if message.role == "tool":
            raise InputError(
                f"{where}: role 'tool' is not taken: the agent runs its own tools (its "
                "workflows) on the server; send system, user and assistant messages",
                name="messages",
            )
        text = _text(message, where, images, limits)
        role = "system" if message.role == "developer" else message.role
        messages.append(ChatMessage(role=role, content=check_text(text, name=where, limits=limits)))
    if images:
        check_pixel_budget(images, limits)
    return messages, images


def _text(
    message: OpenAIMessage, where: str, images: list[PendingImage], limits: LimitsConfig
) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    pieces: list[str] = []
    for number, part in enumerate(message.content):
        place = f"{where}.content[{number}]"
        if part.type == "text":
            pieces.append(part.text or "")
        elif part.type == "image_url" and part.image_url is not None:
            if message.role != "user":
                raise InputError(f"{place}: only user messages may carry images", name="messages")
            images.append(
                pending_image(_data(part.image_url.url, place), name=place, limits=limits)
            )
            pieces.append(f"[{HANDLE_PREFIX}{len(images)}]")
        else:
            raise InputError(
                f"{place}: content parts of type {part.type!r} are not taken; send 'text' and "
                "'image_url' (a data URL) parts",
                name="messages",
            )
    return "\n".join(piece for piece in pieces if piece)


def _data(url: str, place: str) -> str:
    """The base64 payload of a ``data:image/...;base64,`` URL."""
    head, comma, payload = url.partition(",")
    if not url.startswith(DATA_URL) or not comma or not head.endswith(";base64"):
        shown = url if len(url) <= 40 else url[:40] + "..."
        raise InputError(
            f"{place}: image_url must be a base64 data URL (data:image/png;base64,...), not "
            f"{shown!r}; the server fetches no URLs",
            name="messages",
        )
    return payload


def completion_id(request_id: str) -> str:
    """The completion's id, from the request's id (quoted in the server's log)."""
    return f"chatcmpl-{request_id}"


def chunk(
    request_id: str,
    model: str,
    delta: dict[str, Any],
    *,
    finish_reason: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` of a streamed answer."""
    body: dict[str, Any] = {
        "id": completion_id(request_id),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    if extra:
        body["mmserve"] = extra
    return body


def tool_call_deltas(message: ChatMessage, first_index: int) -> list[dict[str, Any]]:
    """The tool calls of an assistant message as a chunk's ``delta.tool_calls``, numbered
    on from ``first_index`` (numbers run on across the turns of one answer)."""
    return [
        {
            "index": first_index + n,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
        }
        for n, call in enumerate(message.tool_calls)
    ]


__all__ = [
    "AgentDetails",
    "AnswerMessage",
    "ChatCompletion",
    "ChatCompletionRequest",
    "Choice",
    "ModelCard",
    "ModelList",
    "chunk",
    "completion_id",
    "conversation",
    "tool_call_deltas",
]
