"""mmserve's HTTP API without Ray: the served FastAPI app and engine, called in process.

The same ``create_api`` app the ingress deployment serves, over the in-process gateway and
driven through httpx's ASGI transport (no sockets, no Ray). Its latency is what mmserve's
own code costs per request -- routing, validation, the engine, JSON -- so the rest of the
served latency is Ray Serve's transport (proxy, handle calls) and the batch wait.

    python -m benchmarks.suite.api_inprocess --preset fake --duration 5

Prints one JSON document on its last line of stdout (like :mod:`.inprocess`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from benchmarks.suite.presets import ServeShape, app_config, get_preset, make_inputs
from benchmarks.suite.procstats import TreeSampler, tree_pss_mb, tree_rss_mb
from benchmarks.suite.stats import summarise


def _app(preset_name: str, shape: ServeShape) -> Any:
    from mmserve.config import AppConfig
    from mmserve.gateway.local import LocalGateway
    from mmserve.http.api import always_ready, create_api
    from mmserve.http.runtime import ApiRuntime
    from mmserve.registry import registry
    from mmserve.workflow import Engine, load_workflows

    config = AppConfig.from_dict(app_config(get_preset(preset_name), shape, port=0))
    registry.ensure_loaded()
    gateway = LocalGateway(config)
    gateway.warm()
    runtime = ApiRuntime(
        config=config,
        engine=Engine(gateway, registry=registry),
        workflows=load_workflows(config.workflow_paths()),
        health=always_ready,
        registry=registry,
    )
    return create_api(runtime)


async def _point(
    app: Any, workflow: str, body_for: Any, args: argparse.Namespace
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        index = 0
        now = time.perf_counter()
        start, end = now + args.warmup, now + args.warmup + args.duration
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            response = await client.post(f"/v1/workflows/{workflow}/run", json=body_for(index))
            t1 = time.perf_counter()
            if response.status_code != 200:
                raise RuntimeError(f"{workflow}: HTTP {response.status_code}: {response.text}")
            if t1 >= start:
                latencies.append(t1 - t0)
            index += 1
    return summarise(latencies, wall_s=args.duration)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--text-words", type=int, default=300)
    # The orchestrator passes the in-process runners' common flags; the rest do not apply.
    args, _ = parser.parse_known_args()
    started = time.perf_counter()
    preset = get_preset(args.preset)
    app = _app(preset.name, ServeShape())
    startup = time.perf_counter() - started
    inputs = make_inputs(preset, text_words=args.text_words)
    points = []
    for workflow in preset.workflows:
        sampler = TreeSampler(os.getpid()).start()
        point = asyncio.run(_point(app, workflow, inputs.mmserve_body, args))
        point.update(system="api-inprocess", variant=workflow, concurrency=1)
        point.update(sampler.stop().as_dict())
        points.append(point)
    out = {
        "points": points,
        "startup_s": round(startup, 1),
        "idle_rss_mb": round(tree_rss_mb(os.getpid()), 1),
        "idle_pss_mb": round(tree_pss_mb(os.getpid()), 1),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
