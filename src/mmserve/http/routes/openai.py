"""OpenAI-compatible routes: ``POST /v1/chat/completions`` and ``GET /v1/models``.

The ``model`` of a chat completion names an agent (``GET /v1/models`` lists them); the agent
loop runs its tools (workflows) here and the answer is its final message, with the run's tool
trace and the images the tools made under ``mmserve``. Messages may carry images as
``image_url`` data URLs (see :mod:`mmserve.http.openai_messages`).

``stream: true`` answers Server-Sent Events in OpenAI's ``chat.completion.chunk`` format: the
assistant role, then per LLM turn its tool calls as ``delta.tool_calls`` (numbered on across
turns), each tool's result as a chunk with an empty delta and ``mmserve.tool_result``, the
answer as ``delta.content``, a last chunk with ``finish_reason: "stop"`` (and ``mmserve``:
status, turns, images), and ``data: [DONE]``. A failure once the stream has begun is a
``data: {"error": {...}}`` chunk (the official client raises it) before ``[DONE]``; one before
the first LLM answer is the plain JSON error with its status.

An agent still calling tools at its ``max_turns`` is an error here (422 ``agent_max_turns``):
OpenAI's format has no unfinished answer. Errors are mmserve's ``{"error": {"code",
"message", "request_id"}}``; OpenAI clients read ``error.message``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from mmserve.agents import Agent, AgentResult, AgentRun, ToolTrace
from mmserve.errors import AgentMaxTurnsError, AgentNotFoundError
from mmserve.http.error_answers import error_event_body
from mmserve.http.limits import decode_pending
from mmserve.http.openai_messages import (
    AgentDetails,
    AnswerMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    ModelCard,
    ModelList,
    chunk,
    completion_id,
    conversation,
    tool_call_deltas,
)
from mmserve.http.run_request import TIMEOUT_PARAMETER, deadline_s
from mmserve.http.run_stream import EVENT_STREAM, EventFeed, event_stream, frame
from mmserve.http.runtime import ApiRuntime, request_id_of
from mmserve.media import encode_png_base64
from mmserve.models.roles import ChatMessage

#: Tokens an agent's LLM may write per turn when the request names no max_tokens.
DEFAULT_MAX_TOKENS = 512
#: The end of a chat completion stream, as OpenAI sends it (a sentinel, not JSON).
_DONE = b"data: [DONE]\n\n"
_STREAM_DOC: dict[str, Any] = {
    "parameters": [TIMEOUT_PARAMETER],
    "responses": {
        "200": {
            "content": {
                EVENT_STREAM: {
                    "description": "With `stream: true`: chat.completion.chunk events, then "
                    "`data: [DONE]`.",
                    "schema": {"type": "string"},
                }
            }
        }
    },
}
Event = ChatMessage | ToolTrace


def max_turns_error(agent: Agent, result: AgentResult) -> AgentMaxTurnsError:
    """The error of a run that ended at max_turns, naming its last calls."""
    calls = ", ".join(call.name for call in result.message.tool_calls) or "(none)"
    return AgentMaxTurnsError(
        f"agent {agent.name!r} was still calling tools when it reached its max_turns "
        f"({agent.spec.max_turns}); its last calls: {calls}",
        hint=f"ask for less at once, or raise max_turns in the agent's YAML; POST "
        f"/v1/agents/{agent.name}/run answers an unfinished run with its trace",
    )


async def _images(result: AgentResult) -> dict[str, str]:
    return {h: await asyncio.to_thread(encode_png_base64, i) for h, i in result.images.items()}


def openai_routes(runtime: ApiRuntime, responses: dict[int | str, Any]) -> APIRouter:
    """``/v1/chat/completions`` and ``/v1/models`` over ``runtime``'s agents."""
    router = APIRouter(prefix="/v1", tags=["openai"], responses=responses)
    server = runtime.config.server

    def lookup(name: str) -> Agent:
        agent = runtime.agents.get(name)
        if agent is None:
            raise AgentNotFoundError(name=name, known=list(runtime.agents))
        return agent

    def card(agent: Agent) -> ModelCard:
        return ModelCard(id=agent.name, description=agent.spec.description)

    @router.get("/models", response_model=ModelList)
    async def list_models() -> ModelList:
        """The agents, as OpenAI models: each is the `model` of a chat completion."""
        ordered = sorted(runtime.agents.values(), key=lambda a: a.name)
        return ModelList(data=[card(a) for a in ordered])

    @router.get("/models/{name}", response_model=ModelCard)
    async def get_model(name: str) -> ModelCard:
        """One agent, as an OpenAI model."""
        return card(lookup(name))

    @router.post("/chat/completions", response_model=ChatCompletion, openapi_extra=_STREAM_DOC)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        """An agent's answer to a conversation, in OpenAI's format (`model`: the agent)."""
        agent = lookup(body.model)
        timeout_s = deadline_s(request, server)
        limits = server.limits
        messages, pending = conversation(body, limits)
        images = [await asyncio.to_thread(decode_pending, p, limits) for p in pending]
        tokens = body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS
        request_id = request_id_of(request)
        if body.stream:
            queue: asyncio.Queue[Event] = asyncio.Queue()
            run = AgentRun(
                agent,
                runtime.engine,
                runtime.workflows,
                max_new_tokens=tokens,
                on_event=queue.put_nowait,
            )
            task = asyncio.create_task(run.run(messages, images, timeout_s=timeout_s))
            return await _stream(agent, EventFeed(task, queue), request_id)
        run = AgentRun(agent, runtime.engine, runtime.workflows, max_new_tokens=tokens)
        result = await run.run(messages, images, timeout_s=timeout_s)
        if result.status == "max_turns":
            raise max_turns_error(agent, result)
        return ChatCompletion(
            id=completion_id(request_id),
            created=int(time.time()),
            model=agent.name,
            choices=[Choice(message=AnswerMessage(content=result.message.content))],
            mmserve=AgentDetails(
                turns=result.turns,
                trace=result.trace,
                images=await _images(result),
                request_id=request_id,
            ),
        )

    return router


async def _stream(
    agent: Agent, events: EventFeed[AgentResult, Event], request_id: str
) -> StreamingResponse:
    """The SSE answer; the run's error as a plain JSON answer when it fails before its first
    LLM reply (bad handles, an LLM that fails at once)."""
    first = await events.first()
    return event_stream(_body(agent, events, first, request_id))


async def _body(
    agent: Agent,
    events: EventFeed[AgentResult, Event],
    first: Event | bytes | None,
    request_id: str,
) -> AsyncIterator[bytes]:
    name = agent.name
    try:
        yield frame(chunk(request_id, name, {"role": "assistant", "content": ""}))
        calls = 0
        event = first
        while event is not None:
            if isinstance(event, bytes):
                yield event
            elif isinstance(event, ToolTrace):
                shown = event.model_dump(mode="json", exclude={"trace"})
                yield frame(chunk(request_id, name, {}, extra={"tool_result": shown}))
            elif event.tool_calls:
                deltas = tool_call_deltas(event, calls)
                calls += len(deltas)
                yield frame(chunk(request_id, name, {"tool_calls": deltas}))
            else:
                yield frame(chunk(request_id, name, {"content": event.content}))
            event = await events.next()
        try:
            result = events.task.result()
            if result.status == "max_turns":
                raise max_turns_error(agent, result)
        except Exception as exc:
            yield frame(error_event_body(exc, request_id))
        else:
            details = {"status": "ok", "turns": result.turns, "images": await _images(result)}
            yield frame(chunk(request_id, name, {}, finish_reason="stop", extra=details))
        yield _DONE
    finally:
        if not events.task.done():
            events.stop()  # the client went away: stop the agent's work


__all__ = ["DEFAULT_MAX_TOKENS", "max_turns_error", "openai_routes"]
