"""Where one served request's time goes, from mmserve's own workflow trace.

Starts ``mmserve serve`` for a preset, sends sequential requests (concurrency 1) and splits
each request's latency into the step's wall time as the engine saw it (the handle call to the
model deployment: batch wait, transport, model) and the rest (HTTP proxy, ingress, engine).

    python -m benchmarks.suite.trace_split --preset minilm --requests 50
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx

from benchmarks.suite.presets import ServeShape, get_preset, make_inputs
from benchmarks.suite.servers import mmserve_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="minilm")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--wait-ms", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=8180)
    args = parser.parse_args()
    preset = get_preset(args.preset)
    inputs = make_inputs(preset)
    workdir = Path("benchmarks/results/work/trace-split")
    server = mmserve_server(
        preset, ServeShape(wait_ms=args.wait_ms), inputs, system="split", port=args.port,
        workdir=workdir,
    )  # fmt: skip
    totals: list[float] = []
    steps: list[float] = []
    try:
        server.start()
        with httpx.Client(timeout=120) as client:
            for index in range(args.requests + 10):
                started = time.perf_counter()
                response = client.post(
                    server.target(preset.workflows[0]), json=server.body_for(index)
                )
                elapsed = (time.perf_counter() - started) * 1000
                if index >= 10:  # the first ones warm up
                    totals.append(elapsed)
                    steps.append(float(response.json()["trace"][0]["wall_ms"]))
    finally:
        server.stop()
    total, step = statistics.median(totals), statistics.median(steps)
    print(
        f"{preset.name} (wait {args.wait_ms} ms), p50 of {len(totals)} requests: total "
        f"{total:.1f} ms, step wall time {step:.1f} ms, the rest {total - step:.1f} ms"
    )


if __name__ == "__main__":
    main()
