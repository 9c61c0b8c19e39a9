"""Image generation: ``random://sd-turbo`` (the SD-Turbo architecture, random weights), one
denoising step at 512x512, bare pipeline vs served, batching on and off.

* ``bare``: mmserve's ``diffusion`` backend called directly in this process, one image a
  call (``bare``) and ``--max-batch`` images a call (``bare-batched``): the floor.
* ``mmserve``: ``mmserve serve`` running the ``generate`` workflow (proxy -> ingress ->
  model deployment with ``@serve.batch``, ``batch.max_size: --max-batch``), driven by
  ``--concurrency`` clients each keeping one request in flight; ``mmserve-nobatch``: the same
  with ``batch.max_size: 1``.

Each system makes ``--images`` images after one warm-up image, with distinct seeds. The weights
(about 5 GB in float32) are built once into ``$MMSERVE_CACHE/random/sd-turbo-*``.

    .venv/bin/python -m benchmarks.generation                  # 4 images per system, c=2
    .venv/bin/python -m benchmarks.generation --images 8 --concurrency 4 --max-batch 4

Writes ``benchmarks/results/generation.json`` and ``generation.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.suite.report import machine
from benchmarks.suite.servers import REPO_ROOT, app_server
from benchmarks.suite.stats import summarise

SOURCE = "random://sd-turbo"
SIZE = 512
RESULTS = REPO_ROOT / "benchmarks" / "results"


def _items(count: int, offset: int) -> list[dict[str, Any]]:
    return [
        {"prompt": f"a photo of a red fox number {i}", "seed": i, "steps": 1, "guidance": 0.0}
        | {"width": SIZE, "height": SIZE}
        for i in range(offset, offset + count)
    ]


def run_bare(images: int, max_batch: int) -> list[dict[str, Any]]:
    from mmserve.models.backends.diffusion import TextToImageBackend
    from mmserve.models.roles.images import GenerateItem
    from mmserve.models.spec import ModelSpec

    started = time.perf_counter()
    backend = TextToImageBackend(ModelSpec(source=SOURCE))
    load_s = time.perf_counter() - started
    backend.generate([GenerateItem(**_items(1, 10_000)[0])])  # warm-up
    points = []
    for system, batch in (("bare", 1), ("bare-batched", max_batch)):
        items = [GenerateItem(**item) for item in _items(images, 0)]
        latencies: list[float] = []
        wall = time.perf_counter()
        for start in range(0, len(items), batch):
            call = time.perf_counter()
            backend.generate(items[start : start + batch])
            latencies.append(time.perf_counter() - call)
        wall_s = time.perf_counter() - wall
        point = summarise(latencies, wall_s=wall_s, items_per_call=batch)
        # the last call may hold fewer than `batch` images: count what was made
        point |= {"items": len(items), "throughput": round(len(items) / wall_s, 4)}
        points.append({"system": system, "batch": batch, "load_s": round(load_s, 1), **point})
        print(json.dumps(points[-1]), flush=True)
    del backend
    gc.collect()
    return points


def _config(workdir: Path, port: int, max_batch: int) -> Path:
    config = {
        "models": {
            "image_generator": {
                "backend": "diffusion",
                "source": SOURCE,
                "cpus": 2,  # Ray sets OMP_NUM_THREADS from it: torch on both cores, as bare
                "batch": {"max_size": max_batch, "wait_ms": 0},
                "max_ongoing_requests": max(16, max_batch),
            }
        },
        "store": {"kind": "memory"},
        "workflows": [str(REPO_ROOT / "workflows" / "generate.yaml")],
        "server": {"port": port, "request_timeout_s": 3600},
    }
    path = workdir / f"generation-b{max_batch}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def _drive(url: str, images: int, concurrency: int) -> dict[str, Any]:
    bodies = iter({"inputs": item} for item in _items(images, 0))
    latencies: list[float] = []
    batches: list[int] = []
    errors = 0

    async with httpx.AsyncClient(timeout=3600) as client:

        async def worker() -> None:
            nonlocal errors
            for body in bodies:
                call = time.perf_counter()
                response = await client.post(url, json=body)
                latencies.append(time.perf_counter() - call)
                if response.status_code != 200:
                    errors += 1
                    print(response.text[:300], flush=True)
                    continue
                batches.append(int(response.json()["trace"][0]["batch_size"] or 1))

        wall = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall_s = time.perf_counter() - wall
    point = summarise(latencies, wall_s=wall_s, errors=errors)
    point["throughput"] = round(len(latencies) / wall_s, 4)
    point["mean_batch"] = round(sum(batches) / len(batches), 2) if batches else None
    return point


def run_served(
    images: int, concurrency: int, max_batch: int, port: int, workdir: Path
) -> list[dict[str, Any]]:
    points = []
    for system, batch in (("mmserve", max_batch), ("mmserve-nobatch", 1)):
        server = app_server(
            _config(workdir, port, batch), system=system, port=port, workdir=workdir
        )
        server.ready_timeout_s = 1800
        try:
            server.start()
            url = f"http://127.0.0.1:{port}/v1/workflows/generate/run"
            httpx.post(url, json={"inputs": _items(1, 10_000)[0]}, timeout=3600)  # warm-up
            point = asyncio.run(_drive(url, images, concurrency))
        finally:
            server.stop()
        points.append(
            {
                "system": system,
                "batch": batch,
                "concurrency": concurrency,
                "startup_s": round(server.startup_s, 1),
                **point,
            }
        )
        print(json.dumps(points[-1]), flush=True)
    return points


def markdown(document: dict[str, Any]) -> str:
    rows = [
        "| system | batch | concurrency | images | images/s | p50 s | mean batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for point in document["points"]:
        rows.append(
            f"| {point['system']} | {point['batch']} | {point.get('concurrency', 1)} "
            f"| {point['items']} | {point['throughput']:.4f} | {point['p50_ms'] / 1000:.1f} "
            f"| {point.get('mean_batch') or point['batch']} |"
        )
    info = document["machine"]
    return "\n".join(
        [
            f"# Generation: {SOURCE}, 1 step, {SIZE}x{SIZE}",
            "",
            f"Command: `{document['command']}`",
            "",
            f"Machine: {info['cpu']}, {info['logical_cores']} logical cores, "
            f"{info['memory_gb']} GB; load average at start {info['load_average_at_start']} "
            "(shared with other jobs).",
            "",
            "p50 is per call: one image for `bare` and the served systems, one batch for "
            "`bare-batched`.",
            "",
            *rows,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--systems", default="bare,served")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / ".mmserve" / "bench-generation")
    args = parser.parse_args()
    document: dict[str, Any] = {
        "command": "python -m benchmarks.generation "
        f"--images {args.images} --concurrency {args.concurrency} --max-batch {args.max_batch}",
        "machine": machine(),
        "points": [],
    }
    systems = args.systems.split(",")
    if "bare" in systems:
        document["points"] += run_bare(args.images, args.max_batch)
    if "served" in systems:
        document["points"] += run_served(
            args.images, args.concurrency, args.max_batch, args.port, args.workdir
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "generation.json").write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / "generation.md").write_text(markdown(document))
    print(markdown(document))


if __name__ == "__main__":
    main()
