"""The agent loop: an ``llm`` model converses, calling workflows as tools, until it answers.

Images travel by handle, never inside the prompt: the images a user sends become
``image_1``, ``image_2``, ...; an image argument of a tool names a handle and the workflow
receives that image; every image a tool returns becomes a new handle, which the LLM sees in
the tool's result. A tool that fails returns an error result the LLM can react to. The loop
ends when the LLM answers without tool calls (status ``ok``), after ``max_turns`` LLM calls
(status ``max_turns``), or at the deadline (:class:`DeadlineExceededError`). No Ray in here.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from PIL.Image import Image
from pydantic import BaseModel, ConfigDict, Field

from mmserve.agents.definition import Agent
from mmserve.errors import DeadlineExceededError, InputError, MmserveError, ModelError
from mmserve.models.roles import ChatItem, ChatMessage, ToolCall, ToolSpec
from mmserve.workflow import Engine, Workflow
from mmserve.workflow.run.result import TraceEntry, to_jsonable, trace_of

HANDLE_PREFIX = "image_"
_HANDLE = re.compile(rf"\b{HANDLE_PREFIX}\d+\b")


class ToolTrace(BaseModel):
    """One tool call of an agent run, with the trace of the workflow it ran."""

    model_config = ConfigDict(extra="forbid")

    turn: int = Field(ge=1, description="The LLM call that asked for it.")
    tool: str
    arguments: dict[str, Any] = Field(description="As the LLM wrote them (images by handle).")
    status: Literal["ok", "error"]
    result: Any = Field(default=None, description="The outputs, images as handles.")
    error: str | None = None
    wall_ms: float = Field(ge=0)
    trace: list[TraceEntry] = Field(default_factory=list, description="The workflow's steps.")


class AgentResult(BaseModel):
    """The end of an agent run."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    status: Literal["ok", "max_turns"] = Field(
        description="ok: the LLM answered; max_turns: it was still calling tools at the limit."
    )
    message: ChatMessage = Field(description="The LLM's last message.")
    turns: int = Field(ge=1, description="LLM calls made.")
    images: dict[str, Image] = Field(description="Images the tools made, by handle.")
    trace: list[ToolTrace]


def tool_spec(workflow: Workflow) -> ToolSpec:
    """A workflow as a tool: its name, description and input schema, images as handles."""
    schema = workflow.input_schema()
    properties = {
        name: _handle_schema(value, workflow.spec.inputs[name].type)
        for name, value in schema.get("properties", {}).items()
    }
    return ToolSpec(
        name=workflow.name,
        description=workflow.description or "",
        parameters={**schema, "properties": properties},
    )


def _handle_schema(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "image":
        text = schema.get("description", "")
        return {"type": "string", "description": f"An image handle (image_1, ...). {text}".strip()}
    if kind == "array" and isinstance(schema.get("items"), dict):
        items = schema["items"]
        if items.get("contentEncoding") == "base64":
            return {**schema, "items": _handle_schema(items, "image")}
    return schema


def mentioned_handles(messages: Sequence[ChatMessage]) -> list[str]:
    """Every handle (``image_<n>``) written in the messages, in order, without repeats."""
    seen: dict[str, None] = {}
    for message in messages:
        for handle in _HANDLE.findall(message.content):
            seen[handle] = None
    return list(seen)


class AgentRun:
    """One run of one agent (see the module docs)."""

    def __init__(
        self,
        agent: Agent,
        engine: Engine,
        workflows: Mapping[str, Workflow],
        *,
        max_new_tokens: int = 512,
        on_event: Callable[[ChatMessage | ToolTrace], None] | None = None,
    ) -> None:
        """``on_event`` hears each LLM reply and each finished tool call as they come."""
        self.agent = agent
        self.on_event = on_event
        self.engine = engine
        self.tools = {name: workflows[name] for name in agent.spec.tools}
        self.max_new_tokens = max_new_tokens
        self.handles: dict[str, Image] = {}
        self.made: dict[str, Image] = {}
        self.trace: list[ToolTrace] = []

    async def run(
        self, messages: Sequence[ChatMessage], images: Sequence[Image], *, timeout_s: float
    ) -> AgentResult:
        """Run the conversation to an answer. Raises InputError for a bad conversation
        (empty, or naming a handle that was not sent) and DeadlineExceededError."""
        conversation = self._start(messages, images)
        deadline = time.monotonic() + timeout_s
        model = self.engine.gateway.model_for("llm", self.agent.spec.model)
        specs = [tool_spec(workflow) for workflow in self.tools.values()]
        reply = ChatMessage(role="assistant")
        for turn in range(1, self.agent.spec.max_turns + 1):
            item = ChatItem(messages=conversation, tools=specs, max_new_tokens=self.max_new_tokens)
            reply = await self._bounded(self._chat(model, item), deadline, timeout_s, "the LLM")
            conversation.append(reply)
            self._tell(reply)
            if not reply.tool_calls:
                return self._result("ok", reply, turn)
            for call in reply.tool_calls:
                content = await self._bounded(
                    self._tool(call, turn, deadline), deadline, timeout_s, f"tool {call.name!r}"
                )
                conversation.append(
                    ChatMessage(role="tool", tool_call_id=call.id, name=call.name, content=content)
                )
        return self._result("max_turns", reply, self.agent.spec.max_turns)

    def _start(self, messages: Sequence[ChatMessage], images: Sequence[Image]) -> list[ChatMessage]:
        if not messages:
            raise InputError("messages: at least one message is needed", name="messages")
        for index, image in enumerate(images, start=1):
            self.handles[f"{HANDLE_PREFIX}{index}"] = image
        unknown = [h for h in mentioned_handles(messages) if h not in self.handles]
        if unknown:
            raise InputError(
                f"the messages name image handle {unknown[0]!r}, but the request sent "
                f"{len(images)} image(s): {', '.join(self.handles) or '(none)'}",
                name="messages",
                hint="the images of a request are image_1, image_2, ... in the order sent",
            )
        conversation = list(messages)
        if self.handles:
            users = [i for i, m in enumerate(conversation) if m.role == "user"]
            last = users[-1] if users else len(conversation) - 1
            note = f"(Images attached: {', '.join(self.handles)}.)"
            text = f"{conversation[last].content}\n{note}".strip()
            conversation[last] = conversation[last].model_copy(update={"content": text})
        if self.agent.spec.system:
            conversation.insert(0, ChatMessage(role="system", content=self.agent.spec.system))
        return conversation

    async def _chat(self, model: str, item: ChatItem) -> ChatMessage:
        try:
            called = await self.engine.gateway.call(model, "chat", item)
        except MmserveError:
            raise
        except Exception as exc:  # the model's own bug: say whose, keep the cause
            raise ModelError(
                f"the agent's model {model!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        reply: ChatMessage = called.value
        return reply

    @staticmethod
    async def _bounded(work: Any, deadline: float, timeout_s: float, doing: str) -> Any:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            return await asyncio.wait_for(work, timeout=remaining)
        except TimeoutError as exc:
            if asyncio.iscoroutine(work):
                work.close()
            raise DeadlineExceededError(
                f"the agent run ran past its deadline of {timeout_s:g}s while waiting for {doing}",
                hint="raise the timeout (x-mmserve-timeout-s, server.request_timeout_s) or "
                "lower the agent's max_turns",
            ) from exc

    async def _tool(self, call: ToolCall, turn: int, deadline: float) -> str:
        started = time.perf_counter()
        entry = ToolTrace(
            turn=turn, tool=call.name, arguments=call.arguments, status="ok", wall_ms=0
        )
        try:
            workflow = self.tools.get(call.name)
            if workflow is None:
                raise InputError(
                    f"no tool named {call.name!r}; tools: {', '.join(self.tools) or '(none)'}"
                )
            inputs = self._inputs(workflow, call.arguments)
            result = await self.engine.run(
                workflow, inputs, timeout_s=max(deadline - time.monotonic(), 0.001)
            )
            entry.trace = result.trace
            entry.result = self._handled(result.outputs)
            content = json.dumps(entry.result, ensure_ascii=False)
        except MmserveError as exc:
            entry.status, entry.error = "error", str(exc)
            entry.trace = trace_of(exc) or []
            content = json.dumps({"error": str(exc)}, ensure_ascii=False)
        entry.wall_ms = (time.perf_counter() - started) * 1000
        self.trace.append(entry)
        self._tell(entry)
        return content

    def _tell(self, event: ChatMessage | ToolTrace) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _inputs(self, workflow: Workflow, arguments: Mapping[str, Any]) -> dict[str, Any]:
        inputs = dict(arguments)
        for name, spec in workflow.spec.inputs.items():
            if name not in inputs:
                continue
            if spec.type == "image":
                inputs[name] = self._image(name, inputs[name])
            elif spec.type == "array" and spec.items is not None and spec.items.type == "image":
                value = inputs[name]
                if isinstance(value, list):
                    inputs[name] = [self._image(name, v) for v in value]
        return inputs

    def _image(self, name: str, value: Any) -> Image:
        image = self.handles.get(value) if isinstance(value, str) else None
        if image is None:
            raise InputError(
                f"argument {name!r}: {str(value)[:40]!r} is not an image handle; handles: "
                f"{', '.join(self.handles) or '(none)'}",
                name=name,
            )
        return image

    def _handled(self, value: Any) -> Any:
        """``value`` as JSON, every image replaced by a new handle."""
        if isinstance(value, Image):
            handle = f"{HANDLE_PREFIX}{len(self.handles) + 1}"
            self.handles[handle] = self.made[handle] = value
            return handle
        if isinstance(value, dict):
            return {str(k): self._handled(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._handled(v) for v in value]
        return to_jsonable(value)

    def _result(
        self, status: Literal["ok", "max_turns"], reply: ChatMessage, turns: int
    ) -> AgentResult:
        return AgentResult(
            status=status, message=reply, turns=turns, images=self.made, trace=self.trace
        )


__all__ = ["AgentResult", "AgentRun", "ToolTrace", "mentioned_handles", "tool_spec"]
