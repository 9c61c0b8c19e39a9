"""``client.agents``: run a server's agents (an LLM calling workflows as tools).

Reached as an attribute of :class:`~mmserve.client.clients.Client` (awaitable on
:class:`~mmserve.client.clients.AsyncClient`)::

    with Client(url) as client:
        client.agents.list()
        run = client.agents.run("assistant", "caption image_1", images=["cat.jpg"])
        print(run.status, run.message["content"])
        for handle, image in run.images.items():    # images the tools made, as PIL images
            image.save(f"{handle}.png")
"""

from __future__ import annotations

import base64
import builtins
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from mmserve.client.requests import image_base64

if TYPE_CHECKING:
    from PIL.Image import Image

SyncRequest = Callable[..., httpx.Response]
AsyncRequest = Callable[..., Awaitable[httpx.Response]]


@dataclass
class AgentRunResult:
    """One agent run: its status (``ok`` or ``max_turns``), the final message (``content``
    and ``tool_calls``), the images the tools made by handle, and the tool trace."""

    status: str
    message: dict[str, Any]
    images: dict[str, Image]
    trace: builtins.list[dict[str, Any]]
    turns: int
    request_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def run_payload(messages: str | builtins.list[dict[str, Any]], images: Any) -> dict[str, Any]:
    """The body of a run: a text is one user message; images are paths, bytes or PIL images."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return {
        "messages": messages,
        "images": [image_base64(f"images[{n}]", image) for n, image in enumerate(images or [])],
    }


def run_result(response: httpx.Response) -> AgentRunResult:
    from PIL import Image

    body: dict[str, Any] = response.json()
    images: dict[str, Image.Image] = {}
    for handle, data in body.get("images", {}).items():
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.load()
        images[handle] = image
    return AgentRunResult(
        status=body["status"],
        message=body["message"],
        images=images,
        trace=body.get("trace", []),
        turns=body.get("turns", 0),
        request_id=body.get("request_id"),
        raw=body,
    )


class Agents:
    """The agent endpoints, synchronously."""

    def __init__(self, request: SyncRequest) -> None:
        self._request = request

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every agent: name, description, model, tools, max_turns."""
        found: builtins.list[dict[str, Any]] = self._request("GET", "/v1/agents").json()["agents"]
        return found

    def run(
        self,
        agent: str,
        messages: str | builtins.list[dict[str, Any]],
        *,
        images: builtins.list[Any] | None = None,
    ) -> AgentRunResult:
        """Run ``agent`` on a message (or a list of ``{"role", "content"}`` messages); the
        ``images`` are ``image_1``, ``image_2``, ... in the messages."""
        payload = run_payload(messages, images)
        return run_result(self._request("POST", f"/v1/agents/{agent}/run", json=payload))


class AsyncAgents:
    """The agent endpoints, awaitable (the same methods as :class:`Agents`)."""

    def __init__(self, request: AsyncRequest) -> None:
        self._request = request

    async def list(self) -> builtins.list[dict[str, Any]]:
        response = await self._request("GET", "/v1/agents")
        found: builtins.list[dict[str, Any]] = response.json()["agents"]
        return found

    async def run(
        self,
        agent: str,
        messages: str | builtins.list[dict[str, Any]],
        *,
        images: builtins.list[Any] | None = None,
    ) -> AgentRunResult:
        payload = run_payload(messages, images)
        return run_result(await self._request("POST", f"/v1/agents/{agent}/run", json=payload))


__all__ = ["AgentRunResult", "Agents", "AsyncAgents"]
