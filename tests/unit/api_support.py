"""Building the HTTP API in process for the unit tests (fake models, memory store, no Ray)."""

from __future__ import annotations

import base64
import io
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image

from mmserve.agents import load_agents
from mmserve.config import AppConfig
from mmserve.gateway.local import LocalGateway
from mmserve.http.api import ApiRuntime, always_ready, create_api
from mmserve.http.schemas.workflows import HealthResponse
from mmserve.registry import Registry, registry
from mmserve.stores import open_store_at
from mmserve.workflow import Engine, load_workflows

ROOT = Path(__file__).resolve().parents[2]
KEY = "unit-test-key"
AUTH = {"authorization": f"Bearer {KEY}"}


def build_api(
    server: dict[str, Any] | None = None,
    workflows: list[str] | None = None,
    plugins: Registry = registry,
    health: Callable[[], Awaitable[HealthResponse]] = always_ready,
    agents: list[str] | None = None,
    store: Any = None,
) -> FastAPI:
    fake = {"backend": "fake", "source": "fake://"}
    models: dict[str, Any] = {
        r: fake for r in ("image_encoder", "text_encoder", "captioner", "vqa")
    }
    models["llm"] = {"backend": "fake-llm", "source": "fake-llm://"}
    config = AppConfig.from_dict(
        {
            "models": models,
            "store": {"kind": "memory"},
            "workflows": workflows or [str(ROOT / "workflows")],
            # the shipped agents need the shipped workflows
            "agents": agents if agents is not None else [] if workflows else [str(ROOT / "agents")],
            "server": server or {},
        },
        base_dir=ROOT,
    )
    loaded = load_workflows(config.workflow_paths(), registry=plugins)
    runtime = ApiRuntime(
        config=config,
        engine=Engine(
            LocalGateway(config),
            store=open_store_at("memory") if store is None else store,
            registry=plugins,
        ),
        workflows=loaded,
        health=health,
        registry=plugins,
        agents=load_agents(config.agent_paths(), workflows=loaded, config=config),
    )
    return create_api(runtime)


def image_bytes(mode: str = "RGB", size: tuple[int, int] = (16, 16), fmt: str = "PNG") -> bytes:
    colour: Any = {"RGB": (220, 30, 30), "RGBA": (220, 30, 30, 128), "CMYK": (0, 200, 200, 0)}
    buffer = io.BytesIO()
    Image.new(mode, size, colour.get(mode, 1000 if mode.startswith("I") else 200)).save(
        buffer, format=fmt
    )
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@contextmanager
def serving_with_key(key_env: str) -> Iterator[str]:
    """The API asking for :data:`KEY` (read from ``$key_env`` when it is built, and set only
    for that), behind a real HTTP server (:func:`serving`); its URL."""
    os.environ[key_env] = KEY
    try:
        app = build_api({"api_key_env": key_env})
    finally:
        os.environ.pop(key_env)
    with serving(app) as url:
        yield url


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` behind a real HTTP server (uvicorn, in a thread, on a free port)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("the test server did not start")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def error_message(response: Any, status: int, code: str | None = None) -> str:
    """The message of an API error answer, after checking its status, its request id (the
    same as the x-request-id header) and, when given, its code."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert error["code"] == code
    return str(error["message"])


def run_workflow(client: Any, workflow: str, **inputs: object) -> Any:
    """``POST /v1/workflows/{workflow}/run`` with ``inputs`` as JSON."""
    return client.post(f"/v1/workflows/{workflow}/run", json={"inputs": inputs})
