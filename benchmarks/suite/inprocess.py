"""The in-process systems, run in a child process of the orchestrator:

* ``bare``: mmserve's backend called directly in a loop -- the floor. Unbatched (one item a
  call) and batched (``--max-batch`` items a call).
* ``local``: mmserve local mode -- the workflow engine over in-process models, no Ray, no
  HTTP -- with ``concurrency`` runs in flight.

Prints one JSON document on its last line of stdout.

    python -m benchmarks.suite.inprocess --preset minilm --mode bare --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import time
from collections.abc import Callable
from typing import Any

from benchmarks.suite.presets import Inputs, Preset, ServeShape, app_config, get_preset, make_inputs
from benchmarks.suite.procstats import TreeSampler, tree_pss_mb, tree_rss_mb
from benchmarks.suite.stats import summarise

_STARTED = time.perf_counter()
_loaded_after = 0.0


def _loaded() -> None:
    """Record the seconds from process start until the model is loaded (the start-up)."""
    global _loaded_after
    _loaded_after = time.perf_counter() - _STARTED


def _values(preset: Preset, inputs: Inputs) -> list[Any]:
    if preset.kind == "text":
        return list(inputs.raw)
    from PIL import Image

    from mmserve.models.roles import CaptionItem

    images = [Image.open(io.BytesIO(png)).convert("RGB") for png in inputs.raw]
    # The image presets caption: the captioner role's items are (image, prompt?) pairs.
    return [CaptionItem(image=image) for image in images]


def _timed_loop(
    call: Callable[[int], None], *, duration_s: float, warmup_s: float
) -> tuple[list[float], float]:
    end_warmup = time.perf_counter() + warmup_s
    index = 0
    while time.perf_counter() < end_warmup:
        call(index)
        index += 1
    latencies = []
    start = time.perf_counter()
    while time.perf_counter() - start < duration_s:
        t0 = time.perf_counter()
        call(index)
        latencies.append(time.perf_counter() - t0)
        index += 1
    return latencies, time.perf_counter() - start


def run_bare(preset: Preset, shape: ServeShape, args: argparse.Namespace) -> list[dict[str, Any]]:
    import mmserve.models  # noqa: F401  (registers the backends)
    from mmserve.models.loader import load_backend
    from mmserve.models.spec import ModelSpec

    extra = {"max_new_tokens": preset.max_new_tokens} if preset.max_new_tokens else {}
    spec = ModelSpec(source=preset.source, device=shape.device, dtype=shape.dtype, **extra)  # type: ignore[arg-type]
    backend = load_backend(preset.backend, spec)
    _loaded()
    method = getattr(backend, preset.method)
    values = _values(preset, make_inputs(preset, text_words=args.text_words))
    results = []
    for label, size in (("unbatched", 1), ("batched", shape.max_batch)):
        if size == 1 and label == "batched":
            continue

        def call(index: int, size: int = size) -> None:
            method([values[(index * size + k) % len(values)] for k in range(size)])

        sampler = TreeSampler(os.getpid()).start()
        latencies, wall = _timed_loop(call, duration_s=args.duration, warmup_s=args.warmup)
        point = summarise(latencies, wall_s=wall, items_per_call=size)
        point.update(system="bare", variant=f"{label} (batch {size})", batch=size)
        point.update(sampler.stop().as_dict())
        results.append(point)
    return results


async def _local_point(
    app: Any, workflow: str, inputs: Inputs, concurrency: int, args: argparse.Namespace
) -> dict[str, Any]:
    counter = iter(range(10**9))
    latencies: list[float] = []
    errors = 0
    now = time.perf_counter()
    start, end = now + args.warmup, now + args.warmup + args.duration

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < end:
            index = next(counter)
            t0 = time.perf_counter()
            try:
                await app.run(workflow, {inputs.kind: inputs.wire(index)})
                ok = True
            except Exception:
                ok = False
            t1 = time.perf_counter()
            if start <= t1 <= end:
                if ok:
                    latencies.append(t1 - t0)
                else:
                    errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summarise(latencies, wall_s=end - start, errors=errors)


def run_local(preset: Preset, shape: ServeShape, args: argparse.Namespace) -> list[dict[str, Any]]:
    from mmserve.config import AppConfig
    from mmserve.local.mode import LocalApp

    config = AppConfig.from_dict(app_config(preset, shape, port=0))
    app = LocalApp(config)
    app.gateway.warm()
    _loaded()
    inputs = make_inputs(preset, text_words=args.text_words)
    results = []
    for workflow in preset.workflows:
        for concurrency in args.concurrency:
            sampler = TreeSampler(os.getpid()).start()
            point = asyncio.run(_local_point(app, workflow, inputs, concurrency, args))
            point.update(system="mmserve-local", variant=workflow, concurrency=concurrency)
            point.update(sampler.stop().as_dict())
            results.append(point)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--mode", choices=("bare", "local"), required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--text-words", type=int, default=300)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1])
    args = parser.parse_args()
    preset = get_preset(args.preset)
    shape = ServeShape(max_batch=args.max_batch, device=args.device, dtype=args.dtype)
    runner = run_bare if args.mode == "bare" else run_local
    points = runner(preset, shape, args)
    out = {
        "startup_s": round(_loaded_after, 1),
        "points": points,
        "idle_rss_mb": round(tree_rss_mb(os.getpid()), 1),
        "idle_pss_mb": round(tree_pss_mb(os.getpid()), 1),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
