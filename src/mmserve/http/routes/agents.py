"""The agent endpoints: ``GET /v1/agents`` and ``POST /v1/agents/{name}/run``.

A run takes the conversation (``messages``) and the images it talks about (base64, in order:
they become ``image_1``, ``image_2``, ...), runs the agent loop (:mod:`mmserve.agents`) over
the API's engine, and answers the final message, the images the tools made (base64 PNG by
handle), the trace of every tool call and the run's status. Images pass the same door limits
as workflow inputs (413 over a limit).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from PIL.Image import Image
from pydantic import BaseModel, ConfigDict, Field

from mmserve.agents import Agent, AgentRun, ToolTrace
from mmserve.config import LimitsConfig
from mmserve.errors import AgentNotFoundError
from mmserve.http.limits import check_pixel_budget, check_text, decode_pending, pending_image
from mmserve.http.run_request import TIMEOUT_PARAMETER, deadline_s
from mmserve.http.runtime import ApiRuntime, request_id_of
from mmserve.media import encode_png_base64
from mmserve.models.roles import ChatMessage


class AgentInfo(BaseModel):
    name: str
    description: str
    model: str = Field(description="The config name of its `llm` model.")
    tools: list[str] = Field(description="The workflows it may call.")
    max_turns: int


class AgentList(BaseModel):
    agents: list[AgentInfo]


class UserMessage(BaseModel):
    """One message of the conversation a caller sends."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"] = "user"
    content: str


class AgentRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[UserMessage] = Field(
        min_length=1, description="The conversation, oldest first; it ends with the question."
    )
    images: list[str] = Field(
        default_factory=list,
        description="Images as base64, in order: the messages call them image_1, image_2, ...",
    )


class AgentRunResponse(BaseModel):
    status: Literal["ok", "max_turns"] = Field(
        description="ok: the agent answered; max_turns: it was still calling tools at its "
        "max_turns (the message is its last, unfinished one)."
    )
    message: ChatMessage
    turns: int
    images: dict[str, str] = Field(description="Images the tools made: handle -> base64 PNG.")
    trace: list[ToolTrace]
    request_id: str


def _info(agent: Agent) -> AgentInfo:
    spec = agent.spec
    return AgentInfo(
        name=spec.name,
        description=spec.description,
        model=spec.model,
        tools=list(spec.tools),
        max_turns=spec.max_turns,
    )


def agent_named(runtime: ApiRuntime, name: str) -> Agent:
    agent = runtime.agents.get(name)
    if agent is None:
        raise AgentNotFoundError(name=name, known=list(runtime.agents))
    return agent


async def checked_request(
    body: AgentRunRequest, limits: LimitsConfig
) -> tuple[list[ChatMessage], list[Image]]:
    """The conversation and its images, checked against the door's limits (images decoded)."""
    messages = [
        ChatMessage(
            role=m.role, content=check_text(m.content, name=f"messages[{n}]", limits=limits)
        )
        for n, m in enumerate(body.messages)
    ]
    pending = [
        pending_image(data, name=f"images[{n}]", limits=limits)
        for n, data in enumerate(body.images)
    ]
    if pending:
        check_pixel_budget(pending, limits)
    images = [await asyncio.to_thread(decode_pending, p, limits) for p in pending]
    return messages, images


async def answer_agent(
    runtime: ApiRuntime,
    agent: Agent,
    messages: list[ChatMessage],
    images: list[Image],
    *,
    timeout_s: float,
) -> dict[str, Any]:
    """Run ``agent`` and answer as ``POST /v1/agents/{name}/run`` does (without the request
    id): status, message, turns, the images the tools made (base64 PNG), the tool trace."""
    agent_run = AgentRun(agent, runtime.engine, runtime.workflows)
    result = await agent_run.run(messages, images, timeout_s=timeout_s)
    made = {h: await asyncio.to_thread(encode_png_base64, i) for h, i in result.images.items()}
    return {
        "status": result.status,
        "message": result.message,
        "turns": result.turns,
        "images": made,
        "trace": result.trace,
    }


def agent_routes(runtime: ApiRuntime, responses: dict[int | str, Any]) -> APIRouter:
    """The ``/v1/agents`` routes over ``runtime``'s engine, workflows and agents."""
    router = APIRouter(prefix="/v1/agents", tags=["agents"], responses=responses)
    server = runtime.config.server

    @router.get("", response_model=AgentList)
    async def list_agents() -> AgentList:
        """The loaded agents with their models and tools."""
        ordered = sorted(runtime.agents.values(), key=lambda a: a.name)
        return AgentList(agents=[_info(a) for a in ordered])

    @router.post(
        "/{name}/run",
        response_model=AgentRunResponse,
        openapi_extra={"parameters": [TIMEOUT_PARAMETER]},
    )
    async def run_agent(name: str, body: AgentRunRequest, request: Request) -> AgentRunResponse:
        """Run an agent on a conversation: it calls its workflows as tools and answers."""
        agent = agent_named(runtime, name)
        timeout_s = deadline_s(request, server)
        messages, images = await checked_request(body, server.limits)
        answer = await answer_agent(runtime, agent, messages, images, timeout_s=timeout_s)
        return AgentRunResponse(**answer, request_id=request_id_of(request))

    return router


__all__ = [
    "AgentList",
    "AgentRunRequest",
    "AgentRunResponse",
    "agent_named",
    "agent_routes",
    "answer_agent",
    "checked_request",
]
