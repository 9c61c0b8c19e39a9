"""``client.agents``: run a server's agents (an LLM calling workflows as tools).

Reached as an attribute of :class:`~mmserve.client.clients.Client` (awaitable on
:class:`~mmserve.client.clients.AsyncClient`)::

    with Client(url) as client:
        client.agents.list()
        run = client.agents.run("assistant", "caption image_1", images=["cat.jpg"])
        print(run.status, run.message["content"])
        for handle, image in run.images.items():    # images the tools made, as PIL images
            image.save(f"{handle}.png")

Each call is built once by :class:`~mmserve.client.requests.RequestBuilder`; the two classes
here only send it.
"""

from __future__ import annotations

import builtins
from typing import Any

from mmserve.client.requests import AgentRunResult, AsyncSend, RequestBuilder, SyncSend


class Agents:
    """The agent endpoints, synchronously."""

    def __init__(self, send: SyncSend, calls: RequestBuilder) -> None:
        self._send, self._calls = send, calls

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every agent: name, description, model, tools, max_turns."""
        return self._send(self._calls.agents())

    def run(
        self,
        agent: str,
        messages: str | builtins.list[dict[str, Any]],
        *,
        images: builtins.list[Any] | None = None,
    ) -> AgentRunResult:
        """Run ``agent`` on a message (or a list of ``{"role", "content"}`` messages); the
        ``images`` are ``image_1``, ``image_2``, ... in the messages."""
        return self._send(self._calls.agent_run(agent, messages, images))


class AsyncAgents:
    """The agent endpoints, awaitable (the same methods as :class:`Agents`)."""

    def __init__(self, send: AsyncSend, calls: RequestBuilder) -> None:
        self._send, self._calls = send, calls

    async def list(self) -> builtins.list[dict[str, Any]]:
        return await self._send(self._calls.agents())

    async def run(
        self,
        agent: str,
        messages: str | builtins.list[dict[str, Any]],
        *,
        images: builtins.list[Any] | None = None,
    ) -> AgentRunResult:
        return await self._send(self._calls.agent_run(agent, messages, images))


__all__ = ["AgentRunResult", "Agents", "AsyncAgents"]
