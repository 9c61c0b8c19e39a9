"""The HTTP API with jobs, in process: a real job queue (the embedded SQLite broker, or a real
Redis) and a real job worker (Celery threads) running on an engine of fake models, behind a
real HTTP server. No Ray. For the job API, the client and the CLI tests."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api_support import ROOT, serving

from mmserve.config import AppConfig
from mmserve.gateway.local import LocalGateway
from mmserve.http.api import ApiRuntime, always_ready, create_api
from mmserve.http.limits import check_inputs
from mmserve.jobs.service import JobService
from mmserve.jobs.worker import JobTargets, JobWorker
from mmserve.registry import Registry, registry
from mmserve.stores import open_store_at
from mmserve.workflow import Engine, Workflow, load_workflows

#: A workflow of three slow steps (each a fake caption of ``delay_ms``): cancels and
#: progress have steps to stop between.
SLOW_CHAIN = """
name: slow_chain
inputs:
  image: {type: image}
steps:
  first: {uses: caption, with: {image: "${inputs.image}"}}
  second: {uses: caption, with: {image: "${inputs.image}", prompt: "${first.text}"}}
  third: {uses: caption, with: {image: "${inputs.image}", prompt: "${second.text}"}}
outputs:
  caption: ${third.text}
"""


@dataclass
class JobsApp:
    url: str
    config: AppConfig
    service: JobService
    worker: JobWorker | None


def jobs_config(
    folder: Path,
    *,
    broker: str = "sqlite",
    delay_ms: int = 0,
    jobs: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    workflows: dict[str, str] | None = None,
) -> AppConfig:
    """Fake models (each call taking ``delay_ms``), the shipped workflows,
    :data:`SLOW_CHAIN` and ``workflows`` (name -> YAML), jobs in ``folder`` on ``broker`` (a
    queue of its own name)."""
    extra = {"slow_chain": SLOW_CHAIN, **(workflows or {})}
    for name, text in extra.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    fake = {"backend": "fake", "source": f"fake://delay_ms={delay_ms}"}
    return AppConfig.from_dict(
        {
            "models": {r: fake for r in ("image_encoder", "text_encoder", "captioner", "vqa")},
            "store": {"kind": "memory"},
            "workflows": [str(ROOT / "workflows"), *(str(folder / f"{n}.yaml") for n in extra)],
            "agents": [],
            "jobs": {
                "path": str(folder / "jobs"),
                "broker": broker,
                "queue": f"test-{uuid.uuid4().hex[:10]}",
                "lease_s": 2.0,
                **(jobs or {}),
            },
            "server": server or {},
        },
        base_dir=ROOT,
    )


@contextmanager
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread of its own (the jobs run there)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def start_worker(
    config: AppConfig, loop: asyncio.AbstractEventLoop, *, plugins: Registry = registry
) -> JobWorker:
    """A job worker on an engine of the config's (fake) models and ``plugins``, started."""
    workflows = load_workflows(config.workflow_paths(), registry=plugins)
    engine = Engine(LocalGateway(config), store=open_store_at("memory"), registry=plugins)

    async def checked(workflow: Workflow, raw: dict[str, Any]) -> dict[str, Any]:
        return await check_inputs(workflow, raw, config.server.limits)

    worker = JobWorker(config, JobTargets(engine, workflows, checked), loop)
    worker.start()
    return worker


@contextmanager
def jobs_app(
    config: AppConfig, *, worker: bool = True, plugins: Registry = registry
) -> Iterator[JobsApp]:
    """The API of ``config`` with its job queue, and (``worker``) a job worker, served;
    ``plugins`` is the registry of both (a copy with test steps added, say)."""
    workflows = load_workflows(config.workflow_paths(), registry=plugins)
    service = JobService.from_config(config)
    runtime = ApiRuntime(
        config=config,
        engine=Engine(LocalGateway(config), store=open_store_at("memory"), registry=plugins),
        workflows=workflows,
        health=always_ready,
        registry=plugins,
        jobs=service,
    )
    with event_loop() as loop:
        running = start_worker(config, loop, plugins=plugins) if worker else None
        try:
            with serving(create_api(runtime)) as url:
                yield JobsApp(url, config, service, running)
        finally:
            if running is not None:
                running.stop()
            service.close()
