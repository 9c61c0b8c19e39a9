"""What the HTTP API serves (:class:`ApiRuntime`) and helpers every route shares."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request

from mmserve.agents import Agent
from mmserve.config import AppConfig
from mmserve.errors import DeadlineExceededError
from mmserve.http.schemas.workflows import HealthResponse
from mmserve.jobs.service import JobService
from mmserve.registry import Registry
from mmserve.workflow import Engine, Workflow

T = TypeVar("T")


@dataclass
class ApiRuntime:
    """What the API serves: the engine, its workflows, a health probe and the registry.

    The engine's gateway and store also serve the collection endpoints.
    """

    config: AppConfig
    engine: Engine
    workflows: Mapping[str, Workflow]
    health: Callable[[], Awaitable[HealthResponse]]
    registry: Registry
    #: True behind Ray Serve's proxy, which sets and echoes ``x-request-id`` itself.
    behind_serve_proxy: bool = False
    #: The agents (``GET /v1/agents``), checked against ``workflows`` and the config.
    agents: Mapping[str, Agent] = field(default_factory=dict)
    #: The job API's side of the queue (``/v1/jobs``); None: no job workers (501).
    jobs: JobService | None = None


def request_id_of(request: Request) -> str:
    """The id :class:`~mmserve.http.middleware.guard.Guard` gave this request."""
    return str(getattr(request.state, "request_id", "") or "-")


async def within(work: Awaitable[T], *, timeout_s: float, doing: str) -> T:
    """``await work``, cancelled at the deadline with an error saying what was running."""
    try:
        return await asyncio.wait_for(work, timeout=timeout_s)
    except TimeoutError as exc:
        raise DeadlineExceededError(
            f"the request ran past its deadline of {timeout_s:g}s while {doing}",
            hint="raise the timeout (x-mmserve-timeout-s, server.request_timeout_s) or scale "
            "the model deployments",
        ) from exc


__all__ = ["ApiRuntime", "request_id_of", "within"]
