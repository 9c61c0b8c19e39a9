"""``mmserve chat AGENT``: a conversation with an agent at the terminal.

Each line read from stdin is the next user message; the agent's answer is printed on stdout,
its tool calls (one line each) on stderr. The conversation is kept, so a follow-up question
sees the earlier answers. ``--image FILE`` (repeatable) attaches images, ``image_1``,
``image_2``, ... in the order given, to every turn. With ``--url`` it talks to a server
(``client.agents``, the server's ``server.api_key_env`` key from ``$MMSERVE_API_KEY``);
without, it runs the agent in this process with the config's models (like ``mmserve run``).
End with an empty stdin (Ctrl-D) or ``/quit``.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from PIL import Image

from mmserve.agents import AgentRun, load_agents
from mmserve.cli.common import (
    CLI_CONNECT_BUDGET_S,
    ConfigOption,
    ProfileOption,
    echo_err,
    friendly,
    load_config,
    need_server,
    usage_error,
)
from mmserve.client.clients import AsyncClient, RetryPolicy
from mmserve.errors import AgentNotFoundError, MmserveError
from mmserve.local.mode import LocalApp
from mmserve.models.roles import ChatMessage
from mmserve.workflow import Engine

QUIT = "/quit"


@dataclass
class Reply:
    """One turn's answer: status, text, tool calls, the images the tools made."""

    status: str
    content: str
    trace: list[dict[str, Any]]
    images: dict[str, Image.Image] = field(default_factory=dict)


class _Remote:
    def __init__(self, url: str, agent: str, images: list[Path], timeout: float) -> None:
        self.client = AsyncClient(
            url, timeout=timeout, retry=RetryPolicy(budget_s=CLI_CONNECT_BUDGET_S)
        )
        self.agent, self.images = agent, images

    async def check(self) -> None:
        known = [a["name"] for a in await self.client.agents.list()]
        if self.agent not in known:
            raise AgentNotFoundError(name=self.agent, known=known)

    async def turn(self, messages: list[dict[str, str]]) -> Reply:
        run = await self.client.agents.run(self.agent, messages, images=list(self.images))
        return Reply(run.status, run.message.get("content", ""), run.trace, run.images)

    async def close(self) -> None:
        await self.client.aclose()


class _Local:
    def __init__(
        self, config: str, profile: str | None, agent: str, images: list[Path], timeout: float
    ) -> None:
        app_config = load_config(config, profile)
        local = LocalApp(app_config)
        self.workflows = local.workflows
        agents = load_agents(app_config.agent_paths(), workflows=self.workflows, config=app_config)
        if agent not in agents:
            raise AgentNotFoundError(name=agent, known=list(agents))
        self.agent = agents[agent]
        self.engine = Engine(local.gateway, store=local.lazy_store, registry=local.registry)
        self.images: list[Image.Image] = []
        for path in images:
            with Image.open(path) as image:
                self.images.append(image.convert("RGB"))
        self.timeout = timeout

    async def check(self) -> None:
        return None

    async def turn(self, messages: list[dict[str, str]]) -> Reply:
        conversation = [ChatMessage(role=m["role"], content=m["content"]) for m in messages]  # type: ignore[arg-type]
        run = AgentRun(self.agent, self.engine, self.workflows)
        result = await run.run(conversation, self.images, timeout_s=self.timeout)
        trace = [t.model_dump(mode="json", exclude={"trace"}) for t in result.trace]
        return Reply(result.status, result.message.content, trace, dict(result.images))

    async def close(self) -> None:
        return None


def _show(reply: Reply, output_dir: Path | None) -> None:
    for call in reply.trace:
        arguments = ", ".join(f"{k}={v!r}" for k, v in call["arguments"].items())
        outcome = "ok" if call["status"] == "ok" else f"error: {call.get('error')}"
        echo_err(f"  [tool] {call['tool']}({arguments}) -> {outcome}")
    for handle, image in reply.images.items():
        if output_dir is None:
            echo_err(f"  [image] the tools made {handle} (--output-dir saves it)")
        else:
            output_dir.mkdir(parents=True, exist_ok=True)
            image.save(output_dir / f"{handle}.png")
            echo_err(f"  [image] {handle} saved to {output_dir / f'{handle}.png'}")
    if reply.status == "max_turns":
        echo_err("  [stopped] the agent was still calling tools at its max_turns")
    if reply.content:
        typer.echo(reply.content)


async def _converse(session: _Remote | _Local, output_dir: Path | None) -> int:
    """Read user lines until the end of stdin; returns the number of failed turns."""
    messages: list[dict[str, str]] = []
    failed = 0
    prompt = sys.stdin.isatty()
    try:
        await session.check()
        while True:
            if prompt:
                typer.echo("you> ", nl=False)
            line = await asyncio.to_thread(sys.stdin.readline)
            text = line.strip()
            if not line or text == QUIT:
                return failed
            if not text:
                continue
            messages.append({"role": "user", "content": text})
            try:
                reply = await session.turn(messages)
            except MmserveError as exc:  # this turn failed; the conversation goes on
                echo_err(f"error: {exc}")
                messages.pop()
                failed += 1
                continue
            _show(reply, output_dir)
            messages.append({"role": "assistant", "content": reply.content})
    finally:
        await session.close()


@friendly
def chat(
    agent: Annotated[str, typer.Argument(help="The agent's name (GET /v1/agents lists them).")],
    url: Annotated[
        str | None, typer.Option("--url", help="Talk to the mmserve server at this URL.")
    ] = None,
    images: Annotated[
        list[Path] | None,
        typer.Option("--image", help="An image for the agent: image_1, image_2, ... (repeatable)."),
    ] = None,
    config: ConfigOption = "",
    profile: ProfileOption = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", help="Save the images the tools make here.")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per turn.")] = 300.0,
) -> None:
    """Chat with an agent: one stdin line per message, answers on stdout, tool calls on stderr."""
    files = images or []
    for path in files:
        if not path.is_file():
            usage_error(f"--image {path}: no such file")
    if url:
        session: _Remote | _Local = _Remote(url, agent, files, timeout)
    else:
        need_server("chat")
        session = _Local(config, profile, agent, files, timeout)
    if asyncio.run(_converse(session, output_dir)):
        raise typer.Exit(1)


__all__ = ["chat"]
